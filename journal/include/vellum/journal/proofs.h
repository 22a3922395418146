// Journal proofs and their pure verification (docs/FORMAT.md, "Journal
// proofs"): a block's inclusion in a checkpoint and a transaction's inclusion
// in a block. Pure: no storage, so vellum-verify links it.
//
// Trust chain: a verified checkpoint (size n, root R) -> block inclusion proof
// (HashLeaf(header) is leaf `height` of the tree of n leaves with root R) ->
// the header's tx_root -> transaction inclusion proof
// (TransactionLeafHash(tx) is leaf `index` of the block's transaction tree).
//
// Thread-safety: pure functions on values.
#ifndef VELLUM_JOURNAL_PROOFS_H_
#define VELLUM_JOURNAL_PROOFS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/journal/format.h"
#include "vellum/merkle/log_tree.h"

namespace vellum::journal {

struct BlockProof {
  std::string header;              // encoded block header
  merkle::InclusionProof inclusion;  // leaf_index == header height
};

struct TransactionProof {
  std::string transaction;         // encoded transaction
  std::uint64_t tx_seq = 0;
  std::uint32_t index_in_block = 0;
  std::vector<merkle::Hash> tx_path;  // inclusion in the block's transaction tree
  BlockProof block;
};

// Checks `proof` against a trusted (tree size, root). Returns the decoded
// header. Errors: InvalidArgument for a malformed header, kDataLoss with
// evidence ("block.height", "inclusion.root", ...) for a failed check.
Result<BlockHeader> VerifyBlockProof(const BlockProof& proof, std::uint64_t tree_size, const merkle::Hash& root);

// Checks a transaction proof against a trusted (tree size, root) and returns
// the decoded transaction.
Result<Transaction> VerifyTransactionProof(const TransactionProof& proof, std::uint64_t tree_size,
                                           const merkle::Hash& root);

}  // namespace vellum::journal

#endif  // VELLUM_JOURNAL_PROOFS_H_
