// The authenticated ordered map: a persistent (copy-on-write) Merkle B+-tree
// whose every read comes with a proof that merkle/map_proof.h verifies
// (docs/FORMAT.md, "Algorithm").
//
// Invariants of every version:
//  - entries are sorted by key (memcmp order), keys unique, keys <= 4 KiB,
//    values <= 1 MiB (values live in the ValueStore, the tree holds their hash);
//  - all leaf pages are at the same depth; every page holds at most
//    max_page_items items and every page but the root at least half of that;
//    an internal root has at least two children;
//  - the root hash is merkle::MapRootHash of the root page's digest.
// Apply() never modifies a stored page: it writes new pages for the touched
// paths, each sealed (hashed) exactly once per batch, and returns a new
// MapVersion; every older MapVersion stays readable and provable as long as
// its pages are kept by the NodeStore.
//
// Determinism: the root hash is a pure function of (kind, max_page_items, the
// base version, the batch as a set of final per-key mutations). The same
// sequence of batches from the empty map always gives the same roots, byte for
// byte. Two different batchings of the same final key set may give different
// roots (the page boundaries depend on history).
//
// Thread-safety: an AuthenticatedMap holds no mutable state of its own; it is
// as thread-safe as the stores it is given (the in-memory stores are not).
// Apply() may build pages on a process-wide helper thread, which touches no
// store and has finished before Apply() returns.
#ifndef VELLUM_INDEXES_AUTHENTICATED_MAP_H_
#define VELLUM_INDEXES_AUTHENTICATED_MAP_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/indexes/node_store.h"
#include "vellum/merkle/map_proof.h"

namespace vellum::indexes {

// The default (and format-constant) page fanout; tests may use smaller ones.
inline constexpr size_t kDefaultMaxPageItems = 32;

struct MapOptions {
  merkle::MapKind kind = merkle::MapKind::kPlain;
  // Even, 4..256. Part of the map's definition: changing it changes roots.
  size_t max_page_items = kDefaultMaxPageItems;
  NodeStore* nodes = nullptr;    // not owned; must outlive the map
  ValueStore* values = nullptr;  // not owned; must outlive the map
  // Threads that build and hash a batch's new pages (1 or 2; 2 only pays off
  // for batches of many pages). Roots and node ids do not depend on it.
  unsigned build_threads = 2;
};

// A handle to one version: what the lead persists per block (root page id and
// root hash) and what every read takes.
struct MapVersion {
  NodeId root = kNoNode;     // kNoNode: empty map
  merkle::MapDigest digest;  // of the root page (count, aggregate)
  merkle::Hash root_hash{};  // merkle::MapRootHash(kind, &digest)
  std::uint64_t count() const { return digest.count; }
};

struct MapMutation {
  enum class Op : std::uint8_t { kPut = 0, kDelete = 1 };
  Op op = Op::kPut;
  std::string key;
  std::string value;           // kPut
  std::int64_t aggregate = 0;  // kPut in a kInt64Aggregate map

  static MapMutation Put(std::string k, std::string v, std::int64_t agg = 0) {
    return {Op::kPut, std::move(k), std::move(v), agg};
  }
  static MapMutation Delete(std::string k) { return {Op::kDelete, std::move(k), {}, 0}; }
};

// Shape statistics of one version, for tests and benchmarks.
struct MapShape {
  std::uint64_t height = 0;  // pages on a root-to-leaf path; 0 for empty
  std::uint64_t pages = 0;
  std::uint64_t max_page_bytes = 0;  // largest EncodeMapNode size
};

class AuthenticatedMap {
 public:
  // InvalidArgument on bad options (null stores, odd or out-of-range fanout).
  static Result<AuthenticatedMap> Create(MapOptions options);

  merkle::MapKind kind() const { return options_.kind; }
  MapVersion Empty() const;

  // Applies a batch to `base` and returns the new version. Mutations of the
  // same key: the last one in the batch wins. Deleting an absent key is a
  // no-op. InvalidArgument if a key exceeds 4 KiB or a value 1 MiB (nothing is
  // written then). Other errors come from the stores.
  Result<MapVersion> Apply(const MapVersion& base, std::vector<MapMutation> batch) const;

  // Reads. Each returns exactly what the matching merkle::VerifyMap* returns
  // for the proof from the matching Prove* call.
  Result<merkle::MapGetResult> Get(const MapVersion& v, std::string_view key) const;
  Result<merkle::MapRangeResult> Range(const MapVersion& v, const merkle::MapRangeQuery& q) const;
  Result<merkle::MapRangeSummary> Summary(const MapVersion& v, std::string_view lo,
                                          const std::optional<std::string>& hi) const;
  Result<merkle::MapRankResult> AtRank(const MapVersion& v, std::uint64_t rank) const;

  // Proofs for the reads above, against v.root_hash.
  Result<merkle::MapProof> ProveGet(const MapVersion& v, std::string_view key) const;
  Result<merkle::MapProof> ProveRange(const MapVersion& v, const merkle::MapRangeQuery& q) const;
  Result<merkle::MapProof> ProveSummary(const MapVersion& v, std::string_view lo,
                                        const std::optional<std::string>& hi) const;
  Result<merkle::MapProof> ProveRank(const MapVersion& v, std::uint64_t rank) const;

  // Query helpers: first/last n entries, entries starting with a prefix.
  static merkle::MapRangeQuery FirstN(std::uint64_t n) { return {"", std::nullopt, n, false}; }
  static merkle::MapRangeQuery LastN(std::uint64_t n) { return {"", std::nullopt, n, true}; }
  static merkle::MapRangeQuery Prefix(std::string_view prefix, std::uint64_t limit, bool reverse = false);

  // Checks every invariant listed above (slow, walks the whole version):
  // Internal with a description on the first violation.
  Status CheckInvariants(const MapVersion& v) const;
  Result<MapShape> Shape(const MapVersion& v) const;

 private:
  explicit AuthenticatedMap(MapOptions options) : options_(options) {}

  struct Plan;  // ranks to reveal and ranks to return, shared by reads and proofs
  class Builder;

  // An entry found by one descent: its page and index there, and its rank.
  struct Located {
    std::shared_ptr<const MapNode> page;  // null if no entry is there
    size_t index = 0;
    std::uint64_t rank = 0;
  };
  // rank = LowerBound(key); page/index set iff the entry at that rank has `key`.
  Result<Located> Find(const MapVersion& v, std::string_view key) const;
  Result<std::uint64_t> LowerBound(const MapVersion& v, std::string_view key) const;
  Result<Located> ItemAt(const MapVersion& v, std::uint64_t rank) const;
  Result<merkle::MapEntry> EntryOf(const Located& at, std::uint64_t total) const;
  // Appends the entries (with values) of ranks [first, last), ascending, in one walk.
  Status CollectEntries(const MapVersion& v, std::uint64_t first, std::uint64_t last,
                        std::vector<merkle::MapEntry>* out) const;
  Result<Plan> PlanRange(const MapVersion& v, const merkle::MapRangeQuery& q) const;
  Result<Plan> PlanSummary(const MapVersion& v, std::string_view lo, const std::optional<std::string>& hi) const;
  Result<merkle::MapProof> Prove(const MapVersion& v, const Plan& plan) const;

  MapOptions options_;
};

}  // namespace vellum::indexes

#endif  // VELLUM_INDEXES_AUTHENTICATED_MAP_H_
