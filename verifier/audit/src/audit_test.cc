#include "vellum/audit/audit.h"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "vellum/api/ledger_db.h"
#include "vellum/merkle/note.h"
#include "vellum/testing/sample_ledger.h"
#include "vellum/testing/temp_dir.h"

namespace vellum::audit {
namespace {

namespace fs = std::filesystem;

api::LedgerDbOptions TestOptions() {
  api::LedgerDbOptions o;
  o.view_store.flush_every_blocks = 8;  // several durable state records to compare
  o.journal.store.preallocate_bytes = 0;
  return o;
}

struct Built {
  std::uint64_t blocks = 0, transactions = 0, checkpoints = 0;
  std::string vkey;
};

Built Build(const std::string& dir, int rounds, api::LedgerDbOptions options = TestOptions()) {
  auto db = api::LedgerDb::Create(dir, "audit-test", options);
  REQUIRE(db.ok());
  REQUIRE(testing::FillSampleLedger(**db, rounds).ok());
  Built b;
  b.blocks = (*db)->journal().size();
  b.transactions = (*db)->journal().stats().transactions;
  b.vkey = (*db)->journal().vkey();
  auto snap = (*db)->journal().store().Read();
  REQUIRE(snap.ok());
  auto cps = (*snap)->AllCheckpoints();
  REQUIRE(cps.ok());
  b.checkpoints = cps->size();
  return b;
}

std::vector<Finding> Of(const AuditReport& r, std::string_view check) {
  std::vector<Finding> out;
  for (const Finding& f : r.findings) {
    if (f.check == check) out.push_back(f);
  }
  return out;
}

// Runs vellum-audit with `args`; returns its exit code (-1 if it did not exit).
int RunTool(const std::string& args, const std::string& output) {
  const std::string cmd = std::string(VELLUM_BIN_DIR) + "/vellum-audit " + args + " >" + output + " 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_CASE("A clean ledger audits clean, with every count right", "[audit]") {
  testing::TempDir dir;
  const Built built = Build(dir.path(), 12);
  REQUIRE(built.checkpoints == 3);

  auto report = RunAudit({.ledger_dir = dir.path()});
  REQUIRE(report.ok());
  INFO((report->findings.empty() ? "" : report->findings.front().ToString()));
  CHECK(report->clean());
  CHECK(report->complete);
  CHECK(report->ledger == "audit-test");
  CHECK(report->blocks == built.blocks);
  CHECK(report->counts.blocks == built.blocks);
  CHECK(report->counts.transactions == built.transactions);
  CHECK(report->counts.tx_roots == built.blocks);
  CHECK(report->counts.state_roots == built.blocks);
  CHECK(report->counts.checkpoints == built.checkpoints);
  CHECK(report->counts.log_nodes >= built.blocks);
  CHECK(report->counts.records >= 2);
  CHECK(report->counts.pages > 0);
  CHECK(report->counts.values > 0);
  CHECK_FALSE(report->vkey_supplied);
  CHECK(report->vkey == built.vkey);
  // The views: key-value namespaces, the sorted set's two maps, the collection's two.
  CHECK(report->views.size() == 6);
  CHECK_FALSE(report->series.empty());

  // The same through the tool, with the server's data layout.
  testing::TempDir data;
  fs::create_directories(data.Sub("ledgers"));
  fs::rename(dir.path(), data.Sub("ledgers/audit-test"));
  const std::string out = data.Sub("report");
  REQUIRE(RunTool(data.path() + " --ledger audit-test --report " + out, data.Sub("stdout")) == 0);
  const auto json = nlohmann::json::parse(testing::ReadFile(out + ".json"));
  CHECK(json["format"] == "vellum-audit-report/v1");
  CHECK(json["clean"] == true);
  CHECK(json["counts"]["blocks"] == built.blocks);
  CHECK(json["counts"]["transactions"] == built.transactions);
  CHECK(json["counts"]["checkpoints"] == built.checkpoints);
  CHECK(json["findings"].empty());
  CHECK(json["first_bad_block"].is_null());
  CHECK(json["key"]["supplied"] == false);
  const std::string html = testing::ReadFile(out + ".html");
  CHECK(html.find("CLEAN") != std::string::npos);
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);

  // The JSON reads back as the same report.
  auto parsed = ParseReportJson(testing::ReadFile(out + ".json"));
  REQUIRE(parsed.ok());
  CHECK(parsed->counts.blocks == built.blocks);
  CHECK(ReportJson(*parsed) == testing::ReadFile(out + ".json"));
}

TEST_CASE("A server that commits a wrong state root is caught at that block", "[audit][tamper]") {
  testing::TempDir dir;
  api::LedgerDbOptions options = TestOptions();
  options.state_root_hook_for_testing = [](std::uint64_t height, merkle::Hash& root) {
    if (height == 7) root[0] ^= 0x01;
  };
  Build(dir.path(), 6, options);
  auto report = RunAudit({.ledger_dir = dir.path()});
  REQUIRE(report.ok());
  const auto bad = Of(*report, "state_root");
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].subject == "block");
  CHECK(bad[0].position == 7u);
  CHECK(bad[0].ToString().rfind("block 7: state_root expected ", 0) == 0);
  REQUIRE(report->FirstBadBlock() != nullptr);
  CHECK(*report->FirstBadBlock()->position == 7);
  CHECK(report->FirstBadBlock()->check == "state_root");

  const std::string out = dir.Sub("report");
  CHECK(RunTool(dir.path() + " --report " + out, dir.Sub("stdout")) == 1);
  const auto json = nlohmann::json::parse(testing::ReadFile(out + ".json"));
  CHECK(json["clean"] == false);
  CHECK(json["first_bad_block"]["position"] == 7);
  CHECK(json["first_bad_block"]["check"] == "state_root");
  CHECK(testing::ReadFile(dir.Sub("stdout")).find("block 7: state_root") != std::string::npos);
}

TEST_CASE("Incremental audit from a given checkpoint", "[audit]") {
  testing::TempDir dir;
  std::string checkpoint;
  std::uint64_t trusted = 0, blocks = 0;
  {
    auto db = api::LedgerDb::Create(dir.path(), "audit-test", TestOptions());
    REQUIRE(db.ok());
    REQUIRE(testing::FillSampleLedger(**db, 10).ok());
    auto cp = (*db)->journal().Checkpoint();
    REQUIRE(cp.ok());
    checkpoint = *cp;
    trusted = (*db)->journal().size();
    REQUIRE(testing::FillSampleLedger(**db, 5, 10).ok());
    blocks = (*db)->journal().size();
  }
  auto report = RunAudit({.ledger_dir = dir.path(), .from_checkpoint = checkpoint});
  REQUIRE(report.ok());
  INFO((report->findings.empty() ? "" : report->findings.front().ToString()));
  CHECK(report->clean());
  CHECK(report->from_checkpoint == trusted);
  CHECK(report->counts.blocks_trusted == trusted);
  CHECK(report->counts.blocks == blocks - trusted);
  CHECK(report->counts.state_roots >= blocks - trusted);
  CHECK(report->counts.state_roots < blocks);  // started from a durable state, not genesis

  // The full audit reaches the same roots.
  auto full = RunAudit({.ledger_dir = dir.path()});
  REQUIRE(full.ok());
  CHECK(full->clean());
  CHECK(full->log_root == report->log_root);
  CHECK(full->state_root == report->state_root);

  // Through the tool, with the checkpoint in a file.
  testing::WriteFile(dir.Sub("cp.txt"), checkpoint);
  CHECK(RunTool(dir.path() + " --from-checkpoint " + dir.Sub("cp.txt") + " --report " + dir.Sub("r"), dir.Sub("o")) == 0);

  // A checkpoint signed by another key is a finding, and the audit falls back to genesis.
  auto other = merkle::NoteSigner::Generate("audit-test");
  REQUIRE(other.ok());
  auto forged = other->Sign(merkle::FormatCheckpointBody({"audit-test", trusted, merkle::kZeroHash, {}}));
  REQUIRE(forged.ok());
  auto bad = RunAudit({.ledger_dir = dir.path(), .from_checkpoint = *forged});
  REQUIRE(bad.ok());
  CHECK(Of(*bad, "from_checkpoint.signature").size() == 1);
  CHECK(bad->counts.blocks == blocks);
}

TEST_CASE("A server that commits a wrong state root after the checkpoint is caught incrementally", "[audit][tamper]") {
  testing::TempDir dir;
  std::string checkpoint;
  api::LedgerDbOptions options = TestOptions();
  std::uint64_t bad_height = 0;
  options.state_root_hook_for_testing = [&](std::uint64_t height, merkle::Hash& root) {
    if (bad_height != 0 && height == bad_height) root[31] ^= 0x80;
  };
  {
    auto db = api::LedgerDb::Create(dir.path(), "audit-test", options);
    REQUIRE(db.ok());
    REQUIRE(testing::FillSampleLedger(**db, 8).ok());
    checkpoint = *(*db)->journal().Checkpoint();
    bad_height = (*db)->journal().size() + 3;
    REQUIRE(testing::FillSampleLedger(**db, 4, 8).ok());
  }
  auto report = RunAudit({.ledger_dir = dir.path(), .from_checkpoint = checkpoint});
  REQUIRE(report.ok());
  REQUIRE(report->FirstBadBlock() != nullptr);
  CHECK(*report->FirstBadBlock()->position == bad_height);
  CHECK(report->FirstBadBlock()->check == "state_root");
}

TEST_CASE("A pinned verifier key (--vkey): the right one audits clean, a wrong one is a finding", "[audit]") {
  testing::TempDir dir;
  const Built built = Build(dir.path(), 8);
  testing::WriteFile(dir.Sub("vkey.txt"), built.vkey + "\n");

  auto good = RunAudit({.ledger_dir = dir.path(), .vkey = built.vkey});
  REQUIRE(good.ok());
  CHECK(good->clean());
  CHECK(good->vkey_supplied);
  CHECK(RunTool(dir.path() + " --vkey " + dir.Sub("vkey.txt") + " --report " + dir.Sub("r"), dir.Sub("o")) == 0);
  CHECK(nlohmann::json::parse(testing::ReadFile(dir.Sub("r.json")))["key"]["supplied"] == true);

  auto other = merkle::NoteSigner::Generate("audit-test");
  REQUIRE(other.ok());
  auto bad = RunAudit({.ledger_dir = dir.path(), .vkey = other->Vkey()});
  REQUIRE(bad.ok());
  CHECK_FALSE(bad->clean());
  CHECK(Of(*bad, "meta.vkey").size() == 1);
  const auto sigs = Of(*bad, "signature");
  CHECK(sigs.size() == built.checkpoints);
  REQUIRE_FALSE(sigs.empty());
  CHECK(sigs[0].ToString().rfind("checkpoint size " + std::to_string(*sigs[0].position) + ": signature", 0) == 0);
  CHECK(RunTool(dir.path() + " --vkey " + other->Vkey() + " --report " + dir.Sub("r"), dir.Sub("o")) == 1);

  // A malformed key cannot run.
  auto malformed = RunAudit({.ledger_dir = dir.path(), .vkey = std::string("not a key")});
  CHECK(malformed.status().code() == StatusCode::kInvalidArgument);
  CHECK(RunTool(dir.path() + " --vkey 'not a key' --report " + dir.Sub("r"), dir.Sub("o")) == 2);
}

TEST_CASE("vellum-audit cannot run without a ledger or its arguments: exit 2", "[audit]") {
  testing::TempDir dir;
  CHECK(RunTool(dir.Sub("missing") + " --ledger x --report " + dir.Sub("r"), dir.Sub("o")) == 2);
  CHECK(RunTool(dir.path() + " --ledger nope --report " + dir.Sub("r"), dir.Sub("o")) == 2);
  CHECK(RunTool(dir.path() + " --report " + dir.Sub("r"), dir.Sub("o")) == 2);  // not a ledger directory
  CHECK(RunTool(dir.path() + " --ledger x", dir.Sub("o")) == 2);                // no --report
  CHECK(RunTool(dir.path() + " --ledger ../x --report " + dir.Sub("r"), dir.Sub("o")) == 2);
  CHECK(RunAudit({.ledger_dir = dir.path()}).status().code() == StatusCode::kNotFound);
  // An unreadable journal store (not an LMDB file).
  fs::create_directories(dir.Sub("bad/journal"));
  testing::WriteFile(dir.Sub("bad/journal/data.mdb"), std::string(9000, 'x'));
  CHECK(RunTool(dir.Sub("bad") + " --report " + dir.Sub("r"), dir.Sub("o")) == 2);
  CHECK(testing::ReadFile(dir.Sub("o")).find("could not run") != std::string::npos);
}

}  // namespace
}  // namespace vellum::audit
