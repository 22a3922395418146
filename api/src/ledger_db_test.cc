#include "vellum/api/ledger_db.h"

#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "vellum/engines/document/canonical_json.h"
#include "vellum/engines/document/doc_query.h"
#include "vellum/engines/document/path_index.h"
#include "vellum/api/query.h"
#include "vellum/base/bytes.h"
#include "vellum/engines/kv/kv_ops.h"
#include "vellum/engines/kv/kv_query.h"
#include "vellum/indexes/view_store.h"
#include "vellum/merkle/catalog.h"
#include "vellum/merkle/note.h"
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

TEST_CASE("Blocks whose journal write fails leave no trace in the views, with writers racing", "[api][ledger_db]") {
  testing::TempDir dir;
  LedgerDbOptions options = SmallOptions();
  // A 1 MiB journal: a transaction of three 900 KB values cannot be written
  // (MDB_MAP_FULL); small ones can. The commit thread prepares the next
  // block while one is written, so blocks behind a failed one fail with it.
  options.journal.store.map_size = 1u << 20;
  options.journal.store.preallocate_bytes = 0;
  auto db = LedgerDb::Create(dir.path(), "full-journal", options);
  REQUIRE(db.ok());
  constexpr int kThreads = 4;
  constexpr int kTxs = 40;
  std::vector<std::vector<StatusCode>> codes(kThreads, std::vector<StatusCode>(kTxs, StatusCode::kOk));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kTxs; ++i) {
        journal::Transaction tx;
        if (i % 10 == 5) {
          for (int v = 0; v < 3; ++v) {
            const std::string key = "big" + std::to_string(t) + "-" + std::to_string(i) + "-" + std::to_string(v);
            tx.operations.push_back(Op({kAccounts, kPlain, MapMutation::Put(key, std::string(900000, 'b'))}));
          }
        } else {
          const std::string key = "w" + std::to_string(t) + "-" + std::to_string(i % 10);
          tx.operations.push_back(Op({kAccounts, kPlain, MapMutation::Put(key, "v" + std::to_string(i))}));
        }
        auto r = (*db)->Execute(std::move(tx));
        codes[t][i] = r.status().code();
      }
    });
  }
  for (auto& th : threads) th.join();
  // Each writer's transactions are sequential and its keys its own, so the
  // model is every acknowledged put in order.
  Model model;
  model[kAccounts];
  int small_ok = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kTxs; ++i) {
      if (i % 10 == 5) {
        CHECK(codes[t][i] == StatusCode::kResourceExhausted);
        continue;
      }
      CHECK((codes[t][i] == StatusCode::kOk || codes[t][i] == StatusCode::kResourceExhausted));
      if (codes[t][i] != StatusCode::kOk) continue;
      ++small_ok;
      model[kAccounts]["w" + std::to_string(t) + "-" + std::to_string(i % 10)] = "v" + std::to_string(i);
    }
  }
  CHECK(small_ok >= kThreads * (kTxs - 4) / 2);
  const std::uint64_t blocks = (*db)->journal().size();
  auto at = (*db)->State();
  REQUIRE(at.ok());
  REQUIRE(at->state->height() == std::optional<std::uint64_t>(blocks - 1));
  CheckState(*at, model, (*db)->journal().GetBlock(blocks - 1)->state_root);

  {
    // The journal alone gives the same roots.
    auto fresh_store = indexes::NewMemoryViewStore();
    auto fresh = indexes::Views::Open(fresh_store.get(), options.views);
    REQUIRE(fresh.ok());
    auto snapshot = (*db)->journal().store().Read();
    REQUIRE(snapshot.ok());
    REQUIRE(ReplayBlocks(**snapshot, 0, blocks, **fresh).ok());
    CHECK((*fresh)->Current()->state_root() == at->state->state_root());
  }
  at = Internal("released before the ledger closes");
  db->reset();
  auto reopened = LedgerDb::Open(dir.path(), options);
  REQUIRE(reopened.ok());
  auto again = (*reopened)->State();
  REQUIRE(again.ok());
  CheckState(*again, model, (*reopened)->journal().GetBlock(blocks - 1)->state_root);
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

TEST_CASE("A signed checkpoint proves a map entry end to end, now and as of an older block", "[api][ledger_db][proof]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "chain", SmallOptions());
  REQUIRE(db.ok());
  auto put = [&](const std::string& key, const std::string& value) {
    journal::Transaction tx;
    tx.operations.push_back(Op({kAccounts, kPlain, MapMutation::Put(key, value)}));
    REQUIRE((*db)->Execute(std::move(tx)).ok());
  };
  put("alice", "100");
  put("bob", "5");
  auto old_note = (*db)->journal().Checkpoint();
  REQUIRE(old_note.ok());
  for (int i = 0; i < 10; ++i) put("alice", std::to_string(200 + i));
  auto note = (*db)->journal().Checkpoint();
  REQUIRE(note.ok());
  auto verifier = merkle::NoteVerifier::Parse((*db)->journal().vkey());
  REQUIRE(verifier.ok());
  auto cp = merkle::VerifyCheckpoint(*note, *verifier);
  auto old_cp = merkle::VerifyCheckpoint(*old_note, *verifier);
  REQUIRE(cp.ok());
  REQUIRE(old_cp.ok());

  auto check_value = [&](const StateAt& at, std::uint64_t size, const merkle::Hash& root, const std::string& want) {
    auto view = (*db)->ProveView(at, kAccounts, size);
    REQUIRE(view.ok());
    auto verified = verifier::VerifyViewProof(*view, size, root);
    REQUIRE(verified.ok());
    REQUIRE(verified->entry.has_value());
    CHECK(verified->header.height == *at.state->height());
    auto map = at.views->MapFor(at.state->Find(kAccounts)->spec);
    auto proof = map->ProveGet(at.state->Find(kAccounts)->version, "alice");
    REQUIRE(proof.ok());
    auto got = merkle::VerifyMapGet(verified->entry->map_root, "alice", *proof);
    REQUIRE(got.ok());
    REQUIRE(got->entry.has_value());
    CHECK(got->entry->value == want);
    return std::make_pair(*view, *proof);
  };
  auto latest = (*db)->State();
  REQUIRE(latest.ok());
  auto [view, map_proof] = check_value(*latest, cp->size, cp->root, "209");
  // As of block 1 (alice = 100), proven against the newest checkpoint.
  auto then = (*db)->State(1);
  REQUIRE(then.ok());
  auto [old_view, old_map_proof] = check_value(*then, cp->size, cp->root, "100");

  // Negatives: the wrong checkpoint, a tampered catalog proof, another map's
  // key, and a map proof from another block all fail.
  CHECK_FALSE(verifier::VerifyViewProof(view, old_cp->size, old_cp->root).ok());
  CHECK_FALSE(verifier::VerifyViewProof(view, cp->size, old_cp->root).ok());
  std::string bytes = view.catalog.Encode();
  bool any_accepted = false;
  for (size_t i = 0; i < bytes.size(); i += 7) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x20);
    auto decoded = merkle::MapProof::Decode(flipped);
    if (!decoded.ok()) continue;
    auto tampered = view;
    tampered.catalog = *decoded;
    auto r = verifier::VerifyViewProof(tampered, cp->size, cp->root);
    if (r.ok() && r->entry == verifier::VerifyViewProof(view, cp->size, cp->root)->entry) continue;  // untouched bytes
    any_accepted = any_accepted || r.ok();
  }
  CHECK_FALSE(any_accepted);
  auto wrong_key = view;
  wrong_key.catalog_key = *indexes::CatalogKeyOf(kEvents);
  // Asked for another map, the same proof can at most prove that map absent
  // (here it is: kEvents was never written), never return accounts' entry.
  auto other = verifier::VerifyViewProof(wrong_key, cp->size, cp->root);
  CHECK((!other.ok() || !other->entry.has_value()));
  auto entry_now = verifier::VerifyViewProof(view, cp->size, cp->root)->entry;
  CHECK_FALSE(merkle::VerifyMapGet(entry_now->map_root, "alice", old_map_proof).ok());

  // A map that does not exist is proven absent.
  auto absent = (*db)->ProveView(*latest, kEvents, cp->size);
  REQUIRE(absent.ok());
  auto none = verifier::VerifyViewProof(*absent, cp->size, cp->root);
  REQUIRE(none.ok());
  CHECK_FALSE(none->entry.has_value());
}

namespace kv = engines::kv;

journal::Operation KvOp(const kv::KvOp& op) { return {kv::KvOpKind(op), kv::EncodeKvOp(op)}; }

journal::Transaction Cas(const std::string& key, std::optional<std::string> expected, std::optional<std::string> next) {
  journal::Transaction tx;
  tx.operations.push_back(KvOp({kv::KvOp::Type::kCompareAndSet, "counters", key, std::move(next), std::move(expected)}));
  return tx;
}

std::optional<std::string> KvGet(LedgerDb& db, const std::string& ns, const std::string& key) {
  auto at = db.State();
  REQUIRE(at.ok());
  const auto* map = at->state->Find(kv::KvMap(ns));
  if (map == nullptr) return std::nullopt;
  auto got = at->views->MapFor(map->spec)->Get(map->version, key);
  REQUIRE(got.ok());
  if (!got->entry.has_value()) return std::nullopt;
  return got->entry->value;
}

// Every entry of `id` in `state` (empty if the map does not exist).
std::map<std::string, std::string> Contents(const indexes::Views& views, const indexes::StateView& state, const MapId& id) {
  std::map<std::string, std::string> out;
  const auto* map_state = state.Find(id);
  if (map_state == nullptr) return out;
  auto map = views.MapFor(map_state->spec);
  REQUIRE(map.ok());
  auto all = map->Range(map_state->version, {"", std::nullopt, 100000, false});
  REQUIRE(all.ok());
  for (auto& e : all->entries) out.emplace(std::move(e.key), std::move(e.value));
  return out;
}

TEST_CASE("A block's transactions see the writes of the accepted ones before them (randomized vs a sequential model)",
          "[api][projection]") {
  auto store = indexes::NewMemoryViewStore();
  indexes::ViewsOptions vo;
  vo.max_page_items = 4;
  auto views = indexes::Views::Open(store.get(), vo);
  REQUIRE(views.ok());
  const std::string ns = "m";
  const std::string set = "board";
  // The model: transactions applied one at a time, in order.
  std::map<std::string, std::string> values;
  std::map<std::string, std::int64_t> scores;
  std::set<std::string> tokens;
  std::mt19937_64 rng(20261205);
  std::map<StatusCode, int> seen;
  for (std::uint64_t height = 0; height < 300; ++height) {
    std::vector<journal::Transaction> txs;
    std::vector<StatusCode> expected;
    const size_t n = 1 + rng() % 8;
    for (size_t t = 0; t < n; ++t) {
      journal::Transaction tx;
      auto next_values = values;
      auto next_scores = scores;
      bool holds = true;  // every comparison of the transaction
      std::set<std::string> keys;  // one operation per key: comparisons see the state before the transaction
      for (size_t o = 0, ops = 1 + rng() % 3; o < ops; ++o) {
        const std::string key = "k" + std::to_string(rng() % 5);
        if (!keys.insert(key).second) continue;
        const auto now = values.find(key);
        const std::optional<std::string> current =
            now == values.end() ? std::nullopt : std::optional<std::string>(now->second);
        std::optional<std::string> claim = current;  // right two times in three
        if (rng() % 3 == 0) claim = current.has_value() ? std::optional<std::string>() : std::optional<std::string>("x");
        const std::optional<std::string> value =
            rng() % 4 == 0 ? std::nullopt : std::optional<std::string>("v" + std::to_string(rng() % 1000));
        switch (rng() % 4) {
          case 0:
            tx.operations.push_back(KvOp({value.has_value() ? kv::KvOp::Type::kPut : kv::KvOp::Type::kDelete, ns, key, value, {}}));
            if (value.has_value()) next_values[key] = *value; else next_values.erase(key);
            break;
          case 1:
            tx.operations.push_back(KvOp({kv::KvOp::Type::kCompareAndSet, ns, key, value, claim}));
            holds = holds && claim == current;
            if (value.has_value()) next_values[key] = *value; else next_values.erase(key);
            break;
          case 2:
            tx.operations.push_back(KvOp({kv::KvOp::Type::kAssert, ns, key, {}, claim}));
            holds = holds && claim == current;
            break;
          default: {
            const std::int64_t delta = static_cast<std::int64_t>(rng() % 11) - 5;
            tx.operations.push_back({kv::ZsetOpKind({kv::ZsetOp::Type::kIncrement, ns, set, key, delta}),
                                     kv::EncodeZsetOp({kv::ZsetOp::Type::kIncrement, ns, set, key, delta})});
            next_scores[key] += delta;
          }
        }
      }
      if (rng() % 3 == 0) tx.client_token = "t" + std::to_string(rng() % 40);
      StatusCode code = StatusCode::kOk;
      if (!tx.client_token.empty() && tokens.contains(tx.client_token)) code = StatusCode::kAlreadyExists;
      else if (!holds) code = StatusCode::kAborted;
      if (code == StatusCode::kOk) {
        values = std::move(next_values);
        scores = std::move(next_scores);
        if (!tx.client_token.empty()) tokens.insert(tx.client_token);
      }
      ++seen[code];
      expected.push_back(code);
      txs.push_back(std::move(tx));
    }
    // Half the transactions come decoded already, as the ledger's commit
    // thread gets them from PrepareTransaction.
    std::vector<TransactionEffects> early(txs.size());
    std::vector<TransactionEffects*> decoded(txs.size(), nullptr);
    for (size_t i = 0; i < txs.size(); ++i) {
      if (rng() % 2 == 0) continue;
      auto effects = ProjectTransaction(txs[i]);
      REQUIRE(effects.ok());
      early[i] = std::move(effects).value();
      decoded[i] = &early[i];
    }
    const auto before = (*views)->Current();
    BlockProjection projection = ProjectBlock(**views, *before, txs, 1000 + static_cast<std::int64_t>(height), decoded);
    REQUIRE(projection.verdicts.size() == txs.size());
    for (size_t i = 0; i < txs.size(); ++i) {
      INFO("block " << height << " transaction " << i << ": " << projection.verdicts[i].ToString());
      CHECK(projection.verdicts[i].code() == expected[i]);
    }
    REQUIRE((*views)->ApplyBlock(height, std::move(projection.changes)).ok());
    const auto after = (*views)->Current();
    REQUIRE(Contents(**views, *after, kv::KvMap(ns)) == values);
    std::map<std::string, std::string> members, score_keys;
    for (const auto& [member, score] : scores) {
      members[member] = kv::EncodeScore(score);
      score_keys[kv::ZsetScoreKey(score, member)] = "";
    }
    REQUIRE(Contents(**views, *after, kv::ZsetMembersMap(ns, set)) == members);
    REQUIRE(Contents(**views, *after, kv::ZsetScoresMap(ns, set)) == score_keys);
    std::set<std::string> recorded;
    for (const auto& [token, where] : Contents(**views, *after, TokensMap())) recorded.insert(token);
    REQUIRE(recorded == tokens);
  }
  // The run met every outcome.
  CHECK(seen[StatusCode::kOk] > 100);
  CHECK(seen[StatusCode::kAborted] > 100);
  CHECK(seen[StatusCode::kAlreadyExists] > 10);
}

TEST_CASE("Key-value puts, deletes and compare-and-set", "[api][kv]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "kv", SmallOptions());
  REQUIRE(db.ok());
  journal::Transaction put;
  put.operations.push_back(KvOp({kv::KvOp::Type::kPut, "users", "alice", "admin", std::nullopt}));
  put.operations.push_back(KvOp({kv::KvOp::Type::kPut, "users", "bob", "reader", std::nullopt}));
  REQUIRE((*db)->Execute(put).ok());
  CHECK(KvGet(**db, "users", "alice") == std::optional<std::string>("admin"));
  journal::Transaction del;
  del.operations.push_back(KvOp({kv::KvOp::Type::kDelete, "users", "bob", std::nullopt, std::nullopt}));
  REQUIRE((*db)->Execute(del).ok());
  CHECK_FALSE(KvGet(**db, "users", "bob").has_value());

  REQUIRE((*db)->Execute(Cas("c", std::nullopt, "1")).ok());                    // create if absent
  auto conflict = (*db)->Execute(Cas("c", std::nullopt, "9"));                  // no longer absent
  CHECK(conflict.status().code() == StatusCode::kAborted);
  CHECK(conflict.status().message().find("key 'c': expected absent but found '1'") != std::string::npos);
  REQUIRE((*db)->Execute(Cas("c", "1", "2")).ok());
  CHECK((*db)->Execute(Cas("c", "1", "3")).status().code() == StatusCode::kAborted);
  REQUIRE((*db)->Execute(Cas("c", "2", std::nullopt)).ok());                    // delete if unchanged
  CHECK_FALSE(KvGet(**db, "counters", "c").has_value());

  // A read set: asserts write nothing, and abort the whole transaction when a
  // read value changed (optimistic concurrency).
  journal::Transaction guarded;
  guarded.operations.push_back(KvOp({kv::KvOp::Type::kAssert, "users", "alice", std::nullopt, "admin"}));
  guarded.operations.push_back(KvOp({kv::KvOp::Type::kPut, "users", "carol", "reader", std::nullopt}));
  REQUIRE((*db)->Execute(guarded).ok());
  CHECK(KvGet(**db, "users", "carol") == std::optional<std::string>("reader"));
  journal::Transaction stale;
  stale.operations.push_back(KvOp({kv::KvOp::Type::kAssert, "users", "alice", std::nullopt, "reader"}));
  stale.operations.push_back(KvOp({kv::KvOp::Type::kPut, "users", "dave", "admin", std::nullopt}));
  auto stale_result = (*db)->Execute(stale);
  CHECK(stale_result.status().code() == StatusCode::kAborted);
  CHECK(stale_result.status().message().find("users key 'alice'") != std::string::npos);
  CHECK_FALSE(KvGet(**db, "users", "dave").has_value());

  // Bad operations: empty key, empty namespace, garbage.
  journal::Transaction bad;
  bad.operations.push_back(KvOp({kv::KvOp::Type::kPut, "users", "", "x", std::nullopt}));
  CHECK((*db)->Execute(bad).status().code() == StatusCode::kInvalidArgument);
  journal::Transaction garbage;
  garbage.operations.push_back({kv::kOpCompareAndSet, std::string("\0\0\0\1n\0\0\0\1k\7", 11)});
  CHECK((*db)->Execute(garbage).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Concurrent compare-and-set increments: every success counts, conflicts abort", "[api][kv]") {
  testing::TempDir dir;
  std::atomic<int> successes{0}, aborts{0};
  std::string final_value;
  merkle::Hash root_before_reopen{};
  {
    auto db = LedgerDb::Create(dir.path(), "counter", SmallOptions());
    REQUIRE(db.ok());
    REQUIRE((*db)->Execute(Cas("n", std::nullopt, "0")).ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 25;) {
          const std::string seen = *KvGet(**db, "counters", "n");
          auto r = (*db)->Execute(Cas("n", seen, std::to_string(std::stoi(seen) + 1)));
          if (r.ok()) {
            ++successes;
            ++i;
          } else {
            REQUIRE(r.status().code() == StatusCode::kAborted);
            ++aborts;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    final_value = *KvGet(**db, "counters", "n");
    root_before_reopen = (*db)->State()->state->state_root();
  }
  CHECK(successes == 150);
  CHECK(final_value == "150");
  UNSCOPED_INFO(aborts << " aborted attempts");
  // Replay re-evaluates every comparison the same way.
  std::filesystem::remove_all(dir.Sub("views"));
  auto db = LedgerDb::Open(dir.path(), SmallOptions());
  REQUIRE(db.ok());
  CHECK((*db)->State()->state->state_root() == root_before_reopen);
  CHECK(KvGet(**db, "counters", "n") == std::optional<std::string>("150"));
}

// The ledger's current checkpoint, signed and verified with its key.
merkle::Checkpoint SignedCheckpoint(LedgerDb& db) {
  auto note = db.journal().Checkpoint();
  REQUIRE(note.ok());
  auto verifier = merkle::NoteVerifier::Parse(db.journal().vkey());
  REQUIRE(verifier.ok());
  auto cp = merkle::VerifyCheckpoint(*note, *verifier);
  REQUIRE(cp.ok());
  return *cp;
}

// The catalog entry an answer's view proof establishes under `cp`.
std::optional<merkle::CatalogEntry> EntryOf(const LedgerDb::KvAnswer& answer, const merkle::Checkpoint& cp) {
  auto view = verifier::VerifyViewProof(answer.view, cp.size, cp.root);
  REQUIRE(view.ok());
  return view->entry;
}

TEST_CASE("Key-value gets and scans are proven against a signed checkpoint (randomized vs std::map)", "[api][kv][proof]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "kvq", SmallOptions());
  REQUIRE(db.ok());
  std::mt19937_64 rng(99);
  std::map<std::string, std::string> model;
  auto random_key = [&] { return std::string(1, static_cast<char>('a' + rng() % 4)) + std::to_string(rng() % 60); };
  for (int b = 0; b < 30; ++b) {
    journal::Transaction tx;
    for (int i = 0; i < 8; ++i) {
      std::string key = random_key();
      if (rng() % 4 == 0) {
        tx.operations.push_back(KvOp({kv::KvOp::Type::kDelete, "inv", key, std::nullopt, std::nullopt}));
        model.erase(key);
      } else {
        std::string value = "v" + std::to_string(rng() % 1000);
        tx.operations.push_back(KvOp({kv::KvOp::Type::kPut, "inv", key, value, std::nullopt}));
        model[key] = value;
      }
    }
    REQUIRE((*db)->Execute(std::move(tx)).ok());
  }
  const merkle::Checkpoint checkpoint = SignedCheckpoint(**db);
  const merkle::Checkpoint* cp = &checkpoint;
  auto at = (*db)->State();
  REQUIRE(at.ok());
  auto verified_entry = [&](const LedgerDb::KvAnswer& answer) { return EntryOf(answer, checkpoint); };
  for (int q = 0; q < 200; ++q) {
    kv::KvScan scan;
    if (rng() % 2 == 0) {
      scan.prefix = std::string(1, static_cast<char>('a' + rng() % 5));
    } else {
      scan.lo = random_key();
      if (rng() % 3 != 0) scan.hi = random_key();
    }
    scan.limit = rng() % 3 == 0 ? 1000 : 1 + rng() % 10;
    scan.reverse = rng() % 2 == 0;
    auto answer = (*db)->ProveKvScan(*at, "inv", scan, cp->size);
    REQUIRE(answer.ok());
    auto result = kv::VerifyKvScan(scan, verified_entry(*answer), answer->map);
    REQUIRE(result.ok());
    // The model's answer.
    std::vector<kv::KvEntry> want;
    const std::string lo = scan.prefix ? *scan.prefix : scan.lo;
    for (const auto& [k, v] : model) {
      const bool in = scan.prefix ? k.starts_with(*scan.prefix) : (k >= lo && (!scan.hi || k < *scan.hi));
      if (in) want.push_back({k, v});
    }
    if (scan.reverse) std::reverse(want.begin(), want.end());
    const bool more = want.size() > scan.limit;
    if (more) want.resize(scan.limit);
    CHECK(result->entries == want);
    CHECK(result->has_more == more);
    // The same proof does not verify a different query.
    kv::KvScan other = scan;
    other.limit = scan.limit + 1;
    auto mismatch = kv::VerifyKvScan(other, verified_entry(*answer), answer->map);
    if (mismatch.ok()) CHECK((!more && mismatch->entries == result->entries));
  }
  for (int q = 0; q < 100; ++q) {
    const std::string key = random_key();
    auto answer = (*db)->ProveKvGet(*at, "inv", key, cp->size);
    REQUIRE(answer.ok());
    auto got = kv::VerifyKvGet(key, verified_entry(*answer), answer->map);
    REQUIRE(got.ok());
    auto it = model.find(key);
    CHECK(*got == (it == model.end() ? std::nullopt : std::optional<std::string>(it->second)));
    // A proof for one key is no proof for another.
    const std::string other = key + "x";
    auto wrong = kv::VerifyKvGet(other, verified_entry(*answer), answer->map);
    CHECK((!wrong.ok() || !wrong->has_value()));
  }
  // A namespace that does not exist: proven absent, empty answers.
  auto none = (*db)->ProveKvGet(*at, "nope", "k", cp->size);
  REQUIRE(none.ok());
  CHECK_FALSE(verified_entry(*none).has_value());
  CHECK(kv::VerifyKvGet("k", std::nullopt, none->map)->has_value() == false);
}

journal::Operation Zop(kv::ZsetOp::Type type, const std::string& member, std::int64_t score) {
  kv::ZsetOp op{type, "game", "scores", member, score};
  return {kv::ZsetOpKind(op), kv::EncodeZsetOp(op)};
}

TEST_CASE("Leaderboards: ranks, top-n and score ranges proven (randomized vs a model)", "[api][kv][zset]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "zset", SmallOptions());
  REQUIRE(db.ok());
  std::mt19937_64 rng(5);
  std::map<std::string, std::int64_t> model;
  for (int b = 0; b < 40; ++b) {
    journal::Transaction tx;
    for (int i = 0; i < 6; ++i) {
      const std::string member = "p" + std::to_string(rng() % 50);
      const std::int64_t x = static_cast<std::int64_t>(rng() % 200) - 50;
      switch (rng() % 4) {
        case 0: tx.operations.push_back(Zop(kv::ZsetOp::Type::kRemove, member, 0)); model.erase(member); break;
        case 1: tx.operations.push_back(Zop(kv::ZsetOp::Type::kIncrement, member, x)); model[member] += x; break;
        default: tx.operations.push_back(Zop(kv::ZsetOp::Type::kAdd, member, x)); model[member] = x; break;
      }
    }
    REQUIRE((*db)->Execute(std::move(tx)).ok());
  }
  // The model's order: highest score first, ties by higher member bytes first.
  std::vector<kv::ZsetMember> desc;
  for (const auto& [m, sc] : model) desc.push_back({m, sc});
  std::sort(desc.begin(), desc.end(), [](const auto& a, const auto& b) {
    return a.score != b.score ? a.score > b.score : a.member > b.member;
  });

  const merkle::Checkpoint checkpoint = SignedCheckpoint(**db);
  const merkle::Checkpoint* cp = &checkpoint;
  auto at = (*db)->State();
  REQUIRE(at.ok());
  auto entry_of = [&](const LedgerDb::KvAnswer& a) { return EntryOf(a, checkpoint); };
  for (int q = 0; q < 60; ++q) {
    const std::string member = "p" + std::to_string(rng() % 55);
    auto answer = (*db)->ProveZsetRank(*at, "game", "scores", member, cp->size);
    REQUIRE(answer.ok());
    auto rank = kv::VerifyZsetRank(member, entry_of(answer->members), answer->members.map, entry_of(answer->scores),
                                   answer->scores.map);
    REQUIRE(rank.ok());
    auto it = std::find_if(desc.begin(), desc.end(), [&](const auto& e) { return e.member == member; });
    if (it == desc.end()) {
      CHECK_FALSE(rank->has_value());
    } else {
      REQUIRE(rank->has_value());
      CHECK((*rank)->score == it->score);
      CHECK((*rank)->rank == static_cast<std::uint64_t>(it - desc.begin()));
      CHECK((*rank)->total == desc.size());
      // Swapping in another member's scores proof must not pass.
      const std::string other = member == desc.front().member ? desc.back().member : desc.front().member;
      auto other_answer = (*db)->ProveZsetRank(*at, "game", "scores", other, cp->size);
      auto forged = kv::VerifyZsetRank(member, entry_of(answer->members), answer->members.map,
                                       entry_of(answer->scores), other_answer->scores.map);
      CHECK((!forged.ok() || other == member));
    }
  }
  for (std::uint64_t n : {1, 3, 10, 100}) {
    auto answer = (*db)->ProveZsetTop(*at, "game", "scores", n, cp->size);
    REQUIRE(answer.ok());
    auto top = kv::VerifyZsetTop(n, entry_of(*answer), answer->map);
    REQUIRE(top.ok());
    std::vector<kv::ZsetMember> want(desc.begin(), desc.begin() + static_cast<long>(std::min<size_t>(n, desc.size())));
    CHECK(*top == want);
    // Checked for a smaller n, the same proof may only ever yield that
    // smaller, still correct, answer.
    if (n > 1 && want.size() >= n) {
      auto smaller = kv::VerifyZsetTop(n - 1, entry_of(*answer), answer->map);
      if (smaller.ok()) CHECK(*smaller == std::vector<kv::ZsetMember>(want.begin(), want.end() - 1));
    }
    // A proof of the top n cannot pass as a longer top list when more members exist.
    if (desc.size() > n) CHECK_FALSE(kv::VerifyZsetTop(n + 1, entry_of(*answer), answer->map).ok());
  }
  for (int q = 0; q < 30; ++q) {
    const std::int64_t lo = static_cast<std::int64_t>(rng() % 300) - 100;
    const std::int64_t hi = lo + static_cast<std::int64_t>(rng() % 150);
    const std::uint64_t limit = 1 + rng() % 20;
    auto answer = (*db)->ProveZsetScoreRange(*at, "game", "scores", lo, hi, limit, cp->size);
    REQUIRE(answer.ok());
    auto got = kv::VerifyZsetScoreRange(lo, hi, limit, entry_of(*answer), answer->map);
    REQUIRE(got.ok());
    std::vector<kv::ZsetMember> want;
    for (auto it = desc.rbegin(); it != desc.rend(); ++it) {
      if (it->score >= lo && it->score <= hi && want.size() < limit) want.push_back(*it);
    }
    CHECK(*got == want);
  }
  // Overflow refuses the transaction alone.
  journal::Transaction big;
  big.operations.push_back(Zop(kv::ZsetOp::Type::kAdd, "max", std::numeric_limits<std::int64_t>::max()));
  REQUIRE((*db)->Execute(big).ok());
  journal::Transaction overflow;
  overflow.operations.push_back(Zop(kv::ZsetOp::Type::kIncrement, "max", 1));
  CHECK((*db)->Execute(overflow).status().code() == StatusCode::kOutOfRange);
}

namespace doc = engines::document;

journal::Transaction DocTx(doc::DocOp op) {
  journal::Transaction tx;
  auto body = doc::EncodeDocOp(op);
  REQUIRE(body.ok());
  tx.operations.push_back({doc::DocOpKind(op), *body});
  return tx;
}

TEST_CASE("Documents: revisions, refusals, proven find and history (randomized vs a naive model)", "[api][document]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "docs", SmallOptions());
  REQUIRE(db.ok());
  std::mt19937_64 rng(8);
  std::map<std::string, nlohmann::json> live;                       // id -> document
  std::map<std::string, std::vector<doc::Revision>> history;        // id -> revisions
  for (int i = 0; i < 120; ++i) {
    const std::string id = "o" + std::to_string(rng() % 25);
    nlohmann::json body = {{"total", static_cast<int>(rng() % 500)},
                           {"status", rng() % 2 ? "paid" : "open"},
                           {"customer", {{"city", rng() % 2 ? "Zurich" : "Basel"}}}};
    doc::DocOp op;
    op.collection = "orders";
    op.id = id;
    const int pick = static_cast<int>(rng() % 3);
    op.type = pick == 0 ? doc::DocOp::Type::kInsert : (pick == 1 ? doc::DocOp::Type::kReplace : doc::DocOp::Type::kDelete);
    if (op.type != doc::DocOp::Type::kDelete) op.json = body.dump();
    const bool exists = live.count(id) != 0;
    auto r = (*db)->Execute(DocTx(op));
    const std::uint64_t height = (*db)->journal().size() - 1;
    if (op.type == doc::DocOp::Type::kInsert && exists) {
      CHECK(r.status().code() == StatusCode::kAlreadyExists);
      continue;
    }
    if (op.type != doc::DocOp::Type::kInsert && !exists) {
      CHECK(r.status().code() == StatusCode::kNotFound);
      continue;
    }
    REQUIRE(r.ok());
    auto header = (*db)->journal().GetBlock(height);
    REQUIRE(header.ok());
    doc::Revision rev{history[id].size() + 1, height, 0, header->timestamp_us, op.type == doc::DocOp::Type::kDelete, ""};
    if (!rev.deleted) {
      rev.json = *doc::CanonicalJson(body);
      live[id] = body;
    } else {
      live.erase(id);
    }
    history[id].push_back(rev);
  }
  // Optimistic version checks and derived ids.
  if (!live.empty()) {
    const std::string id = live.begin()->first;
    doc::DocOp stale{doc::DocOp::Type::kReplace, "orders", id, R"({"x":1})", history[id].back().version + 7};
    CHECK((*db)->Execute(DocTx(stale)).status().code() == StatusCode::kAborted);
  }
  doc::DocOp anonymous{doc::DocOp::Type::kInsert, "orders", "", R"({"total":1,"status":"open"})", std::nullopt};
  REQUIRE((*db)->Execute(DocTx(anonymous)).ok());
  CHECK((*db)->Execute(DocTx(anonymous)).ok());  // same content, another transaction: another id
  doc::DocOp not_object{doc::DocOp::Type::kInsert, "orders", "x", "[1,2]", std::nullopt};
  CHECK_FALSE(doc::EncodeDocOp(not_object).ok());

  const merkle::Checkpoint checkpoint = SignedCheckpoint(**db);
  const merkle::Checkpoint* cp = &checkpoint;
  auto at = (*db)->State();
  REQUIRE(at.ok());
  auto entry_of = [&](const LedgerDb::KvAnswer& a) { return EntryOf(a, checkpoint); };
  const nlohmann::json filters[] = {
      nlohmann::json::object(),
      {{"status", "paid"}},
      {{"total", {{"$gte", 250}}}, {"customer.city", "Zurich"}},
      {{"$or", nlohmann::json::array({nlohmann::json{{"total", {{"$lt", 50}}}}, nlohmann::json{{"status", "open"}}})}},
      {{"total", {{"$in", nlohmann::json::array({1, 2, 3})}}}}};
  auto scan = (*db)->ProveDocScan(*at, "orders", cp->size);
  REQUIRE(scan.ok());
  for (const auto& spec : filters) {
    auto filter = doc::Filter::Parse(spec);
    REQUIRE(filter.ok());
    auto found = doc::VerifyFind(*filter, entry_of(*scan), scan->map);
    REQUIRE(found.ok());
    // The naive model: the filter over every live document (plus the two anonymous ones).
    size_t want = 0;
    for (const auto& [id, body] : live) want += filter->Matches(body) ? 1 : 0;
    want += filter->Matches(nlohmann::json::parse(R"({"total":1,"status":"open"})")) ? 2 : 0;
    CHECK(found->size() == want);
    for (const auto& d : *found) {
      if (live.count(d.id) != 0) CHECK(d.document == live[d.id]);
      CHECK(filter->Matches(d.document));
    }
  }
  // Dropping a document from the scan proof is detected.
  {
    auto all = doc::Filter::Parse(nlohmann::json::object());
    auto map_state = at->state->Find({"doc", "orders", ""});
    REQUIRE(map_state != nullptr);
    auto reader = at->views->MapFor(map_state->spec);
    auto short_proof = reader->ProveRange(map_state->version, {"", std::nullopt, 3, false});
    REQUIRE(short_proof.ok());
    CHECK_FALSE(doc::VerifyFind(*all, entry_of(*scan), *short_proof).ok());
  }
  for (const auto& [id, revs] : history) {
    auto answer = (*db)->ProveDocHistory(*at, "orders", id, cp->size);
    REQUIRE(answer.ok());
    auto got = doc::VerifyHistory(id, entry_of(*answer), answer->map);
    REQUIRE(got.ok());
    CHECK(*got == revs);
  }
  // Replay gives the same state (derived ids and versions are deterministic).
  const auto root = at->state->state_root();
  db->reset();
  std::filesystem::remove_all(dir.Sub("views"));
  auto reopened = LedgerDb::Open(dir.path(), SmallOptions());
  REQUIRE(reopened.ok());
  CHECK((*reopened)->State()->state->state_root() == root);
}


journal::Transaction IndexTx(const std::string& collection, const std::string& path) {
  doc::DocOp op;
  op.type = doc::DocOp::Type::kCreateIndex;
  op.collection = collection;
  op.path = path;
  return DocTx(op);
}

nlohmann::json RandomScalar(std::mt19937_64& rng) {
  switch (rng() % 9) {
    case 0: return static_cast<std::int64_t>(rng() % 40) - 20;
    case 1: return static_cast<double>(rng() % 400) / 8.0 - 10;
    case 2: return std::numeric_limits<std::uint64_t>::max() - rng() % 2;  // beyond int64 and double precision
    case 3: return std::int64_t{-1};
    case 4: return std::string(1, static_cast<char>('a' + rng() % 6)) + (rng() % 2 ? "x" : "");
    case 5: return rng() % 2 == 0;
    case 6: return nullptr;
    case 7: return std::string(1100 + rng() % 3, 'L') + std::to_string(rng() % 3);  // long: truncated in the index
    default: return static_cast<std::int64_t>(rng() % 10);
  }
}

nlohmann::json RandomOrder(std::mt19937_64& rng) {
  nlohmann::json d = nlohmann::json::object();
  if (rng() % 6 != 0) d["total"] = RandomScalar(rng);
  if (rng() % 3 != 0) {
    nlohmann::json tags = nlohmann::json::array();
    for (size_t n = rng() % 4; n > 0; --n) tags.push_back(RandomScalar(rng));
    if (rng() % 4 == 0) tags.push_back(nlohmann::json::array({RandomScalar(rng)}));  // nested: not indexed
    d["tags"] = tags;
  }
  if (rng() % 5 != 0) {
    nlohmann::json city = rng() % 4 == 0 ? nlohmann::json(nlohmann::json::array({RandomScalar(rng), RandomScalar(rng)}))
                                         : RandomScalar(rng);
    if (rng() % 3 == 0) {
      d["customer"] = nlohmann::json::array({{{"city", city}}, {{"city", RandomScalar(rng)}}});
    } else {
      d["customer"] = {{"city", city}};
    }
  }
  return d;
}

nlohmann::json RandomIndexedFilter(std::mt19937_64& rng) {
  static const char* const kPaths[] = {"total", "tags", "customer.city"};
  static const char* const kOps[] = {"$eq", "$gt", "$gte", "$lt", "$lte", "$in", "$ne"};
  nlohmann::json filter = nlohmann::json::object();
  for (size_t n = 1 + rng() % 2; n > 0; --n) {
    const std::string path = kPaths[rng() % 3];
    const std::string op = kOps[rng() % 7];
    nlohmann::json operand = RandomScalar(rng);
    if (op == "$in") operand = nlohmann::json::array({RandomScalar(rng), RandomScalar(rng), RandomScalar(rng)});
    if (rng() % 4 == 0) {
      filter["$and"] = nlohmann::json::array({{{path, {{op, operand}}}}});
    } else {
      filter[path] = {{op, operand}};
    }
  }
  if (rng() % 5 == 0) filter["$or"] = nlohmann::json::array({{{"total", {{"$gte", 3}}}}, {{"tags", "a"}}});
  return filter;
}

nlohmann::json FindQuery(const nlohmann::json& filter) {
  return {{"kind", "doc.find"}, {"collection", "orders"}, {"filter", filter},
          {"descending", false}, {"skip", 0},          {"projection", nlohmann::json::array()}};
}

TEST_CASE("Path indexes: finds through an index equal a full scan and the naive model (randomized)", "[api][document][index]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "docs", SmallOptions());
  REQUIRE(db.ok());
  // Two indexes from the start, one declared over existing documents later.
  REQUIRE((*db)->Execute(IndexTx("orders", "total")).ok());
  REQUIRE((*db)->Execute(IndexTx("orders", "tags")).ok());
  CHECK((*db)->Execute(IndexTx("orders", "total")).status().code() == StatusCode::kAlreadyExists);
  doc::DocOp bad_path{doc::DocOp::Type::kCreateIndex, "orders", "", "", std::nullopt, "a..b"};
  CHECK(doc::EncodeDocOp(bad_path).status().code() == StatusCode::kInvalidArgument);

  std::mt19937_64 rng(44);
  std::map<std::string, nlohmann::json> live;
  size_t single_valued_plans = 0;
  auto run_queries = [&](int rounds) {
    const merkle::Checkpoint cp = SignedCheckpoint(**db);
    for (int q = 0; q < rounds; ++q) {
      const nlohmann::json filter = RandomIndexedFilter(rng);
      auto parsed = doc::Filter::Parse(filter);
      REQUIRE(parsed.ok());
      nlohmann::json want = nlohmann::json::array();
      for (const auto& [id, body] : live) {
        if (parsed->Matches(body)) want.push_back(id);
      }
      auto ids = [](const nlohmann::json& result) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& d : result.at("documents")) out.push_back(d.at("id"));
        return out;
      };
      INFO("filter " << filter.dump());
      auto chosen = AnswerQuery(**db, FindQuery(filter));
      REQUIRE(chosen.ok());
      CHECK(ids(chosen->result) == want);
      nlohmann::json scan_query = FindQuery(filter);
      scan_query["index"] = "";
      auto scan = AnswerQuery(**db, scan_query);
      REQUIRE(scan.ok());
      CHECK(scan->result == chosen->result);
      for (const char* path : {"total", "tags", "customer.city"}) {
        nlohmann::json forced = FindQuery(filter);
        forced["index"] = path;
        auto indexed = AnswerQuery(**db, forced);
        if (!doc::IndexRanges(*parsed, path).has_value()) {
          CHECK(indexed.status().code() == StatusCode::kInvalidArgument);
          continue;
        }
        if (!indexed.ok()) {  // the late index may not exist yet
          CHECK(indexed.status().code() == StatusCode::kFailedPrecondition);
          continue;
        }
        CHECK(indexed->result == scan->result);
        auto again = verifier::EvaluateBundle(*indexed, cp.size, cp.root);
        REQUIRE(again.ok());
        CHECK(*again == indexed->result);
        // Intersected bounds: allowed only while no document gives two values.
        forced["index_single_valued"] = true;
        auto single = AnswerQuery(**db, forced);
        if (single.ok()) {
          ++single_valued_plans;
          CHECK(single->result == scan->result);
        } else {
          CHECK(single.status().code() == StatusCode::kFailedPrecondition);
        }
      }
    }
  };
  for (int i = 0; i < 260; ++i) {
    if (i == 130) {
      REQUIRE((*db)->Execute(IndexTx("orders", "customer.city")).ok());  // built from what exists
      run_queries(40);
    }
    const std::string id = "o" + std::to_string(rng() % 60);
    doc::DocOp op;
    op.collection = "orders";
    op.id = id;
    const bool exists = live.count(id) != 0;
    op.type = !exists ? doc::DocOp::Type::kInsert : (rng() % 4 == 0 ? doc::DocOp::Type::kDelete : doc::DocOp::Type::kReplace);
    const nlohmann::json body = RandomOrder(rng);
    if (op.type != doc::DocOp::Type::kDelete) op.json = body.dump();
    REQUIRE((*db)->Execute(DocTx(op)).ok());
    if (op.type == doc::DocOp::Type::kDelete) live.erase(id); else live[id] = body;
  }
  run_queries(120);
  CHECK(single_valued_plans > 20);  // "total" never gives two values

  // A single-valued plan without its multikey proof, or with the proof of
  // another key, fails; so does one on an index that is multikey.
  {
    nlohmann::json two_sided = FindQuery({{"total", {{"$gte", 2}, {"$lt", 6}}}});
    auto chosen = AnswerQuery(**db, two_sided);
    REQUIRE(chosen.ok());
    CHECK(chosen->query.value("index", "") == "total");
    CHECK(chosen->query.value("index_single_valued", false));
    const merkle::Checkpoint now = SignedCheckpoint(**db);
    REQUIRE(verifier::EvaluateBundle(*chosen, now.size, now.root).ok());
    verifier::Bundle b = *chosen;
    b.views.erase(b.views.begin());
    CHECK_FALSE(verifier::EvaluateBundle(b, now.size, now.root).ok());
    b = *chosen;
    b.views.front().map = b.views.back().map;
    CHECK_FALSE(verifier::EvaluateBundle(b, now.size, now.root).ok());
    b = *chosen;
    b.query.erase("index_single_valued");  // the same proofs read as a one-sided plan
    CHECK_FALSE(verifier::EvaluateBundle(b, now.size, now.root).ok());
    nlohmann::json tags = FindQuery({{"tags", {{"$gte", 2}, {"$lt", 6}}}});
    tags["index"] = "tags";
    tags["index_single_valued"] = true;
    CHECK(AnswerQuery(**db, tags).status().code() == StatusCode::kFailedPrecondition);
  }

  // Altered index proofs fail.
  nlohmann::json filter = {{"total", {{"$in", nlohmann::json::array({0, 1, 2, 3, 4, 5, 6, 7, 8, 9})}}}};
  nlohmann::json forced = FindQuery(filter);
  forced["index"] = "total";
  auto good = AnswerQuery(**db, forced);
  REQUIRE(good.ok());
  REQUIRE(good->views.size() == 10);
  REQUIRE_FALSE(good->result.at("documents").empty());
  const merkle::Checkpoint cp = SignedCheckpoint(**db);
  REQUIRE(verifier::EvaluateBundle(*good, cp.size, cp.root).ok());
  auto at = (*db)->State();
  REQUIRE(at.ok());
  const auto* index_map = at->state->Find({"doc", "orders", "index:total"});
  REQUIRE(index_map != nullptr);
  auto reader = at->views->MapFor(index_map->spec);
  REQUIRE(reader.ok());
  auto fails = [&](const verifier::Bundle& b) { return !verifier::EvaluateBundle(b, cp.size, cp.root).ok(); };
  size_t tampered = 0;
  for (size_t v = 0; v < good->views.size(); ++v) {
    auto ranges = doc::IndexRanges(*doc::Filter::Parse(filter), "total");
    auto full = reader->Range(index_map->version, (*ranges)[v]);
    REQUIRE(full.ok());
    if (full->entries.empty()) continue;
    ++tampered;
    {  // drop the last entry of the range: a proof of a shorter range
      merkle::MapRangeQuery shorter = (*ranges)[v];
      shorter.limit = full->entries.size() - 1;
      auto proof = reader->ProveRange(index_map->version, shorter);
      REQUIRE(proof.ok());
      verifier::Bundle b = *good;
      b.views[v].map = *proof;
      CHECK(fails(b));
    }
    {  // change a byte of a revealed document
      verifier::Bundle b = *good;
      bool changed = false;
      for (auto& node : b.views[v].map.nodes) {
        if (node.type == merkle::MapProofNode::Type::kEntryWithValue && !node.value.empty()) {
          node.value.back() ^= 1;
          changed = true;
          break;
        }
      }
      CHECK(changed);
      CHECK(fails(b));
    }
  }
  CHECK(tampered > 0);
  {  // reorder the ranges' proofs
    verifier::Bundle b = *good;
    std::swap(b.views.front().map, b.views.back().map);
    CHECK(fails(b));
  }
  {  // truncate: one range proof missing
    verifier::Bundle b = *good;
    b.views.pop_back();
    CHECK(fails(b));
  }
  {  // claim another index served the query: its catalog key differs
    verifier::Bundle b = *good;
    b.query["index"] = "tags";
    CHECK(fails(b));
  }
  {  // a full-scan claim on index proofs
    verifier::Bundle b = *good;
    b.query.erase("index");
    CHECK(fails(b));
  }
  {  // another block's state: the proofs do not match the older header
    auto older = AnswerQuery(**db, forced, QueryPoint{(*db)->journal().size() - 3, std::nullopt});
    REQUIRE(older.ok());
    verifier::Bundle b = *good;
    b.block = older->block;
    b.height = older->height;
    CHECK(fails(b));
  }

  // Rebuilding the views from the journal reaches the same state root.
  const auto root = at->state->state_root();
  db->reset();
  std::filesystem::remove_all(dir.Sub("views"));
  auto reopened = LedgerDb::Open(dir.path(), SmallOptions());
  REQUIRE(reopened.ok());
  CHECK((*reopened)->State()->state->state_root() == root);
}

TEST_CASE("Validators refuse bad documents and store nothing, and revisions carry block time", "[api][document][validator]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "docs", SmallOptions());
  REQUIRE(db.ok());
  doc::DocOp set{doc::DocOp::Type::kSetValidator, "people", "",
                 R"({"type":"object","required":["name"],"properties":{"age":{"type":"integer","minimum":0}}})",
                 std::nullopt};
  REQUIRE((*db)->Execute(DocTx(set)).ok());
  doc::DocOp bad_schema{doc::DocOp::Type::kSetValidator, "people", "", R"({"type":"thing"})", std::nullopt};
  CHECK(doc::EncodeDocOp(bad_schema).status().code() == StatusCode::kInvalidArgument);

  doc::DocOp good{doc::DocOp::Type::kInsert, "people", "p1", R"({"name":"Ada","age":36})", std::nullopt};
  auto receipt = (*db)->Execute(DocTx(good));
  REQUIRE(receipt.ok());
  const auto root = (*db)->State()->state->state_root();
  const auto size = (*db)->journal().size();
  for (const char* body : {R"({"age":3})", R"({"name":"Bob","age":-1})", R"({"name":"Bob","age":1.5})"}) {
    doc::DocOp bad{doc::DocOp::Type::kInsert, "people", "p2", body, std::nullopt};
    auto r = (*db)->Execute(DocTx(bad));
    INFO(body);
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message().find("validator") != std::string::npos);
  }
  doc::DocOp bad_update{doc::DocOp::Type::kReplace, "people", "p1", R"({"age":37})", std::nullopt};
  CHECK((*db)->Execute(DocTx(bad_update)).status().code() == StatusCode::kInvalidArgument);
  CHECK((*db)->State()->state->state_root() == root);
  CHECK((*db)->journal().size() == size);
  // Without the validator the same document goes in.
  doc::DocOp clear{doc::DocOp::Type::kSetValidator, "people", "", "", std::nullopt};
  REQUIRE((*db)->Execute(DocTx(clear)).ok());
  doc::DocOp now_ok{doc::DocOp::Type::kInsert, "people", "p2", R"({"age":3})", std::nullopt};
  REQUIRE((*db)->Execute(DocTx(now_ok)).ok());

  // Revision metadata: block height, place in block, block time.
  auto history = AnswerQuery(**db, {{"kind", "doc.history"}, {"collection", "people"}, {"id", "p1"}});
  REQUIRE(history.ok());
  const auto& rev = history->result.at("revisions").at(0);
  auto header = (*db)->journal().GetBlock(receipt->block_height);
  REQUIRE(header.ok());
  CHECK(rev.at("height") == receipt->block_height);
  CHECK(rev.at("index_in_block") == receipt->index_in_block);
  CHECK(rev.at("time_us") == header->timestamp_us);
  CHECK(header->timestamp_us > 1700000000000000);  // a real clock, not zero
}


TEST_CASE("Batch gets: one bundle proves every key's presence or absence (randomized vs std::map)", "[api][kv][proof]") {
  namespace kv = engines::kv;
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "kv", SmallOptions());
  REQUIRE(db.ok());
  std::mt19937_64 rng(3);
  std::map<std::string, std::string> model;
  for (int t = 0; t < 40; ++t) {
    journal::Transaction tx;
    for (int i = 0; i < 10; ++i) {
      const std::string key = "k" + std::to_string(rng() % 120);
      const std::string value = "v" + std::to_string(rng());
      kv::KvOp op{kv::KvOp::Type::kPut, "ns", key, value, std::nullopt};
      tx.operations.push_back({kv::KvOpKind(op), kv::EncodeKvOp(op)});
      model[key] = value;
    }
    REQUIRE((*db)->Execute(tx).ok());
  }
  const merkle::Checkpoint cp = SignedCheckpoint(**db);
  for (int q = 0; q < 30; ++q) {
    nlohmann::json keys = nlohmann::json::array();
    std::vector<std::string> wanted;
    for (size_t n = 1 + rng() % 20; n > 0; --n) {
      wanted.push_back("k" + std::to_string(rng() % 160));  // some absent
      keys.push_back(Base64Encode(wanted.back()));
    }
    auto bundle = AnswerQuery(**db, {{"kind", "kv.get_many"}, {"namespace", "ns"}, {"keys", keys}});
    REQUIRE(bundle.ok());
    const auto& entries = bundle->result.at("entries");
    REQUIRE(entries.size() == wanted.size());
    for (size_t i = 0; i < wanted.size(); ++i) {
      auto it = model.find(wanted[i]);
      CHECK(entries[i].at("found") == (it != model.end()));
      if (it != model.end()) CHECK(entries[i].at("value") == Base64Encode(it->second));
    }
    auto again = verifier::EvaluateBundle(*bundle, cp.size, cp.root);
    REQUIRE(again.ok());
    CHECK(*again == bundle->result);
    if (wanted.size() >= 2 && wanted[0] != wanted[1]) {
      verifier::Bundle swapped = *bundle;
      std::swap(swapped.views[0], swapped.views[1]);
      CHECK_FALSE(verifier::EvaluateBundle(swapped, cp.size, cp.root).ok());
    }
    verifier::Bundle dropped = *bundle;
    dropped.views.pop_back();
    CHECK_FALSE(verifier::EvaluateBundle(dropped, cp.size, cp.root).ok());
  }
  CHECK(AnswerQuery(**db, {{"kind", "kv.get_many"}, {"namespace", "ns"}, {"keys", nlohmann::json::array()}})
            .status()
            .code() == StatusCode::kInvalidArgument);
}


TEST_CASE("History bundles prove each revision's transaction in the journal", "[api][document][history]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "docs", SmallOptions());
  REQUIRE(db.ok());
  // An anonymous insert (derived id), replaces in separate and shared
  // transactions, a delete and a re-insert.
  journal::Transaction first;
  auto insert = doc::EncodeDocOp({doc::DocOp::Type::kInsert, "c", "", R"({"n":0})", std::nullopt});
  REQUIRE(insert.ok());
  first.operations.push_back({doc::kOpDocInsert, *insert});
  auto receipt = (*db)->Execute(first);
  REQUIRE(receipt.ok());
  const std::string id = doc::DerivedDocumentId(receipt->block_height, receipt->index_in_block, 0);
  for (int n = 1; n <= 3; ++n) {
    REQUIRE((*db)->Execute(DocTx({doc::DocOp::Type::kReplace, "c", id, "{\"n\":" + std::to_string(n) + "}", std::nullopt})).ok());
  }
  journal::Transaction two;  // two revisions from one transaction
  for (int n : {4, 5}) {
    auto body = doc::EncodeDocOp({doc::DocOp::Type::kReplace, "c", id, "{\"n\":" + std::to_string(n) + "}", std::nullopt});
    REQUIRE(body.ok());
    two.operations.push_back({doc::kOpDocReplace, *body});
  }
  REQUIRE((*db)->Execute(two).ok());
  REQUIRE((*db)->Execute(DocTx({doc::DocOp::Type::kDelete, "c", id, "", std::nullopt})).ok());
  REQUIRE((*db)->Execute(DocTx({doc::DocOp::Type::kInsert, "c", id, R"({"n":6})", std::nullopt})).ok());
  REQUIRE((*db)->Execute(DocTx({doc::DocOp::Type::kInsert, "c", "other", R"({"n":9})", std::nullopt})).ok());

  auto bundle = AnswerQuery(**db, {{"kind", "doc.history"}, {"collection", "c"}, {"id", id}});
  REQUIRE(bundle.ok());
  REQUIRE(bundle->transactions.size() == 8);
  REQUIRE(bundle->result.at("revisions").size() == 8);
  const merkle::Checkpoint cp = SignedCheckpoint(**db);
  auto fails = [&](const verifier::Bundle& b) { return !verifier::EvaluateBundle(b, cp.size, cp.root).ok(); };
  REQUIRE_FALSE(fails(*bundle));
  // The JSON form round-trips.
  auto parsed = verifier::ParseBundle(verifier::BundleToJson(*bundle));
  REQUIRE(parsed.ok());
  REQUIRE(parsed->transactions.size() == 8);
  REQUIRE_FALSE(fails(*parsed));

  verifier::Bundle b = *bundle;
  b.transactions.pop_back();  // truncated
  CHECK(fails(b));
  b = *bundle;
  std::swap(b.transactions[1], b.transactions[2]);  // reordered
  CHECK(fails(b));
  b = *bundle;
  b.transactions[3].transaction.back() ^= 1;  // altered transaction bytes
  CHECK(fails(b));
  b = *bundle;
  auto other = AnswerQuery(**db, {{"kind", "doc.history"}, {"collection", "c"}, {"id", "other"}});
  REQUIRE(other.ok());
  b.transactions[7] = other->transactions[0];  // another document's transaction
  CHECK(fails(b));
  b = *bundle;
  CHECK(b.transactions[5].transaction == b.transactions[4].transaction);  // versions 5 and 6 share one transaction
  b = *bundle;
  b.transactions[6] = b.transactions[4];  // the delete's proof replaced by a replace's
  CHECK(fails(b));
  auto kv_bundle = AnswerQuery(**db, {{"kind", "kv.get"}, {"namespace", "x"}, {"key", Base64Encode("k")}});
  REQUIRE(kv_bundle.ok());
  kv_bundle->transactions.push_back(bundle->transactions[0]);  // proofs a query does not take
  CHECK(fails(*kv_bundle));
}


TEST_CASE("Document assertions: a read's version must still hold at commit", "[api][document][occ]") {
  testing::TempDir dir;
  auto db = LedgerDb::Create(dir.path(), "docs", SmallOptions());
  REQUIRE(db.ok());
  REQUIRE((*db)->Execute(DocTx({doc::DocOp::Type::kInsert, "c", "a", R"({"n":1})", std::nullopt})).ok());
  auto assert_op = [](const char* id, std::optional<std::uint64_t> version) {
    return doc::DocOp{doc::DocOp::Type::kAssert, "c", id, "", version};
  };
  CHECK((*db)->Execute(DocTx(assert_op("a", 1))).ok());
  CHECK((*db)->Execute(DocTx(assert_op("a", 2))).status().code() == StatusCode::kAborted);
  CHECK((*db)->Execute(DocTx(assert_op("a", std::nullopt))).status().code() == StatusCode::kAborted);
  CHECK((*db)->Execute(DocTx(assert_op("b", std::nullopt))).ok());
  CHECK((*db)->Execute(DocTx(assert_op("b", 1))).status().code() == StatusCode::kAborted);
  const auto root = (*db)->State()->state->state_root();
  // A failed assertion refuses the whole transaction: its write is not applied.
  journal::Transaction tx;
  for (const doc::DocOp& op : {assert_op("a", 7), doc::DocOp{doc::DocOp::Type::kReplace, "c", "a", R"({"n":2})", std::nullopt}}) {
    auto body = doc::EncodeDocOp(op);
    REQUIRE(body.ok());
    tx.operations.push_back({doc::DocOpKind(op), *body});
  }
  auto refused = (*db)->Execute(tx);
  CHECK(refused.status().code() == StatusCode::kAborted);
  CHECK(refused.status().message().find("document 'a'") != std::string::npos);
  CHECK((*db)->State()->state->state_root() == root);
  // Assertions take no document id: an anonymous insert after one gets index 0.
  journal::Transaction with_insert;
  for (const doc::DocOp& op : {assert_op("a", 1), doc::DocOp{doc::DocOp::Type::kInsert, "c", "", R"({"n":3})", std::nullopt}}) {
    auto body = doc::EncodeDocOp(op);
    REQUIRE(body.ok());
    with_insert.operations.push_back({doc::DocOpKind(op), *body});
  }
  auto receipt = (*db)->Execute(with_insert);
  REQUIRE(receipt.ok());
  auto at = (*db)->State();
  REQUIRE(at.ok());
  auto read = (*db)->ReadDoc(*at, "c", doc::DerivedDocumentId(receipt->block_height, receipt->index_in_block, 0));
  REQUIRE(read.ok());
  REQUIRE(read->has_value());
  CHECK((*read)->json == R"({"n":3})");
  // Its history proof ties it to that transaction.
  auto history = AnswerQuery(**db, {{"kind", "doc.history"}, {"collection", "c"},
                                    {"id", doc::DerivedDocumentId(receipt->block_height, receipt->index_in_block, 0)}});
  REQUIRE(history.ok());
  const merkle::Checkpoint cp = SignedCheckpoint(**db);
  CHECK(verifier::EvaluateBundle(*history, cp.size, cp.root).ok());
}

}  // namespace
}  // namespace vellum::api
