#include "vellum/journal/store.h"

#include <lmdb.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "vellum/base/encoding.h"

namespace vellum::journal {
namespace {

constexpr std::string_view kMetaKey = "ledger";
constexpr unsigned kMaxReaders = 4096;

Status LmdbError(int rc, std::string_view what) {
  std::string message = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case ENOSPC:
      return ResourceExhausted(message);
    case MDB_NOTFOUND:
      return NotFound(message);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return DataLoss(message);
    case MDB_KEYEXIST:
      return FailedPrecondition(message);
    default:
      return Unavailable(message);
  }
}

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

struct Dbis {
  MDB_dbi blocks = 0, txs = 0, nodes = 0, checkpoints = 0, meta = 0;
};

// Aborts an LMDB transaction unless it was committed.
class TxnGuard {
 public:
  explicit TxnGuard(MDB_txn* txn) : txn_(txn) {}
  ~TxnGuard() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  TxnGuard(const TxnGuard&) = delete;
  TxnGuard& operator=(const TxnGuard&) = delete;
  MDB_txn* get() const { return txn_; }
  int Commit() {
    const int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;  // committed or freed by LMDB either way
    return rc;
  }

 private:
  MDB_txn* txn_;
};

// Returns the first 8 bytes of the last key of `dbi` as a number plus one, or 0 if empty.
Result<std::uint64_t> CountByLastKey(MDB_txn* txn, MDB_dbi dbi, std::string_view what) {
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn, dbi, &cursor);
  if (rc != 0) return LmdbError(rc, "open cursor");
  MDB_val key, val;
  rc = mdb_cursor_get(cursor, &key, &val, MDB_LAST);
  mdb_cursor_close(cursor);
  if (rc == MDB_NOTFOUND) return std::uint64_t{0};
  if (rc != 0) return LmdbError(rc, "read last key");
  if (key.mv_size != 8) return DataLoss("malformed key of length " + std::to_string(key.mv_size) + " in " + std::string(what));
  return GetBigEndian64(static_cast<const char*>(key.mv_data)) + 1;
}

Result<std::string> Get(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view what) {
  MDB_val k = Val(key), v;
  const int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return NotFound(std::string(what) + " not found");
  if (rc != 0) return LmdbError(rc, "read " + std::string(what));
  return std::string(View(v));
}

class LmdbSnapshot final : public Snapshot {
 public:
  LmdbSnapshot(MDB_txn* txn, const Dbis& dbis, std::uint64_t blocks, std::uint64_t txs)
      : txn_(txn), dbis_(dbis), blocks_(blocks), txs_(txs) {}
  ~LmdbSnapshot() override { mdb_txn_abort(txn_); }

  std::uint64_t block_count() const override { return blocks_; }
  std::uint64_t tx_count() const override { return txs_; }

  Result<std::string> Header(std::uint64_t height) const override {
    return Get(txn_, dbis_.blocks, BigEndianKey(height), "block " + std::to_string(height));
  }
  Result<std::string> Transaction(std::uint64_t seq) const override {
    return Get(txn_, dbis_.txs, BigEndianKey(seq), "transaction " + std::to_string(seq));
  }
  Result<merkle::Hash> PerfectNode(std::uint32_t level, std::uint64_t index) const override {
    VELLUM_ASSIGN_OR_RETURN(std::string raw,
                            Get(txn_, dbis_.nodes, merkle::PerfectNodeKey(level, index),
                                "log node (level " + std::to_string(level) + ", index " + std::to_string(index) + ")"));
    auto h = merkle::HashFromBytes(raw);
    if (!h.ok()) return DataLoss("log node (level " + std::to_string(level) + ", index " + std::to_string(index) + ") is " + std::to_string(raw.size()) + " bytes, not 32");
    return *h;
  }
  Result<std::optional<std::pair<std::uint64_t, std::string>>> LatestCheckpoint() const override {
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn_, dbis_.checkpoints, &cursor);
    if (rc != 0) return LmdbError(rc, "open cursor");
    MDB_val key, val;
    rc = mdb_cursor_get(cursor, &key, &val, MDB_LAST);
    mdb_cursor_close(cursor);
    if (rc == MDB_NOTFOUND) return std::optional<std::pair<std::uint64_t, std::string>>();
    if (rc != 0) return LmdbError(rc, "read latest checkpoint");
    if (key.mv_size != 8) return DataLoss("malformed checkpoint key");
    return std::optional(std::make_pair(GetBigEndian64(static_cast<const char*>(key.mv_data)), std::string(View(val))));
  }
  Result<std::string> CheckpointAt(std::uint64_t tree_size) const override {
    return Get(txn_, dbis_.checkpoints, BigEndianKey(tree_size), "checkpoint for size " + std::to_string(tree_size));
  }
  Result<std::vector<std::pair<std::uint64_t, std::string>>> AllCheckpoints() const override {
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn_, dbis_.checkpoints, &cursor);
    if (rc != 0) return LmdbError(rc, "open cursor");
    std::vector<std::pair<std::uint64_t, std::string>> out;
    MDB_val key, val;
    for (rc = mdb_cursor_get(cursor, &key, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cursor, &key, &val, MDB_NEXT)) {
      if (key.mv_size != 8) {
        mdb_cursor_close(cursor);
        return DataLoss("malformed checkpoint key");
      }
      out.emplace_back(GetBigEndian64(static_cast<const char*>(key.mv_data)), std::string(View(val)));
    }
    mdb_cursor_close(cursor);
    if (rc != MDB_NOTFOUND) return LmdbError(rc, "scan checkpoints");
    return out;
  }

 private:
  MDB_txn* txn_;
  Dbis dbis_;
  std::uint64_t blocks_;
  std::uint64_t txs_;
};

class LmdbJournalStore final : public JournalStore {
 public:
  LmdbJournalStore(std::string dir, MDB_env* env, Dbis dbis, const StoreOptions& options)
      : dir_(std::move(dir)), env_(env), dbis_(dbis), read_only_(options.read_only),
        headroom_bytes_(options.preallocate_bytes) {}
  ~LmdbJournalStore() override { mdb_env_close(env_); }

  const std::string& dir() const override { return dir_; }

  Result<std::optional<LedgerMeta>> ReadMeta() const override {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    if (rc != 0) return LmdbError(rc, "begin read");
    TxnGuard guard(txn);
    auto raw = Get(txn, dbis_.meta, kMetaKey, "ledger metadata");
    if (!raw.ok()) {
      if (raw.status().code() == StatusCode::kNotFound) return std::optional<LedgerMeta>();
      return raw.status();
    }
    VELLUM_ASSIGN_OR_RETURN(LedgerMeta meta, DecodeLedgerMeta(*raw));
    return std::optional(std::move(meta));
  }

  Status WriteMeta(const LedgerMeta& meta) override {
    VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> existing,
                            PutIfAbsent(dbis_.meta, kMetaKey, EncodeLedgerMeta(meta), "ledger metadata"));
    if (existing.has_value()) return AlreadyExists("the store in " + dir_ + " already holds a ledger");
    return Status::Ok();
  }

  Status AppendBlock(const BlockWrite& block) override {
    if (read_only_) return FailedPrecondition("store opened read-only");
    std::lock_guard write_lock(write_mu_);
    EnsureHeadroom();
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return LmdbError(rc, "begin write");
    TxnGuard guard(txn);
    // Continuity is checked inside the write transaction, so two writers can
    // never interleave a gap or a duplicate.
    VELLUM_ASSIGN_OR_RETURN(std::uint64_t blocks, CountByLastKey(txn, dbis_.blocks, "blocks"));
    VELLUM_ASSIGN_OR_RETURN(std::uint64_t txs, CountByLastKey(txn, dbis_.txs, "txs"));
    if (blocks != block.height || txs != block.first_tx_seq) {
      return FailedPrecondition("block " + std::to_string(block.height) + " with first transaction " +
                                std::to_string(block.first_tx_seq) + " does not continue the store (" +
                                std::to_string(blocks) + " blocks, " + std::to_string(txs) + " transactions)");
    }
    const std::string height_key = BigEndianKey(block.height);
    MDB_val k = Val(height_key), v = Val(block.header);
    if ((rc = mdb_put(txn, dbis_.blocks, &k, &v, MDB_APPEND)) != 0) return LmdbError(rc, "append block");
    char seq_key[8];
    for (size_t i = 0; i < block.txs.size(); ++i) {
      PutBigEndian64(seq_key, block.first_tx_seq + i);
      k = MDB_val{8, seq_key};
      v = Val(block.txs[i]);
      if ((rc = mdb_put(txn, dbis_.txs, &k, &v, MDB_APPEND)) != 0) return LmdbError(rc, "append transaction");
    }
    for (const NodeWrite& node : block.nodes) {
      const std::string node_key = merkle::PerfectNodeKey(node.level, node.index);
      k = Val(node_key);
      v = Val(merkle::HashView(node.hash));
      if ((rc = mdb_put(txn, dbis_.nodes, &k, &v, MDB_APPEND)) != 0) return LmdbError(rc, "append log node");
    }
    rc = guard.Commit();
    if (rc != 0) return LmdbError(rc, "commit block " + std::to_string(block.height));
    return Status::Ok();
  }

  Status PutCheckpoint(std::uint64_t tree_size, std::string_view note) override {
    VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> existing,
                            PutIfAbsent(dbis_.checkpoints, BigEndianKey(tree_size), note, "checkpoint"));
    // Ed25519 signatures are deterministic, so a second signing of the same
    // size gives the same note; anything else is a conflicting checkpoint.
    if (existing.has_value() && *existing != note) {
      return FailedPrecondition("a different checkpoint for size " + std::to_string(tree_size) + " is already stored");
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<Snapshot>> Read() const override {
    MDB_txn* txn = nullptr;
    const int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    if (rc != 0) return LmdbError(rc, "begin read");
    auto blocks = CountByLastKey(txn, dbis_.blocks, "blocks");
    auto txs = CountByLastKey(txn, dbis_.txs, "txs");
    if (!blocks.ok() || !txs.ok()) {
      mdb_txn_abort(txn);
      return blocks.ok() ? txs.status() : blocks.status();
    }
    return std::unique_ptr<Snapshot>(std::make_unique<LmdbSnapshot>(txn, dbis_, *blocks, *txs));
  }

  Result<std::uint64_t> FileSize() const override {
    MDB_envinfo info;
    MDB_stat stat;
    int rc = mdb_env_info(env_, &info);
    if (rc == 0) rc = mdb_env_stat(env_, &stat);
    if (rc != 0) return LmdbError(rc, "read environment info");
    return static_cast<std::uint64_t>(info.me_last_pgno + 1) * stat.ms_psize;
  }

 private:
  // Writes key -> value in its own durable transaction unless the key exists.
  // Returns nullopt when written, else the value already stored (unchanged).
  Result<std::optional<std::string>> PutIfAbsent(MDB_dbi dbi, std::string_view key, std::string_view value,
                                                 std::string_view what) {
    if (read_only_) return FailedPrecondition("store opened read-only");
    std::lock_guard write_lock(write_mu_);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return LmdbError(rc, "begin write");
    TxnGuard guard(txn);
    MDB_val k = Val(key), v = Val(value);
    rc = mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) return std::optional<std::string>(std::string(View(v)));  // v now holds the stored value
    if (rc != 0) return LmdbError(rc, "write " + std::string(what));
    rc = guard.Commit();
    if (rc != 0) return LmdbError(rc, "commit " + std::string(what));
    return std::optional<std::string>();
  }

  // Keeps zero-filled, synced space ahead of LMDB's last page. A sync that
  // also has to grow the file costs an ext4 journal commit on top of the data
  // flush (measured 1.7x slower per block); overwriting space that already
  // exists does not. LMDB never reads past its last page, so the zeros are
  // invisible to it. Best effort: on any error the file just grows as usual.
  // Called with write_mu_ held, so no LMDB write runs meanwhile.
  void EnsureHeadroom() {
    if (headroom_failed_ || headroom_bytes_ == 0) return;
    MDB_envinfo info;
    MDB_stat stat;
    if (mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &stat) != 0) return;
    const std::uint64_t used = static_cast<std::uint64_t>(info.me_last_pgno + 1) * stat.ms_psize;
    if (used + headroom_bytes_ / 2 <= file_bytes_) return;
    const std::string path = (std::filesystem::path(dir_) / "data.mdb").string();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      headroom_failed_ = true;
      return;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      headroom_failed_ = true;
      return;
    }
    std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t target = used + headroom_bytes_;
    static const std::string kZeros(1u << 20, '\0');
    while (size < target) {
      const size_t n = static_cast<size_t>(std::min<std::uint64_t>(kZeros.size(), target - size));
      const ssize_t w = ::pwrite(fd, kZeros.data(), n, static_cast<off_t>(size));
      if (w <= 0) break;
      size += static_cast<std::uint64_t>(w);
    }
    if (::fdatasync(fd) != 0) headroom_failed_ = true;
    ::close(fd);
    file_bytes_ = size;
  }

  std::mutex write_mu_;
  std::uint64_t file_bytes_ = 0;
  bool headroom_failed_ = false;
  std::string dir_;
  MDB_env* env_;
  Dbis dbis_;
  bool read_only_;
  std::uint64_t headroom_bytes_;
};

}  // namespace

Result<std::unique_ptr<JournalStore>> JournalStore::Open(const std::string& dir, const StoreOptions& options) {
  std::error_code ec;
  if (options.read_only) {
    if (!std::filesystem::exists(std::filesystem::path(dir) / "data.mdb", ec)) {
      return NotFound("no journal store in " + dir);
    }
  } else {
    std::filesystem::create_directories(dir, ec);
    if (ec) return Unavailable("create directory " + dir + ": " + ec.message());
  }
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return LmdbError(rc, "create LMDB environment");
  auto fail = [&](int code, std::string_view what) {
    mdb_env_close(env);
    return LmdbError(code, what);
  };
  if ((rc = mdb_env_set_maxdbs(env, 8)) != 0) return fail(rc, "set maxdbs");
  // Every Snapshot holds a reader slot (MDB_NOTLS); LMDB's default of 126
  // would turn a burst of concurrent proofs into UNAVAILABLE.
  if ((rc = mdb_env_set_maxreaders(env, kMaxReaders)) != 0) return fail(rc, "set maxreaders");
  if ((rc = mdb_env_set_mapsize(env, options.map_size)) != 0) return fail(rc, "set map size");
  // MDB_NOTLS: read transactions belong to Snapshot objects, not threads.
  unsigned flags = MDB_NOTLS;
  if (!options.sync) flags |= MDB_NOSYNC;
  if (options.read_only) flags |= MDB_RDONLY;
  if ((rc = mdb_env_open(env, dir.c_str(), flags, 0600)) != 0) return fail(rc, "open journal store in " + dir);

  Dbis dbis;
  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(env, nullptr, options.read_only ? MDB_RDONLY : 0, &txn)) != 0) return fail(rc, "begin");
  const unsigned create = options.read_only ? 0 : MDB_CREATE;
  const std::pair<const char*, MDB_dbi*> tables[] = {{"blocks", &dbis.blocks}, {"txs", &dbis.txs},
                                                     {"log_nodes", &dbis.nodes}, {"checkpoints", &dbis.checkpoints},
                                                     {"meta", &dbis.meta}};
  for (const auto& [name, dbi] : tables) {
    if ((rc = mdb_dbi_open(txn, name, create, dbi)) != 0) {
      mdb_txn_abort(txn);
      if (rc == MDB_NOTFOUND) {
        mdb_env_close(env);
        return DataLoss("journal store in " + dir + " has no table '" + name + "'");
      }
      return fail(rc, std::string("open table ") + name);
    }
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return fail(rc, "commit table creation");
  return std::unique_ptr<JournalStore>(std::make_unique<LmdbJournalStore>(dir, env, dbis, options));
}

LedgerId DeriveLedgerId(std::string_view name, std::string_view vkey, std::int64_t created_us) {
  ByteWriter input;
  input.Bytes(name);
  input.Bytes(vkey);
  input.I64(created_us);
  const merkle::Hash id = merkle::HashTagged(merkle::kTagLedgerId, input.data());
  LedgerId out;
  std::copy_n(id.begin(), kLedgerIdSize, out.begin());
  return out;
}

std::string EncodeLedgerMeta(const LedgerMeta& meta) {
  ByteWriter w;
  w.U16(1);
  w.Bytes(meta.name);
  w.Fixed(std::string_view(reinterpret_cast<const char*>(meta.id.data()), meta.id.size()));
  w.Bytes(meta.vkey);
  w.I64(meta.created_us);
  return w.Take();
}

Result<LedgerMeta> DecodeLedgerMeta(std::string_view bytes) {
  ByteReader r(bytes, "ledger metadata");
  LedgerMeta meta;
  if (r.U16() != 1 && r.ok()) r.Fail("unknown metadata version");
  meta.name = std::string(r.Bytes(1024));
  const std::string_view id = r.Fixed(kLedgerIdSize);
  if (r.ok()) std::copy(id.begin(), id.end(), meta.id.begin());
  meta.vkey = std::string(r.Bytes(4096));
  meta.created_us = r.I64();
  VELLUM_RETURN_IF_ERROR(r.Finish());
  return meta;
}

}  // namespace vellum::journal
