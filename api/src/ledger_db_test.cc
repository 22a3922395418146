#include "vellum/api/ledger_db.h"

#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "vellum/merkle/catalog.h"
#include "vellum/testing/temp_dir.h"

namespace vellum::api {
namespace {

using indexes::MapId;
using indexes::MapMutation;
using indexes::MapOp;
using indexes::MapSpec;
using Model = std::map<MapId, std::map<std::string, std::string>>;

const MapId kAccounts{"kv", "accounts", ""};
const MapId kEvents{"ts", "events", ""};
const MapSpec kPlain{merkle::MapKind::kPlain, merkle::kZeroHash};
const MapSpec kAgg{merkle::MapKind::kInt64Aggregate, merkle::kZeroHash};

journal::Operation Op(const MapOp& op) { return {indexes::MapOpKind(op), indexes::EncodeMapOp(op)}; }

journal::Transaction RandomTx(std::mt19937_64& rng, Model& model) {
  journal::Transaction tx;
  const size_t n = 1 + rng() % 6;
  for (size_t i = 0; i < n; ++i) {
    const bool agg = rng() % 3 == 0;
    const MapId& id = agg ? kEvents : kAccounts;
    std::string key = (agg ? "e" : "a") + std::to_string(rng() % 300);
    MapOp op{id, agg ? kAgg : kPlain, {}};
    if (rng() % 5 == 0) {
      op.mutation = MapMutation::Delete(key);
      model[id].erase(key);
    } else {
      const std::int64_t amount = static_cast<std::int64_t>(rng() % 10000) - 5000;
      std::string value = "value " + std::to_string(amount);
      op.mutation = MapMutation::Put(key, value, agg ? amount : 0);
      model[id][key] = value;
    }
    tx.operations.push_back(Op(op));
  }
  return tx;
}

// Checks every map of `at` against `model`, with proofs from state root to entries.
void CheckState(const StateAt& at, const Model& model, const merkle::Hash& header_state_root) {
  REQUIRE(at.state->state_root() == header_state_root);
  for (const auto& [id, entries] : model) {
    const auto* map_state = at.state->Find(id);
    if (map_state == nullptr) {
      CHECK(entries.empty());
      continue;
    }
    auto catalog_proof = at.views->ProveCatalogEntry(*at.state, id);
    REQUIRE(catalog_proof.ok());
    auto key = indexes::CatalogKeyOf(id);
    REQUIRE(key.ok());
    auto entry = merkle::VerifyCatalogEntry(header_state_root, *catalog_proof, *key);
    REQUIRE(entry.ok());
    REQUIRE(entry->has_value());
    CHECK((*entry)->count == entries.size());
    auto map = at.views->MapFor(map_state->spec);
    REQUIRE(map.ok());
    auto all = map->Range(map_state->version, {"", std::nullopt, 100000, false});
    REQUIRE(all.ok());
    REQUIRE(all->entries.size() == entries.size());
    size_t i = 0;
    for (const auto& [k, v] : entries) {
      CHECK(all->entries[i].key == k);
      CHECK(all->entries[i].value == v);
      ++i;
    }
    // A proven get of one present and one absent key, against the catalog's map root.
    if (!entries.empty()) {
      const auto& [k, v] = *entries.begin();
      auto proof = map->ProveGet(map_state->version, k);
      REQUIRE(proof.ok());
      auto got = merkle::VerifyMapGet((*entry)->map_root, k, *proof);
      REQUIRE(got.ok());
      REQUIRE(got->entry.has_value());
      CHECK(got->entry->value == v);
    }
    auto absent = map->ProveGet(map_state->version, "zz-absent");
    REQUIRE(absent.ok());
    auto none = merkle::VerifyMapGet((*entry)->map_root, "zz-absent", *absent);
    REQUIRE(none.ok());
    CHECK_FALSE(none->entry.has_value());
  }
}

LedgerDbOptions SmallOptions() {
  LedgerDbOptions o;
  o.view_store.flush_every_blocks = 5;
  o.views.recent_states = 4;
  return o;
}

TEST_CASE("Views follow the journal: state roots in headers, proofs, reopen, as-of", "[api][ledger_db]") {
  testing::TempDir dir;
  std::mt19937_64 rng(42);
  Model model;
  std::vector<Model> model_at;  // model after each block
  {
    auto db = LedgerDb::Create(dir.path(), "views-test", SmallOptions());
    REQUIRE(db.ok());
    for (int b = 0; b < 40; ++b) {
      auto r = (*db)->Execute(RandomTx(rng, model));
      REQUIRE(r.ok());
      REQUIRE(r->block_height == static_cast<std::uint64_t>(b));
      model_at.push_back(model);
      auto header = (*db)->journal().GetBlock(r->block_height);
      REQUIRE(header.ok());
      auto at = (*db)->State();
      REQUIRE(at.ok());
      CheckState(*at, model, header->state_root);
    }
    // As of old blocks: from the in-memory window and from durable records + replay.
    for (std::uint64_t h : {0, 3, 17, 35, 38, 39}) {
      auto at = (*db)->State(h);
      REQUIRE(at.ok());
      CheckState(*at, model_at[h], (*db)->journal().GetBlock(h)->state_root);
    }
    CHECK((*db)->State(40).status().code() == StatusCode::kOutOfRange);
  }
  // Reopen: durable records plus replay of the journal tail.
  {
    auto db = LedgerDb::Open(dir.path(), SmallOptions());
    REQUIRE(db.ok());
    auto at = (*db)->State();
    REQUIRE(at.ok());
    CHECK(at->state->height() == std::optional<std::uint64_t>(39));
    CheckState(*at, model, (*db)->journal().GetBlock(39)->state_root);
    REQUIRE((*db)->Execute(RandomTx(rng, model)).ok());
    model_at.push_back(model);
  }
  // Views lost entirely: rebuilt from the journal alone, byte for byte.
  std::filesystem::remove_all(dir.Sub("views"));
  auto db = LedgerDb::Open(dir.path(), SmallOptions());
  REQUIRE(db.ok());
  auto at = (*db)->State();
  REQUIRE(at.ok());
  CheckState(*at, model, (*db)->journal().GetBlock(40)->state_root);
  auto old = (*db)->State(7);
  REQUIRE(old.ok());
  CheckState(*old, model_at[7], (*db)->journal().GetBlock(7)->state_root);
}

TEST_CASE("Concurrent blocks of many transactions project in commit order", "[api][ledger_db]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "burst", SmallOptions());
  REQUIRE(db.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        journal::Transaction tx;
        // Distinct keys per writer, so the final content is order-independent.
        const std::string key = "w" + std::to_string(t) + "-" + std::to_string(i % 20);
        tx.operations.push_back(Op({kAccounts, kPlain, MapMutation::Put(key, "v" + std::to_string(i))}));
        REQUIRE((*db)->Execute(std::move(tx)).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  Model model;
  for (int t = 0; t < 8; ++t) {
    for (int i = 30; i < 50; ++i) model[kAccounts]["w" + std::to_string(t) + "-" + std::to_string(i % 20)] = "v" + std::to_string(i);
  }
  const std::uint64_t blocks = (*db)->journal().size();
  CHECK(blocks <= 400);
  auto at = (*db)->State();
  REQUIRE(at.ok());
  CheckState(*at, model, (*db)->journal().GetBlock(blocks - 1)->state_root);

  // RebuildViews: a fresh in-memory replay of the whole journal gives the same roots.
  auto fresh_store = indexes::NewMemoryViewStore();
  auto fresh = indexes::Views::Open(fresh_store.get(), SmallOptions().views);
  REQUIRE(fresh.ok());
  auto snapshot = (*db)->journal().store().Read();
  REQUIRE(snapshot.ok());
  REQUIRE(ReplayBlocks(**snapshot, 0, blocks, **fresh).ok());
  CHECK((*fresh)->Current()->state_root() == at->state->state_root());
}

TEST_CASE("Refused operations fail alone and store nothing", "[api][ledger_db]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "refusals", SmallOptions());
  REQUIRE(db.ok());
  journal::Transaction first;
  first.operations.push_back(Op({kAccounts, kPlain, MapMutation::Put("a", "1")}));
  REQUIRE((*db)->Execute(first).ok());
  const auto root = (*db)->State()->state->state_root();

  journal::Transaction malformed;
  malformed.operations.push_back({indexes::kOpMapPut, "garbage"});
  CHECK((*db)->Execute(malformed).status().code() == StatusCode::kInvalidArgument);
  journal::Transaction unknown;
  unknown.operations.push_back({0x7777, "x"});
  CHECK((*db)->Execute(unknown).status().message().find("operation 0") != std::string::npos);
  journal::Transaction big_key;
  big_key.operations.push_back(Op({kAccounts, kPlain, MapMutation::Put(std::string(5000, 'k'), "v")}));
  CHECK((*db)->Execute(big_key).status().code() == StatusCode::kInvalidArgument);
  journal::Transaction wrong_kind;
  wrong_kind.operations.push_back(Op({kAccounts, kAgg, MapMutation::Put("b", "2", 5)}));
  auto refused = (*db)->Execute(wrong_kind);
  CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
  CHECK(refused.status().message().find("kv/accounts exists") != std::string::npos);

  CHECK((*db)->journal().size() == 1);
  CHECK((*db)->State()->state->state_root() == root);
}

TEST_CASE("Views that do not match the journal are refused on open", "[api][ledger_db][tamper]") {
  testing::TempDir a, b;
  std::mt19937_64 rng(7);
  Model ma, mb;
  {
    auto da = LedgerDb::Create(a.path(), "a", SmallOptions());
    auto dbb = LedgerDb::Create(b.path(), "b", SmallOptions());
    REQUIRE(da.ok());
    REQUIRE(dbb.ok());
    for (int i = 0; i < 12; ++i) {
      REQUIRE((*da)->Execute(RandomTx(rng, ma)).ok());
      REQUIRE((*dbb)->Execute(RandomTx(rng, mb)).ok());
    }
  }
  std::filesystem::remove_all(a.Sub("views"));
  std::filesystem::copy(b.Sub("views"), a.Sub("views"), std::filesystem::copy_options::recursive);
  auto opened = LedgerDb::Open(a.path(), SmallOptions());
  CHECK(opened.status().code() == StatusCode::kDataLoss);
  CHECK(opened.status().message().find("views") != std::string::npos);
}

}  // namespace
}  // namespace vellum::api
