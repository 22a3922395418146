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
#include "vellum/verifier/verify.h"

namespace {

constexpr int kVerified = 0;
constexpr int kNotVerified = 1;
constexpr int kMalformed = 2;
constexpr size_t kMaxInput = 16u << 20;

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
  if (data.size() > kMaxInput) return vellum::InvalidArgument(path + " is larger than 16 MiB");
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
  return kMalformed;
}
