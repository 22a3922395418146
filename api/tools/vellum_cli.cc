// vellum: the command-line client of a Vellum server (vellumd), over gRPC
// (api/proto/vellum/v1/vellum.proto). Every service call is reachable except
// interactive sessions (Begin/SessionGet/Commit/Rollback), which a one-shot
// command cannot hold open; `tx FILE` sends any batch of operations instead.
//
//   vellum [GLOBAL OPTIONS] COMMAND ARGS [OPTIONS]
//
//   ledger create NAME | ledger list | ledger describe [NAME]   (NAME defaults to --ledger)
//   kv put NS KEY VALUE [--expect VALUE | --expect-absent]      (with either: a compare-and-set)
//   kv get NS KEY | kv del NS KEY | kv get-many NS KEY...
//   kv scan NS [--prefix P | --from LO [--to HI]] [--limit N] [--reverse]   (keys in [LO, HI))
//   zset add NS SET MEMBER SCORE | incr NS SET MEMBER DELTA | rem NS SET MEMBER
//   zset rank NS SET MEMBER | top NS SET N | range NS SET MIN MAX [--limit N]
//   doc insert COLL JSON [--id ID] | update COLL ID JSON [--expect-version V]
//   doc delete COLL ID [--expect-version V] | history COLL ID
//   doc find COLL [FILTER] [--sort PATH] [--desc] [--skip N] [--limit N] [--project PATH]...
//            [--index PATH | --scan]   (default: the server picks the index that reads least)
//   doc index COLL PATH                declare a path index (built from the live documents)
//   doc validator COLL [SCHEMA]        set the collection's JSON-Schema validator (none: remove it)
//   tx FILE            ExecuteRequest in protobuf's JSON mapping ("-": stdin), e.g.
//                      {"operations":[{"kvPut":{"namespace":"n","key":"<b64>","value":"<b64>"}}],
//                       "idempotencyToken":"t"}; a "ledger" in it must equal --ledger
//   digest [--out FILE]
//   proof block HEIGHT [--tree-size N] | proof tx SEQ [--tree-size N]
//   proof consistency OLD_SIZE [NEW_SIZE]                       (all three: [--out FILE])
//   watch [--from HEIGHT] [--count N]                           (Ctrl-C ends it, exit 0)
//
// Global options, accepted before or after the command: --addr HOST:PORT
// (env VELLUM_ADDR, default 127.0.0.1:7410), --ledger NAME (VELLUM_LEDGER),
// --json, --token TOKEN (VELLUM_TOKEN; sent as "authorization: Bearer TOKEN"),
// --tls (system roots), --tls-ca FILE, --tls-cert FILE --tls-key FILE,
// --tls-server-name NAME (every --tls-* option implies TLS), --timeout SECONDS
// (deadline of every unary call, default 30, 0 = none; watch has none).
// Write commands take --idempotency-token TOKEN.
//
// Query options (kv get/scan, zset rank/top/range, doc find/history):
//   --proof-out FILE   write the proof bundle verbatim (without it, and without
//                      --vkey, the server is asked to omit the proof)
//   --at-height H      answer from the state after block H
//   --tree-size N      prove against the log tree of N blocks
//   --checkpoint FILE  prove against the size of this signed checkpoint note
//   --vkey VKEY        (inline or a file) verify the bundle before printing: its
//                      signature and proofs, that it answers the query asked, and
//                      that the response equals the proven result
//
// Output: human-readable by default; --json prints one JSON document (watch:
// one per line). Hashes are lowercase hex. Byte strings (kv keys and values,
// zset members) print raw in human output; in JSON a byte-string field F is
// "F": "<text>" when the bytes are valid UTF-8, else "F_base64": "<base64>"
// (exactly one of the two is present). With --out FILE, digest and proof
// write FILE and print nothing in human mode (their --json output remains).
// An argument starting with '-' that is not a number goes after "--".
// gRPC's own logging is off unless GRPC_VERBOSITY is set.
//
// Exit codes:
//   0  success.
//   1  absent: kv get of a missing key or zset rank of an absent member
//      (nothing on stdout; the absence proof still goes to --proof-out); or,
//      with --vkey/--checkpoint, the answer does not verify (stderr names the check).
//   2  usage: a CLI parse error, a missing --ledger, or bad user input: an
//      input file (tx FILE, --checkpoint, --vkey, TLS files) that cannot be read
//      or is malformed, a JSON argument that does not parse.
//   3  the server refused: any non-OK gRPC status, including UNAVAILABLE when
//      nothing listens ("vellum: CODE_NAME: message" on stderr); or a local
//      failure that is not the input's fault: an output file (--proof-out,
//      --out) that cannot be written, a server answer that cannot be read.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "vellum/base/bytes.h"
#include "vellum/base/status.h"
#include "vellum/engines/document/canonical_json.h"
#include "vellum/merkle/hasher.h"
#include "vellum/merkle/note.h"
#include "vellum/v1/vellum.grpc.pb.h"
#include "vellum/verifier/bundle.h"

namespace {

namespace v1 = vellum::v1;
namespace merkle = vellum::merkle;
using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitAbsent = 1;  // also: does not verify
constexpr int kExitUsage = 2;
constexpr int kExitServer = 3;

constexpr int kMaxReceiveBytes = 256 << 20;
constexpr size_t kMaxInputBytes = 256u << 20;

// ---- Small helpers -----------------------------------------------------------

int Fail(int code, std::string_view message) {
  std::cerr << "vellum: " << message << "\n";
  return code;
}
int UsageError(std::string_view message) { return Fail(kExitUsage, message); }
int LocalError(std::string_view message) { return Fail(kExitServer, message); }
int NotVerified(std::string_view message) { return Fail(kExitAbsent, "NOT VERIFIED: " + std::string(message)); }

int ServerError(const grpc::Status& status) {
  const int code = static_cast<int>(status.error_code());
  const std::string_view name =
      code >= 0 && code <= 16 ? vellum::StatusCodeName(static_cast<vellum::StatusCode>(code)) : "UNKNOWN";
  std::cerr << "vellum: " << name << ": " << status.error_message() << "\n";
  return kExitServer;
}

// True iff `s` is well-formed UTF-8 (no overlong forms, surrogates or code
// points past U+10FFFF).
bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto lead = static_cast<unsigned char>(s[i]);
    size_t len = 1;
    std::uint32_t cp = lead;
    if (lead >= 0xC2 && lead <= 0xDF) {
      len = 2, cp = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      len = 3, cp = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      len = 4, cp = lead & 0x07;
    } else if (lead >= 0x80) {
      return false;
    }
    if (len > s.size() - i) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string Hex(const std::string& bytes) { return vellum::HexEncode(bytes); }

// The JSON byte-string rule of the header comment.
void SetBytes(json& object, const std::string& field, const std::string& bytes) {
  if (IsUtf8(bytes)) {
    object[field] = bytes;
  } else {
    object[field + "_base64"] = vellum::Base64Encode(bytes);
  }
}

std::string Dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }
void PrintJson(const json& value) { std::cout << Dump(value) << "\n"; }

// A JSON document the server sent as text, embedded as JSON (or as the string
// itself should it not parse).
json Embed(const std::string& text) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? json(text) : parsed;
}

// Reads a file the user named ("-": standard input). Failing is the input's
// fault (exit 2).
vellum::Result<std::string> ReadInput(const std::string& path) {
  std::ifstream file;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return vellum::InvalidArgument("cannot read " + path + ": " + std::strerror(errno));
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::string data(kMaxInputBytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (in.bad()) return vellum::InvalidArgument("cannot read " + path);
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > kMaxInputBytes) return vellum::InvalidArgument(path + " is larger than 256 MiB");
  return data;
}

// Writes an output file. Failing is the environment's fault (exit 3): the
// answer exists, the file could not hold it.
vellum::Status WriteOutput(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (out) out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (out) out.close();
  if (!out) return vellum::Internal("cannot write " + path + ": " + std::strerror(errno));
  return vellum::Status::Ok();
}

// A verifier key given inline, or the path of a file whose first line holds one.
vellum::Result<merkle::NoteVerifier> LoadVkey(const std::string& arg) {
  auto inline_key = merkle::NoteVerifier::Parse(arg);
  if (inline_key.ok()) return inline_key;
  auto text = ReadInput(arg);
  if (!text.ok()) return vellum::InvalidArgument("--vkey is neither a verifier key nor a readable file: " + arg);
  const std::string line = text->substr(0, text->find('\n'));
  auto key = merkle::NoteVerifier::Parse(line);
  if (!key.ok()) return key.status().WithContext("--vkey " + arg);
  return key;
}

// The checkpoint in a signed note: verified with `verifier` when given, else
// parsed only (its signature unchecked).
vellum::Result<merkle::Checkpoint> ReadCheckpoint(std::string_view note, const merkle::NoteVerifier* verifier) {
  if (verifier != nullptr) return merkle::VerifyCheckpoint(note, *verifier);
  VELLUM_ASSIGN_OR_RETURN(merkle::SignedNote signed_note, merkle::ParseSignedNote(note));
  return merkle::ParseCheckpointBody(signed_note.body);
}

// A JSON object given on the command line; the server re-checks it.
vellum::Result<json> ParseObjectArg(std::string_view what, const std::string& text) {
  auto parsed = vellum::engines::document::ParseJson(text);
  if (!parsed.ok()) return parsed.status().WithContext(what);
  if (!parsed->is_object()) return vellum::InvalidArgument(std::string(what) + ": not a JSON object");
  return parsed;
}

CLI::Validator NonNegative() {
  return CLI::Validator(
      [](std::string& s) { return !s.empty() && s[0] == '-' ? std::string("must not be negative") : std::string(); },
      "", "NON_NEGATIVE");
}

CLI::Validator Utf8Text() {
  return CLI::Validator([](std::string& s) { return IsUtf8(s) ? std::string() : std::string("is not valid UTF-8"); },
                        "", "UTF8");
}

// ---- Output of the wire types ------------------------------------------------

json ReceiptJson(const v1::Receipt& r) {
  json ids = json::array();
  for (const auto& id : r.document_ids()) ids.push_back(id);
  return {{"tx_seq", r.tx_seq()},          {"block_height", r.block_height()}, {"index_in_block", r.index_in_block()},
          {"tx_hash", Hex(r.tx_hash())},   {"block_hash", Hex(r.block_hash())}, {"replayed", r.replayed()},
          {"document_ids", std::move(ids)}};
}

// "committed tx SEQ in block HEIGHT[ id ID | ids ID ID...][ (replayed)]".
std::string ReceiptLine(const v1::Receipt& r) {
  std::string line = "committed tx " + std::to_string(r.tx_seq()) + " in block " + std::to_string(r.block_height());
  if (!r.document_ids().empty()) line += r.document_ids_size() == 1 ? " id" : " ids";
  for (const auto& id : r.document_ids()) line += " " + id;
  if (r.replayed()) line += " (replayed)";
  return line;
}

json LedgerJson(const v1::LedgerInfo& info, bool with_views) {
  json out{{"name", info.name()},           {"vkey", info.vkey()},  {"blocks", info.blocks()},
           {"transactions", info.transactions()}, {"root", Hex(info.root())}, {"state_root", Hex(info.state_root())}};
  if (!with_views) return out;
  json views = json::array();
  for (const auto& v : info.views()) {
    views.push_back(
        {{"model", v.model()}, {"name", v.name()}, {"part", v.part()}, {"count", v.count()}, {"root", Hex(v.root())}});
  }
  out["views"] = std::move(views);
  return out;
}

void PrintLedger(const v1::LedgerInfo& info) {
  std::cout << "name:          " << info.name() << "\n"
            << "vkey:          " << info.vkey() << "\n"
            << "blocks:        " << info.blocks() << "\n"
            << "transactions:  " << info.transactions() << "\n"
            << "root:          " << Hex(info.root()) << "\n"
            << "state root:    " << Hex(info.state_root()) << "\n"
            << "views:         " << info.views_size() << "\n";
  for (const auto& v : info.views()) {
    std::cout << "  model=" << v.model() << " name=" << v.name() << " part=" << v.part() << " count=" << v.count()
              << " root=" << Hex(v.root()) << "\n";
  }
}

// A document's JSON in canonical form (as received if it does not parse).
std::string CanonicalDocument(const std::string& text) {
  auto canonical = vellum::engines::document::CanonicalizeJsonText(text);
  return canonical.ok() ? *canonical : text;
}

// ---- The result forms of docs/FORMAT.md "Proof bundles", rebuilt from a
// response so --vkey can compare it with what the bundle proves.

json MembersResult(const v1::ZsetMembersResponse& r) {
  json list = json::array();
  for (const auto& m : r.members()) {
    list.push_back({{"member", vellum::Base64Encode(m.member())}, {"score", m.score()}});
  }
  return {{"members", std::move(list)}};
}

json DocumentsResult(const google::protobuf::RepeatedPtrField<v1::Document>& docs, bool history) {
  json list = json::array();
  for (const auto& d : docs) {
    json item{{"version", d.version()},
              {"height", d.height()},
              {"index_in_block", d.index_in_block()},
              {"time_us", d.time_us()}};
    if (history) {
      item["deleted"] = d.deleted();
      if (!d.deleted()) item["document"] = Embed(d.json());
    } else {
      item["id"] = d.id();
      item["document"] = Embed(d.json());
    }
    list.push_back(std::move(item));
  }
  return {{history ? "revisions" : "documents", std::move(list)}};
}

// ---- Ctrl-C during watch -------------------------------------------------------

// The write end of the pipe the signal handler wakes the watch canceller
// through; a global because a signal handler can reach nothing else.
volatile std::sig_atomic_t g_interrupt_fd = -1;

extern "C" void OnInterrupt(int) {
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = write(g_interrupt_fd, &byte, 1);
}

// ---- The command line ------------------------------------------------------------

struct GlobalFlags {
  std::string addr = "127.0.0.1:7410";
  std::string ledger;
  bool json = false;
  std::string token;
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  double timeout_s = 30;
};

// The options every query subcommand takes.
struct QueryFlags {
  std::string proof_out;
  std::optional<std::uint64_t> at_height;
  std::optional<std::uint64_t> tree_size;
  std::string checkpoint;
  std::string vkey;
};

// Arguments of the subcommand being run. Exactly one subcommand runs per
// process, so they share one struct; each subcommand binds the fields it uses.
struct Args {
  std::string name, ns, key, value, set, member, collection, id, document, filter, file, out, idempotency_token;
  std::optional<std::string> expect, prefix, from_key, to_key;
  bool expect_absent = false, reverse = false, descending = false;
  std::int64_t score = 0, min = 0, max = 0;
  std::uint64_t number = 0, limit = 0, skip = 0, from_height = 0, count = 0, tree_size = 0, new_size = 0;
  std::optional<std::uint64_t> expect_version;
  std::string sort_path;
  std::string index_path;
  bool scan = false;
  std::vector<std::string> projection;
  std::vector<std::string> keys;
};

class Cli {
 public:
  Cli();
  int Run(int argc, char** argv);

 private:
  using Handler = int (Cli::*)();

  // Declaration of the command tree.
  CLI::App* Command(CLI::App* parent, const std::string& name, const std::string& about, Handler handler,
                    bool needs_ledger = true);
  void AddQueryFlags(CLI::App* cmd);
  void AddWriteFlags(CLI::App* cmd);
  void AddLedgerCommands();
  void AddKvCommands();
  void AddZsetCommands();
  void AddDocCommands();
  void AddJournalCommands();

  // Plumbing.
  int Connect();
  void Prepare(grpc::ClientContext* context, bool deadline) const;
  template <typename Stub, typename Request, typename Response>
  int Call(Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
           const Request& request, Response* response) const;
  int Execute(v1::ExecuteRequest request);
  int FillQueryOptions(v1::QueryOptions* options);
  template <typename Request, typename Response, typename Claimed>
  int Query(grpc::Status (v1::QueryService::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
            Request& request, Response* response, const json& query, Claimed claimed);
  int VerifyAnswer(const std::string& bundle_text, const json& query, const json& claimed) const;
  int EmitProof(const std::string& proof, json object);

  // Handlers, one per leaf command.
  int LedgerCreate();
  int LedgerList();
  int LedgerDescribe();
  int KvPut();
  int KvGet();
  int KvGetMany();
  int KvDel();
  int KvScan();
  int ZsetAdd();
  int ZsetIncr();
  int ZsetRem();
  int ZsetRank();
  int ZsetTop();
  int ZsetRange();
  int PrintMembers(const v1::ZsetMembersResponse& response) const;
  int DocInsert();
  int DocUpdate();
  int DocDelete();
  int DocFind();
  int DocHistory();
  int DocIndex();
  int DocValidator();
  int Tx();
  int Digest();
  int ProofBlock();
  int ProofTx();
  int ProofConsistency();
  int Watch();

  CLI::App app_{"vellum: the command-line client of a Vellum ledger server (vellumd)", "vellum"};
  GlobalFlags g_;
  QueryFlags q_;
  Args a_;
  Handler handler_ = nullptr;
  bool needs_ledger_ = false;

  std::unique_ptr<v1::LedgerService::Stub> ledgers_;
  std::unique_ptr<v1::TransactionService::Stub> transactions_;
  std::unique_ptr<v1::QueryService::Stub> queries_;
  std::unique_ptr<v1::DigestService::Stub> digests_;
  // Set by FillQueryOptions from --vkey and --checkpoint.
  std::optional<merkle::NoteVerifier> verifier_;
  std::optional<merkle::Checkpoint> trusted_;
};

Cli::Cli() {
  // Subcommands created after this inherit it: a global option given after
  // the subcommand falls through to here.
  app_.fallthrough();
  app_.require_subcommand(1);
  app_.set_version_flag("--version", "vellum 0.1.0");
  app_.add_option("--addr", g_.addr, "server address HOST:PORT")->envname("VELLUM_ADDR")->capture_default_str();
  app_.add_option("--ledger", g_.ledger, "ledger name")->envname("VELLUM_LEDGER");
  app_.add_flag("--json", g_.json, "print JSON for scripts");
  app_.add_option("--token", g_.token, "bearer token")->envname("VELLUM_TOKEN");
  app_.add_flag("--tls", g_.tls, "use TLS with the system roots");
  app_.add_option("--tls-ca", g_.tls_ca, "CA certificates (PEM) to trust instead; implies --tls");
  auto* cert = app_.add_option("--tls-cert", g_.tls_cert, "client certificate chain (PEM); implies --tls");
  auto* key = app_.add_option("--tls-key", g_.tls_key, "client private key (PEM); implies --tls");
  cert->needs(key);
  key->needs(cert);
  app_.add_option("--tls-server-name", g_.tls_server_name, "expected server name; implies --tls");
  app_.add_option("--timeout", g_.timeout_s, "deadline of each call in seconds (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  AddLedgerCommands();
  AddKvCommands();
  AddZsetCommands();
  AddDocCommands();
  AddJournalCommands();
}

CLI::App* Cli::Command(CLI::App* parent, const std::string& name, const std::string& about, Handler handler,
                       bool needs_ledger) {
  CLI::App* cmd = parent->add_subcommand(name, about);
  cmd->callback([this, handler, needs_ledger] {
    handler_ = handler;
    needs_ledger_ = needs_ledger;
  });
  return cmd;
}

void Cli::AddQueryFlags(CLI::App* cmd) {
  cmd->add_option("--proof-out", q_.proof_out, "write the proof bundle (JSON) to FILE");
  cmd->add_option("--at-height", q_.at_height, "answer from the state after block H")->check(NonNegative());
  auto* size = cmd->add_option("--tree-size", q_.tree_size, "prove against the tree of N blocks")->check(NonNegative());
  cmd->add_option("--checkpoint", q_.checkpoint, "prove against the size of this signed checkpoint note")
      ->excludes(size);
  cmd->add_option("--vkey", q_.vkey, "verify the answer with this verifier key (inline or a file)");
}

void Cli::AddWriteFlags(CLI::App* cmd) {
  cmd->add_option("--idempotency-token", a_.idempotency_token, "retries with this token commit at most once");
}

void Cli::AddLedgerCommands() {
  CLI::App* ledger = app_.add_subcommand("ledger", "create, list and describe ledgers");
  ledger->require_subcommand(1);
  Command(ledger, "create", "create a ledger", &Cli::LedgerCreate, false)
      ->add_option("NAME", a_.name, "ledger name")
      ->required();
  Command(ledger, "list", "list the ledgers you may read", &Cli::LedgerList, false);
  Command(ledger, "describe", "a ledger's key, sizes, roots and views", &Cli::LedgerDescribe, false)
      ->add_option("NAME", a_.name, "ledger name (default: --ledger)");
}

void Cli::AddKvCommands() {
  CLI::App* kv = app_.add_subcommand("kv", "key-value namespaces");
  kv->require_subcommand(1);
  const auto ns_key = [this](CLI::App* cmd) {
    cmd->add_option("NS", a_.ns, "namespace")->required()->check(Utf8Text());
    cmd->add_option("KEY", a_.key, "key (raw bytes of the argument)")->required();
  };
  CLI::App* put = Command(kv, "put", "set KEY to VALUE", &Cli::KvPut);
  ns_key(put);
  put->add_option("VALUE", a_.value, "value (raw bytes of the argument)")->required();
  auto* expect = put->add_option("--expect", a_.expect, "only if the current value is this (compare-and-set)");
  put->add_flag("--expect-absent", a_.expect_absent, "only if the key is absent (compare-and-set)")->excludes(expect);
  AddWriteFlags(put);

  CLI::App* get = Command(kv, "get", "read a key (exit 1 if absent)", &Cli::KvGet);
  ns_key(get);
  AddQueryFlags(get);

  CLI::App* get_many = Command(kv, "get-many", "read several keys in one proven call (KEY<TAB>VALUE per present key)",
                               &Cli::KvGetMany);
  get_many->add_option("NS", a_.ns, "namespace")->required()->check(Utf8Text());
  get_many->add_option("KEYS", a_.keys, "keys (1 to 256)")->required();
  AddQueryFlags(get_many);

  CLI::App* del = Command(kv, "del", "delete a key", &Cli::KvDel);
  ns_key(del);
  AddWriteFlags(del);

  CLI::App* scan = Command(kv, "scan", "list keys in order", &Cli::KvScan);
  scan->add_option("NS", a_.ns, "namespace")->required()->check(Utf8Text());
  auto* prefix = scan->add_option("--prefix", a_.prefix, "keys starting with P");
  scan->add_option("--from", a_.from_key, "first key (inclusive)")->excludes(prefix);
  scan->add_option("--to", a_.to_key, "end key (exclusive)")->excludes(prefix);
  scan->add_option("--limit", a_.limit, "at most N entries (0: the server's page)")->check(NonNegative());
  scan->add_flag("--reverse", a_.reverse, "descending order");
  AddQueryFlags(scan);
}

void Cli::AddZsetCommands() {
  CLI::App* zset = app_.add_subcommand("zset", "sorted sets (members ranked by integer score)");
  zset->require_subcommand(1);
  const auto ns_set = [this](CLI::App* cmd, bool member) {
    cmd->add_option("NS", a_.ns, "namespace")->required()->check(Utf8Text());
    cmd->add_option("SET", a_.set, "set name")->required()->check(Utf8Text());
    if (member) cmd->add_option("MEMBER", a_.member, "member (raw bytes of the argument)")->required();
  };
  CLI::App* add = Command(zset, "add", "set MEMBER's score", &Cli::ZsetAdd);
  ns_set(add, true);
  add->add_option("SCORE", a_.score, "score (signed 64-bit)")->required();
  AddWriteFlags(add);

  CLI::App* incr = Command(zset, "incr", "add DELTA to MEMBER's score", &Cli::ZsetIncr);
  ns_set(incr, true);
  incr->add_option("DELTA", a_.score, "delta (signed 64-bit)")->required();
  AddWriteFlags(incr);

  CLI::App* rem = Command(zset, "rem", "remove MEMBER", &Cli::ZsetRem);
  ns_set(rem, true);
  AddWriteFlags(rem);

  CLI::App* rank = Command(zset, "rank", "MEMBER's rank (0 = highest) and score (exit 1 if absent)", &Cli::ZsetRank);
  ns_set(rank, true);
  AddQueryFlags(rank);

  CLI::App* top = Command(zset, "top", "the N highest-scoring members", &Cli::ZsetTop);
  ns_set(top, false);
  top->add_option("N", a_.number, "how many")->required()->check(NonNegative());
  AddQueryFlags(top);

  CLI::App* range = Command(zset, "range", "members with MIN <= score <= MAX", &Cli::ZsetRange);
  ns_set(range, false);
  range->add_option("MIN", a_.min, "lowest score")->required();
  range->add_option("MAX", a_.max, "highest score")->required();
  range->add_option("--limit", a_.limit, "at most N members (0: the server's page)")->check(NonNegative());
  AddQueryFlags(range);
}

void Cli::AddDocCommands() {
  CLI::App* doc = app_.add_subcommand("doc", "JSON document collections");
  doc->require_subcommand(1);
  const auto coll = [this](CLI::App* cmd) {
    cmd->add_option("COLL", a_.collection, "collection")->required()->check(Utf8Text());
  };
  CLI::App* insert = Command(doc, "insert", "insert a JSON object; prints its id", &Cli::DocInsert);
  coll(insert);
  insert->add_option("JSON", a_.document, "the document (a JSON object)")->required();
  insert->add_option("--id", a_.id, "document id (default: derived from its place in the journal)")->check(Utf8Text());
  AddWriteFlags(insert);

  CLI::App* update = Command(doc, "update", "replace document ID", &Cli::DocUpdate);
  coll(update);
  update->add_option("ID", a_.id, "document id")->required()->check(Utf8Text());
  update->add_option("JSON", a_.document, "the new document (a JSON object)")->required();
  update->add_option("--expect-version", a_.expect_version, "only if its version is V")->check(NonNegative());
  AddWriteFlags(update);

  CLI::App* del = Command(doc, "delete", "delete document ID", &Cli::DocDelete);
  coll(del);
  del->add_option("ID", a_.id, "document id")->required()->check(Utf8Text());
  del->add_option("--expect-version", a_.expect_version, "only if its version is V")->check(NonNegative());
  AddWriteFlags(del);

  CLI::App* find = Command(doc, "find", "documents matching a MongoDB-style filter", &Cli::DocFind);
  coll(find);
  find->add_option("FILTER", a_.filter, "filter (a JSON object; default: all)");
  find->add_option("--sort", a_.sort_path, "sort by this field path");
  find->add_flag("--desc", a_.descending, "sort descending");
  find->add_option("--skip", a_.skip, "skip N documents")->check(NonNegative());
  find->add_option("--limit", a_.limit, "at most N documents (0: no limit)")->check(NonNegative());
  find->add_option("--project", a_.projection, "keep only these field paths (repeatable, or comma-separated)")
      ->allow_extra_args(false)
      ->delimiter(',');
  CLI::Option* index = find->add_option("--index", a_.index_path, "read this declared path index")->check(Utf8Text());
  find->add_flag("--scan", a_.scan, "read the whole collection (no index)")->excludes(index);
  AddQueryFlags(find);

  CLI::App* declare = Command(doc, "index", "declare a path index on PATH (dotted, e.g. customer.city)", &Cli::DocIndex);
  coll(declare);
  declare->add_option("PATH", a_.index_path, "dotted field path")->required()->check(Utf8Text());
  AddWriteFlags(declare);

  CLI::App* validator = Command(doc, "validator", "set the collection's validator (no SCHEMA: remove it)",
                                &Cli::DocValidator);
  coll(validator);
  validator->add_option("SCHEMA", a_.document, "JSON Schema subset (see docs/FORMAT.md)");
  AddWriteFlags(validator);

  CLI::App* history = Command(doc, "history", "every revision of document ID, oldest first", &Cli::DocHistory);
  coll(history);
  history->add_option("ID", a_.id, "document id")->required()->check(Utf8Text());
  AddQueryFlags(history);
}

void Cli::AddJournalCommands() {
  CLI::App* tx = Command(&app_, "tx", "execute a JSON ExecuteRequest (FILE, or - for stdin)", &Cli::Tx);
  tx->add_option("FILE", a_.file, "the request in protobuf's JSON mapping")->required();
  AddWriteFlags(tx);

  Command(&app_, "digest", "print the signed checkpoint note", &Cli::Digest)
      ->add_option("--out", a_.out, "write the note to FILE instead");

  CLI::App* proof = app_.add_subcommand("proof", "journal proofs, checkable by vellum-verify log-proof");
  proof->require_subcommand(1);
  CLI::App* block = Command(proof, "block", "inclusion of block HEIGHT in the log tree", &Cli::ProofBlock);
  block->add_option("HEIGHT", a_.number, "block height")->required()->check(NonNegative());
  CLI::App* txp = Command(proof, "tx", "transaction SEQ, its block and the block's inclusion", &Cli::ProofTx);
  txp->add_option("SEQ", a_.number, "transaction sequence number")->required()->check(NonNegative());
  for (CLI::App* cmd : {block, txp}) {
    cmd->add_option("--tree-size", a_.tree_size, "tree size (default: the newest checkpoint's)")->check(NonNegative());
  }
  CLI::App* cons = Command(proof, "consistency", "the tree of NEW_SIZE extends the tree of OLD_SIZE",
                           &Cli::ProofConsistency);
  cons->add_option("OLD_SIZE", a_.number, "old tree size")->required()->check(NonNegative());
  cons->add_option("NEW_SIZE", a_.new_size, "new tree size (default: the newest checkpoint's)")->check(NonNegative());
  for (CLI::App* cmd : {block, txp, cons}) cmd->add_option("--out", a_.out, "write the proof to FILE instead");

  CLI::App* watch = Command(&app_, "watch", "stream blocks as they commit (Ctrl-C to stop)", &Cli::Watch);
  watch->add_option("--from", a_.from_height, "first block height")->check(NonNegative());
  watch->add_option("--count", a_.count, "stop after N blocks (0: never)")->check(NonNegative());
}

// ---- Plumbing --------------------------------------------------------------------

int Cli::Run(int argc, char** argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e) == 0 ? kExitOk : kExitUsage;  // --help and --version exit 0
  }
  if (handler_ == nullptr) return UsageError("no command given (see --help)");
  if (needs_ledger_ && g_.ledger.empty()) {
    return UsageError("this command needs a ledger: pass --ledger NAME or set VELLUM_LEDGER");
  }
  if (const int rc = Connect(); rc != kExitOk) return rc;
  return (this->*handler_)();
}

int Cli::Connect() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (g_.tls || !g_.tls_ca.empty() || !g_.tls_cert.empty() || !g_.tls_server_name.empty()) {
    grpc::SslCredentialsOptions ssl;  // empty roots: gRPC's default (system) roots
    const std::pair<const std::string*, std::string*> files[] = {
        {&g_.tls_ca, &ssl.pem_root_certs}, {&g_.tls_cert, &ssl.pem_cert_chain}, {&g_.tls_key, &ssl.pem_private_key}};
    for (const auto& [path, pem] : files) {
      if (path->empty()) continue;
      auto text = ReadInput(*path);
      if (!text.ok()) return UsageError(text.status().message());
      *pem = std::move(text).value();
    }
    credentials = grpc::SslCredentials(ssl);
    if (!g_.tls_server_name.empty()) args.SetSslTargetNameOverride(g_.tls_server_name);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(g_.addr, credentials, args);
  ledgers_ = v1::LedgerService::NewStub(channel);
  transactions_ = v1::TransactionService::NewStub(channel);
  queries_ = v1::QueryService::NewStub(channel);
  digests_ = v1::DigestService::NewStub(channel);
  return kExitOk;
}

void Cli::Prepare(grpc::ClientContext* context, bool deadline) const {
  if (deadline && g_.timeout_s > 0) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::duration_cast<std::chrono::system_clock::duration>(
                              std::chrono::duration<double>(g_.timeout_s)));
  }
  if (!g_.token.empty()) context->AddMetadata("authorization", "Bearer " + g_.token);
}

// One unary call; exit code 3 with the status on stderr if it fails.
template <typename Stub, typename Request, typename Response>
int Cli::Call(Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
              const Request& request, Response* response) const {
  grpc::ClientContext context;
  Prepare(&context, /*deadline=*/true);
  const grpc::Status status = (stub.*method)(&context, request, response);
  return status.ok() ? kExitOk : ServerError(status);
}

// Commits `request` on --ledger and prints the receipt.
int Cli::Execute(v1::ExecuteRequest request) {
  request.set_ledger(g_.ledger);
  if (!a_.idempotency_token.empty()) request.set_idempotency_token(a_.idempotency_token);
  v1::Receipt receipt;
  if (const int rc = Call(*transactions_, &v1::TransactionService::Stub::Execute, request, &receipt); rc != kExitOk) {
    return rc;
  }
  if (g_.json) {
    PrintJson(ReceiptJson(receipt));
  } else {
    std::cout << ReceiptLine(receipt) << "\n";
  }
  return kExitOk;
}

// Turns the query flags into QueryOptions; loads --vkey and --checkpoint.
// Exit 2 for unreadable or malformed ones, 1 for a checkpoint whose signature
// does not verify with --vkey.
int Cli::FillQueryOptions(v1::QueryOptions* options) {
  if (q_.at_height.has_value()) options->set_at_height(*q_.at_height);
  if (q_.tree_size.has_value()) options->set_tree_size(*q_.tree_size);
  if (!q_.vkey.empty()) {
    auto verifier = LoadVkey(q_.vkey);
    if (!verifier.ok()) return UsageError(verifier.status().message());
    verifier_.emplace(std::move(verifier).value());
  }
  if (!q_.checkpoint.empty()) {
    auto note = ReadInput(q_.checkpoint);
    if (!note.ok()) return UsageError(note.status().message());
    auto checkpoint = ReadCheckpoint(*note, verifier_.has_value() ? &*verifier_ : nullptr);
    if (!checkpoint.ok()) {
      const vellum::Status status = checkpoint.status().WithContext("--checkpoint " + q_.checkpoint);
      return status.code() == vellum::StatusCode::kInvalidArgument ? UsageError(status.message())
                                                                   : NotVerified(status.message());
    }
    options->set_tree_size(checkpoint->size);
    if (verifier_.has_value()) trusted_ = *checkpoint;
  }
  options->set_omit_proof(q_.proof_out.empty() && !verifier_.has_value());
  return kExitOk;
}

// Runs a query on --ledger with the query flags, writes --proof-out and, with
// --vkey, checks the answer: `query` holds the bundle query fields the
// request implies, `claimed` rebuilds the bundle result from the response.
template <typename Request, typename Response, typename Claimed>
int Cli::Query(grpc::Status (v1::QueryService::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
               Request& request, Response* response, const json& query, Claimed claimed) {
  request.set_ledger(g_.ledger);
  if (const int rc = FillQueryOptions(request.mutable_options()); rc != kExitOk) return rc;
  if (const int rc = Call(*queries_, method, request, response); rc != kExitOk) return rc;
  const std::string& bundle = response->header().bundle();
  if (!q_.proof_out.empty()) {
    if (bundle.empty()) return LocalError("the server sent no proof bundle for --proof-out");
    if (vellum::Status written = WriteOutput(q_.proof_out, bundle); !written.ok()) return LocalError(written.message());
  }
  if (!verifier_.has_value()) return kExitOk;
  return VerifyAnswer(bundle, query, claimed(*response));
}

int Cli::VerifyAnswer(const std::string& bundle_text, const json& query, const json& claimed) const {
  auto bundle = vellum::verifier::ParseBundle(bundle_text);
  if (!bundle.ok()) return NotVerified("bundle: " + bundle.status().message());
  auto verified = vellum::verifier::VerifyBundle(*bundle, *verifier_, trusted_);
  if (!verified.ok()) return NotVerified(verified.status().message());
  for (auto it = query.begin(); it != query.end(); ++it) {
    const auto found = bundle->query.find(it.key());
    if (found == bundle->query.end() || *found != it.value()) {
      return NotVerified("bundle.query: field '" + it.key() + "' is " +
                         (found == bundle->query.end() ? std::string("missing") : Dump(*found)) + ", expected " +
                         Dump(it.value()));
    }
  }
  if (verified->result != claimed) {
    return NotVerified("bundle.result: the response differs from the proven result; proven " +
                       Dump(verified->result) + ", response " + Dump(claimed));
  }
  if (q_.at_height.has_value() && verified->height != *q_.at_height) {
    return NotVerified("bundle.height: expected " + std::to_string(*q_.at_height) + ", got " +
                       std::to_string(verified->height));
  }
  if (q_.tree_size.has_value() && verified->checkpoint.size != *q_.tree_size) {
    return NotVerified("bundle.tree_size: expected " + std::to_string(*q_.tree_size) + ", got " +
                       std::to_string(verified->checkpoint.size));
  }
  return kExitOk;
}

// Writes --out, then prints the proof: --json adds it as "proof" to `object`;
// human output is the proof JSON verbatim (nothing if --out was given).
int Cli::EmitProof(const std::string& proof, json object) {
  if (!a_.out.empty()) {
    if (vellum::Status written = WriteOutput(a_.out, proof); !written.ok()) return LocalError(written.message());
  }
  if (g_.json) {
    json parsed = json::parse(proof, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return LocalError("the server sent a proof that is not JSON");
    object["proof"] = std::move(parsed);
    PrintJson(object);
  } else if (a_.out.empty()) {
    std::cout << proof << (!proof.empty() && proof.back() == '\n' ? "" : "\n");
  }
  return kExitOk;
}

// ---- Ledgers ---------------------------------------------------------------------

int Cli::LedgerCreate() {
  v1::CreateLedgerRequest request;
  request.set_name(a_.name);
  v1::LedgerInfo info;
  if (const int rc = Call(*ledgers_, &v1::LedgerService::Stub::CreateLedger, request, &info); rc != kExitOk) return rc;
  if (g_.json) {
    PrintJson(LedgerJson(info, true));
  } else {
    PrintLedger(info);
  }
  return kExitOk;
}

int Cli::LedgerList() {
  v1::ListLedgersResponse response;
  if (const int rc = Call(*ledgers_, &v1::LedgerService::Stub::ListLedgers, v1::ListLedgersRequest(), &response);
      rc != kExitOk) {
    return rc;
  }
  if (g_.json) {
    json list = json::array();
    for (const auto& info : response.ledgers()) list.push_back(LedgerJson(info, false));
    PrintJson({{"ledgers", std::move(list)}});
    return kExitOk;
  }
  for (const auto& info : response.ledgers()) {
    std::cout << info.name() << " blocks=" << info.blocks() << " transactions=" << info.transactions()
              << " root=" << Hex(info.root()) << "\n";
  }
  return kExitOk;
}

int Cli::LedgerDescribe() {
  v1::DescribeLedgerRequest request;
  request.set_ledger(a_.name.empty() ? g_.ledger : a_.name);
  if (request.ledger().empty()) return UsageError("ledger describe needs NAME (or --ledger)");
  v1::LedgerInfo info;
  if (const int rc = Call(*ledgers_, &v1::LedgerService::Stub::DescribeLedger, request, &info); rc != kExitOk) {
    return rc;
  }
  if (g_.json) {
    PrintJson(LedgerJson(info, true));
  } else {
    PrintLedger(info);
  }
  return kExitOk;
}

// ---- Key-value -------------------------------------------------------------------

int Cli::KvPut() {
  v1::ExecuteRequest request;
  if (a_.expect.has_value() || a_.expect_absent) {
    auto* cas = request.add_operations()->mutable_kv_compare_and_set();
    cas->set_namespace_(a_.ns);
    cas->set_key(a_.key);
    if (a_.expect.has_value()) cas->set_expected(*a_.expect);
    cas->set_value(a_.value);
  } else {
    auto* put = request.add_operations()->mutable_kv_put();
    put->set_namespace_(a_.ns);
    put->set_key(a_.key);
    put->set_value(a_.value);
  }
  return Execute(std::move(request));
}

int Cli::KvDel() {
  v1::ExecuteRequest request;
  auto* del = request.add_operations()->mutable_kv_delete();
  del->set_namespace_(a_.ns);
  del->set_key(a_.key);
  return Execute(std::move(request));
}

int Cli::KvGet() {
  v1::KvGetRequest request;
  request.set_namespace_(a_.ns);
  request.set_key(a_.key);
  const json query{{"kind", "kv.get"}, {"namespace", a_.ns}, {"key", vellum::Base64Encode(a_.key)}};
  v1::KvGetResponse response;
  const int rc = Query(&v1::QueryService::Stub::KvGet, request, &response, query, [](const v1::KvGetResponse& r) {
    return r.found() ? json{{"found", true}, {"value", vellum::Base64Encode(r.value())}} : json{{"found", false}};
  });
  if (rc != kExitOk) return rc;
  if (!response.found()) return kExitAbsent;
  if (g_.json) {
    json out{{"found", true}, {"height", response.header().height()}, {"tree_size", response.header().tree_size()}};
    SetBytes(out, "value", response.value());
    PrintJson(out);
  } else {
    std::cout << response.value() << "\n";
  }
  return kExitOk;
}

int Cli::KvGetMany() {
  v1::KvGetManyRequest request;
  request.set_namespace_(a_.ns);
  json keys = json::array();
  for (const auto& k : a_.keys) {
    request.add_keys(k);
    keys.push_back(vellum::Base64Encode(k));
  }
  const json query{{"kind", "kv.get_many"}, {"namespace", a_.ns}, {"keys", keys}};
  auto entries = [](const v1::KvGetManyResponse& r) {
    json list = json::array();
    for (const auto& e : r.entries()) {
      json item{{"key", vellum::Base64Encode(e.key())}, {"found", e.found()}};
      if (e.found()) item["value"] = vellum::Base64Encode(e.value());
      list.push_back(std::move(item));
    }
    return json{{"entries", std::move(list)}};
  };
  v1::KvGetManyResponse response;
  const int rc = Query(&v1::QueryService::Stub::KvGetMany, request, &response, query, entries);
  if (rc != kExitOk) return rc;
  if (g_.json) {
    json out = json::object();
    json list = json::array();
    for (const auto& e : response.entries()) {
      json item{{"found", e.found()}};
      SetBytes(item, "key", e.key());
      if (e.found()) SetBytes(item, "value", e.value());
      list.push_back(std::move(item));
    }
    out["entries"] = std::move(list);
    out["height"] = response.header().height();
    out["tree_size"] = response.header().tree_size();
    PrintJson(out);
  } else {
    for (const auto& e : response.entries()) {
      if (e.found()) std::cout << e.key() << "\t" << e.value() << "\n";
    }
  }
  return kExitOk;
}

int Cli::KvScan() {
  v1::KvScanRequest request;
  request.set_namespace_(a_.ns);
  request.set_limit(a_.limit);
  request.set_reverse(a_.reverse);
  json query{{"kind", "kv.scan"}, {"namespace", a_.ns}, {"reverse", a_.reverse}};
  if (a_.limit != 0) query["limit"] = a_.limit;
  if (a_.prefix.has_value()) {
    request.set_prefix(*a_.prefix);
    query["prefix"] = vellum::Base64Encode(*a_.prefix);
  } else {
    request.set_lo(a_.from_key.value_or(""));
    query["lo"] = vellum::Base64Encode(request.lo());
    if (a_.to_key.has_value()) {
      request.set_hi(*a_.to_key);
      query["hi"] = vellum::Base64Encode(*a_.to_key);
    }
  }
  v1::KvScanResponse response;
  const int rc = Query(&v1::QueryService::Stub::KvScan, request, &response, query, [](const v1::KvScanResponse& r) {
    json list = json::array();
    for (const auto& e : r.entries()) {
      list.push_back({{"key", vellum::Base64Encode(e.key())}, {"value", vellum::Base64Encode(e.value())}});
    }
    json out{{"entries", std::move(list)}, {"has_more", r.has_more()}};
    if (r.has_next_key()) out["next_key"] = vellum::Base64Encode(r.next_key());
    return out;
  });
  if (rc != kExitOk) return rc;
  if (g_.json) {
    json entries = json::array();
    for (const auto& e : response.entries()) {
      json entry = json::object();
      SetBytes(entry, "key", e.key());
      SetBytes(entry, "value", e.value());
      entries.push_back(std::move(entry));
    }
    json out{{"entries", std::move(entries)},
             {"has_more", response.has_more()},
             {"height", response.header().height()},
             {"tree_size", response.header().tree_size()}};
    if (response.has_next_key()) SetBytes(out, "next_key", response.next_key());
    PrintJson(out);
    return kExitOk;
  }
  for (const auto& e : response.entries()) std::cout << e.key() << "\t" << e.value() << "\n";
  if (response.has_more()) {
    std::cerr << "vellum: more entries follow"
              << (response.has_next_key() && IsUtf8(response.next_key()) ? " from key " + response.next_key() : "")
              << "\n";
  }
  return kExitOk;
}

// ---- Sorted sets -----------------------------------------------------------------

int Cli::ZsetAdd() {
  v1::ExecuteRequest request;
  auto* add = request.add_operations()->mutable_zset_add();
  add->set_namespace_(a_.ns);
  add->set_set(a_.set);
  add->set_member(a_.member);
  add->set_score(a_.score);
  return Execute(std::move(request));
}

int Cli::ZsetIncr() {
  v1::ExecuteRequest request;
  auto* incr = request.add_operations()->mutable_zset_increment();
  incr->set_namespace_(a_.ns);
  incr->set_set(a_.set);
  incr->set_member(a_.member);
  incr->set_delta(a_.score);
  return Execute(std::move(request));
}

int Cli::ZsetRem() {
  v1::ExecuteRequest request;
  auto* rem = request.add_operations()->mutable_zset_remove();
  rem->set_namespace_(a_.ns);
  rem->set_set(a_.set);
  rem->set_member(a_.member);
  return Execute(std::move(request));
}

int Cli::ZsetRank() {
  v1::ZsetRankRequest request;
  request.set_namespace_(a_.ns);
  request.set_set(a_.set);
  request.set_member(a_.member);
  const json query{
      {"kind", "zset.rank"}, {"namespace", a_.ns}, {"set", a_.set}, {"member", vellum::Base64Encode(a_.member)}};
  v1::ZsetRankResponse response;
  const int rc = Query(&v1::QueryService::Stub::ZsetRank, request, &response, query, [](const v1::ZsetRankResponse& r) {
    return r.found() ? json{{"found", true}, {"score", r.score()}, {"rank", r.rank()}, {"total", r.total()}}
                     : json{{"found", false}};
  });
  if (rc != kExitOk) return rc;
  if (!response.found()) return kExitAbsent;
  if (g_.json) {
    PrintJson({{"found", true},
               {"rank", response.rank()},
               {"score", response.score()},
               {"total", response.total()},
               {"height", response.header().height()},
               {"tree_size", response.header().tree_size()}});
  } else {
    std::cout << "rank=" << response.rank() << " score=" << response.score() << " total=" << response.total() << "\n";
  }
  return kExitOk;
}

int Cli::ZsetTop() {
  v1::ZsetTopRequest request;
  request.set_namespace_(a_.ns);
  request.set_set(a_.set);
  request.set_n(a_.number);
  const json query{{"kind", "zset.top"}, {"namespace", a_.ns}, {"set", a_.set}, {"n", a_.number}};
  v1::ZsetMembersResponse response;
  const int rc = Query(&v1::QueryService::Stub::ZsetTop, request, &response, query, MembersResult);
  return rc != kExitOk ? rc : PrintMembers(response);
}

int Cli::ZsetRange() {
  v1::ZsetRangeRequest request;
  request.set_namespace_(a_.ns);
  request.set_set(a_.set);
  request.set_min(a_.min);
  request.set_max(a_.max);
  request.set_limit(a_.limit);
  json query{{"kind", "zset.range"}, {"namespace", a_.ns}, {"set", a_.set}, {"min", a_.min}, {"max", a_.max}};
  if (a_.limit != 0) query["limit"] = a_.limit;
  v1::ZsetMembersResponse response;
  const int rc = Query(&v1::QueryService::Stub::ZsetRange, request, &response, query, MembersResult);
  return rc != kExitOk ? rc : PrintMembers(response);
}

int Cli::PrintMembers(const v1::ZsetMembersResponse& response) const {
  if (g_.json) {
    json members = json::array();
    for (const auto& m : response.members()) {
      json member{{"score", m.score()}};
      SetBytes(member, "member", m.member());
      members.push_back(std::move(member));
    }
    PrintJson({{"members", std::move(members)},
               {"height", response.header().height()},
               {"tree_size", response.header().tree_size()}});
    return kExitOk;
  }
  for (const auto& m : response.members()) std::cout << m.member() << "\t" << m.score() << "\n";
  return kExitOk;
}

// ---- Documents -------------------------------------------------------------------

int Cli::DocInsert() {
  if (auto parsed = ParseObjectArg("JSON", a_.document); !parsed.ok()) return UsageError(parsed.status().message());
  v1::ExecuteRequest request;
  auto* insert = request.add_operations()->mutable_doc_insert();
  insert->set_collection(a_.collection);
  insert->set_id(a_.id);
  insert->set_json(a_.document);
  return Execute(std::move(request));
}

int Cli::DocUpdate() {
  if (auto parsed = ParseObjectArg("JSON", a_.document); !parsed.ok()) return UsageError(parsed.status().message());
  v1::ExecuteRequest request;
  auto* replace = request.add_operations()->mutable_doc_replace();
  replace->set_collection(a_.collection);
  replace->set_id(a_.id);
  replace->set_json(a_.document);
  if (a_.expect_version.has_value()) replace->set_expected_version(*a_.expect_version);
  return Execute(std::move(request));
}

int Cli::DocDelete() {
  v1::ExecuteRequest request;
  auto* del = request.add_operations()->mutable_doc_delete();
  del->set_collection(a_.collection);
  del->set_id(a_.id);
  if (a_.expect_version.has_value()) del->set_expected_version(*a_.expect_version);
  return Execute(std::move(request));
}

int Cli::DocFind() {
  json filter = json::object();
  if (!a_.filter.empty()) {
    auto parsed = ParseObjectArg("FILTER", a_.filter);
    if (!parsed.ok()) return UsageError(parsed.status().message());
    filter = std::move(parsed).value();
  }
  v1::DocFindRequest request;
  request.set_collection(a_.collection);
  request.set_filter(a_.filter);
  request.set_sort_path(a_.sort_path);
  request.set_descending(a_.descending);
  request.set_skip(a_.skip);
  request.set_limit(a_.limit);
  for (const auto& path : a_.projection) request.add_projection(path);
  json query{{"kind", "doc.find"},          {"collection", a_.collection}, {"filter", std::move(filter)},
             {"descending", a_.descending}, {"skip", a_.skip},             {"projection", a_.projection}};
  if (!a_.sort_path.empty()) query["sort_path"] = a_.sort_path;
  if (a_.limit != 0) query["limit"] = a_.limit;
  if (!a_.index_path.empty() || a_.scan) {
    request.set_index(a_.index_path);
    query["index"] = a_.index_path;
  }
  v1::DocFindResponse response;
  const int rc = Query(&v1::QueryService::Stub::DocFind, request, &response, query,
                       [](const v1::DocFindResponse& r) { return DocumentsResult(r.documents(), false); });
  if (rc != kExitOk) return rc;
  if (g_.json) {
    json out = DocumentsResult(response.documents(), false);
    out["index"] = response.index();
    out["height"] = response.header().height();
    out["tree_size"] = response.header().tree_size();
    PrintJson(out);
    return kExitOk;
  }
  for (const auto& d : response.documents()) {
    std::cout << d.id() << "\t" << d.version() << "\t" << CanonicalDocument(d.json()) << "\n";
  }
  return kExitOk;
}

int Cli::DocIndex() {
  v1::ExecuteRequest request;
  auto* declare = request.add_operations()->mutable_doc_create_index();
  declare->set_collection(a_.collection);
  declare->set_path(a_.index_path);
  return Execute(std::move(request));
}

int Cli::DocValidator() {
  if (!a_.document.empty()) {
    if (auto parsed = ParseObjectArg("SCHEMA", a_.document); !parsed.ok()) return UsageError(parsed.status().message());
  }
  v1::ExecuteRequest request;
  auto* set = request.add_operations()->mutable_doc_set_validator();
  set->set_collection(a_.collection);
  set->set_schema(a_.document);
  return Execute(std::move(request));
}

int Cli::DocHistory() {
  v1::DocHistoryRequest request;
  request.set_collection(a_.collection);
  request.set_id(a_.id);
  const json query{{"kind", "doc.history"}, {"collection", a_.collection}, {"id", a_.id}};
  v1::DocHistoryResponse response;
  const int rc = Query(&v1::QueryService::Stub::DocHistory, request, &response, query,
                       [](const v1::DocHistoryResponse& r) { return DocumentsResult(r.revisions(), true); });
  if (rc != kExitOk) return rc;
  if (g_.json) {
    json out = DocumentsResult(response.revisions(), true);
    out["id"] = a_.id;
    out["height"] = response.header().height();
    out["tree_size"] = response.header().tree_size();
    PrintJson(out);
    return kExitOk;
  }
  for (const auto& r : response.revisions()) {
    std::cout << r.version() << "\t" << r.height() << "\t" << (r.deleted() ? "(deleted)" : CanonicalDocument(r.json()))
              << "\n";
  }
  return kExitOk;
}

// ---- Transactions, digests and journal proofs --------------------------------------

int Cli::Tx() {
  auto text = ReadInput(a_.file);
  if (!text.ok()) return UsageError(text.status().message());
  v1::ExecuteRequest request;
  const auto parsed = google::protobuf::util::JsonStringToMessage(*text, &request);
  const std::string source = a_.file == "-" ? "stdin" : a_.file;
  if (!parsed.ok()) return UsageError(source + ": not an ExecuteRequest: " + std::string(parsed.message()));
  if (!request.ledger().empty() && request.ledger() != g_.ledger) {
    return UsageError(source + " names ledger '" + request.ledger() + "' but --ledger is '" + g_.ledger + "'");
  }
  return Execute(std::move(request));
}

int Cli::Digest() {
  v1::DigestRequest request;
  request.set_ledger(g_.ledger);
  v1::DigestResponse response;
  if (const int rc = Call(*digests_, &v1::DigestService::Stub::GetDigest, request, &response); rc != kExitOk) {
    return rc;
  }
  if (!a_.out.empty()) {
    if (vellum::Status written = WriteOutput(a_.out, response.checkpoint()); !written.ok()) {
      return LocalError(written.message());
    }
  }
  if (g_.json) {
    PrintJson(
        {{"checkpoint", response.checkpoint()}, {"tree_size", response.tree_size()}, {"root", Hex(response.root())}});
  } else if (a_.out.empty()) {
    std::cout << response.checkpoint();
  }
  return kExitOk;
}

int Cli::ProofBlock() {
  v1::BlockProofRequest request;
  request.set_ledger(g_.ledger);
  request.set_height(a_.number);
  request.set_tree_size(a_.tree_size);
  v1::BlockProofResponse response;
  if (const int rc = Call(*digests_, &v1::DigestService::Stub::ProveBlock, request, &response); rc != kExitOk) {
    return rc;
  }
  return EmitProof(response.proof(), {{"height", a_.number}, {"header", Hex(response.header())}});
}

int Cli::ProofTx() {
  v1::TransactionProofRequest request;
  request.set_ledger(g_.ledger);
  request.set_tx_seq(a_.number);
  request.set_tree_size(a_.tree_size);
  v1::TransactionProofResponse response;
  if (const int rc = Call(*digests_, &v1::DigestService::Stub::ProveTransaction, request, &response); rc != kExitOk) {
    return rc;
  }
  json path = json::array();
  for (const auto& hash : response.tx_path()) path.push_back(Hex(hash));
  return EmitProof(response.block_proof(), {{"tx_seq", a_.number},
                                            {"index_in_block", response.index_in_block()},
                                            {"transaction", Hex(response.transaction())},
                                            {"header", Hex(response.header())},
                                            {"tx_path", std::move(path)}});
}

int Cli::ProofConsistency() {
  v1::ConsistencyRequest request;
  request.set_ledger(g_.ledger);
  request.set_old_size(a_.number);
  request.set_new_size(a_.new_size);
  v1::LogProofResponse response;
  if (const int rc = Call(*digests_, &v1::DigestService::Stub::ProveConsistency, request, &response); rc != kExitOk) {
    return rc;
  }
  return EmitProof(response.proof(), json::object());
}

int Cli::Watch() {
  v1::WatchRequest request;
  request.set_ledger(g_.ledger);
  request.set_from_height(a_.from_height);
  grpc::ClientContext context;
  Prepare(&context, /*deadline=*/false);

  // SIGINT/SIGTERM write to a pipe; a thread reading it cancels the stream.
  int fds[2];
  if (pipe(fds) != 0) return LocalError(std::string("pipe: ") + std::strerror(errno));
  g_interrupt_fd = fds[1];
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  std::atomic<bool> interrupted{false};
  std::thread canceller([&] {
    char byte = 0;
    while (read(fds[0], &byte, 1) < 0 && errno == EINTR) {
    }
    if (byte == 1) {
      interrupted = true;
      context.TryCancel();
    }
  });

  std::unique_ptr<grpc::ClientReader<v1::JournalBlock>> reader = digests_->WatchJournal(&context, request);
  std::uint64_t seen = 0;
  v1::JournalBlock block;
  while ((a_.count == 0 || seen < a_.count) && reader->Read(&block)) {
    if (g_.json) {
      PrintJson({{"height", block.height()},
                 {"hash", Hex(block.hash())},
                 {"txs", block.transactions_size()},
                 {"header", Hex(block.header())}});
    } else {
      std::cout << block.height() << " " << Hex(block.hash()) << " txs=" << block.transactions_size() << "\n";
    }
    std::cout.flush();
    ++seen;
  }
  const bool done = a_.count != 0 && seen >= a_.count;
  if (done) context.TryCancel();
  const grpc::Status status = reader->Finish();

  const char stop = 2;
  [[maybe_unused]] const ssize_t n = write(fds[1], &stop, 1);
  canceller.join();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  g_interrupt_fd = -1;
  close(fds[0]);
  close(fds[1]);
  if (done || interrupted.load()) return kExitOk;
  return status.ok() ? kExitOk : ServerError(status);
}

}  // namespace

int main(int argc, char** argv) {
  // gRPC's own log lines would repeat, less clearly, the one error line this
  // tool prints; GRPC_VERBOSITY set by the user still wins.
  setenv("GRPC_VERBOSITY", "NONE", /*overwrite=*/0);
  try {
    Cli cli;
    return cli.Run(argc, argv);
  } catch (const std::exception& e) {  // none expected; never let one escape
    return LocalError(std::string("internal error: ") + e.what());
  }
}
