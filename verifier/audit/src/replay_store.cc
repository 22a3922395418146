#include "replay_store.h"

#include <algorithm>
#include <vector>

namespace vellum::audit {

ReplayStore::ReplayStore(indexes::ViewStore* base, std::uint64_t first_id, std::optional<indexes::StateRecord> start,
                         Hooks hooks)
    : base_(base),
      first_id_(first_id),
      latest_(std::move(start)),
      hooks_(std::move(hooks)),
      nodes_api_(this),
      values_api_(this),
      next_page_(first_id),
      next_value_(first_id),
      committed_{first_id, first_id, 0} {}

Result<indexes::NodeId> ReplayStore::Nodes::Put(std::shared_ptr<const indexes::MapNode> node) {
  const indexes::NodeId id = s_->next_page_++;
  if (s_->hooks_.on_page) s_->hooks_.on_page(id, node);
  s_->pages_.emplace(id, std::move(node));
  return id;
}

Result<std::shared_ptr<const indexes::MapNode>> ReplayStore::Nodes::Get(indexes::NodeId id) const {
  if (id < s_->first_id_) {
    if (s_->base_ == nullptr) return NotFound("no map page " + std::to_string(id));
    return s_->base_->nodes().Get(id);
  }
  auto it = s_->pages_.find(id);
  if (it == s_->pages_.end()) return NotFound("no map page " + std::to_string(id) + " in the audit's rebuild");
  return it->second;
}

Result<indexes::ValueRef> ReplayStore::Values::Put(std::string_view value) {
  const indexes::ValueRef ref = s_->next_value_++;
  if (s_->hooks_.on_value) s_->hooks_.on_value(ref, value);
  s_->values_.emplace(ref, std::string(value));
  return ref;
}

Result<std::string> ReplayStore::Values::Get(indexes::ValueRef ref) const {
  if (ref < s_->first_id_) {
    if (s_->base_ == nullptr) return NotFound("no value " + std::to_string(ref));
    return s_->base_->values().Get(ref);
  }
  auto it = s_->values_.find(ref);
  if (it == s_->values_.end()) return NotFound("no value " + std::to_string(ref) + " in the audit's rebuild");
  return it->second;
}

std::shared_ptr<const void> ReplayStore::CommitThrough(indexes::PutMark through, std::uint64_t height,
                                                       std::string record, std::vector<indexes::NodeId>) {
  committed_ = through;
  if (hooks_.on_commit) hooks_.on_commit(height, record);
  latest_ = indexes::StateRecord{height, std::move(record)};
  return nullptr;  // MaybeCollect drops pages only between blocks, from the current state
}

void ReplayStore::RollbackTo(indexes::PutMark to) {
  const std::uint64_t page = std::max(to.pages, committed_.pages);
  const std::uint64_t value = std::max(to.values, committed_.values);
  for (; next_page_ > page; --next_page_) pages_.erase(next_page_ - 1);
  for (; next_value_ > value; --next_value_) values_.erase(next_value_ - 1);
}

Result<std::optional<indexes::StateRecord>> ReplayStore::DurableRecordAtOrBefore(std::uint64_t height) const {
  if (latest_.has_value() && latest_->height <= height) return latest_;
  return std::optional<indexes::StateRecord>();
}

indexes::ViewStoreStats ReplayStore::stats() const {
  indexes::ViewStoreStats s;
  s.pages = pages_.size();
  s.values = values_.size();
  return s;
}

void ReplayStore::MaybeCollect(const indexes::StateView& state) {
  const size_t held = pages_.size() + values_.size();
  if (held < 2 * kept_after_collect_ + (size_t{1} << 16)) return;
  std::unordered_map<indexes::NodeId, std::shared_ptr<const indexes::MapNode>> pages;
  std::unordered_map<indexes::ValueRef, std::string> values;
  pages.reserve(pages_.size() / 2);
  values.reserve(values_.size() / 2);
  indexes::WalkPages(
      state.RootPages(),
      [&](indexes::NodeId id) -> const indexes::MapNode* {
        if (id < first_id_ || pages.contains(id)) return nullptr;  // base pages never point at ours
        auto it = pages_.find(id);
        if (it == pages_.end()) return nullptr;
        return pages.emplace(id, std::move(it->second)).first->second.get();
      },
      [&](indexes::ValueRef ref) {
        if (ref < first_id_) return;
        if (auto v = values_.find(ref); v != values_.end()) values.emplace(ref, std::move(v->second));
      });
  pages_ = std::move(pages);
  values_ = std::move(values);
  kept_after_collect_ = pages_.size() + values_.size();
}

}  // namespace vellum::audit
