#include "vellum/journal/ledger.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "vellum/base/encoding.h"
#include "vellum/merkle/note.h"

namespace vellum::journal {
namespace {

constexpr const char* kKeyFile = "signing.key";

std::string KeyPath(const std::string& dir) { return (std::filesystem::path(dir) / kKeyFile).string(); }

// Writes the signing key with mode 0600, durably and atomically: a temporary
// file is written and synced, then linked into place (link fails rather than
// replace an existing key), then the directory is synced. A crash leaves
// either no key file or a complete one.
Status WriteKeyFile(const std::string& dir, std::string_view skey) {
  const std::string path = KeyPath(dir);
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable("create " + tmp + ": " + std::strerror(errno));
  const std::string content = std::string(skey) + "\n";
  size_t written = 0;
  Status status;
  while (written < content.size() && status.ok()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) status = Unavailable("write " + tmp + ": " + std::strerror(errno));
    else written += static_cast<size_t>(n);
  }
  if (status.ok() && ::fsync(fd) != 0) status = Unavailable("fsync " + tmp + ": " + std::strerror(errno));
  ::close(fd);
  if (status.ok() && ::link(tmp.c_str(), path.c_str()) != 0) {
    status = errno == EEXIST ? AlreadyExists("key file " + path + " already exists")
                             : Unavailable("link " + path + ": " + std::strerror(errno));
  }
  ::unlink(tmp.c_str());
  if (!status.ok()) return status;
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Result<merkle::NoteSigner> ReadKeyFile(const std::string& dir) {
  const std::string path = KeyPath(dir);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return NotFound("no signing key at " + path);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return FailedPrecondition("signing key " + path + " is accessible by group or others (mode " + mode +
                              "); run chmod 600 on it");
  }
  std::ifstream in(path);
  std::string skey;
  std::getline(in, skey);
  if (!in.good() && !in.eof()) return Unavailable("read " + path);
  auto signer = merkle::NoteSigner::ParseSkey(skey);
  if (!signer.ok()) return signer.status().WithContext("signing key " + path);
  return signer;
}

// Where a blocking Append waits: on its own stack, woken through the atomic,
// with no promise/future or std::function allocation on the hot path.
// The completer sets the result and notifies while holding the mutex, so
// the waiter (which must take the mutex to return) cannot destroy the Waiter
// under it.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::optional<Result<Receipt>> result;
};

std::uint64_t MonotonicNanos() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

struct Pending {
  std::uint64_t enqueued_ns = 0;
  Transaction tx;
  std::unique_ptr<PreparedTransaction> prepared;  // by the state hook, on the submitting thread
  std::string encoded;
  merkle::Hash tx_hash;
  Waiter* waiter = nullptr;                    // blocking Append
  std::function<void(Result<Receipt>)> done;   // AppendAsync
};

void Complete(Pending& p, Result<Receipt> result) {
  if (p.waiter != nullptr) {
    std::lock_guard lock(p.waiter->mu);
    p.waiter->result.emplace(std::move(result));
    p.waiter->done = true;
    p.waiter->cv.notify_one();
  } else {
    p.done(std::move(result));
  }
}

// A block's outcome, handed from the commit thread to the ack thread.
struct Outcome {
  std::vector<std::unique_ptr<Pending>> batch;
  Status status;                 // not OK: every transaction fails with it
  std::vector<Status> verdicts;  // if not empty: batch[i] fails with verdicts[i]
  std::uint64_t first_seq = 0;
  std::uint64_t height = 0;
  merkle::Hash block_hash{};
  std::uint64_t durable_ns = 0;  // committed blocks: when the store returned
};

// Where the hash chain stands after a block: what the next block builds on.
struct Chain {
  std::uint64_t height = 0;  // of the next block
  merkle::CompactRange range;
  merkle::Hash last_hash = merkle::kZeroHash;
  std::int64_t last_timestamp = 0;
  std::uint64_t next_seq = 0;
};

// LedgerStats' phase totals; written by the commit and ack threads.
struct PhaseCounters {
  std::atomic<std::uint64_t> blocks{0}, queue_wait_ns{0}, apply_ns{0}, store_ns{0}, ack_wait_ns{0};
};

}  // namespace

Status ValidateLedgerName(std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return InvalidArgument("ledger name must be 1 to 128 characters, got " + std::to_string(name.size()));
  }
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) {
    return InvalidArgument("ledger name must start with a letter or digit: '" + std::string(name) + "'");
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' && c != '/') {
      return InvalidArgument("ledger name may only hold letters, digits and . _ - /: '" + std::string(name) + "'");
    }
  }
  return Status::Ok();
}

class Ledger::Impl {
 public:
  Impl(std::unique_ptr<JournalStore> store, LedgerMeta meta, merkle::NoteSigner signer, LedgerOptions options)
      : store_(std::move(store)), meta_(std::move(meta)), signer_(std::move(signer)), options_(options) {}

  ~Impl() { Stop(); }

  // Verifies the stored tip and loads the sequencer state from it.
  Status Recover() {
    VELLUM_ASSIGN_OR_RETURN(auto snap, store_->Read());
    const std::uint64_t n = snap->block_count();
    if (n == 0) {
      if (snap->tx_count() != 0) {
        return DataLoss("journal holds " + std::to_string(snap->tx_count()) + " transactions but no block");
      }
    } else {
      VELLUM_RETURN_IF_ERROR(VerifyTip(*snap, n).WithContext("block " + std::to_string(n - 1)));
    }
    VELLUM_ASSIGN_OR_RETURN(durable_.range, merkle::CompactRange::Load(*snap, n));
    VELLUM_ASSIGN_OR_RETURN(auto latest, snap->LatestCheckpoint());
    if (latest.has_value()) {
      const auto& [size, note] = *latest;
      auto cp = merkle::VerifyCheckpoint(note, signer_.verifier());
      if (!cp.ok()) return cp.status().WithContext("checkpoint for size " + std::to_string(size));
      if (cp->size != size || size > n) {
        return DataLoss("checkpoint stored under size " + std::to_string(size) + " says size " +
                        std::to_string(cp->size) + " of a journal with " + std::to_string(n) + " blocks");
      }
      VELLUM_ASSIGN_OR_RETURN(merkle::Hash root_then, merkle::RootAt(*snap, size));
      if (root_then != cp->root) {
        return VerificationFailed({"checkpoint.root", merkle::HashHex(cp->root), merkle::HashHex(root_then), size, n})
            .WithContext("checkpoint for size " + std::to_string(size));
      }
      last_checkpoint_ = *latest;
    }
    durable_.height = n;
    durable_.next_seq = snap->tx_count();
    prepared_ = durable_;
    next_seq_ = durable_.next_seq;
    tip_size_ = n;
    tip_root_ = durable_.range.Root();
    return Status::Ok();
  }

  void Start() {
    ack_thread_ = std::thread([this] { RunAcks(); });
    writer_thread_ = std::thread([this] { RunWriter(); });
    thread_ = std::thread([this] { Run(); });
  }

  // Commits what is queued, acknowledges it, then stops the threads.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    work_cv_.notify_all();
    space_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    {
      std::lock_guard lock(mu_);
      writer_stopping_ = true;
    }
    write_cv_.notify_all();
    if (writer_thread_.joinable()) writer_thread_.join();
    {
      std::lock_guard lock(ack_mu_);
      acks_stopping_ = true;
    }
    ack_cv_.notify_all();
    if (ack_thread_.joinable()) ack_thread_.join();
  }

  Status Validate(const Transaction& tx) const {
    if (options_.store.read_only) return FailedPrecondition("ledger '" + meta_.name + "' is open read-only");
    if (tx.operations.empty()) return InvalidArgument("a transaction needs at least one operation");
    if (tx.operations.size() > options_.max_operations_per_transaction) {
      return InvalidArgument("transaction has " + std::to_string(tx.operations.size()) + " operations; the limit is " +
                             std::to_string(options_.max_operations_per_transaction));
    }
    if (tx.client_token.size() > kMaxClientTokenSize) {
      return InvalidArgument("client token of " + std::to_string(tx.client_token.size()) + " bytes exceeds " +
                             std::to_string(kMaxClientTokenSize));
    }
    // Cheap size bound before encoding (which copies everything): each
    // operation encodes as 6 bytes plus its body.
    size_t bytes = 2 + 4 + tx.client_token.size() + 4;
    for (size_t i = 0; i < tx.operations.size(); ++i) {
      const size_t body = tx.operations[i].body.size();
      if (body > kMaxOperationBodySize) {
        return InvalidArgument("operation " + std::to_string(i) + " body of " + std::to_string(body) +
                               " bytes exceeds " + std::to_string(kMaxOperationBodySize));
      }
      bytes += 6 + body;
    }
    if (bytes > options_.max_transaction_bytes) {
      return InvalidArgument("transaction of " + std::to_string(bytes) + " bytes exceeds the limit of " +
                             std::to_string(options_.max_transaction_bytes));
    }
    return Status::Ok();
  }

  // Validates and queues `tx`; completes `pending` (waiter or callback) with
  // the receipt once durable, or at once with the error.
  void Submit(Transaction tx, std::unique_ptr<Pending> pending) {
    Status invalid = Validate(tx);
    if (invalid.ok() && options_.state != nullptr) {
      auto prepared = options_.state->PrepareTransaction(tx);
      if (prepared.ok()) pending->prepared = std::move(prepared).value();
      else invalid = prepared.status();
    }
    if (invalid.ok()) {
      pending->encoded = EncodeTransaction(tx);
      if (pending->encoded.size() > options_.max_transaction_bytes) {
        invalid = InvalidArgument("transaction of " + std::to_string(pending->encoded.size()) +
                                  " bytes exceeds the limit of " + std::to_string(options_.max_transaction_bytes));
      }
    }
    if (!invalid.ok()) return Complete(*pending, std::move(invalid));
    // Hash in the caller's thread: it spreads the work over the writers.
    pending->tx_hash = TransactionHash(pending->encoded);
    pending->tx = std::move(tx);
    {
      std::unique_lock lock(mu_);
      const bool has_space = space_cv_.wait_for(lock, options_.enqueue_timeout, [&] {
        return stopping_ || queue_.size() < options_.queue_capacity;
      });
      if (stopping_ || !has_space) {
        lock.unlock();
        return Complete(*pending, stopping_ ? Unavailable("ledger '" + meta_.name + "' is closing")
                                            : ResourceExhausted("commit queue of ledger '" + meta_.name +
                                                                "' is full (" + std::to_string(options_.queue_capacity) +
                                                                " transactions)"));
      }
      pending->enqueued_ns = MonotonicNanos();
      queue_.push_back(std::move(pending));
    }
    work_cv_.notify_one();
  }

  Result<Receipt> Append(Transaction tx) {
    Waiter waiter;
    auto pending = std::make_unique<Pending>();
    pending->waiter = &waiter;
    Submit(std::move(tx), std::move(pending));
    std::unique_lock lock(waiter.mu);
    waiter.cv.wait(lock, [&] { return waiter.done; });
    return std::move(*waiter.result);
  }

  void AppendAsync(Transaction tx, std::function<void(Result<Receipt>)> done) {
    auto pending = std::make_unique<Pending>();
    pending->done = std::move(done);
    Submit(std::move(tx), std::move(pending));
  }

  std::uint64_t size() const {
    std::lock_guard lock(tip_mu_);
    return tip_size_;
  }
  merkle::Hash root() const {
    std::lock_guard lock(tip_mu_);
    return tip_root_;
  }
  size_t queued() const {
    std::lock_guard lock(mu_);
    return queue_.size();
  }
  std::uint64_t tx_count() const {
    std::lock_guard lock(tip_mu_);
    return next_seq_;
  }
  LedgerStats stats() const {
    LedgerStats s{size(), tx_count(), queued()};
    s.committed_blocks = phases_.blocks.load(std::memory_order_relaxed);
    s.queue_wait_ns = phases_.queue_wait_ns.load(std::memory_order_relaxed);
    s.apply_ns = phases_.apply_ns.load(std::memory_order_relaxed);
    s.store_ns = phases_.store_ns.load(std::memory_order_relaxed);
    s.ack_wait_ns = phases_.ack_wait_ns.load(std::memory_order_relaxed);
    return s;
  }

  Result<std::string> Checkpoint() {
    std::uint64_t size;
    merkle::Hash root;
    {
      std::lock_guard lock(tip_mu_);
      size = tip_size_;
      root = tip_root_;
    }
    std::lock_guard lock(checkpoint_mu_);
    if (last_checkpoint_.has_value() && last_checkpoint_->first == size) return last_checkpoint_->second;
    const std::string body = merkle::FormatCheckpointBody({meta_.name, size, root, {}});
    VELLUM_ASSIGN_OR_RETURN(std::string note, signer_.Sign(body));
    VELLUM_RETURN_IF_ERROR(store_->PutCheckpoint(size, note));
    if (!last_checkpoint_.has_value() || last_checkpoint_->first < size) last_checkpoint_ = {size, note};
    return note;
  }

  // Resolves tree_size (0 = newest) against what `snap` holds, so a block
  // committed after the snapshot was taken cannot be asked of it.
  static Result<std::uint64_t> ResolveSize(const Snapshot& snap, std::uint64_t tree_size) {
    const std::uint64_t current = snap.block_count();
    if (tree_size == 0) tree_size = current;
    if (tree_size > current) {
      return OutOfRange("tree size " + std::to_string(tree_size) + " is beyond the ledger's " +
                        std::to_string(current) + " blocks");
    }
    return tree_size;
  }

  Result<BlockProof> ProveBlock(const Snapshot& snap, std::uint64_t height, std::uint64_t tree_size) const {
    VELLUM_ASSIGN_OR_RETURN(tree_size, ResolveSize(snap, tree_size));
    if (height >= tree_size) {
      return OutOfRange("block " + std::to_string(height) + " is not in the tree of " + std::to_string(tree_size) + " blocks");
    }
    BlockProof proof;
    VELLUM_ASSIGN_OR_RETURN(proof.header, snap.Header(height));
    VELLUM_ASSIGN_OR_RETURN(proof.inclusion.path, merkle::InclusionPath(snap, height, tree_size));
    proof.inclusion.leaf_index = height;
    proof.inclusion.tree_size = tree_size;
    VELLUM_ASSIGN_OR_RETURN(merkle::Hash root, merkle::RootAt(snap, tree_size));
    // Self-check: tampered headers or nodes must not leave the server as a "proof".
    auto verified = VerifyBlockProof(proof, tree_size, root);
    if (!verified.ok()) return verified.status().WithContext("stored block " + std::to_string(height) + " does not verify");
    return proof;
  }

  Result<TransactionProof> ProveTransaction(std::uint64_t seq, std::uint64_t tree_size) const {
    VELLUM_ASSIGN_OR_RETURN(auto snap, store_->Read());
    VELLUM_ASSIGN_OR_RETURN(tree_size, ResolveSize(*snap, tree_size));
    if (seq >= snap->tx_count()) return NotFound("no transaction " + std::to_string(seq));
    VELLUM_ASSIGN_OR_RETURN(std::uint64_t height, FindBlockOf(*snap, seq));
    if (height >= tree_size) {
      return OutOfRange("transaction " + std::to_string(seq) + " is in block " + std::to_string(height) +
                        ", beyond tree size " + std::to_string(tree_size));
    }
    TransactionProof proof;
    VELLUM_ASSIGN_OR_RETURN(proof.block, ProveBlock(*snap, height, tree_size));
    VELLUM_ASSIGN_OR_RETURN(BlockHeader header, DecodeBlockHeader(proof.block.header));
    std::vector<merkle::Hash> leaves;
    leaves.reserve(header.tx_count);
    for (std::uint32_t i = 0; i < header.tx_count; ++i) {
      VELLUM_ASSIGN_OR_RETURN(std::string tx, snap->Transaction(header.first_tx_seq + i));
      if (header.first_tx_seq + i == seq) proof.transaction = tx;
      leaves.push_back(TransactionLeafHash(tx));
    }
    proof.tx_seq = seq;
    proof.index_in_block = static_cast<std::uint32_t>(seq - header.first_tx_seq);
    VELLUM_ASSIGN_OR_RETURN(proof.tx_path, merkle::InclusionPathFromLeafHashes(leaves, proof.index_in_block));
    VELLUM_ASSIGN_OR_RETURN(merkle::Hash root, merkle::RootAt(*snap, tree_size));
    auto verified = VerifyTransactionProof(proof, tree_size, root);
    if (!verified.ok()) return verified.status().WithContext("stored transaction " + std::to_string(seq) + " does not verify");
    return proof;
  }

  Result<merkle::ConsistencyProof> ProveConsistency(std::uint64_t old_size, std::uint64_t new_size) const {
    VELLUM_ASSIGN_OR_RETURN(auto snap, store_->Read());
    VELLUM_ASSIGN_OR_RETURN(new_size, ResolveSize(*snap, new_size));
    merkle::ConsistencyProof proof{old_size, new_size, {}};
    VELLUM_ASSIGN_OR_RETURN(proof.path, merkle::ConsistencyPath(*snap, old_size, new_size));
    return proof;
  }

  Result<std::unique_ptr<Snapshot>> Read() const { return store_->Read(); }
  JournalStore& store() { return *store_; }
  const LedgerMeta& meta() const { return meta_; }
  const merkle::NoteSigner& signer() const { return signer_; }

 private:
  // Binary search over headers for the block holding `seq`.
  static Result<std::uint64_t> FindBlockOf(const Snapshot& snap, std::uint64_t seq) {
    std::uint64_t lo = 0, hi = snap.block_count();
    while (hi - lo > 1) {
      const std::uint64_t mid = lo + (hi - lo) / 2;
      VELLUM_ASSIGN_OR_RETURN(std::string raw, snap.Header(mid));
      VELLUM_ASSIGN_OR_RETURN(BlockHeader h, DecodeBlockHeader(raw));
      if (h.first_tx_seq <= seq) lo = mid; else hi = mid;
    }
    return lo;
  }

  Status VerifyTip(const Snapshot& snap, std::uint64_t n) {
    VELLUM_ASSIGN_OR_RETURN(std::string raw, snap.Header(n - 1));
    VELLUM_ASSIGN_OR_RETURN(BlockHeader header, DecodeBlockHeader(raw));
    if (header.height != n - 1) {
      return VerificationFailed({"block.height", std::to_string(n - 1), std::to_string(header.height), n - 1, n});
    }
    if (header.ledger_id != meta_.id) return VerificationFailed({"block.ledger_id", "", "", n - 1, n});
    merkle::Hash expected_prev = merkle::kZeroHash;
    std::uint64_t expected_first_seq = 0;
    if (n > 1) {
      VELLUM_ASSIGN_OR_RETURN(std::string prev_raw, snap.Header(n - 2));
      VELLUM_ASSIGN_OR_RETURN(BlockHeader prev, DecodeBlockHeader(prev_raw));
      expected_prev = BlockHash(prev_raw);
      expected_first_seq = prev.first_tx_seq + prev.tx_count;
      if (header.timestamp_us < prev.timestamp_us) {
        return VerificationFailed({"block.timestamp", std::to_string(prev.timestamp_us),
                                   std::to_string(header.timestamp_us), n - 1, n});
      }
    }
    if (header.prev_hash != expected_prev) {
      return VerificationFailed({"chain.prev_hash", merkle::HashHex(expected_prev), merkle::HashHex(header.prev_hash), n - 1, n});
    }
    if (header.first_tx_seq != expected_first_seq || header.first_tx_seq + header.tx_count != snap.tx_count()) {
      return VerificationFailed({"block.tx_range", std::to_string(snap.tx_count()),
                                 std::to_string(header.first_tx_seq + header.tx_count), n - 1, n});
    }
    std::vector<merkle::Hash> leaves;
    leaves.reserve(header.tx_count);
    for (std::uint32_t i = 0; i < header.tx_count; ++i) {
      VELLUM_ASSIGN_OR_RETURN(std::string tx, snap.Transaction(header.first_tx_seq + i));
      leaves.push_back(TransactionLeafHash(tx));
    }
    const merkle::Hash tx_root = merkle::RootFromLeafHashes(leaves);
    if (tx_root != header.tx_root) {
      return VerificationFailed({"block.tx_root", merkle::HashHex(header.tx_root), merkle::HashHex(tx_root), n - 1, n});
    }
    VELLUM_ASSIGN_OR_RETURN(merkle::Hash stored_leaf, snap.PerfectNode(0, n - 1));
    const merkle::Hash block_hash = BlockHash(raw);
    if (stored_leaf != block_hash) {
      return VerificationFailed({"log.leaf", merkle::HashHex(block_hash), merkle::HashHex(stored_leaf), n - 1, n});
    }
    durable_.last_hash = block_hash;
    durable_.last_timestamp = header.timestamp_us;
    return Status::Ok();
  }

  // The commit thread takes a batch, applies it to the state and builds its
  // block (Prepare), and hands the block to the writer thread, which writes
  // and syncs it (Write). While block h is written, the commit thread
  // prepares block h+1 on top of it; it then waits for h's write before
  // handing h+1 over, and finishes h (Finish: commits the state, publishes the
  // tip, acknowledges). So one block is written while the next is applied,
  // and never more: a block is acknowledged only once durable, in order.
  void Run() {
    std::unique_ptr<InFlight> at_writer;
    for (;;) {
      std::vector<std::unique_ptr<Pending>> batch;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || (at_writer && written_); });
        if (queue_.empty()) {
          if (!at_writer) return;  // stopping and drained
        } else {
          size_t bytes = 0;
          while (!queue_.empty() && batch.size() < options_.max_block_transactions &&
                 (batch.empty() || bytes + queue_.front()->encoded.size() <= options_.max_block_bytes)) {
            bytes += queue_.front()->encoded.size();
            batch.push_back(std::move(queue_.front()));
            queue_.pop_front();
          }
        }
      }
      std::unique_ptr<InFlight> next;
      if (!batch.empty()) {
        space_cv_.notify_all();
        next = Prepare(std::move(batch));
      }
      if (at_writer) {
        const bool durable = AwaitWrite(*at_writer);
        const std::uint64_t failed_height = at_writer->write.height;
        const Status failure = at_writer->status;
        Finish(std::move(at_writer));
        if (!durable && next) {
          // `next` was built on the block that failed: the state already
          // dropped it with that block (AbortBlock); fail its transactions.
          Fail(std::move(next->batch), next->write.height,
               failure.WithContext("block " + std::to_string(failed_height) +
                                   ", which the block holding this transaction follows, was not written"));
          next.reset();
        }
      }
      if (next) {
        std::lock_guard lock(mu_);
        to_write_ = next.get();
        written_ = false;
        at_writer = std::move(next);
        write_cv_.notify_one();
      }
    }
  }

  // A block prepared by the commit thread, written by the writer thread.
  struct InFlight {
    std::vector<std::unique_ptr<Pending>> batch;
    std::string header;  // encoded; `write` views it (and the batch's encodings)
    BlockWrite write;    // its height, header, transactions and log-tree nodes
    Chain chain;  // after this block
    std::uint64_t taken_ns = 0, applied_ns = 0, queue_wait_ns = 0;
    // Set by the writer.
    Status status;
    std::uint64_t store_begin_ns = 0, durable_ns = 0;
  };

  // Applies the batch to the state on top of the prepared chain and builds
  // its block; null (the batch handed off as failed) if the state refuses
  // every transaction or fails.
  std::unique_ptr<InFlight> Prepare(std::vector<std::unique_ptr<Pending>> batch) {
    auto b = std::make_unique<InFlight>();
    b->taken_ns = MonotonicNanos();
    b->queue_wait_ns = b->taken_ns - batch.front()->enqueued_ns;  // the queue is FIFO
    const std::uint64_t height = prepared_.height;
    BlockHeader header;
    // Chosen before the state is applied: document revisions record it.
    header.timestamp_us = std::max(options_.clock->NowMicros(), prepared_.last_timestamp);
    if (options_.state != nullptr) {
      std::vector<Transaction> txs;
      std::vector<std::unique_ptr<PreparedTransaction>> prepared;
      txs.reserve(batch.size());
      prepared.reserve(batch.size());
      for (auto& p : batch) {  // only the hook reads them
        txs.push_back(std::move(p->tx));
        prepared.push_back(std::move(p->prepared));
      }
      std::vector<Status> verdicts(batch.size());
      auto state_root = options_.state->ApplyBlock(height, header.timestamp_us, txs, prepared, verdicts);
      if (!state_root.ok()) {
        Fail(std::move(batch), height, state_root.status());
        return nullptr;
      }
      header.state_root = *state_root;
      // Refused transactions leave the block and fail on their own.
      Outcome refused;
      std::vector<std::unique_ptr<Pending>> accepted;
      accepted.reserve(batch.size());
      for (size_t i = 0; i < batch.size(); ++i) {
        if (verdicts[i].ok()) {
          accepted.push_back(std::move(batch[i]));
        } else {
          refused.batch.push_back(std::move(batch[i]));
          refused.verdicts.push_back(std::move(verdicts[i]));
        }
      }
      batch = std::move(accepted);
      // The state settles before the refused hear back: a client told of
      // its refusal never sees the block's abort still to come.
      if (batch.empty()) options_.state->AbortBlock(height);
      if (!refused.batch.empty()) HandOff(std::move(refused));
      if (batch.empty()) return nullptr;
    }
    b->applied_ns = MonotonicNanos();
    header.ledger_id = meta_.id;
    header.height = height;
    header.prev_hash = prepared_.last_hash;
    header.first_tx_seq = prepared_.next_seq;
    header.tx_count = static_cast<std::uint32_t>(batch.size());
    std::vector<merkle::Hash> leaves;
    leaves.reserve(batch.size());
    for (const auto& p : batch) leaves.push_back(merkle::HashLeaf(merkle::HashView(p->tx_hash)));
    header.tx_root = merkle::RootFromLeafHashes(leaves);

    b->header = EncodeBlockHeader(header);
    b->write.header = b->header;
    b->chain = prepared_;
    b->chain.height = height + 1;
    b->chain.last_hash = BlockHash(b->header);
    b->chain.last_timestamp = header.timestamp_us;
    b->chain.next_seq = header.first_tx_seq + batch.size();
    b->write.height = height;
    b->write.first_tx_seq = header.first_tx_seq;
    b->write.txs.reserve(batch.size());
    for (const auto& p : batch) b->write.txs.push_back(p->encoded);
    b->chain.range.Append(b->chain.last_hash, [&](std::uint32_t level, std::uint64_t index, const merkle::Hash& h) {
      b->write.nodes.push_back({level, index, h});
    });
    b->batch = std::move(batch);
    prepared_ = b->chain;
    return b;
  }

  // The writer thread: writes and syncs one block at a time.
  void RunWriter() {
    std::unique_lock lock(mu_);
    for (;;) {
      write_cv_.wait(lock, [&] { return writer_stopping_ || to_write_ != nullptr; });
      if (to_write_ == nullptr) return;  // stopping, nothing left to write
      InFlight* b = std::exchange(to_write_, nullptr);
      lock.unlock();
      b->store_begin_ns = MonotonicNanos();
      Status status = store_->AppendBlock(b->write);
      if (!status.ok() && BlockReachedStore(b->write.height, b->header)) {
        // The commit reported an error but the block is durable (a late
        // failure in LMDB's commit): it is committed, whatever was reported.
        status = Status::Ok();
      }
      b->durable_ns = MonotonicNanos();
      lock.lock();
      b->status = std::move(status);
      written_ = true;
      work_cv_.notify_all();
    }
  }

  // Waits for the writer to finish `b`; true if it is durable.
  bool AwaitWrite(const InFlight& b) {
    std::unique_lock lock(mu_);
    work_cv_.wait(lock, [&] { return written_; });
    return b.status.ok();
  }

  // After the write: commits the block's state, publishes the tip and hands
  // the block to the ack thread; or, if the write failed, rolls the state and
  // the prepared chain back to the last durable block and fails the block.
  void Finish(std::unique_ptr<InFlight> b) {
    if (!b->status.ok()) {
      if (options_.state != nullptr) options_.state->AbortBlock(b->write.height);
      prepared_ = durable_;
      Fail(std::move(b->batch), b->write.height, b->status);
      return;
    }
    phases_.blocks.fetch_add(1, std::memory_order_relaxed);
    phases_.queue_wait_ns.fetch_add(b->queue_wait_ns, std::memory_order_relaxed);
    phases_.apply_ns.fetch_add(b->applied_ns - b->taken_ns, std::memory_order_relaxed);
    phases_.store_ns.fetch_add(b->durable_ns - b->store_begin_ns, std::memory_order_relaxed);
    if (options_.state != nullptr) options_.state->CommitBlock(b->write.height);
    durable_ = b->chain;
    const std::uint64_t first_seq = b->write.first_tx_seq;
    {
      std::lock_guard lock(tip_mu_);
      tip_size_ = durable_.height;
      tip_root_ = durable_.range.Root();
      next_seq_ = durable_.next_seq;
    }
    HandOff({std::move(b->batch), Status::Ok(), {}, first_seq, b->write.height, durable_.last_hash, b->durable_ns});
  }

  // True iff block `height` with exactly this header is in the store.
  bool BlockReachedStore(std::uint64_t height, const std::string& header) const {
    auto snap = store_->Read();
    if (!snap.ok() || (*snap)->block_count() <= height) return false;
    auto stored = (*snap)->Header(height);
    return stored.ok() && *stored == header;
  }

  // Waking writers is left to the ack thread, so it overlaps the next
  // block's write and sync instead of delaying them.
  void HandOff(Outcome outcome) {
    {
      std::lock_guard lock(ack_mu_);
      acks_.push_back(std::move(outcome));
    }
    ack_cv_.notify_one();
  }

  // Every transaction of `batch` (meant for block `height`) fails with `status`.
  void Fail(std::vector<std::unique_ptr<Pending>> batch, std::uint64_t height, Status status) {
    HandOff({std::move(batch), std::move(status), {}, 0, height, {}});
  }

  void RunAcks() {
    std::deque<Outcome> ready;
    for (;;) {
      {
        std::unique_lock lock(ack_mu_);
        ack_cv_.wait(lock, [&] { return acks_stopping_ || !acks_.empty(); });
        if (acks_.empty()) return;
        ready.swap(acks_);
      }
      for (Outcome& o : ready) {
        if (o.durable_ns != 0) phases_.ack_wait_ns.fetch_add(MonotonicNanos() - o.durable_ns, std::memory_order_relaxed);
        for (size_t i = 0; i < o.batch.size(); ++i) {
          Pending& p = *o.batch[i];
          if (!o.verdicts.empty()) {
            Complete(p, o.verdicts[i]);
          } else if (o.status.ok()) {
            Complete(p, Receipt{o.first_seq + i, o.height, static_cast<std::uint32_t>(i), p.tx_hash, o.block_hash});
          } else {
            Complete(p, o.status);
          }
        }
      }
      ready.clear();
    }
  }

  std::unique_ptr<JournalStore> store_;
  LedgerMeta meta_;
  merkle::NoteSigner signer_;
  LedgerOptions options_;

  // Queue (producers -> commit thread).
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable space_cv_;
  std::deque<std::unique_ptr<Pending>> queue_;
  bool stopping_ = false;
  std::thread thread_;

  // Writer thread (guarded by mu_): the block to write, and whether the block
  // last handed over is written (its status set).
  std::condition_variable write_cv_;
  InFlight* to_write_ = nullptr;
  bool written_ = false;
  bool writer_stopping_ = false;
  std::thread writer_thread_;

  // Commit-thread state: the chain after the last durable block, and after
  // the last prepared one (the same, or one block ahead).
  Chain durable_;
  Chain prepared_;

  // Published tip (written by the commit thread, read by anyone).
  mutable std::mutex tip_mu_;
  std::uint64_t tip_size_ = 0;
  merkle::Hash tip_root_{};
  std::uint64_t next_seq_ = 0;

  // Acknowledgements (commit thread -> ack thread).
  std::mutex ack_mu_;
  std::condition_variable ack_cv_;
  std::deque<Outcome> acks_;
  bool acks_stopping_ = false;
  std::thread ack_thread_;

  PhaseCounters phases_;

  std::mutex checkpoint_mu_;
  std::optional<std::pair<std::uint64_t, std::string>> last_checkpoint_;
};

Ledger::Ledger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ledger::~Ledger() = default;

Result<std::unique_ptr<Ledger>> Ledger::Create(const std::string& dir, std::string_view name,
                                               const LedgerOptions& options) {
  VELLUM_RETURN_IF_ERROR(ValidateLedgerName(name));
  if (options.store.read_only) return InvalidArgument("cannot create a ledger read-only");
  {
    VELLUM_ASSIGN_OR_RETURN(auto store, JournalStore::Open(dir, options.store));
    VELLUM_ASSIGN_OR_RETURN(auto existing, store->ReadMeta());
    if (existing.has_value()) return AlreadyExists("a ledger '" + existing->name + "' already exists in " + dir);
    // A key without metadata is what a crash during creation leaves: reuse it.
    auto signer = ReadKeyFile(dir);
    if (!signer.ok()) {
      if (signer.status().code() != StatusCode::kNotFound) return signer.status();
      VELLUM_ASSIGN_OR_RETURN(merkle::NoteSigner fresh, merkle::NoteSigner::Generate(name));
      VELLUM_RETURN_IF_ERROR(WriteKeyFile(dir, fresh.Skey()));
      signer = std::move(fresh);
    } else if (signer->name() != name) {
      return AlreadyExists("directory " + dir + " holds the signing key of ledger '" + signer->name() + "'");
    }
    LedgerMeta meta;
    meta.name = std::string(name);
    meta.vkey = signer->Vkey();
    meta.created_us = options.clock->NowMicros();
    meta.id = DeriveLedgerId(meta.name, meta.vkey, meta.created_us);
    VELLUM_RETURN_IF_ERROR(store->WriteMeta(meta));
  }
  return Open(dir, options);
}

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& dir, const LedgerOptions& options) {
  VELLUM_ASSIGN_OR_RETURN(auto store, JournalStore::Open(dir, options.store));
  VELLUM_ASSIGN_OR_RETURN(auto meta, store->ReadMeta());
  if (!meta.has_value()) return NotFound("no ledger in " + dir);
  VELLUM_ASSIGN_OR_RETURN(merkle::NoteSigner signer, ReadKeyFile(dir));
  if (signer.Vkey() != meta->vkey) {
    return DataLoss("signing key in " + KeyPath(dir) + " (" + signer.Vkey() + ") is not the ledger's key (" + meta->vkey + ")");
  }
  // Never accept what the decoder (and so replay and audit) would refuse.
  LedgerOptions clamped = options;
  clamped.max_operations_per_transaction = std::min(clamped.max_operations_per_transaction, kMaxOperationsPerTransaction);
  auto impl = std::make_unique<Impl>(std::move(store), std::move(*meta), std::move(signer), clamped);
  VELLUM_RETURN_IF_ERROR(impl->Recover().WithContext("ledger in " + dir + " does not verify"));
  if (!options.store.read_only) impl->Start();
  return std::unique_ptr<Ledger>(new Ledger(std::move(impl)));
}

const LedgerMeta& Ledger::meta() const { return impl_->meta(); }
std::string Ledger::vkey() const { return impl_->meta().vkey; }

Result<Receipt> Ledger::Append(Transaction tx) { return impl_->Append(std::move(tx)); }

void Ledger::AppendAsync(Transaction tx, std::function<void(Result<Receipt>)> done) {
  impl_->AppendAsync(std::move(tx), std::move(done));
}

std::uint64_t Ledger::size() const { return impl_->size(); }
merkle::Hash Ledger::root() const { return impl_->root(); }
LedgerStats Ledger::stats() const { return impl_->stats(); }
Result<std::string> Ledger::Checkpoint() { return impl_->Checkpoint(); }

Result<BlockHeader> Ledger::GetBlock(std::uint64_t height) const {
  VELLUM_ASSIGN_OR_RETURN(auto snap, impl_->Read());
  VELLUM_ASSIGN_OR_RETURN(std::string raw, snap->Header(height));
  return DecodeBlockHeader(raw);
}

Result<Transaction> Ledger::GetTransaction(std::uint64_t seq) const {
  VELLUM_ASSIGN_OR_RETURN(auto snap, impl_->Read());
  VELLUM_ASSIGN_OR_RETURN(std::string raw, snap->Transaction(seq));
  return DecodeTransaction(raw);
}

Result<BlockProof> Ledger::ProveBlock(std::uint64_t height, std::uint64_t tree_size) const {
  VELLUM_ASSIGN_OR_RETURN(auto snap, impl_->Read());
  return impl_->ProveBlock(*snap, height, tree_size);
}

Result<TransactionProof> Ledger::ProveTransaction(std::uint64_t seq, std::uint64_t tree_size) const {
  return impl_->ProveTransaction(seq, tree_size);
}

Result<merkle::ConsistencyProof> Ledger::ProveConsistency(std::uint64_t old_size, std::uint64_t new_size) const {
  return impl_->ProveConsistency(old_size, new_size);
}

JournalStore& Ledger::store() { return impl_->store(); }

}  // namespace vellum::journal
