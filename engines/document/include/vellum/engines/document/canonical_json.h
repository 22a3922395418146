// Canonical JSON: the one byte encoding of a JSON document that Vellum hashes
// (docs/FORMAT.md, "Canonical JSON"). Server, verifier and audit all use this
// encoder, so a document has exactly one hash.
//
// Rules (close to RFC 8785 JCS, with byte-order key sorting):
//   * no insignificant whitespace;
//   * object members sorted by the UTF-8 bytes of their keys; duplicate keys
//     are rejected when parsing;
//   * strings: valid UTF-8; escaped are only '"', '\\' and U+0000..U+001F
//     (as \b \f \n \r \t or \u00xx, lowercase hex); everything else literal;
//   * numbers: integers in [-2^63, 2^64) print as plain decimal; other numbers
//     as the shortest decimal that round-trips the IEEE-754 double, in
//     std::to_chars form; an integral double below 2^53 in magnitude prints
//     as an integer (so 1.0 and 1 are the same document); -0 prints as 0;
//     NaN and infinities do not exist in JSON and are rejected;
//   * nesting depth is limited (kMaxJsonDepth) so adversarial input cannot
//     exhaust the stack.
//
// Thread-safety: pure functions.
#ifndef VELLUM_ENGINES_DOCUMENT_CANONICAL_JSON_H_
#define VELLUM_ENGINES_DOCUMENT_CANONICAL_JSON_H_

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "vellum/base/status.h"

namespace vellum::engines::document {

inline constexpr int kMaxJsonDepth = 64;

// Parses JSON text strictly (no comments, no trailing commas, no duplicate
// keys, valid UTF-8, depth <= kMaxJsonDepth). InvalidArgument with the byte
// position and reason otherwise.
Result<nlohmann::json> ParseJson(std::string_view text);

// The canonical encoding of `value`. InvalidArgument for NaN/infinity,
// invalid UTF-8 or excessive depth.
Result<std::string> CanonicalJson(const nlohmann::json& value);

// ParseJson then CanonicalJson.
Result<std::string> CanonicalizeJsonText(std::string_view text);

}  // namespace vellum::engines::document

#endif  // VELLUM_ENGINES_DOCUMENT_CANONICAL_JSON_H_
