// The authenticated ordered map's hashing and its pure proof verification
// (docs/FORMAT.md). Nothing here touches storage: the server (indexes/)
// builds trees and proofs with these functions, and a verifier checks proofs
// with them alone.
//
// Logical structure. A map is a sequence of entries sorted by key (raw bytes,
// memcmp order, each key at most kMaxMapKeySize bytes). Each entry carries the
// hash of its value and, in a map of kind kInt64Aggregate, an int64 aggregate
// field. The entries are the leaves of a binary Merkle tree; every node's
// digest is (hash, count of entries below it, aggregate of them). An inner
// node's hash commits to both children's full digests, so a pruned subtree's
// count and aggregate are authenticated by its parent. The shape of the binary
// tree is chosen by the storage layer (pages of a B+-tree, each a balanced
// binary tree, see MapPageDigest); a verifier never needs to know it: it
// derives every revealed entry's position (rank) from the counts.
//
// The committed root is MapRootHash(kind, top digest), so the map kind (fixed
// at creation), the number of entries and the aggregate over the whole map are
// all committed in the root.
//
// Proofs. Every proof is a pruned tree (MapProof): a pre-order sequence of
// inner nodes, revealed entries (with or without the value) and pruned
// subtrees given by their digest. The Verify* functions recompute the root,
// compare it with the trusted one and then check, from the positions of the
// revealed entries, that the answer is complete: no entry in the queried
// range can hide in a pruned subtree.
//
// Errors: every Verify* returns kDataLoss with a VerificationError (check
// names "map.*") when the proof does not prove the answer, and
// kInvalidArgument when the proof is structurally malformed.
//
// Thread-safety: pure functions over values.
#ifndef VELLUM_MERKLE_MAP_PROOF_H_
#define VELLUM_MERKLE_MAP_PROOF_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/merkle/hasher.h"

namespace vellum::merkle {

inline constexpr size_t kMaxMapKeySize = 4096;
inline constexpr size_t kMaxMapValueSize = size_t{1} << 20;
// Deepest binary path a proof may contain (see docs/FORMAT.md, "Bounds").
inline constexpr size_t kMaxMapProofDepth = 128;

// Fixed when a map is created; committed in every node hash and the root.
enum class MapKind : std::uint8_t {
  kPlain = 0,           // entries carry no aggregate field
  kInt64Aggregate = 1,  // each entry carries an int64; nodes carry sum/min/max
};

using Int128 = __int128;

// Sum, min and max of the aggregate fields of a set of entries. The empty set
// has sum 0, min INT64_MAX, max INT64_MIN. The sum cannot overflow: at most
// 2^64 entries of magnitude at most 2^63.
struct MapAggregate {
  Int128 sum = 0;
  std::int64_t min = std::numeric_limits<std::int64_t>::max();
  std::int64_t max = std::numeric_limits<std::int64_t>::min();

  static MapAggregate Of(std::int64_t v) { return {v, v, v}; }
  void Add(const MapAggregate& o) {
    // Wrapping add: honest sums never overflow, forged proof input may.
    sum = static_cast<Int128>(static_cast<unsigned __int128>(sum) + static_cast<unsigned __int128>(o.sum));
    if (o.min < min) min = o.min;
    if (o.max > max) max = o.max;
  }
  bool operator==(const MapAggregate&) const = default;
};

// What a parent knows of a child, and what a proof gives for a pruned subtree.
struct MapDigest {
  Hash hash{};
  std::uint64_t count = 0;
  MapAggregate aggregate;  // identity for kPlain maps
  bool operator==(const MapDigest&) const = default;
};

// HashTagged(kTagMapValue, value).
Hash MapValueHash(std::string_view value);
// Digest of one entry: HashTagged(kTagMapLeaf, kind || u32 len || key ||
// value_hash [|| i64 aggregate]), count 1. `aggregate` is ignored for kPlain.
MapDigest MapLeafDigest(MapKind kind, std::string_view key, const Hash& value_hash, std::int64_t aggregate);
// Digest of an inner node: HashTagged(kTagMapInner, kind || D(left) || D(right))
// where D(d) = hash || u64 count [|| i128 sum || i64 min || i64 max].
MapDigest MapInnerDigest(MapKind kind, const MapDigest& left, const MapDigest& right);
// The committed root: HashTagged(kTagMapRoot, kind || D(top)); an empty map
// uses top = {32 zero bytes, count 0, empty aggregate}.
Hash MapRootHash(MapKind kind, const MapDigest* top);

// Split point of a page's balanced binary tree over n >= 2 items: the largest
// power of two smaller than n (as RFC 9162).
size_t MapPageSplit(size_t n);
// Digest of the balanced binary tree over `items` (at least one). If `inner`
// is not null it receives the items.size() - 1 inner digests in pre-order.
MapDigest MapPageDigest(MapKind kind, std::span<const MapDigest> items, std::vector<MapDigest>* inner);

// One node of a pruned tree, in pre-order.
struct MapProofNode {
  enum class Type : std::uint8_t {
    kPruned = 0,          // digest only
    kEntry = 1,           // key, value hash, aggregate
    kEntryWithValue = 2,  // key, value, aggregate (the value hash is recomputed)
    kInner = 3,           // followed by its left then its right subtree
  };
  Type type = Type::kPruned;
  MapDigest digest;         // kPruned
  std::string key;          // kEntry, kEntryWithValue
  Hash value_hash{};        // kEntry (ignored for kEntryWithValue)
  std::string value;        // kEntryWithValue
  std::int64_t aggregate = 0;  // entries of a kInt64Aggregate map
};

// A proof about one version of one map. `nodes` empty means the map is empty.
struct MapProof {
  MapKind kind = MapKind::kPlain;
  std::vector<MapProofNode> nodes;

  // Canonical encoding (docs/FORMAT.md, "Proof encoding").
  std::string Encode() const;
  // Strict: InvalidArgument on truncation, trailing bytes, unknown types,
  // oversized keys/values, a node sequence that is not exactly one tree, or a
  // tree deeper than kMaxMapProofDepth.
  static Result<MapProof> Decode(std::string_view bytes);
};

// An entry proven by a proof. `rank` is its position (0-based) in the map.
struct MapEntry {
  std::string key;
  std::string value;
  Hash value_hash{};
  std::int64_t aggregate = 0;
  std::uint64_t rank = 0;
  bool operator==(const MapEntry&) const = default;
};

struct MapGetResult {
  std::optional<MapEntry> entry;  // nullopt: the key is proven absent
  std::uint64_t total = 0;        // entries in the map
};
// Proves presence (with the value) or absence of `key`. Checks: "map.root",
// "map.order", "map.boundary" (the neighbours of an absent key are not
// adjacent), "map.value" (the entry's value is not revealed).
Result<MapGetResult> VerifyMapGet(const Hash& root, std::string_view key, const MapProof& proof);

// Entries with lo <= key < hi (hi nullopt: no upper bound), at most `limit`
// of them, ascending, or descending from the top of the range if `reverse`.
struct MapRangeQuery {
  std::string lo;
  std::optional<std::string> hi;
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  bool reverse = false;
};
struct MapRangeResult {
  std::vector<MapEntry> entries;  // in the order of the scan
  // True iff the range holds more entries than were returned; then next_key is
  // the first key not returned: forward, the next page is [next_key, hi);
  // reverse, the next page is [lo, next_key + "\0") read in reverse.
  bool has_more = false;
  std::optional<std::string> next_key;
  std::uint64_t total = 0;
};
// Proves that `entries` are exactly the first min(limit, n) entries of the
// range in scan order. Checks as VerifyMapGet plus "map.range.gap" (an entry
// of the range is not revealed).
Result<MapRangeResult> VerifyMapRange(const Hash& root, const MapRangeQuery& query, const MapProof& proof);

// Count (and, for kInt64Aggregate maps, sum/min/max) of the entries with
// lo <= key < hi, proven without revealing them.
struct MapRangeSummary {
  std::uint64_t count = 0;
  std::uint64_t first_rank = 0;  // rank of the first entry >= lo
  MapAggregate aggregate;        // empty aggregate for kPlain maps
  std::uint64_t total = 0;
};
// Checks as VerifyMapGet plus "map.summary.straddle" (a pruned subtree lies
// partly inside the range).
Result<MapRangeSummary> VerifyMapSummary(const Hash& root, std::string_view lo,
                                         const std::optional<std::string>& hi, const MapProof& proof);

struct MapRankResult {
  std::optional<MapEntry> entry;  // nullopt iff rank >= total
  std::uint64_t total = 0;
};
// The entry at position `rank`. Checks "map.root", "map.order", "map.rank"
// (the entry at that position is not revealed), "map.value".
Result<MapRankResult> VerifyMapRank(const Hash& root, std::uint64_t rank, const MapProof& proof);

}  // namespace vellum::merkle

#endif  // VELLUM_MERKLE_MAP_PROOF_H_
