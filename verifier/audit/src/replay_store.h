// ReplayStore: the views store of the audit's rebuild. Pages and values live
// in memory under the same ids a server's store hands out (1, 2, 3, ...;
// Views applies maps in MapId order, so ids are deterministic), and every put
// is shown to a hook so the audit can compare it with the page or value the
// server stored under that id. Unlike indexes::NewMemoryViewStore it forgets
// what the current state no longer reaches (Collect), so memory stays
// proportional to the views, not to their history.
//
// With a `base` store (incremental audits), ids below `first_id` are read
// from it and never collected; new ids start at `first_id`.
//
// Thread-safety: one thread uses the store and the Views over it. Within
// that, AuthenticatedMap::Apply's helper thread may call Nodes::Get while
// the caller does too: Get only reads (pages_ and the base store).
#ifndef VELLUM_AUDIT_REPLAY_STORE_H_
#define VELLUM_AUDIT_REPLAY_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "vellum/indexes/view_store.h"
#include "vellum/indexes/views.h"

namespace vellum::audit {

class ReplayStore final : public indexes::ViewStore {
 public:
  struct Hooks {
    std::function<void(indexes::NodeId, const std::shared_ptr<const indexes::MapNode>&)> on_page;
    std::function<void(indexes::ValueRef, std::string_view)> on_value;
    std::function<void(std::uint64_t height, const std::string& record)> on_commit;
  };

  ReplayStore(indexes::ViewStore* base, std::uint64_t first_id, std::optional<indexes::StateRecord> start, Hooks hooks);

  indexes::NodeStore& nodes() override { return nodes_api_; }
  indexes::ValueStore& values() override { return values_api_; }
  indexes::PutMark Mark() const override { return {next_page_, next_value_, 0}; }
  std::shared_ptr<const void> CommitThrough(indexes::PutMark through, std::uint64_t height, std::string record,
                                            std::vector<indexes::NodeId> roots) override;
  void RollbackTo(indexes::PutMark to) override;
  Status Flush() override { return Status::Ok(); }
  Result<std::optional<indexes::StateRecord>> LatestRecord() const override { return latest_; }
  Result<std::optional<indexes::StateRecord>> DurableRecordAtOrBefore(std::uint64_t height) const override;
  indexes::ViewStoreStats stats() const override;

  // Drops the pages and values of this store that `state` does not reach,
  // when they have grown well past what the last collection kept.
  void MaybeCollect(const indexes::StateView& state);
  // The next page id and value ref this store will hand out.
  std::uint64_t next_page() const { return next_page_; }
  std::uint64_t next_value() const { return next_value_; }

 private:
  class Nodes final : public indexes::NodeStore {
   public:
    explicit Nodes(ReplayStore* s) : s_(s) {}
    Result<indexes::NodeId> Put(std::shared_ptr<const indexes::MapNode> node) override;
    Result<std::shared_ptr<const indexes::MapNode>> Get(indexes::NodeId id) const override;

   private:
    ReplayStore* s_;
  };
  class Values final : public indexes::ValueStore {
   public:
    explicit Values(ReplayStore* s) : s_(s) {}
    Result<indexes::ValueRef> Put(std::string_view value) override;
    Result<std::string> Get(indexes::ValueRef ref) const override;

   private:
    ReplayStore* s_;
  };

  indexes::ViewStore* base_;
  const std::uint64_t first_id_;
  std::optional<indexes::StateRecord> latest_;
  Hooks hooks_;
  Nodes nodes_api_;
  Values values_api_;
  std::unordered_map<indexes::NodeId, std::shared_ptr<const indexes::MapNode>> pages_;
  std::unordered_map<indexes::ValueRef, std::string> values_;
  std::uint64_t next_page_, next_value_;            // next ids to hand out
  indexes::PutMark committed_;                      // Mark() at the last commit
  size_t kept_after_collect_ = 0;
};

}  // namespace vellum::audit

#endif  // VELLUM_AUDIT_REPLAY_STORE_H_
