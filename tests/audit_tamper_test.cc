// Tamper suite for vellum-audit: build a ledger, close it, then flip one bit
// at many seeded random offsets of the journal store's and the views store's
// data files, each in a fresh copy, and run the vellum-audit binary on it.
//
// Whether a flip changed committed data is decided independently of the
// audit: a child process reads the copy through the stores' own APIs (every
// header, transaction, log node, checkpoint and the metadata; every state
// record, page and value) and the result is compared, item by item, with the
// original. Then:
//  - the audit never crashes (exit 0, 1 or 2 only);
//  - a flip that changed an item is reported: exit 1 with a finding naming
//    the item (the block holding a changed header or transaction, the block
//    completing a changed log node, the page, the value, the record; any
//    checkpoint finding for a checkpoint, whose key may have moved; a ledger
//    finding for the metadata), or exit 1 with the reader's crash finding,
//    or any finding / exit 2 with a message when LMDB cannot open the store;
//  - a flip that changed nothing readable (free or stale LMDB pages, bytes
//    LMDB ignores) audits clean. Exceptions the audit may pass: a state
//    record that is only gone (its key moved out of LMDB's search order)
//    changes no answer — records only shorten "as of" replays; a views store
//    that reads as an earlier flush is what a crash before the flush leaves.
//  - a page or value id no flush wrote is no committed data, whatever it
//    reads after the flip.
// Reading the copy may crash the reading child (LMDB trusts its pages): that
// counts as a change. VELLUM_TAMPER_SEED and VELLUM_TAMPER_FLIPS explore
// other flips; the ledger's timestamps and keys differ per run, so a seed
// does not pin the flipped bytes, and every outcome must hold for any flip.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "vellum/api/ledger_db.h"
#include "vellum/base/bytes.h"
#include "vellum/base/encoding.h"
#include "vellum/indexes/views.h"
#include "vellum/journal/store.h"
#include "vellum/merkle/hasher.h"
#include "vellum/testing/sample_ledger.h"
#include "vellum/testing/temp_dir.h"

namespace vellum {
namespace {

namespace fs = std::filesystem;

// Item label -> digest of what the store returns for it (or its error).
using Yield = std::map<std::string, std::string>;

std::string Digest(const Result<std::string>& r) {
  if (!r.ok()) return "error " + std::string(StatusCodeName(r.status().code()));
  return merkle::HashHex(merkle::Sha256Of(*r));
}

Yield ReadJournal(const std::string& dir) {
  Yield y;
  journal::StoreOptions o;
  o.read_only = true;
  auto store = journal::JournalStore::Open(dir, o);
  if (!store.ok()) return {{"open", "error"}};
  auto meta = (*store)->ReadMeta();
  y["meta"] = !meta.ok() ? "error" : !meta->has_value() ? "none" : Digest(journal::EncodeLedgerMeta(**meta));
  auto snap = (*store)->Read();
  if (!snap.ok()) return {{"open", "error"}};
  // LMDB poisons a read transaction after a page error: read each item
  // through a fresh one after any error.
  auto renew = [&](const Status& st) {
    if (!st.ok() && st.code() != StatusCode::kNotFound) {
      if (auto fresh = (*store)->Read(); fresh.ok()) snap = std::move(fresh);
    }
  };
  const std::uint64_t blocks = (*snap)->block_count(), txs = (*snap)->tx_count();
  y["count blocks"] = std::to_string(blocks);
  y["count txs"] = std::to_string(txs);
  for (std::uint64_t h = 0; h < blocks && h < 100000; ++h) {
    auto header = (*snap)->Header(h);
    renew(header.status());
    y["block " + std::to_string(h)] = Digest(header);
    for (std::uint32_t level = 0; ((h + 1) & ((std::uint64_t{1} << level) - 1)) == 0 && level < 64; ++level) {
      auto node = (*snap)->PerfectNode(level, h >> level);
      renew(node.status());
      y["log " + std::to_string(h) + " " + std::to_string(level)] =
          node.ok() ? merkle::HashHex(*node) : "error " + std::string(StatusCodeName(node.status().code()));
    }
  }
  for (std::uint64_t s = 0; s < txs && s < 1000000; ++s) {
    auto tx = (*snap)->Transaction(s);
    renew(tx.status());
    y["tx " + std::to_string(s)] = Digest(tx);
  }
  auto cps = (*snap)->AllCheckpoints();
  renew(cps.status());
  if (cps.ok()) {
    for (const auto& [size, note] : *cps) y["checkpoint " + std::to_string(size)] = Digest(note);
  } else {
    // One bad entry fails the whole scan: look every size up instead.
    y["checkpoints"] = "error";
    for (std::uint64_t size = 0; size <= blocks; ++size) {
      auto note = (*snap)->CheckpointAt(size);
      renew(note.status());
      if (note.status().code() != StatusCode::kNotFound) y["checkpoint " + std::to_string(size)] = Digest(note);
    }
  }
  return y;
}

Yield ReadViews(const std::string& dir) {
  Yield y;
  indexes::LmdbViewStoreOptions o;
  o.read_only = true;
  o.flush_every_blocks = 0;
  o.page_cache_entries = 0;
  auto store = indexes::OpenLmdbViewStore(dir, o);
  if (!store.ok()) return {{"open", "error"}};
  const indexes::ViewStoreStats stats = (*store)->stats();
  for (std::uint64_t id = 1; id <= stats.pages && id < 1000000; ++id) {
    auto page = (*store)->nodes().Get(id);
    y["page " + std::to_string(id)] = page.ok() ? Digest(indexes::EncodeMapNode(**page))
                                                : "error " + std::string(StatusCodeName(page.status().code()));
  }
  for (std::uint64_t ref = 1; ref <= stats.values && ref < 1000000; ++ref) {
    y["value " + std::to_string(ref)] = Digest((*store)->values().Get(ref));
  }
  auto record = (*store)->LatestRecord();
  while (record.ok() && record->has_value()) {
    const std::uint64_t h = (*record)->height;
    y["record " + std::to_string(h)] = Digest((*record)->bytes);
    if (h == 0) break;
    record = (*store)->DurableRecordAtOrBefore(h - 1);
    if (record.ok() && record->has_value() && (*record)->height >= h) break;
  }
  if (!record.ok()) y["records"] = "error";
  return y;
}

// Reads in a child process: LMDB may fault on a corrupt page.
Yield ReadInChild(const std::string& dir, bool views) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Not Catch2's handlers: a fault here is an outcome, reported to the parent.
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE}) std::signal(sig, SIG_DFL);
    ::close(fds[0]);
    const Yield y = views ? ReadViews(dir) : ReadJournal(dir);
    std::string out;
    for (const auto& [k, v] : y) out += k + "=" + v + "\n";
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) ::_exit(3);
      done += static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return {{"crash", "reading the store crashed"}};
  Yield y;
  size_t at = 0;
  while (at < text.size()) {
    const size_t nl = text.find('\n', at);
    const std::string line = text.substr(at, nl - at);
    const size_t eq = line.find('=');
    y[line.substr(0, eq)] = line.substr(eq + 1);
    at = nl + 1;
  }
  return y;
}

// What the audit must name for a changed item: (subject, position), or
// ("", nothing) when any finding will do (counts, metadata).
std::pair<std::string, std::optional<std::uint64_t>> Expect(const std::string& label) {
  std::istringstream in(label);
  std::string kind;
  std::uint64_t a = 0, b = 0;
  in >> kind >> a >> b;
  if (kind == "block") return {"block", a};
  if (kind == "meta") return {"ledger", std::nullopt};
  if (kind == "log") return {"block", a};  // the node completed by appending block a
  if (kind == "checkpoint") return {"checkpoint", a};
  if (kind == "page" || kind == "value" || kind == "record") return {kind, a};
  if (kind == "tx") return {"tx", a};  // mapped to its block by the caller
  return {"", std::nullopt};
}

struct Ledger {
  std::string dir;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> blocks;  // first tx seq, count
};

// The block holding transaction `seq`.
std::optional<std::uint64_t> BlockOf(const Ledger& l, std::uint64_t seq) {
  for (size_t h = 0; h < l.blocks.size(); ++h) {
    if (seq >= l.blocks[h].first && seq < l.blocks[h].first + l.blocks[h].second) return h;
  }
  return std::nullopt;
}

void BuildLedger(Ledger& l) {
  api::LedgerDbOptions o;
  o.journal.store.preallocate_bytes = 0;  // flips land in pages LMDB uses, not in zero padding
  o.view_store.flush_every_blocks = 10;
  auto db = api::LedgerDb::Create(l.dir, "tamper", o);
  REQUIRE(db.ok());
  REQUIRE(testing::FillSampleLedger(**db, 10, 0, 3, 4).ok());
  for (std::uint64_t h = 0; h < (*db)->journal().size(); ++h) {
    auto header = (*db)->journal().GetBlock(h);
    REQUIRE(header.ok());
    l.blocks.emplace_back(header->first_tx_seq, header->tx_count);
  }
}

int RunAudit(const std::string& ledger_dir, const std::string& out, std::string* output) {
  const std::string cmd = std::string(VELLUM_BIN_DIR) + "/vellum-audit " + ledger_dir + " --report " + out + " >" + out +
                          ".out 2>&1";
  const int status = std::system(cmd.c_str());
  *output = testing::ReadFile(out + ".out");
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void TamperSuite(const std::string& file_in_ledger, bool views, int flips, std::uint64_t seed) {
  testing::TempDir tmp;
  Ledger ledger{tmp.Sub("ledger"), {}};
  BuildLedger(ledger);
  const std::string target = ledger.dir + "/" + file_in_ledger;
  const Yield original = ReadInChild(ledger.dir + (views ? "/views" : "/journal"), views);
  REQUIRE(original.size() > 20);
  REQUIRE_FALSE(original.contains("crash"));
  {
    std::string output;
    REQUIRE(RunAudit(ledger.dir, tmp.Sub("clean"), &output) == 0);
  }
  const auto size = fs::file_size(target);
  if (const char* s = std::getenv("VELLUM_TAMPER_SEED")) seed = std::strtoull(s, nullptr, 10);
  if (const char* f = std::getenv("VELLUM_TAMPER_FLIPS")) flips = std::atoi(f);
  std::mt19937_64 rng(seed);
  int changed = 0, reported_at_item = 0, crashed = 0, refused = 0, unopenable = 0, rolled_back = 0;
  for (int i = 0; i < flips; ++i) {
    const std::uint64_t offset = rng() % size;
    const auto mask = static_cast<char>(1u << (rng() % 8));
    const std::string copy = tmp.Sub("copy" + std::to_string(i));
    fs::copy(ledger.dir, copy, fs::copy_options::recursive);
    {
      const std::string file = copy + "/" + file_in_ledger;
      std::string data = testing::ReadFile(file);
      data[offset] = static_cast<char>(data[offset] ^ mask);
      testing::WriteFile(file, data);
    }
    const Yield now = ReadInChild(copy + (views ? "/views" : "/journal"), views);
    // Changed items: an original item that reads differently or is gone, or a
    // new item that reads (not the NotFound of enumerating a range whose last
    // key moved).
    std::vector<std::string> diffs;
    bool extra = false;
    // A state record that is merely gone (its key moved out of LMDB's search
    // order) changes no answer: records only shorten "as of" replays.
    bool lost_record = false;
    for (const auto& [k, v] : original) {
      auto it = now.find(k);
      if (it == now.end() && k.rfind("record ", 0) == 0 && !now.contains("open") && !now.contains("crash")) {
        lost_record = true;
      } else if (v == "error NOT_FOUND") {
        // An id no flush wrote (its page was superseded first) is no committed
        // data: it may now read another id's bytes (a moved key, which the
        // audit names at the id that lost them) or fail with its neighbours.
        if (it != now.end() && it->second.rfind("error ", 0) != 0) extra = true;
      } else if (it == now.end() || it->second != v) {
        diffs.push_back(k);
      }
    }
    for (const auto& [k, v] : now) {
      if (!original.contains(k) && v.rfind("error NOT_FOUND", 0) != 0) extra = true;
    }
    // A views store that reads as an earlier flush (a flip in the older meta
    // page's transaction id makes LMDB pick it): the newest state record and
    // only items that flush wrote are gone. That is the state a crash before
    // the flush leaves, which recovery replays from the journal, so the audit
    // may pass it.
    bool earlier_flush = false;
    if (views && !diffs.empty()) {
      std::string newest;
      for (const auto& [k, v] : original) {
        if (k.rfind("record ", 0) == 0 && (newest.empty() || std::stoull(k.substr(7)) > std::stoull(newest.substr(7)))) newest = k;
      }
      earlier_flush = !newest.empty() && !now.contains(newest);
      for (const std::string& k : diffs) {
        if (now.contains(k) && now.at(k) != "error NOT_FOUND") earlier_flush = false;
      }
    }
    const bool unreadable = now.contains("open") || now.contains("crash");
    std::string output;
    const int code = RunAudit(copy, copy + "/report", &output);
    std::string shown;
    for (size_t d = 0; d < diffs.size() && d < 4; ++d) {
      auto it = now.find(diffs[d]);
      shown += "\n  " + diffs[d] + ": " + original.at(diffs[d]) + " -> " + (it == now.end() ? "(gone)" : it->second);
    }
    INFO("flip " << i << ": offset " << offset << " mask " << int(static_cast<unsigned char>(mask)) << " of " << target
                 << "; changed items: " << diffs.size() << shown << "\naudit exit " << code << ":\n" << output);
    REQUIRE((code == 0 || code == 1 || code == 2));
    if (earlier_flush && !extra) {
      ++rolled_back;
      CHECK((code == 0 || code == 1));
    } else if (diffs.empty() && !extra) {
      if (lost_record) CHECK((code == 0 || code == 1));
      else CHECK(code == 0);
    } else {
      ++changed;
      REQUIRE(code != 0);
      if (code == 2) {
        ++refused;
        CHECK(output.find("could not run") != std::string::npos);
      } else {
        const auto report = nlohmann::json::parse(testing::ReadFile(copy + "/report.json"));
        REQUIRE(report["findings_total"].get<int>() >= 1);
        bool died = false;
        std::set<std::pair<std::string, std::uint64_t>> named;
        std::set<std::string> subjects, checks;
        for (const auto& f : report["findings"]) {
          CHECK_FALSE(f["check"].get<std::string>().empty());
          subjects.insert(f["subject"].get<std::string>());
          checks.insert(f["check"].get<std::string>());
          if (f["check"] == "store.crash") died = true;
          if (!f["position"].is_null()) named.emplace(f["subject"].get<std::string>(), f["position"].get<std::uint64_t>());
        }
        if (died) {
          ++crashed;
        } else if (unreadable) {
          ++unopenable;
        } else {
          // Every changed item is named: the block holding a header,
          // transaction or log node; the page, value or record; a checkpoint
          // (its key may have moved, so any checkpoint finding); the ledger
          // for its metadata.
          for (const std::string& label : diffs) {
            auto [subject, position] = Expect(label);
            if (subject == "tx") {
              auto h = BlockOf(ledger, *position);
              REQUIRE(h.has_value());
              subject = "block";
              position = *h;
            }
            if (subject.empty() || (!position.has_value() && label != "meta")) continue;
            INFO("changed item " << label);
            if (subject == "checkpoint") {
              CHECK((subjects.contains("checkpoint") || checks.contains("store.read")));
            } else if (label == "meta") {
              CHECK(subjects.contains("ledger"));
            } else {
              CHECK(named.contains({subject, *position}));
            }
          }
          ++reported_at_item;
        }
      }
    }
    fs::remove_all(copy);
  }
  WARN(flips << " flips of " << file_in_ledger << ": " << changed << " changed committed data (" << reported_at_item
             << " reported at the changed item, " << crashed << " crashed the reader, " << refused
             << " refused by LMDB, " << unopenable << " with a store the reader cannot open), " << rolled_back
             << " read as an earlier flush, " << (flips - changed - rolled_back) << " changed nothing readable and audited clean");
  CHECK(changed > 0);
}

// LMDB keeps two meta pages and opens at the one with the higher transaction
// id (MDB_meta: the id is the 8 bytes at offset 144 of a 64-bit build's 4 KiB
// page). Raising the older one's id makes the views store read as its
// previous flush: the newest state record and what that flush wrote are gone,
// nothing else changes, and the audit passes it (a crash before the flush
// leaves the same store). Flips above are checked against this rule.
TEST_CASE("Tamper: a views store rolled back to its previous flush audits clean", "[audit][tamper]") {
  testing::TempDir tmp;
  Ledger ledger{tmp.Sub("ledger"), {}};
  BuildLedger(ledger);
  const Yield original = ReadInChild(ledger.dir + "/views", true);
  const std::string file = ledger.dir + "/views/data.mdb";
  std::string data = testing::ReadFile(file);
  constexpr size_t kPage = 4096, kTxnId = 144, kMagic = 16;
  REQUIRE(data.size() >= 2 * kPage);
  // The meta page is in the machine's byte order.
  for (size_t meta : {size_t{0}, kPage}) {
    std::uint32_t magic = 0;
    std::memcpy(&magic, data.data() + meta + kMagic, sizeof magic);
    REQUIRE(magic == 0xBEEFC0DEu);
  }
  auto txn = [&](size_t meta) {
    std::uint64_t id = 0;
    std::memcpy(&id, data.data() + meta + kTxnId, sizeof id);
    return id;
  };
  const size_t older = txn(0) < txn(kPage) ? 0 : kPage;
  const std::uint64_t raised = std::max(txn(0), txn(kPage)) + 1;
  std::memcpy(data.data() + older + kTxnId, &raised, sizeof raised);
  testing::WriteFile(file, data);

  const Yield now = ReadInChild(ledger.dir + "/views", true);
  REQUIRE_FALSE(now.contains("open"));
  REQUIRE_FALSE(now.contains("crash"));
  size_t gone = 0, records_gone = 0;
  for (const auto& [k, v] : original) {
    auto it = now.find(k);
    if (it != now.end() && it->second == v) continue;
    INFO(k << ": " << v << " -> " << (it == now.end() ? "(gone)" : it->second));
    CHECK((it == now.end() || it->second == "error NOT_FOUND"));
    (k.rfind("record ", 0) == 0 ? records_gone : gone) += 1;
  }
  CHECK(records_gone == 1);
  CHECK(gone > 0);
  std::string output;
  const int code = RunAudit(ledger.dir, tmp.Sub("report"), &output);
  INFO(output);
  CHECK(code == 0);
}

// 200 flips per store, in halves, so each test stays short under ASan.
TEST_CASE("Tamper: bit flips of the journal store are all reported (seed 1 of 2)", "[audit][tamper]") {
  TamperSuite("journal/data.mdb", false, 100, 20240601);
}

TEST_CASE("Tamper: bit flips of the journal store are all reported (seed 2 of 2)", "[audit][tamper]") {
  TamperSuite("journal/data.mdb", false, 100, 424242);
}

TEST_CASE("Tamper: bit flips of the views store are all reported (seed 1 of 2)", "[audit][tamper]") {
  TamperSuite("views/data.mdb", true, 100, 777);
}

TEST_CASE("Tamper: bit flips of the views store are all reported (seed 2 of 2)", "[audit][tamper]") {
  TamperSuite("views/data.mdb", true, 100, 9001);
}

}  // namespace
}  // namespace vellum
