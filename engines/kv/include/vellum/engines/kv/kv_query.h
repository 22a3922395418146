// Key-value queries and their pure verification (the engine's evaluator):
// get and scans (range, prefix, limit, reverse, continuation), checked
// against a namespace's catalog entry proven under a block's state root
// (verifier::VerifyViewProof). A client runs these without trusting the
// server: a missing, extra, altered or reordered entry fails.
//
// Thread-safety: pure functions.
#ifndef VELLUM_ENGINES_KV_KV_QUERY_H_
#define VELLUM_ENGINES_KV_KV_QUERY_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/merkle/catalog.h"
#include "vellum/merkle/map_proof.h"

namespace vellum::engines::kv {

// Keys in [lo, hi) — or starting with `prefix` when set (lo/hi ignored) —
// ascending (or descending if `reverse`), at most `limit`.
struct KvScan {
  std::string lo;
  std::optional<std::string> hi;
  std::optional<std::string> prefix;
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  bool reverse = false;
};

struct KvEntry {
  std::string key;
  std::string value;
  bool operator==(const KvEntry&) const = default;
};

struct KvScanResult {
  std::vector<KvEntry> entries;
  bool has_more = false;                // more entries match than were returned
  std::optional<std::string> next_key;  // where the next page starts (see merkle::MapRangeResult)
};

// The map range a scan reads.
merkle::MapRangeQuery ToRangeQuery(const KvScan& scan);

// Verifies a scan answer. `entry` is the namespace's verified catalog entry
// (nullopt: the namespace is proven not to exist, and the answer is empty
// whatever `proof` holds). Errors: InvalidArgument (malformed),
// kDataLoss with the failed check ("map.root", "map.range.gap", ...), or
// "kv.map_kind" if the entry is not a key-value namespace.
Result<KvScanResult> VerifyKvScan(const KvScan& scan, const std::optional<merkle::CatalogEntry>& entry,
                                  const merkle::MapProof& proof);

// Verifies a get answer: the value, or nullopt if the key is proven absent.
Result<std::optional<std::string>> VerifyKvGet(std::string_view key, const std::optional<merkle::CatalogEntry>& entry,
                                               const merkle::MapProof& proof);

// ---- Sorted sets (layout in kv_ops.h) ---------------------------------------

// The scores-map key of (score, member): tuple(int64, bytes), so byte order
// is (score, member) order.
std::string ZsetScoreKey(std::int64_t score, std::string_view member);
// InvalidArgument unless `key` is exactly such a tuple.
Result<std::pair<std::int64_t, std::string>> DecodeZsetScoreKey(std::string_view key);
std::string EncodeScore(std::int64_t score);  // 8 bytes big-endian two's complement
Result<std::int64_t> DecodeScore(std::string_view bytes);

struct ZsetMember {
  std::string member;
  std::int64_t score = 0;
  bool operator==(const ZsetMember&) const = default;
};

struct ZsetRank {
  std::int64_t score = 0;
  std::uint64_t rank = 0;   // 0 = highest score (ties: higher member bytes first)
  std::uint64_t total = 0;  // members in the set
};

// The members of scores-map entries (as a range read returns them), in
// order. kDataLoss "zset.score_key" if a key is not a (score, member) tuple.
Result<std::vector<ZsetMember>> ZsetMembersOf(const std::vector<merkle::MapEntry>& entries);

// The map ranges the leaderboard queries read on the scores map.
merkle::MapRangeQuery ZsetTopQuery(std::uint64_t n);
merkle::MapRangeQuery ZsetScoreRangeQuery(std::int64_t min, std::int64_t max, std::uint64_t limit);

// A member's score and rank: a get proof on the members map (its score) and
// a get proof on the scores map for (score, member), whose proven position
// is the rank. nullopt: the member is proven absent. Both entries come from
// verified catalog entries of the same block.
Result<std::optional<ZsetRank>> VerifyZsetRank(std::string_view member,
                                               const std::optional<merkle::CatalogEntry>& members_entry,
                                               const merkle::MapProof& members_proof,
                                               const std::optional<merkle::CatalogEntry>& scores_entry,
                                               const merkle::MapProof& scores_proof);
// The n highest-scoring members, highest first.
Result<std::vector<ZsetMember>> VerifyZsetTop(std::uint64_t n, const std::optional<merkle::CatalogEntry>& scores_entry,
                                              const merkle::MapProof& proof);
// Members with min <= score <= max, lowest first, at most `limit`.
Result<std::vector<ZsetMember>> VerifyZsetScoreRange(std::int64_t min, std::int64_t max, std::uint64_t limit,
                                                     const std::optional<merkle::CatalogEntry>& scores_entry,
                                                     const merkle::MapProof& proof);

}  // namespace vellum::engines::kv

#endif  // VELLUM_ENGINES_KV_KV_QUERY_H_
