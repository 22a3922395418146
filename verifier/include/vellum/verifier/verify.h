// libvellum_verify: client-side checks that need nothing from the server but
// its answers and a verifier key. Links base, merkle and the journal's pure
// formats only — never LMDB, gRPC or server code (tests/deps_check.sh).
//
// Formats (docs/FORMAT.md, "Proof files"):
//   {"type":"inclusion","tree_size":8,"leaf_index":5,"leaf_hash":"<hex>","root":"<hex>","path":["<hex>",...]}
//   {"type":"consistency","old_size":6,"new_size":8,"old_root":"<hex>","new_root":"<hex>","path":[...]}
// Hashes are 64 lowercase or uppercase hex digits (32 bytes); sizes are JSON
// integers in [0, 2^64). Unknown fields are rejected, so a proof file means
// one thing only.
//
// Error convention of every function here: InvalidArgument = the input is
// malformed (exit code 2 in vellum-verify); kDataLoss with a
// VerificationError, or any other code = it does not verify (exit code 1).
//
// Thread-safety: pure functions.
#ifndef VELLUM_VERIFIER_VERIFY_H_
#define VELLUM_VERIFIER_VERIFY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "vellum/base/status.h"
#include "vellum/merkle/hasher.h"
#include "vellum/merkle/log_tree.h"
#include "vellum/merkle/note.h"

namespace vellum::verifier {

struct InclusionClaim {
  merkle::InclusionProof proof;
  merkle::Hash leaf_hash{};
  merkle::Hash root{};
};

struct ConsistencyClaim {
  merkle::ConsistencyProof proof;
  merkle::Hash old_root{};
  merkle::Hash new_root{};
};

using LogProofClaim = std::variant<InclusionClaim, ConsistencyClaim>;

// Parses a log-proof JSON document. InvalidArgument with the position and
// reason for malformed JSON, a missing/unknown field, a bad hash.
Result<LogProofClaim> ParseLogProof(std::string_view json_text);
// The JSON document of a claim (the format above), pretty-printed.
std::string LogProofToJson(const LogProofClaim& claim);

// Verifies a parsed claim (RFC 9162 §2.1.3.2 / §2.1.4.2).
Status VerifyLogProof(const LogProofClaim& claim);

// Parses `vkey` (C2SP verifier key) and verifies the checkpoint note with it.
// InvalidArgument for a malformed key or note; kDataLoss for a bad signature
// or an origin that is not the key's name.
Result<merkle::Checkpoint> VerifyCheckpointNote(std::string_view note, std::string_view vkey);

// Checks that the checkpoint `new_note` extends `old_note`: both verify with
// `vkey` and have the same origin, and `proof` is a consistency proof between
// exactly their sizes and roots (a client runs this whenever it sees a new
// digest, keeping the last one it trusted). Equal sizes need equal roots and
// no proof. InvalidArgument for malformed input; kDataLoss naming the check
// ("consistency.old_root", "checkpoint.origin", ...) otherwise. Returns the
// newer checkpoint.
Result<merkle::Checkpoint> VerifyCheckpointConsistency(std::string_view old_note, std::string_view new_note,
                                                       const ConsistencyClaim& proof, std::string_view vkey);

}  // namespace vellum::verifier

#endif  // VELLUM_VERIFIER_VERIFY_H_
