// JournalStore: the LMDB-backed, append-only store of one ledger's journal
// (docs/FORMAT.md, "Journal store").
//
// Tables (each keyed so that appends go to the end, written with MDB_APPEND):
//   blocks      u64be height          -> block header encoding
//   txs         u64be tx sequence      -> transaction encoding
//   log_nodes   PerfectNodeKey(level, index) -> 32-byte perfect-subtree hash
//   checkpoints u64be tree size        -> signed checkpoint note
//   meta        "ledger"               -> LedgerMeta encoding
//
// Durability: with StoreOptions::sync (the default) AppendBlock returns only
// after LMDB has synced the write transaction, so an acknowledged block
// survives kill -9 and power loss. A block, its transactions and its log-tree
// nodes are written in one LMDB transaction: either all exist or none.
//
// Thread-safety: a JournalStore may be shared by threads. Writes are
// serialized by LMDB; Snapshot objects are read transactions, each used by
// one thread at a time, and must not outlive the store.
#ifndef VELLUM_JOURNAL_STORE_H_
#define VELLUM_JOURNAL_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/journal/format.h"
#include "vellum/merkle/log_tree.h"

namespace vellum::journal {

struct StoreOptions {
  // fsync on every commit. Turning it off loses acknowledged blocks on power
  // loss; only benchmarks that say so may do it.
  bool sync = true;
  // Upper bound of the memory map (the file grows as needed up to this).
  std::uint64_t map_size = std::uint64_t{1} << 36;  // 64 GiB
  // Open read-only (vellum-audit beside a live server).
  bool read_only = false;
  // Synced zero-filled space kept ahead of LMDB's last page, so a block's
  // flush does not also have to grow the file (0 disables it).
  std::uint64_t preallocate_bytes = 32u << 20;
};

struct LedgerMeta {
  std::string name;
  LedgerId id{};
  std::string vkey;  // C2SP verifier key of the ledger's signing key
  std::int64_t created_us = 0;
};

struct NodeWrite {
  std::uint32_t level = 0;
  std::uint64_t index = 0;
  merkle::Hash hash{};
};

// Everything one block adds to the store.
struct BlockWrite {
  std::uint64_t height = 0;
  std::string_view header;                 // encoded header
  std::uint64_t first_tx_seq = 0;
  std::vector<std::string_view> txs;       // encoded transactions, in order
  std::vector<NodeWrite> nodes;            // log-tree nodes completed by this block
};

// A consistent read view (an LMDB read transaction).
class Snapshot : public merkle::NodeReader {
 public:
  ~Snapshot() override = default;
  virtual std::uint64_t block_count() const = 0;
  virtual std::uint64_t tx_count() const = 0;
  // NotFound if the height / sequence is not stored.
  virtual Result<std::string> Header(std::uint64_t height) const = 0;
  virtual Result<std::string> Transaction(std::uint64_t seq) const = 0;
  // The newest stored checkpoint as (tree size, note), if any.
  virtual Result<std::optional<std::pair<std::uint64_t, std::string>>> LatestCheckpoint() const = 0;
  // NotFound if no checkpoint was stored for that size.
  virtual Result<std::string> CheckpointAt(std::uint64_t tree_size) const = 0;
  // Every stored checkpoint, oldest first.
  virtual Result<std::vector<std::pair<std::uint64_t, std::string>>> AllCheckpoints() const = 0;
};

class JournalStore {
 public:
  // Opens or creates the store in directory `dir` (created if missing unless
  // read-only). Errors: NotFound (read-only and missing), Unavailable/Internal
  // for LMDB failures, with LMDB's message.
  static Result<std::unique_ptr<JournalStore>> Open(const std::string& dir, const StoreOptions& options);
  virtual ~JournalStore() = default;

  virtual const std::string& dir() const = 0;
  // nullopt for a store that holds no ledger yet.
  virtual Result<std::optional<LedgerMeta>> ReadMeta() const = 0;
  // AlreadyExists if the store already holds a ledger.
  virtual Status WriteMeta(const LedgerMeta& meta) = 0;
  // Appends one block in one durable write transaction. FailedPrecondition if
  // the height or sequence numbers do not continue the store;
  // ResourceExhausted if the map is full.
  virtual Status AppendBlock(const BlockWrite& block) = 0;
  // Stores a signed checkpoint for `tree_size` (idempotent for equal notes).
  virtual Status PutCheckpoint(std::uint64_t tree_size, std::string_view note) = 0;
  virtual Result<std::unique_ptr<Snapshot>> Read() const = 0;
  // Bytes used by the data file (for the benchmarks' storage figures).
  virtual Result<std::uint64_t> FileSize() const = 0;
};

// The ledger id the metadata must hold: the first 16 bytes of
// HashTagged("vellum/ledger-id/v1", bytes(name) || bytes(vkey) || i64(created_us))
// (docs/FORMAT.md, "Block header").
LedgerId DeriveLedgerId(std::string_view name, std::string_view vkey, std::int64_t created_us);

std::string EncodeLedgerMeta(const LedgerMeta& meta);
Result<LedgerMeta> DecodeLedgerMeta(std::string_view bytes);

}  // namespace vellum::journal

#endif  // VELLUM_JOURNAL_STORE_H_
