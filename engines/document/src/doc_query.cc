#include "vellum/engines/document/doc_query.h"

#include <algorithm>
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

namespace {

// The value at a dotted path through objects only, or nullptr.
const nlohmann::json* At(const nlohmann::json& doc, std::string_view path) {
  const nlohmann::json* v = &doc;
  while (true) {
    const size_t dot = path.find('.');
    const std::string part(path.substr(0, dot));
    if (!v->is_object()) return nullptr;
    auto it = v->find(part);
    if (it == v->end()) return nullptr;
    v = &*it;
    if (dot == std::string_view::npos) return v;
    path.remove_prefix(dot + 1);
  }
}

// Total order for sorting: missing < numbers < strings < everything else
// (by canonical text).
int CompareForSort(const nlohmann::json* a, const nlohmann::json* b) {
  auto rank = [](const nlohmann::json* v) { return v == nullptr ? 0 : v->is_number() ? 1 : v->is_string() ? 2 : 3; };
  const int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra == 0) return 0;
  if (ra == 1) {
    const double x = a->get<double>(), y = b->get<double>();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  const std::string x = ra == 2 ? a->get<std::string>() : CanonicalJson(*a).value();
  const std::string y = ra == 2 ? b->get<std::string>() : CanonicalJson(*b).value();
  return x < y ? -1 : (x > y ? 1 : 0);
}

// Copies the value at `path` from `src` into `dst`, creating parent objects.
void Project(const nlohmann::json& src, std::string_view path, nlohmann::json& dst) {
  const nlohmann::json* v = At(src, path);
  if (v == nullptr) return;
  nlohmann::json* out = &dst;
  while (true) {
    const size_t dot = path.find('.');
    const std::string part(path.substr(0, dot));
    if (dot == std::string_view::npos) {
      (*out)[part] = *v;
      return;
    }
    out = &(*out)[part];
    path.remove_prefix(dot + 1);
  }
}

}  // namespace

std::vector<FoundDocument> ApplyFindOptions(std::vector<FoundDocument> docs, const FindOptions& options) {
  if (options.sort_path.has_value()) {
    std::stable_sort(docs.begin(), docs.end(), [&](const FoundDocument& a, const FoundDocument& b) {
      int c = CompareForSort(At(a.document, *options.sort_path), At(b.document, *options.sort_path));
      if (options.descending) c = -c;
      return c != 0 ? c < 0 : a.id < b.id;
    });
  }
  const std::uint64_t skip = std::min<std::uint64_t>(options.skip, docs.size());
  docs.erase(docs.begin(), docs.begin() + static_cast<long>(skip));
  if (docs.size() > options.limit) docs.resize(static_cast<size_t>(options.limit));
  if (!options.projection.empty()) {
    for (auto& d : docs) {
      nlohmann::json kept = nlohmann::json::object();
      for (const auto& path : options.projection) Project(d.document, path, kept);
      d.document = std::move(kept);
    }
  }
  return docs;
}

}  // namespace vellum::engines::document
