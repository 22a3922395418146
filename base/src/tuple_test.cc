#include "vellum/base/tuple.h"

#include <limits>
#include <random>

#include <catch2/catch.hpp>

namespace vellum {
namespace {

using E = TupleElement;

std::string Enc(const Tuple& t) { return *EncodeTuple(t); }

// Small alphabets so that random tuples often share prefixes, equal values and
// embedded zero bytes.
class Gen {
 public:
  explicit Gen(std::uint32_t seed) : rng_(seed) {}

  Tuple RandomTuple(int depth) {
    Tuple t;
    const int n = Pick(0, 4);
    for (int i = 0; i < n; ++i) t.push_back(RandomElement(depth));
    return t;
  }

 private:
  int Pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  std::int64_t RandomInt() {
    static constexpr std::int64_t kEdges[] = {std::numeric_limits<std::int64_t>::min(), -256, -1, 0, 1, 255,
                                              256, std::numeric_limits<std::int64_t>::max()};
    if (Pick(0, 1) == 0) return kEdges[Pick(0, 7)];
    return static_cast<std::int64_t>(rng_()) * (Pick(0, 1) ? 1 : -1) * (Pick(0, 1) ? 1 : 65536);
  }

  std::string RandomBytes() {
    static constexpr char kAlphabet[] = {'\0', '\x01', 'a', 'b', '\xfe', '\xff'};
    std::string s;
    const int n = Pick(0, 4);
    for (int i = 0; i < n; ++i) s.push_back(kAlphabet[Pick(0, 5)]);
    return s;
  }

  E RandomElement(int depth) {
    switch (Pick(0, depth < 3 ? 7 : 6)) {
      case 0: return E::Null();
      case 1: return E::Bool(Pick(0, 1) == 1);
      case 2: return E::Int64(RandomInt());
      case 3: return E::Uint64(static_cast<std::uint64_t>(RandomInt()));
      case 4: return E::Time(RandomInt());
      case 5: return E::Bytes(RandomBytes());
      case 6: return E::String(RandomBytes());
      default: return E::Nested(RandomTuple(depth + 1));
    }
  }

  std::mt19937 rng_;
};

int Sign(int c) { return (c > 0) - (c < 0); }

TEST_CASE("tuple byte order equals logical order on random tuples", "[base][tuple]") {
  Gen gen(12345);
  std::vector<Tuple> tuples;
  for (int i = 0; i < 400; ++i) tuples.push_back(gen.RandomTuple(0));
  std::vector<std::string> enc;
  for (const Tuple& t : tuples) enc.push_back(Enc(t));
  for (size_t i = 0; i < tuples.size(); ++i) {
    auto back = DecodeTuple(enc[i]);
    REQUIRE(back.ok());
    CHECK(CompareTuples(*back, tuples[i]) == 0);
    CHECK(Enc(*back) == enc[i]);
    for (size_t j = 0; j < tuples.size(); ++j) {
      const int logical = Sign(CompareTuples(tuples[i], tuples[j]));
      const int bytes = Sign(enc[i].compare(enc[j]));
      if (logical != bytes) FAIL("order mismatch between tuples " << i << " and " << j);
    }
  }
}

TEST_CASE("tuple encoding known answers", "[base][tuple]") {
  CHECK(Enc({}) == "");
  CHECK(Enc({E::Null()}) == std::string("\x01", 1));
  CHECK(Enc({E::Bool(true)}) == std::string("\x02\x01", 2));
  CHECK(Enc({E::Int64(-1)}) == std::string("\x03\x7f\xff\xff\xff\xff\xff\xff\xff", 9));
  CHECK(Enc({E::Int64(0)}) == std::string("\x03\x80\x00\x00\x00\x00\x00\x00\x00", 9));
  CHECK(Enc({E::Uint64(258)}) == std::string("\x04\x00\x00\x00\x00\x00\x00\x01\x02", 9));
  CHECK(Enc({E::String(std::string("a\0b", 3))}) == std::string("\x07" "a\x00\xff" "b\x00", 6));
  CHECK(Enc({E::Nested({E::Bytes("x")}), E::Null()}) == std::string("\x08\x06x\x00\x00\x01", 6));
  // Prefix order: ("a") < ("a", null) < ("a\0") < ("ab").
  CHECK(Enc({E::String("a")}) < Enc({E::String("a"), E::Null()}));
  CHECK(Enc({E::String("a"), E::Null()}) < Enc({E::String(std::string("a\0", 2))}));
  CHECK(Enc({E::String(std::string("a\0", 2))}) < Enc({E::String("ab")}));
  CHECK(Enc({E::Int64(std::numeric_limits<std::int64_t>::min())}) < Enc({E::Int64(-1)}));
}

TEST_CASE("tuple decoder is strict", "[base][tuple]") {
  const std::string bad[] = {
      std::string("\x00", 1),                  // terminator at top level
      std::string("\x09", 1),                  // unknown tag
      std::string("\x02\x02", 2),              // bool byte 2
      std::string("\x02", 1),                  // truncated bool
      std::string("\x03\x00\x00", 3),          // truncated int
      std::string("\x06" "abc", 4),            // unterminated bytes
      std::string("\x07" "a\x00\xff", 4),      // escaped zero, then end
      std::string("\x08\x01", 2),              // unterminated nested tuple
  };
  for (const std::string& b : bad) {
    auto r = DecodeTuple(b);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
  }
  std::string deep(kMaxTupleDepth + 1, '\x08');
  deep.append(kMaxTupleDepth + 1, '\0');
  CHECK(DecodeTuple(deep).status().code() == StatusCode::kInvalidArgument);
  Tuple nested;
  for (int i = 0; i <= kMaxTupleDepth; ++i) nested = Tuple{E::Nested(std::move(nested))};
  CHECK(EncodeTuple(nested).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("tuple prefix range covers exactly the extensions", "[base][tuple]") {
  const Tuple prefix = {E::String("users"), E::Int64(7)};
  auto range = TuplePrefixRange(prefix);
  REQUIRE(range.ok());
  REQUIRE(range->hi.has_value());
  auto in = [&](const Tuple& t) {
    const std::string k = Enc(t);
    return k >= range->lo && k < *range->hi;
  };
  CHECK(in(prefix));
  CHECK(in({E::String("users"), E::Int64(7), E::String("")}));
  CHECK(in({E::String("users"), E::Int64(7), E::Nested({E::Null()})}));
  CHECK_FALSE(in({E::String("users"), E::Int64(8)}));
  CHECK_FALSE(in({E::String("users"), E::Int64(6), E::Null()}));
  CHECK_FALSE(in({E::String("users")}));
  CHECK(PrefixSuccessor("ab\xff\xff") == std::optional<std::string>("ac"));
  CHECK(PrefixSuccessor("\xff") == std::nullopt);
  CHECK(PrefixSuccessor("") == std::nullopt);
}

}  // namespace
}  // namespace vellum
