// The audit's checks, block by block (audit.h). One pass over the journal in
// height order: each block's header, chain link, transactions, transaction
// root, log-tree nodes and any checkpoint of that size; then the block goes
// through the server's own projection (api::ProjectBlock) into a rebuild of
// the views, whose state root is compared with the header's, and whose pages,
// values and state records are compared with what the views store holds
// under the same ids.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "replay_store.h"
#include "vellum/api/ledger_db.h"
#include "vellum/audit/audit.h"
#include "vellum/base/bytes.h"
#include "vellum/journal/format.h"
#include "vellum/journal/store.h"
#include "vellum/merkle/log_tree.h"
#include "vellum/merkle/note.h"

namespace vellum::audit {
namespace {

using merkle::HashHex;

std::string Sub(const std::string& dir, const char* name) { return (std::filesystem::path(dir) / name).string(); }

std::string IdHex(const journal::LedgerId& id) {
  return HexEncode(std::string_view(reinterpret_cast<const char*>(id.data()), id.size()));
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return std::string(s);
}

// A rebuilt page or value to compare with the one stored under its id.
struct StoreCheck {
  std::uint64_t id = 0;
  std::uint64_t block = 0;  // the block that wrote it
  std::shared_ptr<const indexes::MapNode> page;  // null: a value
  std::string value;
};

// Runs store comparisons on a second thread, so that reading and decoding the
// stored pages overlaps the replay. Bounded: Push waits when far ahead.
class CheckQueue {
 public:
  explicit CheckQueue(std::function<void(const StoreCheck&)> check)
      : check_(std::move(check)), thread_([this] { Loop(); }) {}
  ~CheckQueue() { Finish(); }
  CheckQueue(const CheckQueue&) = delete;
  CheckQueue& operator=(const CheckQueue&) = delete;

  void Push(std::vector<StoreCheck> batch) {
    if (batch.empty()) return;
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return queued_ < kMaxQueued; });
    queued_ += batch.size();
    batches_.push_back(std::move(batch));
    not_empty_.notify_one();
  }
  // Waits until every pushed check ran.
  void Finish() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    not_empty_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static constexpr size_t kMaxQueued = 1 << 16;
  void Loop() {
    while (true) {
      std::vector<StoreCheck> batch;
      {
        std::unique_lock lock(mu_);
        not_empty_.wait(lock, [&] { return !batches_.empty() || done_; });
        if (batches_.empty()) return;
        batch = std::move(batches_.front());
        batches_.pop_front();
      }
      for (const StoreCheck& c : batch) check_(c);
      {
        std::lock_guard lock(mu_);
        queued_ -= batch.size();
      }
      not_full_.notify_one();
    }
  }

  std::function<void(const StoreCheck&)> check_;
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::vector<StoreCheck>> batches_;
  size_t queued_ = 0;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

class Auditor {
 public:
  explicit Auditor(const AuditOptions& options) : opt_(options) {}
  Result<AuditReport> Run();

 private:
  void Find(std::string subject, std::optional<std::uint64_t> position, std::string check, std::string expected = {},
            std::string computed = {}, std::string detail = {});
  void Note(std::string note) { rep_.notes.push_back(std::move(note)); }
  // Reads through the journal snapshot. LMDB poisons a read transaction after
  // a page error (later reads fail with MDB_BAD_TXN), so a failed read other
  // than NotFound renews the snapshot: the rest of the store is still checked.
  template <typename F>
  auto Read(F&& read) -> decltype(read(std::declval<const journal::Snapshot&>())) {
    auto r = read(static_cast<const journal::Snapshot&>(*snap_));
    if (!r.ok() && r.status().code() != StatusCode::kNotFound) {
      if (auto fresh = jstore_->Read(); fresh.ok()) snap_ = std::move(fresh).value();
    }
    return r;
  }

  Status OpenStores();
  void ReadCheckpoints();
  void OpenViewStore();
  Status StartFromCheckpoint();
  // Verifies header `h` (below the trusted size) by its inclusion in the given checkpoint.
  Result<std::string> TrustedHeader(std::uint64_t h);
  void StartViews(std::uint64_t first_id, std::optional<indexes::StateRecord> start, std::uint64_t state_from);
  void CheckCheckpoint(std::uint64_t size, const std::string& note, const merkle::Hash& root);
  void CheckEarlierCheckpoint(std::uint64_t size, const std::string& note);
  void ReplayBlock(std::uint64_t h);
  void ApplyState(std::uint64_t h, const journal::BlockHeader& header, std::span<const journal::Transaction> txs);
  void StopState(std::uint64_t h, const std::string& why);
  void AddToSeries(std::uint64_t h, const journal::BlockHeader& header);
  std::uint64_t Entries() const;
  void CheckStored(const StoreCheck& c);
  static std::vector<StoreCheck> Reached(std::vector<StoreCheck> batch, const indexes::StateView& state);
  void OnCommit(std::uint64_t height, const std::string& record);

  const AuditOptions& opt_;
  std::mutex find_mu_;  // guards rep_'s findings and store counts (CheckQueue's thread adds to them)
  AuditReport rep_;
  std::unique_ptr<journal::JournalStore> jstore_;
  std::unique_ptr<journal::Snapshot> snap_;
  std::optional<journal::LedgerMeta> meta_;
  std::optional<merkle::NoteVerifier> verifier_;
  std::map<std::uint64_t, std::string> checkpoints_;  // size -> note, within the journal

  // The views store (read-only) and what it holds.
  std::unique_ptr<indexes::ViewStore> vstore_;
  std::map<std::uint64_t, std::string> records_;  // durable state records by height
  std::uint64_t stored_pages_ = 0, stored_values_ = 0;
  size_t max_page_items_ = indexes::kDefaultMaxPageItems;
  bool compare_store_ = false;  // the rebuild hands out the server's ids

  // Incremental audits: the given checkpoint.
  std::optional<merkle::Checkpoint> trusted_;
  std::uint64_t start_ = 0;       // first block checked in full
  std::uint64_t state_from_ = 0;  // first block replayed into the views

  // The replay.
  merkle::CompactRange range_;
  bool log_ok_ = true;
  std::optional<std::string> prev_raw_;
  std::optional<journal::BlockHeader> prev_;
  std::unique_ptr<ReplayStore> replay_store_;
  std::unique_ptr<indexes::Views> views_;
  bool state_ok_ = true;
  std::uint64_t applying_ = 0;  // block being applied (for page and value findings)
  std::uint64_t series_bucket_ = 1;
  std::optional<SeriesPoint> point_;
  // Puts since the last block with a durable state record: the views store
  // holds only the ones that record's state reaches (view_store.h).
  std::vector<StoreCheck> batch_;
  std::unique_ptr<CheckQueue> checks_;
};

void Auditor::Find(std::string subject, std::optional<std::uint64_t> position, std::string check,
                   std::string expected, std::string computed, std::string detail) {
  Finding f{std::move(subject), position, std::move(check), std::move(expected), std::move(computed), std::move(detail)};
  std::lock_guard lock(find_mu_);
  ++rep_.findings_total;
  if (opt_.on_finding) opt_.on_finding(f);
  if (rep_.findings.size() < kMaxFindings) rep_.findings.push_back(std::move(f));
}

Status Auditor::OpenStores() {
  const std::string jdir = Sub(opt_.ledger_dir, "journal");
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(jdir) / "data.mdb", ec)) {
    return NotFound("no ledger in " + opt_.ledger_dir + " (no journal store " + jdir + "/data.mdb)");
  }
  journal::StoreOptions so;
  so.read_only = true;
  VELLUM_ASSIGN_OR_RETURN(jstore_, journal::JournalStore::Open(jdir, so));
  VELLUM_ASSIGN_OR_RETURN(snap_, jstore_->Read());
  rep_.blocks = snap_->block_count();
  rep_.transactions = snap_->tx_count();

  auto meta = jstore_->ReadMeta();
  if (!meta.ok()) {
    Find("ledger", std::nullopt, "meta.decode", "", "", "the ledger metadata is unreadable: " + meta.status().ToString());
  } else if (!meta->has_value()) {
    Find("ledger", std::nullopt, "meta.missing", "", "", "the journal store holds no ledger metadata");
  } else {
    meta_ = **meta;
    rep_.ledger = meta_->name;
    rep_.ledger_id = IdHex(meta_->id);
    const journal::LedgerId derived = journal::DeriveLedgerId(meta_->name, meta_->vkey, meta_->created_us);
    if (derived != meta_->id) {
      Find("ledger", std::nullopt, "meta.ledger_id", rep_.ledger_id, IdHex(derived),
           "the ledger id is not the one derived from the stored name, key and creation time");
    }
    if (auto stored_key = merkle::NoteVerifier::Parse(meta_->vkey); stored_key.ok() && stored_key->name() != meta_->name) {
      Find("ledger", std::nullopt, "meta.name", meta_->name, stored_key->name(), "the ledger's key is named for another ledger");
    }
  }

  if (opt_.vkey.has_value()) {
    auto v = merkle::NoteVerifier::Parse(Trim(*opt_.vkey));
    if (!v.ok()) return InvalidArgument("--vkey: " + v.status().message());
    verifier_ = *v;
    rep_.vkey_supplied = true;
    if (meta_.has_value() && meta_->vkey != verifier_->ToString()) {
      Find("ledger", std::nullopt, "meta.vkey", verifier_->ToString(), meta_->vkey,
           "the ledger's stored verifier key is not the key supplied with --vkey");
    }
  } else if (meta_.has_value()) {
    auto v = merkle::NoteVerifier::Parse(meta_->vkey);
    if (!v.ok()) {
      Find("ledger", std::nullopt, "meta.vkey", "", meta_->vkey, "the stored verifier key does not parse: " + v.status().message());
    } else {
      verifier_ = *v;
    }
    Note("The verifier key was not supplied independently (--vkey): checkpoints were verified with the ledger's own "
         "stored key, which shows them consistent with the journal but not that the ledger's owner signed them.");
  }
  if (verifier_.has_value()) rep_.vkey = verifier_->ToString();
  return Status::Ok();
}

void Auditor::ReadCheckpoints() {
  auto all = Read([&](const journal::Snapshot& s) { return s.AllCheckpoints(); });
  if (!all.ok()) {
    Find("store", std::nullopt, "store.read", "", "",
         "listing the stored checkpoints: " + all.status().ToString() + "; looking each size up instead");
    // One bad entry fails the whole scan: look up every possible size instead.
    all = std::vector<std::pair<std::uint64_t, std::string>>();
    for (std::uint64_t size = 0; size <= rep_.blocks; ++size) {
      auto note = Read([&](const journal::Snapshot& s) { return s.CheckpointAt(size); });
      if (note.ok()) all->emplace_back(size, std::move(note).value());
      else if (note.status().code() != StatusCode::kNotFound) Find("checkpoint", size, "store.read", "", "", note.status().ToString());
    }
  }
  for (auto& [size, note] : *all) {
    if (size > rep_.blocks) {
      Find("checkpoint", size, "size", std::to_string(size), std::to_string(rep_.blocks),
           "a checkpoint is stored for a tree larger than the journal");
      continue;
    }
    checkpoints_[size] = std::move(note);
  }
  if (!all->empty()) rep_.latest_checkpoint = all->back().first;
  if (checkpoints_.empty()) Note("The journal holds no signed checkpoint: there was no signature to check.");
}

void Auditor::OpenViewStore() {
  const std::string vdir = Sub(opt_.ledger_dir, "views");
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(vdir) / "data.mdb", ec)) {
    Note("No views store in " + vdir + ": the views were rebuilt from the journal, with no stored pages to compare.");
    return;
  }
  indexes::LmdbViewStoreOptions vo;
  vo.read_only = true;
  vo.flush_every_blocks = 0;
  vo.page_cache_entries = 64;
  auto store = indexes::OpenLmdbViewStore(vdir, vo);
  if (!store.ok()) {
    Find("views", std::nullopt, "store.open", "", "", "the views store does not open: " + store.status().ToString());
    return;
  }
  vstore_ = std::move(store).value();
  const indexes::ViewStoreStats stats = vstore_->stats();
  stored_pages_ = stats.pages;
  stored_values_ = stats.values;
  auto latest = vstore_->LatestRecord();
  while (latest.ok() && latest->has_value()) {
    const std::uint64_t h = (*latest)->height;
    records_[h] = std::move((*latest)->bytes);
    if (h == 0) break;
    latest = vstore_->DurableRecordAtOrBefore(h - 1);
    if (latest.ok() && latest->has_value() && (*latest)->height >= h) {
      Find("views", std::nullopt, "store.read", "", "", "state records are not in height order");
      break;
    }
  }
  if (!latest.ok()) Find("views", std::nullopt, "store.read", "", "", "reading state records: " + latest.status().ToString());
  if (!records_.empty()) {
    auto newest = indexes::DecodeStateRecord(records_.rbegin()->second);
    if (newest.ok()) max_page_items_ = newest->max_page_items;
  }
}

Result<std::string> Auditor::TrustedHeader(std::uint64_t h) {
  VELLUM_ASSIGN_OR_RETURN(std::string raw, Read([&](const journal::Snapshot& s) { return s.Header(h); }));
  VELLUM_ASSIGN_OR_RETURN(std::vector<merkle::Hash> path,
                          Read([&](const journal::Snapshot& s) { return merkle::InclusionPath(s, h, trusted_->size); }));
  VELLUM_RETURN_IF_ERROR(merkle::VerifyInclusion(h, trusted_->size, journal::BlockHash(raw), path, trusted_->root));
  return raw;
}

Status Auditor::StartFromCheckpoint() {
  if (!verifier_.has_value()) return FailedPrecondition("--from-checkpoint needs a verifier key, and the ledger's is unreadable");
  auto cp = merkle::VerifyCheckpoint(*opt_.from_checkpoint, *verifier_);
  if (!cp.ok()) {
    if (cp.status().code() == StatusCode::kInvalidArgument) return InvalidArgument("--from-checkpoint: " + cp.status().message());
    Find("ledger", std::nullopt, "from_checkpoint.signature", "", "", cp.status().message());
    Note("The checkpoint given with --from-checkpoint does not verify: the journal was audited from genesis.");
    return Status::Ok();
  }
  if (cp->size > rep_.blocks) {
    Find("checkpoint", cp->size, "from_checkpoint.size", std::to_string(cp->size), std::to_string(rep_.blocks),
         "the given checkpoint covers more blocks than the journal holds");
    Note("The journal is shorter than the given checkpoint: it was audited from genesis.");
    return Status::Ok();
  }
  if (cp->size == 0) return Status::Ok();
  auto root = merkle::RootAt(*snap_, cp->size);
  auto loaded = merkle::CompactRange::Load(*snap_, cp->size);
  if (!root.ok() || !loaded.ok() || *root != cp->root || loaded->Root() != cp->root) {
    Find("checkpoint", cp->size, "from_checkpoint.root", HashHex(cp->root), root.ok() ? HashHex(*root) : "",
         root.ok() ? (loaded.ok() ? "the stored log tree at this size does not have the given checkpoint's root"
                                  : loaded.status().ToString())
                   : root.status().ToString());
    Note("The stored log tree does not match the given checkpoint: the journal was audited from genesis.");
    return Status::Ok();
  }
  trusted_ = *cp;
  rep_.from_checkpoint = cp->size;
  start_ = cp->size;
  range_ = *loaded;
  rep_.counts.blocks_trusted = start_;
  auto last = TrustedHeader(start_ - 1);
  if (!last.ok()) {
    Find("block", start_ - 1, "inclusion", "", "", "the last block of the given checkpoint: " + last.status().ToString());
  } else {
    prev_raw_ = *last;
    auto decoded = journal::DecodeBlockHeader(*last);
    if (decoded.ok()) prev_ = *decoded;
  }
  return Status::Ok();
}

void Auditor::StartViews(std::uint64_t first_id, std::optional<indexes::StateRecord> start, std::uint64_t state_from) {
  compare_store_ = vstore_ != nullptr && first_id == 1;
  ReplayStore::Hooks hooks;
  if (compare_store_) {
    hooks.on_page = [this](indexes::NodeId id, const std::shared_ptr<const indexes::MapNode>& node) {
      if (id <= stored_pages_) batch_.push_back({id, applying_, node, {}});
    };
    hooks.on_value = [this](indexes::ValueRef ref, std::string_view value) {
      if (ref <= stored_values_) batch_.push_back({ref, applying_, nullptr, std::string(value)});
    };
    checks_ = std::make_unique<CheckQueue>([this](const StoreCheck& c) { CheckStored(c); });
  }
  hooks.on_commit = [this](std::uint64_t height, const std::string& record) { OnCommit(height, record); };
  replay_store_ = std::make_unique<ReplayStore>(first_id == 1 ? nullptr : vstore_.get(), first_id, std::move(start),
                                                std::move(hooks));
  indexes::ViewsOptions vo;
  vo.recent_states = 1;
  vo.max_page_items = max_page_items_;
  auto views = indexes::Views::Open(replay_store_.get(), vo);
  if (!views.ok()) {
    Find("views", std::nullopt, "views.open", "", "", views.status().ToString());
    state_ok_ = false;
    return;
  }
  views_ = std::move(views).value();
  state_from_ = state_from;
}

void Auditor::CheckCheckpoint(std::uint64_t size, const std::string& note, const merkle::Hash& root) {
  ++rep_.counts.checkpoints;
  if (!verifier_.has_value()) {
    Find("checkpoint", size, "signature", "", "", "no verifier key to check the signature with");
    return;
  }
  auto cp = merkle::VerifyCheckpoint(note, *verifier_);
  if (!cp.ok()) {
    const VerificationError* v = cp.status().verification();
    std::string check = "signature";
    if (cp.status().code() == StatusCode::kInvalidArgument) check = "decode";
    else if (v != nullptr && v->check == "checkpoint.origin") check = "origin";
    Find("checkpoint", size, check, v ? v->expected : "", v ? v->computed : "", cp.status().message());
    return;
  }
  if (cp->size != size) {
    Find("checkpoint", size, "size", std::to_string(size), std::to_string(cp->size),
         "the checkpoint stored under this size names another size");
    return;
  }
  if (cp->root != root) Find("checkpoint", size, "root", HashHex(cp->root), HashHex(root), "signed root differs from the recomputed log tree");
}

// A stored checkpoint below the trusted size: its signature, and that the
// trusted checkpoint's tree extends it (RFC 9162 consistency).
void Auditor::CheckEarlierCheckpoint(std::uint64_t size, const std::string& note) {
  if (size == trusted_->size) return CheckCheckpoint(size, note, trusted_->root);
  if (size == 0) return CheckCheckpoint(size, note, merkle::EmptyTreeRoot());
  ++rep_.counts.checkpoints;
  auto cp = merkle::VerifyCheckpoint(note, *verifier_);
  if (!cp.ok() || cp->size != size) {
    CheckCheckpoint(size, note, merkle::kZeroHash);  // reports why
    --rep_.counts.checkpoints;
    return;
  }
  auto path = Read([&](const journal::Snapshot& s) { return merkle::ConsistencyPath(s, size, trusted_->size); });
  Status st = path.ok() ? merkle::VerifyConsistency(size, trusted_->size, cp->root, trusted_->root, *path) : path.status();
  if (!st.ok()) {
    const VerificationError* v = st.verification();
    Find("checkpoint", size, "consistency", v ? v->expected : "", v ? v->computed : "",
         "not consistent with the given checkpoint of size " + std::to_string(trusted_->size) + ": " + st.message());
  }
}

void Auditor::StopState(std::uint64_t h, const std::string& why) {
  if (!state_ok_) return;
  state_ok_ = false;
  rep_.complete = false;
  Note("The views were not rebuilt from block " + std::to_string(h) + " on (" + why +
       "): later state roots, pages and values were not checked.");
}

void Auditor::ReplayBlock(std::uint64_t h) {
  const bool full = h >= start_;  // else: trusted by the given checkpoint, replayed for the views only
  auto raw = full ? Read([&](const journal::Snapshot& s) { return s.Header(h); }) : TrustedHeader(h);
  std::optional<journal::BlockHeader> header;
  if (!raw.ok()) {
    Find("block", h, full ? "store.read" : "inclusion", "", "", raw.status().ToString());
  } else {
    auto decoded = journal::DecodeBlockHeader(*raw);
    if (!decoded.ok()) Find("block", h, "header.decode", "", "", decoded.status().message());
    else header = *decoded;
  }

  std::vector<journal::Transaction> txs;
  bool txs_ok = header.has_value();
  if (header.has_value()) {
    const journal::BlockHeader& hd = *header;
    if (full) {
      ++rep_.counts.blocks;
      if (hd.height != h) Find("block", h, "header.height", std::to_string(h), std::to_string(hd.height), "stored under another height");
      if (meta_.has_value() && hd.ledger_id != meta_->id) {
        Find("block", h, "header.ledger_id", rep_.ledger_id, IdHex(hd.ledger_id));
      }
      if (hd.timestamp_us < 0) Find("block", h, "header.timestamp", "", std::to_string(hd.timestamp_us), "negative timestamp");
      if (h == 0) {
        if (hd.prev_hash != merkle::kZeroHash) Find("block", h, "chain.prev_hash", HashHex(hd.prev_hash), HashHex(merkle::kZeroHash));
        if (hd.first_tx_seq != 0) Find("block", h, "chain.first_tx_seq", std::to_string(hd.first_tx_seq), "0");
      } else if (prev_raw_.has_value()) {
        const merkle::Hash computed = journal::BlockHash(*prev_raw_);
        if (hd.prev_hash != computed) Find("block", h, "chain.prev_hash", HashHex(hd.prev_hash), HashHex(computed));
      }
      if (h > 0 && prev_.has_value()) {
        const std::uint64_t next = prev_->first_tx_seq + prev_->tx_count;
        if (hd.first_tx_seq != next) Find("block", h, "chain.first_tx_seq", std::to_string(hd.first_tx_seq), std::to_string(next));
        if (hd.timestamp_us < prev_->timestamp_us) {
          Find("block", h, "chain.timestamp", std::to_string(hd.timestamp_us), std::to_string(prev_->timestamp_us),
               "earlier than the previous block");
        }
      }
    }
    const std::uint64_t stored = snap_->tx_count();
    if (hd.first_tx_seq > stored || hd.tx_count > stored - hd.first_tx_seq) {
      Find("block", h, "transactions.range", std::to_string(hd.first_tx_seq) + "+" + std::to_string(hd.tx_count),
           std::to_string(stored), "the block's transactions are not all stored");
      txs_ok = false;
    } else {
      std::vector<merkle::Hash> leaves;
      leaves.reserve(hd.tx_count);
      txs.reserve(hd.tx_count);
      for (std::uint32_t i = 0; i < hd.tx_count; ++i) {
        const std::uint64_t seq = hd.first_tx_seq + i;
        auto tx = Read([&](const journal::Snapshot& s) { return s.Transaction(seq); });
        if (!tx.ok()) {
          Find("block", h, "tx.read", "", "", "transaction " + std::to_string(seq) + ": " + tx.status().ToString());
          txs_ok = false;
          break;
        }
        leaves.push_back(journal::TransactionLeafHash(*tx));
        auto decoded = journal::DecodeTransaction(*tx);
        if (full) ++rep_.counts.transactions;
        if (!decoded.ok()) {
          Find("block", h, "tx.decode", "", "", "transaction " + std::to_string(seq) + ": " + decoded.status().message());
          txs_ok = false;
          continue;
        }
        txs.push_back(std::move(decoded).value());
      }
      if (leaves.size() == hd.tx_count) {
        if (full) ++rep_.counts.tx_roots;
        const merkle::Hash root = merkle::RootFromLeafHashes(leaves);
        if (root != hd.tx_root) {
          Find("block", h, "tx_root", HashHex(hd.tx_root), HashHex(root));
          txs_ok = false;
        }
      }
    }
    if (full) AddToSeries(h, hd);
  }

  if (full && log_ok_) {
    std::optional<merkle::Hash> leaf;
    if (raw.ok()) {
      leaf = journal::BlockHash(*raw);
    } else if (auto stored = Read([&](const journal::Snapshot& s) { return s.PerfectNode(0, h); }); stored.ok()) {
      leaf = *stored;  // keeps the tree going, so later checkpoints are still checked
    }
    if (!leaf.has_value()) {
      log_ok_ = false;
      rep_.complete = false;
      Note("The log tree could not be recomputed past block " + std::to_string(h) + ": its leaf is unreadable.");
    } else {
      range_.Append(*leaf, [&](std::uint32_t level, std::uint64_t index, const merkle::Hash& hash) {
        ++rep_.counts.log_nodes;
        auto stored = Read([&](const journal::Snapshot& s) { return s.PerfectNode(level, index); });
        const std::string where = "log node level " + std::to_string(level) + " index " + std::to_string(index);
        if (!stored.ok()) Find("block", h, "log.node", "", HashHex(hash), where + ": " + stored.status().ToString());
        else if (*stored != hash) Find("block", h, "log.node", HashHex(*stored), HashHex(hash), where);
      });
      if (auto it = checkpoints_.find(range_.size()); it != checkpoints_.end()) {
        CheckCheckpoint(it->first, it->second, range_.Root());
      }
    }
  }

  if (state_ok_ && views_ != nullptr) {
    if (!txs_ok) {
      StopState(h, "block " + std::to_string(h) + " or its transactions are unreadable");
    } else {
      ApplyState(h, *header, txs);
    }
  }
  prev_raw_ = raw.ok() ? std::optional<std::string>(*raw) : std::nullopt;
  prev_ = header;
}

void Auditor::ApplyState(std::uint64_t h, const journal::BlockHeader& header, std::span<const journal::Transaction> txs) {
  applying_ = h;
  api::BlockProjection projection = api::ProjectBlock(*views_, *views_->Current(), txs, header.timestamp_us);
  for (size_t i = 0; i < projection.verdicts.size(); ++i) {
    if (!projection.verdicts[i].ok()) {
      Find("block", h, "projection", "", "",
           "committed transaction " + std::to_string(header.first_tx_seq + i) +
               " is refused on replay: " + projection.verdicts[i].ToString());
    }
  }
  const size_t batch_before = batch_.size();
  auto root = views_->ApplyBlock(h, std::move(projection.changes));
  if (!root.ok()) batch_.resize(batch_before);
  if (checks_ != nullptr && root.ok() && records_.contains(h)) {
    checks_->Push(Reached(std::move(batch_), *views_->Current()));
    batch_.clear();
  }
  if (!root.ok()) {
    Find("block", h, "views.apply", "", "", root.status().ToString());
    StopState(h, "block " + std::to_string(h) + " does not apply");
    return;
  }
  ++rep_.counts.state_roots;
  if (*root != header.state_root) Find("block", h, "state_root", HashHex(header.state_root), HashHex(*root));
  replay_store_->MaybeCollect(*views_->Current());
}

// The checks of `batch` whose page or value `state` reaches: a flush writes
// only those.
std::vector<StoreCheck> Auditor::Reached(std::vector<StoreCheck> batch, const indexes::StateView& state) {
  std::unordered_map<std::uint64_t, size_t> pages, values;
  for (size_t i = 0; i < batch.size(); ++i) (batch[i].page != nullptr ? pages : values).emplace(batch[i].id, i);
  std::vector<char> keep(batch.size(), 0);
  indexes::WalkPages(
      state.RootPages(),
      [&](indexes::NodeId id) -> const indexes::MapNode* {
        auto it = pages.find(id);
        if (it == pages.end() || keep[it->second] != 0) return nullptr;
        keep[it->second] = 1;
        return batch[it->second].page.get();
      },
      [&](indexes::ValueRef ref) {
        if (auto v = values.find(ref); v != values.end()) keep[v->second] = 1;
      });
  std::vector<StoreCheck> out;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (keep[i] != 0) out.push_back(std::move(batch[i]));
  }
  return out;
}

std::uint64_t Auditor::Entries() const {
  if (views_ == nullptr) return 0;
  std::uint64_t n = 0;
  for (const auto& [id, map] : views_->Current()->maps()) n += map.version.count();
  return n;
}

void Auditor::AddToSeries(std::uint64_t h, const journal::BlockHeader& header) {
  if (!point_.has_value()) {
    point_ = SeriesPoint{h, h, header.timestamp_us, header.timestamp_us, 0, 0, 0};
  }
  point_->last_height = h;
  point_->last_time_us = header.timestamp_us;
  point_->transactions += header.tx_count;
  point_->max_block_transactions = std::max(point_->max_block_transactions, header.tx_count);
  if (rep_.first_time_us == 0 || header.timestamp_us < rep_.first_time_us) rep_.first_time_us = header.timestamp_us;
  rep_.last_time_us = std::max(rep_.last_time_us, header.timestamp_us);
}

void Auditor::CheckStored(const StoreCheck& c) {
  const std::string by = "block " + std::to_string(c.block);
  if (c.page != nullptr) {
    auto stored = vstore_->nodes().Get(c.id);
    {
      std::lock_guard lock(find_mu_);
      ++rep_.counts.pages;
    }
    if (!stored.ok()) {
      Find("page", c.id, "page.read", "", HashHex(c.page->digest.hash), "written by " + by + ": " + stored.status().ToString());
    } else if (indexes::EncodeMapNode(**stored) != indexes::EncodeMapNode(*c.page)) {
      Find("page", c.id, "page.content", HashHex((*stored)->digest.hash), HashHex(c.page->digest.hash),
           "the stored page differs from the page " + by + " rebuilds");
    }
    return;
  }
  auto stored = vstore_->values().Get(c.id);
  {
    std::lock_guard lock(find_mu_);
    ++rep_.counts.values;
  }
  if (!stored.ok()) {
    Find("value", c.id, "value.read", "", "", "written by " + by + ": " + stored.status().ToString());
    return;
  }
  const merkle::Hash expected = merkle::MapValueHash(c.value);
  const merkle::Hash computed = merkle::MapValueHash(*stored);
  if (expected != computed) {
    Find("value", c.id, "value.hash", HashHex(expected), HashHex(computed), "the stored value differs from the one " + by + " writes");
  }
}

void Auditor::OnCommit(std::uint64_t height, const std::string& record) {
  auto it = records_.find(height);
  if (it == records_.end()) return;
  ++rep_.counts.records;
  if (it->second == record) return;
  auto stored = indexes::DecodeStateRecord(it->second);
  auto rebuilt = indexes::DecodeStateRecord(record);
  // An incremental rebuild hands out its own page ids: only the roots compare.
  if (!compare_store_ && stored.ok() && rebuilt.ok() && stored->state->state_root() == rebuilt->state->state_root()) return;
  if (!stored.ok()) {
    Find("record", height, "record.decode", "", "", stored.status().message());
  } else if (rebuilt.ok() && stored->state->state_root() != rebuilt->state->state_root()) {
    Find("record", height, "record.state_root", HashHex(stored->state->state_root()), HashHex(rebuilt->state->state_root()),
         "the views store's state after this block is not the journal's");
  } else {
    Find("record", height, "record.content", "", "", "the stored state record differs from the rebuilt one (page ids or digests)");
  }
}

Result<AuditReport> Auditor::Run() {
  const auto t0 = std::chrono::steady_clock::now();
  rep_.data_dir = opt_.ledger_dir;
  // The views store first: a server writes a block to the journal before its
  // state reaches the views store, so views read before the journal can only
  // be behind it, never ahead, even beside a live server.
  OpenViewStore();
  VELLUM_RETURN_IF_ERROR(OpenStores());
  ReadCheckpoints();
  if (!records_.empty() && records_.rbegin()->first >= rep_.blocks) {
    const std::uint64_t newest = records_.rbegin()->first;
    Find("block", rep_.blocks, "journal.missing", std::to_string(newest + 1) + " blocks", std::to_string(rep_.blocks) + " blocks",
         "the views store holds the state after block " + std::to_string(newest) +
             ", so the journal lost blocks from this one on");
  }
  if (opt_.from_checkpoint.has_value()) VELLUM_RETURN_IF_ERROR(StartFromCheckpoint());
  if (opt_.on_summary) opt_.on_summary(rep_);

  // Where the views' replay starts: genesis, or (incremental) the newest
  // durable state at or before the trusted size, shown to be the state its
  // block header commits to.
  if (start_ == 0) {
    StartViews(1, std::nullopt, 0);
  } else {
    std::optional<indexes::StateRecord> record;
    if (auto it = records_.upper_bound(start_ - 1); vstore_ != nullptr && it != records_.begin()) {
      --it;
      auto decoded = indexes::DecodeStateRecord(it->second);
      auto raw = TrustedHeader(it->first);
      auto header = raw.ok() ? journal::DecodeBlockHeader(*raw) : Result<journal::BlockHeader>(raw.status());
      if (!decoded.ok()) {
        Find("record", it->first, "record.decode", "", "", decoded.status().message());
      } else if (!header.ok()) {
        Find("block", it->first, "inclusion", "", "", header.status().ToString());
      } else if (header->state_root != decoded->state->state_root()) {
        Find("record", it->first, "record.state_root", HashHex(header->state_root), HashHex(decoded->state->state_root()),
             "the views store's state after this block is not the one its header commits to");
      } else {
        record = indexes::StateRecord{it->first, it->second};
        max_page_items_ = decoded->max_page_items;
      }
    }
    if (record.has_value()) {
      const std::uint64_t from = record->height + 1;
      StartViews(indexes::kOverlayFirstId, record, from);
      if (views_ != nullptr) {
        if (Status st = views_->CheckState(*views_->Current()); !st.ok()) {
          Find("record", from - 1, "record.pages", "", "", "the stored state's pages do not check: " + st.ToString());
          views_.reset();
          replay_store_.reset();
          record.reset();
        }
      }
    }
    if (!record.has_value()) {
      Note("No usable durable state at or before block " + std::to_string(start_ - 1) +
           ": the views were rebuilt from genesis (blocks below the checkpoint verified by inclusion only).");
      state_ok_ = true;
      StartViews(1, std::nullopt, 0);
    } else {
      Note("Incremental audit: the views start from the durable state after block " + std::to_string(state_from_ - 1) +
           " (its state root checked against its header); stored pages and values were compared only through that state.");
    }
  }
  for (const auto& [size, note] : checkpoints_) {
    if (size == 0) CheckCheckpoint(0, note, merkle::EmptyTreeRoot());
    else if (trusted_.has_value() && size <= trusted_->size) CheckEarlierCheckpoint(size, note);
  }

  const std::uint64_t first = state_ok_ && views_ != nullptr ? std::min(state_from_, start_) : start_;
  const std::uint64_t total = rep_.blocks - first;
  const std::uint64_t full_blocks = rep_.blocks - start_;
  series_bucket_ = std::max<std::uint64_t>(1, (full_blocks + kMaxSeriesPoints - 1) / kMaxSeriesPoints);
  const std::uint64_t step = opt_.progress_every > 0 ? opt_.progress_every : std::max<std::uint64_t>(64, total / 500);
  for (std::uint64_t h = first; h < rep_.blocks; ++h) {
    if (h < start_ && !(state_ok_ && views_ != nullptr)) continue;
    ReplayBlock(h);
    if (h >= start_ && point_.has_value() && ((h - start_ + 1) % series_bucket_ == 0 || h + 1 == rep_.blocks)) {
      point_->entries = Entries();
      rep_.series.push_back(*point_);
      point_.reset();
    }
    if (opt_.progress && (h - first + 1) % step == 0) opt_.progress({h - first + 1, total});
  }
  if (opt_.progress) opt_.progress({total, total});

  // Transactions no block covers.
  const std::uint64_t covered = prev_.has_value() ? prev_->first_tx_seq + prev_->tx_count : 0;
  if (log_ok_ && prev_.has_value() && snap_->tx_count() > covered) {
    Find("ledger", std::nullopt, "journal.extra_transactions", std::to_string(covered), std::to_string(snap_->tx_count()),
         "the store holds transactions that no block covers");
  }
  if (checks_ != nullptr) checks_->Finish();
  if (compare_store_ && replay_store_ != nullptr && state_ok_) {
    const std::uint64_t pages_beyond = stored_pages_ >= replay_store_->next_page() ? stored_pages_ - replay_store_->next_page() + 1 : 0;
    const std::uint64_t values_beyond =
        stored_values_ >= replay_store_->next_value() ? stored_values_ - replay_store_->next_value() + 1 : 0;
    if (pages_beyond + values_beyond > 0) {
      Find("views", std::nullopt, "views.ahead", std::to_string(replay_store_->next_page() - 1) + " pages, " +
               std::to_string(replay_store_->next_value() - 1) + " values",
           std::to_string(stored_pages_) + " pages, " + std::to_string(stored_values_) + " values",
           "the views store holds pages or values the journal does not rebuild (lost journal blocks?)");
    }
  }
  rep_.log_root = log_ok_ ? HashHex(range_.Root()) : "";
  if (views_ != nullptr) {
    const auto state = views_->Current();
    rep_.state_root = state_ok_ ? HashHex(state->state_root()) : "";
    for (const auto& [id, map] : state->maps()) rep_.views.push_back({id.model, id.name, id.part, map.version.count()});
  }
  rep_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return std::move(rep_);
}

}  // namespace

Result<AuditReport> RunAudit(const AuditOptions& options) {
  Auditor auditor(options);
  return auditor.Run();
}

}  // namespace vellum::audit
