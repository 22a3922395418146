// The HTML audit report opened in headless Chromium (Debian's `chromium`,
// installed by scripts/deps.sh): it must render to a PNG and its DOM must
// hold the ledger summary and the first bad block. Skipped (with a warning)
// only when /usr/bin/chromium is absent.
//
// VELLUM_AUDIT_SCREENSHOT=PATH also copies the screenshot there (that is how
// docs/audit-report.png is made).
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include <catch2/catch.hpp>

#include "vellum/api/ledger_db.h"
#include "vellum/testing/sample_ledger.h"
#include "vellum/testing/temp_dir.h"

namespace vellum {
namespace {

namespace fs = std::filesystem;

constexpr const char* kChromium = "/usr/bin/chromium";

int Run(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Headless Chromium with a fresh profile, no network services.
std::string Chromium(const testing::TempDir& tmp, const std::string& profile, const std::string& args) {
  return std::string("timeout 180 ") + kChromium +
         " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
         " --disable-component-update --disable-sync --user-data-dir=" + tmp.Sub(profile) + " " + args;
}

TEST_CASE("The HTML report renders in headless Chromium with its summary", "[audit][report]") {
  if (!fs::exists(kChromium)) {
    WARN("skipped: " << kChromium << " is not installed (scripts/deps.sh installs it)");
    return;
  }
  testing::TempDir tmp;
  const std::string data = tmp.Sub("data");
  const std::string ledger_dir = data + "/ledgers/shop";
  fs::create_directories(data + "/ledgers");
  {
    api::LedgerDbOptions options;
    // A server that commits one wrong state root, so the report has a first bad block.
    options.state_root_hook_for_testing = [](std::uint64_t height, merkle::Hash& root) {
      if (height == 97) root[5] ^= 0x10;
    };
    auto db = api::LedgerDb::Create(ledger_dir, "shop", options);
    REQUIRE(db.ok());
    REQUIRE(testing::FillSampleLedger(**db, 40, 0, 8, 12).ok());
  }
  const std::string out = tmp.Sub("report");
  REQUIRE(Run(std::string(VELLUM_BIN_DIR) + "/vellum-audit " + data + " --ledger shop --report " + out + " >" +
              tmp.Sub("audit.out") + " 2>&1") == 1);

  const std::string png = tmp.Sub("report.png");
  REQUIRE(Run(Chromium(tmp, "profile1", "--screenshot=" + png + " --window-size=1200,1600 file://" + out + ".html") +
              " >" + tmp.Sub("chromium.out") + " 2>&1") == 0);
  const std::string image = testing::ReadFile(png);
  REQUIRE(image.size() > 10000);
  CHECK(image.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  if (const char* keep = std::getenv("VELLUM_AUDIT_SCREENSHOT")) fs::copy_file(png, keep, fs::copy_options::overwrite_existing);

  REQUIRE(Run(Chromium(tmp, "profile2", "--dump-dom file://" + out + ".html") + " >" + tmp.Sub("dom.html") + " 2>" +
              tmp.Sub("chromium2.out")) == 0);
  const std::string dom = testing::ReadFile(tmp.Sub("dom.html"));
  CHECK(dom.find("Ledger summary") != std::string::npos);
  CHECK(dom.find("<td>shop</td>") != std::string::npos);
  CHECK(dom.find("What was checked") != std::string::npos);
  CHECK(dom.find("First bad block") != std::string::npos);
  CHECK(dom.find("<td>97</td>") != std::string::npos);
  CHECK(dom.find("<code>state_root</code>") != std::string::npos);
  CHECK(dom.find("Transactions per block over time") != std::string::npos);
  CHECK(dom.find("<svg") != std::string::npos);
}

}  // namespace
}  // namespace vellum
