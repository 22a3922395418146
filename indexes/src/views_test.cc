#include "vellum/indexes/views.h"

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "vellum/indexes/view_store.h"
#include "vellum/merkle/catalog.h"
#include "vellum/testing/temp_dir.h"

namespace vellum::indexes {
namespace {

using merkle::CatalogEntry;
using merkle::Hash;
using merkle::MapKind;
using merkle::MapProof;

// ---- The model: every map as a std::map ----

struct ModelValue {
  std::string value;
  std::int64_t agg = 0;
  bool operator==(const ModelValue&) const = default;
};
struct ModelMap {
  MapSpec spec;
  std::map<std::string, ModelValue> entries;
};
using Model = std::map<MapId, ModelMap>;

Hash Filled(std::uint8_t b) {
  Hash h;
  h.fill(b);
  return h;
}

void ApplyToModel(Model* model, const std::vector<MapChange>& changes) {
  for (const MapChange& c : changes) {
    auto [it, created] = model->try_emplace(c.id);
    if (created) it->second.spec = c.spec;
    for (const MapMutation& m : c.mutations) {
      if (m.op == MapMutation::Op::kPut) {
        it->second.entries[m.key] = {m.value, c.spec.kind == MapKind::kInt64Aggregate ? m.aggregate : 0};
      } else {
        it->second.entries.erase(m.key);
      }
    }
  }
}

// Encodes and decodes the proof on the way, as a client would receive it.
MapProof Wire(const MapProof& p) {
  auto back = MapProof::Decode(p.Encode());
  REQUIRE(back.ok());
  return *back;
}

void RequireVerificationFailure(const Status& s, const std::string& check) {
  INFO(s.ToString());
  REQUIRE(s.code() == StatusCode::kDataLoss);
  REQUIRE(s.verification() != nullptr);
  CHECK(s.verification()->check == check);
}

// A pool of maps of every kind, and random blocks over them.
struct PoolMap {
  MapId id;
  MapSpec spec;
};
std::vector<PoolMap> Pool() {
  return {
      {{"kv", "accounts", ""}, {MapKind::kPlain, merkle::kZeroHash}},
      {{"kv", "accounts", "by-score"}, {MapKind::kPlain, merkle::kZeroHash}},
      {{"doc", "orders", ""}, {MapKind::kPlain, Filled(7)}},
      {{"rel", std::string("t\0x", 3), "pk"}, {MapKind::kPlain, Filled(9)}},
      {{"ts", "cpu", "points"}, {MapKind::kInt64Aggregate, merkle::kZeroHash}},
      {{"ts", "mem", "points"}, {MapKind::kInt64Aggregate, merkle::kZeroHash}},
  };
}

std::vector<std::vector<MapChange>> RandomBlocks(std::uint64_t seed, int blocks) {
  std::mt19937_64 rng(seed);
  const std::vector<PoolMap> pool = Pool();
  std::vector<std::vector<MapChange>> out;
  for (int b = 0; b < blocks; ++b) {
    std::vector<MapChange> block;
    if (rng() % 8 != 0) {  // some blocks are empty
      for (const PoolMap& pm : pool) {
        if (rng() % 3 != 0) continue;
        MapChange c{pm.id, pm.spec, {}};
        const int n = static_cast<int>(rng() % 25);  // 0: create the map (or a no-op)
        for (int i = 0; i < n; ++i) {
          std::string key = "k" + std::to_string(rng() % 80);
          if (rng() % 10 == 0) key += std::string("\0\xff", 2);
          if (rng() % 4 == 0) {
            c.mutations.push_back(MapMutation::Delete(std::move(key)));
          } else {
            c.mutations.push_back(MapMutation::Put(std::move(key), std::string(rng() % 40, 'a' + rng() % 26),
                                                   static_cast<std::int64_t>(rng() % 2001) - 1000));
          }
        }
        block.push_back(std::move(c));
      }
      std::shuffle(block.begin(), block.end(), rng);  // the order of changes in a block does not matter
    }
    out.push_back(std::move(block));
  }
  return out;
}

std::unique_ptr<Views> OpenViews(ViewStore* store, size_t fanout = 4, size_t recent = 1024) {
  ViewsOptions options;
  options.max_page_items = fanout;
  options.recent_states = recent;
  auto views = Views::Open(store, options);
  REQUIRE(views.ok());
  return std::move(views).value();
}

// (b) and (c): the state holds exactly the model, and every proof verifies
// against the state root (catalog) and the entry's map root (data).
void CheckAgainstModel(const Views& views, const StateView& state, const Model& model, std::mt19937_64& rng) {
  REQUIRE(views.CheckState(state).ok());
  REQUIRE(state.maps().size() == model.size());
  for (const PoolMap& pm : Pool()) {
    auto proof = views.ProveCatalogEntry(state, pm.id);
    REQUIRE(proof.ok());
    auto key = CatalogKeyOf(pm.id);
    REQUIRE(key.ok());
    auto entry = merkle::VerifyCatalogEntry(state.state_root(), Wire(*proof), *key);
    REQUIRE(entry.ok());
    auto it = model.find(pm.id);
    if (it == model.end()) {
      CHECK_FALSE(entry->has_value());
      CHECK(state.Find(pm.id) == nullptr);
      continue;
    }
    const ModelMap& mm = it->second;
    REQUIRE(entry->has_value());
    const CatalogEntry& e = **entry;
    CHECK(e.kind == mm.spec.kind);
    CHECK(e.schema_hash == mm.spec.schema_hash);
    CHECK(e.count == mm.entries.size());
    const MapState* ms = state.Find(pm.id);
    REQUIRE(ms != nullptr);
    CHECK(ms->spec == mm.spec);
    CHECK(ms->version.root_hash == e.map_root);

    auto map = views.MapFor(ms->spec);
    REQUIRE(map.ok());
    // The whole content, proven complete against the catalog's map root.
    const merkle::MapRangeQuery all = AuthenticatedMap::FirstN(1000);
    auto range_proof = map->ProveRange(ms->version, all);
    REQUIRE(range_proof.ok());
    auto range = merkle::VerifyMapRange(e.map_root, all, Wire(*range_proof));
    REQUIRE(range.ok());
    REQUIRE(range->entries.size() == mm.entries.size());
    size_t i = 0;
    for (const auto& [k, v] : mm.entries) {
      CHECK(range->entries[i].key == k);
      CHECK(range->entries[i].value == v.value);
      if (mm.spec.kind == MapKind::kInt64Aggregate) CHECK(range->entries[i].aggregate == v.agg);
      ++i;
    }
    // Gets of present and absent keys.
    for (int j = 0; j < 6; ++j) {
      const std::string k = "k" + std::to_string(rng() % 90);
      auto get_proof = map->ProveGet(ms->version, k);
      REQUIRE(get_proof.ok());
      auto got = merkle::VerifyMapGet(e.map_root, k, Wire(*get_proof));
      REQUIRE(got.ok());
      auto mit = mm.entries.find(k);
      REQUIRE(got->entry.has_value() == (mit != mm.entries.end()));
      if (got->entry) CHECK(got->entry->value == mit->second.value);
    }
  }
}

TEST_CASE("views follow a model of many maps over many blocks", "[indexes][views]") {
  const int kBlocks = 150;
  const size_t kRecent = 40;
  const auto blocks = RandomBlocks(0x5eed, kBlocks);
  std::mt19937_64 rng(7);

  auto store = NewMemoryViewStore();
  auto views = OpenViews(store.get(), 4, kRecent);
  REQUIRE_FALSE(views->Current()->height().has_value());
  const Hash empty_root = views->Current()->state_root();
  CHECK(empty_root == merkle::MapRootHash(merkle::kCatalogMapKind, nullptr));

  Model model;
  std::vector<Model> models;  // model after each block
  std::vector<Hash> roots;
  for (int h = 0; h < kBlocks; ++h) {
    const auto height = static_cast<std::uint64_t>(h);
    const Hash before = views->Current()->state_root();
    auto root = views->ApplyBlock(height, blocks[h]);
    REQUIRE(root.ok());
    ApplyToModel(&model, blocks[h]);
    models.push_back(model);
    roots.push_back(*root);
    auto current = views->Current();
    REQUIRE(current->height() == height);
    CHECK(current->state_root() == *root);
    if (blocks[h].empty()) CHECK(*root == before);  // an empty block keeps the root
    auto record = store->LatestRecord();
    REQUIRE(record.ok());
    REQUIRE(record->has_value());
    CHECK((*record)->height == height);  // and still writes a record
    if (h % 10 == 0 || h == kBlocks - 1) CheckAgainstModel(*views, *current, model, rng);
  }

  // (d) the recent states, with their old contents; older ones are out of range.
  for (int h = kBlocks - static_cast<int>(kRecent); h < kBlocks; h += 3) {
    auto at = views->At(static_cast<std::uint64_t>(h));
    REQUIRE(at.ok());
    CHECK((*at)->height() == static_cast<std::uint64_t>(h));
    CHECK((*at)->state_root() == roots[h]);
    CheckAgainstModel(*views, **at, models[h], rng);
  }
  CHECK(views->At(kBlocks - kRecent - 1).status().code() == StatusCode::kOutOfRange);
  CHECK(views->At(0).status().code() == StatusCode::kOutOfRange);
  CHECK(views->At(kBlocks).status().code() == StatusCode::kOutOfRange);

  // (a) RebuildViews: the same blocks into fresh views give the same roots.
  auto store2 = NewMemoryViewStore();
  auto replay = OpenViews(store2.get(), 4, kRecent);
  for (int h = 0; h < kBlocks; ++h) {
    auto root = replay->ApplyBlock(static_cast<std::uint64_t>(h), blocks[h]);
    REQUIRE(root.ok());
    REQUIRE(*root == roots[h]);
  }
  // Deterministic node ids too: the state records are identical.
  CHECK((*store2->LatestRecord())->bytes == (*store->LatestRecord())->bytes);

  // Another fanout is another state.
  auto store3 = NewMemoryViewStore();
  auto other = OpenViews(store3.get(), 8);
  for (int h = 0; h < 20; ++h) REQUIRE(other->ApplyBlock(static_cast<std::uint64_t>(h), blocks[h]).ok());
  CHECK(other->Current()->state_root() != roots[19]);  // maps of more than 4 entries by then

  // Reopening over the same store continues from the newest record.
  auto reopened = OpenViews(store.get(), 4, kRecent);
  REQUIRE(reopened->Current()->height() == static_cast<std::uint64_t>(kBlocks - 1));
  CHECK(reopened->Current()->state_root() == roots.back());
  CheckAgainstModel(*reopened, *reopened->Current(), model, rng);
  const auto more = RandomBlocks(99, 1);
  auto a = reopened->ApplyBlock(kBlocks, more[0]);
  auto b = replay->ApplyBlock(kBlocks, more[0]);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(*a == *b);
}

std::vector<MapChange> SmallBlock(int salt) {
  return {
      {{"kv", "a", ""}, {}, {MapMutation::Put("x", "1" + std::to_string(salt)), MapMutation::Put("y", "2")}},
      {{"ts", "s", ""}, {MapKind::kInt64Aggregate, {}}, {MapMutation::Put("t" + std::to_string(salt), "p", salt)}},
  };
}

TEST_CASE("views: prepare, abort and commit", "[indexes][views]") {
  auto store = NewMemoryViewStore();
  auto views = OpenViews(store.get());
  auto r0 = views->ApplyBlock(0, SmallBlock(0));
  REQUIRE(r0.ok());
  const auto state0 = views->Current();
  const ViewStoreStats stats0 = store->stats();

  // (e) a prepared block is not current; aborting it changes nothing.
  auto prepared = views->PrepareBlock(1, SmallBlock(1));
  REQUIRE(prepared.ok());
  CHECK(*prepared != *r0);
  CHECK(views->Current() == state0);
  CHECK(views->At(1).status().code() == StatusCode::kOutOfRange);
  CHECK(views->PrepareBlock(1, SmallBlock(2)).status().code() == StatusCode::kFailedPrecondition);
  CHECK(views->ApplyBlock(1, SmallBlock(2)).status().code() == StatusCode::kFailedPrecondition);
  CHECK(views->CommitBlock(2).code() == StatusCode::kFailedPrecondition);
  views->AbortBlock(2);  // not the prepared block: ignored
  views->AbortBlock(1);
  CHECK(views->Current() == state0);
  CHECK(views->Current()->state_root() == *r0);
  CHECK(store->stats().pages == stats0.pages);
  CHECK(store->stats().values == stats0.values);
  CHECK(views->CommitBlock(1).code() == StatusCode::kFailedPrecondition);  // nothing prepared any more
  {
    auto map = views->MapFor({});
    REQUIRE(map.ok());
    auto got = map->Get(state0->Find({"kv", "a", ""})->version, "x");
    REQUIRE(got.ok());
    REQUIRE(got->entry.has_value());
    CHECK(got->entry->value == "10");
  }

  // The next block at the same height works; the same changes give the same root.
  auto again = views->PrepareBlock(1, SmallBlock(1));
  REQUIRE(again.ok());
  CHECK(*again == *prepared);
  REQUIRE(views->CommitBlock(1).ok());
  CHECK(views->Current()->state_root() == *prepared);
  CHECK(views->Current()->height() == 1u);
  CHECK((*store->LatestRecord())->height == 1u);

  // Heights must follow.
  CHECK(views->ApplyBlock(1, SmallBlock(3)).status().code() == StatusCode::kFailedPrecondition);
  CHECK(views->ApplyBlock(3, SmallBlock(3)).status().code() == StatusCode::kFailedPrecondition);
  CHECK(views->ApplyBlock(2, SmallBlock(3)).ok());

  // The same blocks without the aborted attempt give the same roots.
  auto store2 = NewMemoryViewStore();
  auto replay = OpenViews(store2.get());
  REQUIRE(*replay->ApplyBlock(0, SmallBlock(0)) == *r0);
  REQUIRE(*replay->ApplyBlock(1, SmallBlock(1)) == *prepared);
  REQUIRE(*replay->ApplyBlock(2, SmallBlock(3)) == views->Current()->state_root());
}

TEST_CASE("views refuse bad changes and leave the state untouched", "[indexes][views]") {
  auto store = NewMemoryViewStore();
  auto views = OpenViews(store.get());
  REQUIRE(views->ApplyBlock(0, SmallBlock(0)).ok());
  const auto state0 = views->Current();
  const ViewStoreStats stats0 = store->stats();

  // Each bad block also carries a good change (sorted before the bad one) that
  // must not be applied either.
  auto with_good = [](MapChange bad) {
    std::vector<MapChange> block = {{{"aa", "first", ""}, {}, {MapMutation::Put("k", "v")}}};
    block.push_back(std::move(bad));
    return block;
  };
  struct Case {
    std::string what;
    std::vector<MapChange> block;
    StatusCode code;
  };
  std::vector<Case> cases = {
      {"other kind", with_good({{"kv", "a", ""}, {MapKind::kInt64Aggregate, {}}, {MapMutation::Put("z", "1")}}),
       StatusCode::kFailedPrecondition},
      {"other schema", with_good({{"kv", "a", ""}, {MapKind::kPlain, Filled(1)}, {}}), StatusCode::kFailedPrecondition},
      {"oversized key", with_good({{"kv", "a", ""}, {}, {MapMutation::Put(std::string(4097, 'k'), "v")}}),
       StatusCode::kInvalidArgument},
      {"oversized delete key", with_good({{"kv", "b", ""}, {}, {MapMutation::Delete(std::string(4097, 'k'))}}),
       StatusCode::kInvalidArgument},
      {"oversized value",
       with_good({{"kv", "a", ""}, {}, {MapMutation::Put("k", std::string(merkle::kMaxMapValueSize + 1, 'v'))}}),
       StatusCode::kInvalidArgument},
      {"unknown kind", with_good({{"kv", "new", ""}, {static_cast<MapKind>(7), {}}, {}}), StatusCode::kInvalidArgument},
      {"unknown op", with_good({{"kv", "a", ""}, {}, {{static_cast<MapMutation::Op>(9), "k", "v", 0}}}),
       StatusCode::kInvalidArgument},
      {"oversized catalog key", with_good({{"kv", std::string(4096, 'n'), ""}, {}, {}}), StatusCode::kInvalidArgument},
      {"map twice", with_good({{"aa", "first", ""}, {}, {MapMutation::Put("k2", "v")}}), StatusCode::kInvalidArgument},
  };
  for (Case& c : cases) {
    INFO(c.what);
    auto r = views->ApplyBlock(1, std::move(c.block));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == c.code);
    CHECK(views->Current() == state0);
    CHECK(store->stats().pages == stats0.pages);
    CHECK(store->stats().values == stats0.values);
    CHECK((*store->LatestRecord())->height == 0u);
  }
  // Nothing is left prepared: the next good block applies.
  auto ok = views->ApplyBlock(1, with_good({{"kv", "a", ""}, {}, {MapMutation::Delete("x")}}));
  REQUIRE(ok.ok());
  CHECK(views->Current()->Find({"aa", "first", ""}) != nullptr);
  CHECK(views->Current()->Find({"kv", "a", ""})->version.count() == 1u);
  REQUIRE(views->CheckState(*views->Current()).ok());
}

TEST_CASE("views: catalog proofs fail typed when misused", "[indexes][views]") {
  auto store = NewMemoryViewStore();
  auto views = OpenViews(store.get());
  const auto blocks = RandomBlocks(3, 6);
  for (int h = 0; h < 6; ++h) REQUIRE(views->ApplyBlock(static_cast<std::uint64_t>(h), blocks[h]).ok());
  // Make sure the two states differ in the map we look at.
  const MapId id{"kv", "accounts", ""};
  REQUIRE(views->ApplyBlock(6, {{id, {}, {MapMutation::Put("fresh", "value")}}}).ok());
  auto s6 = views->Current();
  auto s5 = views->At(5);
  REQUIRE(s5.ok());
  REQUIRE((*s5)->state_root() != s6->state_root());
  const std::string key = *CatalogKeyOf(id);

  auto proof = views->ProveCatalogEntry(*s6, id);
  REQUIRE(proof.ok());
  const MapProof good = Wire(*proof);
  auto entry = merkle::VerifyCatalogEntry(s6->state_root(), good, key);
  REQUIRE(entry.ok());
  REQUIRE(entry->has_value());
  CHECK(**entry == CatalogEntryOf(*s6->Find(id)));

  // Against another block's state root.
  RequireVerificationFailure(merkle::VerifyCatalogEntry((*s5)->state_root(), good, key).status(), "map.root");
  // An altered entry: the old map root, another count.
  for (int field = 0; field < 2; ++field) {
    MapProof p = good;
    for (merkle::MapProofNode& n : p.nodes) {
      if (n.type != merkle::MapProofNode::Type::kEntryWithValue) continue;
      CatalogEntry e = *merkle::DecodeCatalogEntry(n.value);
      if (field == 0) e.map_root = (*s5)->Find(id)->version.root_hash;
      if (field == 1) e.count -= 1;
      n.value = merkle::EncodeCatalogEntry(e);
    }
    RequireVerificationFailure(merkle::VerifyCatalogEntry(s6->state_root(), p, key).status(), "map.root");
  }
  // The proof of one map used for another map's key.
  for (const PoolMap& pm : Pool()) {
    if (pm.id == id) continue;
    auto s = merkle::VerifyCatalogEntry(s6->state_root(), good, *CatalogKeyOf(pm.id));
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == StatusCode::kDataLoss);
  }
  // An absent map is proven absent; that proof does not show a present map.
  const MapId missing{"kv", "missing", ""};
  auto absent = views->ProveCatalogEntry(*s6, missing);
  REQUIRE(absent.ok());
  auto none = merkle::VerifyCatalogEntry(s6->state_root(), Wire(*absent), *CatalogKeyOf(missing));
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  // The map's data proven against the old map root fails.
  auto map = views->MapFor({});
  REQUIRE(map.ok());
  auto get = map->ProveGet(s6->Find(id)->version, "fresh");
  REQUIRE(get.ok());
  REQUIRE(merkle::VerifyMapGet((**entry).map_root, "fresh", Wire(*get)).ok());
  RequireVerificationFailure(
      merkle::VerifyMapGet((*s5)->Find(id)->version.root_hash, "fresh", Wire(*get)).status(), "map.root");
}

TEST_CASE("views: the state record round-trips and is strict", "[indexes][views]") {
  auto store = NewMemoryViewStore();
  auto views = OpenViews(store.get());
  const auto blocks = RandomBlocks(11, 8);
  for (int h = 0; h < 8; ++h) REQUIRE(views->ApplyBlock(static_cast<std::uint64_t>(h), blocks[h]).ok());
  const auto state = views->Current();
  REQUIRE(state->maps().size() >= 3);
  const std::string bytes = EncodeStateRecord(*state, 4);
  CHECK((*store->LatestRecord())->bytes == bytes);

  auto back = DecodeStateRecord(bytes);
  REQUIRE(back.ok());
  CHECK(back->max_page_items == 4u);
  CHECK(back->state->height() == state->height());
  CHECK(back->state->state_root() == state->state_root());
  CHECK(back->state->catalog().root == state->catalog().root);
  REQUIRE(back->state->maps().size() == state->maps().size());
  for (const auto& [id, ms] : state->maps()) {
    const MapState* other = back->state->Find(id);
    REQUIRE(other != nullptr);
    CHECK(other->spec == ms.spec);
    CHECK(other->version.root == ms.version.root);
    CHECK(other->version.digest == ms.version.digest);
    CHECK(other->version.root_hash == ms.version.root_hash);
  }
  CHECK(EncodeStateRecord(*back->state, 4) == bytes);

  // Every truncation, a trailing byte, an unknown version or fanout.
  for (size_t n = 0; n < bytes.size(); ++n) {
    INFO(n);
    CHECK(DecodeStateRecord(bytes.substr(0, n)).status().code() == StatusCode::kInvalidArgument);
  }
  CHECK(DecodeStateRecord(bytes + '\0').status().code() == StatusCode::kInvalidArgument);
  std::string bad = bytes;
  bad[0] = 2;
  CHECK(DecodeStateRecord(bad).status().code() == StatusCode::kInvalidArgument);
  bad = bytes;
  bad[10] = 5;  // max_page_items 5: odd
  CHECK(DecodeStateRecord(bad).status().code() == StatusCode::kInvalidArgument);

  // Reopening with another fanout is refused; a corrupt record is data loss.
  ViewsOptions other;
  other.max_page_items = 8;
  CHECK(Views::Open(store.get(), other).status().code() == StatusCode::kFailedPrecondition);
  store->Commit(8, bytes, {});  // the record of block 7 stored as block 8
  CHECK(Views::Open(store.get(), {1024, 4}).status().code() == StatusCode::kDataLoss);
  store->Commit(9, "junk", {});
  CHECK(Views::Open(store.get(), {1024, 4}).status().code() == StatusCode::kDataLoss);
  CHECK(Views::Open(store.get(), {0, 4}).status().code() == StatusCode::kInvalidArgument);
  CHECK(Views::Open(nullptr, {}).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("views over LMDB reopen at the flushed state", "[indexes][views]") {
  testing::TempDir dir;
  const auto blocks = RandomBlocks(21, 30);
  std::vector<Hash> roots;
  {
    LmdbViewStoreOptions options;
    options.flush_every_blocks = 0;
    auto store = OpenLmdbViewStore(dir.path(), options);
    REQUIRE(store.ok());
    auto views = OpenViews(store->get());
    for (int h = 0; h < 30; ++h) {
      auto root = views->ApplyBlock(static_cast<std::uint64_t>(h), blocks[h]);
      REQUIRE(root.ok());
      roots.push_back(*root);
    }
    REQUIRE((*store)->Flush().ok());
  }
  auto store = OpenLmdbViewStore(dir.path(), {});
  REQUIRE(store.ok());
  auto views = OpenViews(store->get());
  REQUIRE(views->Current()->height() == 29u);
  CHECK(views->Current()->state_root() == roots.back());
  REQUIRE(views->CheckState(*views->Current()).ok());
  Model model;
  for (const auto& b : blocks) ApplyToModel(&model, b);
  std::mt19937_64 rng(1);
  CheckAgainstModel(*views, *views->Current(), model, rng);
}

TEST_CASE("views: readers see consistent states while blocks are applied", "[indexes][views]") {
  auto store = NewMemoryViewStore();
  auto views = OpenViews(store.get(), 4, 8);
  const auto blocks = RandomBlocks(5, 80);
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (!done.load() || reads.load() == 0) {
      auto state = views->Current();
      for (const auto& [id, ms] : state->maps()) {
        auto proof = views->ProveCatalogEntry(*state, id);
        auto key = CatalogKeyOf(id);
        if (!proof.ok() || !key.ok()) {
          ++failures;
          continue;
        }
        auto entry = merkle::VerifyCatalogEntry(state->state_root(), *proof, *key);
        if (!entry.ok() || !entry->has_value() || (**entry).map_root != ms.version.root_hash) ++failures;
        auto map = views->MapFor(ms.spec);
        auto summary = map->Summary(ms.version, "", std::nullopt);
        if (!summary.ok() || summary->count != ms.version.count()) ++failures;
      }
      ++reads;
    }
  });
  for (int h = 0; h < 80; ++h) REQUIRE(views->ApplyBlock(static_cast<std::uint64_t>(h), blocks[h]).ok());
  done = true;
  reader.join();
  CHECK(failures.load() == 0);
  CHECK(reads.load() > 0);
}


TEST_CASE("views over LMDB: readers holding older states survive flushes that drop their pages",
          "[indexes][views]") {
  testing::TempDir dir;
  LmdbViewStoreOptions options;
  options.flush_every_blocks = 2;  // a flush, dropping superseded pages, every other block
  options.page_cache_entries = 32;  // most flushed pages are read back from LMDB
  auto store = OpenLmdbViewStore(dir.path(), options);
  REQUIRE(store.ok());
  auto views = OpenViews(store->get(), 4, 4);
  const auto blocks = RandomBlocks(17, 120);
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<int> reads{0};
  auto read = [&](std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    while (!done.load() || reads.load() < 4) {
      // The newest state, or one of the window's older ones; held for a
      // while, across flushes.
      std::shared_ptr<const StateView> state = views->Current();
      if (state->height().has_value() && *state->height() > 0 && rng() % 2 == 0) {
        auto older = views->At(*state->height() - rng() % 4);
        if (older.ok()) state = *older;
      }
      for (int pass = 0; pass < 3; ++pass) {
        for (const auto& [id, ms] : state->maps()) {
          auto map = views->MapFor(ms.spec);
          const merkle::MapRangeQuery all{"", std::nullopt, 1000, false};
          auto range = map->Range(ms.version, all);
          auto proof = map->ProveRange(ms.version, all);
          if (!range.ok() || !proof.ok() || range->entries.size() != ms.version.count()) {
            ++failures;
            continue;
          }
          auto verified = merkle::VerifyMapRange(ms.version.root_hash, all, Wire(*proof));
          if (!verified.ok() || verified->entries.size() != range->entries.size()) ++failures;
        }
        std::this_thread::yield();
      }
      ++reads;
    }
  };
  std::thread r1(read, 1);
  std::thread r2(read, 2);
  for (int h = 0; h < 120; ++h) {
    REQUIRE(views->ApplyBlock(static_cast<std::uint64_t>(h), blocks[h]).ok());
    // The background flusher may merge requests when it falls behind; these
    // waits make sure flushes happen while the readers run, however slow.
    if (h % 10 == 9) REQUIRE((*store)->Flush().ok());
  }
  done = true;
  r1.join();
  r2.join();
  CHECK(failures.load() == 0);
  CHECK(reads.load() >= 4);
  REQUIRE((*store)->Flush().ok());
  const ViewStoreStats stats = (*store)->stats();
  CHECK(stats.flushes >= 12);
  CHECK(stats.dropped_pages > 0);
  // The newest state is whole once the readers are gone.
  Model model;
  for (const auto& b : blocks) ApplyToModel(&model, b);
  std::mt19937_64 rng(3);
  CheckAgainstModel(*views, *views->Current(), model, rng);
}

// Blocks prepared ahead (the ledger's pipeline): a random schedule of
// prepares (at most `depth` ahead), commits of the oldest and aborts of any
// prepared block must leave exactly the state of the committed blocks applied
// one by one, with the store back at the right mark after every abort.
void RunPipelineSchedule(ViewStore* store, std::uint64_t seed) {
  auto views = OpenViews(store, 4, 8);
  const auto blocks = RandomBlocks(seed, 200);
  std::mt19937_64 rng(seed);
  size_t next_block = 0;           // the next of `blocks` to prepare
  std::vector<size_t> committed;   // indexes into `blocks`, in height order
  std::vector<size_t> in_flight;   // prepared, ascending heights
  std::vector<std::uint64_t> pages_after;  // store pages after each in-flight block
  const std::uint64_t pages_before_all = store->stats().pages;
  std::uint64_t pages_at_commit = pages_before_all;
  int aborts = 0;
  while (committed.size() < 120 && next_block < blocks.size()) {
    const auto roll = rng() % 10;
    if (in_flight.size() < 3 && roll < 5) {
      const std::uint64_t height = committed.size() + in_flight.size();
      auto root = views->PrepareBlock(height, blocks[next_block]);
      REQUIRE(root.ok());
      CHECK(views->Tip()->state_root() == *root);
      in_flight.push_back(next_block++);
      pages_after.push_back(store->stats().pages);
    } else if (!in_flight.empty() && roll < 9) {
      CHECK(views->CommitBlock(committed.size() + 1).code() == StatusCode::kFailedPrecondition);
      REQUIRE(views->CommitBlock(committed.size()).ok());
      committed.push_back(in_flight.front());
      in_flight.erase(in_flight.begin());
      pages_at_commit = pages_after.front();
      pages_after.erase(pages_after.begin());
      CHECK(*views->Current()->height() + 1 == committed.size());
      // A flush now and then, while later blocks are prepared past the mark.
      if (committed.size() % 4 == 0) REQUIRE(store->Flush().ok());
    } else if (!in_flight.empty()) {
      // Abort one prepared block: it and every block after it are gone.
      const size_t k = rng() % in_flight.size();
      views->AbortBlock(committed.size() + k);
      in_flight.resize(k);
      pages_after.resize(k);
      ++aborts;
      CHECK(store->stats().pages == (k == 0 ? pages_at_commit : pages_after.back()));
      CHECK(views->Tip()->next_height() == committed.size() + k);
    }
  }
  CHECK(aborts > 5);
  // Nothing prepared is visible: Current() is the last committed block.
  const auto current = views->Current();
  REQUIRE(current->height().has_value());
  CHECK(*current->height() + 1 == committed.size());

  auto fresh = NewMemoryViewStore();
  auto replay = OpenViews(fresh.get(), 4, 8);
  Model model;
  for (size_t h = 0; h < committed.size(); ++h) {
    REQUIRE(replay->ApplyBlock(h, blocks[committed[h]]).ok());
    ApplyToModel(&model, blocks[committed[h]]);
  }
  CHECK(replay->Current()->state_root() == current->state_root());
  std::mt19937_64 check_rng(seed + 1);
  CheckAgainstModel(*views, *current, model, check_rng);
}

TEST_CASE("views: blocks prepared ahead commit in order and abort with the blocks after them",
          "[indexes][views]") {
  SECTION("memory store") {
    auto store = NewMemoryViewStore();
    RunPipelineSchedule(store.get(), 41);
  }
  SECTION("LMDB store, flushing all the while") {
    testing::TempDir dir;
    LmdbViewStoreOptions options;
    options.flush_every_blocks = 3;
    options.page_cache_entries = 16;
    Hash root;
    {
      auto store = OpenLmdbViewStore(dir.path(), options);
      REQUIRE(store.ok());
      RunPipelineSchedule(store->get(), 42);
      REQUIRE((*store)->Flush().ok());
      CHECK((*store)->stats().flushes >= 30);
      auto views = OpenViews(store->get(), 4, 8);
      root = views->Current()->state_root();
    }
    // Reopened, the flushed state is the last committed block, whole.
    auto store = OpenLmdbViewStore(dir.path(), options);
    REQUIRE(store.ok());
    auto views = OpenViews(store->get(), 4, 8);
    CHECK(views->Current()->state_root() == root);
    REQUIRE(views->CheckState(*views->Current()).ok());
  }
}

// A store whose page puts start failing on request.
class FailingViewStore final : public ViewStore {
  class Nodes final : public NodeStore {
   public:
    explicit Nodes(FailingViewStore* s) : s_(s) {}
    Result<NodeId> Put(std::shared_ptr<const MapNode> node) override {
      if (s_->fail_puts) return Unavailable("injected page write failure");
      return s_->base_->nodes().Put(std::move(node));
    }
    Result<std::shared_ptr<const MapNode>> Get(NodeId id) const override { return s_->base_->nodes().Get(id); }

   private:
    FailingViewStore* s_;
  };

 public:
  FailingViewStore() : base_(NewMemoryViewStore()), nodes_(this) {}
  NodeStore& nodes() override { return nodes_; }
  ValueStore& values() override { return base_->values(); }
  PutMark Mark() const override { return base_->Mark(); }
  std::shared_ptr<const void> CommitThrough(PutMark through, std::uint64_t height, std::string record,
                                            std::vector<NodeId> roots) override {
    return base_->CommitThrough(through, height, std::move(record), std::move(roots));
  }
  void RollbackTo(PutMark to) override { base_->RollbackTo(to); }
  Status Flush() override { return base_->Flush(); }
  Result<std::optional<StateRecord>> LatestRecord() const override { return base_->LatestRecord(); }
  Result<std::optional<StateRecord>> DurableRecordAtOrBefore(std::uint64_t height) const override {
    return base_->DurableRecordAtOrBefore(height);
  }
  ViewStoreStats stats() const override { return base_->stats(); }

  bool fail_puts = false;

 private:
  std::unique_ptr<ViewStore> base_;
  Nodes nodes_;
};

TEST_CASE("views: a store error preparing a block ahead drops only that block's pages", "[indexes][views]") {
  FailingViewStore store;
  auto views = OpenViews(&store);
  REQUIRE(views->ApplyBlock(0, SmallBlock(0)).ok());
  auto r1 = views->PrepareBlock(1, SmallBlock(1));
  REQUIRE(r1.ok());
  const ViewStoreStats after1 = store.stats();
  store.fail_puts = true;
  auto r2 = views->PrepareBlock(2, SmallBlock(2));
  CHECK(r2.status().code() == StatusCode::kUnavailable);
  store.fail_puts = false;
  // Block 1 is still prepared, with all its pages and values.
  CHECK(store.stats().pages == after1.pages);
  CHECK(store.stats().values == after1.values);
  CHECK(views->Tip()->state_root() == *r1);
  REQUIRE(views->CommitBlock(1).ok());
  REQUIRE(views->ApplyBlock(2, SmallBlock(2)).ok());
  REQUIRE(views->CheckState(*views->Current()).ok());

  auto fresh = NewMemoryViewStore();
  auto replay = OpenViews(fresh.get());
  for (int h = 0; h < 3; ++h) REQUIRE(replay->ApplyBlock(static_cast<std::uint64_t>(h), SmallBlock(h)).ok());
  CHECK(replay->Current()->state_root() == views->Current()->state_root());
}

}  // namespace
}  // namespace vellum::indexes
