#include "vellum/engines/document/canonical_json.h"

#include <random>

#include <catch2/catch.hpp>

namespace vellum::engines::document {
namespace {

std::string Canon(std::string_view text) {
  auto r = CanonicalizeJsonText(text);
  INFO(std::string(text) << " -> " << r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

TEST_CASE("Canonical JSON: sorted keys, no whitespace, one number form", "[engines][document][json]") {
  CHECK(Canon(R"( { "b" : 1, "a" : [ true, null, "x" ] } )") == R"({"a":[true,null,"x"],"b":1})");
  CHECK(Canon(R"({"é":1,"z":2,"A":3})") == R"({"A":3,"z":2,"é":1})");  // UTF-8 byte order
  CHECK(Canon("1.0") == "1");
  CHECK(Canon("-0.0") == "0");
  CHECK(Canon("1e2") == "100");
  CHECK(Canon("0.1") == "0.1");
  CHECK(Canon("1.5e300") == "1.5e+300");
  CHECK(Canon("18446744073709551615") == "18446744073709551615");
  CHECK(Canon("-9223372036854775808") == "-9223372036854775808");
  CHECK(Canon("9007199254740993.0") == "9007199254740992");  // double rounding, printed shortest
  CHECK(Canon(R"("tab\there \u00e9 \u0001 \/")") == "\"tab\\there \xc3\xa9 \\u0001 /\"");
  CHECK(Canon(R"("\ud83d\ude00")") == "\"\xf0\x9f\x98\x80\"");
}

TEST_CASE("Strict parsing rejects what has no single meaning", "[engines][document][json]") {
  for (const char* bad : {"{\"a\":1,\"a\":2}", "[1,]", "{\"a\":1,}", "// c\n1", "NaN", "Infinity", "01", "'x'",
                          "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "", "[1] 2", "{\"a\":{\"b\":1,\"b\":2}}"}) {
    INFO(bad);
    auto r = CanonicalizeJsonText(bad);
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
  }
  std::string deep(kMaxJsonDepth + 1, '[');
  deep += std::string(kMaxJsonDepth + 1, ']');
  CHECK(CanonicalizeJsonText(deep).status().message().find("nesting") != std::string::npos);
  std::string ok_depth(kMaxJsonDepth, '[');
  ok_depth += std::string(kMaxJsonDepth, ']');
  CHECK(CanonicalizeJsonText(ok_depth).ok());
  CHECK(CanonicalJson(nlohmann::json(std::nan(""))).status().code() == StatusCode::kInvalidArgument);
}

nlohmann::json RandomValue(std::mt19937_64& rng, int depth) {
  switch (rng() % (depth > 3 ? 5 : 7)) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: return static_cast<std::int64_t>(rng()) >> (rng() % 64);
    case 3: return std::ldexp(static_cast<double>(static_cast<std::int64_t>(rng() >> 11)), static_cast<int>(rng() % 80) - 60);
    case 4: {
      std::string s;
      const char alphabet[] = "ab\"\\\n\x01 \xc3\xa9z";
      for (size_t i = rng() % 6; i > 0; --i) s += alphabet[rng() % (sizeof alphabet - 1)];
      if (!s.empty() && (static_cast<unsigned char>(s.back()) == 0xc3)) s.pop_back();
      // Drop an orphaned continuation byte produced by the random picks.
      std::string clean;
      for (size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == 0xc3 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xa9) { clean += "\xc3\xa9"; ++i; }
        else if (c < 0x80) clean += s[i];
      }
      return clean;
    }
    case 5: {
      nlohmann::json a = nlohmann::json::array();
      for (size_t i = rng() % 4; i > 0; --i) a.push_back(RandomValue(rng, depth + 1));
      return a;
    }
    default: {
      nlohmann::json o = nlohmann::json::object();
      for (size_t i = rng() % 4; i > 0; --i) o["k" + std::to_string(rng() % 10)] = RandomValue(rng, depth + 1);
      return o;
    }
  }
}

TEST_CASE("Canonical form is a fixed point and ignores formatting", "[engines][document][json]") {
  std::mt19937_64 rng(17);
  for (int i = 0; i < 2000; ++i) {
    const nlohmann::json v = RandomValue(rng, 0);
    auto canon = CanonicalJson(v);
    REQUIRE(canon.ok());
    CHECK(Canon(*canon) == *canon);
    CHECK(Canon(v.dump(2)) == *canon);
    CHECK(Canon(v.dump(-1, ' ', /*ensure_ascii=*/true)) == *canon);
  }
}

}  // namespace
}  // namespace vellum::engines::document
