#include "vellum/engines/document/doc_query.h"

#include <limits>

#include "vellum/base/tuple.h"
#include "vellum/engines/document/canonical_json.h"

namespace vellum::engines::document {

merkle::MapRangeQuery FindScanQuery() { return {"", std::nullopt, std::numeric_limits<std::uint64_t>::max(), false}; }

merkle::MapRangeQuery HistoryQuery(std::string_view id) {
  const std::string prefix = RevisionPrefix(id);
  return {prefix, PrefixSuccessor(prefix), std::numeric_limits<std::uint64_t>::max(), false};
}

Result<std::vector<FoundDocument>> VerifyFind(const Filter& filter, const std::optional<merkle::CatalogEntry>& current,
                                              const merkle::MapProof& proof) {
  std::vector<FoundDocument> out;
  if (!current.has_value()) return out;
  VELLUM_ASSIGN_OR_RETURN(merkle::MapRangeResult scan, merkle::VerifyMapRange(current->map_root, FindScanQuery(), proof));
  if (scan.has_more) return VerificationFailed({"doc.find.complete", "the whole collection", "a partial scan", 0, scan.total});
  for (auto& e : scan.entries) {
    VELLUM_ASSIGN_OR_RETURN(Revision rev, DecodeRevision(e.value));
    if (rev.deleted) continue;
    VELLUM_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJson(rev.json));
    if (!filter.Matches(doc)) continue;
    out.push_back({std::move(e.key), std::move(rev), std::move(doc)});
  }
  return out;
}

Result<std::vector<Revision>> VerifyHistory(std::string_view id, const std::optional<merkle::CatalogEntry>& revisions,
                                            const merkle::MapProof& proof) {
  std::vector<Revision> out;
  if (!revisions.has_value()) return out;
  VELLUM_ASSIGN_OR_RETURN(merkle::MapRangeResult range, merkle::VerifyMapRange(revisions->map_root, HistoryQuery(id), proof));
  for (const auto& e : range.entries) {
    VELLUM_ASSIGN_OR_RETURN(Revision rev, DecodeRevision(e.value));
    if (e.key != RevisionKey(id, rev.version) || rev.version != out.size() + 1) {
      return VerificationFailed({"doc.history.version", std::to_string(out.size() + 1), std::to_string(rev.version),
                                 out.size(), range.total});
    }
    out.push_back(std::move(rev));
  }
  return out;
}

}  // namespace vellum::engines::document
