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

// The values a dotted path (split at the dots) resolves to in `doc`: through
// objects, fanning out over array elements that are objects or arrays; an
// array the path ends on is one value (its elements are compared one by one
// by the operators). The filter's own resolution, shared with path indexes.
void ResolvePath(const nlohmann::json& doc, const std::vector<std::string>& parts, std::vector<const nlohmann::json*>& out);
std::vector<std::string> SplitPath(std::string_view path);

// JSON value equality as the filter uses it: numbers by numeric value (int64,
// uint64 and doubles compared exactly, so 1 == 1.0 but 2^64-1 != -1),
// strings by bytes, arrays element-wise, objects member-wise.
bool JsonEquals(const nlohmann::json& a, const nlohmann::json& b);

class Filter {
 public:
  static Result<Filter> Parse(const nlohmann::json& spec);
  // True iff `doc` satisfies the filter.
  bool Matches(const nlohmann::json& doc) const;

  // A comparison that every matching document satisfies: one found at the
  // top level of the filter (or inside a top-level $and), in filter order.
  // A planner narrows a scan with one of these (path_index.h).
  struct Conjunct {
    enum class Op { kEq, kGt, kGte, kLt, kLte, kIn };
    Op op = Op::kEq;
    std::string path;  // dotted
    nlohmann::json operand;
  };
  std::vector<Conjunct> Conjuncts() const;

  struct Node;

 private:
  explicit Filter(std::shared_ptr<const Node> root) : root_(std::move(root)) {}
  std::shared_ptr<const Node> root_;
};

}  // namespace vellum::engines::document

#endif  // VELLUM_ENGINES_DOCUMENT_FILTER_H_
