// Declared path indexes of the document engine (docs/FORMAT.md, "Document
// path indexes"): the key layout, the ranges a filter lets a query read, and
// the pure check of an index-backed find.
//
// An index on dotted path P of collection COLL is the map
// ("doc", COLL, "index:" P). For every live document D and every indexable
// value v that P resolves to in D (ResolvePath; an array contributes each of
// its scalar elements; objects and nested arrays are not indexed) it holds
//   key   = tuple(bytes(IndexValue(v)), bytes(D.id))
//   value = D's current revision record (doc_ops.h): the index covers the
//           document, so an index range proof alone proves the documents.
// IndexValue(v) is one tag byte and a payload, ordered like the filter's
// comparisons within each type:
//   null 0x01 | false 0x02 | true 0x03
//   number 0x04 ‖ 8 bytes: the IEEE-754 double of the value (-0 as +0), sign
//                 bit flipped for positives, all bits flipped for negatives,
//                 big-endian — so byte order is numeric order
//   string 0x05 ‖ the first kMaxIndexedStringBytes bytes of the UTF-8 text
// The map is monotone, not injective: distinct numbers may share a double and
// long strings a prefix. Every range below is therefore inclusive at the
// encoded bounds, and the evaluator re-applies the whole filter to the proven
// documents; an index only decides which documents are read, never which
// ones match.
//
// Why a range is complete. IndexRanges picks one comparison C on P that every
// matching document satisfies (Filter::Conjuncts). If D satisfies C, some
// scalar s that P resolves to in D satisfies it ($eq/$in compare a scalar
// operand only with scalars; $gt.. compare numbers with numbers, strings with
// strings), and IndexValue is monotone, so (IndexValue(s), D.id) lies in the
// ranges of C. A proof that the ranges hold exactly the revealed entries thus
// shows that no matching document was left out.
//
// Single-valued indexes. The index map also holds, under kMultikeyKey (below
// every tuple key), the number of live documents that give two or more
// distinct values (u64 big-endian; absent when zero). While it is absent,
// every document gives at most one value, so a matching document's one value
// satisfies every condition on P at once and the ranges of all of them can be
// intersected: {"total": {"$gte": 10, "$lt": 20}} reads [10, 20], not
// [10, +inf). A plan that intersects carries a proof that the key is absent.
//
// Thread-safety: pure functions.
#ifndef VELLUM_ENGINES_DOCUMENT_PATH_INDEX_H_
#define VELLUM_ENGINES_DOCUMENT_PATH_INDEX_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "vellum/base/status.h"
#include "vellum/engines/document/doc_query.h"
#include "vellum/engines/document/filter.h"
#include "vellum/merkle/catalog.h"
#include "vellum/merkle/map_proof.h"

namespace vellum::engines::document {

inline constexpr size_t kMaxIndexPathSize = 255;
inline constexpr size_t kMaxIndexPathDepth = 32;
inline constexpr size_t kMaxIndexedStringBytes = 1024;
// Distinct values one document may put into one index (array elements).
inline constexpr size_t kMaxIndexValuesPerDocument = 1000;
// Indexes one collection may declare.
inline constexpr size_t kMaxIndexesPerCollection = 64;
// An $in with more values than this is not served by an index.
inline constexpr size_t kMaxIndexedInValues = 256;

// InvalidArgument unless `path` is a dotted path as filters accept it
// (non-empty parts), at most kMaxIndexPathSize bytes and kMaxIndexPathDepth parts.
Status CheckIndexPath(std::string_view path);
// The map part of the index on `path`: "index:" + path.
std::string IndexPart(std::string_view path);
inline constexpr std::string_view kIndexPartPrefix = "index:";

// The encoding of a scalar, or nullopt for an object or array.
std::optional<std::string> IndexValue(const nlohmann::json& scalar);
// The distinct encoded values `path` gives `doc`, sorted. InvalidArgument if
// there are more than kMaxIndexValuesPerDocument.
Result<std::vector<std::string>> IndexValues(const nlohmann::json& doc, std::string_view path);

inline const std::string kMultikeyKey = std::string(1, '\0') + "multikey";
std::string EncodeMultikeyCount(std::uint64_t n);
Result<std::uint64_t> DecodeMultikeyCount(std::string_view value);

std::string IndexKey(std::string_view value, std::string_view id);
// (value, id) of an index key; InvalidArgument if it is not one.
Result<std::pair<std::string, std::string>> DecodeIndexKey(std::string_view key);

// The key ranges of the index on `path` that hold every document matching
// `filter`, in key order, or nullopt if no comparison on `path` can narrow
// the scan. The choice is deterministic (first $eq with a scalar operand,
// else first $in of at most kMaxIndexedInValues scalars, else first
// $gt/$gte/$lt/$lte with a number or string operand), so a verifier derives
// the same ranges from the query. With `single_valued`, the ranges of every
// such condition on `path` are intersected instead (possibly to none).
std::optional<std::vector<merkle::MapRangeQuery>> IndexRanges(const Filter& filter, std::string_view path,
                                                              bool single_valued = false);

// How many conditions of `filter` on `path` an index can serve: intersecting
// (single-valued plans) only narrows a read when there are two or more.
size_t IndexableConditions(const Filter& filter, std::string_view path);

// Live documents matching `filter`, in id order, from proofs of the ranges
// IndexRanges(filter, path, single_valued) (one proof per range, in order) of
// the index map whose catalog entry is `index` (nullopt: not declared in this
// state, which fails). With `single_valued`, `multikey` must prove
// kMultikeyKey absent. Checks every revealed entry: a live revision whose
// document gives the entry's value at `path` (and no other, if single-valued);
// one revision per id.
Result<std::vector<FoundDocument>> VerifyIndexedFind(const Filter& filter, std::string_view path, bool single_valued,
                                                     const std::optional<merkle::CatalogEntry>& index,
                                                     const merkle::MapProof* multikey,
                                                     std::span<const merkle::MapProof* const> proofs);

}  // namespace vellum::engines::document

#endif  // VELLUM_ENGINES_DOCUMENT_PATH_INDEX_H_
