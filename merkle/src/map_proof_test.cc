#include "vellum/merkle/map_proof.h"

#include <set>

#include <catch2/catch.hpp>

#include "vellum/base/encoding.h"

namespace vellum::merkle {
namespace {

// A naive reference tree: one balanced binary tree (RFC 9162 split) over all
// entries, no pages. The verifier must accept it: it never depends on shape.
struct E {
  std::string key;
  std::string value;
  std::int64_t agg = 0;
};

MapDigest Build(MapKind kind, std::span<const E> es) {
  if (es.size() == 1) return MapLeafDigest(kind, es[0].key, MapValueHash(es[0].value), es[0].agg);
  const size_t k = MapPageSplit(es.size());
  return MapInnerDigest(kind, Build(kind, es.first(k)), Build(kind, es.subspan(k)));
}

// Reveals ranks in `with_value` (entry with value) and `hash_only`.
void Reveal(MapKind kind, std::span<const E> es, std::uint64_t offset, const std::set<std::uint64_t>& with_value,
            const std::set<std::uint64_t>& hash_only, std::vector<MapProofNode>* out) {
  auto any = [&](const std::set<std::uint64_t>& s) {
    auto it = s.lower_bound(offset);
    return it != s.end() && *it < offset + es.size();
  };
  MapProofNode n;
  if (!any(with_value) && !any(hash_only)) {
    n.type = MapProofNode::Type::kPruned;
    n.digest = Build(kind, es);
    out->push_back(n);
    return;
  }
  if (es.size() == 1) {
    n.key = es[0].key;
    n.aggregate = es[0].agg;
    n.value_hash = MapValueHash(es[0].value);
    if (with_value.count(offset)) {
      n.type = MapProofNode::Type::kEntryWithValue;
      n.value = es[0].value;
    } else {
      n.type = MapProofNode::Type::kEntry;
    }
    out->push_back(n);
    return;
  }
  n.type = MapProofNode::Type::kInner;
  out->push_back(n);
  const size_t k = MapPageSplit(es.size());
  Reveal(kind, es.first(k), offset, with_value, hash_only, out);
  Reveal(kind, es.subspan(k), offset + k, with_value, hash_only, out);
}

std::vector<E> Sample(size_t n) {
  std::vector<E> es;
  for (size_t i = 0; i < n; ++i) {
    es.push_back({"k" + std::to_string(10 + 2 * i), "value-" + std::to_string(i), static_cast<std::int64_t>(i) - 3});
  }
  return es;
}

MapProof ProofOf(MapKind kind, const std::vector<E>& es, std::set<std::uint64_t> with_value,
                 std::set<std::uint64_t> hash_only) {
  MapProof p;
  p.kind = kind;
  if (!es.empty()) Reveal(kind, es, 0, with_value, hash_only, &p.nodes);
  return p;
}

Hash RootOf(MapKind kind, const std::vector<E>& es) {
  if (es.empty()) return MapRootHash(kind, nullptr);
  const MapDigest top = Build(kind, es);
  return MapRootHash(kind, &top);
}

void RequireVerificationFailure(const Status& s, const std::string& check) {
  INFO(s.ToString());
  REQUIRE(s.code() == StatusCode::kDataLoss);
  REQUIRE(s.verification() != nullptr);
  CHECK(s.verification()->check == check);
}

TEST_CASE("map hashing follows the documented byte layout", "[merkle][map]") {
  const Hash vh = MapValueHash("v");
  CHECK(vh == HashTagged(kTagMapValue, "v"));
  ByteWriter leaf;
  leaf.U8(1);
  leaf.Bytes("key");
  leaf.Fixed(HashView(vh));
  leaf.I64(-5);
  const MapDigest l = MapLeafDigest(MapKind::kInt64Aggregate, "key", vh, -5);
  CHECK(l.hash == HashTagged(kTagMapLeaf, leaf.data()));
  CHECK(l.count == 1);
  CHECK(l.aggregate == MapAggregate::Of(-5));

  const MapDigest r = MapLeafDigest(MapKind::kInt64Aggregate, "kez", vh, 7);
  ByteWriter inner;
  inner.U8(1);
  for (const MapDigest* d : {&l, &r}) {
    inner.Fixed(HashView(d->hash));
    inner.U64(d->count);
    const auto sum = static_cast<unsigned __int128>(d->aggregate.sum);
    inner.U64(static_cast<std::uint64_t>(sum >> 64));
    inner.U64(static_cast<std::uint64_t>(sum));
    inner.I64(d->aggregate.min);
    inner.I64(d->aggregate.max);
  }
  const MapDigest in = MapInnerDigest(MapKind::kInt64Aggregate, l, r);
  CHECK(in.hash == HashTagged(kTagMapInner, inner.data()));
  CHECK(in.count == 2);
  CHECK(in.aggregate.sum == 2);
  CHECK(in.aggregate.min == -5);
  CHECK(in.aggregate.max == 7);

  // Plain maps: no aggregate bytes anywhere; the kind byte separates the two.
  ByteWriter plain;
  plain.U8(0);
  plain.Bytes("key");
  plain.Fixed(HashView(vh));
  CHECK(MapLeafDigest(MapKind::kPlain, "key", vh, -5).hash == HashTagged(kTagMapLeaf, plain.data()));
  CHECK(MapRootHash(MapKind::kPlain, nullptr) != MapRootHash(MapKind::kInt64Aggregate, nullptr));
  ByteWriter empty;
  empty.U8(0);
  empty.Fixed(HashView(kZeroHash));
  empty.U64(0);
  CHECK(MapRootHash(MapKind::kPlain, nullptr) == HashTagged(kTagMapRoot, empty.data()));

  CHECK(MapPageSplit(2) == 1);
  CHECK(MapPageSplit(3) == 2);
  CHECK(MapPageSplit(4) == 2);
  CHECK(MapPageSplit(5) == 4);
  CHECK(MapPageSplit(32) == 16);
  CHECK(MapPageSplit(33) == 32);
}

TEST_CASE("map page digest is the balanced tree over the items", "[merkle][map]") {
  const MapKind kind = MapKind::kPlain;
  const std::vector<E> es = Sample(7);
  std::vector<MapDigest> items;
  for (const E& e : es) items.push_back(MapLeafDigest(kind, e.key, MapValueHash(e.value), 0));
  std::vector<MapDigest> inner;
  CHECK(MapPageDigest(kind, items, &inner) == Build(kind, es));
  CHECK(inner.size() == 6);
  CHECK(inner[0] == Build(kind, es));  // pre-order: the top first
}

TEST_CASE("map verifier accepts proofs over any tree shape", "[merkle][map]") {
  for (MapKind kind : {MapKind::kPlain, MapKind::kInt64Aggregate}) {
    for (size_t n : {0u, 1u, 2u, 3u, 10u, 33u}) {
      const std::vector<E> es = Sample(n);
      const Hash root = RootOf(kind, es);
      // Everything revealed: a full forward scan.
      std::set<std::uint64_t> all;
      for (size_t i = 0; i < n; ++i) all.insert(i);
      auto range = VerifyMapRange(root, {}, ProofOf(kind, es, all, {}));
      REQUIRE(range.ok());
      REQUIRE(range->entries.size() == n);
      CHECK_FALSE(range->has_more);
      for (size_t i = 0; i < n; ++i) {
        CHECK(range->entries[i].key == es[i].key);
        CHECK(range->entries[i].value == es[i].value);
        CHECK(range->entries[i].rank == i);
      }
      if (n == 0) {
        auto g = VerifyMapGet(root, "x", ProofOf(kind, es, {}, {}));
        REQUIRE(g.ok());
        CHECK_FALSE(g->entry.has_value());
        continue;
      }
      // Presence, absence between two entries, absence at both edges.
      auto present = VerifyMapGet(root, es[n / 2].key, ProofOf(kind, es, {n / 2}, {}));
      REQUIRE(present.ok());
      REQUIRE(present->entry.has_value());
      CHECK(present->entry->value == es[n / 2].value);
      if (n >= 2) {
        auto absent = VerifyMapGet(root, es[0].key + "x", ProofOf(kind, es, {}, {0, 1}));
        REQUIRE(absent.ok());
        CHECK_FALSE(absent->entry.has_value());
      }
      CHECK_FALSE(VerifyMapGet(root, "a", ProofOf(kind, es, {}, {0}))->entry.has_value());
      CHECK_FALSE(VerifyMapGet(root, "z", ProofOf(kind, es, {}, {n - 1}))->entry.has_value());
      // Summary of everything from the edges alone.
      auto sum = VerifyMapSummary(root, "", std::nullopt, ProofOf(kind, es, {}, {0}));
      REQUIRE(sum.ok());
      CHECK(sum->count == n);
      if (kind == MapKind::kInt64Aggregate) {
        Int128 expect = 0;
        for (const E& e : es) expect += e.agg;
        CHECK(sum->aggregate.sum == expect);
        CHECK(sum->aggregate.min == es.front().agg);
        CHECK(sum->aggregate.max == es.back().agg);
      }
      auto rank = VerifyMapRank(root, n - 1, ProofOf(kind, es, {n - 1}, {}));
      REQUIRE(rank.ok());
      CHECK(rank->entry->key == es.back().key);
    }
  }
}

TEST_CASE("map verifier rejects forged proofs with typed errors", "[merkle][map]") {
  const MapKind kind = MapKind::kInt64Aggregate;
  const std::vector<E> es = Sample(10);
  const Hash root = RootOf(kind, es);

  // A range answer with entry 4 pruned away: the root still matches, the gap is found.
  {
    MapProof p = ProofOf(kind, es, {2, 3, 5, 6}, {1, 7});
    MapRangeQuery q{es[2].key, es[7].key, 100, false};
    RequireVerificationFailure(VerifyMapRange(root, q, p).status(), "map.range.gap");
    q.reverse = true;
    RequireVerificationFailure(VerifyMapRange(root, q, p).status(), "map.range.gap");
  }
  // Absence claimed with non-adjacent neighbours (entry 4 hidden).
  RequireVerificationFailure(VerifyMapGet(root, es[4].key, ProofOf(kind, es, {}, {3, 5})).status(),
                             "map.boundary");
  // Present key without the value.
  RequireVerificationFailure(VerifyMapGet(root, es[4].key, ProofOf(kind, es, {}, {3, 4})).status(), "map.value");
  // Rank not revealed.
  RequireVerificationFailure(VerifyMapRank(root, 4, ProofOf(kind, es, {5}, {})).status(), "map.rank");
  // A pruned subtree straddling the summary range.
  RequireVerificationFailure(VerifyMapSummary(root, es[3].key, es[6].key, ProofOf(kind, es, {}, {2, 3})).status(),
                             "map.boundary");
  {
    // Reveal the boundaries, but prune so that a subtree crosses rank 6.
    MapProof p = ProofOf(kind, es, {}, {2, 3, 5, 6});
    auto ok = VerifyMapSummary(root, es[3].key, es[6].key, p);
    REQUIRE(ok.ok());
    CHECK(ok->count == 3);
    CHECK(ok->aggregate.sum == 0 + 1 + 2);
  }
  // Changing a revealed value, a key, an aggregate or a pruned count breaks the root.
  MapProof base = ProofOf(kind, es, {4}, {});
  REQUIRE(VerifyMapGet(root, es[4].key, base).ok());
  for (int mutation = 0; mutation < 4; ++mutation) {
    MapProof p = base;
    for (MapProofNode& n : p.nodes) {
      if (mutation == 0 && n.type == MapProofNode::Type::kEntryWithValue) n.value += "!";
      if (mutation == 1 && n.type == MapProofNode::Type::kEntryWithValue) n.aggregate += 1;
      if (mutation == 2 && n.type == MapProofNode::Type::kPruned) {
        n.digest.count += 1;
        break;
      }
      if (mutation == 3 && n.type == MapProofNode::Type::kPruned) {
        n.digest.aggregate.max += 1;
        break;
      }
    }
    RequireVerificationFailure(VerifyMapGet(root, es[4].key, p).status(), "map.root");
  }
  // Another root, another kind.
  RequireVerificationFailure(VerifyMapGet(RootOf(kind, Sample(9)), es[4].key, base).status(), "map.root");
  MapProof other_kind = base;
  other_kind.kind = MapKind::kPlain;
  RequireVerificationFailure(VerifyMapGet(root, es[4].key, other_kind).status(), "map.root");
}

TEST_CASE("map proof encoding round-trips and rejects damage", "[merkle][map]") {
  const MapKind kind = MapKind::kInt64Aggregate;
  const std::vector<E> es = Sample(12);
  const MapProof p = ProofOf(kind, es, {3, 4}, {2, 5});
  const std::string bytes = p.Encode();
  auto back = MapProof::Decode(bytes);
  REQUIRE(back.ok());
  CHECK(back->Encode() == bytes);
  MapRangeQuery q{es[3].key, es[5].key, 10, false};
  REQUIRE(VerifyMapRange(RootOf(kind, es), q, *back).ok());
  for (size_t len = 0; len < bytes.size(); ++len) {
    auto cut = MapProof::Decode(bytes.substr(0, len));
    REQUIRE_FALSE(cut.ok());
    CHECK(cut.status().code() == StatusCode::kInvalidArgument);
  }
  CHECK(MapProof::Decode(bytes + "x").status().code() == StatusCode::kInvalidArgument);
  // Structure: two trees, or a tree cut short, are not one tree.
  MapProof two = p;
  two.nodes.push_back(p.nodes.back());
  CHECK(MapProof::Decode(two.Encode()).status().code() == StatusCode::kInvalidArgument);
  MapProof short_tree = p;
  short_tree.nodes.pop_back();
  CHECK(MapProof::Decode(short_tree.Encode()).status().code() == StatusCode::kInvalidArgument);
  CHECK(VerifyMapRange(RootOf(kind, es), q, short_tree).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vellum::merkle
