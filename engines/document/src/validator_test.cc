#include "vellum/engines/document/validator.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "vellum/engines/document/canonical_json.h"

namespace vellum::engines::document {
namespace {

using nlohmann::json;

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();
constexpr std::int64_t kI64Min = std::numeric_limits<std::int64_t>::min();

json J(const char* text) { return json::parse(text); }

// For INFO: dump() would throw on the invalid UTF-8 some tests feed in.
std::string Text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Validator Make(const json& schema) {
  auto v = Validator::Parse(schema);
  INFO(Text(schema) << " -> " << v.status().ToString());
  REQUIRE(v.ok());
  return std::move(v).value();
}

bool Accepts(const json& schema, const json& doc) {
  const Status s = Make(schema).Validate(doc);
  INFO(Text(schema) << " on " << Text(doc) << ": " << s.ToString());
  CHECK((s.ok() || s.code() == StatusCode::kInvalidArgument));
  return s.ok();
}

// The message of a rejection; fails the test if the document is accepted.
std::string Why(const json& schema, const json& doc) {
  const Status s = Make(schema).Validate(doc);
  INFO(Text(schema) << " on " << Text(doc));
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kInvalidArgument);
  return s.message();
}

std::string ParseError(const json& schema) {
  auto v = Validator::Parse(schema);
  INFO(Text(schema));
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().code() == StatusCode::kInvalidArgument);
  return v.status().message();
}

TEST_CASE("Validator: type", "[engines][document][validator]") {
  const json samples[] = {J("{}"), J("[]"), "s", 7, 7.5, true, nullptr};
  const std::map<std::string, std::vector<bool>> expected = {
      {"object", {true, false, false, false, false, false, false}},
      {"array", {false, true, false, false, false, false, false}},
      {"string", {false, false, true, false, false, false, false}},
      {"number", {false, false, false, true, true, false, false}},
      {"integer", {false, false, false, true, false, false, false}},
      {"boolean", {false, false, false, false, false, true, false}},
      {"null", {false, false, false, false, false, false, true}},
  };
  for (const auto& [name, accepted] : expected) {
    for (size_t i = 0; i < accepted.size(); ++i)
      CHECK(Accepts({{"type", name}}, samples[i]) == accepted[i]);
  }
  // "integer" is a number without a fractional part, whatever its encoding.
  for (const json& v : {json(1.0), json(-3), json(kU64Max), json(kI64Min), json(1e300), J("2.0")}) {
    CHECK(Accepts({{"type", "integer"}}, v));
  }
  CHECK_FALSE(Accepts({{"type", "integer"}}, 1.5));
  CHECK_FALSE(Accepts({{"type", "integer"}}, -0.25));
  CHECK(Accepts({{"type", {"string", "null"}}}, nullptr));
  CHECK(Accepts({{"type", {"string", "null"}}}, "x"));
  CHECK(Why({{"type", {"string", "null"}}}, 5) == "/: expected string or null, got number");
  CHECK(Why({{"type", {"null", "integer", "object"}}}, 0.5) ==
        "/: expected object, integer or null, got number");
  CHECK(Why({{"type", "integer"}}, 1.5) == "/: expected integer, got number");
  CHECK(
      Why(J(R"({"type":"object","properties":{"tags":{"type":"array","items":{"type":"string"}}}})"),
          J(R"({"tags":["a","b",3]})")) == "/tags/2: expected string, got number");
}

TEST_CASE("Validator: properties, required, additionalProperties",
          "[engines][document][validator]") {
  const json schema = J(R"({"type":"object","required":["id","customer"],
    "properties":{"id":{"type":"string"},
                  "customer":{"type":"object","properties":{"age":{"type":"integer","minimum":18}}}}})");
  CHECK(Accepts(schema, J(R"({"id":"o1","customer":{"age":18},"extra":[1]})")));
  CHECK(Why(schema, J(R"({"id":"o1","customer":{"age":17}})")) ==
        "/customer/age: 17 is less than the minimum 18");
  CHECK(Why(schema, J(R"({"customer":{}})")) == "/: missing required property 'id'");
  CHECK(Why(schema, J(R"({"id":"o1"})")) == "/: missing required property 'customer'");
  CHECK(Why(schema, J(R"({"id":1,"customer":{}})")) == "/id: expected string, got number");
  // properties and required say nothing about non-objects.
  CHECK(Accepts(J(R"({"required":["a"],"properties":{"a":{"type":"string"}}})"), 5));
  CHECK(Accepts(J(R"({"required":[]})"), J("{}")));

  const json closed = J(R"({"properties":{"a":{}},"additionalProperties":false})");
  CHECK(Accepts(closed, J(R"({"a":1})")));
  CHECK(Why(closed, J(R"({"a":1,"zz":2})")) ==
        "/zz: property is not allowed (additionalProperties is false)");
  CHECK(Accepts(J(R"({"additionalProperties":true})"), J(R"({"x":1})")));
  const json typed =
      J(R"({"properties":{"a":{"type":"string"}},"additionalProperties":{"type":"integer"}})");
  CHECK(Accepts(typed, J(R"({"a":"x","b":2,"c":3.0})")));
  CHECK(Why(typed, J(R"({"a":"x","b":"y"})")) == "/b: expected integer, got string");
  CHECK(Why(J(R"({"properties":{"x":false}})"), J(R"({"x":null})")) ==
        "/x: no value is allowed here (the schema is false)");
}

TEST_CASE("Validator: enum and const use exact JSON equality", "[engines][document][validator]") {
  const json e = J(R"({"enum":[1,"a",null,{"k":[1,2]}]})");
  for (const json& v : {J("1.0"), J("1"), J(R"("a")"), J("null"), J(R"({"k":[1.0,2]})")})
    CHECK(Accepts(e, v));
  for (const json& v :
       {J("2"), J(R"("b")"), J(R"({"k":[2,1]})"), J("true"), J("[1]"), J(R"({"k":[1,2],"j":0})")}) {
    CHECK_FALSE(Accepts(e, v));
  }
  CHECK(Why(J(R"({"enum":["red","green"]})"), "blue") ==
        R"(/: "blue" is not one of the 2 values in enum)");
  CHECK(Why(J(R"({"enum":[1]})"), J("{}")) == "/: object is not one of the 1 value in enum");
  CHECK(Why(J(R"({"const":4})"), 3) == "/: 3 is not equal to the const value 4");
  CHECK(Why(J(R"({"const":false})"), 0) == "/: 0 is not equal to the const value false");
  CHECK(Accepts(J(R"({"const":{"b":[1,{"c":null}],"a":"x"}})"),
                J(R"({"a":"x","b":[1.0,{"c":null}]})")));
  CHECK_FALSE(Accepts(J(R"({"const":{"a":"x"}})"), J(R"({"a":"x","b":1})")));
  CHECK_FALSE(Accepts(J(R"({"const":[1,2]})"), J("[1,2,3]")));
  // uint64 max is not -1, and 2^53 + 1 is not the double 2^53.
  CHECK_FALSE(Accepts({{"enum", {-1}}}, kU64Max));
  CHECK_FALSE(Accepts({{"const", -1}}, kU64Max));
  CHECK(Accepts({{"const", kU64Max}}, J("18446744073709551615")));
  CHECK_FALSE(Accepts({{"const", 9007199254740992.0}}, std::int64_t{9007199254740993}));
  CHECK(Accepts({{"const", 9007199254740992.0}}, std::int64_t{9007199254740992}));
  CHECK(Accepts({{"const", 0}}, -0.0));
  // Long strings are cut in messages, on a code point boundary.
  const std::string long_text = std::string(31, 'x') + "\xC3\xA9" + "tail";
  CHECK(Why(J(R"({"const":"x"})"), long_text) ==
        "/: \"" + std::string(31, 'x') + "\xC3\xA9\"... is not equal to the const value \"x\"");
}

TEST_CASE("Validator: numeric bounds are exact across int64, uint64 and double",
          "[engines][document][validator]") {
  CHECK(Accepts(J(R"({"minimum":18})"), 18));
  CHECK(Accepts(J(R"({"minimum":18})"), 18.0));
  CHECK(Why(J(R"({"minimum":18})"), 17.999) == "/: 17.999 is less than the minimum 18");
  CHECK(Why(J(R"({"exclusiveMinimum":0})"), -0.0) ==
        "/: 0 is not greater than the exclusiveMinimum 0");
  CHECK(Accepts(J(R"({"exclusiveMinimum":0})"), 1e-300));
  CHECK(Why(J(R"({"maximum":0.3})"), 0.1 + 0.2) ==
        "/: 0.30000000000000004 is greater than the maximum 0.3");
  CHECK(Why(J(R"({"exclusiveMaximum":10})"), J("10.0")) ==
        "/: 10 is not less than the exclusiveMaximum 10");
  CHECK(Accepts(J(R"({"exclusiveMaximum":10})"), 9.999999999999998));
  // uint64 max is greater than 9.2e18 and than -1; it is below the double 2^64.
  CHECK(Why(J(R"({"maximum":9.2e18})"), kU64Max) ==
        "/: 18446744073709551615 is greater than the maximum 9.2e+18");
  CHECK(Why({{"maximum", -1}}, kU64Max) ==
        "/: 18446744073709551615 is greater than the maximum -1");
  CHECK(Accepts({{"minimum", -1}}, kU64Max));
  CHECK(Accepts({{"exclusiveMaximum", 18446744073709551616.0}}, kU64Max));
  CHECK_FALSE(Accepts({{"minimum", 18446744073709551616.0}}, kU64Max));
  CHECK_FALSE(Accepts({{"exclusiveMaximum", kU64Max}}, kU64Max));
  CHECK(Accepts({{"exclusiveMaximum", kU64Max}}, kU64Max - 1));
  // Around 2^53, where int64 -> double rounds.
  CHECK_FALSE(Accepts({{"maximum", 9007199254740992.0}}, std::int64_t{9007199254740993}));
  CHECK(Accepts({{"maximum", 9007199254740992.0}}, std::int64_t{9007199254740992}));
  CHECK_FALSE(Accepts({{"minimum", std::int64_t{9007199254740993}}}, 9007199254740992.0));
  // int64 min against the double -2^63.
  CHECK(Accepts({{"minimum", kI64Min}}, kI64Min));
  CHECK_FALSE(Accepts({{"exclusiveMinimum", -9223372036854775808.0}}, kI64Min));
  CHECK(Accepts({{"exclusiveMinimum", -9223372036854775808.0}}, kI64Min + 1));
  CHECK(Accepts({{"maximum", -9223372036854775808.0}}, -9223372036854777856.0));  // -2^63 - 2048
  CHECK_FALSE(Accepts({{"minimum", kI64Min}}, -9223372036854777856.0));
  // Fractions next to integers.
  CHECK_FALSE(Accepts({{"minimum", std::int64_t{-2}}}, -2.5));
  CHECK(Accepts({{"maximum", std::uint64_t{3}}}, 2.75));
  CHECK_FALSE(Accepts({{"maximum", std::uint64_t{3}}}, 3.25));
  // Bounds say nothing about non-numbers.
  CHECK(Accepts(J(R"({"minimum":5,"maximum":6})"), "abc"));
  CHECK(Accepts(J(R"({"minimum":5})"), J("[1]")));
}

TEST_CASE("Validator: string lengths count code points", "[engines][document][validator]") {
  const std::string e_acute = "\xC3\xA9";                // U+00E9, 2 bytes
  const std::string euro = "\xE2\x82\xAC";               // U+20AC, 3 bytes
  const std::string grin = "\xF0\x9F\x98\x80";           // U+1F600, 4 bytes
  const std::string four = "a" + e_acute + euro + grin;  // 4 code points, 10 bytes
  CHECK(Accepts(J(R"({"minLength":4,"maxLength":4})"), four));
  CHECK(Why(J(R"({"maxLength":3})"), four) ==
        "/: string has 4 code points, more than the maxLength 3");
  CHECK(Why(J(R"({"minLength":2})"), e_acute) ==
        "/: string has 1 code point, fewer than the minLength 2");
  CHECK(Accepts(J(R"({"maxLength":1})"), grin));
  CHECK(Accepts(J(R"({"maxLength":0})"), ""));
  CHECK(Why(J(R"({"minLength":1})"), "") ==
        "/: string has 0 code points, fewer than the minLength 1");
  CHECK(Accepts(J(R"({"maxLength":2.0})"), "ab"));
  CHECK(Accepts(J(R"({"minLength":3})"), 12345));  // not a string
}

TEST_CASE("Validator: arrays", "[engines][document][validator]") {
  const json s = J(R"({"items":{"type":"integer"},"minItems":1,"maxItems":3})");
  CHECK(Accepts(s, J("[1,2,3]")));
  CHECK(Why(s, J("[]")) == "/: array has 0 items, fewer than the minItems 1");
  CHECK(Why(s, J("[1,2,3,4]")) == "/: array has 4 items, more than the maxItems 3");
  CHECK(Why(s, J("[1,2.5]")) == "/1: expected integer, got number");
  CHECK(Why(J(R"({"minItems":2})"), J("[1]")) == "/: array has 1 item, fewer than the minItems 2");
  CHECK(Accepts(s, J(R"({"a":1})")));  // not an array

  const json unique = J(R"({"uniqueItems":true})");
  CHECK(Accepts(unique, J(R"([1,"1",true,null,[1],{"a":1},[]])")));
  CHECK(Accepts(unique, J("[[1,2],[2,1]]")));
  CHECK(Accepts(unique, json::array({json(kU64Max), json(-1)})));
  CHECK(Why(unique, J("[1,2,1.0]")) == "/: items 0 and 2 are equal, but uniqueItems is true");
  CHECK(Why(unique, J(R"([{"a":1,"b":[2]},{"b":[2.0],"a":1}])")) ==
        "/: items 0 and 1 are equal, but uniqueItems is true");
  // The first j that repeats an earlier item, paired with that item's first index.
  CHECK(Why(unique, J("[3,1,2,1,3,1]")) == "/: items 1 and 3 are equal, but uniqueItems is true");
  CHECK(Accepts(J(R"({"uniqueItems":false})"), J("[1,1]")));
}

TEST_CASE("Validator: object sizes", "[engines][document][validator]") {
  const json s = J(R"({"minProperties":1,"maxProperties":2})");
  CHECK(Accepts(s, J(R"({"a":1})")));
  CHECK(Why(s, J("{}")) == "/: object has 0 properties, fewer than the minProperties 1");
  CHECK(Why(s, J(R"({"a":1,"b":2,"c":3})")) ==
        "/: object has 3 properties, more than the maxProperties 2");
  CHECK(Why(J(R"({"minProperties":2})"), J(R"({"a":1})")) ==
        "/: object has 1 property, fewer than the minProperties 2");
  CHECK(Accepts(s, J("[]")));
}

TEST_CASE("Validator: allOf, anyOf, oneOf, not and boolean schemas",
          "[engines][document][validator]") {
  const json all = J(R"({"allOf":[{"type":"integer"},{"minimum":0}]})");
  CHECK(Accepts(all, 4));
  CHECK(Why(all, -1) == "/: -1 is less than the minimum 0");
  CHECK(Why(all, "a") == "/: expected integer, got string");

  const json any = J(R"({"anyOf":[{"type":"string"},{"type":"integer"}]})");
  CHECK(Accepts(any, "x"));
  CHECK(Accepts(any, 3));
  CHECK(Why(any, 1.5) ==
        "/: matches none of the 2 schemas in anyOf (first: /: expected string, got number)");

  const json one = J(R"({"oneOf":[{"type":"integer"},{"minimum":0}]})");
  CHECK(Accepts(one, -1));
  CHECK(Accepts(one, 0.5));
  CHECK(Why(one, 5) == "/: matches oneOf schemas 0 and 1, but exactly one must match");
  CHECK(Why(one, -0.5) ==
        "/: matches none of the 2 schemas in oneOf (first: /: expected integer, got number)");

  const json no = J(R"({"not":{"type":"null"}})");
  CHECK(Accepts(no, 0));
  CHECK(Why(no, nullptr) == "/: matches the schema in not");

  CHECK(Accepts(true, J(R"({"anything":[1,2]})")));
  CHECK(Why(false, 1) == "/: no value is allowed here (the schema is false)");
  CHECK(Accepts(J(R"({"items":{"anyOf":[false,{"const":1}]}})"), J("[1,1.0]")));
  CHECK(Why(J(R"({"properties":{"a":{"not":true}}})"), J(R"({"a":0})")) ==
        "/a: matches the schema in not");
}

TEST_CASE("Validator: annotations are accepted and ignored", "[engines][document][validator]") {
  const json s = J(R"({"title":"Order","description":"an order","$comment":"v2","default":{"x":1},
    "examples":[{"id":"a"}],"type":"object","properties":{"id":{"type":"string","title":"id","default":5}}})");
  CHECK(Accepts(s, J(R"({"id":"a"})")));
  CHECK(Why(s, J(R"({"id":5})")) == "/id: expected string, got number");
}

TEST_CASE("Validator: the first violation in document order", "[engines][document][validator]") {
  const json two = J(R"({"properties":{"a":{"type":"string"},"b":{"type":"string"}}})");
  CHECK(Why(two, J(R"({"b":1,"a":1})")) == "/a: expected string, got number");
  // A location precedes its members.
  CHECK(Why(J(R"({"required":["z"],"properties":{"a":{"type":"string"}}})"), J(R"({"a":1})")) ==
        "/: missing required property 'z'");
  // allOf branches compete on location with the schema's own members...
  CHECK(
      Why(J(R"({"properties":{"b":{"type":"string"}},"allOf":[{"properties":{"a":{"type":"string"}}}]})"),
          J(R"({"a":1,"b":2})")) == "/a: expected string, got number");
  CHECK(Why(J(R"({"properties":{"a":{"type":"string"}},"allOf":[{"required":["z"]}]})"),
            J(R"({"a":1})")) == "/: missing required property 'z'");
  // ...and, at the same location, the schema's own keywords come first.
  CHECK(
      Why(J(R"({"properties":{"a":{"type":"string"}},"allOf":[{"properties":{"a":{"minimum":5}}}]})"),
          J(R"({"a":1})")) == "/a: expected string, got number");
  // Array indices are ordered as numbers, not as text ("/10" < "/2" as text).
  json arr = json::array();
  for (int i = 0; i < 11; ++i) arr.push_back(i == 2 ? 9 : 0);
  arr[10] = "x";
  CHECK(Why(J(R"({"allOf":[{"items":{"type":"integer"}},{"items":{"maximum":5}}]})"), arr) ==
        "/2: 9 is greater than the maximum 5");
  // Members are ordered by the UTF-8 bytes of their keys.
  CHECK(Why(J(R"({"additionalProperties":{"type":"string"}})"), J(R"({"z":1,"\u00e9":1,"B":1})")) ==
        "/B: expected string, got number");
  CHECK(Why(J(R"({"additionalProperties":{"type":"string"}})"), J(R"({"z":1,"\u00e9":1})")) ==
        "/z: expected string, got number");
  // Keyword order at one location: type before const before enum before bounds.
  CHECK(Why(J(R"({"type":"string","const":"a","enum":["b"],"minLength":9})"), 1) ==
        "/: expected string, got number");
  CHECK(Why(J(R"({"const":"a","enum":["b"],"minLength":9})"), "c") ==
        R"(/: "c" is not equal to the const value "a")");
  CHECK(Why(J(R"({"enum":["b"],"minLength":9})"), "c") ==
        R"(/: "c" is not one of the 1 value in enum)");
  CHECK(Why(J(R"({"minimum":5,"exclusiveMinimum":4})"), 3) == "/: 3 is less than the minimum 5");
  CHECK(Why(J(R"({"maximum":5,"exclusiveMinimum":4})"), 3) ==
        "/: 3 is not greater than the exclusiveMinimum 4");
  // Pointer tokens are escaped per RFC 6901.
  CHECK(Why(J(R"({"properties":{"a/b~c":{"type":"null"}}})"), J(R"({"a/b~c":1})")) ==
        "/a~1b~0c: expected null, got number");
}

TEST_CASE("Validator: messages are deterministic and validators are values",
          "[engines][document][validator]") {
  const json schema =
      J(R"({"properties":{"x":{"anyOf":[{"type":"string"},{"items":{"maximum":1}}]}}})");
  const json doc = J(R"({"x":[0,3]})");
  const Validator a = Make(schema);
  const Validator b =
      a;  // NOLINT(performance-unnecessary-copy-initialization): copies share the tree
  const std::string first = a.Validate(doc).message();
  CHECK(first ==
        "/x: matches none of the 2 schemas in anyOf (first: /x: expected string, got array)");
  for (int i = 0; i < 5; ++i) {
    CHECK(a.Validate(doc).message() == first);
    CHECK(b.Validate(doc).message() == first);
    CHECK(Make(schema).Validate(doc).message() == first);
  }
}

TEST_CASE("Validator: canonical form of the schema", "[engines][document][validator]") {
  const json schema =
      J(R"({"type":"object","properties":{"b":{},"a":{"minimum":1.0, "title":"\u00e9"}}})");
  const Validator v = Make(schema);
  CHECK(v.canonical() ==
        "{\"properties\":{\"a\":{\"minimum\":1,\"title\":\"\xC3\xA9\"},\"b\":{}},\"type\":"
        "\"object\"}");
  CHECK(v.canonical() == *CanonicalJson(schema));
  CHECK(Make(true).canonical() == "true");
}

TEST_CASE("Validator: bad schemas are refused with their location",
          "[engines][document][validator]") {
  CHECK(ParseError(J(R"({"properties":{"age":{"minimun":18}}})")) ==
        "/properties/age/minimun: unknown keyword 'minimun'");
  CHECK(ParseError(J(R"({"$ref":"#/x"})")) == "/$ref: unknown keyword '$ref'");
  CHECK(ParseError(J(R"({"properties":{"age":{"minimum":"18"}}})")) ==
        "/properties/age/minimum: minimum must be a number, got string");
  CHECK(ParseError(J(R"({"minLength":-1})")) ==
        "/minLength: minLength must be a non-negative integer, got -1");
  CHECK(ParseError(J(R"({"maxItems":1.5})")) ==
        "/maxItems: maxItems must be a non-negative integer, got 1.5");
  CHECK(ParseError(J(R"({"minProperties":"1"})")) ==
        R"(/minProperties: minProperties must be a non-negative integer, got "1")");
  CHECK(ParseError(J(R"({"type":"float"})")) == R"(/type: unknown type "float")");
  CHECK(ParseError(J(R"({"type":[]})")).starts_with("/type: type must be"));
  CHECK(ParseError(J(R"({"type":["string","string"]})")) == R"(/type/1: duplicate type "string")");
  CHECK(ParseError(J(R"({"type":["string",1]})")) ==
        "/type/1: type names must be strings, got number");
  CHECK(ParseError(J(R"({"required":"id"})")).starts_with("/required: required must be an array"));
  CHECK(ParseError(J(R"({"required":["a",1]})")) ==
        "/required/1: required entries must be strings, got number");
  CHECK(ParseError(J(R"({"required":["a","b","a"]})")) ==
        R"(/required/2: duplicate required property "a")");
  CHECK(ParseError(J(R"({"enum":[]})")) == "/enum: enum must be a non-empty array");
  CHECK(ParseError(J(R"({"enum":3})")) == "/enum: enum must be a non-empty array");
  CHECK(ParseError(J(R"({"allOf":[]})")) == "/allOf: allOf must be a non-empty array of schemas");
  CHECK(ParseError(J(R"({"anyOf":{}})")) == "/anyOf: anyOf must be a non-empty array of schemas");
  CHECK(ParseError(J(R"({"oneOf":[{},5]})")) ==
        "/oneOf/1: a schema must be an object or a boolean, got number");
  CHECK(ParseError(J(R"({"not":"x"})")) ==
        "/not: a schema must be an object or a boolean, got string");
  CHECK(ParseError(J(R"({"items":[{}]})")) ==
        "/items: a schema must be an object or a boolean, got array");
  CHECK(ParseError(J(R"({"additionalProperties":1})"))
            .starts_with("/additionalProperties: a schema must be"));
  CHECK(ParseError(J(R"({"properties":[]})")) ==
        "/properties: properties must be an object of schemas, got array");
  CHECK(ParseError(J(R"({"uniqueItems":1})")) ==
        "/uniqueItems: uniqueItems must be true or false, got number");
  CHECK(ParseError(J(R"({"title":5})")) == "/title: title must be a string, got number");
  CHECK(ParseError(J(R"({"examples":{}})")) == "/examples: examples must be an array, got object");
  CHECK(ParseError(J("[]")) == "/: a schema must be an object or a boolean, got array");
  CHECK(ParseError(J("null")) == "/: a schema must be an object or a boolean, got null");
  CHECK(ParseError(J(R"({"properties":{"a/b":{"bad":1}}})")) ==
        "/properties/a~1b/bad: unknown keyword 'bad'");
  // Bounds that no value can satisfy.
  CHECK(ParseError(J(R"({"minLength":5,"maxLength":3})")) ==
        "/maxLength: maxLength 3 is less than minLength 5");
  CHECK(ParseError(J(R"({"minItems":2,"maxItems":1})")) ==
        "/maxItems: maxItems 1 is less than minItems 2");
  CHECK(ParseError(J(R"({"minProperties":2,"maxProperties":0})")) ==
        "/maxProperties: maxProperties 0 is less than minProperties 2");
  CHECK(ParseError(J(R"({"minimum":5,"maximum":4.5})")) ==
        "/maximum: no number satisfies both minimum 5 and maximum 4.5");
  CHECK(ParseError(J(R"({"exclusiveMinimum":5,"maximum":5})")) ==
        "/maximum: no number satisfies both exclusiveMinimum 5 and maximum 5");
  CHECK(ParseError(J(R"({"minimum":1,"exclusiveMaximum":1.0})")) ==
        "/exclusiveMaximum: no number satisfies both minimum 1 and exclusiveMaximum 1");
  CHECK(ParseError({{"exclusiveMinimum", kU64Max}, {"exclusiveMaximum", -1}}) ==
        "/exclusiveMaximum: no number satisfies both exclusiveMinimum 18446744073709551615 and "
        "exclusiveMaximum -1");
  CHECK(Validator::Parse(J(R"({"minimum":5,"maximum":5,"minLength":2,"maxLength":2})")).ok());
  CHECK(Validator::Parse({{"minimum", -1}, {"maximum", kU64Max}}).ok());
  // Not JSON: no canonical form.
  CHECK(ParseError({{"minimum", std::nan("")}}) == "/minimum: minimum must be a finite number");
  CHECK(ParseError({{"const", std::nan("")}}).starts_with("schema has no canonical JSON form: "));
  CHECK(ParseError({{"description", "\xC3"}}).starts_with("schema has no canonical JSON form: "));
}

TEST_CASE("Validator: schema nesting is bounded", "[engines][document][validator]") {
  auto nested = [](int levels) {
    json s = {{"type", "integer"}};
    for (int i = 0; i < levels; ++i) s = {{"items", s}};
    return s;
  };
  const Validator ok = Make(nested(kMaxSchemaDepth));
  json doc = 1;
  for (int i = 0; i < kMaxSchemaDepth; ++i) doc = json::array({doc});
  CHECK(ok.Validate(doc).ok());
  std::string pointer;
  json bad = "x";
  for (int i = 0; i < kMaxSchemaDepth; ++i) {
    bad = json::array({bad});
    pointer += "/0";
  }
  CHECK(ok.Validate(bad).message() == pointer + ": expected integer, got string");

  std::string at;
  for (int i = 0; i <= kMaxSchemaDepth; ++i) at += "/items";
  CHECK(ParseError(nested(kMaxSchemaDepth + 1)) == at + ": schema nested deeper than 32");
  json logical = true;
  for (int i = 0; i < 100; ++i) logical = {{"anyOf", json::array({logical})}};
  CHECK(ParseError(logical).find("schema nested deeper than 32") != std::string::npos);

  // Equality on deep documents does not recurse.
  json deep_a = 1, deep_b = 1;
  for (int i = 0; i < 100000; ++i) {
    deep_a = json::array({std::move(deep_a)});
    deep_b = json::array({std::move(deep_b)});
  }
  json pair = json::array();
  pair.push_back(std::move(deep_a));
  pair.push_back(std::move(deep_b));
  CHECK(Make(J(R"({"uniqueItems":true})")).Validate(pair).message() ==
        "/: items 0 and 1 are equal, but uniqueItems is true");
}

// --- Randomized: a naive model of type + minimum + maximum + required. ---

struct ModelProperty {
  std::optional<std::string> type;  // integer, number, string, boolean
  std::optional<double> minimum, maximum;
};

struct Model {
  std::map<std::string, ModelProperty> properties;
  std::vector<std::string> required;
};

const char* const kKeys[] = {"B", "a", "b", "c", "\xC3\xA9"};

double RandomBound(std::mt19937_64& rng) {
  const double whole = static_cast<double>(static_cast<int>(rng() % 11) - 5);
  return rng() % 3 == 0 ? whole + 0.5 : whole;
}

json ToSchema(const Model& m) {
  json s = {{"type", "object"}, {"properties", json::object()}};
  if (!m.required.empty()) s["required"] = m.required;
  for (const auto& [key, p] : m.properties) {
    json ps = json::object();
    if (p.type) ps["type"] = *p.type;
    auto number = [](double d) {
      return std::trunc(d) == d ? json(static_cast<std::int64_t>(d)) : json(d);
    };
    if (p.minimum) ps["minimum"] = number(*p.minimum);
    if (p.maximum) ps["maximum"] = number(*p.maximum);
    s["properties"][key] = ps;
  }
  return s;
}

Model RandomModel(std::mt19937_64& rng) {
  static const char* const types[] = {"integer", "number", "string", "boolean"};
  Model m;
  for (const char* key : kKeys) {
    if (rng() % 4 == 0) continue;
    ModelProperty p;
    if (rng() % 3 != 0) p.type = types[rng() % 4];
    if (rng() % 2 == 0) p.minimum = RandomBound(rng);
    if (rng() % 2 == 0) p.maximum = RandomBound(rng);
    if (p.minimum && p.maximum && *p.minimum > *p.maximum) std::swap(p.minimum, p.maximum);
    m.properties[key] = p;
  }
  for (const char* key : kKeys) {
    if (rng() % 4 == 0) m.required.emplace_back(key);
  }
  return m;
}

json RandomValue(std::mt19937_64& rng) {
  const int small = static_cast<int>(rng() % 15) - 7;
  switch (rng() % 7) {
    case 0:
      return small;  // int64
    case 1:
      return static_cast<std::uint64_t>(rng() % 8);  // uint64
    case 2:
      return small + 0.5;  // fractional double
    case 3:
      return static_cast<double>(small);  // integral double
    case 4:
      return std::string(rng() % 3, 'x');
    case 5:
      return rng() % 2 == 0;
    default:
      return nullptr;
  }
}

// Returns {pointer, rule} of the first violation, written from the spec, not
// from the implementation: required first (schema order), then members in
// key byte order, each checking type, then minimum, then maximum.
std::optional<std::pair<std::string, std::string>> ModelFirstViolation(const Model& m,
                                                                       const json& doc) {
  for (const auto& key : m.required) {
    if (doc.find(key) == doc.end())
      return std::make_pair(std::string("/"), std::string("required"));
  }
  std::map<std::string, json> members;  // std::map<std::string> orders by bytes
  for (auto it = doc.begin(); it != doc.end(); ++it) members[it.key()] = it.value();
  for (const auto& [key, value] : members) {
    const auto p = m.properties.find(key);
    if (p == m.properties.end()) continue;
    const std::string where = "/" + key;
    const bool number = value.is_number();
    const double x = number ? value.get<double>() : 0;  // exact: small values
    if (p->second.type) {
      const std::string& t = *p->second.type;
      const bool ok =
          (t == "number" && number) || (t == "integer" && number && std::floor(x) == x) ||
          (t == "string" && value.is_string()) || (t == "boolean" && value.is_boolean());
      if (!ok) return std::make_pair(where, std::string("type"));
    }
    if (number && p->second.minimum && x < *p->second.minimum)
      return std::make_pair(where, std::string("minimum"));
    if (number && p->second.maximum && x > *p->second.maximum)
      return std::make_pair(where, std::string("maximum"));
  }
  return std::nullopt;
}

TEST_CASE("Validator agrees with a naive model on random documents",
          "[engines][document][validator]") {
  const std::map<std::string, std::string> rule_text = {
      {"required", ": missing required property '"},
      {"type", ": expected "},
      {"minimum", " is less than the minimum "},
      {"maximum", " is greater than the maximum "}};
  std::mt19937_64 rng(20240607);
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 400; ++round) {
    const Model model = RandomModel(rng);
    const json schema = ToSchema(model);
    const Validator v = Make(schema);
    for (int d = 0; d < 10; ++d) {
      json doc = json::object();
      for (const char* key : kKeys) {
        if (rng() % 4 != 0) doc[key] = RandomValue(rng);
      }
      if (rng() % 5 == 0) doc["extra"] = RandomValue(rng);
      const auto expected = ModelFirstViolation(model, doc);
      const Status got = v.Validate(doc);
      INFO(Text(schema) << " on " << Text(doc) << ": " << got.ToString());
      REQUIRE(got.ok() == !expected.has_value());
      if (!expected) {
        ++accepted;
        continue;
      }
      ++rejected;
      CHECK(got.message().starts_with(expected->first + ": "));
      CHECK(got.message().find(rule_text.at(expected->second)) != std::string::npos);
    }
  }
  // Both outcomes are well exercised.
  CAPTURE(accepted, rejected);
  CHECK(accepted > 200);  // 352 and 3648 with this seed
  CHECK(rejected > 2000);
}

// --- Randomized: numeric bounds and const against long double arithmetic. ---

json RandomEdgeNumber(std::mt19937_64& rng) {
  const int delta = static_cast<int>(rng() % 5) - 2;
  switch (rng() % 6) {
    case 0: {
      const std::int64_t bases[] = {
          kI64Min, -9007199254740993, -1,
          0,       9007199254740993,  std::numeric_limits<std::int64_t>::max()};
      const std::int64_t b = bases[rng() % 6];
      if ((b == kI64Min && delta < 0) ||
          (b == std::numeric_limits<std::int64_t>::max() && delta > 0))
        return b;
      return b + delta;
    }
    case 1: {
      const std::uint64_t bases[] = {0, 9007199254740993ULL, 9223372036854775808ULL, kU64Max};
      const std::uint64_t b = bases[rng() % 4];
      if ((b == 0 && delta < 0) || (b == kU64Max && delta > 0)) return b;
      return b + static_cast<std::uint64_t>(static_cast<std::int64_t>(delta));
    }
    case 2: {
      const double bases[] = {-0x1p63, -0x1p53, -1.0, -0.0, 0.5, 0x1p53, 9.2e18, 0x1p63, 0x1p64};
      return std::nextafter(bases[rng() % 9], delta < 0 ? -INFINITY : INFINITY);
    }
    case 3: {
      const double bases[] = {-0x1p63, -0x1p53, -1.0,   0.0,    0.5,
                              0x1p53,  9.2e18,  0x1p63, 0x1p64, 1e300};
      return bases[rng() % 10];
    }
    case 4:
      return static_cast<double>(static_cast<std::int64_t>(rng())) / 1024.0;
    default:
      return static_cast<std::int64_t>(rng());
  }
}

long double Exact(const json& n) {
  if (n.is_number_unsigned()) return static_cast<long double>(n.get<std::uint64_t>());
  if (n.is_number_integer()) return static_cast<long double>(n.get<std::int64_t>());
  return static_cast<long double>(n.get<double>());
}

TEST_CASE("Validator: numeric comparisons agree with exact arithmetic",
          "[engines][document][validator]") {
  if constexpr (std::numeric_limits<long double>::digits < 64) {
    SUCCEED("long double cannot hold every int64/uint64 exactly on this platform");
    return;
  }
  std::mt19937_64 rng(99);
  for (int i = 0; i < 5000; ++i) {
    const json bound = RandomEdgeNumber(rng);
    const json value = RandomEdgeNumber(rng);
    const long double b = Exact(bound), x = Exact(value);
    INFO("bound " << bound.dump() << " value " << value.dump());
    CHECK(Accepts({{"minimum", bound}}, value) == (x >= b));
    CHECK(Accepts({{"maximum", bound}}, value) == (x <= b));
    CHECK(Accepts({{"exclusiveMinimum", bound}}, value) == (x > b));
    CHECK(Accepts({{"exclusiveMaximum", bound}}, value) == (x < b));
    CHECK(Accepts({{"const", bound}}, value) == (x == b));
    CHECK(Accepts({{"uniqueItems", true}}, json::array({bound, value})) == (x != b));
  }
}

}  // namespace
}  // namespace vellum::engines::document
