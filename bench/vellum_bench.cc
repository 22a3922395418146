// vellum-bench: end-to-end load generator for vellumd over gRPC on loopback,
// beside a PostgreSQL peer keeping a trigger-maintained SHA-256 hash chain
// (docs/BENCHMARKS.md, section 7). bench/run_vellum_bench.sh starts both
// servers and runs this program.
//
// Transaction shapes (--shapes), each at every --clients count, on each system:
//
//  * put: one committed transaction writing one key (random --key-bytes key,
//    --value-bytes value). Vellum: TransactionService.Execute with a single
//    Operation{kv_put}, answered with the durable receipt. PostgreSQL: one
//    autocommit INSERT into the chained table, RETURNING (seq, hash).
//  * proven-get: read of a key written by an earlier put point. Vellum:
//    QueryService.KvGet with the proof bundle (omit_proof false); the answer
//    must be found and carry a non-empty bundle. PostgreSQL: SELECT of the row
//    with its chain hash, which is not a proof of anything to the client.
//  * plain-get (diagnostic, not in the default --shapes): the same KvGet with
//    omit_proof true, the answer without its bundle. PostgreSQL runs the same
//    SELECT as for proven-get.
//  * noop (diagnostic, the transport floor): the cheapest call each system
//    has with the same client shape. Vellum: LedgerService.DescribeLedger
//    (authorization, ledger lookup, a few counters). PostgreSQL: a prepared
//    SELECT 1.
//
// Every client is one thread issuing blocking calls back to back (gRPC's sync
// API; libpq, by default one connection per thread). Each point runs --warmup
// seconds unmeasured, then --seconds measured; a call counts when it
// completes inside the measured window, and its latency (call to answer) goes
// into the point's latency sample. Points are interleaved (for each shape and
// client count: Vellum, then PostgreSQL) so that slow drift of a shared
// machine hits both systems alike.
//
// gRPC connections: --clients-per-channel N (default 16) puts N client threads
// on one channel, each channel with its own TCP connection (a local
// subchannel pool and a distinct channel argument, so gRPC does not share one
// connection between equal channels). On the 2-core machine of
// docs/BENCHMARKS.md, 16 per channel beat one channel per client (256 HTTP/2
// connections: 5.8k vs 6.9k puts/s at 256 clients) and one channel for all.
// PostgreSQL has one connection per client, or with --pg-connections K a
// client-side pool: client i uses connection i % K, one call at a time (what
// a pooler such as PgBouncer in transaction mode would do).
//
// Run: vellum-bench --vellum 127.0.0.1:PORT --pg "host=127.0.0.1 port=P ..."
//                   [--clients 1,16,64,256] [--seconds 8] [--warmup 2] [--json FILE]
#include <grpcpp/grpcpp.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "memory_use.h"
#include "vellum/v1/vellum.grpc.pb.h"

namespace {

namespace v1 = vellum::v1;
using Clock = std::chrono::steady_clock;

struct Config {
  std::string vellum_target;  // empty: skip Vellum
  std::string pg_conninfo;    // empty: skip PostgreSQL
  std::vector<int> clients{1, 16, 64, 256};
  std::vector<std::string> shapes{"put", "get"};
  double seconds = 8;
  double warmup = 2;
  int clients_per_channel = 16;
  std::string ledger;  // default: bench-<unix time>
  std::string ns = "bench";
  std::string token;
  size_t key_bytes = 16;
  size_t value_bytes = 100;
  size_t max_keys = 400000;  // keys kept per system for the gets
  bool pg_keep_schema = false;
  std::string pg_chain_lock = "advisory";
  int pg_connections = 0;  // 0: one connection per client
  std::string json_path;
};

enum class Shape : std::uint8_t { kPut, kGet, kPlainGet, kNoop };

const char* ShapeName(Shape shape) {
  switch (shape) {
    case Shape::kPut:
      return "put";
    case Shape::kGet:
      return "proven-get";
    case Shape::kPlainGet:
      return "plain-get";
    case Shape::kNoop:
      return "noop";
  }
  return "?";
}

// The outcome of one call. `error` is filled only on failure.
struct CallOutcome {
  bool ok = true;
  size_t proof_bytes = 0;
  std::string error;
};

CallOutcome Fail(std::string error) { return CallOutcome{false, 0, std::move(error)}; }

// One client's connection to a system, used by one thread.
class Session {
 public:
  virtual ~Session() = default;
  // Commits one transaction writing `value` at `key`; returns once the
  // system reports it committed (durably, with the servers' settings).
  virtual CallOutcome Put(const std::string& key, const std::string& value) = 0;
  // Reads `key`, which must exist, with whatever evidence the system returns
  // (none when `proof` is false).
  virtual CallOutcome Get(const std::string& key, bool proof) = 0;
  // The cheapest round trip the system offers (the transport floor).
  virtual CallOutcome Noop() = 0;
};

// A system under test. Connect and EndPoint are called from the main thread.
class System {
 public:
  virtual ~System() = default;
  virtual const char* Name() const = 0;
  // Opens client `index`'s session; nullptr and `error` on failure.
  virtual std::unique_ptr<Session> Connect(int index, std::string* error) = 0;
  // Called once a point's sessions are all closed.
  virtual void EndPoint() {}
  struct BlockCount {
    bool known = false;
    std::uint64_t blocks = 0;
    std::uint64_t transactions = 0;
  };
  // Blocks and transactions committed so far, if the system counts blocks.
  virtual BlockCount Blocks() { return {}; }
};

// ---- Vellum over gRPC -------------------------------------------------------

constexpr auto kCallTimeout = std::chrono::seconds(60);

// Deadline and, with --token, the bearer token of every call.
void PrepareContext(grpc::ClientContext& ctx, const std::string& token) {
  ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
}

std::string GrpcError(const char* method, const grpc::Status& status) {
  return std::string(method) + ": gRPC code " +
         std::to_string(static_cast<int>(status.error_code())) + ": " + status.error_message();
}

class VellumSession final : public Session {
 public:
  VellumSession(const std::shared_ptr<grpc::Channel>& channel, const Config& config)
      : tx_(v1::TransactionService::NewStub(channel)),
        query_(v1::QueryService::NewStub(channel)),
        ledgers_(v1::LedgerService::NewStub(channel)),
        token_(config.token) {
    describe_.set_ledger(config.ledger);
    put_.set_ledger(config.ledger);
    put_.add_operations()->mutable_kv_put()->set_namespace_(config.ns);
    get_.set_ledger(config.ledger);
    get_.set_namespace_(config.ns);
    get_.mutable_options()->set_omit_proof(false);
  }

  CallOutcome Put(const std::string& key, const std::string& value) override {
    v1::KvPut* kv = put_.mutable_operations(0)->mutable_kv_put();
    kv->set_key(key);
    kv->set_value(value);
    grpc::ClientContext ctx;
    PrepareContext(ctx, token_);
    v1::Receipt receipt;
    const grpc::Status status = tx_->Execute(&ctx, put_, &receipt);
    if (!status.ok()) return Fail(GrpcError("Execute", status));
    if (receipt.tx_hash().empty()) return Fail("Execute: receipt without tx_hash");
    return {};
  }

  CallOutcome Get(const std::string& key, bool proof) override {
    get_.set_key(key);
    get_.mutable_options()->set_omit_proof(!proof);
    grpc::ClientContext ctx;
    PrepareContext(ctx, token_);
    v1::KvGetResponse response;
    const grpc::Status status = query_->KvGet(&ctx, get_, &response);
    if (!status.ok()) return Fail(GrpcError("KvGet", status));
    if (!response.found()) return Fail("KvGet: key written earlier not found");
    if (proof && response.header().bundle().empty())
      return Fail("KvGet: answer without a proof bundle");
    return CallOutcome{true, response.header().bundle().size(), {}};
  }

  CallOutcome Noop() override {
    grpc::ClientContext ctx;
    PrepareContext(ctx, token_);
    v1::LedgerInfo info;
    const grpc::Status status = ledgers_->DescribeLedger(&ctx, describe_, &info);
    if (!status.ok()) return Fail(GrpcError("DescribeLedger", status));
    return {};
  }

 private:
  std::unique_ptr<v1::TransactionService::Stub> tx_;
  std::unique_ptr<v1::QueryService::Stub> query_;
  std::unique_ptr<v1::LedgerService::Stub> ledgers_;
  const std::string token_;
  v1::ExecuteRequest put_;
  v1::KvGetRequest get_;
  v1::DescribeLedgerRequest describe_;
};

class VellumSystem final : public System {
 public:
  explicit VellumSystem(const Config& config) : config_(config) {}

  const char* Name() const override { return "Vellum"; }

  // Creates the ledger; ALREADY_EXISTS is fine (the ledger is reused).
  bool Init(std::string* error) {
    auto channel = NewChannel(0);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      *error = "cannot connect to vellumd at " + config_.vellum_target;
      return false;
    }
    auto stub = v1::LedgerService::NewStub(channel);
    grpc::ClientContext ctx;
    PrepareContext(ctx, config_.token);
    v1::CreateLedgerRequest request;
    request.set_name(config_.ledger);
    v1::LedgerInfo info;
    const grpc::Status status = stub->CreateLedger(&ctx, request, &info);
    if (!status.ok() && status.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
      *error = GrpcError("CreateLedger", status);
      return false;
    }
    return true;
  }

  std::unique_ptr<Session> Connect(int index, std::string* error) override {
    const size_t c = static_cast<size_t>(index / config_.clients_per_channel);
    while (channels_.size() <= c) {
      channels_.push_back(NewChannel(static_cast<int>(channels_.size())));
      if (!channels_.back()->WaitForConnected(std::chrono::system_clock::now() +
                                              std::chrono::seconds(10))) {
        *error = "cannot connect to vellumd at " + config_.vellum_target;
        return nullptr;
      }
    }
    return std::make_unique<VellumSession>(channels_[c], config_);
  }

  // Fresh connections for every point.
  void EndPoint() override { channels_.clear(); }

  BlockCount Blocks() override {
    if (control_ == nullptr) control_ = NewChannel(-1);
    auto stub = v1::LedgerService::NewStub(control_);
    grpc::ClientContext ctx;
    PrepareContext(ctx, config_.token);
    v1::DescribeLedgerRequest request;
    request.set_ledger(config_.ledger);
    v1::LedgerInfo info;
    if (!stub->DescribeLedger(&ctx, request, &info).ok()) return {};
    return BlockCount{true, info.blocks(), info.transactions()};
  }

 private:
  std::shared_ptr<grpc::Channel> NewChannel(int id) const {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("vellum.bench.channel_id", id);  // unequal channels never share a connection
    args.SetMaxReceiveMessageSize(64 << 20);
    return grpc::CreateCustomChannel(config_.vellum_target, grpc::InsecureChannelCredentials(),
                                     args);
  }

  const Config& config_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::shared_ptr<grpc::Channel> control_;  // for DescribeLedger, apart from the clients'
};

// ---- PostgreSQL with a hash chain -------------------------------------------

// The peer's schema. Every row's hash covers the previous row's hash and the
// row itself. The chain head is a single row that the BEFORE INSERT trigger
// updates; the trigger gives each row its place in the chain as `seq`
// (gapless, in chain order; the bigserial default is overwritten).
//
// The chain must be serialized: a row's hash needs the previous row's, and
// the previous row's transaction must have committed (or a rollback would
// break the chain). The trigger takes a transaction-scoped lock that is held
// until its transaction has committed, WAL flush included, so chained inserts
// commit one at a time. Two ways to take it (--pg-chain-lock):
//   advisory: pg_advisory_xact_lock first, then the head update never waits
//             (the default; the faster of the two here);
//   row:      the UPDATE of the head row waits on the row lock itself
//             (re-checking the updated row under READ COMMITTED).
constexpr const char* kPgSchemaHead = R"sql(
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
DROP TABLE IF EXISTS ledger;
DROP TABLE IF EXISTS chain_head;
CREATE TABLE chain_head (
  id int PRIMARY KEY CHECK (id = 1),
  seq bigint NOT NULL,
  prev_hash bytea NOT NULL,
  hash bytea NOT NULL);
INSERT INTO chain_head VALUES (1, 0, ''::bytea, decode(repeat('00', 32), 'hex'));
CREATE TABLE ledger (
  seq bigserial PRIMARY KEY,
  ns text NOT NULL,
  key bytea NOT NULL,
  value bytea NOT NULL,
  prev_hash bytea NOT NULL,
  hash bytea NOT NULL);
CREATE INDEX ledger_ns_key ON ledger (ns, key, seq);
CREATE OR REPLACE FUNCTION ledger_chain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
)sql";
constexpr const char* kPgAdvisoryLock = "  PERFORM pg_advisory_xact_lock(7431);\n";
constexpr const char* kPgSchemaTail = R"sql(
  -- hash = SHA-256(prev_hash || seq || len ns || ns || len key || key || len value || value)
  UPDATE chain_head
     SET seq = seq + 1,
         prev_hash = hash,
         hash = digest(hash || int8send(seq + 1)
                       || int4send(octet_length(NEW.ns)) || convert_to(NEW.ns, 'UTF8')
                       || int4send(length(NEW.key)) || NEW.key
                       || int4send(length(NEW.value)) || NEW.value, 'sha256')
   WHERE id = 1
  RETURNING seq, prev_hash, hash INTO NEW.seq, NEW.prev_hash, NEW.hash;
  RETURN NEW;
END $$;
CREATE TRIGGER ledger_chain BEFORE INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_chain();
)sql";

constexpr const char* kPgPut =
    "INSERT INTO ledger (ns, key, value) VALUES ($1, $2, $3) RETURNING seq, hash";
constexpr const char* kPgGet =
    "SELECT value, seq, hash FROM ledger WHERE ns = $1 AND key = $2 ORDER BY seq DESC LIMIT 1";

struct PgConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgConn = std::unique_ptr<PGconn, PgConnCloser>;
using PgResult = std::unique_ptr<PGresult, PgResultClearer>;

std::string PgError(const char* what, const PGconn* conn) {
  std::string message = PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return std::string(what) + ": " + message;
}

// Connects; nullptr and `error` on failure.
PgConn PgConnect(const std::string& conninfo, std::string* error) {
  PgConn conn(PQconnectdb(conninfo.c_str()));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    *error = PgError("connect", conn.get());
    return nullptr;
  }
  return conn;
}

// A mutex that hands itself to its waiters in arrival order, as a pooler's
// queue does (std::mutex lets the releasing thread take it straight back,
// which starves the other clients of a pooled connection).
class FifoMutex {
 public:
  void lock() {
    std::unique_lock lock(mu_);
    if (!held_) {
      held_ = true;
      return;
    }
    std::condition_variable turn;
    waiters_.push_back(&turn);
    turn.wait(lock, [&] { return granted_ == &turn; });
    granted_ = nullptr;
  }
  void unlock() {
    std::lock_guard lock(mu_);
    if (waiters_.empty()) {
      held_ = false;
      return;
    }
    granted_ = waiters_.front();  // stays held: ownership passes to the first waiter
    waiters_.pop_front();
    granted_->notify_one();
  }

 private:
  std::mutex mu_;
  bool held_ = false;
  std::deque<std::condition_variable*> waiters_;
  std::condition_variable* granted_ = nullptr;
};

// A connection with its prepared statements, shared by the sessions of a
// client-side pool (--pg-connections) or owned by one session.
struct PgPooledConn {
  FifoMutex mu;  // held for the whole call: one statement at a time
  PgConn conn;
};

class PgSession final : public Session {
 public:
  PgSession(std::shared_ptr<PgPooledConn> pooled, const std::string& ns)
      : pooled_(std::move(pooled)), conn_(pooled_->conn.get()), ns_(ns) {}

  CallOutcome Put(const std::string& key, const std::string& value) override {
    std::lock_guard lock(pooled_->mu);
    const char* values[3] = {ns_.c_str(), key.data(), value.data()};
    const int lengths[3] = {0, static_cast<int>(key.size()), static_cast<int>(value.size())};
    const int formats[3] = {0, 1, 1};
    PgResult result(PQexecPrepared(conn_, "put", 3, values, lengths, formats, /*resultFormat=*/1));
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) return Fail(PgError("insert", conn_));
    if (PQntuples(result.get()) != 1 || PQgetlength(result.get(), 0, 1) != 32)
      return Fail("insert: no chain hash");
    return {};
  }

  CallOutcome Get(const std::string& key, bool) override {
    std::lock_guard lock(pooled_->mu);
    const char* values[2] = {ns_.c_str(), key.data()};
    const int lengths[2] = {0, static_cast<int>(key.size())};
    const int formats[2] = {0, 1};
    PgResult result(PQexecPrepared(conn_, "get", 2, values, lengths, formats, /*resultFormat=*/1));
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) return Fail(PgError("select", conn_));
    if (PQntuples(result.get()) != 1) return Fail("select: key written earlier not found");
    return {};  // the row's hash is no proof: proof_bytes stays 0
  }

  CallOutcome Noop() override {
    std::lock_guard lock(pooled_->mu);
    PgResult result(PQexecPrepared(conn_, "noop", 0, nullptr, nullptr, nullptr, /*resultFormat=*/1));
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) return Fail(PgError("select 1", conn_));
    return {};
  }

 private:
  const std::shared_ptr<PgPooledConn> pooled_;
  PGconn* const conn_;  // pooled_->conn
  const std::string ns_;
};

class PgSystem final : public System {
 public:
  explicit PgSystem(const Config& config) : config_(config) {}

  const char* Name() const override { return "PostgreSQL"; }

  // Creates the schema (unless --pg-keep-schema) and reads the settings that
  // matter for durability and concurrency into `settings`.
  bool Init(std::string* settings, std::string* error) {
    PgConn conn = PgConnect(config_.pg_conninfo, error);
    if (conn == nullptr) return false;
    if (!config_.pg_keep_schema) {
      const std::string schema = std::string(kPgSchemaHead) +
                                 (config_.pg_chain_lock == "advisory" ? kPgAdvisoryLock : "") +
                                 kPgSchemaTail;
      PgResult result(PQexec(conn.get(), schema.c_str()));
      if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
        *error = PgError("create schema", conn.get());
        return false;
      }
    }
    PgResult result(
        PQexec(conn.get(),
               "SELECT name || '=' || current_setting(name) FROM pg_settings WHERE name IN "
               "('server_version', 'fsync', 'synchronous_commit', 'wal_sync_method', "
               "'full_page_writes', 'commit_delay', 'max_connections', 'shared_buffers', "
               "'max_wal_size', 'wal_level') ORDER BY name"));
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
      *error = PgError("read settings", conn.get());
      return false;
    }
    for (int i = 0; i < PQntuples(result.get()); ++i) {
      if (i > 0) *settings += ", ";
      *settings += PQgetvalue(result.get(), i, 0);
    }
    return true;
  }

  // One connection per client, or with --pg-connections K, client i shares
  // connection i % K with the other clients of that slot.
  std::unique_ptr<Session> Connect(int index, std::string* error) override {
    if (config_.pg_connections == 0) {
      auto pooled = NewConn(error);
      if (pooled == nullptr) return nullptr;
      return std::make_unique<PgSession>(std::move(pooled), config_.ns);
    }
    const size_t slot = static_cast<size_t>(index % config_.pg_connections);
    if (pool_.size() <= slot) pool_.resize(slot + 1);
    if (pool_[slot] == nullptr && (pool_[slot] = NewConn(error)) == nullptr) return nullptr;
    return std::make_unique<PgSession>(pool_[slot], config_.ns);
  }

  void EndPoint() override { pool_.clear(); }

 private:
  // Connects and prepares both statements; nullptr and `error` on failure.
  std::shared_ptr<PgPooledConn> NewConn(std::string* error) const {
    auto pooled = std::make_shared<PgPooledConn>();
    pooled->conn = PgConnect(config_.pg_conninfo, error);
    if (pooled->conn == nullptr) return nullptr;
    for (const auto& [name, sql] : {std::pair{"put", kPgPut}, std::pair{"get", kPgGet}, std::pair{"noop", "SELECT 1"}}) {
      PgResult prepared(PQprepare(pooled->conn.get(), name, sql, 0, nullptr));
      if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
        *error = PgError("prepare", pooled->conn.get());
        return nullptr;
      }
    }
    return pooled;
  }

  const Config& config_;
  std::vector<std::shared_ptr<PgPooledConn>> pool_;
};

// ---- Driver -----------------------------------------------------------------

struct Point {
  std::string system;
  Shape shape = Shape::kPut;
  int clients = 0;
  double seconds = 0;
  std::uint64_t ops = 0;
  std::uint64_t errors = 0;
  std::string first_error;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
  double proof_bytes = 0;   // mean size of the proof returned per get
  double client_cpu = 0;    // cores used by this process
  double machine_cpu = 0;   // cores busy on the whole machine (/proc/stat)
  double tx_per_block = 0;  // Vellum puts: transactions per block in the window

  double rate() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
};

// Busy jiffies of the whole machine (all CPUs), excluding idle and iowait.
std::uint64_t MachineBusyTicks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return user + nice + system + irq + softirq + steal;
}

double Percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i =
      std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[i]) / 1e6;
}

void FillRandom(std::string& bytes, std::mt19937_64& rng) {
  for (size_t i = 0; i < bytes.size(); i += 8) {
    const std::uint64_t r = rng();
    std::memcpy(bytes.data() + i, &r, std::min<size_t>(8, bytes.size() - i));
  }
}

// Runs one point: `clients` threads, each with its own session, calling
// `shape` back to back. Put points add the keys they wrote to `keys` (up to
// config.max_keys); get points read random members of `keys`.
Point RunPoint(System& system, Shape shape, int clients, const Config& config,
               std::vector<std::string>& keys) {
  Point point;
  point.system = system.Name();
  point.shape = shape;
  point.clients = clients;

  std::vector<std::unique_ptr<Session>> sessions;
  for (int i = 0; i < clients; ++i) {
    std::string error;
    sessions.push_back(system.Connect(i, &error));
    if (sessions.back() == nullptr) {
      std::fprintf(stderr, "%s: client %d: %s\n", system.Name(), i, error.c_str());
      std::exit(1);
    }
  }

  enum Phase : int { kWarmup, kMeasure, kStop };
  std::atomic<int> phase{kWarmup};
  struct PerThread {
    std::vector<std::int64_t> latencies;
    std::vector<std::string> written;
    std::uint64_t errors = 0;
    std::uint64_t proof_bytes = 0;
    std::string first_error;
  };
  std::vector<PerThread> per_thread(static_cast<size_t>(clients));
  const size_t room = keys.size() < config.max_keys ? config.max_keys - keys.size() : 0;
  const size_t keep_per_thread = room / static_cast<size_t>(clients);
  const std::uint64_t seed = std::random_device{}();

  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(clients));
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      PerThread& mine = per_thread[static_cast<size_t>(t)];
      mine.latencies.reserve(1 << 15);
      Session& session = *sessions[static_cast<size_t>(t)];
      std::mt19937_64 rng(seed + static_cast<std::uint64_t>(t) * 0x9E3779B97F4A7C15ull);
      std::string key(config.key_bytes, '\0');
      std::string value(config.value_bytes, '\0');
      FillRandom(value, rng);
      while (phase.load(std::memory_order_relaxed) != kStop) {
        if (shape == Shape::kPut) {
          FillRandom(key, rng);
          FillRandom(value, rng);
        } else if (shape != Shape::kNoop) {
          key = keys[rng() % keys.size()];
        }
        const auto t0 = Clock::now();
        CallOutcome outcome = shape == Shape::kPut    ? session.Put(key, value)
                              : shape == Shape::kNoop ? session.Noop()
                                                      : session.Get(key, shape == Shape::kGet);
        const auto t1 = Clock::now();
        if (outcome.ok && shape == Shape::kPut && mine.written.size() < keep_per_thread)
          mine.written.push_back(key);
        if (phase.load(std::memory_order_acquire) != kMeasure) continue;
        if (!outcome.ok) {
          if (mine.errors++ == 0) mine.first_error = std::move(outcome.error);
          std::this_thread::sleep_for(
              std::chrono::milliseconds(1));  // do not spin on a dead server
          continue;
        }
        mine.latencies.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
        mine.proof_bytes += outcome.proof_bytes;
      }
    });
  }

  auto sleep_s = [](double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); };
  sleep_s(config.warmup);
  const System::BlockCount blocks0 = shape == Shape::kPut ? system.Blocks() : System::BlockCount{};
  const double cpu0 = vellum::CpuSeconds();
  const std::uint64_t busy0 = MachineBusyTicks();
  const auto start = Clock::now();
  phase.store(kMeasure, std::memory_order_release);
  sleep_s(config.seconds);
  phase.store(kStop, std::memory_order_release);
  const auto end = Clock::now();
  const double cpu1 = vellum::CpuSeconds();
  const std::uint64_t busy1 = MachineBusyTicks();
  const System::BlockCount blocks1 = shape == Shape::kPut ? system.Blocks() : System::BlockCount{};
  for (auto& thread : threads) thread.join();
  sessions.clear();
  system.EndPoint();

  point.seconds = std::chrono::duration<double>(end - start).count();
  if (blocks0.known && blocks1.known && blocks1.blocks > blocks0.blocks) {
    point.tx_per_block = static_cast<double>(blocks1.transactions - blocks0.transactions) /
                         static_cast<double>(blocks1.blocks - blocks0.blocks);
  }
  point.client_cpu = (cpu1 - cpu0) / point.seconds;
  point.machine_cpu = static_cast<double>(busy1 - busy0) /
                      static_cast<double>(sysconf(_SC_CLK_TCK)) / point.seconds;
  std::vector<std::int64_t> all;
  std::uint64_t proof_bytes = 0;
  double sum_ns = 0;
  for (PerThread& mine : per_thread) {
    all.insert(all.end(), mine.latencies.begin(), mine.latencies.end());
    point.errors += mine.errors;
    proof_bytes += mine.proof_bytes;
    if (point.first_error.empty()) point.first_error = mine.first_error;
    for (std::string& key : mine.written) keys.push_back(std::move(key));
  }
  std::sort(all.begin(), all.end());
  for (const std::int64_t ns : all) sum_ns += static_cast<double>(ns);
  point.ops = all.size();
  point.p50_ms = Percentile(all, 0.50);
  point.p90_ms = Percentile(all, 0.90);
  point.p99_ms = Percentile(all, 0.99);
  point.max_ms = all.empty() ? 0 : static_cast<double>(all.back()) / 1e6;
  point.mean_ms = all.empty() ? 0 : sum_ns / static_cast<double>(all.size()) / 1e6;
  point.proof_bytes =
      all.empty() ? 0 : static_cast<double>(proof_bytes) / static_cast<double>(all.size());
  return point;
}

void PrintHeader() {
  std::printf("%-10s %-10s %7s %10s %8s %8s %8s %8s %7s %6s %6s %6s %7s\n", "system", "shape",
              "clients", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "proof B", "tx/blk",
              "cli", "cpu", "errors");
}

void PrintPoint(const Point& p) {
  std::printf(
      "%-10s %-10s %7d %10.0f %8.3f %8.3f %8.3f %8.2f %7.0f %6.1f %6.2f %6.2f %7" PRIu64 "\n",
      p.system.c_str(), ShapeName(p.shape), p.clients, p.rate(), p.p50_ms, p.p90_ms, p.p99_ms,
      p.max_ms, p.proof_bytes, p.tx_per_block, p.client_cpu, p.machine_cpu, p.errors);
  if (!p.first_error.empty()) std::printf("    first error: %s\n", p.first_error.c_str());
  std::fflush(stdout);
}

const Point* Find(const std::vector<Point>& points, const std::string& system, Shape shape,
                  int clients) {
  for (const Point& p : points) {
    if (p.system == system && p.shape == shape && p.clients == clients) return &p;
  }
  return nullptr;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void WriteJson(const std::string& path, const Config& config, const std::string& pg_settings,
               const std::vector<Point>& points) {
  std::ostringstream out;
  out << "{\n  \"seconds\": " << config.seconds << ", \"warmup\": " << config.warmup
      << ", \"clients_per_channel\": " << config.clients_per_channel
      << ", \"key_bytes\": " << config.key_bytes << ", \"value_bytes\": " << config.value_bytes
      << ", \"pg_chain_lock\": " << JsonString(config.pg_chain_lock)
      << ", \"pg_connections\": " << config.pg_connections
      << ",\n  \"postgresql_settings\": " << JsonString(pg_settings) << ",\n  \"points\": [\n";
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    out << "    {\"system\": " << JsonString(p.system)
        << ", \"shape\": " << JsonString(ShapeName(p.shape)) << ", \"clients\": " << p.clients
        << ", \"seconds\": " << p.seconds << ", \"ops\": " << p.ops
        << ", \"ops_per_s\": " << p.rate() << ", \"p50_ms\": " << p.p50_ms
        << ", \"p90_ms\": " << p.p90_ms << ", \"p99_ms\": " << p.p99_ms
        << ", \"max_ms\": " << p.max_ms << ", \"mean_ms\": " << p.mean_ms
        << ", \"proof_bytes\": " << p.proof_bytes << ", \"client_cpu\": " << p.client_cpu
        << ", \"machine_cpu\": " << p.machine_cpu << ", \"tx_per_block\": " << p.tx_per_block
        << ", \"errors\": " << p.errors << ", \"first_error\": " << JsonString(p.first_error) << "}"
        << (i + 1 < points.size() ? "," : "") << "\n";
  }
  out << "  ]\n}\n";
  std::ofstream file(path);
  file << out.str();
  if (!file) std::fprintf(stderr, "cannot write %s\n", path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  CLI::App app{
      "vellum-bench: vellumd over gRPC vs a PostgreSQL hash chain, committed puts and proven gets"};
  app.add_option("--vellum", config.vellum_target,
                 "vellumd address, e.g. 127.0.0.1:7400 (empty: skip Vellum)");
  app.add_option("--pg", config.pg_conninfo,
                 "libpq conninfo of the PostgreSQL peer (empty: skip PostgreSQL)");
  app.add_option("--clients", config.clients, "concurrent client counts, e.g. 1,16,64,256")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--shapes", config.shapes,
                 "any of put, get (proven), plain-get (Vellum: omit_proof), noop (transport floor)")
      ->delimiter(',')
      ->check(CLI::IsMember({"put", "get", "plain-get", "noop"}))
      ->capture_default_str();
  app.add_option("--seconds", config.seconds, "measured seconds per point")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", config.warmup, "unmeasured seconds before each point")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--clients-per-channel", config.clients_per_channel,
                 "client threads sharing one gRPC channel (one TCP connection)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--ledger", config.ledger,
                 "Vellum ledger to create or reuse (default bench-<unix time>)");
  app.add_option("--namespace", config.ns, "key namespace on both systems")->capture_default_str();
  app.add_option("--token", config.token, "bearer token for vellumd (if it has auth on)");
  app.add_option("--key-bytes", config.key_bytes, "random key size")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--value-bytes", config.value_bytes, "random value size")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-keys", config.max_keys, "written keys kept per system for the gets")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app.add_flag("--pg-keep-schema", config.pg_keep_schema,
               "use the existing PostgreSQL tables instead of recreating them");
  app.add_option("--pg-chain-lock", config.pg_chain_lock,
                 "how the trigger serializes the chain: advisory or row")
      ->check(CLI::IsMember({"advisory", "row"}))
      ->capture_default_str();
  app.add_option(
         "--pg-connections", config.pg_connections,
         "PostgreSQL connections shared by the clients, a client-side pool (0: one per client)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  app.add_option("--json", config.json_path, "also write every point to this JSON file");
  CLI11_PARSE(app, argc, argv);
  if (config.vellum_target.empty() && config.pg_conninfo.empty()) {
    std::fprintf(stderr, "nothing to run: give --vellum and/or --pg\n");
    return 2;
  }
  if (config.ledger.empty()) {
    config.ledger =
        "bench-" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
  }

  std::vector<std::unique_ptr<System>> systems;
  std::string pg_settings;
  std::string error;
  if (!config.vellum_target.empty()) {
    auto vellum = std::make_unique<VellumSystem>(config);
    if (!vellum->Init(&error)) {
      std::fprintf(stderr, "Vellum: %s\n", error.c_str());
      return 1;
    }
    std::printf("Vellum: vellumd at %s, ledger %s, %d client(s) per gRPC channel\n",
                config.vellum_target.c_str(), config.ledger.c_str(), config.clients_per_channel);
    systems.push_back(std::move(vellum));
  }
  if (!config.pg_conninfo.empty()) {
    auto pg = std::make_unique<PgSystem>(config);
    if (!pg->Init(&pg_settings, &error)) {
      std::fprintf(stderr, "PostgreSQL: %s\n", error.c_str());
      return 1;
    }
    const std::string connections =
        config.pg_connections == 0
            ? std::string("one connection per client")
            : std::to_string(config.pg_connections) + " pooled connection(s)";
    std::printf("PostgreSQL: %s, chain serialized by a%s lock, %s\n  %s\n",
                config.pg_conninfo.c_str(),
                config.pg_chain_lock == "advisory" ? "n advisory" : " row", connections.c_str(),
                pg_settings.c_str());
    systems.push_back(std::move(pg));
  }
  std::printf(
      "%zu-byte random keys, %zu-byte values, %.1f s warm-up + %.1f s measured per point\n"
      "columns: proof B = mean proof bundle bytes per get, tx/blk = Vellum transactions per "
      "block,\n"
      "         cli = cores used by this client process, cpu = cores busy on the whole machine\n\n",
      config.key_bytes, config.value_bytes, config.warmup, config.seconds);

  std::vector<Shape> shapes;
  for (const auto& [name, shape] : {std::pair{"put", Shape::kPut}, std::pair{"get", Shape::kGet},
                                    std::pair{"plain-get", Shape::kPlainGet},
                                    std::pair{"noop", Shape::kNoop}}) {
    if (std::find(config.shapes.begin(), config.shapes.end(), name) != config.shapes.end())
      shapes.push_back(shape);
  }
  // Other jobs on the machine skew every figure: say how busy it was.
  auto idle_busy = [] {
    const std::uint64_t busy0 = MachineBusyTicks();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    return static_cast<double>(MachineBusyTicks() - busy0) /
           static_cast<double>(sysconf(_SC_CLK_TCK)) / 2;
  };
  std::printf("machine CPU busy before the run (2 s, nothing under test): %.2f cores\n\n",
              idle_busy());
  std::vector<std::vector<std::string>> keys(systems.size());
  std::vector<Point> points;
  PrintHeader();
  for (const Shape shape : shapes) {
    for (const int clients : config.clients) {
      for (size_t s = 0; s < systems.size(); ++s) {
        if ((shape == Shape::kGet || shape == Shape::kPlainGet) && keys[s].empty()) {
          // Gets read keys written before: write some first (not reported).
          Config preload = config;
          preload.warmup = 0;
          preload.seconds = 2;
          RunPoint(*systems[s], Shape::kPut, 16, preload, keys[s]);
        }
        points.push_back(RunPoint(*systems[s], shape, clients, config, keys[s]));
        PrintPoint(points.back());
      }
    }
  }

  // Summary: one table per system, then the ratio.
  for (const auto& system : systems) {
    std::printf("\n== %s ==\n", system->Name());
    PrintHeader();
    for (const Point& p : points) {
      if (p.system == system->Name()) PrintPoint(p);
    }
  }
  if (systems.size() == 2) {
    std::printf("\n== Vellum / PostgreSQL (ops/s ratio; > 1: Vellum ahead) ==\n");
    std::printf("%-10s %7s %12s %12s %7s %12s %12s\n", "shape", "clients", "Vellum/s", "PG/s",
                "ratio", "Vellum p99", "PG p99");
    for (const Shape shape : shapes) {
      for (const int clients : config.clients) {
        const Point* a = Find(points, "Vellum", shape, clients);
        const Point* b = Find(points, "PostgreSQL", shape, clients);
        if (a == nullptr || b == nullptr) continue;
        std::printf("%-10s %7d %12.0f %12.0f %7.2f %9.3f ms %9.3f ms\n", ShapeName(shape), clients,
                    a->rate(), b->rate(), b->rate() > 0 ? a->rate() / b->rate() : 0.0, a->p99_ms,
                    b->p99_ms);
      }
    }
  }
  if (!config.json_path.empty()) WriteJson(config.json_path, config, pg_settings, points);
  std::uint64_t errors = 0;
  for (const Point& p : points) errors += p.errors;
  return errors == 0 ? 0 : 3;
}
