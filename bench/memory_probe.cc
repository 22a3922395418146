// vellum-bench-memory-probe: what fresh memory costs on this machine.
//
// The ledger benchmarks' CPU per put grows as a run's memory grows
// (docs/BENCHMARKS.md section 5, run I). This probe measures the machine
// alone, without Vellum:
//   anon:  touches --anon-mib of new anonymous memory, one byte per 4 KiB
//          page, in chunks of --chunk-mib, and prints the cost per page of
//          each chunk (the kernel's fault and zeroing, and whatever the
//          hypervisor adds the first time the guest uses a page);
//   file:  appends --file-mib to a new file in DIR in rounds of --chunk-mib
//          (1 MiB writes, fdatasync per round) and prints each round's
//          write rate; with --drop each synced round's pages are also
//          dropped from the page cache (posix_fadvise DONTNEED).
//
// Run: build/bin/vellum-bench-memory-probe [--anon-mib 8192] [--file-mib 8000] [--dir /tmp] [--drop]
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kPage = 4096;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int ProbeAnon(size_t total_mib, size_t chunk_mib) {
  std::vector<std::pair<void*, size_t>> held;  // kept until the end: the footprint only grows
  std::printf("anon: ns per new 4 KiB page, per %zu MiB chunk:", chunk_mib);
  for (size_t done = 0; done < total_mib; done += chunk_mib) {
    const size_t bytes = chunk_mib * kMiB;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      return 1;
    }
    held.emplace_back(p, bytes);
    auto* bytes_p = static_cast<volatile char*>(p);
    const auto start = Clock::now();
    for (size_t i = 0; i < bytes; i += kPage) bytes_p[i] = 1;
    std::printf(" %.0f", Since(start) / static_cast<double>(bytes / kPage) * 1e9);
    std::fflush(stdout);
  }
  std::printf("\n");
  for (auto [p, bytes] : held) munmap(p, bytes);
  return 0;
}

int ProbeFile(const std::string& dir, size_t total_mib, size_t chunk_mib, bool drop) {
  const std::string path = (std::filesystem::path(dir) / "vellum-memory-probe.dat").string();
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    return 1;
  }
  std::vector<char> buffer(kMiB, 'v');
  std::printf("file%s: GB/s written per %zu MiB round:", drop ? " (pages dropped after each sync)" : "", chunk_mib);
  off_t offset = 0;
  int rc = 0;
  for (size_t done = 0; done < total_mib && rc == 0; done += chunk_mib) {
    const auto start = Clock::now();
    for (size_t i = 0; i < chunk_mib; ++i) {
      if (write(fd, buffer.data(), buffer.size()) != static_cast<ssize_t>(buffer.size())) {
        std::perror("write");
        rc = 1;
        break;
      }
    }
    const double s = Since(start);
    if (rc == 0 && fdatasync(fd) != 0) {
      std::perror("fdatasync");
      rc = 1;
    }
    const auto round = static_cast<off_t>(chunk_mib * kMiB);
    if (drop) posix_fadvise(fd, offset, round, POSIX_FADV_DONTNEED);
    offset += round;
    std::printf(" %.2f", static_cast<double>(chunk_mib * kMiB) / s / 1e9);
    std::fflush(stdout);
  }
  std::printf("\n");
  close(fd);
  std::filesystem::remove(path);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vellum-bench-memory-probe: the cost of fresh anonymous memory and of page cache growth"};
  size_t anon_mib = 8192, file_mib = 8000, chunk_mib = 256;
  std::string dir = std::filesystem::temp_directory_path().string();
  bool drop = false;
  app.add_option("--anon-mib", anon_mib, "anonymous memory to touch (0: skip)")->capture_default_str();
  app.add_option("--file-mib", file_mib, "bytes to append to a file (0: skip)")->capture_default_str();
  app.add_option("--chunk-mib", chunk_mib, "chunk (anon) and round (file) size")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--dir", dir, "directory for the file probe (use the ledger's disk)")->capture_default_str();
  app.add_flag("--drop", drop, "drop each synced round from the page cache");
  CLI11_PARSE(app, argc, argv);
  if (anon_mib > 0 && ProbeAnon(anon_mib, chunk_mib) != 0) return 1;
  if (file_mib > 0 && ProbeFile(dir, file_mib, chunk_mib, drop) != 0) return 1;
  return 0;
}
