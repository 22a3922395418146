// vellum-verify: checks Vellum proofs and signed checkpoints without trusting
// the server. Exit codes: 0 verified, 1 does not verify (one line naming the
// failed check with expected vs computed values), 2 malformed input or usage.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>

#include "vellum/base/bytes.h"
#include "vellum/merkle/note.h"
#include "vellum/verifier/bundle.h"
#include "vellum/verifier/verify.h"

namespace {

constexpr int kVerified = 0;
constexpr int kNotVerified = 1;
constexpr int kMalformed = 2;
constexpr size_t kMaxInput = vellum::verifier::kMaxBundleSize;

// Reads FILE, or standard input for "-". InvalidArgument if unreadable or too large.
vellum::Result<std::string> ReadInput(const std::string& path) {
  std::ifstream file;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return vellum::InvalidArgument("cannot read " + path);
  }
  std::istream& in = path == "-" ? std::cin : file;
  // Read at most one byte past the limit, so /dev/zero cannot exhaust memory.
  std::string data(kMaxInput + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > kMaxInput) return vellum::InvalidArgument(path + " is larger than " + std::to_string(kMaxInput >> 20) + " MiB");
  return data;
}

// A verifier key given inline, or the path of a file holding one.
vellum::Result<std::string> ReadVkey(const std::string& arg) {
  std::ifstream in(arg);
  if (!in) return arg;
  std::string line;
  std::getline(in, line);
  return line;
}

int Fail(const vellum::Status& status) {
  std::cerr << "vellum-verify: " << status.ToString() << "\n";
  return status.code() == vellum::StatusCode::kInvalidArgument ? kMalformed : kNotVerified;
}

int Malformed(const vellum::Status& status) {
  std::cerr << "vellum-verify: malformed input: " << status.message() << "\n";
  return kMalformed;
}

int NotVerified(const vellum::Status& status) {
  std::cerr << "vellum-verify: NOT VERIFIED: " << status.message() << "\n";
  return kNotVerified;
}

int RunLogProof(const std::string& file) {
  auto text = ReadInput(file);
  if (!text.ok()) return Malformed(text.status());
  auto claim = vellum::verifier::ParseLogProof(*text);
  if (!claim.ok()) return Malformed(claim.status());
  const vellum::Status status = vellum::verifier::VerifyLogProof(*claim);
  if (!status.ok()) return NotVerified(status);
  if (const auto* inc = std::get_if<vellum::verifier::InclusionClaim>(&*claim)) {
    std::cout << "verified: leaf " << inc->proof.leaf_index << " is in the tree of " << inc->proof.tree_size
              << " leaves with root " << vellum::merkle::HashHex(inc->root) << "\n";
  } else {
    const auto& con = std::get<vellum::verifier::ConsistencyClaim>(*claim);
    std::cout << "verified: the tree of " << con.proof.new_size << " leaves (root "
              << vellum::merkle::HashHex(con.new_root) << ") extends the tree of " << con.proof.old_size
              << " leaves (root " << vellum::merkle::HashHex(con.old_root) << ")\n";
  }
  return kVerified;
}

int RunCheckpoint(const std::string& file, const std::string& vkey_arg) {
  auto note = ReadInput(file);
  if (!note.ok()) return Malformed(note.status());
  auto vkey = ReadVkey(vkey_arg);
  if (!vkey.ok()) return Malformed(vkey.status());
  auto cp = vellum::verifier::VerifyCheckpointNote(*note, *vkey);
  if (!cp.ok()) return Fail(cp.status());
  std::cout << "verified checkpoint\n"
            << "origin: " << cp->origin << "\n"
            << "size: " << cp->size << "\n"
            << "root: " << vellum::merkle::HashHex(cp->root) << "\n";
  return kVerified;
}

int RunBundle(const std::string& file, const std::string& cp_file, const std::string& vkey_arg) {
  auto text = ReadInput(file);
  if (!text.ok()) return Malformed(text.status());
  // Exit 2 is for input that is not a proof bundle at all; a file that claims
  // to be one (its marker field is there) but is truncated, of another
  // version or altered does not verify: exit 1.
  const bool claims_bundle = text->find("\"vellum_proof_bundle\"") != std::string::npos;
  auto bundle = vellum::verifier::ParseBundle(*text);
  if (!bundle.ok()) return claims_bundle ? NotVerified(bundle.status()) : Malformed(bundle.status());
  auto vkey = ReadVkey(vkey_arg);
  if (!vkey.ok()) return Malformed(vkey.status());
  auto verifier = vellum::merkle::NoteVerifier::Parse(*vkey);
  if (!verifier.ok()) return Malformed(verifier.status().WithContext("--vkey"));
  std::optional<vellum::merkle::Checkpoint> trusted;
  if (!cp_file.empty()) {
    auto note = ReadInput(cp_file);
    if (!note.ok()) return Malformed(note.status());
    auto cp = vellum::merkle::VerifyCheckpoint(*note, *verifier);
    if (!cp.ok()) return Fail(cp.status().WithContext("--checkpoint"));
    trusted = *cp;
  }
  auto verified = vellum::verifier::VerifyBundle(*bundle, *verifier, trusted);
  if (!verified.ok()) return NotVerified(verified.status());
  std::cout << "verified: " << verified->kind << " " << bundle->query.dump() << "\n"
            << "result: " << verified->result_size << (verified->result_size == 1 ? " item" : " items")
            << (verified->kind == "kv.get" || verified->kind == "zset.rank"
                    ? (verified->result.value("found", false) ? " (present)" : " (proven absent)")
                    : " (proven complete)")
            << "\n"
            << "ledger: " << verified->checkpoint.origin << "\n"
            << "block: " << verified->height << " (state after it)\n"
            << "checkpoint: size " << verified->checkpoint.size << ", root "
            << vellum::merkle::HashHex(verified->checkpoint.root)
            << (trusted.has_value() ? " (the --checkpoint given)" : " (the bundle's own, signed by --vkey)") << "\n";
  return kVerified;
}

int RunConsistency(const std::string& old_file, const std::string& new_file, const std::string& proof_file,
                   const std::string& vkey_arg) {
  auto old_note = ReadInput(old_file);
  if (!old_note.ok()) return Malformed(old_note.status());
  auto new_note = ReadInput(new_file);
  if (!new_note.ok()) return Malformed(new_note.status());
  auto text = ReadInput(proof_file);
  if (!text.ok()) return Malformed(text.status());
  auto claim = vellum::verifier::ParseLogProof(*text);
  if (!claim.ok()) return Malformed(claim.status());
  const auto* consistency = std::get_if<vellum::verifier::ConsistencyClaim>(&*claim);
  if (consistency == nullptr) return Malformed(vellum::InvalidArgument(proof_file + " is not a consistency proof"));
  auto vkey = ReadVkey(vkey_arg);
  if (!vkey.ok()) return Malformed(vkey.status());
  auto cp = vellum::verifier::VerifyCheckpointConsistency(*old_note, *new_note, *consistency, *vkey);
  if (!cp.ok()) return Fail(cp.status());
  std::cout << "verified: " << cp->origin << " at size " << cp->size << " (root " << vellum::merkle::HashHex(cp->root)
            << ") extends size " << consistency->proof.old_size << "\n";
  return kVerified;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vellum-verify: check Vellum proofs and signed checkpoints without trusting the server.\n"
               "Exit codes: 0 verified, 1 does not verify, 2 malformed input or usage error."};
  app.require_subcommand(1);

  std::string log_file;
  auto* log_proof = app.add_subcommand("log-proof", "Check an RFC 9162 inclusion or consistency proof (JSON)");
  log_proof->add_option("FILE", log_file, "Proof file, or - for standard input")->required();

  std::string cp_file, vkey;
  auto* checkpoint = app.add_subcommand("checkpoint", "Check a C2SP signed checkpoint against a verifier key");
  checkpoint->add_option("FILE", cp_file, "Checkpoint note, or - for standard input")->required();
  checkpoint->add_option("--vkey", vkey, "C2SP verifier key (name+keyid+key), or a file holding one")->required();

  std::string bundle_file, bundle_cp, bundle_vkey;
  auto* bundle = app.add_subcommand("bundle", "Check a query's proof bundle (vellum ... --proof-out FILE)");
  bundle->add_option("FILE", bundle_file, "Proof bundle, or - for standard input")->required();
  bundle->add_option("--checkpoint", bundle_cp,
                     "A signed checkpoint you trust; the bundle must be proven against exactly its tree "
                     "(without it, the bundle's own checkpoint is used once its signature verifies)");
  bundle->add_option("--vkey", bundle_vkey, "The ledger's C2SP verifier key, or a file holding one")->required();

  std::string old_cp, new_cp, consistency_proof, consistency_vkey;
  auto* consistency = app.add_subcommand("consistency", "Check that a newer signed checkpoint extends an older one");
  consistency->add_option("--old", old_cp, "The older checkpoint (the one you trusted)")->required();
  consistency->add_option("--new", new_cp, "The newer checkpoint")->required();
  consistency->add_option("--proof", consistency_proof, "Consistency proof between them (JSON, see log-proof)")->required();
  consistency->add_option("--vkey", consistency_vkey, "The ledger's C2SP verifier key, or a file holding one")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kMalformed;
  }
  if (*log_proof) return RunLogProof(log_file);
  if (*checkpoint) return RunCheckpoint(cp_file, vkey);
  if (*bundle) return RunBundle(bundle_file, bundle_cp, bundle_vkey);
  if (*consistency) return RunConsistency(old_cp, new_cp, consistency_proof, consistency_vkey);
  return kMalformed;
}
