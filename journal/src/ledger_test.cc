#include "vellum/journal/ledger.h"

#include <sys/stat.h>

#include <atomic>
#include <latch>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "vellum/merkle/note.h"
#include "vellum/testing/temp_dir.h"

namespace vellum::journal {
namespace {

Transaction Tx(const std::string& body, std::uint16_t kind = 1) { return Transaction{"", {{kind, body}}}; }

merkle::Checkpoint VerifiedCheckpoint(Ledger& ledger) {
  auto note = ledger.Checkpoint();
  REQUIRE(note.ok());
  auto verifier = merkle::NoteVerifier::Parse(ledger.vkey());
  REQUIRE(verifier.ok());
  auto cp = merkle::VerifyCheckpoint(*note, *verifier);
  REQUIRE(cp.ok());
  return *cp;
}

TEST_CASE("Create, append, reopen: everything acknowledged is there and verifies", "[journal][ledger]") {
  testing::TempDir dir;
  FakeClock clock(1'700'000'000'000'000);
  LedgerOptions options;
  options.clock = &clock;
  std::vector<Receipt> receipts;
  {
    auto ledger = Ledger::Create(dir.path(), "example.com/books", options);
    REQUIRE(ledger.ok());
    CHECK((*ledger)->size() == 0);
    CHECK(VerifiedCheckpoint(**ledger).root == merkle::EmptyTreeRoot());
    for (int i = 0; i < 20; ++i) {
      auto r = (*ledger)->Append(Tx("payment " + std::to_string(i)));
      REQUIRE(r.ok());
      receipts.push_back(*r);
      clock.Advance(i % 3 == 0 ? -5 : 10);  // a clock that steps back never makes time go backwards
    }
    CHECK((*ledger)->size() == 20);
  }
  struct stat st {};
  REQUIRE(::stat(dir.Sub("signing.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  CHECK(Ledger::Create(dir.path(), "example.com/books", options).status().code() == StatusCode::kAlreadyExists);
  auto ledger = Ledger::Open(dir.path(), options);
  REQUIRE(ledger.ok());
  CHECK((*ledger)->size() == 20);
  CHECK((*ledger)->stats().transactions == 20);
  const merkle::Checkpoint cp = VerifiedCheckpoint(**ledger);
  CHECK(cp.origin == "example.com/books");
  CHECK(cp.size == 20);
  CHECK(cp.root == (*ledger)->root());

  std::int64_t last_ts = 0;
  for (const Receipt& r : receipts) {
    auto tx = (*ledger)->GetTransaction(r.tx_seq);
    REQUIRE(tx.ok());
    CHECK(tx->operations[0].body == "payment " + std::to_string(r.tx_seq));
    auto proof = (*ledger)->ProveTransaction(r.tx_seq, cp.size);
    REQUIRE(proof.ok());
    auto verified = VerifyTransactionProof(*proof, cp.size, cp.root);
    REQUIRE(verified.ok());
    CHECK(*verified == *tx);
    auto header = (*ledger)->GetBlock(r.block_height);
    REQUIRE(header.ok());
    CHECK(BlockHash(EncodeBlockHeader(*header)) == r.block_hash);
    CHECK(header->timestamp_us >= last_ts);
    last_ts = header->timestamp_us;
  }
  // Hash chain: each header names its predecessor.
  for (std::uint64_t h = 1; h < 20; ++h) {
    CHECK((*ledger)->GetBlock(h)->prev_hash == BlockHash(EncodeBlockHeader(*(*ledger)->GetBlock(h - 1))));
  }
  CHECK((*ledger)->GetBlock(0)->prev_hash == merkle::kZeroHash);
}

TEST_CASE("Stats sum the commit thread's phases over the blocks it wrote", "[journal][ledger]") {
  testing::TempDir dir;
  LedgerOptions options;
  {
    auto ledger = Ledger::Create(dir.path(), "example.com/phases", options);
    REQUIRE(ledger.ok());
    CHECK((*ledger)->stats().committed_blocks == 0);
    for (int i = 0; i < 5; ++i) REQUIRE((*ledger)->Append(Tx("t" + std::to_string(i))).ok());
    // A refused transaction writes no block and is not counted.
    CHECK(!(*ledger)->Append(Transaction{}).ok());
    const LedgerStats stats = (*ledger)->stats();
    CHECK(stats.committed_blocks == 5);
    CHECK(stats.blocks == 5);
    // A synced LMDB commit takes far more than 5 ns; the ack of each block is
    // counted before its writer is woken, so all five are in.
    CHECK(stats.store_ns >= 5);
    CHECK(stats.ack_wait_ns > 0);
    CHECK(stats.queue_wait_ns > 0);
  }
  auto reopened = Ledger::Open(dir.path(), options);
  REQUIRE(reopened.ok());
  CHECK((*reopened)->stats().blocks == 5);
  CHECK((*reopened)->stats().committed_blocks == 0);  // per opening, not stored
}

TEST_CASE("Proofs: blocks in past checkpoints, consistency, and their tampering", "[journal][ledger]") {
  testing::TempDir dir;
  auto ledger = Ledger::Create(dir.path(), "proofs", {});
  REQUIRE(ledger.ok());
  std::vector<merkle::Checkpoint> cps;
  for (int i = 0; i < 12; ++i) {
    REQUIRE((*ledger)->Append(Tx(std::to_string(i))).ok());
    cps.push_back(VerifiedCheckpoint(**ledger));
  }
  for (const auto& old_cp : cps) {
    for (const auto& new_cp : cps) {
      if (old_cp.size > new_cp.size) continue;
      auto proof = (*ledger)->ProveConsistency(old_cp.size, new_cp.size);
      REQUIRE(proof.ok());
      CHECK(merkle::VerifyConsistency(old_cp.size, new_cp.size, old_cp.root, new_cp.root, proof->path).ok());
    }
    for (std::uint64_t h = 0; h < old_cp.size; ++h) {
      auto proof = (*ledger)->ProveBlock(h, old_cp.size);
      REQUIRE(proof.ok());
      auto header = VerifyBlockProof(*proof, old_cp.size, old_cp.root);
      REQUIRE(header.ok());
      CHECK(header->height == h);
      // Negative: another checkpoint's root, another height, a changed header byte.
      if (old_cp.size > 1) {
        CHECK_FALSE(VerifyBlockProof(*proof, old_cp.size, cps[0].root).ok());
      }
      auto moved = *proof;
      moved.inclusion.leaf_index = (h + 1) % old_cp.size;
      if (old_cp.size > 1) CHECK_FALSE(VerifyBlockProof(moved, old_cp.size, old_cp.root).ok());
      auto changed = *proof;
      changed.header[40] ^= 1;
      CHECK_FALSE(VerifyBlockProof(changed, old_cp.size, old_cp.root).ok());
    }
  }
  CHECK((*ledger)->ProveBlock(12, 12).status().code() == StatusCode::kOutOfRange);
  CHECK((*ledger)->ProveBlock(0, 13).status().code() == StatusCode::kOutOfRange);
  CHECK((*ledger)->ProveConsistency(0, 5).status().code() == StatusCode::kInvalidArgument);

  auto tx_proof = (*ledger)->ProveTransaction(3);
  REQUIRE(tx_proof.ok());
  const auto& cp = cps.back();
  CHECK(VerifyTransactionProof(*tx_proof, cp.size, cp.root).ok());
  auto altered = *tx_proof;
  altered.transaction.back() ^= 1;
  Status s = VerifyTransactionProof(altered, cp.size, cp.root).status();
  CHECK(s.code() == StatusCode::kDataLoss);
  REQUIRE(s.verification() != nullptr);
  CHECK(s.verification()->check == "inclusion.root");
  auto wrong_seq = *tx_proof;
  wrong_seq.tx_seq += 1;
  CHECK(VerifyTransactionProof(wrong_seq, cp.size, cp.root).status().verification()->check == "transaction.position");
}

TEST_CASE("Concurrent writers are group-committed, each acknowledged exactly once", "[journal][ledger]") {
  testing::TempDir dir;
  auto ledger = Ledger::Create(dir.path(), "concurrent", {});
  REQUIRE(ledger.ok());
  constexpr int kThreads = 16, kPerThread = 100;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::uint64_t> seqs;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = (*ledger)->Append(Tx("w" + std::to_string(t) + "-" + std::to_string(i)));
        if (!r.ok()) { ++failures; continue; }
        std::lock_guard lock(mu);
        seqs.insert(r->tx_seq);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  CHECK(seqs.size() == kThreads * kPerThread);
  CHECK(*seqs.rbegin() == kThreads * kPerThread - 1);
  const auto stats = (*ledger)->stats();
  CHECK(stats.transactions == kThreads * kPerThread);
  CHECK(stats.blocks <= stats.transactions);
  // Each block's transaction root matches what is stored (recomputed by reopen's tip check too).
  const merkle::Checkpoint cp = VerifiedCheckpoint(**ledger);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 50; ++i) {
    const std::uint64_t seq = rng() % (kThreads * kPerThread);
    CHECK(VerifyTransactionProof(*(*ledger)->ProveTransaction(seq), cp.size, cp.root).ok());
  }
}

TEST_CASE("Bad transactions are refused with precise errors and store nothing", "[journal][ledger]") {
  testing::TempDir dir;
  LedgerOptions options;
  options.max_transaction_bytes = 1000;
  options.max_operations_per_transaction = 3;
  auto ledger = Ledger::Create(dir.path(), "limits", options);
  REQUIRE(ledger.ok());
  CHECK((*ledger)->Append(Transaction{}).status().code() == StatusCode::kInvalidArgument);
  auto big = (*ledger)->Append(Tx(std::string(2000, 'x')));
  CHECK(big.status().code() == StatusCode::kInvalidArgument);
  CHECK(big.status().message().find("exceeds the limit of 1000") != std::string::npos);
  CHECK((*ledger)->Append(Transaction{"", {{1, "a"}, {1, "b"}, {1, "c"}, {1, "d"}}}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK((*ledger)->Append(Transaction{std::string(200, 't'), {{1, "a"}}}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK((*ledger)->size() == 0);
  CHECK((*ledger)->Append(Tx("fine")).ok());
  CHECK(Ledger::Create(dir.Sub("x"), "bad name", {}).status().code() == StatusCode::kInvalidArgument);
  CHECK(Ledger::Create(dir.Sub("y"), "", {}).status().code() == StatusCode::kInvalidArgument);
  CHECK(Ledger::Open(dir.Sub("missing"), {}).status().code() == StatusCode::kNotFound);
  ledger->reset();
  // A read-only ledger refuses writes at once instead of queueing them forever.
  LedgerOptions read_only;
  read_only.store.read_only = true;
  auto ro = Ledger::Open(dir.path(), read_only);
  REQUIRE(ro.ok());
  CHECK((*ro)->size() == 1);
  CHECK((*ro)->Append(Tx("nope")).status().code() == StatusCode::kFailedPrecondition);
  // A body over the format's hard limit is refused even if the ledger's own limit allows it.
  testing::TempDir big_dir;
  LedgerOptions generous;
  generous.max_transaction_bytes = 64u << 20;
  auto big_ledger = Ledger::Create(big_dir.path(), "generous", generous);
  REQUIRE(big_ledger.ok());
  CHECK((*big_ledger)->Append(Tx(std::string(kMaxOperationBodySize + 1, 'x'))).status().code() ==
        StatusCode::kInvalidArgument);
}

// A state hook that records blocks and can stall or fail on demand.
class TestHook : public StateHook {
 public:
  Result<merkle::Hash> ApplyBlock(std::uint64_t height, std::int64_t /*timestamp_us*/, std::span<const Transaction> txs,
                                  std::span<std::unique_ptr<PreparedTransaction>> /*prepared*/, std::span<Status> verdicts) override {
    if (gate_ != nullptr) gate_->wait();
    for (const auto& tx : txs) {
      if (tx.operations[0].body == "crash") return Internal("the state cannot apply this block");
    }
    for (size_t i = 0; i < txs.size(); ++i) {
      if (txs[i].operations[0].body == "poison") verdicts[i] = FailedPrecondition("poisoned transaction");
      else ++applied_;
    }
    return merkle::Sha256Of("state after " + std::to_string(height));
  }
  void CommitBlock(std::uint64_t) override { ++committed_; }
  void AbortBlock(std::uint64_t) override { ++aborted_; }

  std::latch* gate_ = nullptr;
  std::atomic<size_t> applied_{0};
  std::atomic<int> aborted_{0};
  std::atomic<int> committed_{0};
};

TEST_CASE("The state hook's root lands in the header, and its failure fails the block", "[journal][ledger]") {
  testing::TempDir dir;
  TestHook hook;
  LedgerOptions options;
  options.state = &hook;
  auto ledger = Ledger::Create(dir.path(), "state", options);
  REQUIRE(ledger.ok());
  auto r = (*ledger)->Append(Tx("ok"));
  REQUIRE(r.ok());
  CHECK((*ledger)->GetBlock(r->block_height)->state_root == merkle::Sha256Of("state after 0"));
  CHECK(hook.committed_ == 1);
  auto bad = (*ledger)->Append(Tx("poison"));
  CHECK(bad.status().code() == StatusCode::kFailedPrecondition);
  CHECK(bad.status().message() == "poisoned transaction");
  CHECK((*ledger)->size() == 1);
  CHECK(hook.aborted_ == 1);
  auto crash = (*ledger)->Append(Tx("crash"));
  CHECK(crash.status().code() == StatusCode::kInternal);
  CHECK((*ledger)->size() == 1);
  CHECK((*ledger)->Append(Tx("ok again")).ok());
  CHECK((*ledger)->size() == 2);
  // A refused transaction next to good ones leaves only the good ones in the block.
  std::atomic<int> done{0};
  std::vector<Result<Receipt>> results(3, Result<Receipt>(Internal("pending")));
  const char* bodies[] = {"good 1", "poison", "good 2"};
  for (int i = 0; i < 3; ++i) {
    (*ledger)->AppendAsync(Tx(bodies[i]), [&, i](Result<Receipt> outcome) { results[i] = std::move(outcome); ++done; });
  }
  while (done < 3) std::this_thread::yield();
  CHECK(results[0].ok());
  CHECK(results[1].status().code() == StatusCode::kFailedPrecondition);
  CHECK(results[2].ok());
  const auto stats = (*ledger)->stats();
  CHECK(stats.transactions == 4);
  for (std::uint64_t seq = 0; seq < stats.transactions; ++seq) {
    CHECK((*ledger)->GetTransaction(seq)->operations[0].body != "poison");
  }
}

// A state hook that prepares each transaction on the submitting thread and
// checks what comes back to ApplyBlock.
class PreparingHook : public StateHook {
 public:
  struct Note final : PreparedTransaction {
    std::string body;
    std::thread::id thread;
  };
  Result<std::unique_ptr<PreparedTransaction>> PrepareTransaction(const Transaction& tx) override {
    if (tx.operations[0].body == "undecodable") return InvalidArgument("operation 0: cannot decode");
    auto note = std::make_unique<Note>();
    note->body = tx.operations[0].body;
    note->thread = std::this_thread::get_id();
    return std::unique_ptr<PreparedTransaction>(std::move(note));
  }
  Result<merkle::Hash> ApplyBlock(std::uint64_t height, std::int64_t /*timestamp_us*/, std::span<const Transaction> txs,
                                  std::span<std::unique_ptr<PreparedTransaction>> prepared,
                                  std::span<Status> /*verdicts*/) override {
    std::lock_guard lock(mu_);
    if (prepared.size() != txs.size()) mismatches_.push_back("block " + std::to_string(height) + ": sizes differ");
    for (size_t i = 0; i < txs.size() && i < prepared.size(); ++i) {
      const auto* note = dynamic_cast<const Note*>(prepared[i].get());
      if (note == nullptr || note->body != txs[i].operations[0].body) {
        mismatches_.push_back("block " + std::to_string(height) + " tx " + std::to_string(i));
      } else {
        threads_.insert(note->thread);
        bodies_.push_back(note->body);
      }
    }
    return merkle::Sha256Of("state after " + std::to_string(height));
  }
  void CommitBlock(std::uint64_t) override {}
  void AbortBlock(std::uint64_t) override {}

  std::mutex mu_;
  std::vector<std::string> mismatches_;
  std::vector<std::string> bodies_;
  std::set<std::thread::id> threads_;
};

TEST_CASE("Transactions are prepared on the submitting thread, and one that fails to prepare is never queued",
          "[journal][ledger]") {
  testing::TempDir dir;
  PreparingHook hook;
  LedgerOptions options;
  options.state = &hook;
  auto ledger = Ledger::Create(dir.path(), "prepared", options);
  REQUIRE(ledger.ok());
  constexpr int kWriters = 4;
  constexpr int kEach = 50;
  std::vector<std::thread> writers;
  std::vector<std::thread::id> writer_ids(kWriters);
  std::atomic<int> refused{0};
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      writer_ids[static_cast<size_t>(w)] = std::this_thread::get_id();
      for (int i = 0; i < kEach; ++i) {
        const bool bad = i % 10 == 3;
        auto r = (*ledger)->Append(Tx(bad ? "undecodable" : "w" + std::to_string(w) + "/" + std::to_string(i)));
        if (bad) {
          if (r.status().code() == StatusCode::kInvalidArgument && r.status().message() == "operation 0: cannot decode") {
            ++refused;
          }
        } else {
          CHECK(r.ok());
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  CHECK(refused == kWriters * kEach / 10);
  std::lock_guard lock(hook.mu_);
  CHECK(hook.mismatches_.empty());
  // Every accepted transaction came back with its own preparation, made on
  // its writer's thread; the refused ones never reached a block.
  CHECK(hook.bodies_.size() == static_cast<size_t>(kWriters * kEach * 9 / 10));
  CHECK(hook.threads_ == std::set<std::thread::id>(writer_ids.begin(), writer_ids.end()));
  const auto stats = (*ledger)->stats();
  CHECK(stats.transactions == hook.bodies_.size());
  for (std::uint64_t seq = 0; seq < stats.transactions; ++seq) {
    CHECK((*ledger)->GetTransaction(seq)->operations[0].body != "undecodable");
  }
}

// A state hook that chains its roots (each block's root hashes the root it
// was prepared on and the block's bodies) and keeps the prepared blocks as
// the ledger's pipeline leaves them: a block may be prepared on top of one
// not yet committed, and aborting a block aborts the ones after it.
class ChainHook : public StateHook {
 public:
  Result<merkle::Hash> ApplyBlock(std::uint64_t height, std::int64_t /*timestamp_us*/, std::span<const Transaction> txs,
                                  std::span<std::unique_ptr<PreparedTransaction>> /*prepared*/, std::span<Status> /*verdicts*/) override {
    std::lock_guard lock(mu_);
    if (gate_ != nullptr && txs[0].operations[0].body == gate_body_) {
      gate_->wait();
      gate_ = nullptr;
    }
    if (height != committed_.size() + prepared_.size()) out_of_order_ = true;
    std::string input(reinterpret_cast<const char*>(Tip().data()), Tip().size());
    for (const auto& tx : txs) input += "|" + tx.operations[0].body;
    prepared_.push_back(merkle::Sha256Of(input));
    ++max_ahead_seen_[prepared_.size()];
    return prepared_.back();
  }
  void CommitBlock(std::uint64_t height) override {
    std::lock_guard lock(mu_);
    if (prepared_.empty() || height != committed_.size()) {
      out_of_order_ = true;
      return;
    }
    committed_.push_back(prepared_.front());
    prepared_.erase(prepared_.begin());
  }
  void AbortBlock(std::uint64_t height) override {
    std::lock_guard lock(mu_);
    if (height < committed_.size()) {
      out_of_order_ = true;
      return;
    }
    ++aborts_;
    if (height - committed_.size() < prepared_.size()) prepared_.resize(height - committed_.size());
  }
  // The roots a chain of these bodies, block by block, must have.
  static std::vector<merkle::Hash> Expected(const std::vector<std::vector<std::string>>& blocks) {
    std::vector<merkle::Hash> roots;
    merkle::Hash root = merkle::kZeroHash;
    for (const auto& bodies : blocks) {
      std::string input(reinterpret_cast<const char*>(root.data()), root.size());
      for (const auto& b : bodies) input += "|" + b;
      root = merkle::Sha256Of(input);
      roots.push_back(root);
    }
    return roots;
  }

  std::mutex mu_;
  std::latch* gate_ = nullptr;  // ApplyBlock of a block starting with gate_body_ waits on it once
  std::string gate_body_;
  std::vector<merkle::Hash> committed_;
  std::vector<merkle::Hash> prepared_;
  std::map<size_t, int> max_ahead_seen_;  // prepared blocks held -> times seen
  bool out_of_order_ = false;
  int aborts_ = 0;

 private:
  const merkle::Hash& Tip() const {
    static const merkle::Hash kZero = merkle::kZeroHash;
    if (!prepared_.empty()) return prepared_.back();
    return committed_.empty() ? kZero : committed_.back();
  }
};

TEST_CASE("A failed journal write fails its block and the block prepared behind it, and the chain goes on",
          "[journal][ledger]") {
  testing::TempDir dir;
  ChainHook hook;
  LedgerOptions options;
  options.state = &hook;
  options.max_block_transactions = 1;
  // A small journal: a 2 MiB body cannot fit (MDB_MAP_FULL), small ones can.
  options.store.map_size = 1u << 20;
  options.store.preallocate_bytes = 0;
  options.max_transaction_bytes = 4u << 20;
  auto ledger = Ledger::Create(dir.path(), "pipeline", options);
  REQUIRE(ledger.ok());
  REQUIRE((*ledger)->Append(Tx("a")).ok());

  // Block 1 (too big) is held in the hook until block 2 is queued, so the
  // commit thread prepares block 2 on top of block 1 before it learns that
  // block 1's write failed.
  std::latch gate(1);
  hook.gate_body_ = std::string(2u << 20, 'x');
  hook.gate_ = &gate;
  std::atomic<int> done{0};
  Status big_status, next_status;
  (*ledger)->AppendAsync(Tx(hook.gate_body_), [&](Result<Receipt> r) { big_status = r.status(); ++done; });
  while ((*ledger)->stats().queued != 0) std::this_thread::yield();
  (*ledger)->AppendAsync(Tx("b"), [&](Result<Receipt> r) { next_status = r.status(); ++done; });
  while ((*ledger)->stats().queued != 1) std::this_thread::yield();
  gate.count_down();
  while (done < 2) std::this_thread::yield();
  CHECK(big_status.code() == StatusCode::kResourceExhausted);
  CHECK(next_status.code() == StatusCode::kResourceExhausted);
  CHECK(next_status.message().find("block 1, which the block holding this transaction follows, was not written") !=
        std::string::npos);
  CHECK((*ledger)->size() == 1);
  CHECK(hook.max_ahead_seen_.count(2) == 1);  // block 2 was prepared while block 1 was in flight
  CHECK(hook.aborts_ >= 1);

  // The chain goes on from block 0, as if the failed blocks never were.
  REQUIRE((*ledger)->Append(Tx("c")).ok());
  std::atomic<int> more{0};
  for (const char* body : {"d", "e", "f", "g"}) {
    (*ledger)->AppendAsync(Tx(body), [&](Result<Receipt> r) {
      CHECK(r.ok());
      ++more;
    });
  }
  while (more < 4) std::this_thread::yield();
  REQUIRE((*ledger)->size() == 6);
  std::vector<std::vector<std::string>> blocks;
  for (std::uint64_t h = 0; h < 6; ++h) {
    auto header = (*ledger)->GetBlock(h);
    REQUIRE(header.ok());
    std::vector<std::string> bodies;
    for (std::uint32_t i = 0; i < header->tx_count; ++i) {
      bodies.push_back((*ledger)->GetTransaction(header->first_tx_seq + i)->operations[0].body);
    }
    blocks.push_back(bodies);
  }
  CHECK(blocks[1] == std::vector<std::string>{"c"});
  const auto expected = ChainHook::Expected(blocks);
  for (std::uint64_t h = 0; h < 6; ++h) CHECK((*ledger)->GetBlock(h)->state_root == expected[h]);
  {
    std::lock_guard lock(hook.mu_);
    CHECK(hook.committed_ == expected);
    CHECK(hook.prepared_.empty());
    CHECK_FALSE(hook.out_of_order_);
  }
  // And the journal reopens and verifies.
  ledger->reset();
  auto reopened = Ledger::Open(dir.path(), options);
  REQUIRE(reopened.ok());
  CHECK((*reopened)->size() == 6);
}

TEST_CASE("A full queue pushes back with RESOURCE_EXHAUSTED", "[journal][ledger]") {
  testing::TempDir dir;
  TestHook hook;
  std::latch gate(1);
  hook.gate_ = &gate;
  LedgerOptions options;
  options.state = &hook;
  options.queue_capacity = 2;
  options.max_block_transactions = 1;
  options.enqueue_timeout = std::chrono::milliseconds(20);
  auto ledger = Ledger::Create(dir.path(), "backpressure", options);
  REQUIRE(ledger.ok());
  std::atomic<int> done{0};
  std::vector<Status> results(3);
  // The first is taken by the (stalled) commit thread, two more fill the queue.
  (*ledger)->AppendAsync(Tx("a"), [&](Result<Receipt> r) { results[0] = r.status(); ++done; });
  while ((*ledger)->stats().queued != 0) std::this_thread::yield();
  (*ledger)->AppendAsync(Tx("b"), [&](Result<Receipt> r) { results[1] = r.status(); ++done; });
  (*ledger)->AppendAsync(Tx("c"), [&](Result<Receipt> r) { results[2] = r.status(); ++done; });
  auto rejected = (*ledger)->Append(Tx("d"));
  CHECK(rejected.status().code() == StatusCode::kResourceExhausted);
  gate.count_down();
  while (done < 3) std::this_thread::yield();
  for (const auto& s : results) CHECK(s.ok());
  CHECK((*ledger)->size() == 3);
}

TEST_CASE("Tampering is detected on open or on proof", "[journal][ledger][tamper]") {
  testing::TempDir dir;
  std::vector<std::string> headers;
  LedgerOptions small;
  small.store.preallocate_bytes = 0;  // keep the file small: every section rewrites it
  {
    auto ledger = Ledger::Create(dir.path(), "tamper", small);
    REQUIRE(ledger.ok());
    for (int i = 0; i < 6; ++i) REQUIRE((*ledger)->Append(Tx("unique-payload-" + std::to_string(i))).ok());
    REQUIRE((*ledger)->Checkpoint().ok());
    for (std::uint64_t h = 0; h < 6; ++h) headers.push_back(EncodeBlockHeader(*(*ledger)->GetBlock(h)));
  }
  const std::string data = dir.Sub("data.mdb");
  const std::string pristine = testing::ReadFile(data);

  SECTION("the tip header: refused on open, naming the block") {
    REQUIRE(testing::FlipByteOf(data, headers[5], 100));  // inside tx_root
    auto ledger = Ledger::Open(dir.path(), {});
    CHECK(ledger.status().code() == StatusCode::kDataLoss);
    CHECK(ledger.status().message().find("block 5") != std::string::npos);
  }
  SECTION("an old header: proofs refuse it") {
    REQUIRE(testing::FlipByteOf(data, headers[2], 60));  // inside the timestamp
    auto ledger = Ledger::Open(dir.path(), {});
    REQUIRE(ledger.ok());
    auto proof = (*ledger)->ProveBlock(2);
    CHECK(proof.status().code() == StatusCode::kDataLoss);
    CHECK(proof.status().message().find("block 2") != std::string::npos);
    CHECK((*ledger)->ProveBlock(4).ok());
  }
  SECTION("a transaction of an old block: its proof refuses it") {
    REQUIRE(testing::FlipByteOf(data, "unique-payload-1", 3));
    auto ledger = Ledger::Open(dir.path(), {});
    REQUIRE(ledger.ok());
    CHECK((*ledger)->ProveTransaction(1).status().code() == StatusCode::kDataLoss);
  }
  SECTION("a transaction of the tip block: refused on open") {
    REQUIRE(testing::FlipByteOf(data, "unique-payload-5", 3));
    CHECK(Ledger::Open(dir.path(), {}).status().code() == StatusCode::kDataLoss);
  }
  SECTION("the signing key: refused on open") {
    auto other = merkle::NoteSigner::Generate("tamper");
    REQUIRE(other.ok());
    ::chmod(dir.Sub("signing.key").c_str(), 0600);
    testing::WriteFile(dir.Sub("signing.key"), other->Skey() + "\n");
    CHECK(Ledger::Open(dir.path(), {}).status().code() == StatusCode::kDataLoss);
  }
  SECTION("a key file readable by others: refused on open") {
    ::chmod(dir.Sub("signing.key").c_str(), 0644);
    CHECK(Ledger::Open(dir.path(), {}).status().code() == StatusCode::kFailedPrecondition);
  }
  SECTION("untouched store opens") {
    CHECK(testing::ReadFile(data) == pristine);
    CHECK(Ledger::Open(dir.path(), {}).ok());
  }
}

}  // namespace
}  // namespace vellum::journal
