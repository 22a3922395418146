#include "vellum/engines/document/filter.h"

#include "vellum/engines/document/doc_query.h"

#include <random>

#include <catch2/catch.hpp>

namespace vellum::engines::document {
namespace {

using nlohmann::json;

bool M(const json& filter, const json& doc) {
  auto f = Filter::Parse(filter);
  INFO(filter.dump());
  REQUIRE(f.ok());
  return f->Matches(doc);
}

TEST_CASE("Filters: operators, dotted paths and arrays", "[engines][document][filter]") {
  const json order = json::parse(R"({"id":7,"total":120.5,"status":"paid","tags":["eu","vip"],
    "customer":{"name":"Ada","address":{"city":"Zurich"}},"items":[{"sku":"a","qty":2},{"sku":"b","qty":5}]})");
  CHECK(M({{"status", "paid"}}, order));
  CHECK_FALSE(M({{"status", "open"}}, order));
  CHECK(M({{"customer.address.city", "Zurich"}}, order));
  CHECK(M({{"total", {{"$gt", 100}, {"$lte", 120.5}}}}, order));
  CHECK_FALSE(M({{"total", {{"$gt", 120.5}}}}, order));
  CHECK(M({{"tags", "vip"}}, order));                                       // any element
  CHECK(M({{"tags", json::array({"eu", "vip"})}}, order));                  // whole array
  CHECK(M({{"items.qty", {{"$gte", 5}}}}, order));                          // through an array of objects
  CHECK_FALSE(M({{"items.qty", {{"$gt", 5}}}}, order));
  CHECK(M({{"status", {{"$in", json::array({"open", "paid"})}}}}, order));
  CHECK(M({{"missing", {{"$ne", 1}}}}, order));
  CHECK(M({{"missing", {{"$exists", false}}}}, order));
  CHECK(M({{"customer.name", {{"$exists", true}}}}, order));
  CHECK(M({{"$or", json::array({json{{"status", "open"}}, json{{"id", 7}}})}}, order));
  CHECK_FALSE(M({{"$and", json::array({json{{"status", "paid"}}, json{{"id", 8}}})}}, order));
  CHECK(M({{"id", 7.0}}, order));                                           // numbers compare numerically
  CHECK_FALSE(M({{"status", {{"$gt", 5}}}}, order));                       // string vs number never orders
  CHECK(M(json::object(), order));                                          // empty filter matches all
}

TEST_CASE("Bad filters are refused with the reason", "[engines][document][filter]") {
  auto reason = [](const json& spec) {
    auto f = Filter::Parse(spec);
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().code() == StatusCode::kInvalidArgument);
    return f.status().message();
  };
  CHECK(reason(json::parse(R"({"a":{"$regex":"x"}})")).find("unknown operator '$regex'") != std::string::npos);
  CHECK(reason(json::parse(R"({"$nor":[]})")).find("unknown top-level operator") != std::string::npos);
  CHECK(reason(json::parse(R"({"a":{"$in":5}})")).find("$in needs an array") != std::string::npos);
  CHECK(reason(json::parse(R"({"a":{"$exists":1}})")).find("$exists needs true or false") != std::string::npos);
  CHECK(reason(json::parse(R"({"$or":[]})")).find("non-empty array") != std::string::npos);
  CHECK(reason(json::parse(R"({"$or":[1]})")).find("$or[0]") != std::string::npos);
  CHECK(reason(json::parse(R"({"a":{"$gt":1,"b":2}})")).find("mixes operators") != std::string::npos);
  CHECK(reason(json::parse(R"({"a..b":1})")).find("invalid field path") != std::string::npos);
  CHECK(reason(json::parse(R"([1,2])")).find("must be a JSON object") != std::string::npos);
  json deep = {{"a", 1}};
  for (int i = 0; i < 40; ++i) deep = {{"$and", json::array({deep})}};
  CHECK(reason(deep).find("deeper") != std::string::npos);
}

json RandomDoc(std::mt19937_64& rng) {
  json doc = json::object();
  if (rng() % 5 != 0) doc["a"] = static_cast<int>(rng() % 10);
  if (rng() % 5 != 0) doc["b"] = std::string(1, static_cast<char>('p' + rng() % 4));
  if (rng() % 3 != 0) {
    json tags = json::array();
    for (size_t i = rng() % 4; i > 0; --i) tags.push_back(static_cast<int>(rng() % 6));
    doc["tags"] = tags;
  }
  if (rng() % 2 == 0) doc["n"] = {{"c", static_cast<int>(rng() % 10)}};
  return doc;
}

json RandomLeaf(std::mt19937_64& rng) {
  static const char* paths[] = {"a", "b", "tags", "n.c", "zz"};
  const std::string path = paths[rng() % 5];
  const json value = path == "b" ? json(std::string(1, static_cast<char>('p' + rng() % 4))) : json(static_cast<int>(rng() % 10));
  static const char* ops[] = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"};
  if (rng() % 4 == 0) return {{path, value}};
  return {{path, {{ops[rng() % 6], value}}}};
}

TEST_CASE("Filter algebra holds on random documents", "[engines][document][filter]") {
  std::mt19937_64 rng(21);
  for (int i = 0; i < 3000; ++i) {
    const json doc = RandomDoc(rng);
    const json f1 = RandomLeaf(rng), f2 = RandomLeaf(rng);
    INFO(doc.dump() << " " << f1.dump() << " " << f2.dump());
    CHECK(M({{"$or", json::array({f1, f2})}}, doc) == (M(f1, doc) || M(f2, doc)));
    CHECK(M({{"$and", json::array({f1, f2})}}, doc) == (M(f1, doc) && M(f2, doc)));
    // $ne is the negation of $eq; $in is the union of equalities; $exists partitions.
    const json v = static_cast<int>(rng() % 10);
    CHECK(M({{"a", {{"$ne", v}}}}, doc) == !M({{"a", v}}, doc));
    CHECK(M({{"tags", {{"$in", json::array({v, 3})}}}}, doc) == (M({{"tags", v}}, doc) || M({{"tags", 3}}, doc)));
    CHECK(M({{"n.c", {{"$exists", true}}}}, doc) != M({{"n.c", {{"$exists", false}}}}, doc));
    // On a scalar field the comparisons agree with plain arithmetic.
    const int k = static_cast<int>(rng() % 10);
    const bool has_a = doc.contains("a");
    CHECK(M({{"a", {{"$gt", k}}}}, doc) == (has_a && doc["a"].get<int>() > k));
    CHECK(M({{"a", {{"$lte", k}}}}, doc) == (has_a && doc["a"].get<int>() <= k));
    // On an array field, $gt matches iff some element does.
    bool any = false;
    if (doc.contains("tags")) {
      for (const auto& t : doc["tags"]) any = any || t.get<int>() > k;
    }
    CHECK(M({{"tags", {{"$gt", k}}}}, doc) == any);
  }
}

TEST_CASE("Find options: sort, skip, limit and projection", "[engines][document][filter]") {
  std::vector<FoundDocument> docs;
  const char* bodies[] = {R"({"n":3,"name":"c","x":{"y":1,"z":2}})", R"({"n":1,"name":"a"})", R"({"name":"nil"})",
                          R"({"n":2,"name":"b"})", R"({"n":"text"})"};
  for (int i = 0; i < 5; ++i) {
    FoundDocument d;
    d.id = "id" + std::to_string(i);
    d.document = json::parse(bodies[i]);
    docs.push_back(std::move(d));
  }
  auto ids = [](const std::vector<FoundDocument>& v) {
    std::string out;
    for (const auto& d : v) out += d.id + " ";
    return out;
  };
  FindOptions by_n;
  by_n.sort_path = "n";
  CHECK(ids(ApplyFindOptions(docs, by_n)) == "id2 id1 id3 id0 id4 ");  // missing, numbers, strings
  by_n.descending = true;
  CHECK(ids(ApplyFindOptions(docs, by_n)) == "id4 id0 id3 id1 id2 ");
  by_n.skip = 1;
  by_n.limit = 2;
  CHECK(ids(ApplyFindOptions(docs, by_n)) == "id0 id3 ");
  FindOptions projected;
  projected.projection = {"name", "x.z"};
  const auto p = ApplyFindOptions(docs, projected);
  CHECK(p[0].document == json::parse(R"({"name":"c","x":{"z":2}})"));
  CHECK(p[4].document == json::object());
  FindOptions none;
  none.skip = 10;
  CHECK(ApplyFindOptions(docs, none).empty());
}

}  // namespace
}  // namespace vellum::engines::document
