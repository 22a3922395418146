// ViewStore: where one ledger's views keep their map pages, values and the
// per-block state records (docs/FORMAT.md, "View store").
//
// Pages and values are written by the commit thread while it applies a block
// (NodeStore::Put / ValueStore::Put hand out increasing ids). Commit(height,
// record, roots) then seals everything put so far as part of the state after
// block `height`; Rollback() drops everything put since the last Commit (a
// block whose journal write failed). CommitThrough and RollbackTo do the same
// up to a Mark(), for a writer with two blocks in flight.
//
// Durability is lazy, as DESIGN.md ("Storage: the journal is the write-ahead
// log") asks: the journal is the write-ahead log, views are a deterministic
// function of it. Committed pages and values stay in memory until a flush
// writes, in one LMDB write transaction under increasing keys (MDB_APPEND),
// the newest committed state record and the pages and values that state
// reaches. Pages and values that only the states between two flushes reached
// (superseded within the window) are never written: those states are not
// durable, and "as of" reads rebuild them from the newest durable state
// before them plus the journal. The dropped pages stay in memory while a
// state that reaches them is pinned (Commit's result), so readers holding
// such a state never see them vanish. A flush runs in the background every
// `flush_every_blocks` commits, `flush_every_pages` unflushed pages or
// `flush_every_bytes` unflushed bytes (or on Flush()); a crash loses only
// what was not flushed, and recovery replays the journal from the newest
// durable record. Reads see committed and uncommitted pages alike.
//
// Thread-safety: one writer thread (Put, Commit, Rollback, Flush) and any
// number of reader threads (Get, records) may use a store concurrently.
#ifndef VELLUM_INDEXES_VIEW_STORE_H_
#define VELLUM_INDEXES_VIEW_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/indexes/node_store.h"

namespace vellum::indexes {

// The state after block `height`, encoded by the caller (views.h).
struct StateRecord {
  std::uint64_t height = 0;
  std::string bytes;
};

struct ViewStoreStats {
  std::uint64_t pages = 0;          // pages put so far (ids handed out)
  std::uint64_t values = 0;         // values put so far
  std::uint64_t unflushed_pages = 0;
  std::uint64_t unflushed_values = 0;
  std::uint64_t unflushed_bytes = 0;  // encoded pages and values not yet flushed
  std::uint64_t flushes = 0;
  std::uint64_t failed_flushes = 0;  // attempts that failed (retried later)
  std::uint64_t flushed_bytes = 0;  // page and value bytes written by flushes
  std::uint64_t dropped_pages = 0;   // committed, never written: no flushed state reached them
  std::uint64_t dropped_values = 0;
  std::uint64_t pinned_pages = 0;    // dropped pages still in memory for pinned states
  std::uint64_t file_bytes = 0;     // bytes LMDB uses (0 for the memory store)
};

// Where a store's puts stand (ViewStore::Mark). Opaque to callers: each store
// counts in its own terms; only ever hand a mark back to the store it came from.
struct PutMark {
  std::uint64_t pages = 0;
  std::uint64_t values = 0;
  std::uint64_t bytes = 0;
};

class ViewStore {
 public:
  virtual ~ViewStore() = default;
  virtual NodeStore& nodes() = 0;
  virtual ValueStore& values() = 0;
  // Where the puts stand now. A writer that prepares block h+1 before block h
  // commits (Views' pipeline) takes a mark after each block's puts, then
  // commits or rolls back up to it.
  virtual PutMark Mark() const = 0;
  // Seals what was put up to `through` (a Mark() taken since the last commit)
  // as the state after block `height`, whose maps have the root pages `roots`
  // (kNoNode entries are ignored); what was put after the mark stays
  // uncommitted. Returns a pin: while a copy of it is alive, every page and
  // value that state reaches stays readable, even after a flush has dropped
  // the ones no durable state reaches. Null from stores that never drop
  // anything.
  virtual std::shared_ptr<const void> CommitThrough(PutMark through, std::uint64_t height, std::string record,
                                                    std::vector<NodeId> roots) = 0;
  // Forgets pages and values put after `to`, never committed ones (a mark
  // from before the last commit means "since the last commit"); their ids are
  // reused.
  virtual void RollbackTo(PutMark to) = 0;
  // Seals everything put so far; forgets everything put since the last commit.
  std::shared_ptr<const void> Commit(std::uint64_t height, std::string record, std::vector<NodeId> roots) {
    return CommitThrough(Mark(), height, std::move(record), std::move(roots));
  }
  void Rollback() { RollbackTo(PutMark{}); }
  // Makes everything committed durable before returning.
  virtual Status Flush() = 0;
  // The newest committed record (durable or not), nullopt if none.
  virtual Result<std::optional<StateRecord>> LatestRecord() const = 0;
  // The newest durable record at or before `height`, nullopt if none.
  virtual Result<std::optional<StateRecord>> DurableRecordAtOrBefore(std::uint64_t height) const = 0;
  virtual ViewStoreStats stats() const = 0;
};

struct LmdbViewStoreOptions {
  std::uint64_t map_size = std::uint64_t{1} << 38;  // 256 GiB of address space
  // Flush in the background after this many commits (0: only on Flush()),
  std::uint64_t flush_every_blocks = 256;
  // or once this many pages are unflushed (0: no limit), which bounds the
  // memory that big blocks hold between flushes (~3.3 KB a page with
  // 16-32-byte keys: ~0.9 GB). A wider window rewrites fewer pages: against
  // 2^17, 2^18 writes 28 % fewer bytes per update and applies ~9 % faster,
  // for ~0.8 GB more heap (docs/BENCHMARKS.md, section 5, run F).
  std::uint64_t flush_every_pages = std::uint64_t{1} << 18;
  // or once the unflushed pages (their encoded bytes) and values take this
  // many bytes (0: no limit). Unlike the page count, this bounds the window's
  // memory whatever the sizes of keys and values: a page of 4 KiB keys is
  // ~80 times a page of 24-byte ones, and a value may be 1 MiB.
  std::uint64_t flush_every_bytes = std::uint64_t{1} << 30;
  // Decoded pages kept in memory beyond the unflushed ones.
  size_t page_cache_entries = 1 << 18;
  bool read_only = false;
};

// Opens or creates an LMDB view store in `dir`. Errors as JournalStore::Open.
Result<std::unique_ptr<ViewStore>> OpenLmdbViewStore(const std::string& dir, const LmdbViewStoreOptions& options);

// Everything in memory, every commit durable at once (tests, benchmarks,
// rebuilding views from the journal).
std::unique_ptr<ViewStore> NewMemoryViewStore();

// A private writable layer over `base` for reading "as of" an older block:
// reads of existing ids fall through to `base` (which must outlive the
// overlay); pages and values put into the overlay live in memory under ids
// from kOverlayFirstId on, so they never collide with base's. LatestRecord()
// starts as `start` (the durable record replay begins from). Nothing is ever
// written to `base`.
inline constexpr std::uint64_t kOverlayFirstId = std::uint64_t{1} << 62;
std::unique_ptr<ViewStore> NewOverlayViewStore(ViewStore& base, std::optional<StateRecord> start);

}  // namespace vellum::indexes

#endif  // VELLUM_INDEXES_VIEW_STORE_H_
