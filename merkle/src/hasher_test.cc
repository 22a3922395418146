#include "vellum/merkle/hasher.h"

#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "vellum/base/bytes.h"

namespace vellum::merkle {
namespace {

nlohmann::json LoadVectors() {
  std::ifstream in(VELLUM_SHARED_DIR "/vectors/tlog-vectors.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

std::string Unhex(const std::string& hex) { return *HexDecode(hex); }
Hash H(const std::string& hex) { return *HashFromHex(hex); }

TEST_CASE("Hasher matches the RFC 9162 known answers", "[merkle]") {
  const auto vectors = LoadVectors();
  for (const auto& c : vectors["hasher"]) {
    const std::string op = c["op"];
    const Hash want = H(c["want"]);
    if (op == "empty_root") {
      CHECK(EmptyTreeRoot() == want);
    } else if (op == "hash_leaf") {
      CHECK(HashLeaf(Unhex(c["data"])) == want);
    } else if (op == "hash_children") {
      // The vector's children are short byte strings, hashed raw: 0x01 || left || right.
      CHECK(Sha256Of("\x01" + Unhex(c["left"]) + Unhex(c["right"])) == want);
    } else {
      FAIL("unknown hasher op " << op);
    }
  }
  CHECK(HashHex(Sha256Of("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("HashChildren is the node rule over 32-byte hashes", "[merkle]") {
  const Hash a = HashLeaf("a"), b = HashLeaf("b");
  CHECK(HashChildren(a, b) == Sha256Of(std::string("\x01") + std::string(HashView(a)) + std::string(HashView(b))));
  CHECK(HashChildren(a, b) != HashChildren(b, a));
}

TEST_CASE("Tagged hashes are domain separated", "[merkle]") {
  const Hash t = HashTagged(kTagTransaction, "x");
  CHECK(t == Sha256Of(std::string(1, static_cast<char>(kTagTransaction.size())) + std::string(kTagTransaction) + "x"));
  CHECK(t != HashLeaf("x"));
  CHECK(t != HashTagged(kTagLedgerId, "x"));
}

TEST_CASE("Incremental hashing resets after Finish", "[merkle]") {
  Sha256 h;
  h.Update("ab");
  h.Update("c");
  CHECK(h.Finish() == Sha256Of("abc"));
  h.Update("abc");
  CHECK(h.Finish() == Sha256Of("abc"));
}

TEST_CASE("Hashes are exactly 32 bytes", "[merkle]") {
  CHECK_FALSE(HashFromBytes(std::string(31, 'a')).ok());
  CHECK_FALSE(HashFromBytes(std::string(33, 'a')).ok());
  CHECK_FALSE(HashFromHex("00").ok());
  CHECK(HashFromHex(std::string(64, 'A')).ok());
}

}  // namespace
}  // namespace vellum::merkle
