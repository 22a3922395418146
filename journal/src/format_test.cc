#include "vellum/journal/format.h"

#include <random>

#include <catch2/catch.hpp>

#include "vellum/base/encoding.h"

namespace vellum::journal {
namespace {

Transaction RandomTransaction(std::mt19937_64& rng) {
  Transaction tx;
  tx.client_token = std::string(rng() % 20, static_cast<char>('a' + rng() % 26));
  const size_t ops = 1 + rng() % 5;
  for (size_t i = 0; i < ops; ++i) {
    Operation op;
    op.kind = static_cast<std::uint16_t>(rng());
    op.body.resize(rng() % 100);
    for (auto& c : op.body) c = static_cast<char>(rng());
    tx.operations.push_back(std::move(op));
  }
  return tx;
}

TEST_CASE("Transactions round-trip canonically", "[journal][format]") {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 500; ++i) {
    const Transaction tx = RandomTransaction(rng);
    const std::string enc = EncodeTransaction(tx);
    auto dec = DecodeTransaction(enc);
    REQUIRE(dec.ok());
    CHECK(*dec == tx);
    CHECK(EncodeTransaction(*dec) == enc);
  }
}

TEST_CASE("Transaction decoding is strict", "[journal][format]") {
  Transaction tx{"tok", {{7, "body"}}};
  const std::string enc = EncodeTransaction(tx);
  // Every strict prefix is rejected, and so is any trailing byte.
  for (size_t n = 0; n < enc.size(); ++n) CHECK_FALSE(DecodeTransaction(enc.substr(0, n)).ok());
  CHECK_FALSE(DecodeTransaction(enc + "x").ok());
  std::string bad_version = enc;
  bad_version[1] = 2;
  CHECK(DecodeTransaction(bad_version).status().message().find("unknown transaction format version 2") != std::string::npos);
  // A huge operation count with no data behind it is rejected without allocating.
  ByteWriter w;
  w.U16(kTransactionFormatVersion);
  w.Bytes("");
  w.U32(90000);
  CHECK(DecodeTransaction(w.data()).status().code() == StatusCode::kInvalidArgument);
  // An over-long client token.
  ByteWriter t;
  t.U16(kTransactionFormatVersion);
  t.Bytes(std::string(kMaxClientTokenSize + 1, 'x'));
  t.U32(0);
  CHECK_FALSE(DecodeTransaction(t.data()).ok());
}

TEST_CASE("Transaction hashes are domain separated and change with any byte", "[journal][format]") {
  const std::string enc = EncodeTransaction({"", {{1, "x"}}});
  CHECK(TransactionHash(enc) == merkle::HashTagged(merkle::kTagTransaction, enc));
  CHECK(TransactionHash(enc) != merkle::HashLeaf(enc));
  CHECK(TransactionLeafHash(enc) == merkle::HashLeaf(merkle::HashView(TransactionHash(enc))));
  std::string changed = enc;
  changed.back() ^= 1;
  CHECK(TransactionHash(changed) != TransactionHash(enc));
}

TEST_CASE("Block headers round-trip and have a fixed size", "[journal][format]") {
  std::mt19937_64 rng(9);
  for (int i = 0; i < 200; ++i) {
    BlockHeader h;
    for (auto& b : h.ledger_id) b = static_cast<std::uint8_t>(rng());
    h.height = rng();
    for (auto& b : h.prev_hash) b = static_cast<std::uint8_t>(rng());
    h.timestamp_us = static_cast<std::int64_t>(rng() >> 1);
    h.first_tx_seq = rng();
    h.tx_count = 1 + static_cast<std::uint32_t>(rng() % 10000);
    for (auto& b : h.tx_root) b = static_cast<std::uint8_t>(rng());
    for (auto& b : h.state_root) b = static_cast<std::uint8_t>(rng());
    const std::string enc = EncodeBlockHeader(h);
    REQUIRE(enc.size() == kBlockHeaderSize);
    auto dec = DecodeBlockHeader(enc);
    REQUIRE(dec.ok());
    CHECK(*dec == h);
  }
}

TEST_CASE("Block header decoding is strict", "[journal][format]") {
  BlockHeader h;
  h.tx_count = 1;
  const std::string enc = EncodeBlockHeader(h);
  CHECK(DecodeBlockHeader(enc).ok());
  CHECK_FALSE(DecodeBlockHeader(enc.substr(0, enc.size() - 1)).ok());
  CHECK_FALSE(DecodeBlockHeader(enc + std::string(1, '\0')).ok());
  BlockHeader empty = h;
  empty.tx_count = 0;
  CHECK(DecodeBlockHeader(EncodeBlockHeader(empty)).status().message().find("at least one transaction") != std::string::npos);
  BlockHeader v2 = h;
  v2.version = 2;
  CHECK_FALSE(DecodeBlockHeader(EncodeBlockHeader(v2)).ok());
  CHECK(BlockHash(enc) == merkle::HashLeaf(enc));
}

}  // namespace
}  // namespace vellum::journal
