// BundleToJson is a hand-written writer of the bundle JSON (FORMAT.md,
// "Proof bundles"). The model it must match byte for byte is the encoding
// the format was defined with: an nlohmann::ordered_json document in field
// order, dump(2) plus a newline. Random bundles (escapes, control
// characters, UTF-8, nested queries and results of every JSON type, empty
// and long proofs) go through both; well-formed ones also round-trip
// through ParseBundle.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "vellum/base/bytes.h"
#include "vellum/verifier/bundle.h"

namespace vellum::verifier {
namespace {

using nlohmann::json;

// The reference: the encoder as FORMAT.md defines the bundle.
std::string ModelBundleJson(const Bundle& bundle) {
  json views = json::array();
  for (const auto& v : bundle.views) {
    views.push_back(
        {{"catalog_key", Base64Encode(v.catalog_key)},
         {"catalog_proof", Base64Encode(v.catalog.Encode())},
         {"map_proof", v.map.nodes.empty() ? std::string() : Base64Encode(v.map.Encode())}});
  }
  json path = json::array();
  for (const auto& h : bundle.block.inclusion.path) path.push_back(merkle::HashHex(h));
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  doc["vellum_proof_bundle"] = kBundleVersion;
  doc["ledger"] = bundle.ledger;
  doc["checkpoint"] = bundle.checkpoint;
  doc["tree_size"] = bundle.tree_size;
  doc["height"] = bundle.height;
  doc["query"] = bundle.query;
  doc["result"] = bundle.result;
  doc["block"] = {{"header", Base64Encode(bundle.block.header)}, {"inclusion", path}};
  doc["views"] = views;
  if (!bundle.transactions.empty()) {
    auto hex = [](const std::vector<merkle::Hash>& hashes) {
      json list = json::array();
      for (const auto& h : hashes) list.push_back(merkle::HashHex(h));
      return list;
    };
    nlohmann::ordered_json txs = nlohmann::ordered_json::array();
    for (const auto& t : bundle.transactions) {
      nlohmann::ordered_json item = nlohmann::ordered_json::object();
      item["tx"] = Base64Encode(t.transaction);
      item["tx_seq"] = t.tx_seq;
      item["index_in_block"] = t.index_in_block;
      item["tx_path"] = hex(t.tx_path);
      item["header"] = Base64Encode(t.block.header);
      item["inclusion"] = hex(t.block.inclusion.path);
      txs.push_back(std::move(item));
    }
    doc["transactions"] = std::move(txs);
  }
  return doc.dump(2) + "\n";
}

class Gen {
 public:
  explicit Gen(std::uint64_t seed) : rng_(seed) {}

  std::uint64_t Below(std::uint64_t n) {
    return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_);
  }

  std::string Bytes(size_t max_len) {
    std::string s(Below(max_len + 1), '\0');
    for (auto& c : s) c = static_cast<char>(Below(256));
    return s;
  }

  // Valid UTF-8 text with the characters JSON escapes, controls, DEL and
  // multi-byte sequences.
  std::string Text(size_t max_len) {
    static const char* const kPieces[] = {
        "a",  "Z",  "0",  " ",    "\"",   "\\",   "/",        "\n",           "\r",
        "\t", "\b", "\f", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x80\x94", "\xf0\x9f\x98\x80",
        "{",  "}",  ":",  ","};
    std::string s;
    const size_t n = Below(max_len + 1);
    for (size_t i = 0; i < n; ++i) s += kPieces[Below(std::size(kPieces))];
    return s;
  }

  json Value(int depth) {
    switch (Below(depth > 3 ? 7 : 9)) {
      case 0:
        return nullptr;
      case 1:
        return Below(2) == 1;
      case 2:
        return static_cast<std::int64_t>(Below(1ull << 63)) * (Below(2) == 1 ? -1 : 1);
      case 3:
        return static_cast<std::uint64_t>(rng_());
      case 4:
        return std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
      case 5:
        return Text(20);
      case 6:
        return Base64Encode(Bytes(40));
      case 7: {
        json a = json::array();
        const size_t n = Below(4);
        for (size_t i = 0; i < n; ++i) a.push_back(Value(depth + 1));
        return a;
      }
      default:
        return Object(depth + 1);
    }
  }

  json Object(int depth) {
    json o = json::object();
    const size_t n = Below(5);
    for (size_t i = 0; i < n; ++i) o[Text(6)] = Value(depth);
    return o;
  }

  merkle::MapProof Proof() {
    merkle::MapProof p;
    p.kind = Below(2) == 1 ? merkle::MapKind::kInt64Aggregate : merkle::MapKind::kPlain;
    const size_t n = Below(6);
    for (size_t i = 0; i < n; ++i) {
      merkle::MapProofNode node;
      node.type = static_cast<merkle::MapProofNode::Type>(Below(4));
      node.key = Bytes(12);
      node.value = Bytes(30);
      for (auto& b : node.value_hash) b = static_cast<std::uint8_t>(Below(256));
      for (auto& b : node.digest.hash) b = static_cast<std::uint8_t>(Below(256));
      node.digest.count = Below(1000);
      node.aggregate = static_cast<std::int64_t>(Below(1000)) - 500;
      p.nodes.push_back(std::move(node));
    }
    return p;
  }

  Bundle RandomBundle() {
    Bundle b;
    b.ledger = Text(10);
    b.checkpoint = Text(200);
    b.tree_size = Below(4) == 0 ? rng_() : Below(100000);
    b.height = Below(100000);
    b.query = Below(8) == 0 ? Value(0) : Object(0);
    b.result = Below(8) == 0 ? Value(0) : Object(0);
    b.block.header = Bytes(150);
    const size_t path = Below(4) == 0 ? 0 : Below(40);
    for (size_t i = 0; i < path; ++i) {
      merkle::Hash h{};
      for (auto& x : h) x = static_cast<std::uint8_t>(Below(256));
      b.block.inclusion.path.push_back(h);
    }
    const size_t views = Below(4);
    for (size_t i = 0; i < views; ++i)
      b.views.push_back({Bytes(20), Proof(), Below(3) == 0 ? merkle::MapProof{} : Proof()});
    const size_t txs = Below(3) == 0 ? Below(4) : 0;
    for (size_t i = 0; i < txs; ++i) {
      journal::TransactionProof t;
      t.transaction = Bytes(60);
      t.tx_seq = rng_();
      t.index_in_block = static_cast<std::uint32_t>(Below(1u << 31));
      t.tx_path = Hashes(Below(3) == 0 ? 0 : Below(10));
      t.block.header = Bytes(150);
      t.block.inclusion.path = Hashes(Below(3) == 0 ? 0 : Below(10));
      b.transactions.push_back(std::move(t));
    }
    return b;
  }

  std::vector<merkle::Hash> Hashes(size_t n) {
    std::vector<merkle::Hash> out(n);
    for (auto& h : out) {
      for (auto& x : h) x = static_cast<std::uint8_t>(Below(256));
    }
    return out;
  }

 private:
  std::mt19937_64 rng_;
};

TEST_CASE("BundleToJson writes exactly the bytes of the nlohmann model", "[verifier][bundle]") {
  Gen gen(Catch::rngSeed());
  for (int i = 0; i < 3000; ++i) {
    const Bundle b = gen.RandomBundle();
    const std::string expected = ModelBundleJson(b);
    const std::string got = BundleToJson(b);
    if (got != expected) {
      INFO("case " << i << "\nexpected:\n" << expected << "\ngot:\n" << got);
      REQUIRE(got == expected);
    }
  }
}

TEST_CASE("BundleToJson output of a well-formed bundle parses back to the same bundle",
          "[verifier][bundle]") {
  Bundle b;
  b.ledger = "ledger \xe2\x80\x94 one";
  b.checkpoint = "ledger\n3\nabc=\n\n\xe2\x80\x94 ledger sig\n";
  b.tree_size = 3;
  b.height = 2;
  b.query = {{"kind", "kv.get"}, {"namespace", "n\"s\\\x01"}, {"key", Base64Encode("k")}};
  b.result = {{"found", true}, {"value", Base64Encode(std::string("v\0", 2))}};
  b.block.header = std::string("\x00\x01header", 8);
  b.block.inclusion.path = {merkle::HashLeaf("a"), merkle::HashLeaf("b")};
  b.block.inclusion.leaf_index = 2;
  b.block.inclusion.tree_size = 3;
  merkle::MapProof pruned;
  pruned.nodes.push_back({});
  pruned.nodes.back().digest = {merkle::HashLeaf("subtree"), 7, {}};
  b.views.push_back({"catalog key", pruned, {}});
  const std::string text = BundleToJson(b);
  REQUIRE(text == ModelBundleJson(b));
  auto parsed = ParseBundle(text);
  INFO(parsed.status().ToString());
  REQUIRE(parsed.ok());
  CHECK(BundleToJson(*parsed) == text);
  CHECK(parsed->query == b.query);
  CHECK(parsed->result == b.result);
  CHECK(parsed->checkpoint == b.checkpoint);
}

}  // namespace
}  // namespace vellum::verifier
