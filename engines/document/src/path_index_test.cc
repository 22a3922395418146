#include "vellum/engines/document/path_index.h"

#include <limits>
#include <random>

#include <catch2/catch.hpp>

namespace vellum::engines::document {
namespace {

using nlohmann::json;

json Scalar(std::mt19937_64& rng) {
  switch (rng() % 10) {
    case 0: return static_cast<std::int64_t>(rng() % 21) - 10;
    case 1: return static_cast<double>(static_cast<std::int64_t>(rng() % 81) - 40) / 4.0;
    case 2: return std::numeric_limits<std::uint64_t>::max() - rng() % 3;
    case 3: return std::numeric_limits<std::int64_t>::min() + static_cast<std::int64_t>(rng() % 3);
    case 4: return std::string(1, static_cast<char>('a' + rng() % 4)) + std::string(rng() % 2, 'b');
    case 5: return rng() % 2 == 0;
    case 6: return nullptr;
    case 7: return std::string(kMaxIndexedStringBytes - 1 + rng() % 3, 'z') + std::string(1, static_cast<char>('a' + rng() % 2));
    case 8: return -0.0;
    default: return static_cast<std::uint64_t>(rng() % 5);
  }
}

json Value(std::mt19937_64& rng, int depth) {
  if (depth > 2 || rng() % 3 != 0) return Scalar(rng);
  if (rng() % 2 == 0) {
    json a = json::array();
    for (size_t n = rng() % 4; n > 0; --n) a.push_back(Value(rng, depth + 1));
    return a;
  }
  return {{"b", Value(rng, depth + 1)}, {"c", Value(rng, depth + 1)}};
}

// The property every index-backed find rests on: a document that matches a
// filter has an index key inside one of the ranges IndexRanges gives.
bool Covered(const json& doc, const std::string& path, const std::vector<merkle::MapRangeQuery>& ranges) {
  auto values = IndexValues(doc, path);
  REQUIRE(values.ok());
  for (const auto& v : *values) {
    const std::string key = IndexKey(v, "some-id");
    for (const auto& r : ranges) {
      if (key >= r.lo && (!r.hi.has_value() || key < *r.hi)) return true;
    }
  }
  return false;
}

TEST_CASE("Every document a filter matches lies in the index ranges of its path (randomized)", "[document][index]") {
  std::mt19937_64 rng(91);
  static const char* const kOps[] = {"$eq", "$gt", "$gte", "$lt", "$lte", "$in"};
  size_t served = 0, matched = 0;
  for (int round = 0; round < 20000; ++round) {
    json doc = {{"a", Value(rng, 0)}};
    if (rng() % 3 == 0) doc = {{"a", json::array({{{"b", Value(rng, 1)}}, {{"b", Value(rng, 1)}}})}};
    const std::string path = rng() % 2 == 0 ? "a" : "a.b";
    const std::string op = kOps[rng() % 6];
    json operand = Scalar(rng);
    if (op == "$in") operand = json::array({Scalar(rng), Scalar(rng)});
    auto filter = Filter::Parse({{path, {{op, operand}}}});
    REQUIRE(filter.ok());
    auto ranges = IndexRanges(*filter, path);
    if (!ranges.has_value()) continue;
    ++served;
    if (!filter->Matches(doc)) continue;
    ++matched;
    INFO("doc " << doc.dump() << " filter " << path << " " << op << " " << operand.dump());
    CHECK(Covered(doc, path, *ranges));
  }
  CHECK(served > 10000);
  CHECK(matched > 1000);
}

TEST_CASE("Single-valued: intersected ranges still hold every matching document (randomized)", "[document][index]") {
  std::mt19937_64 rng(17);
  static const char* const kOps[] = {"$eq", "$gt", "$gte", "$lt", "$lte", "$in"};
  size_t matched = 0, narrower = 0;
  for (int round = 0; round < 20000; ++round) {
    json value = Scalar(rng);
    if (rng() % 5 == 0) value = json::array({value});  // one element: still one value
    const json doc = {{"a", value}};
    json conditions = json::object();
    for (size_t n = 1 + rng() % 3; n > 0; --n) {
      const std::string op = kOps[rng() % 6];
      conditions[op] = op == "$in" ? json::array({Scalar(rng), Scalar(rng), Scalar(rng)}) : Scalar(rng);
    }
    auto filter = Filter::Parse({{"a", conditions}});
    REQUIRE(filter.ok());
    auto ranges = IndexRanges(*filter, "a", /*single_valued=*/true);
    if (!ranges.has_value()) continue;
    auto single = IndexRanges(*filter, "a");
    if (single.has_value() && ranges->size() <= single->size()) ++narrower;
    if (!filter->Matches(doc)) continue;
    ++matched;
    INFO("doc " << doc.dump() << " filter " << conditions.dump());
    CHECK(Covered(doc, "a", *ranges));
  }
  CHECK(matched > 500);
  CHECK(narrower > 1000);
  // Two bounds give one closed range; contradictory types give none.
  auto both = Filter::Parse(json::parse(R"({"a":{"$gte":10,"$lt":20}})"));
  auto r = IndexRanges(*both, "a", true);
  REQUIRE(r.has_value());
  REQUIRE(r->size() == 1);
  CHECK(IndexKey(*IndexValue(json(15)), "x") > r->front().lo);
  CHECK(IndexKey(*IndexValue(json(25)), "x") > *r->front().hi);
  auto clash = Filter::Parse(json::parse(R"({"a":{"$gt":1,"$lt":"b"}})"));
  CHECK(IndexRanges(*clash, "a", true)->empty());
  auto empty_in = Filter::Parse(json::parse(R"({"a":{"$in":[]}})"));
  CHECK_FALSE(IndexRanges(*empty_in, "a").has_value());
}

TEST_CASE("Index values order like the filter's comparisons", "[document][index]") {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 20000; ++i) {
    const json a = Scalar(rng), b = Scalar(rng);
    if (!(a.is_number() && b.is_number()) && !(a.is_string() && b.is_string())) continue;
    auto lt = Filter::Parse({{"x", {{"$lt", b}}}});
    REQUIRE(lt.ok());
    const bool less = lt->Matches({{"x", a}});
    INFO(a.dump() << " vs " << b.dump());
    if (less) CHECK(*IndexValue(a) <= *IndexValue(b));  // monotone (may merge, never invert)
    if (JsonEquals(a, b)) CHECK(*IndexValue(a) == *IndexValue(b));
  }
  CHECK(*IndexValue(json(-1)) < *IndexValue(json(0)));
  CHECK(*IndexValue(json(-0.0)) == *IndexValue(json(0)));
  CHECK(*IndexValue(json(-2.5)) < *IndexValue(json(-1)));
  CHECK(*IndexValue(json(nullptr)) < *IndexValue(json(false)));
  CHECK(*IndexValue(json(true)) < *IndexValue(json(-1e300)));
  CHECK(*IndexValue(json(1e300)) < *IndexValue(json("")));
  CHECK_FALSE(IndexValue(json::array()).has_value());
  CHECK_FALSE(IndexValue(json::object()).has_value());
}

TEST_CASE("Numbers compare exactly across int64, uint64 and double", "[document][filter]") {
  const json big = std::numeric_limits<std::uint64_t>::max();
  CHECK_FALSE(JsonEquals(big, json(-1)));
  CHECK(JsonEquals(json(1), json(1.0)));
  CHECK(JsonEquals(json(std::uint64_t{7}), json(std::int64_t{7})));
  CHECK(JsonEquals(json::parse(R"({"a":[1,{"b":2}]})"), json::parse(R"({"a":[1.0,{"b":2.0}]})")));
  auto f = Filter::Parse({{"n", -1}});
  REQUIRE(f.ok());
  CHECK_FALSE(f->Matches({{"n", big}}));
  auto gt = Filter::Parse({{"n", {{"$gt", -1}}}});
  REQUIRE(gt.ok());
  CHECK(gt->Matches({{"n", big}}));
}

TEST_CASE("Index keys, paths and per-document limits", "[document][index]") {
  auto key = DecodeIndexKey(IndexKey(std::string("\x05" "a\0b", 4), std::string("id\0x", 4)));
  REQUIRE(key.ok());
  CHECK(key->first == std::string("\x05" "a\0b", 4));
  CHECK(key->second == std::string("id\0x", 4));
  CHECK_FALSE(DecodeIndexKey("junk").ok());
  CHECK(CheckIndexPath("customer.address.city").ok());
  for (const char* bad : {"", ".a", "a.", "a..b", "$where"}) CHECK_FALSE(CheckIndexPath(bad).ok());
  CHECK_FALSE(CheckIndexPath(std::string(300, 'a')).ok());
  json many = json::array();
  for (size_t i = 0; i <= kMaxIndexValuesPerDocument; ++i) many.push_back(i);
  CHECK(IndexValues({{"t", many}}, "t").status().code() == StatusCode::kInvalidArgument);
  many.erase(many.begin());
  auto ok = IndexValues({{"t", many}}, "t");
  REQUIRE(ok.ok());
  CHECK(ok->size() == kMaxIndexValuesPerDocument);
  // Duplicates and nested arrays: each distinct scalar once, nested arrays skipped.
  auto values = IndexValues(json::parse(R"({"t":[1,1.0,"x",[2],{"y":1}]})"), "t");
  REQUIRE(values.ok());
  CHECK(values->size() == 2);
}

TEST_CASE("IndexRanges picks $eq, then $in, then an ordered comparison, and serves no other filter", "[document][index]") {
  auto ranges = [](const char* spec, const char* path) {
    auto f = Filter::Parse(json::parse(spec));
    REQUIRE(f.ok());
    return IndexRanges(*f, path);
  };
  CHECK(ranges(R"({"a":{"$gt":1},"b":2})", "a")->size() == 1);
  CHECK(ranges(R"({"a":{"$in":[1,2,2.0]}})", "a")->size() == 2);
  CHECK(ranges(R"({"a":{"$in":[1,2]},"$and":[{"a":5}]})", "a")->size() == 1);
  CHECK(ranges(R"({"a":{"$lte":"m"}})", "a")->size() == 1);
  CHECK_FALSE(ranges(R"({"a":{"$ne":1}})", "a").has_value());
  CHECK_FALSE(ranges(R"({"a":{"$exists":true}})", "a").has_value());
  CHECK_FALSE(ranges(R"({"$or":[{"a":1},{"a":2}]})", "a").has_value());
  CHECK_FALSE(ranges(R"({"a":{"$gt":true}})", "a").has_value());
  CHECK_FALSE(ranges(R"({"a":{"x":1}})", "a").has_value());
  CHECK_FALSE(ranges(R"({"a":[1,2]})", "a").has_value());
  CHECK_FALSE(ranges(R"({"b":1})", "a").has_value());
}

}  // namespace
}  // namespace vellum::engines::document
