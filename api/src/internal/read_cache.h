// The parts of a proven read that every read at the same tree size and
// height shares: the parsed signed checkpoint, the block proof (header and
// inclusion path) and the catalog proofs of the maps read. Each entry is a
// pure function of its key — the journal is append-only, so a block proof of
// (height, tree size) never changes, and a state root fixes its catalog and
// so the catalog proof of any key — so entries are never invalidated: a new
// block only brings new keys, and the oldest entries are dropped once a
// cache holds `capacity` of them.
//
// Thread-safety: thread-safe; values are immutable and shared.
#ifndef VELLUM_API_INTERNAL_READ_CACHE_H_
#define VELLUM_API_INTERNAL_READ_CACHE_H_

#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>

namespace vellum::api::internal {

template <typename Key, typename Value>
class BoundedCache {
 public:
  explicit BoundedCache(size_t capacity) : capacity_(capacity) {}

  // The cached value of `key`, or null.
  std::shared_ptr<const Value> Find(const Key& key) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : it->second;
  }

  // Caches `value` for `key` (a racing insert of the same key keeps the
  // first: both are equal) and returns the cached value.
  std::shared_ptr<const Value> Insert(const Key& key, std::shared_ptr<const Value> value) {
    std::lock_guard lock(mu_);
    auto [it, inserted] = entries_.emplace(key, std::move(value));
    if (inserted) {
      order_.push_back(key);
      if (order_.size() > capacity_) {
        entries_.erase(order_.front());
        order_.pop_front();
      }
    }
    return it->second;
  }

  size_t size() const {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::map<Key, std::shared_ptr<const Value>> entries_;
  std::deque<Key> order_;  // insertion order, oldest first
};

}  // namespace vellum::api::internal

#endif  // VELLUM_API_INTERNAL_READ_CACHE_H_
