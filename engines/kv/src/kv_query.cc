#include "vellum/engines/kv/kv_query.h"

#include "vellum/base/encoding.h"
#include "vellum/base/tuple.h"

namespace vellum::engines::kv {
namespace {

Status CheckKind(const merkle::CatalogEntry& entry) {
  if (entry.kind != merkle::MapKind::kPlain || entry.schema_hash != merkle::kZeroHash) {
    return VerificationFailed({"kv.map_kind", "plain map without schema",
                               "kind " + std::to_string(static_cast<int>(entry.kind)), 0, entry.count});
  }
  return Status::Ok();
}

}  // namespace

merkle::MapRangeQuery ToRangeQuery(const KvScan& scan) {
  merkle::MapRangeQuery q;
  if (scan.prefix.has_value()) {
    q.lo = *scan.prefix;
    q.hi = PrefixSuccessor(*scan.prefix);
  } else {
    q.lo = scan.lo;
    q.hi = scan.hi;
  }
  q.limit = scan.limit;
  q.reverse = scan.reverse;
  return q;
}

Result<KvScanResult> VerifyKvScan(const KvScan& scan, const std::optional<merkle::CatalogEntry>& entry,
                                  const merkle::MapProof& proof) {
  KvScanResult out;
  if (!entry.has_value()) return out;
  VELLUM_RETURN_IF_ERROR(CheckKind(*entry));
  VELLUM_ASSIGN_OR_RETURN(merkle::MapRangeResult range, merkle::VerifyMapRange(entry->map_root, ToRangeQuery(scan), proof));
  out.entries.reserve(range.entries.size());
  for (auto& e : range.entries) out.entries.push_back({std::move(e.key), std::move(e.value)});
  out.has_more = range.has_more;
  out.next_key = std::move(range.next_key);
  return out;
}

Result<std::optional<std::string>> VerifyKvGet(std::string_view key, const std::optional<merkle::CatalogEntry>& entry,
                                               const merkle::MapProof& proof) {
  if (!entry.has_value()) return std::optional<std::string>();
  VELLUM_RETURN_IF_ERROR(CheckKind(*entry));
  VELLUM_ASSIGN_OR_RETURN(merkle::MapGetResult got, merkle::VerifyMapGet(entry->map_root, key, proof));
  if (!got.entry.has_value()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(got.entry->value));
}

std::string ZsetScoreKey(std::int64_t score, std::string_view member) {
  std::string key;
  // Cannot fail: an int64 and a byte string.
  (void)AppendTuple(&key, Tuple{TupleElement{score}, TupleElement{TupleBytes{std::string(member)}}});
  return key;
}

Result<std::pair<std::int64_t, std::string>> DecodeZsetScoreKey(std::string_view key) {
  VELLUM_ASSIGN_OR_RETURN(Tuple t, DecodeTuple(key));
  if (t.size() != 2 || !std::holds_alternative<std::int64_t>(t[0].value) ||
      !std::holds_alternative<TupleBytes>(t[1].value)) {
    return InvalidArgument("a sorted-set score key is tuple(int64, bytes)");
  }
  return std::make_pair(std::get<std::int64_t>(t[0].value), std::get<TupleBytes>(t[1].value).data);
}

std::string EncodeScore(std::int64_t score) { return BigEndianKey(static_cast<std::uint64_t>(score)); }

Result<std::int64_t> DecodeScore(std::string_view bytes) {
  if (bytes.size() != 8) return InvalidArgument("a sorted-set score is 8 bytes, got " + std::to_string(bytes.size()));
  return static_cast<std::int64_t>(GetBigEndian64(bytes.data()));
}

merkle::MapRangeQuery ZsetTopQuery(std::uint64_t n) { return {"", std::nullopt, n, true}; }

merkle::MapRangeQuery ZsetScoreRangeQuery(std::int64_t min, std::int64_t max, std::uint64_t limit) {
  std::string lo, hi_prefix;
  (void)AppendTuple(&lo, Tuple{TupleElement{min}});
  (void)AppendTuple(&hi_prefix, Tuple{TupleElement{max}});
  return {lo, PrefixSuccessor(hi_prefix), limit, false};
}

namespace {

Status CheckSpec(const merkle::CatalogEntry& entry, merkle::MapKind kind, const char* what) {
  if (entry.kind != kind || entry.schema_hash != merkle::kZeroHash) {
    return VerificationFailed({std::string("zset.") + what + "_kind", std::to_string(static_cast<int>(kind)),
                               std::to_string(static_cast<int>(entry.kind)), 0, entry.count});
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<ZsetMember>> ZsetMembersOf(const std::vector<merkle::MapEntry>& entries) {
  std::vector<ZsetMember> out;
  out.reserve(entries.size());
  for (const auto& e : entries) {
    auto decoded = DecodeZsetScoreKey(e.key);
    if (!decoded.ok()) return VerificationFailed({"zset.score_key", "tuple(int64, bytes)", e.key.substr(0, 32), e.rank, 0});
    out.push_back({std::move(decoded->second), decoded->first});
  }
  return out;
}

Result<std::optional<ZsetRank>> VerifyZsetRank(std::string_view member,
                                               const std::optional<merkle::CatalogEntry>& members_entry,
                                               const merkle::MapProof& members_proof,
                                               const std::optional<merkle::CatalogEntry>& scores_entry,
                                               const merkle::MapProof& scores_proof) {
  if (!members_entry.has_value()) return std::optional<ZsetRank>();
  VELLUM_RETURN_IF_ERROR(CheckSpec(*members_entry, merkle::MapKind::kInt64Aggregate, "members"));
  VELLUM_ASSIGN_OR_RETURN(merkle::MapGetResult m, merkle::VerifyMapGet(members_entry->map_root, member, members_proof));
  if (!m.entry.has_value()) return std::optional<ZsetRank>();
  VELLUM_ASSIGN_OR_RETURN(std::int64_t score, DecodeScore(m.entry->value));
  if (score != m.entry->aggregate) {
    return VerificationFailed({"zset.score", std::to_string(m.entry->aggregate), std::to_string(score), 0, m.total});
  }
  if (!scores_entry.has_value()) {
    return VerificationFailed({"zset.scores_map", "present", "absent", 0, m.total});
  }
  VELLUM_RETURN_IF_ERROR(CheckSpec(*scores_entry, merkle::MapKind::kPlain, "scores"));
  const std::string key = ZsetScoreKey(score, member);
  VELLUM_ASSIGN_OR_RETURN(merkle::MapGetResult s, merkle::VerifyMapGet(scores_entry->map_root, key, scores_proof));
  if (!s.entry.has_value() || s.total != m.total) {
    return VerificationFailed({"zset.scores_map", std::to_string(m.total) + " members with this one",
                               std::to_string(s.total) + (s.entry ? " with it" : " without it"), 0, m.total});
  }
  return std::optional<ZsetRank>(ZsetRank{score, s.total - 1 - s.entry->rank, s.total});
}

Result<std::vector<ZsetMember>> VerifyZsetTop(std::uint64_t n, const std::optional<merkle::CatalogEntry>& scores_entry,
                                              const merkle::MapProof& proof) {
  if (!scores_entry.has_value()) return std::vector<ZsetMember>();
  VELLUM_RETURN_IF_ERROR(CheckSpec(*scores_entry, merkle::MapKind::kPlain, "scores"));
  VELLUM_ASSIGN_OR_RETURN(merkle::MapRangeResult r, merkle::VerifyMapRange(scores_entry->map_root, ZsetTopQuery(n), proof));
  return ZsetMembersOf(r.entries);
}

Result<std::vector<ZsetMember>> VerifyZsetScoreRange(std::int64_t min, std::int64_t max, std::uint64_t limit,
                                                     const std::optional<merkle::CatalogEntry>& scores_entry,
                                                     const merkle::MapProof& proof) {
  if (!scores_entry.has_value() || min > max) return std::vector<ZsetMember>();
  VELLUM_RETURN_IF_ERROR(CheckSpec(*scores_entry, merkle::MapKind::kPlain, "scores"));
  VELLUM_ASSIGN_OR_RETURN(merkle::MapRangeResult r,
                          merkle::VerifyMapRange(scores_entry->map_root, ZsetScoreRangeQuery(min, max, limit), proof));
  return ZsetMembersOf(r.entries);
}

}  // namespace vellum::engines::kv
