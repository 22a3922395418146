// Proof bundles: one query's answer with everything a client needs to check
// it without trusting the server (docs/FORMAT.md, "Proof bundles").
//
//   signed checkpoint (tree size n, root R)
//     -> block `height`'s header, included in (n, R)       [one block proof]
//     -> for each map the query read: its catalog entry under the header's
//        state root, and the map proof of the read          [views]
//     -> the query re-evaluated over the proven entries by the engines' pure
//        evaluators; the result must equal the claimed one exactly.
//
// The server builds a bundle (query, proofs) and its answer from the same
// reads of its committed state, encoding the result with the *ResultJson
// functions below, which EvaluateBundle also uses: a client's check
// recomputes exactly what the server wrote (the api and bundle tests check
// that the two agree). It ships the bundle as JSON. `vellum-verify bundle`
// and applications run VerifyBundle.
//
// Query kinds and their JSON (byte strings are base64):
//   kv.get      {namespace, key}
//   kv.get_many {namespace, keys: [key, ...]}   (1 to kMaxGetManyKeys; one view per key)
//   kv.scan     {namespace, lo, hi?, prefix?, limit, reverse}
//   zset.rank   {namespace, set, member}
//   zset.top    {namespace, set, n}
//   zset.range  {namespace, set, min, max, limit}
//   doc.find    {collection, filter, sort_path?, descending, skip, limit?, projection}
//   doc.history {collection, id}          (+ one transaction proof per revision)
//
// Error convention (as verify.h): InvalidArgument = malformed bundle (exit 2
// in vellum-verify); any other code = it does not verify (exit 1), with the
// failed check named ("bundle.result", "checkpoint.root", "inclusion.root", ...).
//
// Thread-safety: pure functions.
#ifndef VELLUM_VERIFIER_BUNDLE_H_
#define VELLUM_VERIFIER_BUNDLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "vellum/base/status.h"
#include "vellum/engines/kv/kv_query.h"
#include "vellum/journal/proofs.h"
#include "vellum/merkle/map_proof.h"
#include "vellum/merkle/note.h"

namespace vellum::verifier {

// The only bundle format version this library reads and writes.
inline constexpr std::uint32_t kBundleVersion = 1;
// Transaction proofs one bundle may carry (one per revision of a history).
inline constexpr size_t kMaxBundleTransactions = 100000;
// Keys one kv.get_many may ask for.
inline constexpr size_t kMaxGetManyKeys = 256;
// Views one bundle may carry: an index-backed find reads one range per $in
// value (at most engines::document::kMaxIndexedInValues) plus one more view.
inline constexpr size_t kMaxBundleViews = 260;
// Bundles larger than this are refused before parsing.
inline constexpr size_t kMaxBundleSize = 256u << 20;

// The proof of one map the query read.
struct BundleView {
  std::string catalog_key;   // merkle::CatalogKey(model, name, part)
  merkle::MapProof catalog;  // the entry (or its absence) under the state root
  merkle::MapProof map;      // the query's read on that map (empty if absent)
};

struct Bundle {
  std::string ledger;          // the checkpoint origin
  std::string checkpoint;      // signed note of the tree the proofs are against
  std::uint64_t tree_size = 0;
  std::uint64_t height = 0;    // the block whose state answered
  nlohmann::json query;        // {"kind": ..., parameters}
  nlohmann::json result;       // what the server answered (set by the server)
  journal::BlockProof block;   // header of `height`, inclusion in the tree
  std::vector<BundleView> views;
  // doc.history only: per revision, oldest first, the journal transaction
  // that wrote it (its inclusion in its block and the block in the tree).
  std::vector<journal::TransactionProof> transactions;
};

// The catalog keys (in order) that a query's views must have. InvalidArgument
// for an unknown kind or malformed parameters.
Result<std::vector<std::string>> BundleCatalogKeys(const nlohmann::json& query);

// The result of the query over the bundle's proofs, taking the block's state
// root from the header (checked against `tree_size`/`root` when given by the
// caller; the server's self-check passes its own tree). Does not look at
// `bundle.result`.
Result<nlohmann::json> EvaluateBundle(const Bundle& bundle, std::uint64_t tree_size, const merkle::Hash& root);

// The `result` object of each query kind (FORMAT.md, "Proof bundles"), one
// encoding for the server's answers and for EvaluateBundle.
nlohmann::json KvGetResultJson(const std::optional<std::string>& value);
nlohmann::json KvScanResultJson(const engines::kv::KvScanResult& scan);
nlohmann::json ZsetRankResultJson(const std::optional<engines::kv::ZsetRank>& rank);
nlohmann::json ZsetMembersResultJson(const std::vector<engines::kv::ZsetMember>& members);

// What a verified bundle proved.
struct VerifiedBundle {
  merkle::Checkpoint checkpoint;  // the trusted tree the answer is in
  std::uint64_t height = 0;
  std::string kind;
  nlohmann::json result;
  size_t result_size = 0;  // entries/documents/members in the result
};

// Full check: the bundle's checkpoint verifies with `verifier` (its origin is
// the bundle's ledger); if `trusted` is given (a checkpoint the client holds,
// already verified), the bundle must be proven against exactly that tree;
// then EvaluateBundle, and the result must equal `bundle.result`.
Result<VerifiedBundle> VerifyBundle(const Bundle& bundle, const merkle::NoteVerifier& verifier,
                                    const std::optional<merkle::Checkpoint>& trusted = std::nullopt);

// JSON text of a bundle (pretty-printed, fields in a fixed order).
std::string BundleToJson(const Bundle& bundle);
// Strict parse: unknown or missing fields, a version other than
// kBundleVersion, bad base64/hex, malformed proofs: InvalidArgument.
Result<Bundle> ParseBundle(std::string_view text);

// Number of result items (entries, members, documents, revisions; 1/0 for a
// get or rank).
size_t BundleResultSize(const nlohmann::json& result);

}  // namespace vellum::verifier

#endif  // VELLUM_VERIFIER_BUNDLE_H_
