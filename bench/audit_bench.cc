// vellum-bench-audit: how fast vellum-audit replays a ledger (issue 6: at
// least 100,000 transactions/s).
//
// Builds a ledger of --transactions small key-value puts (one put per
// transaction, 32-byte values) in blocks of --block transactions, with a
// signed checkpoint every 100 blocks, under DIR/ledgers/bench (the server's
// layout), then runs the audit in-process --repeat times and prints the
// replay rate. Keys are sequential (an append-mostly ledger) or, with
// --random-keys, uniformly random (every put rewrites its own leaf page).
// Keep the ledger with --keep and time the tool itself:
//   vellum-audit DIR --ledger bench --report OUT
//
// Run: build/bin/vellum-bench-audit [--transactions 1000000] [--block 1000] [--random-keys] [--dir DIR] [--keep]
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>

#include <CLI/CLI.hpp>

#include "vellum/api/ledger_db.h"
#include "vellum/audit/audit.h"
#include "vellum/engines/kv/kv_ops.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace api = vellum::api;
namespace journal = vellum::journal;
namespace kv = vellum::engines::kv;

journal::Transaction Put(std::string key, std::string value) {
  kv::KvOp op{kv::KvOp::Type::kPut, "bench", std::move(key), std::move(value), std::nullopt};
  journal::Transaction tx;
  tx.operations.push_back({kv::KvOpKind(op), kv::EncodeKvOp(op)});
  return tx;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vellum-bench-audit: audit replay throughput"};
  std::uint64_t transactions = 1000000, block = 1000;
  int repeat = 3;
  bool random_keys = false, keep = false, reuse = false;
  std::string dir = (std::filesystem::temp_directory_path() / "vellum-bench-audit").string();
  app.add_option("--transactions", transactions, "Transactions in the ledger (one put each)");
  app.add_option("--block", block, "Transactions per block");
  app.add_option("--repeat", repeat, "Audit runs");
  app.add_option("--dir", dir, "Data directory (the ledger goes to DIR/ledgers/bench)");
  app.add_flag("--random-keys", random_keys, "Random keys instead of sequential ones");
  app.add_flag("--keep", keep, "Keep the ledger");
  app.add_flag("--reuse", reuse, "Audit the ledger already in DIR instead of building one");
  CLI11_PARSE(app, argc, argv);

  const std::string ledger_dir = (std::filesystem::path(dir) / "ledgers" / "bench").string();
  if (!reuse) {
    std::filesystem::remove_all(dir);
    api::LedgerDbOptions options;
    options.journal.max_block_transactions = block;
    options.journal.queue_capacity = 4 * block;
    auto db = api::LedgerDb::Create(ledger_dir, "bench", options);
    if (!db.ok()) {
      std::fprintf(stderr, "create: %s\n", db.status().ToString().c_str());
      return 1;
    }
    std::mt19937_64 rng(7);
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t inflight = 0, failed = 0;
    const auto t0 = Clock::now();
    for (std::uint64_t i = 0; i < transactions; ++i) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return inflight < 2 * block; });
        ++inflight;
      }
      char key[32];
      if (random_keys) std::snprintf(key, sizeof key, "%016llx", static_cast<unsigned long long>(rng()));
      else std::snprintf(key, sizeof key, "k%012llu", static_cast<unsigned long long>(i));
      std::string value(32, 'v');
      for (int k = 0; k < 8; ++k) value[static_cast<size_t>(k)] = static_cast<char>('0' + rng() % 10);
      (*db)->journal().AppendAsync(Put(key, std::move(value)), [&](vellum::Result<journal::Receipt> r) {
        std::lock_guard lock(mu);
        if (!r.ok()) ++failed;
        --inflight;
        cv.notify_all();
      });
      if ((i + 1) % (100 * block) == 0) {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return inflight == 0; });
        (void)(*db)->journal().Checkpoint();
      }
    }
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return inflight == 0; });
    }
    (void)(*db)->journal().Checkpoint();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("built: %llu transactions in %llu blocks (%llu failed) in %.1f s, %s keys\n",
                static_cast<unsigned long long>((*db)->journal().stats().transactions),
                static_cast<unsigned long long>((*db)->journal().size()), static_cast<unsigned long long>(failed), secs,
                random_keys ? "random" : "sequential");
  }

  double best = 0;
  for (int run = 0; run < repeat; ++run) {
    auto report = vellum::audit::RunAudit({.ledger_dir = ledger_dir});
    if (!report.ok()) {
      std::fprintf(stderr, "audit: %s\n", report.status().ToString().c_str());
      return 1;
    }
    const double rate = static_cast<double>(report->counts.transactions) / report->seconds;
    best = std::max(best, rate);
    std::printf("audit run %d: %s, %llu blocks, %llu transactions, %llu pages and %llu values compared, %.2f s: %.0f tx/s\n",
                run + 1, report->clean() ? "clean" : "FINDINGS", static_cast<unsigned long long>(report->counts.blocks),
                static_cast<unsigned long long>(report->counts.transactions),
                static_cast<unsigned long long>(report->counts.pages),
                static_cast<unsigned long long>(report->counts.values), report->seconds, rate);
  }
  std::printf("best: %.0f transactions/s\n", best);
  if (!keep && !reuse) std::filesystem::remove_all(dir);
  return 0;
}
