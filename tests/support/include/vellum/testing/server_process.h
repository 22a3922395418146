// Test support: a real vellumd (or any server printing "listening on
// HOST:PORT") started as a child process on a free loopback port, and a
// helper running a command line and capturing its output and exit code.
#ifndef VELLUM_TESTING_SERVER_PROCESS_H_
#define VELLUM_TESTING_SERVER_PROCESS_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace vellum::testing {

// Forks and execs argv (no shell) with stdout/stderr sent to the given
// descriptors (-1: inherited); closes every descriptor in `close_in_child`.
inline pid_t Spawn(std::vector<std::string> args, int out_fd, int err_fd, std::vector<int> close_in_child) {
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (out_fd >= 0) dup2(out_fd, STDOUT_FILENO);
    if (err_fd >= 0) dup2(err_fd, STDERR_FILENO);
    for (int fd : close_in_child) close(fd);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

class ServerProcess {
 public:
  // Starts `binary args... --listen 127.0.0.1:PORT` (PORT 0 unless given) and
  // waits for its "listening on" line. Throws if it does not come up.
  ServerProcess(const std::string& binary, std::vector<std::string> args, int port = 0) {
    args.insert(args.begin(), binary);
    args.push_back("--listen");
    args.push_back("127.0.0.1:" + std::to_string(port));
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = Spawn(args, out[1], -1, {out[0], out[1]});
    close(out[1]);
    stdout_ = fdopen(out[0], "r");
    std::array<char, 512> line{};
    if (fgets(line.data(), line.size(), stdout_) == nullptr) {
      Kill(SIGKILL);
      throw std::runtime_error("server did not start: " + binary);
    }
    const std::string text(line.data());
    const auto at = text.find("listening on ");
    if (at == std::string::npos) throw std::runtime_error("unexpected first line: " + text);
    const std::string rest = text.substr(at + 13);
    address_ = rest.substr(0, rest.find(' '));
  }
  ~ServerProcess() {
    if (pid_ > 0) Kill(SIGKILL);
    if (stdout_ != nullptr) fclose(stdout_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::string& address() const { return address_; }
  int port() const { return std::stoi(address_.substr(address_.rfind(':') + 1)); }

  // Sends `sig` and reaps the child; returns its exit status (or 128+signal).
  int Kill(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  FILE* stdout_ = nullptr;
  std::string address_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv (no shell) and captures stdout and stderr.
inline CommandResult RunCommand(std::vector<std::string> args) {
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = Spawn(std::move(args), out[1], err[1], {out[0], out[1], err[0], err[1]});
  close(out[1]);
  close(err[1]);
  CommandResult result;
  // Drain stderr on a thread so neither pipe fills up and blocks the child.
  std::thread drain([&] {
    std::array<char, 4096> buf{};
    ssize_t n;
    while ((n = read(err[0], buf.data(), buf.size())) > 0) result.err.append(buf.data(), static_cast<size_t>(n));
  });
  std::array<char, 4096> buf{};
  ssize_t n;
  while ((n = read(out[0], buf.data(), buf.size())) > 0) result.out.append(buf.data(), static_cast<size_t>(n));
  drain.join();
  close(out[0]);
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace vellum::testing

#endif  // VELLUM_TESTING_SERVER_PROCESS_H_
