#include "vellum/base/bytes.h"

#include <random>

#include <catch2/catch.hpp>

namespace vellum {
namespace {

TEST_CASE("Hex round-trips and rejects bad input", "[base]") {
  CHECK(HexEncode(std::string("\x00\xff\x10", 3)) == "00ff10");
  CHECK(*HexDecode("00FF10") == std::string("\x00\xff\x10", 3));
  CHECK(HexDecode("abc").status().code() == StatusCode::kInvalidArgument);
  CHECK(HexDecode("zz").status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Base64 matches RFC 4648 test vectors", "[base]") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    CHECK(Base64Encode(plain) == encoded);
    CHECK(*Base64Decode(encoded) == plain);
    std::string appended = "prefix:";
    Base64EncodeAppend(&appended, plain);
    CHECK(appended == std::string("prefix:") + encoded);
  }
}

TEST_CASE("Base64 is strict", "[base]") {
  CHECK_FALSE(Base64Decode("Zg=").ok());
  CHECK_FALSE(Base64Decode("Zh==").ok());  // non-zero trailing bits
  CHECK_FALSE(Base64Decode("Z===").ok());
  CHECK_FALSE(Base64Decode("Zg==Zg==").ok());
  CHECK_FALSE(Base64Decode("Zm9v\n").ok());
  CHECK_FALSE(Base64Decode("Zm9*").ok());
}

TEST_CASE("Base64 and hex round-trip random bytes", "[base]") {
  std::mt19937_64 rng(7);
  for (int len = 0; len < 200; ++len) {
    std::string s(static_cast<size_t>(len), '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    CHECK(*Base64Decode(Base64Encode(s)) == s);
    CHECK(*HexDecode(HexEncode(s)) == s);
  }
}

}  // namespace
}  // namespace vellum
