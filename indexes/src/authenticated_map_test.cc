#include "vellum/indexes/authenticated_map.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "vellum/merkle/hasher.h"

namespace vellum::indexes {
namespace {

using merkle::MapEntry;
using merkle::MapKind;
using merkle::MapProof;
using merkle::MapProofNode;
using merkle::MapRangeQuery;

struct ModelValue {
  std::string value;
  std::int64_t agg = 0;
};
using Model = std::map<std::string, ModelValue>;

struct Fixture {
  InMemoryNodeStore nodes;
  InMemoryValueStore values;
  AuthenticatedMap map;

  explicit Fixture(MapKind kind, size_t fanout = kDefaultMaxPageItems, unsigned build_threads = 2)
      : map(*AuthenticatedMap::Create({kind, fanout, &nodes, &values, build_threads})) {}
};

// Encodes and decodes the proof on the way, as a client would receive it.
MapProof Wire(const MapProof& p) {
  auto back = MapProof::Decode(p.Encode());
  REQUIRE(back.ok());
  return *back;
}

std::vector<std::pair<std::string, ModelValue>> ModelRange(const Model& m, const MapRangeQuery& q) {
  std::vector<std::pair<std::string, ModelValue>> out;
  auto in = [&](const std::string& k) { return k >= q.lo && (!q.hi || k < *q.hi); };
  if (!q.reverse) {
    for (auto it = m.lower_bound(q.lo); it != m.end() && in(it->first); ++it) out.emplace_back(*it);
  } else {
    for (auto it = m.rbegin(); it != m.rend(); ++it) {
      if (in(it->first)) out.emplace_back(*it);
    }
  }
  return out;
}

std::uint64_t RankOf(const Model& m, const std::string& k) {
  return static_cast<std::uint64_t>(std::distance(m.begin(), m.lower_bound(k)));
}

void CheckEntry(const MapEntry& e, const Model& m, bool agg_kind) {
  auto it = m.find(e.key);
  REQUIRE(it != m.end());
  CHECK(e.value == it->second.value);
  CHECK(e.value_hash == merkle::MapValueHash(it->second.value));
  CHECK(e.aggregate == (agg_kind ? it->second.agg : 0));
  CHECK(e.rank == RankOf(m, e.key));
}

// Every read of `v` agrees with the model and its proof verifies to the same answer.
class Checker {
 public:
  Checker(const AuthenticatedMap& map, std::mt19937& rng) : map_(map), rng_(rng) {}

  void Get(const MapVersion& v, const Model& m, const std::string& key) {
    auto read = map_.Get(v, key);
    REQUIRE(read.ok());
    auto it = m.find(key);
    REQUIRE(read->entry.has_value() == (it != m.end()));
    if (read->entry) CheckEntry(*read->entry, m, agg());
    CHECK(read->total == m.size());
    auto proof = map_.ProveGet(v, key);
    REQUIRE(proof.ok());
    auto verified = merkle::VerifyMapGet(v.root_hash, key, Wire(*proof));
    INFO(verified.status().ToString());
    REQUIRE(verified.ok());
    CHECK(verified->entry == read->entry);
    CHECK(verified->total == read->total);
  }

  void Range(const MapVersion& v, const Model& m, const MapRangeQuery& q) {
    auto read = map_.Range(v, q);
    REQUIRE(read.ok());
    const auto expect = ModelRange(m, q);
    const size_t n = std::min<std::uint64_t>(q.limit, expect.size());
    REQUIRE(read->entries.size() == n);
    for (size_t i = 0; i < n; ++i) {
      CHECK(read->entries[i].key == expect[i].first);
      CheckEntry(read->entries[i], m, agg());
    }
    CHECK(read->has_more == (expect.size() > n));
    if (read->has_more) CHECK(read->next_key == expect[n].first);
    auto proof = map_.ProveRange(v, q);
    REQUIRE(proof.ok());
    auto verified = merkle::VerifyMapRange(v.root_hash, q, Wire(*proof));
    INFO(verified.status().ToString());
    REQUIRE(verified.ok());
    CHECK(verified->entries == read->entries);
    CHECK(verified->has_more == read->has_more);
    CHECK(verified->next_key == read->next_key);
  }

  void Summary(const MapVersion& v, const Model& m, const std::string& lo, const std::optional<std::string>& hi) {
    auto read = map_.Summary(v, lo, hi);
    REQUIRE(read.ok());
    MapRangeQuery q{lo, hi};
    const auto expect = ModelRange(m, q);
    CHECK(read->count == expect.size());
    CHECK(read->first_rank == RankOf(m, lo));
    merkle::MapAggregate agg_expect;
    if (agg()) {
      for (const auto& [k, val] : expect) agg_expect.Add(merkle::MapAggregate::Of(val.agg));
    }
    CHECK(read->aggregate == agg_expect);
    auto proof = map_.ProveSummary(v, lo, hi);
    REQUIRE(proof.ok());
    auto verified = merkle::VerifyMapSummary(v.root_hash, lo, hi, Wire(*proof));
    INFO(verified.status().ToString());
    REQUIRE(verified.ok());
    CHECK(verified->count == read->count);
    CHECK(verified->first_rank == read->first_rank);
    CHECK(verified->aggregate == read->aggregate);
  }

  void Rank(const MapVersion& v, const Model& m, std::uint64_t rank) {
    auto read = map_.AtRank(v, rank);
    REQUIRE(read.ok());
    REQUIRE(read->entry.has_value() == (rank < m.size()));
    if (read->entry) {
      CHECK(read->entry->key == std::next(m.begin(), static_cast<std::ptrdiff_t>(rank))->first);
      CheckEntry(*read->entry, m, agg());
    }
    auto proof = map_.ProveRank(v, rank);
    REQUIRE(proof.ok());
    auto verified = merkle::VerifyMapRank(v.root_hash, rank, Wire(*proof));
    REQUIRE(verified.ok());
    CHECK(verified->entry == read->entry);
    CHECK(verified->total == m.size());
  }

  // A random mix of every read kind.
  void Random(const MapVersion& v, const Model& m, const std::function<std::string()>& key) {
    std::string existing = key();
    if (!m.empty()) {
      existing = std::next(m.begin(), static_cast<std::ptrdiff_t>(rng_() % m.size()))->first;
    }
    Get(v, m, existing);
    Get(v, m, key());
    std::string a = key();
    std::string b = key();
    if (b < a) std::swap(a, b);
    const std::uint64_t limit = rng_() % 3 == 0 ? std::numeric_limits<std::uint64_t>::max() : rng_() % 12;
    const bool reverse = rng_() % 2 == 0;
    Range(v, m, {a, b, limit, reverse});
    Range(v, m, {a, std::nullopt, limit, reverse});
    Range(v, m, {b, a, limit, reverse});  // empty (or inverted) range
    Range(v, m, AuthenticatedMap::Prefix(a.substr(0, rng_() % 3), limit, reverse));
    Range(v, m, AuthenticatedMap::FirstN(rng_() % 5));
    Range(v, m, AuthenticatedMap::LastN(rng_() % 5));
    Summary(v, m, a, b);
    Summary(v, m, a, std::nullopt);
    Summary(v, m, "", std::nullopt);
    Rank(v, m, m.empty() ? 0 : rng_() % (m.size() + 1));
  }

 private:
  bool agg() const { return map_.kind() == MapKind::kInt64Aggregate; }
  const AuthenticatedMap& map_;
  std::mt19937& rng_;
};

// Keys over a small alphabet with shared prefixes, so that batches update,
// delete and insert next to each other.
std::function<std::string()> KeyGen(std::mt19937& rng) {
  return [&rng] {
    std::string k;
    const int len = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < len; ++i) k.push_back("abcd\x00\xff"[rng() % 6]);
    return k;
  };
}

struct History {
  std::vector<MapVersion> versions;
  std::vector<Model> models;
  std::vector<std::vector<MapMutation>> batches;
};

History RandomHistory(Fixture& f, std::mt19937& rng, int batches, int max_batch, bool check_each) {
  History h;
  auto key = KeyGen(rng);
  MapVersion v = f.map.Empty();
  Model m;
  h.versions.push_back(v);
  h.models.push_back(m);
  Checker checker(f.map, rng);
  for (int b = 0; b < batches; ++b) {
    std::vector<MapMutation> batch;
    const int n = 1 + static_cast<int>(rng() % static_cast<unsigned>(max_batch));
    // Deletes are rarer than puts so the map grows, then churns.
    for (int i = 0; i < n; ++i) {
      std::string k = key();
      if (rng() % 4 == 0) {
        batch.push_back(MapMutation::Delete(k));
        m.erase(k);
      } else {
        std::string val = "v" + std::to_string(rng() % 1000);
        const auto agg = static_cast<std::int64_t>(rng() % 2001) - 1000;
        batch.push_back(MapMutation::Put(k, val, agg));
        m[k] = {val, agg};
      }
    }
    auto next = f.map.Apply(v, batch);
    REQUIRE(next.ok());
    v = *next;
    REQUIRE(v.count() == m.size());
    if (check_each) {
      auto inv = f.map.CheckInvariants(v);
      INFO(inv.ToString());
      REQUIRE(inv.ok());
      checker.Random(v, m, key);
    }
    h.versions.push_back(v);
    h.models.push_back(m);
    h.batches.push_back(std::move(batch));
  }
  return h;
}

TEST_CASE("authenticated map agrees with std::map and every proof verifies", "[indexes]") {
  for (MapKind kind : {MapKind::kPlain, MapKind::kInt64Aggregate}) {
    for (size_t fanout : {4u, 8u, 32u}) {
      INFO("kind " << static_cast<int>(kind) << " fanout " << fanout);
      std::mt19937 rng(static_cast<std::uint32_t>(fanout * 7 + static_cast<int>(kind)));
      Fixture f(kind, fanout);
      const int max_batch = fanout == 4 ? 40 : 300;
      History h = RandomHistory(f, rng, 30, max_batch, true);
      // Old versions stay readable and provable against their own roots.
      Checker checker(f.map, rng);
      auto key = KeyGen(rng);
      for (size_t i = 0; i < h.versions.size(); i += 7) {
        REQUIRE(f.map.CheckInvariants(h.versions[i]).ok());
        checker.Random(h.versions[i], h.models[i], key);
      }
    }
  }
}

// Applies h's batches to a fresh map: each gives h's root hash (and, with
// same_ids, h's root page id). Returns the last version.
MapVersion Replay(Fixture& f, const History& h, bool same_ids = false) {
  MapVersion v = f.map.Empty();
  for (size_t i = 0; i < h.batches.size(); ++i) {
    auto next = f.map.Apply(v, h.batches[i]);
    REQUIRE(next.ok());
    v = *next;
    REQUIRE(v.root_hash == h.versions[i + 1].root_hash);
    if (same_ids) REQUIRE(v.root == h.versions[i + 1].root);
  }
  return v;
}

TEST_CASE("authenticated map: same batches give the same roots, byte for byte", "[indexes]") {
  std::mt19937 rng(99);
  Fixture a(MapKind::kInt64Aggregate, 8);
  History h = RandomHistory(a, rng, 40, 100, false);
  Fixture b(MapKind::kInt64Aggregate, 8);
  const MapVersion v = Replay(b, h);
  // Order inside a batch does not matter except for repeated keys (last wins).
  std::vector<MapMutation> batch = h.batches.back();
  std::stable_sort(batch.begin(), batch.end(), [](const MapMutation& x, const MapMutation& y) { return x.key < y.key; });
  auto sorted = b.map.Apply(h.versions[h.versions.size() - 2], batch);
  REQUIRE(sorted.ok());
  CHECK(sorted->root_hash == h.versions.back().root_hash);
  // An empty or no-op batch keeps the version.
  auto same = b.map.Apply(v, {MapMutation::Delete("no such key, surely")});
  REQUIRE(same.ok());
  CHECK(same->root == v.root);
  // The root commits to the kind.
  Fixture plain(MapKind::kPlain, 8);
  CHECK(plain.map.Empty().root_hash != b.map.Empty().root_hash);
}

TEST_CASE("authenticated map: pages built on two threads are the pages built on one", "[indexes]") {
  // Batches big enough that Apply builds on a second thread (>= 64 new pages);
  // node ids, refs and every stored page must not depend on it.
  for (MapKind kind : {MapKind::kPlain, MapKind::kInt64Aggregate}) {
    for (size_t fanout : {4u, 8u, 32u}) {
      INFO("kind " << static_cast<int>(kind) << " fanout " << fanout);
      std::mt19937 rng(static_cast<std::uint32_t>(fanout + 1000));
      Fixture two(kind, fanout, 2);
      History h = RandomHistory(two, rng, 12, fanout == 32 ? 6000 : 1500, false);
      Fixture one(kind, fanout, 1);
      Replay(one, h, /*same_ids=*/true);
      REQUIRE(one.nodes.size() == two.nodes.size());
      REQUIRE(one.nodes.size() > 64);
      for (NodeId id = 1; id <= one.nodes.size(); ++id) {
        REQUIRE(EncodeMapNode(**one.nodes.Get(id)) == EncodeMapNode(**two.nodes.Get(id)));
      }
      // Values are stored in the same order too (a page's refs would not show a swap).
      REQUIRE(one.values.size() == two.values.size());
      for (ValueRef ref = 1; ref <= one.values.size(); ++ref) REQUIRE(*one.values.Get(ref) == *two.values.Get(ref));
      REQUIRE(two.map.CheckInvariants(h.versions.back()).ok());
    }
  }
  InMemoryNodeStore nodes;
  InMemoryValueStore values;
  CHECK(AuthenticatedMap::Create({MapKind::kPlain, 8, &nodes, &values, 0}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(AuthenticatedMap::Create({MapKind::kPlain, 8, &nodes, &values, 3}).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("authenticated map: merges and shrinking roots after pages were built early", "[indexes]") {
  // On two threads, the pages below each subtree are built right after its
  // descent. A merge at a level above (mass deletes) that takes such a page
  // in, or a root that shrinks onto one, must build it again. The pages must
  // stay those built on one thread, and every version must be sound.
  for (MapKind kind : {MapKind::kPlain, MapKind::kInt64Aggregate}) {
    for (size_t fanout : {4u, 8u, 32u}) {
      for (bool shrink_to_run : {false, true}) {
        INFO("kind " << static_cast<int>(kind) << " fanout " << fanout << " shrink to a run " << shrink_to_run);
        std::mt19937 rng(static_cast<std::uint32_t>(fanout + 2000));
        Fixture two(kind, fanout, 2);
        Fixture one(kind, fanout, 1);
        MapVersion a = two.map.Empty();
        MapVersion b = one.map.Empty();
        Model m;
        auto apply = [&](const std::vector<MapMutation>& batch) {
          auto na = two.map.Apply(a, batch);
          auto nb = one.map.Apply(b, batch);
          REQUIRE(na.ok());
          REQUIRE(nb.ok());
          REQUIRE(na->root_hash == nb->root_hash);
          REQUIRE(na->root == nb->root);
          a = *na;
          b = *nb;
          REQUIRE(a.count() == m.size());
          auto inv = two.map.CheckInvariants(a);
          INFO(inv.ToString());
          REQUIRE(inv.ok());
        };
        const int keys = fanout == 32 ? 40000 : 6000;
        for (int done = 0; done < keys; done += 2000) {
          std::vector<MapMutation> batch;
          for (int i = done; i < done + 2000; ++i) {
            std::string k = "key" + std::to_string(rng());
            const auto agg = static_cast<std::int64_t>(rng() % 2001) - 1000;
            batch.push_back(MapMutation::Put(k, "v", agg));
            m[k] = {"v", agg};
          }
          apply(batch);
        }
        auto delete_all_but = [&](const std::function<bool(size_t)>& keep) {
          std::vector<MapMutation> batch;
          std::vector<std::string> doomed;
          size_t rank = 0;
          for (const auto& [k, v] : m) {
            if (!keep(rank++)) doomed.push_back(k);
          }
          for (const std::string& k : doomed) {
            batch.push_back(MapMutation::Delete(k));
            m.erase(k);
            if (!shrink_to_run && rng() % 50 == 0) {
              batch.push_back(MapMutation::Put(k + "+", "w", 1));
              m[k + "+"] = {"w", 1};
            }
          }
          apply(batch);
        };
        if (shrink_to_run) {
          // All keys go but those of one level-1 page, less its first and
          // last: the root shrinks, level by level, onto that page, which
          // was built early (or inside a page built early) with new
          // children of its own.
          auto page = *two.nodes.Get(a.root);
          std::optional<std::string> hi;
          while (page->level > 1) {
            const size_t i = page->items.size() / 2;
            if (i + 1 < page->items.size()) hi = std::string(page->key(i + 1));
            page = *two.nodes.Get(page->child(i));
          }
          const std::string lo(page->key(0));
          size_t first = 0;
          size_t last = 0;
          size_t rank = 0;
          for (const auto& [k, v] : m) {
            if (k < lo) first = rank + 1;
            if (!hi || k < *hi) last = rank;
            ++rank;
          }
          REQUIRE(last > first + 2);
          delete_all_but([&](size_t r) { return r > first && r < last; });
        } else {
          // Most keys of each stretch go, with a few puts among them, then
          // all but a handful.
          for (unsigned keep_one_in : {2u, 5u, 20u, 1000u}) {
            delete_all_but([&](size_t) { return rng() % keep_one_in == 0; });
          }
        }
        REQUIRE(one.nodes.size() == two.nodes.size());
        for (NodeId id = 1; id <= one.nodes.size(); ++id) {
          REQUIRE(EncodeMapNode(**one.nodes.Get(id)) == EncodeMapNode(**two.nodes.Get(id)));
        }
        REQUIRE(one.values.size() == two.values.size());
      }
    }
  }
}

// Applies batches big enough for the helper thread; true if the roots agree
// with a one-thread map's.
bool ApplyBigBatches(std::uint32_t seed) {
  std::mt19937 rng(seed);
  Fixture two(MapKind::kPlain, 8, 2);
  Fixture one(MapKind::kPlain, 8, 1);
  MapVersion a = two.map.Empty();
  MapVersion b = one.map.Empty();
  for (int round = 0; round < 3; ++round) {
    std::vector<MapMutation> batch;
    for (int i = 0; i < 2000; ++i) batch.push_back(MapMutation::Put("k" + std::to_string(rng()), "v"));
    auto na = two.map.Apply(a, batch);
    auto nb = one.map.Apply(b, batch);
    if (!na.ok() || !nb.ok() || na->root_hash != nb->root_hash || na->root != nb->root) return false;
    a = *na;
    b = *nb;
  }
  return true;
}

TEST_CASE("authenticated map: a forked child builds without the parent's helper thread", "[indexes]") {
  REQUIRE(ApplyBigBatches(1));  // the helper thread now runs in this process
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(60);  // a child waiting for a helper it does not have dies instead of hanging
    ::_exit(ApplyBigBatches(2) ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(ApplyBigBatches(3));
}

TEST_CASE("authenticated map pages round-trip through their storage encoding", "[indexes]") {
  std::mt19937 rng(5);
  Fixture f(MapKind::kInt64Aggregate, 8);
  RandomHistory(f, rng, 20, 100, false);
  for (NodeId id = 1; id <= f.nodes.size(); ++id) {
    auto node = f.nodes.Get(id);
    REQUIRE(node.ok());
    const std::string bytes = EncodeMapNode(**node);
    auto back = DecodeMapNode(bytes);
    REQUIRE(back.ok());
    CHECK(back->digest == (*node)->digest);
    CHECK(back->inner == (*node)->inner);
    CHECK(EncodeMapNode(*back) == bytes);
    CHECK_FALSE(DecodeMapNode(bytes.substr(0, bytes.size() - 1)).ok());
  }
}

TEST_CASE("map pages: one block, grown by Add, copied and moved whole", "[indexes]") {
  // Every page of a random aggregate map, rebuilt item by item with Add from
  // an empty page (the block grows as it goes), reserved before its kind is
  // known, copied and moved: each must stay byte for byte the stored page.
  std::mt19937 rng(6);
  Fixture f(MapKind::kInt64Aggregate, 8);
  RandomHistory(f, rng, 10, 100, false);
  for (NodeId id = 1; id <= f.nodes.size(); ++id) {
    const MapNode& page = **f.nodes.Get(id);
    const std::string bytes = EncodeMapNode(page);
    MapNode grown;
    if (id % 2 == 0) grown.Reserve(2, 3);  // too small, and before the kind is set
    grown.kind = page.kind;
    grown.level = page.level;
    for (size_t i = 0; i < page.items.size(); ++i) grown.Add(page.key(i), page.items[i], page.item_aggregate(i));
    grown.Seal();
    REQUIRE(EncodeMapNode(grown) == bytes);
    REQUIRE(grown.digest == page.digest);
    REQUIRE(grown.inner == page.inner);
    auto copy = std::make_unique<MapNode>(grown);
    MapNode assigned;
    assigned = *copy;
    copy.reset();  // the copies own their bytes
    REQUIRE(EncodeMapNode(assigned) == bytes);
    MapNode moved(std::move(assigned));
    REQUIRE(assigned.items.empty());  // NOLINT(bugprone-use-after-move): moved-from pages are empty
    REQUIRE(assigned.keys.empty());
    REQUIRE(EncodeMapNode(moved) == bytes);
    REQUIRE(moved.inner == page.inner);
  }
}

// Serves the values of an InMemoryValueStore, with the bytes of one ref altered.
class TamperedValueStore final : public ValueStore {
 public:
  Result<ValueRef> Put(std::string_view value) override { return inner_.Put(value); }
  Result<std::string> Get(ValueRef ref) const override {
    VELLUM_ASSIGN_OR_RETURN(std::string v, inner_.Get(ref));
    if (ref == tampered) v += "!";
    return v;
  }
  ValueRef tampered = kNoValue;

 private:
  InMemoryValueStore inner_;
};

TEST_CASE("authenticated map values: append-only refs, checked against the tree on read", "[indexes]") {
  InMemoryNodeStore nodes;
  TamperedValueStore values;
  auto map = AuthenticatedMap::Create({MapKind::kPlain, 4, &nodes, &values});
  REQUIRE(map.ok());
  std::vector<MapMutation> batch;
  for (int i = 0; i < 20; ++i) batch.push_back(MapMutation::Put("k" + std::to_string(10 + i), "v" + std::to_string(i)));
  auto v1 = map->Apply(map->Empty(), batch);
  REQUIRE(v1.ok());
  // Same puts again: no-ops, nothing stored; one changed value: one more ref.
  auto v2 = map->Apply(*v1, batch);
  REQUIRE(v2.ok());
  CHECK(v2->root == v1->root);
  auto v3 = map->Apply(*v2, {MapMutation::Put("k15", "changed"), MapMutation::Delete("k16")});
  REQUIRE(v3.ok());
  // Refs are 1..21 in key order within a batch; pages keep them through their encoding.
  std::vector<ValueRef> refs;
  for (NodeId id = 1; id <= nodes.size(); ++id) {
    auto node = nodes.Get(id);
    REQUIRE(node.ok());
    auto back = DecodeMapNode(EncodeMapNode(**node));
    REQUIRE(back.ok());
    for (size_t i = 0; i < back->items.size(); ++i) {
      CHECK(back->items[i].ref == (*node)->items[i].ref);
      if (back->level == 0) refs.push_back(back->value_ref(i));
    }
  }
  CHECK(*std::max_element(refs.begin(), refs.end()) == 21);
  CHECK(std::find(refs.begin(), refs.end(), kNoValue) == refs.end());
  auto e = map->Get(*v3, "k15");
  REQUIRE(e.ok());
  CHECK(e->entry->value == "changed");
  // A store returning other bytes for a value: every read of it is DataLoss with evidence.
  values.tampered = 21;
  auto expect_loss = [](const Status& s) {
    INFO(s.ToString());
    REQUIRE(s.code() == StatusCode::kDataLoss);
    REQUIRE(s.verification() != nullptr);
    CHECK(s.verification()->check == "map.value_store");
    CHECK(s.verification()->index == 5);
    CHECK(s.verification()->size == 19);
  };
  expect_loss(map->Get(*v3, "k15").status());
  expect_loss(map->AtRank(*v3, 5).status());
  expect_loss(map->Range(*v3, AuthenticatedMap::FirstN(10)).status());
  expect_loss(map->ProveGet(*v3, "k15").status());
  expect_loss(map->ProveRange(*v3, AuthenticatedMap::Prefix("k1", 10)).status());
  CHECK(map->Get(*v3, "k14").ok());
  CHECK(map->Get(*v1, "k15").ok());  // the old version's value is untouched
  CHECK(map->ProveSummary(*v3, "k10", std::nullopt).ok());  // hashes only, no values read
}

// ---- Negative tests ----

void RequireRejected(const Status& s) {
  INFO(s.ToString());
  REQUIRE_FALSE(s.ok());
  if (s.code() == StatusCode::kDataLoss) {
    REQUIRE(s.verification() != nullptr);
    CHECK_FALSE(s.verification()->check.empty());
  } else {
    REQUIRE(s.code() == StatusCode::kInvalidArgument);
  }
}

void RequireVerification(const Status& s) {
  INFO(s.ToString());
  REQUIRE(s.code() == StatusCode::kDataLoss);
  REQUIRE(s.verification() != nullptr);
}

using Verify = std::function<Status(const merkle::Hash& root, const MapProof& p)>;

// Applies every forgery to `proof`; each must be rejected with a typed error.
void Forge(const merkle::Hash& root, const merkle::Hash& other_root, const MapProof& proof, const Verify& verify) {
  REQUIRE(verify(root, proof).ok());
  // Another version's root.
  RequireVerification(verify(other_root, proof));
  const auto& nodes = proof.nodes;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const MapProofNode& n = nodes[i];
    auto mutated = [&](const std::function<void(MapProof&)>& fn) {
      MapProof p = proof;
      fn(p);
      INFO("mutating node " << i << " of type " << static_cast<int>(n.type));
      RequireRejected(verify(root, p));
    };
    switch (n.type) {
      case MapProofNode::Type::kEntryWithValue:
        mutated([&](MapProof& p) { p.nodes[i].value += "x"; });           // change a value
        if (proof.kind == MapKind::kInt64Aggregate) {
          mutated([&](MapProof& p) { p.nodes[i].aggregate ^= 1; });       // change an aggregate
        }
        mutated([&](MapProof& p) { p.nodes[i].key += '\0'; });            // move a key
        mutated([&](MapProof& p) {                                         // drop an entry (pruned in place)
          MapProofNode& x = p.nodes[i];
          x.type = MapProofNode::Type::kPruned;
          x.digest = merkle::MapLeafDigest(p.kind, x.key, merkle::MapValueHash(x.value), x.aggregate);
        });
        mutated([&](MapProof& p) { p.nodes.erase(p.nodes.begin() + static_cast<std::ptrdiff_t>(i)); });
        mutated([&](MapProof& p) {                                         // add an entry next to it
          MapProofNode extra = p.nodes[i];
          extra.key += "+";
          MapProofNode inner;
          inner.type = MapProofNode::Type::kInner;
          p.nodes.insert(p.nodes.begin() + static_cast<std::ptrdiff_t>(i) + 1, extra);
          p.nodes.insert(p.nodes.begin() + static_cast<std::ptrdiff_t>(i), inner);
        });
        break;
      case MapProofNode::Type::kEntry:
        mutated([&](MapProof& p) { p.nodes[i].key = p.nodes[i].key + "\x01"; });  // move a boundary key
        mutated([&](MapProof& p) { p.nodes[i].value_hash[0] ^= 1; });
        break;
      case MapProofNode::Type::kPruned:
        mutated([&](MapProof& p) { p.nodes[i].digest.count += 1; });     // alter a count
        mutated([&](MapProof& p) { p.nodes[i].digest.hash[5] ^= 0x40; });
        if (proof.kind == MapKind::kInt64Aggregate) {
          mutated([&](MapProof& p) { p.nodes[i].digest.aggregate.sum += 1; });
          mutated([&](MapProof& p) { p.nodes[i].digest.aggregate.min -= 1; });
          mutated([&](MapProof& p) { p.nodes[i].digest.aggregate.max += 1; });
        }
        break;
      case MapProofNode::Type::kInner:
        break;
    }
  }
  // Swap the order of two revealed entries.
  std::vector<size_t> entries;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].type == MapProofNode::Type::kEntry || nodes[i].type == MapProofNode::Type::kEntryWithValue) {
      entries.push_back(i);
    }
  }
  for (size_t j = 1; j < entries.size(); ++j) {
    MapProof p = proof;
    std::swap(p.nodes[entries[j - 1]], p.nodes[entries[j]]);
    INFO("swapping entries " << j);
    RequireRejected(verify(root, p));
  }
  // Truncate the encoding anywhere, flip any byte: decode or verification fails.
  const std::string bytes = proof.Encode();
  const size_t step = std::max<size_t>(1, bytes.size() / 97);
  for (size_t len = 0; len < bytes.size(); len += step) {
    REQUIRE(MapProof::Decode(bytes.substr(0, len)).status().code() == StatusCode::kInvalidArgument);
  }
  for (size_t pos = 0; pos < bytes.size(); pos += step) {
    for (std::uint8_t mask : {0x01, 0x80}) {
      std::string bad = bytes;
      bad[pos] = static_cast<char>(bad[pos] ^ mask);
      auto decoded = MapProof::Decode(bad);
      if (!decoded.ok()) {
        REQUIRE(decoded.status().code() == StatusCode::kInvalidArgument);
        continue;
      }
      INFO("flipped byte " << pos);
      RequireRejected(verify(root, *decoded));
    }
  }
}

TEST_CASE("authenticated map proofs reject every forgery", "[indexes]") {
  for (MapKind kind : {MapKind::kPlain, MapKind::kInt64Aggregate}) {
    Fixture f(kind, 4);
    std::vector<MapMutation> batch;
    for (int i = 0; i < 60; ++i) {
      batch.push_back(MapMutation::Put("key" + std::to_string(100 + 3 * i), "value" + std::to_string(i), i * 7 - 100));
    }
    auto v1 = f.map.Apply(f.map.Empty(), batch);
    REQUIRE(v1.ok());
    auto v2 = f.map.Apply(*v1, {MapMutation::Put("key150", "changed", 1)});
    REQUIRE(v2.ok());
    const merkle::Hash root = v1->root_hash;
    const merkle::Hash other = v2->root_hash;

    // get: presence and absence.
    for (std::string key : {"key130", "key131", "a", "z"}) {
      auto p = f.map.ProveGet(*v1, key);
      REQUIRE(p.ok());
      Forge(root, other, *p, [key](const merkle::Hash& r, const MapProof& x) {
        return merkle::VerifyMapGet(r, key, x).status();
      });
      // The same proof does not answer a different key.
      if (key == "key131") RequireRejected(merkle::VerifyMapGet(root, "key140", *p).status());
    }
    // range forward/reverse with and without limits, prefix, first/last n.
    std::vector<MapRangeQuery> queries = {
        {"key120", std::string("key160"), 100, false}, {"key120", std::string("key160"), 4, false},
        {"key120", std::string("key160"), 100, true},  {"key121", std::string("key161"), 3, true},
        AuthenticatedMap::Prefix("key2", 5),           AuthenticatedMap::FirstN(3),
        AuthenticatedMap::LastN(3)};
    for (const MapRangeQuery& q : queries) {
      auto p = f.map.ProveRange(*v1, q);
      REQUIRE(p.ok());
      Forge(root, other, *p, [q](const merkle::Hash& r, const MapProof& x) {
        return merkle::VerifyMapRange(r, q, x).status();
      });
      // Cut short: the proof for limit L does not answer limit L + 1, nor a wider range.
      if (q.limit < 100) {
        MapRangeQuery more = q;
        more.limit = q.limit + 1;
        RequireVerification(merkle::VerifyMapRange(root, more, *p).status());
      }
      MapRangeQuery wider = q;
      wider.lo = "key0";
      // (A reverse scan that stopped at its limit never looked at lo.)
      if (q.lo > wider.lo && !q.reverse) RequireVerification(merkle::VerifyMapRange(root, wider, *p).status());
    }
    // count/aggregate and rank.
    auto sp = f.map.ProveSummary(*v1, "key125", std::string("key190"));
    REQUIRE(sp.ok());
    Forge(root, other, *sp, [](const merkle::Hash& r, const MapProof& x) {
      return merkle::VerifyMapSummary(r, "key125", std::string("key190"), x).status();
    });
    RequireVerification(merkle::VerifyMapSummary(root, "key125", std::string("key200"), *sp).status());
    auto rp = f.map.ProveRank(*v1, 17);
    REQUIRE(rp.ok());
    Forge(root, other, *rp, [](const merkle::Hash& r, const MapProof& x) {
      return merkle::VerifyMapRank(r, 17, x).status();
    });
    RequireVerification(merkle::VerifyMapRank(root, 18, *rp).status());
  }
}

TEST_CASE("authenticated map rejects oversized keys and values", "[indexes]") {
  Fixture f(MapKind::kPlain);
  const MapVersion e = f.map.Empty();
  CHECK(f.map.Apply(e, {MapMutation::Put(std::string(4097, 'k'), "v")}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(f.map.Apply(e, {MapMutation::Put("k", std::string((1 << 20) + 1, 'v'))}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(f.values.size() == 0);
  auto ok = f.map.Apply(e, {MapMutation::Put(std::string(4096, 'k'), std::string(1 << 20, 'v'))});
  REQUIRE(ok.ok());
  auto g = f.map.ProveGet(*ok, std::string(4096, 'k'));
  REQUIRE(g.ok());
  auto bytes = g->Encode();
  auto back = MapProof::Decode(bytes);
  REQUIRE(back.ok());
  REQUIRE(merkle::VerifyMapGet(ok->root_hash, std::string(4096, 'k'), *back)->entry.has_value());
}

// Documented bounds (docs/FORMAT.md, "Bounds") for fanout 32.
constexpr std::uint64_t kFanout = 32;
std::uint64_t MaxHeight(std::uint64_t n) {  // pages on a path: root >= 2 children, others >= 16
  std::uint64_t h = 1;
  std::uint64_t min_entries = 2 * 16;  // fewest entries a tree of height h + 1 can hold
  while (n >= min_entries) {
    ++h;
    min_entries *= 16;
  }
  return h;
}
std::uint64_t ProofBound(std::uint64_t revealed, std::uint64_t height, std::uint64_t key_size,
                         std::uint64_t value_size) {
  const std::uint64_t depth = 5 * height;  // binary levels per page <= log2(32)
  const std::uint64_t per_path = depth * (1 + 1 + 72);  // inner marker + pruned sibling
  return 6 + revealed * (per_path + 1 + 4 + key_size + 32 + 8 + 4 + value_size);
}

TEST_CASE("adversarial keys keep pages and proofs within the documented bounds", "[indexes]") {
  struct Case {
    const char* name;
    std::function<std::string(int)> key;
    int n;
  };
  const std::string shared(4000, 'p');
  const std::vector<Case> cases = {
      {"sequential", [](int i) { char b[16]; std::snprintf(b, sizeof b, "%010d", i); return std::string(b); }, 3000},
      {"reverse", [](int i) { char b[16]; std::snprintf(b, sizeof b, "%010d", 1000000 - i); return std::string(b); },
       3000},
      {"long shared prefix", [&](int i) { return shared + std::to_string(i * 7919 % 1000); }, 1000},
      {"4 KiB keys", [](int i) { std::string k(4096, static_cast<char>('a' + i % 26)); k[100] = static_cast<char>(i % 256); k[200] = static_cast<char>(i / 256); return k; }, 600},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Fixture f(MapKind::kInt64Aggregate);
    MapVersion v = f.map.Empty();
    std::uint64_t max_key = 0;
    for (int start = 0; start < c.n; start += 50) {  // blocks of 50 in the given order
      std::vector<MapMutation> batch;
      for (int i = start; i < std::min(c.n, start + 50); ++i) {
        std::string k = c.key(i);
        max_key = std::max<std::uint64_t>(max_key, k.size());
        batch.push_back(MapMutation::Put(std::move(k), "v", i));
      }
      auto next = f.map.Apply(v, std::move(batch));
      REQUIRE(next.ok());
      v = *next;
    }
    auto shape = f.map.Shape(v);
    REQUIRE(shape.ok());
    CHECK(shape->height <= MaxHeight(v.count()));
    // A page: header 5 + per item (4 + key + 8 + 32 + 8 + 32).
    CHECK(shape->max_page_bytes <= 5 + kFanout * (4 + max_key + 8 + 32 + 8 + 32));
    for (std::uint64_t r = 0; r < v.count(); r += v.count() / 13 + 1) {
      auto item = f.map.AtRank(v, r);
      REQUIRE(item.ok());
      auto gp = f.map.ProveGet(v, item->entry->key);
      REQUIRE(gp.ok());
      CHECK(gp->Encode().size() <= ProofBound(1, shape->height, max_key, 1));
      auto sp = f.map.ProveSummary(v, item->entry->key, std::nullopt);
      REQUIRE(sp.ok());
      CHECK(sp->Encode().size() <= ProofBound(4, shape->height, max_key, 0));
      REQUIRE(merkle::VerifyMapSummary(v.root_hash, item->entry->key, std::nullopt, *sp).ok());
    }
    // Delete most of them again, in order: the tree shrinks and stays balanced.
    std::vector<MapMutation> dels;
    for (int i = 0; i < c.n - 5; ++i) dels.push_back(MapMutation::Delete(c.key(i)));
    auto shrunk = f.map.Apply(v, std::move(dels));
    REQUIRE(shrunk.ok());
    CHECK(shrunk->count() == 5);
    REQUIRE(f.map.CheckInvariants(*shrunk).ok());
    REQUIRE(f.map.CheckInvariants(v).ok());  // the old version is untouched
  }
}

TEST_CASE("authenticated map at 20k keys: small get proofs", "[indexes]") {
  Fixture f(MapKind::kPlain);
  std::mt19937 rng(1);
  MapVersion v = f.map.Empty();
  for (int b = 0; b < 20; ++b) {
    std::vector<MapMutation> batch;
    for (int i = 0; i < 1000; ++i) {
      std::string k(20, '\0');
      for (char& ch : k) ch = static_cast<char>(rng());
      batch.push_back(MapMutation::Put(std::move(k), std::string(100, 'v')));
    }
    auto next = f.map.Apply(v, std::move(batch));
    REQUIRE(next.ok());
    v = *next;
  }
  REQUIRE(f.map.CheckInvariants(v).ok());
  auto item = f.map.AtRank(v, 12345);
  REQUIRE(item.ok());
  auto p = f.map.ProveGet(v, item->entry->key);
  REQUIRE(p.ok());
  const size_t size = p->Encode().size();
  INFO("get proof bytes " << size);
  CHECK(size <= 1500);
  auto absent = f.map.ProveGet(v, item->entry->key + "x");
  REQUIRE(absent.ok());
  CHECK(absent->Encode().size() <= 2 * 1500);
}


// Golden roots: a fixed sequence of batches (puts, no-op puts, updates,
// deletes of present and absent keys, repeated keys, growth then shrinkage)
// must give these exact roots, page encodings and store sizes. The format is
// frozen (docs/FORMAT.md), so any change here is a format break, not a
// refactoring. Only raw mt19937_64 output is used (no std distributions), so
// the sequence is the same on every standard library.
struct GoldenRun {
  std::string root_hex;     // after the last batch
  std::string pages_hex;    // SHA-256 over every stored page's EncodeMapNode, in id order
  std::uint64_t count = 0;  // entries in the last version
  size_t pages = 0;         // pages stored over all versions
  size_t values = 0;        // values stored over all versions
};

GoldenRun RunGolden(MapKind kind, size_t fanout) {
  Fixture f(kind, fanout);
  std::mt19937_64 rng(0x76656c6c756dULL + fanout * 31 + static_cast<std::uint64_t>(kind));
  auto key = [&rng] {
    // ~3,000 distinct keys of 1..12 bytes (shared prefixes, 0x00 and 0xff bytes).
    const std::uint64_t id = rng() % 3000;
    std::string k = "k" + std::to_string(id % 97);
    k.push_back(static_cast<char>(id % 3 == 0 ? 0x00 : id % 3 == 1 ? 0xff : 'x'));
    k += std::to_string(id / 97);
    return k;
  };
  MapVersion v = f.map.Empty();
  for (int b = 0; b < 20; ++b) {
    // Mostly puts while growing, mostly deletes in the last five batches.
    const std::uint64_t delete_per_8 = b < 15 ? 2 : 7;
    std::vector<MapMutation> batch;
    for (int i = 0; i < 500; ++i) {
      std::string k = key();
      if (rng() % 8 < delete_per_8) {
        batch.push_back(MapMutation::Delete(std::move(k)));
      } else {
        // Few distinct values and aggregates, so some puts are no-ops.
        std::string val = "value " + std::to_string(rng() % 3);
        const auto agg = static_cast<std::int64_t>(rng() % 5) - 2;
        batch.push_back(MapMutation::Put(std::move(k), std::move(val), agg));
      }
    }
    auto next = f.map.Apply(v, std::move(batch));
    REQUIRE(next.ok());
    v = *next;
  }
  REQUIRE(f.map.CheckInvariants(v).ok());
  merkle::Sha256 pages;
  for (NodeId id = 1; id <= f.nodes.size(); ++id) {
    auto node = f.nodes.Get(id);
    REQUIRE(node.ok());
    pages.Update(EncodeMapNode(**node));
  }
  return {merkle::HashHex(v.root_hash), merkle::HashHex(pages.Finish()), v.count(), f.nodes.size(),
          f.values.size()};
}

TEST_CASE("authenticated map golden roots: fixed batches give frozen roots and pages", "[indexes]") {
  struct Golden {
    MapKind kind;
    size_t fanout;
    GoldenRun want;
  };
  const Golden cases[] = {
      {MapKind::kPlain, 4,
       {"bd90104b676c7a7ecd41b1896900487928f7962634429bdeeefa0fa560f2f4d3",
        "752c6a7deeb5cfbccb6ecbb4af06f79185eebe2c0a322ba6d72dbc735b5076c2", 1092, 9844, 4633}},
      {MapKind::kPlain, 32,
       {"95d5fbbfbb5f3e6d06545a4b213f4af7699e05e283b93ba9c4c7b9b256a6b829",
        "96310692bc9ff7224665e49bf8d4995ab50a3e35390b80b506e838b908bdb02f", 1125, 1379, 4578}},
      {MapKind::kInt64Aggregate, 4,
       {"5756a22e5da95b8f0b6f2f67567fc0811933c58a052d732c0df6823e170571e7",
        "54e4e06a1e73f39b3e8da69b41b15095d472bef1ddec1dbb37b994c5d9d4f672", 1063, 10207, 5285}},
      {MapKind::kInt64Aggregate, 32,
       {"4e62da6578056ce5d15ad6bf125fea457f97df78789203d9ab15436a38cb76a0",
        "a3319975823e873f536e52b45e05de3c612649c6795374ab16b3a6f1d4985fbf", 1145, 1419, 5260}},
  };
  for (const Golden& c : cases) {
    INFO("kind " << static_cast<int>(c.kind) << " fanout " << c.fanout);
    const GoldenRun got = RunGolden(c.kind, c.fanout);
    UNSCOPED_INFO("got {\"" << got.root_hex << "\", \"" << got.pages_hex << "\", " << got.count << ", " << got.pages
                            << ", " << got.values << "}");
    CHECK(got.root_hex == c.want.root_hex);
    CHECK(got.pages_hex == c.want.pages_hex);
    CHECK(got.count == c.want.count);
    CHECK(got.pages == c.want.pages);
    CHECK(got.values == c.want.values);
  }
}

}  // namespace
}  // namespace vellum::indexes
