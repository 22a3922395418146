#include "vellum/journal/proofs.h"

namespace vellum::journal {

Result<BlockHeader> VerifyBlockProof(const BlockProof& proof, std::uint64_t tree_size, const merkle::Hash& root) {
  VELLUM_ASSIGN_OR_RETURN(BlockHeader header, DecodeBlockHeader(proof.header));
  if (proof.inclusion.tree_size != tree_size) {
    return VerificationFailed({"block.tree_size", std::to_string(tree_size), std::to_string(proof.inclusion.tree_size),
                               header.height, tree_size});
  }
  if (proof.inclusion.leaf_index != header.height) {
    return VerificationFailed({"block.height", std::to_string(header.height),
                               std::to_string(proof.inclusion.leaf_index), header.height, tree_size});
  }
  VELLUM_RETURN_IF_ERROR(merkle::VerifyInclusion(header.height, tree_size, BlockHash(proof.header),
                                                 proof.inclusion.path, root)
                             .WithContext("block " + std::to_string(header.height)));
  return header;
}

Result<Transaction> VerifyTransactionProof(const TransactionProof& proof, std::uint64_t tree_size,
                                           const merkle::Hash& root) {
  VELLUM_ASSIGN_OR_RETURN(BlockHeader header, VerifyBlockProof(proof.block, tree_size, root));
  VELLUM_ASSIGN_OR_RETURN(Transaction tx, DecodeTransaction(proof.transaction));
  if (proof.index_in_block >= header.tx_count ||
      proof.tx_seq != header.first_tx_seq + proof.index_in_block) {
    return VerificationFailed({"transaction.position", std::to_string(header.first_tx_seq + proof.index_in_block),
                               std::to_string(proof.tx_seq), proof.index_in_block, header.tx_count});
  }
  VELLUM_RETURN_IF_ERROR(merkle::VerifyInclusion(proof.index_in_block, header.tx_count,
                                                 TransactionLeafHash(proof.transaction), proof.tx_path,
                                                 header.tx_root)
                             .WithContext("transaction " + std::to_string(proof.tx_seq) + " in block " +
                                          std::to_string(header.height)));
  return tx;
}

}  // namespace vellum::journal
