// Document queries and their pure verification: find (a filter over a
// proven full scan of the collection) and history (a document's complete,
// proven revision list). A client re-runs these over the proven entries, so
// a left-out, added or altered document fails.
//
// Thread-safety: pure functions.
#ifndef VELLUM_ENGINES_DOCUMENT_DOC_QUERY_H_
#define VELLUM_ENGINES_DOCUMENT_DOC_QUERY_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vellum/base/status.h"
#include "vellum/engines/document/doc_ops.h"
#include "vellum/engines/document/filter.h"
#include "vellum/merkle/catalog.h"
#include "vellum/merkle/map_proof.h"

namespace vellum::engines::document {

struct FoundDocument {
  std::string id;
  Revision revision;
  nlohmann::json document;
};

// The map range a find reads (the whole `current` map; path indexes will
// narrow it).
merkle::MapRangeQuery FindScanQuery();
// The map range of a document's history (its prefix in `revisions`).
merkle::MapRangeQuery HistoryQuery(std::string_view id);

// Live documents matching `filter`, in id order, from a proven scan of the
// collection's `current` map (entry nullopt: the collection is proven absent).
Result<std::vector<FoundDocument>> VerifyFind(const Filter& filter, const std::optional<merkle::CatalogEntry>& current,
                                              const merkle::MapProof& proof);
// Every revision of `id`, oldest first, from a proven prefix range of the
// collection's `revisions` map. Checks versions run 1, 2, 3, ... without gaps.
Result<std::vector<Revision>> VerifyHistory(std::string_view id, const std::optional<merkle::CatalogEntry>& revisions,
                                            const merkle::MapProof& proof);

// What find does after filtering, applied identically by server and client:
// sort by one dotted path (documents without it sort first; numbers by value,
// strings by bytes, other types by their JSON text; ties by id), then skip,
// then limit, then keep only the projected top-level paths (all when empty;
// the id is always reported beside the document).
struct FindOptions {
  std::optional<std::string> sort_path;
  bool descending = false;
  std::uint64_t skip = 0;
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  std::vector<std::string> projection;  // dotted paths to keep
};
// Pure: the same function on server and verifier.
std::vector<FoundDocument> ApplyFindOptions(std::vector<FoundDocument> docs, const FindOptions& options);

}  // namespace vellum::engines::document

#endif  // VELLUM_ENGINES_DOCUMENT_DOC_QUERY_H_
