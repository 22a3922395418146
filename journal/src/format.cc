#include "vellum/journal/format.h"

#include "vellum/base/encoding.h"

namespace vellum::journal {

std::string EncodeTransaction(const Transaction& tx) {
  size_t size = 2 + 4 + tx.client_token.size() + 4;
  for (const auto& op : tx.operations) size += 2 + 4 + op.body.size();
  ByteWriter w(size);
  w.U16(kTransactionFormatVersion);
  w.Bytes(tx.client_token);
  w.U32(static_cast<std::uint32_t>(tx.operations.size()));
  for (const auto& op : tx.operations) {
    w.U16(op.kind);
    w.Bytes(op.body);
  }
  return w.Take();
}

Result<Transaction> DecodeTransaction(std::string_view bytes) {
  ByteReader r(bytes, "transaction");
  Transaction tx;
  const std::uint16_t version = r.U16();
  if (r.ok() && version != kTransactionFormatVersion) {
    r.Fail("unknown transaction format version " + std::to_string(version));
  }
  tx.client_token = std::string(r.Bytes(kMaxClientTokenSize));
  const std::uint32_t count = r.U32();
  if (r.ok() && count > kMaxOperationsPerTransaction) {
    r.Fail(std::to_string(count) + " operations exceed the limit " + std::to_string(kMaxOperationsPerTransaction));
  }
  // Each operation takes at least 6 bytes, so a lying count cannot make us reserve much.
  if (r.ok() && count > r.remaining() / 6) r.Fail("operation count " + std::to_string(count) + " exceeds the data");
  if (r.ok()) tx.operations.reserve(count);
  for (std::uint32_t i = 0; i < count && r.ok(); ++i) {
    Operation op;
    op.kind = r.U16();
    op.body = std::string(r.Bytes(kMaxOperationBodySize));
    tx.operations.push_back(std::move(op));
  }
  VELLUM_RETURN_IF_ERROR(r.Finish());
  return tx;
}

merkle::Hash TransactionHash(std::string_view encoded_tx) {
  return merkle::HashTagged(merkle::kTagTransaction, encoded_tx);
}

merkle::Hash TransactionLeafHash(std::string_view encoded_tx) {
  return merkle::HashLeaf(merkle::HashView(TransactionHash(encoded_tx)));
}

std::string EncodeBlockHeader(const BlockHeader& h) {
  ByteWriter w(kBlockHeaderSize);
  w.U16(h.version);
  w.Fixed(std::string_view(reinterpret_cast<const char*>(h.ledger_id.data()), h.ledger_id.size()));
  w.U64(h.height);
  w.Fixed(merkle::HashView(h.prev_hash));
  w.I64(h.timestamp_us);
  w.U64(h.first_tx_seq);
  w.U32(h.tx_count);
  w.Fixed(merkle::HashView(h.tx_root));
  w.Fixed(merkle::HashView(h.state_root));
  return w.Take();
}

Result<BlockHeader> DecodeBlockHeader(std::string_view bytes) {
  ByteReader r(bytes, "block header");
  BlockHeader h;
  h.version = r.U16();
  if (r.ok() && h.version != kBlockFormatVersion) r.Fail("unknown block format version " + std::to_string(h.version));
  const std::string_view id = r.Fixed(kLedgerIdSize);
  if (r.ok()) std::copy(id.begin(), id.end(), h.ledger_id.begin());
  h.height = r.U64();
  const std::string_view prev = r.Fixed(merkle::kHashSize);
  h.timestamp_us = r.I64();
  h.first_tx_seq = r.U64();
  h.tx_count = r.U32();
  const std::string_view tx_root = r.Fixed(merkle::kHashSize);
  const std::string_view state_root = r.Fixed(merkle::kHashSize);
  if (r.ok() && h.tx_count == 0) r.Fail("a block holds at least one transaction");
  if (r.ok() && h.timestamp_us < 0) r.Fail("negative timestamp");
  VELLUM_RETURN_IF_ERROR(r.Finish());
  h.prev_hash = *merkle::HashFromBytes(prev);
  h.tx_root = *merkle::HashFromBytes(tx_root);
  h.state_root = *merkle::HashFromBytes(state_root);
  return h;
}

}  // namespace vellum::journal
