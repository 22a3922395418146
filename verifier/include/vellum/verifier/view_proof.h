// The chain that ties a view's data to a signed digest (DESIGN.md, "The
// shape in one paragraph"; docs/FORMAT.md, "View proofs"):
//
//   signed checkpoint (tree size n, root R)
//     -> block proof: HashLeaf(header) is leaf `height` of the tree (n, R)
//     -> header.state_root
//     -> catalog proof: the catalog entry of (model, name, part) under that root
//     -> entry.map_root, against which the query's map proof is checked
//        (merkle::VerifyMapGet / VerifyMapRange / VerifyMapSummary).
//
// Pure: links only the journal's formats and merkle.
//
// Thread-safety: pure functions.
#ifndef VELLUM_VERIFIER_VIEW_PROOF_H_
#define VELLUM_VERIFIER_VIEW_PROOF_H_

#include <cstdint>
#include <optional>
#include <string>

#include "vellum/base/status.h"
#include "vellum/journal/format.h"
#include "vellum/journal/proofs.h"
#include "vellum/merkle/catalog.h"
#include "vellum/merkle/map_proof.h"

namespace vellum::verifier {

struct ViewProof {
  journal::BlockProof block;    // the block whose state is read
  std::string catalog_key;      // merkle::CatalogKey(model, name, part)
  merkle::MapProof catalog;     // that key's entry (or absence) in the catalog
};

struct VerifiedView {
  journal::BlockHeader header;
  // nullopt: the map is proven not to exist in that block's state.
  std::optional<merkle::CatalogEntry> entry;
};

// Checks the chain from (tree_size, root) — taken from a verified checkpoint —
// to the map's catalog entry. Errors: InvalidArgument for malformed parts,
// kDataLoss with the failed check otherwise ("inclusion.root",
// "block.height", "map.root" for the catalog, ...).
Result<VerifiedView> VerifyViewProof(const ViewProof& proof, std::uint64_t tree_size, const merkle::Hash& root);

}  // namespace vellum::verifier

#endif  // VELLUM_VERIFIER_VIEW_PROOF_H_
