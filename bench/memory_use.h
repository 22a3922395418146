// Resident memory and CPU time of a benchmark process, for its report.
#ifndef VELLUM_BENCH_MEMORY_USE_H_
#define VELLUM_BENCH_MEMORY_USE_H_

#include <sys/resource.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace vellum {

// "VmHWM ... MiB, RssAnon ... MiB, RssFile ... MiB": the peak resident set,
// and the resident heap (RssAnon) apart from file pages mapped by LMDB
// (RssFile: page cache the kernel can reclaim), from /proc/self/status.
inline std::string MemoryUse() {
  std::ifstream status("/proc/self/status");
  std::string line;
  std::string out;
  while (std::getline(status, line)) {
    for (const char* field : {"VmHWM:", "RssAnon:", "RssFile:"}) {
      if (line.rfind(field, 0) != 0) continue;
      std::istringstream in(line.substr(std::strlen(field)));
      double kb = 0;
      in >> kb;
      if (!out.empty()) out += ", ";
      out += std::string(field, std::strlen(field) - 1) + " " + std::to_string(static_cast<long long>(kb / 1024)) + " MiB";
    }
  }
  return out;
}

// User plus system CPU seconds this process (all its threads) has used.
inline double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(ru.ru_utime) + seconds(ru.ru_stime);
}

}  // namespace vellum

#endif  // VELLUM_BENCH_MEMORY_USE_H_
