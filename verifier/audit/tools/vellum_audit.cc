// vellum-audit: replays a ledger's journal, recomputes every hash, tree and
// root, and writes OUT.json and OUT.html (README "Auditing a ledger").
//
//   vellum-audit DATA_DIR --ledger NAME [--from-checkpoint CP] [--vkey VKEY] --report OUT
//
// Exit codes: 0 every check passed; 1 findings (including a store so corrupt
// that reading it crashed the reader); 2 could not run (usage, no such
// ledger, a store LMDB refuses to open).
//
// LMDB trusts its pages: some corruptions make it read out of bounds rather
// than return MDB_CORRUPTED. So the audit runs in a child process that
// streams its findings and progress to this one over a pipe; if the child
// dies, this process still writes a report naming where it died.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "vellum/audit/audit.h"
#include "vellum/journal/ledger.h"

namespace {

using vellum::audit::AuditReport;
using vellum::audit::Finding;

constexpr int kClean = 0;
constexpr int kFindings = 1;
constexpr int kCouldNotRun = 2;

int CouldNotRun(const std::string& message) {
  std::cerr << "vellum-audit: could not run: " << message << "\n";
  return kCouldNotRun;
}

std::optional<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string data(1 << 20, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

// ---- Events from the audit child: "<type> <length>\n<payload>" ----------------

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

void Send(int fd, char type, const std::string& payload) {
  (void)WriteAll(fd, std::string(1, type) + " " + std::to_string(payload.size()) + "\n" + payload);
}

class EventReader {
 public:
  explicit EventReader(int fd) : fd_(fd) {}
  // Next event, or nullopt at end of stream.
  std::optional<std::pair<char, std::string>> Next() {
    std::string header;
    char ch;
    while (true) {
      if (!ReadByte(ch)) return std::nullopt;
      if (ch == '\n') break;
      header += ch;
      if (header.size() > 32) return std::nullopt;
    }
    if (header.size() < 3) return std::nullopt;
    const size_t length = std::strtoull(header.c_str() + 2, nullptr, 10);
    std::string payload;
    payload.reserve(length);
    while (payload.size() < length) {
      if (!ReadByte(ch)) return std::nullopt;
      payload += ch;
    }
    return std::make_pair(header[0], std::move(payload));
  }

 private:
  bool ReadByte(char& ch) {
    if (pos_ == len_) {
      ssize_t n;
      do n = ::read(fd_, buf_, sizeof buf_);
      while (n < 0 && errno == EINTR);
      if (n <= 0) return false;
      pos_ = 0;
      len_ = static_cast<size_t>(n);
    }
    ch = buf_[pos_++];
    return true;
  }
  int fd_;
  char buf_[65536];
  size_t pos_ = 0, len_ = 0;
};

// ---- Output ---------------------------------------------------------------------

bool WriteReport(const AuditReport& report, const std::string& out) {
  bool ok = true;
  for (const auto& [suffix, text] : {std::pair<std::string, std::string>{".json", vellum::audit::ReportJson(report)},
                                     {".html", vellum::audit::ReportHtml(report)}}) {
    std::ofstream f(out + suffix, std::ios::binary | std::ios::trunc);
    f << text;
    f.close();
    if (!f) {
      std::cerr << "vellum-audit: cannot write " << out << suffix << "\n";
      ok = false;
    }
  }
  return ok;
}

void PrintSummary(const AuditReport& r, const std::string& out) {
  const size_t shown = std::min<size_t>(r.findings.size(), 20);
  for (size_t i = 0; i < shown; ++i) std::cout << r.findings[i].ToString() << "\n";
  if (r.findings_total > shown) std::cout << "... and " << (r.findings_total - shown) << " more findings\n";
  if (r.clean()) {
    std::cout << "clean: " << r.counts.blocks << " blocks, " << r.counts.transactions << " transactions, "
              << r.counts.checkpoints << " checkpoints, " << r.counts.state_roots << " state roots checked"
              << (r.complete ? "" : " (incomplete, see the report's notes)") << "\n";
  } else {
    std::cout << r.findings_total << " finding(s)";
    if (const Finding* f = r.FirstBadBlock(); f != nullptr) std::cout << "; first bad block " << *f->position << " (" << f->check << ")";
    std::cout << "\n";
  }
  std::cout << "report: " << out << ".json, " << out << ".html\n";
}

class ProgressBar {
 public:
  ProgressBar() : enabled_(::isatty(STDERR_FILENO) == 1) {}
  void Update(std::uint64_t done, std::uint64_t total) {
    if (!enabled_ || total == 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    constexpr int kWidth = 40;
    const int filled = static_cast<int>(kWidth * done / total);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\rvellum-audit [%s] %3d%% block %llu/%llu", bar.c_str(), static_cast<int>(100 * done / total),
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
    shown_ = true;
  }
  void Finish() {
    if (shown_) std::fprintf(stderr, "\n");
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

// ---- The child: the audit itself --------------------------------------------------

[[noreturn]] void RunChild(int fd, const vellum::audit::AuditOptions& base, const std::string& out) {
  vellum::audit::AuditOptions options = base;
  options.progress_every = 1;
  options.progress = [fd](const vellum::audit::Progress& p) {
    Send(fd, 'P', std::to_string(p.done) + " " + std::to_string(p.total));
  };
  options.on_finding = [fd](const Finding& f) { Send(fd, 'F', vellum::audit::FindingJson(f)); };
  options.on_summary = [fd](const AuditReport& r) { Send(fd, 'S', vellum::audit::ReportJson(r)); };
  auto report = vellum::audit::RunAudit(options);
  if (!report.ok()) {
    Send(fd, 'E', report.status().ToString());
    ::_exit(kCouldNotRun);
  }
  Send(fd, 'R', "");
  const bool written = WriteReport(*report, out);
  Send(fd, 'D', std::to_string(!written ? kCouldNotRun : report->clean() ? kClean : kFindings));
  ::_exit(0);
}

std::string DescribeExit(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "stopped";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vellum-audit: replay a ledger's journal, recompute every hash chain link, the log tree, every signed\n"
               "checkpoint, every view and state root, and report what does not match.\n"
               "Exit codes: 0 clean, 1 findings, 2 could not run."};
  std::string data_dir, ledger, from_checkpoint, vkey, out;
  app.add_option("DATA_DIR", data_dir, "Server data directory (ledgers live in DATA_DIR/ledgers/NAME)")->required();
  app.add_option("--ledger", ledger, "Ledger name; without it DATA_DIR must itself be a ledger directory");
  app.add_option("--from-checkpoint", from_checkpoint,
                 "File holding a signed checkpoint audited before: verify incrementally from it");
  app.add_option("--vkey", vkey, "C2SP verifier key (name+keyid+key), or a file holding one");
  app.add_option("--report", out, "Write OUT.json and OUT.html")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kCouldNotRun;
  }

  std::error_code ec;
  if (!std::filesystem::is_directory(data_dir, ec)) return CouldNotRun("no directory " + data_dir);
  vellum::audit::AuditOptions options;
  if (!ledger.empty()) {
    if (auto st = vellum::journal::ValidateLedgerName(ledger); !st.ok()) return CouldNotRun(st.message());
    for (const auto& part : std::filesystem::path(ledger)) {
      if (part == "..") return CouldNotRun("ledger name may not hold a '..' component: " + ledger);
    }
    options.ledger_dir = (std::filesystem::path(data_dir) / "ledgers" / ledger).string();
    if (!std::filesystem::is_directory(options.ledger_dir, ec)) {
      return CouldNotRun("no ledger '" + ledger + "' in " + data_dir + " (no directory " + options.ledger_dir + ")");
    }
  } else {
    if (!std::filesystem::is_directory(std::filesystem::path(data_dir) / "journal", ec)) {
      return CouldNotRun(data_dir + " is not a ledger directory (no journal/); name the ledger with --ledger NAME");
    }
    options.ledger_dir = data_dir;
  }
  if (!vkey.empty()) {
    auto text = ReadSmallFile(vkey);
    options.vkey = text.has_value() ? *text : vkey;
  }
  if (!from_checkpoint.empty()) {
    auto text = ReadSmallFile(from_checkpoint);
    if (!text.has_value()) return CouldNotRun("cannot read the checkpoint file " + from_checkpoint);
    options.from_checkpoint = *text;
  }

  if (const auto parent = std::filesystem::path(out).parent_path(); !parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return CouldNotRun("cannot create " + parent.string() + ": " + ec.message());
  }

  int fds[2];
  if (::pipe(fds) != 0) return CouldNotRun(std::string("pipe: ") + std::strerror(errno));
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = ::fork();
  if (pid < 0) return CouldNotRun(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(fds[0]);
    RunChild(fds[1], options, out);
  }
  ::close(fds[1]);

  // Follow the child: progress, findings as they come, the outcome.
  std::optional<AuditReport> partial;
  std::vector<Finding> findings;
  std::uint64_t done = 0, total = 0;
  std::optional<int> exit_code;
  std::optional<std::string> error;
  ProgressBar bar;
  EventReader events(fds[0]);
  while (auto ev = events.Next()) {
    auto& [type, payload] = *ev;
    if (type == 'P') {
      std::sscanf(payload.c_str(), "%llu %llu", reinterpret_cast<unsigned long long*>(&done),
                  reinterpret_cast<unsigned long long*>(&total));
      bar.Update(done, total);
    } else if (type == 'F') {
      if (auto f = vellum::audit::ParseFindingJson(payload); f.ok()) findings.push_back(*f);
    } else if (type == 'S') {
      if (auto r = vellum::audit::ParseReportJson(payload); r.ok()) partial = *r;
    } else if (type == 'E') {
      error = payload;
    } else if (type == 'D') {
      exit_code = std::atoi(payload.c_str());
    }
  }
  ::close(fds[0]);
  bar.Finish();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  if (error.has_value()) return CouldNotRun(*error);
  if (exit_code.has_value()) {
    std::ifstream in(out + ".json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (auto r = vellum::audit::ParseReportJson(text); r.ok()) PrintSummary(*r, out);
    return *exit_code;
  }

  // The child died: report what it found and where it stopped.
  AuditReport report = partial.value_or(AuditReport{});
  if (report.data_dir.empty()) report.data_dir = options.ledger_dir;
  report.complete = false;
  report.findings.clear();
  report.findings_total = 0;
  for (Finding& f : findings) {
    ++report.findings_total;
    if (report.findings.size() < vellum::audit::kMaxFindings) report.findings.push_back(std::move(f));
  }
  const std::uint64_t first = report.from_checkpoint.value_or(0);
  Finding crash{"store", std::nullopt, "store.crash", "", "",
                "the audit process " + DescribeExit(status) +
                    (partial.has_value() ? " while reading after block " + std::to_string(first + done) + " (" +
                                               std::to_string(done) + " of " + std::to_string(total) + " blocks replayed)"
                                         : " while opening the stores") +
                    ": the store is corrupt in a way LMDB does not detect"};
  std::cerr << "vellum-audit: " << crash.detail << "\n";
  ++report.findings_total;
  report.findings.push_back(crash);
  report.notes.push_back("The audit did not finish: its reader process died on corrupt data. Counts are not reported.");
  if (!WriteReport(report, out)) return kCouldNotRun;
  PrintSummary(report, out);
  return kFindings;
}
