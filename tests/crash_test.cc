// Crash safety of the journal: a child process appends from several threads
// and reports every acknowledged transaction through a pipe; the parent kills
// it with SIGKILL at a random moment, reopens the ledger, and checks that
// every acknowledged transaction is there, unchanged, and that the reopened
// ledger verifies (tip check, checkpoints, proofs, consistency with the
// checkpoint taken before the crash).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "vellum/journal/ledger.h"
#include "vellum/merkle/note.h"
#include "vellum/testing/temp_dir.h"

namespace vellum {
namespace {

using journal::Ledger;
using journal::Transaction;

struct Ack {
  std::uint64_t seq;
  std::uint32_t writer;
  std::uint32_t counter;
};

std::string Payload(std::uint32_t writer, std::uint32_t counter) {
  return "writer " + std::to_string(writer) + " counter " + std::to_string(counter);
}

[[noreturn]] void ChildAppends(const std::string& dir, int fd) {
  auto ledger = Ledger::Open(dir, {});
  if (!ledger.ok()) _exit(3);
  std::vector<std::thread> threads;
  std::atomic<bool> stop{false};
  for (std::uint32_t w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (std::uint32_t c = 0; !stop; ++c) {
        auto r = (*ledger)->Append(Transaction{"", {{1, Payload(w, c)}}});
        if (!r.ok()) _exit(4);
        const Ack ack{r->tx_seq, w, c};
        // A pipe write of <= PIPE_BUF bytes is atomic, so concurrent acks never interleave.
        if (::write(fd, &ack, sizeof ack) != static_cast<ssize_t>(sizeof ack)) _exit(5);
      }
    });
  }
  for (auto& t : threads) t.join();
  _exit(0);
}

TEST_CASE("kill -9 during appends loses no acknowledged transaction", "[journal][crash]") {
  testing::TempDir dir;
  const std::string ledger_dir = dir.Sub("ledger");
  std::string checkpoint_before;
  std::string vkey;
  {
    auto ledger = Ledger::Create(ledger_dir, "crash", {});
    REQUIRE(ledger.ok());
    vkey = (*ledger)->vkey();
  }
  auto verifier = merkle::NoteVerifier::Parse(vkey);
  REQUIRE(verifier.ok());
  std::mt19937_64 rng(std::random_device{}());
  std::map<std::uint64_t, std::string> acknowledged;

  for (int round = 0; round < 8; ++round) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      ChildAppends(ledger_dir, fds[1]);
    }
    ::close(fds[1]);
    // Read acknowledgements for a random while, then kill mid-flight.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20 + rng() % 150);
    std::thread killer([&] {
      std::this_thread::sleep_until(deadline);
      ::kill(pid, SIGKILL);
    });
    Ack ack;
    size_t acks_this_round = 0;
    while (::read(fds[0], &ack, sizeof ack) == static_cast<ssize_t>(sizeof ack)) {
      acknowledged[ack.seq] = Payload(ack.writer, ack.counter);
      ++acks_this_round;
    }
    killer.join();
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    INFO("round " << round << ", child status " << status);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);

    auto ledger = Ledger::Open(ledger_dir, {});
    REQUIRE(ledger.ok());
    for (const auto& [seq, payload] : acknowledged) {
      auto tx = (*ledger)->GetTransaction(seq);
      REQUIRE(tx.ok());
      REQUIRE(tx->operations.at(0).body == payload);
    }
    auto note = (*ledger)->Checkpoint();
    REQUIRE(note.ok());
    auto cp = merkle::VerifyCheckpoint(*note, *verifier);
    REQUIRE(cp.ok());
    if (!checkpoint_before.empty()) {
      auto before = merkle::VerifyCheckpoint(checkpoint_before, *verifier);
      REQUIRE(before.ok());
      if (before->size > 0) {
        auto proof = (*ledger)->ProveConsistency(before->size, cp->size);
        REQUIRE(proof.ok());
        CHECK(merkle::VerifyConsistency(before->size, cp->size, before->root, cp->root, proof->path).ok());
      }
    }
    if (!acknowledged.empty()) {
      const std::uint64_t seq = std::next(acknowledged.begin(), static_cast<long>(rng() % acknowledged.size()))->first;
      auto proof = (*ledger)->ProveTransaction(seq, cp->size);
      REQUIRE(proof.ok());
      CHECK(journal::VerifyTransactionProof(*proof, cp->size, cp->root).ok());
    }
    checkpoint_before = *note;
    UNSCOPED_INFO("round " << round << ": " << acks_this_round << " acknowledged");
  }
  CHECK(acknowledged.size() > 0);
}

}  // namespace
}  // namespace vellum
