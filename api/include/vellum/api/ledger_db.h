// LedgerDb: one ledger with its views — the journal (source of truth), the
// authenticated maps it projects into, and the wiring between them. This is
// what vellumd serves and what vellum-audit replays (DESIGN.md, "The shape
// in one paragraph"); it holds no gRPC.
//
// Directory layout: DIR/journal (the journal store and signing key) and
// DIR/views (map pages, values, state records; a cache of the journal).
//
// Every block: the commit thread projects the block's transactions into map
// changes, prepares the new state (Views::PrepareBlock) and puts its catalog
// root, the state root, into the header; the block is written; then the
// state is committed (or rolled back if the write failed). A transaction
// whose operations the state refuses (malformed, a map spec that conflicts)
// is left out of its block and fails alone.
//
// Open() brings the views up to the journal: it checks that the views'
// newest state has the state root of its block header, then replays the
// journal's later blocks, checking every recomputed state root against its
// header (DATA_LOSS naming the first block that differs).
//
// Thread-safety: all public methods are thread-safe.
#ifndef VELLUM_API_LEDGER_DB_H_
#define VELLUM_API_LEDGER_DB_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/indexes/map_ops.h"
#include "vellum/indexes/view_store.h"
#include "vellum/indexes/views.h"
#include "vellum/engines/document/doc_ops.h"
#include "vellum/engines/document/filter.h"
#include "vellum/engines/kv/kv_ops.h"
#include "vellum/engines/kv/kv_query.h"
#include "vellum/journal/ledger.h"
#include "vellum/merkle/note.h"
#include "vellum/verifier/view_proof.h"

namespace vellum::api {

namespace internal {
class ReadCache;
}  // namespace internal

struct LedgerDbOptions {
  journal::LedgerOptions journal;  // `state` is set by LedgerDb
  indexes::LmdbViewStoreOptions view_store;
  indexes::ViewsOptions views;
  // Tests only: sees (and may change) each block's state root before it goes
  // into the header, so a test can make the server commit a wrong one.
  std::function<void(std::uint64_t height, merkle::Hash& state_root)> state_root_hook_for_testing;
};

// A condition a transaction needs at commit time: `key` of `map` holds
// `expected` (nullopt: is absent). Compare-and-set writes carry one.
struct Precondition {
  indexes::MapId map;
  std::string key;
  std::optional<std::string> expected;
};

// What a transaction does to the views, decoded and validated (pure): raw
// map operations (0x01xx) and key-value operations (0x02xx).
struct TransactionEffects {
  std::vector<indexes::MapOp> writes;
  std::vector<Precondition> preconditions;
  // Sorted-set operations read the current score, so they become writes only
  // when their block is projected.
  std::vector<engines::kv::ZsetOp> zset_ops;
  // Document operations read the current revision, likewise.
  std::vector<engines::document::DocOp> doc_ops;
  // Maps the transaction creates even if it writes no entry (a new index).
  std::vector<std::pair<indexes::MapId, indexes::MapSpec>> creates;
};
// InvalidArgument naming the operation index for an unknown kind or a
// malformed body.
Result<TransactionEffects> ProjectTransaction(const journal::Transaction& tx);

// Projects transactions in order onto `state` (read through `views`), as the
// block committed at `block_time_us` (its header's timestamp): the
// accepted ones' changes, merged per map, and a verdict per transaction
// (non-OK: refused, no effect — INVALID_ARGUMENT, FAILED_PRECONDITION for a
// conflicting map spec, ABORTED for a failed comparison). Preconditions see
// the writes of earlier accepted transactions of the same block. The commit
// thread, replay and the audit all use it. `decoded[i]`, where given (not
// null), is ProjectTransaction(txs[i]) computed earlier, which is consumed
// instead of decoding txs[i] again.
struct BlockProjection {
  std::vector<indexes::MapChange> changes;
  std::vector<Status> verdicts;
};
BlockProjection ProjectBlock(const indexes::Views& views, const indexes::StateView& state,
                             std::span<const journal::Transaction> txs, std::int64_t block_time_us,
                             std::span<TransactionEffects* const> decoded = {});

// Replays blocks [from, to) of `journal` into `views` (whose current state
// must be block from-1), checking each state root against its header.
Status ReplayBlocks(const journal::Snapshot& journal, std::uint64_t from, std::uint64_t to, indexes::Views& views);

// The system map of idempotency tokens: token -> u64 block height || u32
// index in the block of the accepted transaction that used it
// (docs/FORMAT.md, "Idempotency tokens").
indexes::MapId TokensMap();

// A state of the views as of some block, readable for as long as the handle
// lives (it may own a private replay of the journal).
struct StateAt {
  std::shared_ptr<const indexes::StateView> state;
  indexes::Views* views = nullptr;  // reads and proofs go through it
  std::shared_ptr<void> keepalive;
};

class LedgerDb final : private journal::StateHook {
 public:
  static Result<std::unique_ptr<LedgerDb>> Create(const std::string& dir, std::string_view name,
                                                  const LedgerDbOptions& options);
  static Result<std::unique_ptr<LedgerDb>> Open(const std::string& dir, const LedgerDbOptions& options);
  ~LedgerDb() override;
  LedgerDb(const LedgerDb&) = delete;
  LedgerDb& operator=(const LedgerDb&) = delete;

  journal::Ledger& journal() { return *ledger_; }
  indexes::Views& views() { return *views_; }
  indexes::ViewStore& view_store() { return *view_store_; }

  // Validates the operations, appends, and returns once durable. A
  // transaction whose client_token an earlier accepted transaction used is
  // refused with ALREADY_EXISTS (see FindToken).
  Result<journal::Receipt> Execute(journal::Transaction tx);
  // Same, without blocking: `done` runs on the journal's acknowledgement
  // thread (or at once for an invalid transaction); keep it short.
  void ExecuteAsync(journal::Transaction tx, std::function<void(Result<journal::Receipt>)> done);

  // The committed transaction that used idempotency token `token`, with its
  // receipt. NotFound if none has (yet).
  struct TokenUse {
    journal::Receipt receipt;
    journal::Transaction tx;
  };
  Result<TokenUse> FindToken(const std::string& token);

  // The views after block `height` (nullopt: the newest). Recent states come
  // from memory; older ones are rebuilt from the nearest durable state record
  // plus the journal blocks after it. OutOfRange beyond the newest block.
  Result<StateAt> State(std::optional<std::uint64_t> height = std::nullopt);

  // A key-value read without a proof (interactive transactions record it).
  Result<std::optional<std::string>> ReadKv(const StateAt& at, const std::string& ns, const std::string& key);
  // The live revision of a document without a proof (nullopt: none is live).
  Result<std::optional<engines::document::Revision>> ReadDoc(const StateAt& at, const std::string& collection,
                                                            const std::string& id);

  // A signed checkpoint (C2SP note) with its parsed body.
  struct SignedCheckpoint {
    std::string note;
    merkle::Checkpoint checkpoint;
  };
  // The newest signed checkpoint (signed now if the tree grew since the last
  // one). Parsed once per tree size: reads share it.
  Result<std::shared_ptr<const SignedCheckpoint>> LatestCheckpoint();
  // The stored checkpoint of a tree of `tree_size` blocks; NotFound if the
  // server never issued one.
  Result<std::shared_ptr<const SignedCheckpoint>> CheckpointOf(std::uint64_t tree_size);

  // The proof chain from the tree of `tree_size` blocks (0: the newest) to
  // map `id`'s catalog entry in the state after block `height` (nullopt: the
  // newest). Map proofs for queries on `at` are then checked against the
  // entry's map root. OutOfRange for a block beyond tree_size. With an
  // explicit tree_size, the block proof and the catalog proof come from a
  // bounded cache keyed by (height, tree size) and (state root, map): every
  // read at the same height shares them.
  Result<verifier::ViewProof> ProveView(const StateAt& at, const indexes::MapId& id, std::uint64_t tree_size = 0);

  // A key-value answer: the chain to the namespace's catalog entry and the
  // map proof of the query (empty when the namespace does not exist). The
  // client checks it with verifier::VerifyViewProof and then
  // engines::kv::VerifyKvGet / VerifyKvScan.
  struct KvAnswer {
    verifier::ViewProof view;
    merkle::MapProof map;
  };
  Result<KvAnswer> ProveKvGet(const StateAt& at, const std::string& ns, const std::string& key,
                              std::uint64_t tree_size = 0);
  Result<KvAnswer> ProveKvScan(const StateAt& at, const std::string& ns, const engines::kv::KvScan& scan,
                               std::uint64_t tree_size = 0);

  // Sorted sets (leaderboards). A rank answer carries the members map's
  // answer (the score) and the scores map's answer (the position); top-n
  // and score ranges read the scores map only. Checked with
  // engines::kv::VerifyZsetRank / VerifyZsetTop / VerifyZsetScoreRange.
  struct ZsetRankAnswer {
    KvAnswer members;
    KvAnswer scores;
  };
  Result<ZsetRankAnswer> ProveZsetRank(const StateAt& at, const std::string& ns, const std::string& set,
                                       const std::string& member, std::uint64_t tree_size = 0);
  Result<KvAnswer> ProveZsetTop(const StateAt& at, const std::string& ns, const std::string& set, std::uint64_t n,
                                std::uint64_t tree_size = 0);
  // Documents: a proven full scan of a collection's live documents (checked
  // with engines::document::VerifyFind, which applies the filter), and a
  // document's proven revision history (VerifyHistory).
  Result<KvAnswer> ProveDocScan(const StateAt& at, const std::string& collection, std::uint64_t tree_size = 0);
  Result<KvAnswer> ProveDocHistory(const StateAt& at, const std::string& collection, const std::string& id,
                                   std::uint64_t tree_size = 0);
  // Index-backed finds. A plan reads the index on `path`, intersecting the
  // bounds of every condition on it when `single_valued` (no document gives
  // the index two values: engines::document::kMultikeyKey is absent).
  struct DocPlan {
    std::string path;
    bool single_valued = false;
  };
  // The declared index of `collection` in `at` whose ranges for `filter`
  // (engines::document::IndexRanges) hold the fewest entries, single-valued
  // where it is, or nullopt when none beats a full scan.
  Result<std::optional<DocPlan>> ChooseDocIndex(const StateAt& at, const std::string& collection,
                                                const engines::document::Filter& filter);
  // The proofs of `plan`: for a single-valued plan first the absence of the
  // multikey count, then one answer per range (checked with
  // VerifyIndexedFind). FailedPrecondition if `path` is not an index of the
  // collection in `at`, or is not single-valued when the plan says so.
  Result<std::vector<KvAnswer>> ProveDocIndexed(const StateAt& at, const std::string& collection, const DocPlan& plan,
                                                std::span<const merkle::MapRangeQuery> ranges,
                                                std::uint64_t tree_size = 0);

  Result<KvAnswer> ProveZsetScoreRange(const StateAt& at, const std::string& ns, const std::string& set,
                                       std::int64_t min, std::int64_t max, std::uint64_t limit,
                                       std::uint64_t tree_size = 0);

 private:
  LedgerDb() = default;
  static Result<std::unique_ptr<LedgerDb>> OpenWith(const std::string& dir, const LedgerDbOptions& options,
                                                    std::optional<std::string> create_name);

  // Decodes the transaction's operations (ProjectTransaction) on the
  // submitting thread; ApplyBlock takes the result instead of decoding again.
  Result<std::unique_ptr<journal::PreparedTransaction>> PrepareTransaction(const journal::Transaction& tx) override;
  Result<merkle::Hash> ApplyBlock(std::uint64_t height, std::int64_t timestamp_us,
                                  std::span<const journal::Transaction> txs,
                                  std::span<std::unique_ptr<journal::PreparedTransaction>> prepared,
                                  std::span<Status> verdicts) override;
  void CommitBlock(std::uint64_t height) override;
  void AbortBlock(std::uint64_t height) override;

  std::unique_ptr<indexes::ViewStore> view_store_;
  std::unique_ptr<indexes::Views> views_;
  std::unique_ptr<journal::Ledger> ledger_;
  std::function<void(std::uint64_t, merkle::Hash&)> state_root_hook_;
  std::unique_ptr<internal::ReadCache> read_cache_;
};

}  // namespace vellum::api

#endif  // VELLUM_API_LEDGER_DB_H_
