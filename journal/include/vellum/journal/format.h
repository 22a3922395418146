// Canonical byte encodings of the journal's hashed structures: transactions
// and block headers. The exact layouts are in docs/FORMAT.md, sections
// "Transaction" and "Block header"; change both together.
//
// Invariants:
//   * Encode(Decode(bytes)) == bytes for every accepted input (decoders are
//     strict: no trailing bytes, no out-of-range fields), so a structure has
//     exactly one encoding and one hash.
//   * A transaction's hash is HashTagged("vellum/tx/v1", encoding); its leaf in
//     the block's transaction tree is HashLeaf(transaction hash).
//   * A block's hash is HashLeaf(header encoding): the same bytes are the leaf
//     of the ledger's RFC 9162 log tree.
//
// Thread-safety: pure functions on values.
#ifndef VELLUM_JOURNAL_FORMAT_H_
#define VELLUM_JOURNAL_FORMAT_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/merkle/hasher.h"

namespace vellum::journal {

inline constexpr std::uint16_t kTransactionFormatVersion = 1;
inline constexpr std::uint16_t kBlockFormatVersion = 1;
inline constexpr size_t kLedgerIdSize = 16;
using LedgerId = std::array<std::uint8_t, kLedgerIdSize>;

// Hard limits of the format itself (configurable limits sit below these).
inline constexpr size_t kMaxClientTokenSize = 128;
inline constexpr size_t kMaxOperationBodySize = 8u << 20;
inline constexpr size_t kMaxOperationsPerTransaction = 100000;

// One operation. The journal does not interpret `body`; `kind` tells the
// engine that owns it how to (the engines define their kinds).
struct Operation {
  std::uint16_t kind = 0;
  std::string body;
  friend bool operator==(const Operation&, const Operation&) = default;
};

struct Transaction {
  // Idempotency token chosen by the client; may be empty.
  std::string client_token;
  std::vector<Operation> operations;
  friend bool operator==(const Transaction&, const Transaction&) = default;
};

std::string EncodeTransaction(const Transaction& tx);
// InvalidArgument on anything but a canonical encoding within the hard limits.
Result<Transaction> DecodeTransaction(std::string_view bytes);
merkle::Hash TransactionHash(std::string_view encoded_tx);
// Leaf hash of a transaction in its block's transaction tree.
merkle::Hash TransactionLeafHash(std::string_view encoded_tx);

struct BlockHeader {
  std::uint16_t version = kBlockFormatVersion;
  LedgerId ledger_id{};
  std::uint64_t height = 0;          // 0-based; also the block's leaf index
  merkle::Hash prev_hash{};          // zero for height 0
  std::int64_t timestamp_us = 0;     // commit time, never decreasing
  std::uint64_t first_tx_seq = 0;    // ledger-wide sequence of the first transaction
  std::uint32_t tx_count = 0;        // >= 1
  merkle::Hash tx_root{};            // RFC 9162 root over the transaction leaf hashes
  merkle::Hash state_root{};         // catalog root after the block (zero until views exist)
  friend bool operator==(const BlockHeader&, const BlockHeader&) = default;
};

inline constexpr size_t kBlockHeaderSize = 2 + kLedgerIdSize + 8 + 32 + 8 + 8 + 4 + 32 + 32;

std::string EncodeBlockHeader(const BlockHeader& header);
Result<BlockHeader> DecodeBlockHeader(std::string_view bytes);
inline merkle::Hash BlockHash(std::string_view encoded_header) { return merkle::HashLeaf(encoded_header); }

}  // namespace vellum::journal

#endif  // VELLUM_JOURNAL_FORMAT_H_
