// Proof bundles, every query kind the engines answer: valid bundles verify
// (library and `vellum-verify bundle`) and agree with a model of what was
// written; mutated ones — a row dropped, added, altered or reordered, the
// query changed, another block, another checkpoint, another key, a proof
// byte changed, a truncated file, another format version — fail with exit 1
// naming the check; garbage fails with exit 2.
#include <functional>
#include <map>
#include <random>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "vellum/api/query.h"
#include "vellum/base/bytes.h"
#include "vellum/merkle/note.h"
#include "vellum/testing/sample_ledger.h"
#include "vellum/testing/server_process.h"
#include "vellum/testing/temp_dir.h"
#include "vellum/verifier/bundle.h"

namespace vellum {
namespace {

using nlohmann::json;
using testing::TempDir;

const std::string kVerify = std::string(VELLUM_BIN_DIR) + "/vellum-verify";
constexpr int kRounds = 12;

json Q(json q) { return q; }

// One query of each kind over the sample ledger (tests/support/sample_ledger.h).
std::vector<json> QueriesOfEveryKind() {
  return {
      Q({{"kind", "kv.get"}, {"namespace", "accounts"}, {"key", Base64Encode("acct-3-4")}}),
      Q({{"kind", "kv.get"}, {"namespace", "accounts"}, {"key", Base64Encode("acct-3-44")}}),  // absent
      Q({{"kind", "kv.scan"}, {"namespace", "accounts"}, {"lo", Base64Encode("acct-1")}, {"hi", Base64Encode("acct-3")},
         {"limit", 100}, {"reverse", false}}),
      Q({{"kind", "kv.scan"}, {"namespace", "accounts"}, {"lo", ""}, {"prefix", Base64Encode("acct-7-")},
         {"limit", 5}, {"reverse", true}}),
      Q({{"kind", "zset.rank"}, {"namespace", "games"}, {"set", "scores"}, {"member", Base64Encode("player3")}}),
      Q({{"kind", "zset.top"}, {"namespace", "games"}, {"set", "scores"}, {"n", 4}}),
      Q({{"kind", "zset.range"}, {"namespace", "games"}, {"set", "scores"}, {"min", 20}, {"max", 90}, {"limit", 10}}),
      Q({{"kind", "doc.find"}, {"collection", "orders"}, {"filter", {{"status", "open"}}}, {"descending", true},
         {"skip", 0}, {"projection", json::array()}, {"sort_path", "n"}}),
      Q({{"kind", "doc.history"}, {"collection", "orders"}, {"id", "d0"}}),
  };
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<api::LedgerDb> db;
  std::string vkey;
  Fixture() {
    auto created = api::LedgerDb::Create(dir.Sub("ledger"), "bundles", {});
    REQUIRE(created.ok());
    db = std::move(created).value();
    REQUIRE(testing::FillSampleLedger(*db, kRounds).ok());
    REQUIRE(db->journal().Checkpoint().ok());
    vkey = db->journal().vkey();
  }
  verifier::Bundle Answer(const json& query, api::QueryPoint point = {}) {
    auto bundle = api::AnswerQuery(*db, query, point);
    INFO(query.dump() << ": " << bundle.status().ToString());
    REQUIRE(bundle.ok());
    return std::move(bundle).value();
  }
};

Status Verify(const std::string& text, const std::string& vkey) {
  VELLUM_ASSIGN_OR_RETURN(verifier::Bundle bundle, verifier::ParseBundle(text));
  VELLUM_ASSIGN_OR_RETURN(merkle::NoteVerifier key, merkle::NoteVerifier::Parse(vkey));
  return verifier::VerifyBundle(bundle, key).status();
}

// The result array of a bundle, if its kind has one.
json* Rows(json& doc) {
  for (const char* field : {"entries", "members", "documents", "revisions"}) {
    if (doc["result"].contains(field)) return &doc["result"][field];
  }
  return nullptr;
}

TEST_CASE("bundles of every query kind verify and match the model of what was written", "[verifier][bundle]") {
  Fixture f;
  for (const json& query : QueriesOfEveryKind()) {
    INFO(query.dump());
    const std::string text = verifier::BundleToJson(f.Answer(query));
    REQUIRE(Verify(text, f.vkey).ok());
  }
  // Randomized scans of the accounts namespace against a std::map model.
  std::map<std::string, std::string> model;
  for (int r = 0; r < kRounds; ++r) {
    for (int i = 0; i < 8; ++i) model["acct-" + std::to_string(r) + "-" + std::to_string(i)] = "balance " + std::to_string(r * 100 + i);
  }
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    std::string lo = "acct-" + std::to_string(rng() % kRounds), hi = "acct-" + std::to_string(rng() % (kRounds + 2));
    if (hi < lo) std::swap(lo, hi);
    const std::uint64_t limit = 1 + rng() % 30;
    const bool reverse = rng() % 2 == 0;
    json q{{"kind", "kv.scan"}, {"namespace", "accounts"}, {"lo", Base64Encode(lo)}, {"hi", Base64Encode(hi)},
           {"limit", limit}, {"reverse", reverse}};
    std::vector<std::pair<std::string, std::string>> expected;
    for (auto it = model.lower_bound(lo); it != model.end() && it->first < hi; ++it) expected.push_back(*it);
    if (reverse) std::reverse(expected.begin(), expected.end());
    const bool more = expected.size() > limit;
    if (more) expected.resize(limit);
    verifier::Bundle bundle = f.Answer(q);
    REQUIRE(Verify(verifier::BundleToJson(bundle), f.vkey).ok());
    REQUIRE(bundle.result["entries"].size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      REQUIRE(*Base64Decode(bundle.result["entries"][i]["key"].get<std::string>()) == expected[i].first);
      REQUIRE(*Base64Decode(bundle.result["entries"][i]["value"].get<std::string>()) == expected[i].second);
    }
    REQUIRE(bundle.result["has_more"] == more);
  }
  // As of an earlier block: the value then.
  const json get{{"kind", "kv.get"}, {"namespace", "hot"}, {"key", Base64Encode("key1")}};
  const verifier::Bundle now = f.Answer(get);
  const verifier::Bundle then = f.Answer(get, {.at_height = 2, .tree_size = std::nullopt});
  REQUIRE(Verify(verifier::BundleToJson(then), f.vkey).ok());
  REQUIRE(then.height == 2);
  REQUIRE(then.result != now.result);
}

TEST_CASE("mutated bundles of every kind fail, naming the check", "[verifier][bundle][negative]") {
  Fixture f;
  // Another ledger, for "wrong key".
  TempDir other_dir;
  auto other = api::LedgerDb::Create(other_dir.Sub("ledger"), "bundles", {});
  REQUIRE(other.ok());
  const std::string other_vkey = (*other)->journal().vkey();
  // An older checkpoint and another block's header, for "wrong checkpoint/block".
  auto snapshot = f.db->journal().store().Read();
  REQUIRE(snapshot.ok());
  auto checkpoints = (*snapshot)->AllCheckpoints();
  REQUIRE(checkpoints.ok());
  REQUIRE(checkpoints->size() >= 2);
  const std::string old_note = checkpoints->front().second;
  auto other_header = f.db->journal().ProveBlock(1);
  REQUIRE(other_header.ok());

  using Mutation = std::function<bool(json&)>;  // false: does not apply to this kind
  const std::vector<std::pair<std::string, Mutation>> mutations = {
      {"drop a row", [](json& d) {
         json* rows = Rows(d);
         if (rows == nullptr || rows->empty()) return false;
         rows->erase(rows->begin());
         return true;
       }},
      {"add a row", [](json& d) {
         json* rows = Rows(d);
         if (rows == nullptr || rows->empty()) return false;
         rows->push_back(rows->back());
         return true;
       }},
      {"alter a row", [](json& d) {
         json* rows = Rows(d);
         if (rows == nullptr) {
           d["result"]["found"] = !d["result"]["found"].get<bool>();
           return true;
         }
         if (rows->empty()) return false;
         json& row = rows->front();
         if (row.contains("value")) row["value"] = Base64Encode("forged");
         else if (row.contains("score")) row["score"] = row["score"].get<std::int64_t>() + 1;
         else row["version"] = row["version"].get<std::uint64_t>() + 7;
         return true;
       }},
      {"reorder rows", [](json& d) {
         json* rows = Rows(d);
         if (rows == nullptr || rows->size() < 2 || rows->front() == rows->back()) return false;
         std::swap((*rows)[0], (*rows)[rows->size() - 1]);
         return true;
       }},
      {"change the query", [](json& d) {
         json& q = d["query"];
         if (q.contains("key")) q["key"] = Base64Encode("acct-0-0");
         else if (q.contains("member")) q["member"] = Base64Encode("player1");
         else if (q.contains("n")) q["n"] = q["n"].get<std::uint64_t>() - 1;
         else if (q.contains("min")) q["max"] = q["min"];
         else if (q.contains("hi")) q["hi"] = Base64Encode("acct-2");
         else if (q.contains("prefix")) q["limit"] = 2;
         else if (q.contains("filter")) q["filter"] = {{"status", "paid"}};
         else q["id"] = "d1";
         return true;
       }},
      {"wrong block", [&](json& d) {
         d["block"]["header"] = Base64Encode(other_header->header);
         return true;
       }},
      {"wrong checkpoint", [&](json& d) {
         d["checkpoint"] = old_note;
         return true;
       }},
      {"forged tree size", [](json& d) {
         d["tree_size"] = d["tree_size"].get<std::uint64_t>() - 1;
         return true;
       }},
      {"a proof byte changed", [](json& d) {
         std::string proof = *Base64Decode(d["views"][0]["map_proof"].get<std::string>());
         if (proof.empty()) return false;
         proof[proof.size() / 2] = static_cast<char>(proof[proof.size() / 2] ^ 0x20);
         d["views"][0]["map_proof"] = Base64Encode(proof);
         return true;
       }},
      {"a view dropped", [](json& d) {
         d["views"].erase(d["views"].begin());
         return true;
       }},
      {"another version", [](json& d) {
         d["vellum_proof_bundle"] = 2;
         return true;
       }},
  };

  for (const json& query : QueriesOfEveryKind()) {
    const std::string text = verifier::BundleToJson(f.Answer(query));
    REQUIRE(Verify(text, f.vkey).ok());
    for (const auto& [name, mutate] : mutations) {
      json doc = json::parse(text);
      if (!mutate(doc)) continue;
      INFO(query.dump() << " / " << name);
      const Status status = Verify(doc.dump(), f.vkey);
      REQUIRE_FALSE(status.ok());
      if (name == "drop a row" || name == "add a row" || name == "alter a row" || name == "reorder rows") {
        CHECK(status.message().find("bundle.result") != std::string::npos);
      }
    }
    INFO(query.dump());
    CHECK_FALSE(Verify(text, other_vkey).ok());                      // wrong key
    CHECK_FALSE(Verify(text.substr(0, text.size() / 2), f.vkey).ok());  // truncated
    CHECK_FALSE(Verify(text.substr(0, text.size() - 2), f.vkey).ok());
  }
}

TEST_CASE("vellum-verify bundle: exit 0 verified, 1 does not verify, 2 not a bundle", "[verifier][bundle][cli]") {
  Fixture f;
  TempDir files;
  const auto run = [&](const std::string& text, std::vector<std::string> extra = {}) {
    testing::WriteFile(files.Sub("b.json"), text);
    std::vector<std::string> args{kVerify, "bundle", files.Sub("b.json"), "--vkey", f.vkey};
    args.insert(args.end(), extra.begin(), extra.end());
    return testing::RunCommand(args);
  };
  const json query{{"kind", "kv.scan"}, {"namespace", "accounts"}, {"lo", ""}, {"prefix", Base64Encode("acct-5-")},
                   {"limit", 100}, {"reverse", false}};
  const std::string text = verifier::BundleToJson(f.Answer(query));

  auto ok = run(text);
  INFO(ok.err);
  REQUIRE(ok.exit_code == 0);
  CHECK(ok.out.find("verified") != std::string::npos);
  CHECK(ok.out.find("kv.scan") != std::string::npos);

  // Against a checkpoint the client trusts: the same one passes, an older one
  // (the bundle is not proven against it) does not.
  auto note = f.db->journal().Checkpoint();
  REQUIRE(note.ok());
  testing::WriteFile(files.Sub("cp.txt"), *note);
  CHECK(run(text, {"--checkpoint", files.Sub("cp.txt")}).exit_code == 0);
  auto snapshot = f.db->journal().store().Read();
  REQUIRE(snapshot.ok());
  testing::WriteFile(files.Sub("old.txt"), (*(*snapshot)->AllCheckpoints()).front().second);
  CHECK(run(text, {"--checkpoint", files.Sub("old.txt")}).exit_code == 1);

  json dropped = json::parse(text);
  dropped["result"]["entries"].erase(dropped["result"]["entries"].begin());
  auto bad = run(dropped.dump());
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("bundle.result") != std::string::npos);

  json version = json::parse(text);
  version["vellum_proof_bundle"] = 99;
  auto other_version = run(version.dump());
  CHECK(other_version.exit_code == 1);
  CHECK(other_version.err.find("version") != std::string::npos);

  CHECK(run(text.substr(0, text.size() / 3)).exit_code == 1);  // truncated
  CHECK(run("hello, I am not a proof").exit_code == 2);        // garbage
  CHECK(run("{\"some\": \"json\"}").exit_code == 2);
  CHECK(testing::RunCommand({kVerify, "bundle", files.Sub("missing.json"), "--vkey", f.vkey}).exit_code == 2);

  // Every query kind through the binary: valid passes, a changed result fails.
  for (const json& q : QueriesOfEveryKind()) {
    INFO(q.dump());
    const std::string valid = verifier::BundleToJson(f.Answer(q));
    CHECK(run(valid).exit_code == 0);
    json changed = json::parse(valid);
    json* rows = Rows(changed);
    if (rows != nullptr && !rows->empty()) {
      rows->erase(rows->begin());
    } else if (rows != nullptr) {
      rows->push_back(json::object());
    } else {
      changed["result"]["found"] = !changed["result"]["found"].get<bool>();
    }
    auto refused = run(changed.dump());
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("bundle.result") != std::string::npos);
  }

  // The embedding example (verifier/examples/) makes the same decisions.
  const std::string example = std::string(VELLUM_BIN_DIR) + "/vellum-verify-example";
  testing::WriteFile(files.Sub("good.json"), text);
  testing::WriteFile(files.Sub("dropped.json"), dropped.dump());
  CHECK(testing::RunCommand({example, files.Sub("good.json"), f.vkey, files.Sub("cp.txt")}).exit_code == 0);
  CHECK(testing::RunCommand({example, files.Sub("dropped.json"), f.vkey}).exit_code == 1);
  CHECK(testing::RunCommand({example, files.Sub("good.json"), f.vkey, files.Sub("old.txt")}).exit_code == 1);
}

}  // namespace
}  // namespace vellum
