#include "vellum/engines/kv/kv_query.h"

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

}  // namespace vellum::engines::kv
