#include "vellum/verifier/view_proof.h"

namespace vellum::verifier {

Result<VerifiedView> VerifyViewProof(const ViewProof& proof, std::uint64_t tree_size, const merkle::Hash& root) {
  VerifiedView out;
  VELLUM_ASSIGN_OR_RETURN(out.header, journal::VerifyBlockProof(proof.block, tree_size, root));
  auto entry = merkle::VerifyCatalogEntry(out.header.state_root, proof.catalog, proof.catalog_key);
  if (!entry.ok()) {
    return entry.status().WithContext("catalog of block " + std::to_string(out.header.height));
  }
  out.entry = *entry;
  return out;
}

}  // namespace vellum::verifier
