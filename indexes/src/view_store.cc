#include "vellum/indexes/view_store.h"

#include <lmdb.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "vellum/base/encoding.h"

namespace vellum::indexes {
namespace {

// ---- In memory ----------------------------------------------------------------

// Pages and values kept in memory under consecutive ids from `first`; ids
// below it are `below`'s (none for the memory store; the overlay's base).
// Subclasses keep the state records.
class InMemoryViewStore : public ViewStore {
  class Nodes final : public NodeStore {
   public:
    explicit Nodes(InMemoryViewStore* s) : s_(s) {}
    Result<NodeId> Put(std::shared_ptr<const MapNode> node) override {
      std::unique_lock lock(s_->mu_);
      s_->nodes_.push_back(std::move(node));
      return s_->first_ + s_->nodes_.size() - 1;
    }
    Result<std::shared_ptr<const MapNode>> Get(NodeId id) const override {
      if (id < s_->first_ && s_->below_ != nullptr) return s_->below_->nodes().Get(id);
      std::shared_lock lock(s_->mu_);
      if (id < s_->first_ || id - s_->first_ >= s_->nodes_.size()) return NotFound("no map page " + std::to_string(id));
      return s_->nodes_[id - s_->first_];
    }

   private:
    InMemoryViewStore* s_;
  };

  class Values final : public ValueStore {
   public:
    explicit Values(InMemoryViewStore* s) : s_(s) {}
    Result<ValueRef> Put(std::string_view value) override {
      std::unique_lock lock(s_->mu_);
      s_->values_.emplace_back(value);
      return s_->first_ + s_->values_.size() - 1;
    }
    Result<std::string> Get(ValueRef ref) const override {
      if (ref < s_->first_ && s_->below_ != nullptr) return s_->below_->values().Get(ref);
      std::shared_lock lock(s_->mu_);
      if (ref < s_->first_ || ref - s_->first_ >= s_->values_.size()) return NotFound("no value " + std::to_string(ref));
      return s_->values_[ref - s_->first_];
    }

   private:
    InMemoryViewStore* s_;
  };

 public:
  NodeStore& nodes() override { return node_api_; }
  ValueStore& values() override { return value_api_; }

  PutMark Mark() const override {
    std::shared_lock lock(mu_);
    return {nodes_.size(), values_.size(), 0};
  }
  std::shared_ptr<const void> CommitThrough(PutMark through, std::uint64_t height, std::string record,
                                            std::vector<NodeId>) override {
    std::unique_lock lock(mu_);
    committed_ = through;
    KeepRecord(height, std::move(record));
    return nullptr;  // nothing is ever dropped
  }
  void RollbackTo(PutMark to) override {
    std::unique_lock lock(mu_);
    nodes_.resize(std::max(to.pages, committed_.pages));
    values_.resize(std::max(to.values, committed_.values));
  }
  Status Flush() override { return Status::Ok(); }
  ViewStoreStats stats() const override {
    std::shared_lock lock(mu_);
    ViewStoreStats s;
    s.pages = nodes_.size();
    s.values = values_.size();
    return s;
  }

 protected:
  InMemoryViewStore(std::uint64_t first, ViewStore* below)
      : below_(below), first_(first), node_api_(this), value_api_(this) {}
  // The state record of a commit, under mu_ (held exclusively).
  virtual void KeepRecord(std::uint64_t height, std::string record) = 0;

  mutable std::shared_mutex mu_;
  ViewStore* const below_;

 private:
  const std::uint64_t first_;
  std::vector<std::shared_ptr<const MapNode>> nodes_;
  std::vector<std::string> values_;
  PutMark committed_;  // Mark() at the last commit
  Nodes node_api_;
  Values value_api_;
};

class MemoryViewStore final : public InMemoryViewStore {
 public:
  MemoryViewStore() : InMemoryViewStore(1, nullptr) {}

  Result<std::optional<StateRecord>> LatestRecord() const override {
    std::shared_lock lock(mu_);
    if (records_.empty()) return std::optional<StateRecord>();
    const auto& [h, bytes] = *records_.rbegin();
    return std::optional(StateRecord{h, bytes});
  }
  Result<std::optional<StateRecord>> DurableRecordAtOrBefore(std::uint64_t height) const override {
    std::shared_lock lock(mu_);
    auto it = records_.upper_bound(height);
    if (it == records_.begin()) return std::optional<StateRecord>();
    --it;
    return std::optional(StateRecord{it->first, it->second});
  }

 private:
  void KeepRecord(std::uint64_t height, std::string record) override { records_[height] = std::move(record); }

  std::map<std::uint64_t, std::string> records_;
};

// ---- LMDB ---------------------------------------------------------------------

Status LmdbError(int rc, std::string_view what) {
  std::string message = std::string(what) + ": " + mdb_strerror(rc);
  if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) return ResourceExhausted(message);
  if (rc == MDB_NOTFOUND) return NotFound(message);
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID) return DataLoss(message);
  return Unavailable(message);
}

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

class ReadTxn {
 public:
  explicit ReadTxn(MDB_env* env) { rc_ = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn_); }
  ~ReadTxn() {
    if (rc_ == 0) mdb_txn_abort(txn_);
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  int rc() const { return rc_; }
  MDB_txn* get() const { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
  int rc_;
};

// Last u64 key of `dbi`, or 0 when empty.
Result<std::uint64_t> LastKey(MDB_txn* txn, MDB_dbi dbi) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, dbi, &cursor);
  if (rc != 0) return LmdbError(rc, "open cursor");
  MDB_val k, v;
  rc = mdb_cursor_get(cursor, &k, &v, MDB_LAST);
  mdb_cursor_close(cursor);
  if (rc == MDB_NOTFOUND) return std::uint64_t{0};
  if (rc != 0) return LmdbError(rc, "read last key");
  if (k.mv_size != 8) return DataLoss("malformed key in view store");
  return GetBigEndian64(static_cast<const char*>(k.mv_data));
}

// A committed record not yet flushed, with where its puts end.
struct PendingRecord {
  std::uint64_t height;
  std::string bytes;
  PutMark end;  // the commit's mark: ids and put_bytes_ through this record
  std::vector<NodeId> roots;
};

// Pages and values a flush did not write (no durable state reaches them),
// kept in memory until every state that may reach them is unpinned.
struct Dropped {
  std::vector<std::weak_ptr<const void>> pins;
  std::vector<std::pair<NodeId, std::shared_ptr<const MapNode>>> nodes;         // ascending ids
  std::vector<std::pair<ValueRef, std::shared_ptr<const std::string>>> values;  // ascending refs
  bool expired() const {
    return std::all_of(pins.begin(), pins.end(), [](const auto& p) { return p.expired(); });
  }
  template <typename T>
  static const std::shared_ptr<const T>* Find(const std::vector<std::pair<std::uint64_t, std::shared_ptr<const T>>>& v,
                                              std::uint64_t id) {
    auto it = std::lower_bound(v.begin(), v.end(), id, [](const auto& e, std::uint64_t x) { return e.first < x; });
    return it != v.end() && it->first == id ? &it->second : nullptr;
  }
};

// Which pages and values of a flush window (ids first_node.., first_value..)
// the flushed state reaches from `roots`, plus the window's last page and value.
struct Reached {
  std::vector<char> nodes;
  std::vector<char> values;
};
Reached Reach(const std::vector<NodeId>& roots, NodeId first_node, const std::vector<std::shared_ptr<const MapNode>>& nodes,
              ValueRef first_value, size_t value_count) {
  Reached r{std::vector<char>(nodes.size(), 0), std::vector<char>(value_count, 0)};
  WalkPages(
      roots,
      [&](NodeId id) -> const MapNode* {
        if (id < first_node || id - first_node >= nodes.size() || r.nodes[id - first_node] != 0) return nullptr;
        r.nodes[id - first_node] = 1;
        return nodes[id - first_node].get();
      },
      [&](ValueRef ref) {
        if (ref >= first_value && ref - first_value < value_count) r.values[ref - first_value] = 1;
      });
  // The newest page and value of the window are written even if unreached:
  // after a restart ids continue from the last stored ones, and must continue
  // exactly as they would have (the audit compares pages by id).
  if (!r.nodes.empty()) r.nodes.back() = 1;
  if (!r.values.empty()) r.values.back() = 1;
  return r;
}

class LmdbViewStore final : public ViewStore {
  class Nodes final : public NodeStore {
   public:
    explicit Nodes(LmdbViewStore* s) : s_(s) {}
    Result<NodeId> Put(std::shared_ptr<const MapNode> node) override { return s_->PutNode(std::move(node)); }
    Result<std::shared_ptr<const MapNode>> Get(NodeId id) const override { return s_->GetNode(id); }

   private:
    LmdbViewStore* s_;
  };
  class Values final : public ValueStore {
   public:
    explicit Values(LmdbViewStore* s) : s_(s) {}
    Result<ValueRef> Put(std::string_view value) override { return s_->PutValue(value); }
    Result<std::string> Get(ValueRef ref) const override { return s_->GetValue(ref); }

   private:
    LmdbViewStore* s_;
  };

 public:
  LmdbViewStore(MDB_env* env, MDB_dbi pages, MDB_dbi values, MDB_dbi records, const LmdbViewStoreOptions& options)
      : env_(env), pages_(pages), values_db_(values), records_(records), options_(options), node_api_(this),
        value_api_(this) {}

  ~LmdbViewStore() override {
    if (!options_.read_only) {
      (void)Flush();  // best effort: what is lost is replayed from the journal
      {
        std::lock_guard lock(mu_);
        stopping_ = true;
      }
      flush_cv_.notify_all();
      if (flusher_.joinable()) flusher_.join();
    }
    mdb_env_close(env_);
  }

  Status Init() {
    ReadTxn txn(env_);
    if (txn.rc() != 0) return LmdbError(txn.rc(), "begin read");
    VELLUM_ASSIGN_OR_RETURN(NodeId last_node, LastKey(txn.get(), pages_));
    VELLUM_ASSIGN_OR_RETURN(ValueRef last_value, LastKey(txn.get(), values_db_));
    first_unflushed_node_ = last_node + 1;
    first_unflushed_value_ = last_value + 1;
    committed_ = {last_node + 1, last_value + 1, 0};
    if (!options_.read_only) flusher_ = std::thread([this] { RunFlusher(); });
    return Status::Ok();
  }

  NodeStore& nodes() override { return node_api_; }
  ValueStore& values() override { return value_api_; }

  // Marks count in ids: one past the last page id and value ref handed out.
  PutMark Mark() const override {
    std::lock_guard lock(mu_);
    return {first_unflushed_node_ + unflushed_nodes_.size(), first_unflushed_value_ + unflushed_values_.size(),
            put_bytes_};
  }

  std::shared_ptr<const void> CommitThrough(PutMark through, std::uint64_t height, std::string record,
                                            std::vector<NodeId> roots) override {
    bool wake = false;
    std::shared_ptr<const void> pin;
    {
      std::lock_guard lock(mu_);
      committed_ = through;
      pending_records_.push_back({height, std::move(record), through, std::move(roots)});
      pin = pin_;
      // Freeing dropped pages takes a while: the flusher thread does it.
      wake = FlushDue() || TakeExpired();
    }
    if (wake) flush_cv_.notify_all();
    return pin;
  }

  void RollbackTo(PutMark to) override {
    std::lock_guard lock(mu_);
    if (to.pages <= committed_.pages) to = committed_;
    unflushed_nodes_.resize(to.pages - first_unflushed_node_);
    unflushed_values_.resize(to.values - first_unflushed_value_);
    put_bytes_ = to.bytes;
  }

  Status Flush() override {
    if (options_.read_only) return Status::Ok();
    std::unique_lock lock(mu_);
    if (pending_records_.empty()) return Status::Ok();  // everything committed is durable
    const std::uint64_t target = pending_records_.back().height;
    const std::uint64_t attempts_before = flush_attempts_;
    flush_requested_ = true;
    flush_cv_.notify_all();
    done_cv_.wait(lock, [&] {
      return (durable_height_.has_value() && *durable_height_ >= target) || stopping_ ||
             (flush_attempts_ > attempts_before && !flush_status_.ok());
    });
    return flush_status_;
  }

  Result<std::optional<StateRecord>> LatestRecord() const override {
    {
      std::lock_guard lock(mu_);
      if (!pending_records_.empty()) {
        return std::optional(StateRecord{pending_records_.back().height, pending_records_.back().bytes});
      }
    }
    ReadTxn txn(env_);
    if (txn.rc() != 0) return LmdbError(txn.rc(), "begin read");
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn.get(), records_, &cursor);
    if (rc != 0) return LmdbError(rc, "open cursor");
    MDB_val k, v;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_LAST);
    mdb_cursor_close(cursor);
    if (rc == MDB_NOTFOUND) return std::optional<StateRecord>();
    if (rc != 0) return LmdbError(rc, "read last state record");
    if (k.mv_size != 8) return DataLoss("malformed state record key");
    return std::optional(StateRecord{GetBigEndian64(static_cast<const char*>(k.mv_data)), std::string(View(v))});
  }

  Result<std::optional<StateRecord>> DurableRecordAtOrBefore(std::uint64_t height) const override {
    ReadTxn txn(env_);
    if (txn.rc() != 0) return LmdbError(txn.rc(), "begin read");
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn.get(), records_, &cursor);
    if (rc != 0) return LmdbError(rc, "open cursor");
    // First key > height, then step back one.
    const std::string probe = height == UINT64_MAX ? std::string() : BigEndianKey(height + 1);
    MDB_val k = Val(probe), v;
    rc = probe.empty() ? MDB_NOTFOUND : mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    if (rc == 0) {
      rc = mdb_cursor_get(cursor, &k, &v, MDB_PREV);
    } else if (rc == MDB_NOTFOUND) {
      rc = mdb_cursor_get(cursor, &k, &v, MDB_LAST);
    }
    std::optional<StateRecord> out;
    if (rc == 0) {
      if (k.mv_size != 8) rc = MDB_CORRUPTED;
      else out = StateRecord{GetBigEndian64(static_cast<const char*>(k.mv_data)), std::string(View(v))};
    }
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError(rc, "find state record");
    return out;
  }

  ViewStoreStats stats() const override {
    std::lock_guard lock(mu_);
    ViewStoreStats s;
    s.pages = first_unflushed_node_ - 1 + unflushed_nodes_.size();
    s.values = first_unflushed_value_ - 1 + unflushed_values_.size();
    s.unflushed_pages = unflushed_nodes_.size();
    s.unflushed_values = unflushed_values_.size();
    s.unflushed_bytes = put_bytes_ - flushed_put_bytes_;
    s.flushes = flushes_;
    s.failed_flushes = flush_attempts_ - flushes_;
    s.flushed_bytes = flushed_bytes_;
    s.dropped_pages = dropped_pages_;
    s.dropped_values = dropped_values_;
    for (const Dropped& d : dropped_) s.pinned_pages += d.nodes.size();
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(env_, &info) == 0 && mdb_env_stat(env_, &st) == 0) {
      s.file_bytes = static_cast<std::uint64_t>(info.me_last_pgno + 1) * st.ms_psize;
    }
    return s;
  }

 private:
  Result<NodeId> PutNode(std::shared_ptr<const MapNode> node) {
    if (options_.read_only) return FailedPrecondition("view store opened read-only");
    const size_t bytes = EncodedMapNodeSize(*node);
    std::lock_guard lock(mu_);
    put_bytes_ += bytes;
    unflushed_nodes_.push_back(std::move(node));
    return first_unflushed_node_ + unflushed_nodes_.size() - 1;
  }

  Result<ValueRef> PutValue(std::string_view value) {
    if (options_.read_only) return FailedPrecondition("view store opened read-only");
    auto shared = std::make_shared<const std::string>(value);
    std::lock_guard lock(mu_);
    put_bytes_ += value.size();
    unflushed_values_.push_back(std::move(shared));
    return first_unflushed_value_ + unflushed_values_.size() - 1;
  }

  Result<std::shared_ptr<const MapNode>> GetNode(NodeId id) const {
    {
      std::shared_lock lock(mu_);
      if (id >= first_unflushed_node_) {
        const std::uint64_t i = id - first_unflushed_node_;
        if (i < unflushed_nodes_.size()) return unflushed_nodes_[i];
        return NotFound("no map page " + std::to_string(id));
      }
    }
    // Below the unflushed window: a written page, in the cache unless
    // evicted (the flusher caches written pages before it moves the window
    // past them), or a dropped one, readable while a state reaching it is
    // pinned.
    {
      const CacheShard& shard = ShardOf(id);
      std::shared_lock lock(shard.mu);
      if (auto it = shard.pages.find(id); it != shard.pages.end()) {
        it->second.referenced.store(true, std::memory_order_relaxed);
        return it->second.page;
      }
    }
    {
      std::shared_lock lock(mu_);
      for (const Dropped& d : dropped_) {
        if (const auto* page = Dropped::Find(d.nodes, id)) return *page;
      }
    }
    if (id == kNoNode) return NotFound("no map page 0");
    ReadTxn txn(env_);
    if (txn.rc() != 0) return LmdbError(txn.rc(), "begin read");
    const std::string key = BigEndianKey(id);
    MDB_val k = Val(key), v;
    const int rc = mdb_get(txn.get(), pages_, &k, &v);
    if (rc == MDB_NOTFOUND) return NotFound("no map page " + std::to_string(id));
    if (rc != 0) return LmdbError(rc, "read map page");
    auto decoded = DecodeMapNode(View(v));
    if (!decoded.ok()) return DataLoss("map page " + std::to_string(id) + " is corrupt: " + decoded.status().message());
    auto node = std::make_shared<const MapNode>(std::move(decoded).value());
    CacheInsert(id, node);
    return node;
  }

  Result<std::string> GetValue(ValueRef ref) const {
    {
      std::shared_lock lock(mu_);
      if (ref >= first_unflushed_value_) {
        const std::uint64_t i = ref - first_unflushed_value_;
        if (i < unflushed_values_.size()) return *unflushed_values_[i];
        return NotFound("no value " + std::to_string(ref));
      }
      for (const Dropped& d : dropped_) {
        if (const auto* value = Dropped::Find(d.values, ref)) return **value;
      }
    }
    if (ref == 0) return NotFound("no value 0");
    ReadTxn txn(env_);
    if (txn.rc() != 0) return LmdbError(txn.rc(), "begin read");
    const std::string key = BigEndianKey(ref);
    MDB_val k = Val(key), v;
    const int rc = mdb_get(txn.get(), values_db_, &k, &v);
    if (rc == MDB_NOTFOUND) return NotFound("no value " + std::to_string(ref));
    if (rc != 0) return LmdbError(rc, "read value");
    return std::string(View(v));
  }

  void CacheInsert(NodeId id, std::shared_ptr<const MapNode> node) const {
    if (options_.page_cache_entries == 0) return;
    CacheShard& shard = ShardOf(id);
    std::lock_guard lock(shard.mu);
    auto [it, inserted] = shard.pages.try_emplace(id, std::move(node));
    if (!inserted) return;
    shard.order.push_back(id);
    // Second chance (CLOCK): the oldest entry goes unless it was read since
    // it was last considered, in which case it goes to the back once.
    const size_t capacity = (options_.page_cache_entries + kCacheShards - 1) / kCacheShards;
    while (shard.pages.size() > capacity) {
      const NodeId victim = shard.order.front();
      shard.order.pop_front();
      auto v = shard.pages.find(victim);
      if (v->second.referenced.load(std::memory_order_relaxed)) {
        v->second.referenced.store(false, std::memory_order_relaxed);
        shard.order.push_back(victim);
      } else {
        shard.pages.erase(v);
      }
    }
  }

  void RunFlusher() {
    std::unique_lock lock(mu_);
    for (;;) {
      auto ready = [&] {
        return stopping_ || !expired_.empty() || ((flush_requested_ || FlushDue()) && !pending_records_.empty());
      };
      if (!flush_status_.ok()) {
        // The last flush failed (e.g. a full map): retry on an explicit
        // request or after a pause, never in a busy loop.
        flush_cv_.wait_for(lock, std::chrono::seconds(1),
                           [&] { return stopping_ || flush_requested_ || !expired_.empty(); });
      } else {
        flush_cv_.wait(lock, ready);
      }
      if (stopping_) return;
      if (!expired_.empty()) {
        std::vector<Dropped> doomed = std::move(expired_);
        expired_.clear();
        lock.unlock();
        doomed.clear();  // frees the pages outside the lock
        lock.lock();
      }
      if (pending_records_.empty() || !(flush_requested_ || FlushDue() || !flush_status_.ok())) continue;
      flush_requested_ = false;
      // Everything up to the newest committed record; ids are contiguous.
      PendingRecord record = pending_records_.back();
      const size_t record_count = pending_records_.size();
      std::vector<std::shared_ptr<const MapNode>> nodes(
          unflushed_nodes_.begin(), unflushed_nodes_.begin() + static_cast<long>(record.end.pages - first_unflushed_node_));
      std::vector<std::shared_ptr<const std::string>> values(
          unflushed_values_.begin(),
          unflushed_values_.begin() + static_cast<long>(record.end.values - first_unflushed_value_));
      const NodeId first_node = first_unflushed_node_;
      const ValueRef first_value = first_unflushed_value_;
      // States committed from now on derive from `record` and reach none of
      // the pages this flush may drop: they get a new pin.
      rotated_pins_.push_back(pin_);
      pin_ = std::make_shared<const char>(0);
      lock.unlock();

      const Reached reached = Reach(record.roots, first_node, nodes, first_value, values.size());
      std::uint64_t bytes = 0;
      Status status = WriteFlush(first_node, nodes, first_value, values, reached, record, bytes);
      // Sorted out before taking the lock again, which the commit thread needs.
      Dropped dropped;
      if (status.ok()) {
        for (size_t i = 0; i < nodes.size(); ++i) {
          if (reached.nodes[i] == 0) {
            dropped.nodes.emplace_back(first_node + i, std::move(nodes[i]));
          } else {
            // The written pages go to the cache before they leave the
            // unflushed window (they are the newest version's, the
            // likeliest to be read).
            CacheInsert(first_node + i, std::move(nodes[i]));
          }
        }
        for (size_t i = 0; i < values.size(); ++i) {
          if (reached.values[i] == 0) dropped.values.emplace_back(first_value + i, std::move(values[i]));
        }
      }

      lock.lock();
      ++flush_attempts_;
      if (status.ok()) {
        // The dropped pages stay readable while a state that reaches them
        // is pinned.
        dropped.pins = std::move(rotated_pins_);
        rotated_pins_.clear();
        dropped_pages_ += dropped.nodes.size();
        dropped_values_ += dropped.values.size();
        if (!dropped.nodes.empty() || !dropped.values.empty()) dropped_.push_back(std::move(dropped));
        unflushed_nodes_.erase(unflushed_nodes_.begin(), unflushed_nodes_.begin() + static_cast<long>(nodes.size()));
        unflushed_values_.erase(unflushed_values_.begin(), unflushed_values_.begin() + static_cast<long>(values.size()));
        first_unflushed_node_ += nodes.size();
        first_unflushed_value_ += values.size();
        flushed_put_bytes_ = record.end.bytes;
        pending_records_.erase(pending_records_.begin(), pending_records_.begin() + static_cast<long>(record_count));
        durable_height_ = record.height;
        flush_status_ = Status::Ok();
        ++flushes_;
        flushed_bytes_ += bytes;
      } else {
        flush_status_ = status;
      }
      done_cv_.notify_all();
      // The last references to flushed-over pages may go here: outside the lock.
      lock.unlock();
      nodes.clear();
      values.clear();
      lock.lock();
    }
  }

  // True when a background flush is due (mu_ held).
  bool FlushDue() const {
    return (options_.flush_every_blocks != 0 && pending_records_.size() >= options_.flush_every_blocks) ||
           (options_.flush_every_pages != 0 && unflushed_nodes_.size() >= options_.flush_every_pages) ||
           (options_.flush_every_bytes != 0 && put_bytes_ - flushed_put_bytes_ >= options_.flush_every_bytes);
  }

  // Moves the dropped pages no pinned state can reach any more to expired_,
  // for the flusher to free (mu_ held). True if there are some to free.
  bool TakeExpired() {
    for (auto it = dropped_.begin(); it != dropped_.end();) {
      if (it->expired()) {
        expired_.push_back(std::move(*it));
        it = dropped_.erase(it);
      } else {
        ++it;
      }
    }
    return !expired_.empty();
  }

  // Writes the pages and values of the window that `reached` marks, then the record.
  Status WriteFlush(NodeId first_node, const std::vector<std::shared_ptr<const MapNode>>& nodes, ValueRef first_value,
                    const std::vector<std::shared_ptr<const std::string>>& values, const Reached& reached,
                    const PendingRecord& record, std::uint64_t& bytes) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return LmdbError(rc, "begin view flush");
    auto fail = [&](int code, std::string_view what) {
      mdb_txn_abort(txn);
      return LmdbError(code, what);
    };
    char key[8];
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (reached.nodes[i] == 0) continue;
      // Encoded straight into the database's buffer: no copy in between.
      const size_t size = EncodedMapNodeSize(*nodes[i]);
      bytes += size;
      PutBigEndian64(key, first_node + i);
      MDB_val k{8, key}, v{size, nullptr};
      if ((rc = mdb_put(txn, pages_, &k, &v, MDB_APPEND | MDB_RESERVE)) != 0) return fail(rc, "append map page");
      EncodeMapNodeInto(*nodes[i], static_cast<char*>(v.mv_data));
    }
    for (size_t i = 0; i < values.size(); ++i) {
      if (reached.values[i] == 0) continue;
      bytes += values[i]->size();
      PutBigEndian64(key, first_value + i);
      MDB_val k{8, key}, v = Val(*values[i]);
      if ((rc = mdb_put(txn, values_db_, &k, &v, MDB_APPEND)) != 0) return fail(rc, "append value");
    }
    PutBigEndian64(key, record.height);
    MDB_val k{8, key}, v = Val(record.bytes);
    if ((rc = mdb_put(txn, records_, &k, &v, MDB_APPEND)) != 0) return fail(rc, "append state record");
    if ((rc = mdb_txn_commit(txn)) != 0) return LmdbError(rc, "commit view flush");
    return Status::Ok();
  }

  MDB_env* env_;
  MDB_dbi pages_, values_db_, records_;
  LmdbViewStoreOptions options_;
  Nodes node_api_;
  Values value_api_;

  // Reads of pages and values share it; everything else holds it alone.
  mutable std::shared_mutex mu_;
  std::condition_variable_any flush_cv_;
  std::condition_variable_any done_cv_;
  std::deque<std::shared_ptr<const MapNode>> unflushed_nodes_;  // ids first_unflushed_node_ ...
  std::deque<std::shared_ptr<const std::string>> unflushed_values_;
  NodeId first_unflushed_node_ = 1;
  ValueRef first_unflushed_value_ = 1;
  // Bytes of pages (encoded) and values put since open, less those rolled
  // back; and the same count at the last flush's record. The unflushed ones
  // are put_bytes_ - flushed_put_bytes_.
  std::uint64_t put_bytes_ = 0;
  std::uint64_t flushed_put_bytes_ = 0;
  PutMark committed_;  // Mark() at the last commit (Init: what LMDB holds)
  std::deque<PendingRecord> pending_records_;
  // Handed to states as they commit; replaced when a flush picks its record.
  std::shared_ptr<const void> pin_ = std::make_shared<const char>(0);
  std::vector<std::weak_ptr<const void>> rotated_pins_;  // since the last successful flush
  std::deque<Dropped> dropped_;
  std::vector<Dropped> expired_;  // no longer pinned; the flusher frees them
  std::uint64_t dropped_pages_ = 0;
  std::uint64_t dropped_values_ = 0;
  bool flush_requested_ = false;
  bool stopping_ = false;
  Status flush_status_;
  std::optional<std::uint64_t> durable_height_;
  std::uint64_t flushes_ = 0;
  std::uint64_t flush_attempts_ = 0;
  std::uint64_t flushed_bytes_ = 0;
  struct CacheEntry {
    explicit CacheEntry(std::shared_ptr<const MapNode> p) : page(std::move(p)) {}
    std::shared_ptr<const MapNode> page;
    // Read since the eviction scan last passed it; set by readers sharing the shard's lock.
    mutable std::atomic<bool> referenced{false};
  };
  struct CacheShard {
    mutable std::shared_mutex mu;
    std::unordered_map<NodeId, CacheEntry> pages;  // decoded flushed pages
    std::deque<NodeId> order;                      // their ids, oldest first
  };
  // The cache is split in shards by id, each with its own lock, so the two
  // threads of a batch's descent (and the flusher caching what it wrote)
  // rarely wait for each other on a miss.
  static constexpr size_t kCacheShards = 16;
  CacheShard& ShardOf(NodeId id) const { return cache_[id % kCacheShards]; }
  mutable std::array<CacheShard, kCacheShards> cache_;

  std::thread flusher_;
};

// ---- Overlay ------------------------------------------------------------------

class OverlayViewStore final : public InMemoryViewStore {
 public:
  OverlayViewStore(ViewStore& base, std::optional<StateRecord> start)
      : InMemoryViewStore(kOverlayFirstId, &base), latest_(std::move(start)) {}

  Result<std::optional<StateRecord>> LatestRecord() const override {
    std::shared_lock lock(mu_);
    return latest_;
  }
  Result<std::optional<StateRecord>> DurableRecordAtOrBefore(std::uint64_t height) const override {
    return below_->DurableRecordAtOrBefore(height);
  }

 private:
  void KeepRecord(std::uint64_t height, std::string record) override { latest_ = StateRecord{height, std::move(record)}; }

  std::optional<StateRecord> latest_;
};

}  // namespace

std::unique_ptr<ViewStore> NewMemoryViewStore() { return std::make_unique<MemoryViewStore>(); }

std::unique_ptr<ViewStore> NewOverlayViewStore(ViewStore& base, std::optional<StateRecord> start) {
  return std::make_unique<OverlayViewStore>(base, std::move(start));
}

Result<std::unique_ptr<ViewStore>> OpenLmdbViewStore(const std::string& dir, const LmdbViewStoreOptions& options) {
  std::error_code ec;
  if (options.read_only) {
    if (!std::filesystem::exists(std::filesystem::path(dir) / "data.mdb", ec)) return NotFound("no view store in " + dir);
  } else {
    std::filesystem::create_directories(dir, ec);
    if (ec) return Unavailable("create directory " + dir + ": " + ec.message());
  }
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return LmdbError(rc, "create LMDB environment");
  auto fail = [&](int code, std::string_view what) {
    mdb_env_close(env);
    return LmdbError(code, what);
  };
  if ((rc = mdb_env_set_maxdbs(env, 4)) != 0) return fail(rc, "set maxdbs");
  if ((rc = mdb_env_set_maxreaders(env, 4096)) != 0) return fail(rc, "set maxreaders");
  if ((rc = mdb_env_set_mapsize(env, options.map_size)) != 0) return fail(rc, "set map size");
  const unsigned flags = MDB_NOTLS | (options.read_only ? MDB_RDONLY : 0);
  if ((rc = mdb_env_open(env, dir.c_str(), flags, 0600)) != 0) return fail(rc, "open view store in " + dir);
  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(env, nullptr, options.read_only ? MDB_RDONLY : 0, &txn)) != 0) return fail(rc, "begin");
  MDB_dbi pages = 0, values = 0, records = 0;
  const unsigned create = options.read_only ? 0 : MDB_CREATE;
  if ((rc = mdb_dbi_open(txn, "pages", create, &pages)) != 0 || (rc = mdb_dbi_open(txn, "values", create, &values)) != 0 ||
      (rc = mdb_dbi_open(txn, "records", create, &records)) != 0) {
    mdb_txn_abort(txn);
    return fail(rc, "open view tables");
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return fail(rc, "commit view tables");
  auto store = std::make_unique<LmdbViewStore>(env, pages, values, records, options);
  VELLUM_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<ViewStore>(std::move(store));
}

}  // namespace vellum::indexes
