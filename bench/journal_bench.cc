// vellum-bench-journal: durable commit throughput and latency of the journal
// (journal/ledger.h), issue 2 "Benchmarks".
//
// For each writer count, a fresh ledger is created in a new directory under
// --dir; that many threads loop Ledger::Append of a single-operation
// transaction of --tx-bytes encoded bytes for --seconds, each timing its own
// calls (call to durable receipt). Prints committed transactions/s, blocks,
// transactions per block, p50/p90/p99/max commit latency and CPU use.
//
// --inflight N > 1 makes each writer a pipelined client that keeps N
// transactions outstanding through AppendAsync (latency is still measured
// from submission to durable receipt). With the default of 1, 64 writers can
// never put more than 64 transactions in one block.
//
// Sync is on (the default, StoreOptions::sync): every receipt is durable.
// --no-sync turns LMDB's fsync off; those rows are labelled NON-DURABLE and
// are a comparison only, never a result.
//
// Run: build-bench/bin/vellum-bench-journal [--writers 1,16,64] [--seconds 5] [--dir /tmp]
//                                           [--inflight 1] [--repeat 1] [--no-sync]
#include <fcntl.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "memory_use.h"
#include "vellum/journal/format.h"
#include "vellum/journal/ledger.h"

namespace {

namespace journal = vellum::journal;
using Clock = std::chrono::steady_clock;

struct Config {
  std::vector<int> writers{1, 16, 64};
  double seconds = 5;
  std::string dir;
  bool no_sync = false;
  size_t tx_bytes = 100;
  int repeat = 1;
  bool keep = false;
  int fsync_probe = 200;
  int inflight = 1;
};

// Encoded size of a transaction with no client token and one operation is
// 16 bytes of framing plus the body (docs/FORMAT.md, "Transaction").
constexpr size_t kTxFraming = 16;

struct RunResult {
  int writers = 0;
  double elapsed_s = 0;
  std::uint64_t committed = 0;
  std::uint64_t errors = 0;
  std::string first_error;
  std::uint64_t blocks = 0;
  std::vector<std::int64_t> latencies_ns;
  double cpu_s = 0;
  std::uint64_t file_bytes = 0;
};

double Percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[i]) / 1e6;  // ms
}

std::string MakeTempDir(const std::string& parent, const std::string& prefix) {
  std::string tmpl = (std::filesystem::path(parent) / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror(("mkdtemp " + tmpl).c_str());
    std::exit(1);
  }
  return tmpl;
}

// Latency of a 4 KiB pwrite + fdatasync in `parent`: the floor under one
// durable block (an LMDB commit fdatasyncs the data file, then writes the meta
// page through an O_DSYNC descriptor: two device flushes per block). Two
// patterns: rewriting the same 64 pages (no metadata change) and appending at
// the end of a growing file (as LMDB's data file grows with an append-only
// journal; ext4 then also commits its journal for the new size and extents).
void ProbeFsync(const std::string& parent, int count) {
  if (count <= 0) return;
  const std::string dir = MakeTempDir(parent, "vellum-bench-fsync");
  std::vector<char> page(4096, 'p');
  for (const bool append : {false, true}) {
    const std::string path = dir + (append ? "/append" : "/overwrite");
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      std::perror("open fsync probe");
      break;
    }
    std::vector<std::int64_t> ns;
    for (int i = 0; i < count; ++i) {
      const off_t offset = static_cast<off_t>(append ? i : i % 64) * 4096;
      const auto t0 = Clock::now();
      if (::pwrite(fd, page.data(), page.size(), offset) != 4096 || ::fdatasync(fd) != 0) {
        std::perror("fsync probe");
        break;
      }
      ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
    }
    ::close(fd);
    std::sort(ns.begin(), ns.end());
    std::printf("fsync probe (%s): %zu x (4 KiB pwrite + fdatasync): p50 %.3f ms, p99 %.3f ms\n",
                append ? "append, file grows" : "overwrite in place", ns.size(), Percentile(ns, 0.50),
                Percentile(ns, 0.99));
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

RunResult RunOnce(const Config& config, int writers) {
  RunResult result;
  result.writers = writers;
  const std::string dir = MakeTempDir(config.dir, "vellum-bench-journal");
  journal::LedgerOptions options;
  options.store.sync = !config.no_sync;
  auto created = journal::Ledger::Create(dir, "bench.vellum.dev/journal", options);
  if (!created.ok()) {
    std::fprintf(stderr, "create ledger in %s: %s\n", dir.c_str(), created.status().ToString().c_str());
    std::exit(1);
  }
  std::unique_ptr<journal::Ledger> ledger = std::move(*created);
  const std::uint64_t blocks_before = ledger->size();

  std::vector<std::vector<std::int64_t>> latencies(static_cast<size_t>(writers));
  std::atomic<std::uint64_t> committed{0}, errors{0};
  std::mutex error_mu;
  std::string first_error;
  const size_t body_size = config.tx_bytes > kTxFraming ? config.tx_bytes - kTxFraming : 1;

  const double cpu_before = vellum::CpuSeconds();
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config.seconds));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(writers));
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      auto& lat = latencies[static_cast<size_t>(w)];
      lat.reserve(1 << 16);
      std::string body(body_size, 'v');
      std::uint64_t n = 0;
      // Distinct content per transaction: writer id and counter up front.
      auto next_tx = [&] {
        const std::uint64_t tag = (static_cast<std::uint64_t>(w) << 40) | n++;
        std::memcpy(body.data(), &tag, std::min(sizeof tag, body.size()));
        journal::Transaction tx;
        tx.operations.push_back({1, body});
        return tx;
      };
      auto record = [&](const vellum::Result<journal::Receipt>& receipt, Clock::time_point t0) {
        const auto t1 = Clock::now();
        if (!receipt.ok()) {
          errors.fetch_add(1, std::memory_order_relaxed);
          std::lock_guard lock(error_mu);
          if (first_error.empty()) first_error = receipt.status().ToString();
          return;
        }
        committed.fetch_add(1, std::memory_order_relaxed);
        lat.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
      };
      if (config.inflight == 1) {
        while (Clock::now() < deadline) {
          journal::Transaction tx = next_tx();
          const auto t0 = Clock::now();
          record(ledger->Append(std::move(tx)), t0);
        }
        return;
      }
      // Pipelined client: up to --inflight transactions outstanding through
      // AppendAsync; the callbacks run on the commit thread.
      std::mutex mu;
      std::condition_variable cv;
      int outstanding = 0;
      while (Clock::now() < deadline) {
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return outstanding < config.inflight; });
          ++outstanding;
        }
        const auto t0 = Clock::now();
        ledger->AppendAsync(next_tx(), [&, t0](vellum::Result<journal::Receipt> receipt) {
          std::lock_guard lock(mu);
          record(receipt, t0);
          --outstanding;
          cv.notify_one();
        });
      }
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return outstanding == 0; });
    });
  }
  for (auto& t : threads) t.join();
  result.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  result.cpu_s = vellum::CpuSeconds() - cpu_before;
  result.committed = committed.load();
  result.errors = errors.load();
  result.first_error = first_error;
  result.blocks = ledger->size() - blocks_before;
  if (ledger->stats().transactions != result.committed) {
    std::fprintf(stderr, "ledger holds %llu transactions, benchmark counted %llu\n",
                 static_cast<unsigned long long>(ledger->stats().transactions),
                 static_cast<unsigned long long>(result.committed));
  }
  if (auto size = ledger->store().FileSize(); size.ok()) result.file_bytes = *size;
  for (auto& l : latencies) result.latencies_ns.insert(result.latencies_ns.end(), l.begin(), l.end());
  std::sort(result.latencies_ns.begin(), result.latencies_ns.end());
  ledger.reset();
  if (!config.keep) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } else {
    std::printf("kept %s\n", dir.c_str());
  }
  return result;
}

void PrintRow(const Config& config, const RunResult& r) {
  const double tps = static_cast<double>(r.committed) / r.elapsed_s;
  const double per_block = r.blocks == 0 ? 0 : static_cast<double>(r.committed) / static_cast<double>(r.blocks);
  std::printf("%-12s %7d %8.2f %10llu %10.0f %8llu %9.1f %8.3f %8.3f %8.3f %8.3f %6.2f %7.1f %6llu\n",
              config.no_sync ? "NON-DURABLE" : "durable", r.writers, r.elapsed_s,
              static_cast<unsigned long long>(r.committed), tps, static_cast<unsigned long long>(r.blocks), per_block,
              Percentile(r.latencies_ns, 0.50), Percentile(r.latencies_ns, 0.90), Percentile(r.latencies_ns, 0.99),
              r.latencies_ns.empty() ? 0.0 : static_cast<double>(r.latencies_ns.back()) / 1e6, r.cpu_s / r.elapsed_s,
              static_cast<double>(r.file_bytes) / static_cast<double>(1 << 20),
              static_cast<unsigned long long>(r.errors));
  if (!r.first_error.empty()) std::printf("  first error: %s\n", r.first_error.c_str());
  std::fflush(stdout);
}

std::string FilesystemType(const std::string& dir) {
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return "unknown";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0xEF53: return "ext2/3/4";
    case 0x01021994: return "tmpfs (NOT a real disk)";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794c7630: return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(fs.f_type));
      return buf;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  std::error_code ec;
  config.dir = std::filesystem::temp_directory_path(ec).string();
  CLI::App app{"vellum-bench-journal: durable group-commit throughput and latency of Ledger::Append"};
  app.add_option("--writers", config.writers, "writer thread counts to run, e.g. 1,16,64")->delimiter(',');
  app.add_option("--seconds", config.seconds, "duration of each run")->check(CLI::PositiveNumber);
  app.add_option("--dir", config.dir, "parent directory of the fresh ledgers (use a real disk, not tmpfs)");
  app.add_flag("--no-sync", config.no_sync, "turn fsync off: NON-DURABLE, for comparison only");
  app.add_option("--tx-bytes", config.tx_bytes, "encoded size of each transaction")->check(CLI::Range(17, 1 << 20));
  app.add_option("--repeat", config.repeat, "runs per writer count")->check(CLI::Range(1, 100));
  app.add_flag("--keep", config.keep, "keep the ledger directories");
  app.add_option("--inflight", config.inflight,
                 "transactions each writer keeps outstanding (1: blocking Append; more: AppendAsync)")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--fsync-probe", config.fsync_probe, "fdatasync samples to take first (0 skips)");
  CLI11_PARSE(app, argc, argv);
  for (int w : config.writers) {
    if (w < 1 || w > 4096) {
      std::fprintf(stderr, "--writers: %d is not in 1..4096\n", w);
      return 2;
    }
  }

  std::printf("vellum-bench-journal: %zu-byte single-operation transactions, %d in flight per writer, %.1f s per run, "
              "%u CPUs, dir %s (%s)\n",
              config.tx_bytes, config.inflight, config.seconds, std::thread::hardware_concurrency(), config.dir.c_str(),
              FilesystemType(config.dir).c_str());
  if (config.no_sync) std::printf("*** --no-sync: fsync is OFF, nothing below is durable; comparison only ***\n");
  ProbeFsync(config.dir, config.fsync_probe);
  std::printf("%-12s %7s %8s %10s %10s %8s %9s %8s %8s %8s %8s %6s %7s %6s\n", "mode", "writers", "secs",
              "committed", "tx/s", "blocks", "tx/block", "p50_ms", "p90_ms", "p99_ms", "max_ms", "cpu", "MiB",
              "errors");
  for (int w : config.writers) {
    for (int i = 0; i < config.repeat; ++i) PrintRow(config, RunOnce(config, w));
  }
  return 0;
}
