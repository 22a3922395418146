// Per-collection document validation: a strict, documented subset of JSON
// Schema (draft 2020-12) that the write path runs before a document enters
// the ledger, and that a verifier or an audit can re-run to reproduce the
// exact same verdict and message.
//
// A schema is a JSON object (or the boolean schemas `true` = anything,
// `false` = nothing). Supported keywords, and nothing else:
//   type                  "object" "array" "string" "number" "integer"
//                         "boolean" "null", or a non-empty array of unique
//                         names. "integer" is any number without a
//                         fractional part (1.0 is an integer); "number"
//                         includes integers.
//   properties            object of schemas, applied to the named members.
//   required              array of unique strings.
//   additionalProperties  schema (or bool) for members not in `properties`.
//   enum                  non-empty array; the value must equal one element.
//   const                 the value must equal it.
//   minimum maximum exclusiveMinimum exclusiveMaximum
//                         finite numbers; apply to numbers only.
//   minLength maxLength   non-negative integers; apply to strings only,
//                         counted in Unicode code points of the UTF-8 text.
//   items                 schema for every element; arrays only.
//   minItems maxItems uniqueItems
//   minProperties maxProperties
//   allOf anyOf oneOf     non-empty arrays of schemas.
//   not                   schema that must NOT match.
//   title description $comment $schema $id (strings), examples (array), default (any):
//                         annotations, checked for type and otherwise ignored.
// There is no $ref, $defs, pattern, format, prefixItems, if/then/else or
// dependent*: evaluation is a walk over a finite tree, so its recursion depth
// is bounded by the schema's nesting (at most kMaxSchemaDepth) and its work by
// (schema size) x (document size).
//
// Equality (enum, const, uniqueItems) is JSON value equality: same type,
// numbers compared numerically and exactly (1 == 1.0, but the uint64
// 18446744073709551615 is not -1 and 2^53+1 is not the double 2^53), strings
// by bytes, arrays element-wise, objects member-wise regardless of order.
// Numeric bounds compare int64, uint64 and double values exactly, without
// converting through double.
//
// Parse is strict: an unknown keyword, a keyword of the wrong type, a
// negative or fractional length or count, a duplicate in `type` or
// `required`, an empty `enum`/`allOf`/`anyOf`/`oneOf`, a bound range that no
// value can satisfy (minimum > maximum, minLength > maxLength, ...) or
// nesting deeper than kMaxSchemaDepth is refused with InvalidArgument naming
// the schema location as a JSON pointer, e.g.
//   "/properties/age/minimum: minimum must be a finite number, got string".
//
// Validate reports the FIRST violation in document order, as
// "<document JSON pointer>: <rule>", e.g.
//   "/customer/age: 17 is less than the minimum 18"
//   "/: missing required property 'id'"
//   "/tags/2: expected string, got number"
// "First" is defined so that the message is identical on every run and
// platform: a location precedes its descendants; siblings go in order
// (array indices ascending, object members by the UTF-8 bytes of their keys,
// which is canonical JSON order). Violations at the same location are ranked
// by keyword: false schema, type, const, enum, minimum, exclusiveMinimum,
// maximum, exclusiveMaximum, minLength, maxLength, minItems, maxItems,
// uniqueItems, required (in the schema's order), minProperties,
// maxProperties, not, anyOf, oneOf; then the schema's own
// properties/additionalProperties/items before its allOf branches, in order.
// A member rejected by `additionalProperties: false` is reported at the
// member's own location. Numbers in messages are printed as canonical JSON.
// Pointers escape '~' and '/' as RFC 6901 does, but the root is shown as "/"
// rather than the empty string.
//
// Thread-safety: Validator is an immutable value (cheap to copy: the parsed
// tree is shared); Validate is pure and may run concurrently.
#ifndef VELLUM_ENGINES_DOCUMENT_VALIDATOR_H_
#define VELLUM_ENGINES_DOCUMENT_VALIDATOR_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "vellum/base/status.h"

namespace vellum::engines::document {

// Schemas nested deeper than this (root = 0; every subschema adds one) are
// refused, which bounds the validator's recursion.
inline constexpr int kMaxSchemaDepth = 32;

class Validator {
 public:
  // Parses `schema` strictly (see above). Returns InvalidArgument naming the
  // schema location for any schema outside the supported subset, and for a
  // schema that has no canonical JSON form (NaN, invalid UTF-8, nesting
  // deeper than kMaxJsonDepth).
  [[nodiscard]] static Result<Validator> Parse(const nlohmann::json& schema);

  // OK if `doc` satisfies the schema; otherwise InvalidArgument whose message
  // is "<JSON pointer into doc>: <rule>" for the first violation in document
  // order. Deterministic: the same schema and document always give the same
  // message.
  [[nodiscard]] Status Validate(const nlohmann::json& doc) const;

  // CanonicalJson of the schema as given to Parse: the bytes to store in, and
  // hash into, the ledger.
  const std::string& canonical() const { return canonical_; }

  struct Node;

 private:
  Validator(std::shared_ptr<const Node> root, std::string canonical)
      : root_(std::move(root)), canonical_(std::move(canonical)) {}

  std::shared_ptr<const Node> root_;
  std::string canonical_;
};

}  // namespace vellum::engines::document

#endif  // VELLUM_ENGINES_DOCUMENT_VALIDATOR_H_
