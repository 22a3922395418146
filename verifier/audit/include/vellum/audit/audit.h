// vellum-audit's engine: replays one ledger's journal from genesis (or from a
// signed checkpoint already audited) and recomputes everything the server
// committed — the hash chain, every transaction root, the RFC 9162 log tree
// and every stored log node, every signed checkpoint, every view's state root
// (through the server's own projection, api::ProjectBlock) and every stored
// map page, value and state record of the views store. DESIGN.md, "Trust
// model"; the report's format is docs/FORMAT.md, "Audit report".
//
// The stores are opened read-only (LMDB MDB_RDONLY, which only takes a reader
// slot in lock.mdb), so an audit may run beside a live server: it checks the
// journal as of the read snapshot it takes when it starts.
//
// Findings, not errors: whatever the stored bytes are, a check that fails
// becomes a Finding naming the block (or checkpoint, page, value, record) and
// the check, with the committed ("expected") and recomputed ("computed")
// values. RunAudit returns an error only when it cannot run at all (no
// ledger, a store LMDB refuses to open, a malformed verifier key).
//
// LMDB does not validate every page it reads, so a corrupt store can crash a
// process that reads it; the vellum-audit tool therefore runs RunAudit in a
// child process (see tools/vellum_audit.cc) and reports such a crash as a
// finding.
//
// Thread-safety: RunAudit may be called from any thread; the callbacks are
// called on the calling thread.
#ifndef VELLUM_AUDIT_AUDIT_H_
#define VELLUM_AUDIT_AUDIT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/base/status.h"

namespace vellum::audit {

// One failed check. `subject` is what it is about: "block", "checkpoint",
// "page", "value", "record", "ledger", "views" or "store"; `position` is the
// block height, checkpoint tree size, page id, value ref or record height
// (absent for ledger-wide findings).
struct Finding {
  std::string subject;
  std::optional<std::uint64_t> position;
  std::string check;     // e.g. "chain.prev_hash", "state_root", "signature"
  std::string expected;  // what the store committed (hex for hashes); may be empty
  std::string computed;  // what the audit recomputed; may be empty
  std::string detail;    // one human sentence; may be empty
  // "block 41: chain.prev_hash expected X computed Y — detail".
  std::string ToString() const;
  bool operator==(const Finding&) const = default;
};

// How many of each check ran (and passed or failed).
struct Counts {
  std::uint64_t blocks = 0;             // headers decoded and chain-checked
  std::uint64_t transactions = 0;       // transactions decoded and hashed
  std::uint64_t tx_roots = 0;           // transaction roots recomputed
  std::uint64_t log_nodes = 0;          // stored log-tree nodes compared
  std::uint64_t checkpoints = 0;        // stored signed checkpoints verified
  std::uint64_t state_roots = 0;        // state roots recomputed by replay
  std::uint64_t blocks_trusted = 0;     // below --from-checkpoint, not replayed in full
  std::uint64_t records = 0;            // durable state records compared
  std::uint64_t pages = 0;              // stored map pages compared
  std::uint64_t values = 0;             // stored values re-hashed
  bool operator==(const Counts&) const = default;
};

// One map of the views after the last block.
struct ViewSize {
  std::string model, name, part;
  std::uint64_t entries = 0;
  bool operator==(const ViewSize&) const = default;
};

// A run of consecutive blocks, for the report's charts (at most
// kMaxSeriesPoints of them; consecutive blocks are merged beyond that).
struct SeriesPoint {
  std::uint64_t first_height = 0, last_height = 0;
  std::int64_t first_time_us = 0, last_time_us = 0;
  std::uint64_t transactions = 0;    // in the run
  std::uint32_t max_block_transactions = 0;
  std::uint64_t entries = 0;         // entries in all maps after the run's last block
  bool operator==(const SeriesPoint&) const = default;
};
inline constexpr size_t kMaxSeriesPoints = 400;

struct AuditReport {
  // Ledger summary.
  std::string data_dir;   // the LedgerDb directory audited
  std::string ledger;     // name from the metadata ("" if unreadable)
  std::string ledger_id;  // hex
  std::string vkey;       // the key checkpoints were verified with
  bool vkey_supplied = false;  // false: the ledger's own stored key was used
  std::uint64_t blocks = 0;        // in the journal snapshot
  std::uint64_t transactions = 0;  // in the journal snapshot
  std::int64_t first_time_us = 0, last_time_us = 0;
  std::string log_root;    // hex, recomputed over all blocks
  std::string state_root;  // hex, recomputed after the last block
  std::optional<std::uint64_t> from_checkpoint;  // incremental: size of the given checkpoint
  std::optional<std::uint64_t> latest_checkpoint;  // size of the newest stored checkpoint

  Counts counts;
  std::vector<Finding> findings;  // in the order found, at most kMaxFindings
  std::uint64_t findings_total = 0;
  std::vector<std::string> notes;  // what was not checked, and why
  std::vector<ViewSize> views;
  std::vector<SeriesPoint> series;
  bool complete = true;  // false: the audit stopped early (see the findings)
  double seconds = 0;

  bool clean() const { return findings_total == 0; }
  // The first finding about a block (lowest height), if any.
  const Finding* FirstBadBlock() const;
};
inline constexpr size_t kMaxFindings = 1000;

struct Progress {
  std::uint64_t done = 0;   // blocks replayed
  std::uint64_t total = 0;  // blocks to replay
};

struct AuditOptions {
  std::string ledger_dir;  // a LedgerDb directory: journal/ and views/
  // C2SP verifier key text ("name+keyid+base64"); nullopt: the ledger's stored key.
  std::optional<std::string> vkey;
  // A signed checkpoint note audited before: blocks below its size are
  // trusted once the store's tree is shown to match it.
  std::optional<std::string> from_checkpoint;
  // Called every `progress_every` replayed blocks (0: about 500 times in
  // all) and at the end.
  std::function<void(const Progress&)> progress;
  std::uint64_t progress_every = 0;
  // Called for every finding as it is found (also past kMaxFindings), and
  // once with the ledger summary filled in, before the replay.
  std::function<void(const Finding&)> on_finding;
  std::function<void(const AuditReport&)> on_summary;
};

// Runs the audit. Errors (the audit could not run): NotFound when
// ledger_dir/journal holds no store; InvalidArgument for a malformed vkey or
// from_checkpoint text; the store's Unavailable/DataLoss when LMDB cannot
// open the journal store.
Result<AuditReport> RunAudit(const AuditOptions& options);

// The machine-readable report (docs/FORMAT.md, "Audit report"), and its
// strict inverse (InvalidArgument on anything else).
std::string ReportJson(const AuditReport& report);
Result<AuditReport> ParseReportJson(std::string_view json);
Result<Finding> ParseFindingJson(std::string_view json);
std::string FindingJson(const Finding& finding);

// The self-contained HTML report: no script, no network; charts are inline SVG.
std::string ReportHtml(const AuditReport& report);

}  // namespace vellum::audit

#endif  // VELLUM_AUDIT_AUDIT_H_
