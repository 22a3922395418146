// Embedding the verifier: an application that received a query answer from
// vellumd (a proof bundle, e.g. from `vellum ... --proof-out FILE` or the
// `bundle` field of any query response) checks it against the ledger's
// verifier key and the last checkpoint it trusts, and uses the result only
// if it verifies. Links libvellum_verify alone: no server code, no LMDB, no
// gRPC.
//
//   verify_bundle_example BUNDLE.json VKEY [TRUSTED_CHECKPOINT]
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>

#include "vellum/merkle/note.h"
#include "vellum/verifier/bundle.h"

namespace {

std::string Slurp(const char* path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::cerr << "usage: " << argv[0] << " BUNDLE.json VKEY [TRUSTED_CHECKPOINT]\n";
    return 2;
  }
  // 1. The ledger's key, obtained out of band (ledger describe, a config file).
  auto key = vellum::merkle::NoteVerifier::Parse(argv[2]);
  if (!key.ok()) {
    std::cerr << "bad verifier key: " << key.status().ToString() << "\n";
    return 2;
  }
  // 2. Optionally, the checkpoint this client trusted last: the answer must be
  //    proven against exactly that tree (keep checkpoints moving forward with
  //    verifier::VerifyCheckpointConsistency).
  std::optional<vellum::merkle::Checkpoint> trusted;
  if (argc == 4) {
    auto cp = vellum::merkle::VerifyCheckpoint(Slurp(argv[3]), *key);
    if (!cp.ok()) {
      std::cerr << "trusted checkpoint does not verify: " << cp.status().ToString() << "\n";
      return 1;
    }
    trusted = *cp;
  }
  // 3. Parse and verify. Parse errors mean a malformed bundle; any other
  //    failure names the check that failed.
  auto bundle = vellum::verifier::ParseBundle(Slurp(argv[1]));
  if (!bundle.ok()) {
    std::cerr << "not a proof bundle: " << bundle.status().ToString() << "\n";
    return 2;
  }
  auto verified = vellum::verifier::VerifyBundle(*bundle, *key, trusted);
  if (!verified.ok()) {
    std::cerr << "does not verify: " << verified.status().ToString() << "\n";
    return 1;
  }
  // 4. Only now use the answer: it is what the ledger committed at that block.
  std::cout << verified->kind << " at block " << verified->height << " of tree " << verified->checkpoint.size << ": "
            << verified->result.dump() << "\n";
  return 0;
}
