// vellum-bench-views: durable write throughput of a ledger with its views
// (api/ledger_db.h), issue 3 "Benchmarks".
//
// Loads --keys random 16..32-byte keys with 100-byte values into one map
// (transactions of --ops-per-tx puts, several in flight so blocks fill), then
// measures blocks of --block-keys random puts (half updates of existing keys,
// half new keys): committed puts/s with the journal synced and the map pages
// flushed lazily in the background, p50/p99 block commit latency, and the
// storage bytes per update (journal + views, all versions kept), and the
// process's CPU time per put. One phase per --phases entry (default 1,4):
// that many transactions in flight, kept in flight for the whole phase
// (blocks take what is queued, or one transaction each with
// --max-block-transactions 1: then every block is --block-keys puts and the
// next is applied while one is synced).
//
// Run: build/bin/vellum-bench-views [--keys 1000000] [--seconds 10] [--dir DIR] [--flush-every-pages N]
//      [--max-block-transactions N] [--phases 1,4,16]
#include <algorithm>
#include <condition_variable>
#include <functional>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "memory_use.h"
#include "vellum/api/ledger_db.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace api = vellum::api;
namespace indexes = vellum::indexes;
namespace journal = vellum::journal;

const indexes::MapId kMap{"kv", "bench", ""};
const indexes::MapSpec kSpec{vellum::merkle::MapKind::kPlain, vellum::merkle::kZeroHash};

std::string RandomKey(std::mt19937_64& rng) {
  std::string key(16 + rng() % 17, '\0');
  for (auto& c : key) c = static_cast<char>('a' + rng() % 26);
  return key;
}

journal::Transaction PutTx(std::mt19937_64& rng, size_t ops, std::vector<std::string>* keys, bool updates) {
  journal::Transaction tx;
  tx.operations.reserve(ops);
  std::string value(100, 'v');
  for (size_t i = 0; i < ops; ++i) {
    std::string key = (updates && !keys->empty() && rng() % 2 == 0) ? (*keys)[rng() % keys->size()] : RandomKey(rng);
    if (!updates) keys->push_back(key);
    for (int k = 0; k < 8; ++k) value[static_cast<size_t>(k)] = static_cast<char>('0' + rng() % 10);
    indexes::MapOp op{kMap, kSpec, indexes::MapMutation::Put(std::move(key), value)};
    tx.operations.push_back({indexes::MapOpKind(op), indexes::EncodeMapOp(op)});
  }
  return tx;
}

// Submits transactions from `next` with up to `inflight` outstanding until
// `more(submitted)` is false, then waits for all; returns per-tx latencies (µs).
std::vector<double> Run(api::LedgerDb& db, size_t inflight, const std::function<bool(size_t)>& more,
                        const std::function<journal::Transaction()>& next) {
  std::mutex mu;
  std::condition_variable cv;
  size_t outstanding = 0, failed = 0;
  std::vector<double> latencies;
  for (size_t i = 0; more(i); ++i) {
    journal::Transaction tx = next();
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return outstanding < inflight; });
      ++outstanding;
    }
    const auto start = Clock::now();
    db.journal().AppendAsync(std::move(tx), [&, start](vellum::Result<journal::Receipt> r) {
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      std::lock_guard lock(mu);
      if (!r.ok()) {
        if (failed++ == 0) std::fprintf(stderr, "append failed: %s\n", r.status().ToString().c_str());
      }
      latencies.push_back(us);
      --outstanding;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return outstanding == 0; });
  if (failed > 0) std::fprintf(stderr, "%zu transactions failed\n", failed);
  return latencies;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Bytes LMDB uses in the journal (not its preallocated headroom).
std::uint64_t JournalBytes(api::LedgerDb& db) {
  auto size = db.journal().store().FileSize();
  return size.ok() ? *size : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vellum-bench-views: durable puts/s of a ledger with its authenticated views"};
  std::uint64_t keys = 1000000;
  double seconds = 10;
  std::string dir = (std::filesystem::temp_directory_path() / "vellum-bench-views").string();
  size_t block_keys = 1000;
  size_t ops_per_tx = 100;
  size_t inflight = 64;
  app.add_option("--keys", keys, "keys loaded before measuring")->capture_default_str();
  app.add_option("--seconds", seconds, "measuring time")->capture_default_str();
  app.add_option("--dir", dir, "ledger directory (removed first; use a real disk)")->capture_default_str();
  app.add_option("--block-keys", block_keys, "puts per measured transaction (one block each when alone)")->capture_default_str();
  app.add_option("--ops-per-tx", ops_per_tx, "puts per load transaction")->capture_default_str();
  app.add_option("--inflight", inflight, "transactions in flight while loading")->capture_default_str();
  std::vector<size_t> phases{1, 4};
  app.add_option("--phases", phases, "one measured phase per entry: transactions of --block-keys puts in flight")
      ->delimiter(',')
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  api::LedgerDbOptions options;
  app.add_option("--flush-every-pages", options.view_store.flush_every_pages,
                 "unflushed map pages that start a background flush of the views")
      ->capture_default_str();
  app.add_option("--page-cache-entries", options.view_store.page_cache_entries,
                 "decoded flushed map pages the view store keeps in memory")
      ->capture_default_str();
  app.add_option("--max-block-transactions", options.journal.max_block_transactions,
                 "transactions a block may take (also while loading)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--page-items", options.views.max_page_items,
                 "max items per map page (the format's M; even, 4..256; changes every root)")
      ->check(CLI::Range(std::size_t{4}, std::size_t{256}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::filesystem::remove_all(dir);
  auto db = api::LedgerDb::Create(dir, "bench", options);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    return 1;
  }
  std::mt19937_64 rng(1);
  std::vector<std::string> loaded;
  loaded.reserve(keys);

  auto t0 = Clock::now();
  const size_t load_txs = (keys + ops_per_tx - 1) / ops_per_tx;
  Run(**db, inflight, [&](size_t i) { return i < load_txs; }, [&] { return PutTx(rng, ops_per_tx, &loaded, false); });
  const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::uint64_t load_blocks = (*db)->journal().size();
  std::printf("load: %llu keys in %.1f s = %.0f puts/s durable (%llu blocks)\n", static_cast<unsigned long long>(loaded.size()),
              load_s, static_cast<double>(loaded.size()) / load_s, static_cast<unsigned long long>(load_blocks));

  // Measured phases: transactions of block_keys puts, `phase_inflight` of
  // them outstanding (1: one per block; more: blocks take what is queued).
  for (size_t phase_inflight : phases) {
    const std::uint64_t blocks_before = (*db)->journal().size();
    const journal::LedgerStats ledger_before = (*db)->journal().stats();
    const auto views_before = (*db)->view_store().stats();
    const std::uint64_t bytes_before = JournalBytes(**db) + views_before.file_bytes;
    const double cpu_before = vellum::CpuSeconds();
    const auto start = Clock::now();
    const std::vector<double> lat = Run(
        **db, phase_inflight,
        [&](size_t) { return std::chrono::duration<double>(Clock::now() - start).count() < seconds; },
        [&] { return PutTx(rng, block_keys, &loaded, true); });
    const size_t txs = lat.size();
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu_s = vellum::CpuSeconds() - cpu_before;
    if (!(*db)->view_store().Flush().ok()) std::fprintf(stderr, "flush failed\n");
    const auto views_after = (*db)->view_store().stats();
    const std::uint64_t bytes_after = JournalBytes(**db) + views_after.file_bytes;
    const double puts = static_cast<double>(txs * block_keys);
    std::printf("blocks of %zu random puts at %zu keys, %zu tx in flight: %.0f puts/s durable, %.1f tx/block, "
                "commit p50 %.2f ms p99 %.2f ms, storage %.0f bytes/update (journal + views file), "
                "%.0f bytes/update written by view flushes\n",
                block_keys, loaded.size(), phase_inflight, puts / s,
                static_cast<double>(txs) / static_cast<double>((*db)->journal().size() - blocks_before),
                Percentile(lat, 0.5) / 1000, Percentile(lat, 0.99) / 1000,
                static_cast<double>(bytes_after - bytes_before) / puts,
                static_cast<double>(views_after.flushed_bytes - views_before.flushed_bytes) / puts);
    // Where the commit and writer threads' time went, per block.
    const journal::LedgerStats ledger_after = (*db)->journal().stats();
    const double blocks = static_cast<double>(std::max<std::uint64_t>(1, ledger_after.committed_blocks - ledger_before.committed_blocks));
    auto ms_per_block = [&](std::uint64_t after, std::uint64_t before) { return static_cast<double>(after - before) / blocks / 1e6; };
    std::printf("  per block: views apply %.2f ms (commit thread), journal write and sync %.2f ms (writer thread, "
                "overlapping the next apply); the oldest transaction waited %.2f ms for the commit thread\n"
                "  CPU: %.1f us per put, %.2f cores busy (all threads of this process, load generator included)\n",
                ms_per_block(ledger_after.apply_ns, ledger_before.apply_ns),
                ms_per_block(ledger_after.store_ns, ledger_before.store_ns),
                ms_per_block(ledger_after.queue_wait_ns, ledger_before.queue_wait_ns), cpu_s / puts * 1e6, cpu_s / s);
  }
  const auto st = (*db)->view_store().stats();
  std::printf("views: %llu pages (%llu dropped: no flushed state reached them), %llu values (%llu dropped), "
              "%llu flushes, %.1f MiB views file; %s\n",
              static_cast<unsigned long long>(st.pages), static_cast<unsigned long long>(st.dropped_pages),
              static_cast<unsigned long long>(st.values), static_cast<unsigned long long>(st.dropped_values),
              static_cast<unsigned long long>(st.flushes), static_cast<double>(st.file_bytes) / (1 << 20),
              vellum::MemoryUse().c_str());
  db->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
