// AnswerQuery reads a query's result straight from the committed state and
// takes the shared proof parts (checkpoint, block proof, catalog proofs) from
// LedgerDb's per-tree-size cache; AnswerQueryWithoutProof builds no proof at
// all. Neither may change an answer. The model here is the verifier: every
// bundle, encoded and parsed back, must pass VerifyBundle (which recomputes
// the result from the proofs and compares it with the server's), its result
// must match a std::map model of each height, and the answer without proof
// must equal the proven one — at the newest block, as of older blocks
// (replayed from durable states), against older tree sizes, and while new
// blocks arrive.
#include "vellum/api/query.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <thread>

#include "vellum/base/bytes.h"
#include "vellum/engines/document/doc_ops.h"
#include "vellum/engines/kv/kv_ops.h"
#include "vellum/merkle/note.h"
#include "vellum/testing/temp_dir.h"
#include "vellum/verifier/bundle.h"

namespace vellum::api {
namespace {

using nlohmann::json;
namespace kv = engines::kv;
namespace doc = engines::document;

journal::Operation KvOp(const kv::KvOp& op) { return {kv::KvOpKind(op), kv::EncodeKvOp(op)}; }
journal::Operation ZOp(const kv::ZsetOp& op) { return {kv::ZsetOpKind(op), kv::EncodeZsetOp(op)}; }

LedgerDbOptions SmallOptions() {
  LedgerDbOptions o;
  o.view_store.flush_every_blocks = 5;
  o.views.recent_states = 4;  // older heights are replayed from durable states
  return o;
}

merkle::NoteVerifier VerifierOf(LedgerDb& db) {
  auto v = merkle::NoteVerifier::Parse(db.journal().vkey());
  REQUIRE(v.ok());
  return *v;
}

// Proven and unproven answers to `query` at `point` agree with each other and
// with the verifier; returns the result.
json CheckQuery(LedgerDb& db, const merkle::NoteVerifier& verifier, const json& query,
                const QueryPoint& point) {
  INFO("query " << query.dump() << " at_height " << point.at_height.value_or(~0ull) << " tree_size "
                << point.tree_size.value_or(0));
  auto bundle = AnswerQuery(db, query, point);
  REQUIRE(bundle.ok());
  // What a client computes from the proofs alone, after the JSON round trip.
  auto parsed = verifier::ParseBundle(verifier::BundleToJson(*bundle));
  REQUIRE(parsed.ok());
  auto verified = verifier::VerifyBundle(*parsed, verifier);
  INFO((verified.ok() ? std::string("verified") : verified.status().ToString()));
  REQUIRE(verified.ok());
  CHECK(verified->result == bundle->result);
  if (point.tree_size.has_value()) CHECK(bundle->tree_size == *point.tree_size);
  if (point.at_height.has_value()) CHECK(bundle->height == *point.at_height);

  auto plain = AnswerQueryWithoutProof(db, query, point);
  REQUIRE(plain.ok());
  CHECK(plain->result == bundle->result);
  CHECK(plain->height == bundle->height);
  CHECK(plain->tree_size == bundle->tree_size);
  return bundle->result;
}

TEST_CASE("Query answers equal the verifier's, from cache and state, at every height and tree size",
          "[api][query][proof]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "queries", SmallOptions());
  REQUIRE(db.ok());
  const merkle::NoteVerifier verifier = VerifierOf(**db);
  std::mt19937_64 rng(Catch::rngSeed() + 17);
  auto random_key = [&] {
    return std::string(1, static_cast<char>('a' + rng() % 3)) + std::to_string(rng() % 40);
  };

  std::vector<std::map<std::string, std::string>> model_at;  // "inv" after each block
  std::map<std::string, std::string> model;
  std::vector<std::uint64_t> issued;  // tree sizes with a signed checkpoint
  for (int b = 0; b < 24; ++b) {
    journal::Transaction tx;
    for (int i = 0; i < 6; ++i) {
      const std::string key = random_key();
      if (rng() % 4 == 0) {
        tx.operations.push_back(
            KvOp({kv::KvOp::Type::kDelete, "inv", key, std::nullopt, std::nullopt}));
        model.erase(key);
      } else {
        const std::string value = "v" + std::to_string(rng() % 1000);
        tx.operations.push_back(KvOp({kv::KvOp::Type::kPut, "inv", key, value, std::nullopt}));
        model[key] = value;
      }
    }
    const std::string member = "m" + std::to_string(rng() % 12);
    const auto ztype = rng() % 4 == 0 ? kv::ZsetOp::Type::kRemove : kv::ZsetOp::Type::kAdd;
    tx.operations.push_back(
        ZOp({ztype, "game", "scores", member, static_cast<std::int64_t>(rng() % 200) - 100}));
    REQUIRE((*db)->Execute(std::move(tx)).ok());
    if (b % 3 == 0) {
      journal::Transaction d;
      doc::DocOp op{doc::DocOp::Type::kInsert, "orders", "o" + std::to_string(b),
                    json{{"n", b}}.dump(), std::nullopt};
      auto body = doc::EncodeDocOp(op);
      REQUIRE(body.ok());
      d.operations.push_back({doc::DocOpKind(op), *body});
      REQUIRE((*db)->Execute(std::move(d)).ok());
      model_at.push_back(model);  // the document block leaves "inv" as it was
    }
    model_at.push_back(model);
    REQUIRE(model_at.size() == (*db)->journal().size());
    if (rng() % 2 == 0) {
      auto cp = (*db)->LatestCheckpoint();
      REQUIRE(cp.ok());
      CHECK((*cp)->checkpoint.size == (*db)->journal().size());
      issued.push_back((*cp)->checkpoint.size);
    }
  }
  const std::uint64_t blocks = (*db)->journal().size();

  for (int q = 0; q < 300; ++q) {
    QueryPoint point;
    std::uint64_t size = blocks;
    if (!issued.empty() && rng() % 3 == 0) {
      size = issued[rng() % issued.size()];
      point.tree_size = size;
    }
    if (rng() % 2 == 0) point.at_height = rng() % size;
    const std::uint64_t height = point.at_height.value_or(size - 1);

    json query;
    switch (rng() % 7) {
      case 0:
      case 1: {
        const std::string key = random_key();
        const std::string ns = rng() % 8 == 0 ? "nowhere" : "inv";
        query = {{"kind", "kv.get"}, {"namespace", ns}, {"key", Base64Encode(key)}};
        const json result = CheckQuery(**db, verifier, query, point);
        const auto& m = model_at[height];
        const bool present = ns == "inv" && m.count(key) != 0;
        CHECK(result.at("found").get<bool>() == present);
        if (present) CHECK(*Base64Decode(result.at("value").get<std::string>()) == m.at(key));
        continue;
      }
      case 2:
        query = {{"kind", "kv.scan"},
                 {"namespace", "inv"},
                 {"limit", 1 + rng() % 20},
                 {"reverse", rng() % 2 == 0}};
        if (rng() % 2 == 0) {
          query["lo"] = "";
          query["prefix"] = Base64Encode(std::string(1, static_cast<char>('a' + rng() % 4)));
        } else {
          query["lo"] = Base64Encode(random_key());
          if (rng() % 2 == 0) query["hi"] = Base64Encode(random_key());
        }
        break;
      case 3:
        query = {{"kind", "zset.rank"},
                 {"namespace", "game"},
                 {"set", "scores"},
                 {"member", Base64Encode("m" + std::to_string(rng() % 14))}};
        break;
      case 4:
        query = {{"kind", "zset.top"},
                 {"namespace", "game"},
                 {"set", rng() % 6 == 0 ? "none" : "scores"},
                 {"n", rng() % 8}};
        break;
      case 5: {
        const std::int64_t lo = static_cast<std::int64_t>(rng() % 200) - 100;
        query = {{"kind", "zset.range"},
                 {"namespace", "game"},
                 {"set", "scores"},
                 {"min", lo},
                 {"max", lo + static_cast<std::int64_t>(rng() % 120) - 20},
                 {"limit", 1 + rng() % 10}};
        break;
      }
      default:
        if (rng() % 2 == 0) {
          query = {{"kind", "doc.find"},
                   {"collection", "orders"},
                   {"filter", json::object()},
                   {"descending", false},
                   {"skip", 0},
                   {"projection", json::array()}};
        } else {
          query = {{"kind", "doc.history"},
                   {"collection", "orders"},
                   {"id", "o" + std::to_string(3 * (rng() % 8))}};
        }
    }
    CheckQuery(**db, verifier, query, point);
  }

  // Errors are unchanged: a tree size never issued, a height beyond the tree.
  json get = {{"kind", "kv.get"}, {"namespace", "inv"}, {"key", Base64Encode("a1")}};
  QueryPoint never;
  never.tree_size = blocks + 5;
  CHECK(AnswerQuery(**db, get, never).status().code() == StatusCode::kNotFound);
  CHECK(AnswerQueryWithoutProof(**db, get, never).status().code() == StatusCode::kNotFound);
  QueryPoint beyond;
  beyond.at_height = blocks;
  CHECK(AnswerQuery(**db, get, beyond).status().code() == StatusCode::kOutOfRange);
  CHECK(AnswerQueryWithoutProof(**db, get, beyond).status().code() == StatusCode::kOutOfRange);
}

TEST_CASE("Cached proof parts follow new blocks, also under concurrent reads and writes",
          "[api][query][cache]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "moving", SmallOptions());
  REQUIRE(db.ok());
  const merkle::NoteVerifier verifier = VerifierOf(**db);
  auto put = [&](const std::string& value) {
    journal::Transaction tx;
    tx.operations.push_back(KvOp({kv::KvOp::Type::kPut, "ns", "k", value, std::nullopt}));
    auto receipt = (*db)->Execute(std::move(tx));
    REQUIRE(receipt.ok());
    return receipt->block_height;
  };
  const json get = {{"kind", "kv.get"}, {"namespace", "ns"}, {"key", Base64Encode("k")}};

  // Every new block is seen at once, and the older tree still answers as it did.
  std::vector<std::uint64_t> sizes;
  for (int i = 0; i < 12; ++i) {
    const std::uint64_t height = put("v" + std::to_string(i));
    const json now = CheckQuery(**db, verifier, get, {});
    CHECK(*Base64Decode(now.at("value").get<std::string>()) == "v" + std::to_string(i));
    sizes.push_back(height + 1);
    for (size_t j = 0; j < sizes.size(); ++j) {
      QueryPoint old;
      old.tree_size = sizes[j];
      const json then = CheckQuery(**db, verifier, get, old);
      CHECK(*Base64Decode(then.at("value").get<std::string>()) == "v" + std::to_string(j));
      QueryPoint as_of;
      as_of.at_height = sizes[j] - 1;  // against the newest tree
      const json at = CheckQuery(**db, verifier, get, as_of);
      CHECK(*Base64Decode(at.at("value").get<std::string>()) == "v" + std::to_string(j));
    }
  }

  // Readers racing a writer: every bundle verifies and its value is the one
  // written in its block (value = "w" + the writer's counter, increasing).
  std::atomic<bool> done{false};
  std::atomic<int> failures{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      int last = -1;
      while (!done.load()) {
        auto bundle = AnswerQuery(**db, get, {});
        if (!bundle.ok()) {
          ++failures;
          continue;
        }
        auto verified = verifier::VerifyBundle(*bundle, verifier);
        const std::string value = *Base64Decode(bundle->result.at("value").get<std::string>());
        const int counter = value[0] == 'w' ? std::stoi(value.substr(1)) : -1;
        if (!verified.ok() || verified->result != bundle->result || counter < last) ++failures;
        last = counter;
        ++reads;
      }
    });
  }
  for (int i = 0; i < 60; ++i) put("w" + std::to_string(i));
  done.store(true);
  for (auto& r : readers) r.join();
  CHECK(failures.load() == 0);
  CHECK(reads.load() > 0);
}

}  // namespace
}  // namespace vellum::api
