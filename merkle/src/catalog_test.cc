#include "vellum/merkle/catalog.h"

#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "vellum/base/tuple.h"

namespace vellum::merkle {
namespace {

// A catalog built naively: one balanced binary tree (RFC 9162 split) over the
// sorted entries. The verifier must accept any shape, so this stands in for
// the B+-tree of indexes/ without depending on it.
using Catalog = std::map<std::string, std::string>;  // catalog key -> encoded value
using Item = std::pair<std::string, std::string>;

MapDigest Build(std::span<const Item> es) {
  if (es.size() == 1) return MapLeafDigest(kCatalogMapKind, es[0].first, MapValueHash(es[0].second), 0);
  const size_t k = MapPageSplit(es.size());
  return MapInnerDigest(kCatalogMapKind, Build(es.first(k)), Build(es.subspan(k)));
}

void Reveal(std::span<const Item> es, std::uint64_t offset, const std::set<std::uint64_t>& with_value,
            const std::set<std::uint64_t>& hash_only, std::vector<MapProofNode>* out) {
  auto any = [&](const std::set<std::uint64_t>& s) {
    auto it = s.lower_bound(offset);
    return it != s.end() && *it < offset + es.size();
  };
  MapProofNode n;
  if (!any(with_value) && !any(hash_only)) {
    n.type = MapProofNode::Type::kPruned;
    n.digest = Build(es);
    out->push_back(n);
    return;
  }
  if (es.size() == 1) {
    n.key = es[0].first;
    n.value_hash = MapValueHash(es[0].second);
    n.type = with_value.count(offset) ? MapProofNode::Type::kEntryWithValue : MapProofNode::Type::kEntry;
    if (with_value.count(offset)) n.value = es[0].second;
    out->push_back(n);
    return;
  }
  n.type = MapProofNode::Type::kInner;
  out->push_back(n);
  const size_t k = MapPageSplit(es.size());
  Reveal(es.first(k), offset, with_value, hash_only, out);
  Reveal(es.subspan(k), offset + k, with_value, hash_only, out);
}

Hash StateRoot(const Catalog& c) {
  if (c.empty()) return MapRootHash(kCatalogMapKind, nullptr);
  std::vector<Item> es(c.begin(), c.end());
  const MapDigest top = Build(es);
  return MapRootHash(kCatalogMapKind, &top);
}

// The proof a server gives for get(key): the entry with its value, or the
// neighbours of the gap.
MapProof ProveGet(const Catalog& c, const std::string& key) {
  std::vector<Item> es(c.begin(), c.end());
  MapProof p;
  p.kind = kCatalogMapKind;
  if (es.empty()) return p;
  const auto pos = static_cast<std::uint64_t>(std::distance(c.begin(), c.lower_bound(key)));
  std::set<std::uint64_t> with_value, hash_only;
  if (pos < es.size() && es[pos].first == key) {
    with_value.insert(pos);
  } else {
    if (pos > 0) hash_only.insert(pos - 1);
    if (pos < es.size()) hash_only.insert(pos);
  }
  Reveal(es, 0, with_value, hash_only, &p.nodes);
  return *MapProof::Decode(p.Encode());  // as a client receives it
}

std::string Key(std::string_view model, std::string_view name, std::string_view part) {
  auto k = CatalogKey(model, name, part);
  REQUIRE(k.ok());
  return *k;
}

Hash Filled(std::uint8_t b) {
  Hash h;
  h.fill(b);
  return h;
}

void RequireVerificationFailure(const Status& s, const std::string& check) {
  INFO(s.ToString());
  REQUIRE(s.code() == StatusCode::kDataLoss);
  REQUIRE(s.verification() != nullptr);
  CHECK(s.verification()->check == check);
}

TEST_CASE("catalog entry has one canonical encoding", "[merkle][catalog]") {
  CatalogEntry e{MapKind::kInt64Aggregate, Filled(0xab), 0x0102030405060708ULL, Filled(0xcd)};
  const std::string bytes = EncodeCatalogEntry(e);
  // Known answer: version, kind, root, count, schema.
  std::string want = std::string("\x01\x01", 2) + std::string(32, '\xab') +
                     std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8) + std::string(32, '\xcd');
  CHECK(bytes == want);
  CHECK(bytes.size() == kCatalogEntrySize);
  auto back = DecodeCatalogEntry(bytes);
  REQUIRE(back.ok());
  CHECK(*back == e);

  const CatalogEntry plain{};
  auto plain_back = DecodeCatalogEntry(EncodeCatalogEntry(plain));
  REQUIRE(plain_back.ok());
  CHECK(*plain_back == plain);

  // Damage: truncation, trailing byte, unknown version, unknown kind.
  std::vector<std::string> bad = {bytes.substr(0, bytes.size() - 1), bytes + '\0', "", bytes, bytes};
  bad[3][0] = '\x02';
  bad[4][1] = '\x02';
  for (const std::string& b : bad) {
    auto r = DecodeCatalogEntry(b);
    INFO(b.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("catalog keys are (model, name, part) tuples in logical order", "[merkle][catalog]") {
  const std::vector<CatalogKeyParts> ids = {
      {"", "", ""},   {"doc", "a", "primary"}, {"doc", std::string("a\0b", 3), "x"}, {"doc", "a\xff", ""},
      {"kv", "", ""}, {"kv", "accounts", ""},  {"kv", "accounts", "by-score"}};
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string k = Key(ids[i].model, ids[i].name, ids[i].part);
    auto back = DecodeCatalogKey(k);
    REQUIRE(back.ok());
    CHECK(*back == ids[i]);
    for (size_t j = 0; j < ids.size(); ++j) {
      const auto logical = std::tie(ids[i].model, ids[i].name, ids[i].part) <=>
                           std::tie(ids[j].model, ids[j].name, ids[j].part);
      const std::string kj = Key(ids[j].model, ids[j].name, ids[j].part);
      CHECK((k <=> kj) == logical);
    }
  }
  // Not three strings.
  const std::vector<Tuple> bad = {
      {},
      {TupleElement::String("kv"), TupleElement::String("a")},
      {TupleElement::String("kv"), TupleElement::String("a"), TupleElement::String("b"), TupleElement::String("c")},
      {TupleElement::String("kv"), TupleElement::Bytes("a"), TupleElement::String("b")},
      {TupleElement::String("kv"), TupleElement::String("a"), TupleElement::Uint64(1)},
  };
  for (const Tuple& t : bad) {
    auto k = EncodeTuple(t);
    REQUIRE(k.ok());
    CHECK(DecodeCatalogKey(*k).status().code() == StatusCode::kInvalidArgument);
  }
  CHECK(DecodeCatalogKey("\x07no-terminator").status().code() == StatusCode::kInvalidArgument);
  // Too long for a map key.
  CHECK(CatalogKey("kv", std::string(kMaxMapKeySize, 'n'), "").status().code() == StatusCode::kInvalidArgument);
  CHECK(CatalogKey("kv", std::string(kMaxMapKeySize - 8, 'n'), "").ok());
  CHECK_FALSE(CatalogKey("kv", std::string(kMaxMapKeySize - 7, 'n'), "").ok());
}

TEST_CASE("catalog proofs verify presence and absence against the state root", "[merkle][catalog]") {
  Catalog c;
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) {
    const std::string k = Key(i % 2 ? "kv" : "doc", "n" + std::to_string(10 + i), i % 3 ? "primary" : "idx");
    keys.push_back(k);
    c[k] = EncodeCatalogEntry({i % 4 ? MapKind::kPlain : MapKind::kInt64Aggregate, Filled(static_cast<std::uint8_t>(i)),
                               static_cast<std::uint64_t>(i * 7), i % 5 ? kZeroHash : Filled(0x55)});
  }
  const Hash root = StateRoot(c);

  for (const std::string& k : keys) {
    auto got = VerifyCatalogEntry(root, ProveGet(c, k), k);
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    CHECK(EncodeCatalogEntry(**got) == c[k]);
  }
  for (const std::string& k : {Key("", "", ""), Key("doc", "n105", "x"), Key("zz", "", "")}) {
    auto got = VerifyCatalogEntry(root, ProveGet(c, k), k);
    REQUIRE(got.ok());
    CHECK_FALSE(got->has_value());
  }
  // The empty catalog proves every key absent.
  auto empty = VerifyCatalogEntry(StateRoot({}), ProveGet({}, keys[0]), keys[0]);
  REQUIRE(empty.ok());
  CHECK_FALSE(empty->has_value());
}

TEST_CASE("catalog proofs fail typed when forged or misused", "[merkle][catalog]") {
  Catalog c;
  for (int i = 0; i < 9; ++i) {
    c[Key("kv", "n" + std::to_string(i), "")] =
        EncodeCatalogEntry({MapKind::kPlain, Filled(static_cast<std::uint8_t>(i)), 1, kZeroHash});
  }
  const Hash root = StateRoot(c);
  const std::string k = Key("kv", "n4", "");
  const MapProof good = ProveGet(c, k);
  REQUIRE(VerifyCatalogEntry(root, good, k).ok());

  // Another block's state root.
  Catalog later = c;
  later[Key("kv", "n9", "")] = EncodeCatalogEntry({});
  RequireVerificationFailure(VerifyCatalogEntry(StateRoot(later), good, k).status(), "map.root");

  // The entry altered in the proof: another map root, count or kind.
  for (int field = 0; field < 3; ++field) {
    MapProof p = good;
    for (MapProofNode& n : p.nodes) {
      if (n.type != MapProofNode::Type::kEntryWithValue) continue;
      CatalogEntry e = *DecodeCatalogEntry(n.value);
      if (field == 0) e.map_root[0] ^= 1;
      if (field == 1) e.count += 1;
      if (field == 2) e.kind = MapKind::kInt64Aggregate;
      n.value = EncodeCatalogEntry(e);
    }
    RequireVerificationFailure(VerifyCatalogEntry(root, p, k).status(), "map.root");
  }

  // The proof of one key used for another: present key of another map, absent key.
  RequireVerificationFailure(VerifyCatalogEntry(root, good, Key("kv", "n5", "")).status(), "map.boundary");
  RequireVerificationFailure(VerifyCatalogEntry(root, good, Key("kv", "n45", "")).status(), "map.boundary");
  // An absence proof for a present key: the entry is revealed without its value.
  const MapProof absent = ProveGet(c, Key("kv", "n45", ""));
  RequireVerificationFailure(VerifyCatalogEntry(root, absent, Key("kv", "n4", "")).status(), "map.value");

  // Not a catalog key, or not a catalog proof.
  CHECK(VerifyCatalogEntry(root, good, "kv/n4").status().code() == StatusCode::kInvalidArgument);
  MapProof agg = good;
  agg.kind = MapKind::kInt64Aggregate;
  CHECK(VerifyCatalogEntry(root, agg, k).status().code() == StatusCode::kInvalidArgument);

  // A state root that commits to a malformed entry: the root checks, the entry does not.
  Catalog junk = c;
  junk[k] = "not an entry";
  RequireVerificationFailure(VerifyCatalogEntry(StateRoot(junk), ProveGet(junk, k), k).status(), "catalog.entry");
}

}  // namespace
}  // namespace vellum::merkle
