#include "vellum/engines/document/validator.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "vellum/engines/document/canonical_json.h"

namespace vellum::engines::document {

using nlohmann::json;

namespace {

enum TypeBit : std::uint8_t {
  kObject = 1 << 0,
  kArray = 1 << 1,
  kString = 1 << 2,
  kNumber = 1 << 3,
  kInteger = 1 << 4,
  kBoolean = 1 << 5,
  kNull = 1 << 6,
};

// Also the order in which messages list expected types.
constexpr std::array<std::pair<std::string_view, std::uint8_t>, 7> kTypeNames = {{
    {"object", kObject},
    {"array", kArray},
    {"string", kString},
    {"number", kNumber},
    {"integer", kInteger},
    {"boolean", kBoolean},
    {"null", kNull},
}};

}  // namespace

struct Validator::Node {
  bool reject_all = false;  // the `false` schema
  std::uint8_t types = 0;   // TypeBit set; 0 = any type
  std::optional<json> const_value;
  std::optional<json> enum_values;  // a non-empty array
  std::optional<json> minimum, exclusive_minimum, maximum, exclusive_maximum;
  std::optional<std::uint64_t> min_length, max_length;
  std::optional<std::uint64_t> min_items, max_items;
  bool unique_items = false;
  std::unique_ptr<Node> items;
  std::vector<std::string> required;  // schema order
  std::optional<std::uint64_t> min_properties, max_properties;
  std::map<std::string, std::unique_ptr<Node>> properties;
  std::unique_ptr<Node> additional_properties;  // null: anything allowed
  std::unique_ptr<Node> not_schema;
  std::vector<std::unique_ptr<Node>> all_of, any_of, one_of;
};

namespace {

using Node = Validator::Node;

template <typename T>
int Sign(T a, T b) {
  return a < b ? -1 : (a > b ? 1 : 0);
}

// ---------------------------------------------------------------------------
// Numbers: exact comparison across int64, uint64 and double. Converting an
// integer to double would round above 2^53 (and uint64 max to int64 would
// wrap to -1), so integers are compared with the integral part of the double
// and the fractional part breaks ties. NaN is not a JSON number; it only
// reaches here through a programmatically built json, and is ordered after
// every number so the result is still deterministic.

int CompareIntDouble(std::int64_t i, double d) {
  if (std::isnan(d)) return -1;
  if (d >= 0x1p63) return -1;
  if (d < -0x1p63) return 1;
  const double whole = std::trunc(d);  // in [-2^63, 2^63): fits
  const auto w = static_cast<std::int64_t>(whole);
  if (i != w) return Sign(i, w);
  return Sign(0.0, d - whole);  // the fractional part is exact
}

int CompareUintDouble(std::uint64_t u, double d) {
  if (std::isnan(d)) return -1;
  if (d < 0) return 1;
  if (d >= 0x1p64) return -1;
  const double whole = std::trunc(d);  // in [0, 2^64): fits
  const auto w = static_cast<std::uint64_t>(whole);
  if (u != w) return Sign(u, w);
  return Sign(0.0, d - whole);
}

int CompareIntUint(std::int64_t i, std::uint64_t u) {
  if (i < 0) return -1;
  return Sign(static_cast<std::uint64_t>(i), u);
}

// Both arguments must be numbers.
int CompareNumbers(const json& a, const json& b) {
  using T = json::value_t;
  const T ta = a.type(), tb = b.type();
  if (ta == T::number_float && tb == T::number_float) {
    const double x = a.get<double>(), y = b.get<double>();
    if (std::isnan(x) || std::isnan(y)) return Sign(std::isnan(x), std::isnan(y));
    return Sign(x, y);
  }
  if (ta == T::number_float) return -CompareNumbers(b, a);
  if (ta == T::number_integer) {
    const auto i = a.get<std::int64_t>();
    if (tb == T::number_integer) return Sign(i, b.get<std::int64_t>());
    if (tb == T::number_unsigned) return CompareIntUint(i, b.get<std::uint64_t>());
    return CompareIntDouble(i, b.get<double>());
  }
  const auto u = a.get<std::uint64_t>();  // number_unsigned
  if (tb == T::number_integer) return -CompareIntUint(b.get<std::int64_t>(), u);
  if (tb == T::number_unsigned) return Sign(u, b.get<std::uint64_t>());
  return CompareUintDouble(u, b.get<double>());
}

bool IsIntegral(const json& v) {
  switch (v.type()) {
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return true;
    case json::value_t::number_float: {
      const double d = v.get<double>();
      return std::isfinite(d) && std::trunc(d) == d;
    }
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// JSON value equality through a total order (so uniqueItems can sort rather
// than compare every pair). Iterative: a document's depth cannot exhaust the
// stack, whatever depth the caller let through.

int Rank(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return 0;
    case json::value_t::boolean:
      return 1;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return 2;
    case json::value_t::string:
      return 3;
    case json::value_t::array:
      return 4;
    case json::value_t::object:
      return 5;
    case json::value_t::binary:
      return 6;
    case json::value_t::discarded:
      break;
  }
  return 7;
}

// Orders two values without looking inside arrays and objects.
int CompareHead(const json& a, const json& b) {
  const int ra = Rank(a), rb = Rank(b);
  if (ra != rb) return Sign(ra, rb);
  switch (a.type()) {
    case json::value_t::boolean:
      return Sign(a.get<bool>(), b.get<bool>());
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return CompareNumbers(a, b);
    case json::value_t::string:
      // char_traits<char> compares as unsigned char: UTF-8 byte order.
      return Sign(a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>()), 0);
    case json::value_t::binary: {
      const std::vector<std::uint8_t>& x = a.get_binary();
      const std::vector<std::uint8_t>& y = b.get_binary();
      return x < y ? -1 : (y < x ? 1 : 0);
    }
    default:
      return 0;
  }
}

int Compare(const json& a, const json& b) {
  struct Frame {
    json::const_iterator a_it, a_end, b_it, b_end;
    bool object;
  };
  std::vector<Frame> stack;
  const json* x = &a;
  const json* y = &b;
  for (;;) {
    if (const int c = CompareHead(*x, *y); c != 0) return c;
    if (x->is_structured())
      stack.push_back({x->cbegin(), x->cend(), y->cbegin(), y->cend(), x->is_object()});
    for (;;) {
      if (stack.empty()) return 0;
      Frame& f = stack.back();
      const bool a_done = f.a_it == f.a_end, b_done = f.b_it == f.b_end;
      if (a_done && b_done) {
        stack.pop_back();
        continue;
      }
      if (a_done != b_done) return a_done ? -1 : 1;
      if (f.object) {
        if (const int k = f.a_it.key().compare(f.b_it.key()); k != 0) return Sign(k, 0);
      }
      x = &*f.a_it;
      y = &*f.b_it;
      ++f.a_it;
      ++f.b_it;
      break;
    }
  }
}

bool Equal(const json& a, const json& b) { return Compare(a, b) == 0; }

// ---------------------------------------------------------------------------
// Text for messages. Everything here is a function of the values only, so
// messages are the same on every platform.

bool IsLeadByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }

// Code points of valid UTF-8 text (for invalid text: bytes that are not
// continuation bytes, still deterministic).
std::uint64_t CodePoints(const std::string& s) {
  return static_cast<std::uint64_t>(std::count_if(s.begin(), s.end(), IsLeadByte));
}

std::string TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "number";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    case json::value_t::binary:
      return "binary";
    case json::value_t::discarded:
      break;
  }
  return "discarded";
}

std::string FormatNumber(const json& n) {
  if (n.is_number_float()) {
    const double d = n.get<double>();
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  }
  auto text = CanonicalJson(n);
  return text.ok() ? *text : n.dump();
}

// A short rendering of a value: scalars in full (long strings cut after 32
// code points), containers by their type.
std::string Describe(const json& v) {
  if (v.is_number()) return FormatNumber(v);
  if (v.is_boolean() || v.is_null()) return v.dump();
  if (v.is_string()) {
    constexpr std::uint64_t kMaxCodePoints = 32;
    const auto& s = v.get_ref<const std::string&>();
    size_t cut = s.size();
    std::uint64_t seen = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (!IsLeadByte(s[i])) continue;
      if (seen == kMaxCodePoints) {
        cut = i;
        break;
      }
      ++seen;
    }
    const json prefix = s.substr(0, cut);
    auto text = CanonicalJson(prefix);
    std::string out =
        text.ok() ? *text : prefix.dump(-1, ' ', false, json::error_handler_t::replace);
    if (cut < s.size()) out += "...";
    return out;
  }
  return TypeName(v);
}

std::string Plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

std::string TypeList(std::uint8_t types) {
  std::vector<std::string_view> names;
  for (const auto& [name, bit] : kTypeNames) {
    if (types & bit) names.push_back(name);
  }
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

// RFC 6901 escaping of one reference token.
std::string EscapeToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (const char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// The root is shown as "/" (RFC 6901 spells it ""), so every message starts
// with a pointer that is visibly one.
std::string ShowPointer(const std::string& pointer) { return pointer.empty() ? "/" : pointer; }

// ---------------------------------------------------------------------------
// Parsing. `at` is the JSON pointer of the value being parsed, in the schema.

std::string Child(const std::string& at, std::string_view token) {
  return at + "/" + EscapeToken(token);
}

Status Bad(const std::string& at, const std::string& reason) {
  return InvalidArgument(ShowPointer(at) + ": " + reason);
}

Result<std::unique_ptr<Node>> ParseSchema(const json& s, const std::string& at, int depth);

Result<std::uint64_t> ParseCount(const json& v, const std::string& at, const std::string& keyword) {
  switch (v.type()) {
    case json::value_t::number_unsigned:
      return v.get<std::uint64_t>();
    case json::value_t::number_integer:
      if (v.get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(v.get<std::int64_t>());
      break;
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (!IsIntegral(v) || d < 0) break;
      // No string, array or object is that large: saturating is exact.
      if (d >= 0x1p64) return std::numeric_limits<std::uint64_t>::max();
      return static_cast<std::uint64_t>(d);
    }
    default:
      break;
  }
  return Bad(at, keyword + " must be a non-negative integer, got " + Describe(v));
}

Result<json> ParseBound(const json& v, const std::string& at, const std::string& keyword) {
  if (!v.is_number()) return Bad(at, keyword + " must be a number, got " + TypeName(v));
  if (v.is_number_float() && !std::isfinite(v.get<double>())) {
    return Bad(at, keyword + " must be a finite number");
  }
  return v;
}

Status ParseType(const json& v, const std::string& at, Node& node) {
  auto bit_of = [](const std::string& name) -> std::uint8_t {
    for (const auto& [known, bit] : kTypeNames) {
      if (name == known) return bit;
    }
    return 0;
  };
  if (v.is_string()) {
    node.types = bit_of(v.get_ref<const std::string&>());
    if (node.types == 0) return Bad(at, "unknown type " + Describe(v));
    return Status::Ok();
  }
  if (!v.is_array() || v.empty())
    return Bad(at, "type must be a type name or a non-empty array of type names");
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = Child(at, std::to_string(i));
    if (!v[i].is_string()) return Bad(where, "type names must be strings, got " + TypeName(v[i]));
    const std::uint8_t bit = bit_of(v[i].get_ref<const std::string&>());
    if (bit == 0) return Bad(where, "unknown type " + Describe(v[i]));
    if (node.types & bit) return Bad(where, "duplicate type " + Describe(v[i]));
    node.types |= bit;
  }
  return Status::Ok();
}

Status ParseRequired(const json& v, const std::string& at, Node& node) {
  if (!v.is_array())
    return Bad(at, "required must be an array of property names, got " + TypeName(v));
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = Child(at, std::to_string(i));
    if (!v[i].is_string())
      return Bad(where, "required entries must be strings, got " + TypeName(v[i]));
    const auto& name = v[i].get_ref<const std::string&>();
    if (std::find(node.required.begin(), node.required.end(), name) != node.required.end()) {
      return Bad(where, "duplicate required property " + Describe(v[i]));
    }
    node.required.push_back(name);
  }
  return Status::Ok();
}

Status ParseSchemaList(const json& v, const std::string& at, const std::string& keyword, int depth,
                       std::vector<std::unique_ptr<Node>>& out) {
  if (!v.is_array() || v.empty()) return Bad(at, keyword + " must be a non-empty array of schemas");
  for (size_t i = 0; i < v.size(); ++i) {
    VELLUM_ASSIGN_OR_RETURN(auto child, ParseSchema(v[i], Child(at, std::to_string(i)), depth + 1));
    out.push_back(std::move(child));
  }
  return Status::Ok();
}

Status ParseKeyword(const std::string& key, const json& v, const std::string& where, int depth,
                    Node& node) {
  if (key == "type") return ParseType(v, where, node);
  if (key == "properties") {
    if (!v.is_object())
      return Bad(where, "properties must be an object of schemas, got " + TypeName(v));
    for (auto it = v.begin(); it != v.end(); ++it) {
      VELLUM_ASSIGN_OR_RETURN(auto child,
                              ParseSchema(it.value(), Child(where, it.key()), depth + 1));
      node.properties.emplace(it.key(), std::move(child));
    }
    return Status::Ok();
  }
  if (key == "required") return ParseRequired(v, where, node);
  if (key == "additionalProperties") {
    VELLUM_ASSIGN_OR_RETURN(node.additional_properties, ParseSchema(v, where, depth + 1));
    return Status::Ok();
  }
  if (key == "enum") {
    if (!v.is_array() || v.empty()) return Bad(where, "enum must be a non-empty array");
    node.enum_values = v;
    return Status::Ok();
  }
  if (key == "const") {
    node.const_value = v;
    return Status::Ok();
  }
  if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" ||
      key == "exclusiveMaximum") {
    VELLUM_ASSIGN_OR_RETURN(json bound, ParseBound(v, where, key));
    (key == "minimum"            ? node.minimum
     : key == "maximum"          ? node.maximum
     : key == "exclusiveMinimum" ? node.exclusive_minimum
                                 : node.exclusive_maximum) = std::move(bound);
    return Status::Ok();
  }
  if (key == "minLength" || key == "maxLength" || key == "minItems" || key == "maxItems" ||
      key == "minProperties" || key == "maxProperties") {
    VELLUM_ASSIGN_OR_RETURN(std::uint64_t count, ParseCount(v, where, key));
    (key == "minLength"       ? node.min_length
     : key == "maxLength"     ? node.max_length
     : key == "minItems"      ? node.min_items
     : key == "maxItems"      ? node.max_items
     : key == "minProperties" ? node.min_properties
                              : node.max_properties) = count;
    return Status::Ok();
  }
  if (key == "uniqueItems") {
    if (!v.is_boolean()) return Bad(where, "uniqueItems must be true or false, got " + TypeName(v));
    node.unique_items = v.get<bool>();
    return Status::Ok();
  }
  if (key == "items") {
    VELLUM_ASSIGN_OR_RETURN(node.items, ParseSchema(v, where, depth + 1));
    return Status::Ok();
  }
  if (key == "allOf") return ParseSchemaList(v, where, key, depth, node.all_of);
  if (key == "anyOf") return ParseSchemaList(v, where, key, depth, node.any_of);
  if (key == "oneOf") return ParseSchemaList(v, where, key, depth, node.one_of);
  if (key == "not") {
    VELLUM_ASSIGN_OR_RETURN(node.not_schema, ParseSchema(v, where, depth + 1));
    return Status::Ok();
  }
  if (key == "title" || key == "description" || key == "$comment" || key == "$schema" || key == "$id") {
    if (!v.is_string()) return Bad(where, key + " must be a string, got " + TypeName(v));
    return Status::Ok();
  }
  if (key == "examples") {
    if (!v.is_array()) return Bad(where, "examples must be an array, got " + TypeName(v));
    return Status::Ok();
  }
  if (key == "default") return Status::Ok();
  return Bad(where, "unknown keyword '" + key + "'");
}

// A schema whose bounds exclude every value is a mistake, not a policy:
// refuse it, naming the upper bound.
Status CheckRanges(const Node& n, const std::string& at) {
  auto counts = [&](const std::optional<std::uint64_t>& lo, const char* lo_name,
                    const std::optional<std::uint64_t>& hi, const char* hi_name) -> Status {
    if (lo && hi && *lo > *hi) {
      return Bad(Child(at, hi_name), std::string(hi_name) + " " + std::to_string(*hi) +
                                         " is less than " + lo_name + " " + std::to_string(*lo));
    }
    return Status::Ok();
  };
  VELLUM_RETURN_IF_ERROR(counts(n.min_length, "minLength", n.max_length, "maxLength"));
  VELLUM_RETURN_IF_ERROR(counts(n.min_items, "minItems", n.max_items, "maxItems"));
  VELLUM_RETURN_IF_ERROR(
      counts(n.min_properties, "minProperties", n.max_properties, "maxProperties"));
  // {lower, upper, the pair is empty when Compare(lower, upper) >= limit}
  struct Pair {
    const std::optional<json>* lo;
    const char* lo_name;
    const std::optional<json>* hi;
    const char* hi_name;
    int empty_from;
  };
  const Pair pairs[] = {
      {&n.minimum, "minimum", &n.maximum, "maximum", 1},
      {&n.exclusive_minimum, "exclusiveMinimum", &n.maximum, "maximum", 0},
      {&n.minimum, "minimum", &n.exclusive_maximum, "exclusiveMaximum", 0},
      {&n.exclusive_minimum, "exclusiveMinimum", &n.exclusive_maximum, "exclusiveMaximum", 0},
  };
  for (const Pair& p : pairs) {
    if (*p.lo && *p.hi && CompareNumbers(**p.lo, **p.hi) >= p.empty_from) {
      return Bad(Child(at, p.hi_name), std::string("no number satisfies both ") + p.lo_name + " " +
                                           FormatNumber(**p.lo) + " and " + p.hi_name + " " +
                                           FormatNumber(**p.hi));
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<Node>> ParseSchema(const json& s, const std::string& at, int depth) {
  if (depth > kMaxSchemaDepth) {
    return Bad(at, "schema nested deeper than " + std::to_string(kMaxSchemaDepth));
  }
  auto node = std::make_unique<Node>();
  if (s.is_boolean()) {
    node->reject_all = !s.get<bool>();
    return node;
  }
  if (!s.is_object()) return Bad(at, "a schema must be an object or a boolean, got " + TypeName(s));
  for (auto it = s.begin(); it != s.end(); ++it) {
    VELLUM_RETURN_IF_ERROR(ParseKeyword(it.key(), it.value(), Child(at, it.key()), depth, *node));
  }
  VELLUM_RETURN_IF_ERROR(CheckRanges(*node, at));
  return node;
}

// ---------------------------------------------------------------------------
// Validation.

using PathToken = std::variant<std::size_t, std::string>;  // array index or member name
using Path = std::vector<PathToken>;

struct Violation {
  Path where;  // compared lexicographically: document order
  std::string rule;
};

std::string ShowPath(const Path& path) {
  std::string out;
  for (const PathToken& token : path) {
    out += '/';
    if (const auto* index = std::get_if<std::size_t>(&token)) {
      out += std::to_string(*index);
    } else {
      out += EscapeToken(std::get<std::string>(token));
    }
  }
  return ShowPointer(out);
}

std::string Show(const Violation& v) { return ShowPath(v.where) + ": " + v.rule; }

bool TypeMatches(std::uint8_t types, const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return types & kNull;
    case json::value_t::boolean:
      return types & kBoolean;
    case json::value_t::string:
      return types & kString;
    case json::value_t::array:
      return types & kArray;
    case json::value_t::object:
      return types & kObject;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return (types & kNumber) || ((types & kInteger) && IsIntegral(v));
    default:
      return false;
  }
}

std::optional<Violation> Check(const Node& n, const json& v, Path& path);

// The first duplicate in index order: the smallest j with an equal i < j,
// reported with the first such i.
std::optional<std::pair<size_t, size_t>> FirstDuplicate(const json& array) {
  if (array.size() < 2) return std::nullopt;
  std::vector<size_t> order(array.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return Compare(array[a], array[b]) < 0; });
  std::optional<std::pair<size_t, size_t>> best;
  for (size_t k = 1; k < order.size(); ++k) {
    // Runs of equal values are index-ascending (stable sort); look at the
    // first two of each run only.
    if (Compare(array[order[k - 1]], array[order[k]]) != 0) continue;
    if (k >= 2 && Compare(array[order[k - 2]], array[order[k - 1]]) == 0) continue;
    if (!best || order[k] < best->second) best = {order[k - 1], order[k]};
  }
  return best;
}

// Rules on the value itself, in the documented keyword order; nullopt if all
// hold. `path` is the value's location (for the branches of not/anyOf/oneOf).
std::optional<std::string> CheckHere(const Node& n, const json& v, Path& path) {
  if (n.reject_all) return "no value is allowed here (the schema is false)";
  if (n.types != 0 && !TypeMatches(n.types, v))
    return "expected " + TypeList(n.types) + ", got " + TypeName(v);
  if (n.const_value && !Equal(v, *n.const_value)) {
    return Describe(v) + " is not equal to the const value " + Describe(*n.const_value);
  }
  if (n.enum_values) {
    const auto& values = *n.enum_values;
    if (std::none_of(values.begin(), values.end(), [&](const json& e) { return Equal(v, e); })) {
      return Describe(v) + " is not one of the " + Plural(values.size(), "value", "values") +
             " in enum";
    }
  }
  if (v.is_number()) {
    if (n.minimum && CompareNumbers(v, *n.minimum) < 0) {
      return FormatNumber(v) + " is less than the minimum " + FormatNumber(*n.minimum);
    }
    if (n.exclusive_minimum && CompareNumbers(v, *n.exclusive_minimum) <= 0) {
      return FormatNumber(v) + " is not greater than the exclusiveMinimum " +
             FormatNumber(*n.exclusive_minimum);
    }
    if (n.maximum && CompareNumbers(v, *n.maximum) > 0) {
      return FormatNumber(v) + " is greater than the maximum " + FormatNumber(*n.maximum);
    }
    if (n.exclusive_maximum && CompareNumbers(v, *n.exclusive_maximum) >= 0) {
      return FormatNumber(v) + " is not less than the exclusiveMaximum " +
             FormatNumber(*n.exclusive_maximum);
    }
  }
  if (v.is_string() && (n.min_length || n.max_length)) {
    const std::uint64_t length = CodePoints(v.get_ref<const std::string&>());
    if (n.min_length && length < *n.min_length) {
      return "string has " + Plural(length, "code point", "code points") +
             ", fewer than the minLength " + std::to_string(*n.min_length);
    }
    if (n.max_length && length > *n.max_length) {
      return "string has " + Plural(length, "code point", "code points") +
             ", more than the maxLength " + std::to_string(*n.max_length);
    }
  }
  if (v.is_array()) {
    const std::uint64_t size = v.size();
    if (n.min_items && size < *n.min_items) {
      return "array has " + Plural(size, "item", "items") + ", fewer than the minItems " +
             std::to_string(*n.min_items);
    }
    if (n.max_items && size > *n.max_items) {
      return "array has " + Plural(size, "item", "items") + ", more than the maxItems " +
             std::to_string(*n.max_items);
    }
    if (n.unique_items) {
      if (const auto dup = FirstDuplicate(v)) {
        return "items " + std::to_string(dup->first) + " and " + std::to_string(dup->second) +
               " are equal, but uniqueItems is true";
      }
    }
  }
  if (v.is_object()) {
    for (const std::string& name : n.required) {
      if (!v.contains(name)) return "missing required property '" + name + "'";
    }
    const std::uint64_t size = v.size();
    if (n.min_properties && size < *n.min_properties) {
      return "object has " + Plural(size, "property", "properties") +
             ", fewer than the minProperties " + std::to_string(*n.min_properties);
    }
    if (n.max_properties && size > *n.max_properties) {
      return "object has " + Plural(size, "property", "properties") +
             ", more than the maxProperties " + std::to_string(*n.max_properties);
    }
  }
  if (n.not_schema && !Check(*n.not_schema, v, path)) return "matches the schema in not";
  if (!n.any_of.empty()) {
    std::optional<Violation> first;
    bool matched = false;
    for (const auto& branch : n.any_of) {
      auto outcome = Check(*branch, v, path);
      if (!outcome) {
        matched = true;
        break;
      }
      if (!first) first = std::move(outcome);
    }
    if (!matched) {
      return "matches none of the " + Plural(n.any_of.size(), "schema", "schemas") +
             " in anyOf (first: " + Show(*first) + ")";
    }
  }
  if (!n.one_of.empty()) {
    std::optional<Violation> first;
    std::vector<size_t> matches;
    for (size_t i = 0; i < n.one_of.size() && matches.size() < 2; ++i) {
      auto outcome = Check(*n.one_of[i], v, path);
      if (!outcome) {
        matches.push_back(i);
      } else if (!first) {
        first = std::move(outcome);
      }
    }
    if (matches.empty()) {
      return "matches none of the " + Plural(n.one_of.size(), "schema", "schemas") +
             " in oneOf (first: " + Show(*first) + ")";
    }
    if (matches.size() > 1) {
      return "matches oneOf schemas " + std::to_string(matches[0]) + " and " +
             std::to_string(matches[1]) + ", but exactly one must match";
    }
  }
  return std::nullopt;
}

// properties / additionalProperties / items: the first violation among the
// children, which are visited in document order.
std::optional<Violation> CheckChildren(const Node& n, const json& v, Path& path) {
  if (v.is_object() && (!n.properties.empty() || n.additional_properties)) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const auto known = n.properties.find(it.key());
      const bool additional = known == n.properties.end();
      const Node* schema = additional ? n.additional_properties.get() : known->second.get();
      if (schema == nullptr) continue;
      path.emplace_back(it.key());
      std::optional<Violation> outcome;
      if (additional && schema->reject_all) {
        outcome = Violation{path, "property is not allowed (additionalProperties is false)"};
      } else {
        outcome = Check(*schema, it.value(), path);
      }
      path.pop_back();
      if (outcome) return outcome;
    }
  }
  if (v.is_array() && n.items) {
    for (size_t i = 0; i < v.size(); ++i) {
      path.emplace_back(i);
      auto outcome = Check(*n.items, v[i], path);
      path.pop_back();
      if (outcome) return outcome;
    }
  }
  return std::nullopt;
}

// Recursion follows the schema tree only, so its depth is at most
// kMaxSchemaDepth + 1 whatever the document.
std::optional<Violation> Check(const Node& n, const json& v, Path& path) {
  if (auto rule = CheckHere(n, v, path)) return Violation{path, std::move(*rule)};
  std::optional<Violation> first = CheckChildren(n, v, path);
  for (const auto& branch : n.all_of) {
    // Nothing precedes the value's own location.
    if (first && first->where.size() == path.size()) break;
    auto outcome = Check(*branch, v, path);
    if (outcome && (!first || outcome->where < first->where)) first = std::move(outcome);
  }
  return first;
}

}  // namespace

Result<Validator> Validator::Parse(const nlohmann::json& schema) {
  VELLUM_ASSIGN_OR_RETURN(std::unique_ptr<Node> root, ParseSchema(schema, "", 0));
  auto canonical = CanonicalJson(schema);
  if (!canonical.ok())
    return std::move(canonical).status().WithContext("schema has no canonical JSON form");
  return Validator(std::shared_ptr<const Node>(std::move(root)), std::move(canonical).value());
}

Status Validator::Validate(const nlohmann::json& doc) const {
  Path path;
  if (auto violation = Check(*root_, doc, path)) return InvalidArgument(Show(*violation));
  return Status::Ok();
}

}  // namespace vellum::engines::document
