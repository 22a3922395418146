#include "vellum/verifier/verify.h"

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "vellum/testing/temp_dir.h"

namespace vellum::verifier {
namespace {

merkle::MemoryLogTree Tree(int n) {
  merkle::MemoryLogTree tree;
  for (int i = 0; i < n; ++i) tree.Append(merkle::HashLeaf("leaf " + std::to_string(i)));
  return tree;
}

InclusionClaim Inclusion(const merkle::MemoryLogTree& tree, std::uint64_t index) {
  InclusionClaim c;
  c.proof = {index, tree.size(), *merkle::InclusionPath(tree, index, tree.size())};
  c.leaf_hash = merkle::HashLeaf("leaf " + std::to_string(index));
  c.root = tree.Root();
  return c;
}

ConsistencyClaim Consistency(const merkle::MemoryLogTree& tree, std::uint64_t old_size) {
  ConsistencyClaim c;
  c.proof = {old_size, tree.size(), *merkle::ConsistencyPath(tree, old_size, tree.size())};
  c.old_root = *merkle::RootAt(tree, old_size);
  c.new_root = tree.Root();
  return c;
}

TEST_CASE("Log proof JSON round-trips and verifies", "[verifier]") {
  const auto tree = Tree(8);
  const LogProofClaim inc = Inclusion(tree, 5), con = Consistency(tree, 6);
  for (const auto& claim : {inc, con}) {
    auto parsed = ParseLogProof(LogProofToJson(claim));
    REQUIRE(parsed.ok());
    CHECK(LogProofToJson(*parsed) == LogProofToJson(claim));
    CHECK(VerifyLogProof(*parsed).ok());
  }
}

TEST_CASE("Malformed log proofs are InvalidArgument with a reason", "[verifier]") {
  const auto tree = Tree(8);
  const auto good = nlohmann::json::parse(LogProofToJson(Inclusion(tree, 5)));
  auto expect_invalid = [](const std::string& text, const std::string& reason) {
    auto r = ParseLogProof(text);
    INFO(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(r.status().message().find(reason) != std::string::npos);
  };
  expect_invalid("{", "malformed JSON");
  expect_invalid(R"({"type":"inclusion","type":"consistency"})", "duplicate object key");
  expect_invalid("[]", "JSON object");
  expect_invalid(R"({"type":"inclusion"})", "missing field");
  expect_invalid(R"({"type":"bogus"})", "unknown proof type");
  auto extra = good;
  extra["extra"] = 1;
  expect_invalid(extra.dump(), "unknown field 'extra'");
  auto negative = good;
  negative["tree_size"] = -1;
  expect_invalid(negative.dump(), "non-negative integer");
  auto short_hash = good;
  short_hash["root"] = "abcd";
  expect_invalid(short_hash.dump(), "root");
  auto bad_hex = good;
  bad_hex["path"][0] = std::string(64, 'z');
  expect_invalid(bad_hex.dump(), "path[0]");
}

TEST_CASE("Tampered log proofs do not verify", "[verifier]") {
  const auto tree = Tree(13);
  for (std::uint64_t i = 0; i < 13; ++i) {
    auto c = Inclusion(tree, i);
    if (c.proof.path.empty()) continue;
    auto flipped = c;
    flipped.proof.path.back()[0] ^= 1;
    CHECK_FALSE(VerifyLogProof(flipped).ok());
    auto reordered = c;
    if (reordered.proof.path.size() > 1) {
      std::swap(reordered.proof.path[0], reordered.proof.path[1]);
      CHECK_FALSE(VerifyLogProof(reordered).ok());
    }
    auto truncated = c;
    truncated.proof.path.pop_back();
    CHECK_FALSE(VerifyLogProof(truncated).ok());
  }
  for (std::uint64_t m = 1; m < 13; ++m) {
    auto c = Consistency(tree, m);
    c.new_root = Tree(12).Root();
    CHECK_FALSE(VerifyLogProof(c).ok());
  }
}

// ---- The command-line tool ---------------------------------------------------

int Run(const std::string& args) {
  const std::string cmd = std::string(VELLUM_BIN_DIR) + "/vellum-verify " + args + " >/dev/null 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST_CASE("vellum-verify exit codes: 0 verified, 1 not verified, 2 malformed", "[verifier][cli]") {
  testing::TempDir dir;
  const auto tree = Tree(8);
  const std::string good = dir.Sub("good.json"), bad = dir.Sub("bad.json"), junk = dir.Sub("junk.json");
  testing::WriteFile(good, LogProofToJson(Inclusion(tree, 5)));
  auto tampered = Inclusion(tree, 5);
  tampered.proof.path[1][3] ^= 0x40;
  testing::WriteFile(bad, LogProofToJson(tampered));
  testing::WriteFile(junk, "{\"type\":");
  CHECK(Run("log-proof " + good) == 0);
  CHECK(Run("log-proof - < " + good) == 0);
  CHECK(Run("log-proof " + bad) == 1);
  CHECK(Run("log-proof " + junk) == 2);
  CHECK(Run("log-proof " + dir.Sub("missing.json")) == 2);
  CHECK(Run("") == 2);
  CHECK(Run("frobnicate") == 2);
  CHECK(Run("--help") == 0);

  const std::string cons = dir.Sub("cons.json");
  testing::WriteFile(cons, LogProofToJson(Consistency(tree, 3)));
  CHECK(Run("log-proof " + cons) == 0);

  // Checkpoints: the C2SP example log from the shared vectors.
  std::ifstream in(VELLUM_SHARED_DIR "/vectors/tlog-vectors.json");
  const auto vectors = nlohmann::json::parse(in);
  const auto& example = vectors["tlog_tiles_example"];
  const std::string vkey = example["vkey"];
  const std::string note = example["checkpoints"]["15"];
  const std::string cp = dir.Sub("cp"), cp_bad = dir.Sub("cp_bad"), vkey_file = dir.Sub("vkey");
  testing::WriteFile(cp, note);
  std::string altered = note;
  altered[altered.find('\n') + 1] = '7';  // claim another tree size
  testing::WriteFile(cp_bad, altered);
  testing::WriteFile(vkey_file, vkey + "\n");
  CHECK(Run("checkpoint --vkey '" + vkey + "' " + cp) == 0);
  CHECK(Run("checkpoint --vkey " + vkey_file + " " + cp) == 0);
  CHECK(Run("checkpoint --vkey '" + vkey + "' " + cp_bad) == 1);
  CHECK(Run("checkpoint --vkey not-a-key " + cp) == 2);
  CHECK(Run("checkpoint " + cp) == 2);
}

}  // namespace
}  // namespace vellum::verifier
