// MongoDB-style document filters: parsing (strict) and pure evaluation, the
// part of the document engine's evaluator that a verifier re-runs over
// proven documents to check that a result is exactly right.
//
// Grammar (a subset of MongoDB's query language):
//   filter  := { clause, ... }                       (all clauses must hold)
//   clause  := "$and": [filter, ...] | "$or": [filter, ...]
//            | "<dotted.path>": value                 (same as {"$eq": value})
//            | "<dotted.path>": { op: operand, ... }   (all ops must hold)
//   op      := $eq $ne $gt $gte $lt $lte $in $exists
// Semantics:
//   * A path descends through objects; where it meets an array, the clause
//     holds if it holds for any element (as in MongoDB), and $eq/$in also
//     compare the whole array.
//   * $eq/$ne/$in compare JSON values exactly (numbers numerically, objects
//     member by member); $ne and a missing path: holds.
//   * $gt/$gte/$lt/$lte compare numbers with numbers and strings with strings
//     (UTF-8 byte order); other type pairs never match.
//   * $exists: true/false on whether the path resolves.
// Errors (InvalidArgument, with the path): unknown operator, operator not in
// an operator object, $in without an array, $exists without a bool,
// $and/$or without a non-empty array of objects, a top level that is not an
// object, nesting deeper than 32.
//
// Thread-safety: Filter is an immutable value; Matches is pure.
#ifndef VELLUM_ENGINES_DOCUMENT_FILTER_H_
#define VELLUM_ENGINES_DOCUMENT_FILTER_H_

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vellum/base/status.h"

namespace vellum::engines::document {

class Filter {
 public:
  static Result<Filter> Parse(const nlohmann::json& spec);
  // True iff `doc` satisfies the filter.
  bool Matches(const nlohmann::json& doc) const;

  struct Node;

 private:
  explicit Filter(std::shared_ptr<const Node> root) : root_(std::move(root)) {}
  std::shared_ptr<const Node> root_;
};

}  // namespace vellum::engines::document

#endif  // VELLUM_ENGINES_DOCUMENT_FILTER_H_
