// Test support: a fresh temporary directory removed when the object dies
// (kept when VELLUM_KEEP_TEST_DIRS is set, for debugging).
#ifndef VELLUM_TESTING_TEMP_DIR_H_
#define VELLUM_TESTING_TEMP_DIR_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace vellum::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "vellum-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    if (std::getenv("VELLUM_KEEP_TEST_DIRS") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// Flips one bit `offset` bytes into every occurrence of `needle` in the file
// at `path` (LMDB keeps stale copies of pages, so the live one may not be the
// first). Returns the number of occurrences changed.
inline int FlipByteOf(const std::string& path, const std::string& needle, size_t offset) {
  std::string data = ReadFile(path);
  int count = 0;
  for (size_t at = data.find(needle); at != std::string::npos; at = data.find(needle, at + needle.size())) {
    data[at + offset] = static_cast<char>(data[at + offset] ^ 0x01);
    ++count;
  }
  if (count > 0) WriteFile(path, data);
  return count;
}

}  // namespace vellum::testing

#endif  // VELLUM_TESTING_TEMP_DIR_H_
