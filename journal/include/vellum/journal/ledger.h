// Ledger: one ledger's journal — sequencer with group commit, hash chain, RFC
// 9162 log tree over block headers, signed checkpoints and proofs.
//
// Writes: any number of threads call Append/AppendAsync. A single commit
// thread takes everything queued (up to the block limits), applies it to the
// state (StateHook) and builds one block; a writer thread writes block +
// transactions + log-tree nodes in one durable LMDB write transaction
// (JournalStore::AppendBlock), and only then is every transaction in it
// acknowledged. While one block is written and synced, the next one fills
// and the commit thread applies it on top of the block being written (one
// block ahead, never more): throughput grows with concurrency instead of
// being capped at one fsync per transaction, and the sync overlaps the next
// block's state work. If a block's write fails, its transactions and those
// of the block prepared behind it fail with the store's error; the state
// and the chain go back to the last durable block. (A transaction of that
// second block that the state refused, e.g. for a conflict, was judged
// against the failed block's writes; such refusals are retryable.) The queue is bounded;
// when it is full Append waits up to LedgerOptions::enqueue_timeout and then
// fails with RESOURCE_EXHAUSTED.
//
// Opening verifies the tip (hash-chain link, transaction root, log-tree leaf
// and root, latest checkpoint signature and root) and refuses a store whose
// tip does not verify with DATA_LOSS naming the block.
//
// Thread-safety: all public methods are thread-safe.
#ifndef VELLUM_JOURNAL_LEDGER_H_
#define VELLUM_JOURNAL_LEDGER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "vellum/base/clock.h"
#include "vellum/base/status.h"
#include "vellum/journal/format.h"
#include "vellum/journal/proofs.h"
#include "vellum/journal/store.h"
#include "vellum/merkle/log_tree.h"

namespace vellum::journal {

// What a StateHook makes of one transaction before it is queued (its
// decoded operations, say). Opaque to the ledger, which hands it back to
// ApplyBlock with the transaction.
class PreparedTransaction {
 public:
  virtual ~PreparedTransaction() = default;
};

// Computes the state root of each block (the views, issue "authenticated
// map"). ApplyBlock, CommitBlock and AbortBlock are called on the commit
// thread only, in height order, but pipelined: ApplyBlock(h + 1) may come
// before CommitBlock(h), and must then build on the prepared block h. Blocks
// commit in height order. PrepareTransaction is called on any submitting
// thread.
class StateHook {
 public:
  virtual ~StateHook() = default;
  // Called on the submitting thread, after the ledger's own checks and
  // before `tx` is queued, so the work that needs no state (decoding,
  // checking the operations) is spread over the writers' threads instead of
  // done on the commit thread. An error fails the transaction at once; it is
  // never queued. The result (null by default) comes back to ApplyBlock.
  virtual Result<std::unique_ptr<PreparedTransaction>> PrepareTransaction(const Transaction& /*tx*/) {
    return std::unique_ptr<PreparedTransaction>();
  }
  // Applies the block's transactions to in-memory state and returns the state
  // root to commit in its header, whose timestamp will be `timestamp_us`.
  // `prepared[i]` is what PrepareTransaction returned for `txs[i]`; the hook
  // may consume it (a block is applied once). A transaction the state
  // refuses (a bad operation, a conflict) gets a non-OK status in `verdicts`
  // (same index; all OK on entry) and must leave no effect: the ledger
  // leaves it out of the block and fails it with that status. Returning an
  // error fails every transaction of the block; the block is not written.
  virtual Result<merkle::Hash> ApplyBlock(std::uint64_t height, std::int64_t timestamp_us,
                                          std::span<const Transaction> txs,
                                          std::span<std::unique_ptr<PreparedTransaction>> prepared,
                                          std::span<Status> verdicts) = 0;
  // Block `height`, the oldest prepared one, is durable in the journal.
  virtual void CommitBlock(std::uint64_t height) = 0;
  // Block `height` was not made durable: roll it back, with every block
  // prepared after it (they were built on it). Nothing to do if `height` was
  // never prepared (ApplyBlock refused every transaction).
  virtual void AbortBlock(std::uint64_t height) = 0;
};

struct LedgerOptions {
  StoreOptions store;
  const Clock* clock = &SystemClock::Default();
  StateHook* state = nullptr;  // not owned; zero state roots when null
  // Group commit: a block takes at most this many transactions / bytes.
  size_t max_block_transactions = 8192;
  size_t max_block_bytes = 16u << 20;
  // Back-pressure: transactions waiting for a block.
  size_t queue_capacity = 65536;
  std::chrono::milliseconds enqueue_timeout{5000};
  // Per-transaction limits (InvalidArgument beyond them). The operation
  // count is capped at kMaxOperationsPerTransaction and each body at
  // kMaxOperationBodySize whatever is set here, so every accepted
  // transaction decodes again on replay.
  size_t max_transaction_bytes = 4u << 20;
  size_t max_operations_per_transaction = 10000;
};

// What an acknowledged transaction gets back: it is durable.
struct Receipt {
  std::uint64_t tx_seq = 0;
  std::uint64_t block_height = 0;
  std::uint32_t index_in_block = 0;
  merkle::Hash tx_hash{};
  merkle::Hash block_hash{};
};

struct LedgerStats {
  std::uint64_t blocks = 0;
  std::uint64_t transactions = 0;
  size_t queued = 0;
  // Where the time of the commit and writer threads went since this Ledger
  // was opened, summed over the blocks written (`committed_blocks`; refused
  // or failed blocks are not counted). Monotonic-clock nanoseconds, for
  // profiling only: queue_wait_ns: from the oldest transaction's enqueue to
  // the commit thread taking the batch (its wake-up latency when the ledger
  // is idle); apply_ns: the state hook (views), on the commit thread;
  // store_ns: the journal write including its syncs, on the writer thread
  // (it overlaps the next block's apply); ack_wait_ns: from the block being
  // durable to the ack thread picking it up.
  std::uint64_t committed_blocks = 0;
  std::uint64_t queue_wait_ns = 0;
  std::uint64_t apply_ns = 0;
  std::uint64_t store_ns = 0;
  std::uint64_t ack_wait_ns = 0;
};

// Ledger names are 1..128 characters of [A-Za-z0-9._/-], starting with an
// alphanumeric: they are checkpoint origins and C2SP key names.
Status ValidateLedgerName(std::string_view name);

class Ledger {
 public:
  // Creates a new ledger in `dir`: an Ed25519 key in dir/signing.key (mode
  // 0600) and the ledger metadata. AlreadyExists if dir holds a ledger.
  static Result<std::unique_ptr<Ledger>> Create(const std::string& dir, std::string_view name,
                                                const LedgerOptions& options);
  // Opens an existing ledger and verifies its tip. NotFound if dir holds no
  // ledger; DataLoss if the tip, key or checkpoint does not verify.
  static Result<std::unique_ptr<Ledger>> Open(const std::string& dir, const LedgerOptions& options);

  // Commits everything queued, then stops the commit thread.
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  const LedgerMeta& meta() const;
  std::string vkey() const;

  // Appends a transaction and returns once the block holding it is durable.
  // InvalidArgument (limits), ResourceExhausted (queue full past the
  // timeout), Unavailable (closing) or the store's error.
  Result<Receipt> Append(Transaction tx);
  // Same, but returns at once; `done` runs on the ledger's acknowledgement
  // thread: keep it short, and never call the blocking Append from it (that
  // would wait on the thread that has to answer it).
  void AppendAsync(Transaction tx, std::function<void(Result<Receipt>)> done);

  // Committed blocks (the log tree size) and its root.
  std::uint64_t size() const;
  merkle::Hash root() const;
  LedgerStats stats() const;

  // Signed checkpoint (C2SP tlog-checkpoint note) of the current tree; signed
  // once per size and stored.
  Result<std::string> Checkpoint();

  Result<BlockHeader> GetBlock(std::uint64_t height) const;
  Result<Transaction> GetTransaction(std::uint64_t seq) const;

  // Proofs against the tree of `tree_size` blocks (0 = current size). The
  // ledger checks each proof against its own root before returning it, so
  // tampered storage shows up here as DataLoss.
  Result<BlockProof> ProveBlock(std::uint64_t height, std::uint64_t tree_size = 0) const;
  Result<TransactionProof> ProveTransaction(std::uint64_t seq, std::uint64_t tree_size = 0) const;
  Result<merkle::ConsistencyProof> ProveConsistency(std::uint64_t old_size, std::uint64_t new_size) const;

  JournalStore& store();

 private:
  class Impl;
  explicit Ledger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vellum::journal

#endif  // VELLUM_JOURNAL_LEDGER_H_
