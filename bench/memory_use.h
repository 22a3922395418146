// Resident memory of a benchmark process, for its report.
#ifndef VELLUM_BENCH_MEMORY_USE_H_
#define VELLUM_BENCH_MEMORY_USE_H_

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

}  // namespace vellum

#endif  // VELLUM_BENCH_MEMORY_USE_H_
