// The order-preserving tuple codec: every key of every authenticated map is a
// tuple encoded so that comparing the encodings byte by byte (memcmp, shorter
// prefix first) gives the same order as comparing the tuples logically.
// Format: docs/FORMAT.md, "Tuple keys".
//
// Logical order: element by element; elements of different types order by
// type (null < bool < int64 < uint64 < timestamp < bytes < string < tuple),
// elements of the same type by value (integers numerically, bytes and strings
// lexicographically by byte, nested tuples recursively); a tuple that is a
// proper prefix of another sorts first. int64 and uint64 are distinct types:
// Int64(1) and Uint64(1) are different keys.
//
// Encoding (one type tag byte per element):
//   null      0x01
//   bool      0x02, then 0x00 (false) or 0x01 (true)
//   int64     0x03, then 8 bytes big-endian with the sign bit flipped
//   uint64    0x04, then 8 bytes big-endian
//   timestamp 0x05, then int64 microseconds as for int64
//   bytes     0x06, then the bytes with 0x00 written as 0x00 0xFF, then 0x00
//   string    0x07, same escaping as bytes (no UTF-8 validation)
//   tuple     0x08, then the elements, then 0x00
// A top-level tuple is the concatenation of its elements (no terminator).
// Decoding is strict: DecodeTuple(b) succeeds iff b == EncodeTuple(t) for some
// t, so every key has exactly one encoding.
//
// Thread-safety: pure functions over values.
#ifndef VELLUM_BASE_TUPLE_H_
#define VELLUM_BASE_TUPLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vellum/base/status.h"

namespace vellum {

struct TupleNull {
  bool operator==(const TupleNull&) const = default;
};
struct Timestamp {
  std::int64_t micros = 0;
  bool operator==(const Timestamp&) const = default;
};
// Raw bytes (as opposed to text, which is std::string).
struct TupleBytes {
  std::string data;
  bool operator==(const TupleBytes&) const = default;
};

struct TupleElement;
using Tuple = std::vector<TupleElement>;

struct TupleElement {
  using Value = std::variant<TupleNull, bool, std::int64_t, std::uint64_t, Timestamp, TupleBytes,
                             std::string, Tuple>;
  Value value;

  static TupleElement Null() { return {Value(std::in_place_type<TupleNull>)}; }
  static TupleElement Bool(bool b) { return {Value(std::in_place_type<bool>, b)}; }
  static TupleElement Int64(std::int64_t v) { return {Value(std::in_place_type<std::int64_t>, v)}; }
  static TupleElement Uint64(std::uint64_t v) { return {Value(std::in_place_type<std::uint64_t>, v)}; }
  static TupleElement Time(std::int64_t micros) { return {Value(std::in_place_type<Timestamp>, Timestamp{micros})}; }
  static TupleElement Bytes(std::string b) {
    return {Value(std::in_place_type<TupleBytes>, TupleBytes{std::move(b)})};
  }
  static TupleElement String(std::string s) { return {Value(std::in_place_type<std::string>, std::move(s))}; }
  static TupleElement Nested(Tuple t) { return {Value(std::in_place_type<Tuple>, std::move(t))}; }

  bool operator==(const TupleElement& other) const;
};

// Maximum nesting depth accepted by EncodeTuple/DecodeTuple.
inline constexpr int kMaxTupleDepth = 32;

// Appends the encoding of `t` to `out`. InvalidArgument if nested deeper than
// kMaxTupleDepth.
Status AppendTuple(std::string* out, const Tuple& t);
Result<std::string> EncodeTuple(const Tuple& t);

// Strict decoder. InvalidArgument on an unknown tag, a truncated element, a bad
// escape, a bool byte other than 0/1, an unterminated nested tuple or nesting
// deeper than kMaxTupleDepth.
Result<Tuple> DecodeTuple(std::string_view encoded);

// Logical comparison (see above): <0, 0 or >0.
int CompareTuples(const Tuple& a, const Tuple& b);

// The smallest byte string greater than every string that starts with
// `prefix`, or nullopt if there is none (prefix empty or all 0xff).
std::optional<std::string> PrefixSuccessor(std::string_view prefix);

// Half-open key range [lo, hi); hi == nullopt means unbounded above.
struct KeyRange {
  std::string lo;
  std::optional<std::string> hi;
};

// The range of encoded keys of every tuple that starts with the elements of
// `prefix` (including `prefix` itself). InvalidArgument as for EncodeTuple.
Result<KeyRange> TuplePrefixRange(const Tuple& prefix);

}  // namespace vellum

#endif  // VELLUM_BASE_TUPLE_H_
