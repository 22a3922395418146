#include "service.h"

#include <openssl/rand.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert.h"
#include "vellum/api/query.h"
#include "vellum/base/bytes.h"
#include "vellum/journal/format.h"
#include "vellum/merkle/hasher.h"
#include "vellum/v1/vellum.grpc.pb.h"
#include "vellum/verifier/verify.h"

namespace vellum::api::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string Bytes(const merkle::Hash& hash) { return std::string(merkle::HashView(hash)); }

// ---- Shared context ----------------------------------------------------------

// One interactive transaction: reads from a snapshot, recorded so Commit can
// assert they still hold.
struct Session {
  std::string ledger;
  std::string owner;  // the identity that began it
  LedgerDb* db = nullptr;
  StateAt snapshot;
  std::uint64_t snapshot_height = 0;
  std::map<std::pair<std::string, std::string>, std::optional<std::string>> reads;  // (ns, key) -> value
  std::map<std::pair<std::string, std::string>, std::optional<std::uint64_t>> doc_reads;  // (collection, id) -> version
  Clock::time_point last_used;
  bool committing = false;
};

}  // namespace

struct Services::Impl {
  LedgerRegistry* registry;
  ServiceOptions options;
  std::atomic<bool> shutting_down{false};
  std::atomic<size_t> watch_streams{0};
  std::mutex watch_mu;
  std::condition_variable watch_cv;

  std::mutex sessions_mu;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions;

  std::unique_ptr<grpc::Service> ledger_service, transaction_service, query_service, digest_service;

  Impl(LedgerRegistry* r, ServiceOptions o) : registry(r), options(std::move(o)) {}

  // The call's "authorization" metadata, if any.
  static std::optional<std::string_view> AuthorizationOf(grpc::ServerContextBase* ctx) {
    const auto& md = ctx->client_metadata();
    auto it = md.find("authorization");
    if (it == md.end()) return std::nullopt;
    return std::string_view(it->second.data(), it->second.size());
  }

  // Authorizes a call; refusals are logged with the peer and reason.
  Result<std::string> Authorize(grpc::ServerContextBase* ctx, const char* method, std::string_view ledger,
                                Role role) const {
    auto who = server::Authorize(options.auth, AuthorizationOf(ctx), ledger, role);
    if (!who.ok()) {
      options.logger->warn("refused method={} peer={} ledger='{}' code={} reason=\"{}\"", method, ctx->peer(), ledger,
                           StatusCodeName(who.status().code()), who.status().message());
    }
    return who;
  }

  // The ledger a call names, authorized for `role`.
  Result<LedgerDb*> LedgerFor(grpc::ServerContextBase* ctx, const char* method, const std::string& name, Role role,
                              std::string* who = nullptr) const {
    if (name.empty()) return InvalidArgument("the request names no ledger");
    VELLUM_ASSIGN_OR_RETURN(std::string identity, Authorize(ctx, method, name, role));
    if (who != nullptr) *who = std::move(identity);
    return registry->Get(name);
  }

  // Errors worth a line in the log (the caller's own mistakes are not).
  void LogOutcome(const char* method, const Status& status) const {
    if (status.ok()) return;
    switch (status.code()) {
      case StatusCode::kInternal:
      case StatusCode::kDataLoss:
      case StatusCode::kUnknown:
      case StatusCode::kUnavailable:
        options.logger->error("method={} code={} message=\"{}\"", method, StatusCodeName(status.code()), status.message());
        break;
      case StatusCode::kResourceExhausted:
        options.logger->warn("method={} code={} message=\"{}\"", method, StatusCodeName(status.code()), status.message());
        break;
      default:
        options.logger->debug("method={} code={} message=\"{}\"", method, StatusCodeName(status.code()), status.message());
    }
  }

  static bool Expired(const grpc::ServerContextBase* ctx) {
    return ctx->deadline() < std::chrono::system_clock::now();
  }

  grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, const char* method, const Status& status) const {
    LogOutcome(method, status);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpc(status));
    return reactor;
  }

  // A unary call on one ledger: authorize, then finish with `body(db)`.
  template <typename Body>
  grpc::ServerUnaryReactor* OnLedger(grpc::CallbackServerContext* ctx, const char* method, const std::string& ledger,
                                     Role role, Body body) {
    auto db = LedgerFor(ctx, method, ledger, role);
    if (!db.ok()) return Finish(ctx, method, db.status());
    return Finish(ctx, method, body(**db));
  }

  // ---- Transactions --------------------------------------------------------

  // The ids the receipt reports: one per document insert, in order, derived
  // exactly as the projection derives them.
  static void FillDocumentIds(const google::protobuf::RepeatedPtrField<v1::Operation>& ops,
                              const journal::Receipt& receipt, v1::Receipt* out) {
    std::uint32_t doc_index = 0;
    for (const auto& op : ops) {
      switch (op.op_case()) {
        case v1::Operation::kDocInsert:
          out->add_document_ids(
              op.doc_insert().id().empty()
                  ? engines::document::DerivedDocumentId(receipt.block_height, receipt.index_in_block, doc_index)
                  : op.doc_insert().id());
          ++doc_index;
          break;
        case v1::Operation::kDocReplace:
        case v1::Operation::kDocDelete:
        case v1::Operation::kDocCreateIndex:
        case v1::Operation::kDocSetValidator:
          ++doc_index;
          break;
        default:
          break;
      }
    }
  }

  // Fills `out` with the receipt of the earlier commit a retry replays.
  static void FillReplayed(const journal::Receipt& earlier, const google::protobuf::RepeatedPtrField<v1::Operation>& ops,
                           v1::Receipt* out) {
    ToReceipt(earlier, out);
    out->set_replayed(true);
    FillDocumentIds(ops, earlier, out);
  }

  // A transaction whose token was used before: the first commit's receipt if
  // it was the same transaction, else ALREADY_EXISTS.
  static Result<journal::Receipt> Replayed(LedgerDb& db, const journal::Transaction& tx) {
    auto use = db.FindToken(tx.client_token);
    if (!use.ok()) return use.status();
    if (use->tx != tx) {
      return AlreadyExists("idempotency token already used by a different transaction (tx " +
                           std::to_string(use->receipt.tx_seq) + " in block " +
                           std::to_string(use->receipt.block_height) + ")");
    }
    return use->receipt;
  }

  // Commits `tx` without blocking this thread and finishes the call from the
  // journal's acknowledgement.
  void Commit(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor, const char* method, LedgerDb* db,
              journal::Transaction tx, const google::protobuf::RepeatedPtrField<v1::Operation>* ops, v1::Receipt* out,
              std::function<void()> after = {}) {
    auto finish = [this, reactor, method, after](const Status& status) {
      if (after) after();
      LogOutcome(method, status);
      reactor->Finish(ToGrpc(status));
    };
    if (!tx.client_token.empty()) {
      auto earlier = Replayed(*db, tx);
      if (earlier.ok()) {
        FillReplayed(*earlier, *ops, out);
        return finish(Status::Ok());
      }
      if (earlier.status().code() != StatusCode::kNotFound) return finish(earlier.status());
    }
    if (Expired(ctx)) return finish(DeadlineExceeded("the call's deadline passed before the commit started"));
    // Only a transaction with a token can race another attempt; only then is
    // a copy kept for the race's look-up (one copy less per plain commit).
    std::shared_ptr<const journal::Transaction> shared_tx;
    if (!tx.client_token.empty()) shared_tx = std::make_shared<const journal::Transaction>(tx);
    db->ExecuteAsync(std::move(tx), [this, db, shared_tx, ops, out, finish](Result<journal::Receipt> receipt) {
      if (!receipt.ok() && receipt.status().code() == StatusCode::kAlreadyExists && shared_tx != nullptr) {
        // Two attempts with one token raced and the other one was accepted.
        // A refusal can be reported before the accepting block is durable
        // and visible, so look for it off this (acknowledgement) thread, for
        // a bounded time well inside the shutdown grace period.
        std::thread([db, shared_tx, ops, out, finish, refusal = receipt.status()] {
          const auto until = Clock::now() + std::chrono::seconds(2);
          for (;;) {
            auto earlier = Replayed(*db, *shared_tx);
            if (earlier.ok()) {
              FillReplayed(*earlier, *ops, out);
              return finish(Status::Ok());
            }
            if (earlier.status().code() != StatusCode::kNotFound) return finish(earlier.status());
            if (Clock::now() >= until) return finish(refusal);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
        }).detach();
        return;
      }
      if (!receipt.ok()) return finish(receipt.status());
      ToReceipt(*receipt, out);
      FillDocumentIds(*ops, *receipt, out);
      finish(Status::Ok());
    });
  }

  // Removes idle sessions; called with sessions_mu held.
  void ExpireSessionsLocked() {
    const auto now = Clock::now();
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (!it->second->committing && now - it->second->last_used > options.session_idle_timeout) {
        it = sessions.erase(it);
      } else {
        ++it;
      }
    }
  }

  Result<std::shared_ptr<Session>> FindSession(grpc::ServerContextBase* ctx, const char* method, const std::string& id,
                                               Role role) {
    std::shared_ptr<Session> session;
    {
      std::lock_guard lock(sessions_mu);
      ExpireSessionsLocked();
      auto it = sessions.find(id);
      if (it == sessions.end()) return NotFound("session '" + id + "' does not exist (committed, rolled back or expired)");
      session = it->second;
    }
    VELLUM_ASSIGN_OR_RETURN(std::string who, Authorize(ctx, method, session->ledger, role));
    if (who != session->owner) return PermissionDenied("session '" + id + "' belongs to another caller");
    return session;
  }

  // ---- Queries -------------------------------------------------------------

  template <typename Response, typename Fill>
  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* ctx, const char* method, const std::string& ledger,
                                  json query, const v1::QueryOptions& options_in, Response* response, Fill fill) {
    auto db = LedgerFor(ctx, method, ledger, Role::kRead);
    if (!db.ok()) return Finish(ctx, method, db.status());
    if (Expired(ctx)) return Finish(ctx, method, DeadlineExceeded("deadline passed before the query started"));
    QueryPoint point;
    if (options_in.has_at_height()) point.at_height = options_in.at_height();
    if (options_in.has_tree_size()) point.tree_size = options_in.tree_size();
    auto* header = response->mutable_header();
    if (options_in.omit_proof()) {
      // No proof asked for: none is built.
      auto answer = AnswerQueryWithoutProof(**db, query, point);
      if (!answer.ok()) return Finish(ctx, method, answer.status());
      Status filled = fill(answer->result);
      if (!filled.ok()) return Finish(ctx, method, filled);
      header->set_height(answer->height);
      header->set_tree_size(answer->tree_size);
      return Finish(ctx, method, Status::Ok());
    }
    auto bundle = AnswerQuery(**db, query, point);
    if (!bundle.ok()) return Finish(ctx, method, bundle.status());
    Status filled = fill(bundle->result);
    if (!filled.ok()) return Finish(ctx, method, filled);
    if constexpr (std::is_same_v<Response, v1::DocFindResponse>) {
      const auto it = bundle->query.find("index");
      if (it != bundle->query.end() && it->is_string()) response->set_index(it->template get<std::string>());
    }
    header->set_height(bundle->height);
    header->set_tree_size(bundle->tree_size);
    header->set_bundle(verifier::BundleToJson(*bundle));
    return Finish(ctx, method, Status::Ok());
  }
};

namespace {

using Impl = Services::Impl;

Result<std::string> FromBase64(const json& v) { return Base64Decode(v.get<std::string>()); }

Status FillDocument(const json& item, v1::Document* out) {
  if (item.contains("id")) out->set_id(item["id"].get<std::string>());
  out->set_version(item.at("version").get<std::uint64_t>());
  out->set_height(item.at("height").get<std::uint64_t>());
  if (item.contains("document") && !item["document"].is_null()) out->set_json(item["document"].dump());
  if (item.contains("deleted")) out->set_deleted(item["deleted"].get<bool>());
  out->set_index_in_block(item.at("index_in_block").get<std::uint32_t>());
  out->set_time_us(item.at("time_us").get<std::int64_t>());
  return Status::Ok();
}

Status FillMembers(const json& result, v1::ZsetMembersResponse* out) {
  for (const auto& m : result.at("members")) {
    auto* member = out->add_members();
    VELLUM_ASSIGN_OR_RETURN(std::string name, FromBase64(m.at("member")));
    member->set_member(std::move(name));
    member->set_score(m.at("score").get<std::int64_t>());
  }
  return Status::Ok();
}

std::uint64_t Page(std::uint64_t limit) { return limit == 0 ? kMaxQueryPage : limit; }

// ---- LedgerService -------------------------------------------------------------

Status Describe(LedgerDb& db, const std::string& name, bool with_views, v1::LedgerInfo* out) {
  out->set_name(name);
  out->set_vkey(db.journal().vkey());
  const auto stats = db.journal().stats();
  out->set_blocks(stats.blocks);
  out->set_transactions(stats.transactions);
  out->set_root(Bytes(db.journal().root()));
  auto state = db.views().Current();
  out->set_state_root(Bytes(state->state_root()));
  if (!with_views) return Status::Ok();
  for (const auto& [id, map] : state->maps()) {
    auto* view = out->add_views();
    view->set_model(id.model);
    view->set_name(id.name);
    view->set_part(id.part);
    view->set_count(map.version.count());
    view->set_root(Bytes(map.version.root_hash));
  }
  return Status::Ok();
}

class LedgerServiceImpl final : public v1::LedgerService::CallbackService {
 public:
  explicit LedgerServiceImpl(Impl* impl) : impl_(impl) {}

  grpc::ServerUnaryReactor* CreateLedger(grpc::CallbackServerContext* ctx, const v1::CreateLedgerRequest* req,
                                         v1::LedgerInfo* resp) override {
    constexpr const char* kMethod = "CreateLedger";
    if (req->name().empty()) return impl_->Finish(ctx, kMethod, InvalidArgument("the request names no ledger"));
    auto who = impl_->Authorize(ctx, kMethod, req->name(), Role::kAdmin);
    if (!who.ok()) return impl_->Finish(ctx, kMethod, who.status());
    auto db = impl_->registry->Create(req->name());
    if (!db.ok()) return impl_->Finish(ctx, kMethod, db.status());
    impl_->options.logger->info("created ledger='{}' by={} vkey={}", req->name(), *who, (*db)->journal().vkey());
    return impl_->Finish(ctx, kMethod, Describe(**db, req->name(), true, resp));
  }

  grpc::ServerUnaryReactor* ListLedgers(grpc::CallbackServerContext* ctx, const v1::ListLedgersRequest*,
                                        v1::ListLedgersResponse* resp) override {
    constexpr const char* kMethod = "ListLedgers";
    for (const std::string& name : impl_->registry->Names()) {
      auto who = Authorize(impl_->options.auth, Impl::AuthorizationOf(ctx), name, Role::kRead);
      if (!who.ok()) {
        if (who.status().code() == StatusCode::kUnauthenticated) {
          return impl_->Finish(ctx, kMethod, impl_->Authorize(ctx, kMethod, name, Role::kRead).status());
        }
        continue;  // not this caller's to see
      }
      auto db = impl_->registry->Get(name);
      if (!db.ok()) continue;
      Status described = Describe(**db, name, false, resp->add_ledgers());
      if (!described.ok()) return impl_->Finish(ctx, kMethod, described);
    }
    if (impl_->options.auth.enabled() && impl_->registry->Names().empty()) {
      // Still refuse callers without a valid token.
      auto who = impl_->Authorize(ctx, kMethod, "", Role::kNone);
      if (!who.ok() && who.status().code() == StatusCode::kUnauthenticated) return impl_->Finish(ctx, kMethod, who.status());
    }
    return impl_->Finish(ctx, kMethod, Status::Ok());
  }

  grpc::ServerUnaryReactor* DescribeLedger(grpc::CallbackServerContext* ctx, const v1::DescribeLedgerRequest* req,
                                           v1::LedgerInfo* resp) override {
    return impl_->OnLedger(ctx, "DescribeLedger", req->ledger(), Role::kRead,
                           [&](LedgerDb& db) { return Describe(db, req->ledger(), true, resp); });
  }

 private:
  Impl* impl_;
};

// ---- TransactionService --------------------------------------------------------

std::string NewSessionId() {
  std::array<std::uint8_t, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return {};
  return HexEncode(bytes);
}

class TransactionServiceImpl final : public v1::TransactionService::CallbackService {
 public:
  explicit TransactionServiceImpl(Impl* impl) : impl_(impl) {}

  grpc::ServerUnaryReactor* Execute(grpc::CallbackServerContext* ctx, const v1::ExecuteRequest* req,
                                    v1::Receipt* resp) override {
    constexpr const char* kMethod = "Execute";
    auto db = impl_->LedgerFor(ctx, kMethod, req->ledger(), Role::kWrite);
    if (!db.ok()) return impl_->Finish(ctx, kMethod, db.status());
    auto tx = ToTransaction(req->operations(), req->idempotency_token());
    if (!tx.ok()) return impl_->Finish(ctx, kMethod, tx.status());
    auto* reactor = ctx->DefaultReactor();
    impl_->Commit(ctx, reactor, kMethod, *db, std::move(tx).value(), &req->operations(), resp);
    return reactor;
  }

  grpc::ServerUnaryReactor* Begin(grpc::CallbackServerContext* ctx, const v1::BeginRequest* req,
                                  v1::BeginResponse* resp) override {
    constexpr const char* kMethod = "Begin";
    std::string who;
    auto db = impl_->LedgerFor(ctx, kMethod, req->ledger(), Role::kWrite, &who);
    if (!db.ok()) return impl_->Finish(ctx, kMethod, db.status());
    auto snapshot = (*db)->State();
    if (!snapshot.ok()) return impl_->Finish(ctx, kMethod, snapshot.status());
    auto session = std::make_shared<Session>();
    session->ledger = req->ledger();
    session->owner = who;
    session->db = *db;
    session->snapshot_height = snapshot->state->height().value_or(0);
    session->snapshot = std::move(snapshot).value();
    session->last_used = Clock::now();
    const std::string id = NewSessionId();
    if (id.empty()) return impl_->Finish(ctx, kMethod, Internal("no randomness for a session id"));
    {
      std::lock_guard lock(impl_->sessions_mu);
      impl_->ExpireSessionsLocked();
      if (impl_->sessions.size() >= impl_->options.max_sessions) {
        return impl_->Finish(ctx, kMethod,
                             ResourceExhausted("too many open sessions (" + std::to_string(impl_->options.max_sessions) +
                                               "); commit or roll back some"));
      }
      impl_->sessions.emplace(id, std::move(session));
      resp->set_snapshot_height(impl_->sessions[id]->snapshot_height);
    }
    resp->set_session(id);
    return impl_->Finish(ctx, kMethod, Status::Ok());
  }

  grpc::ServerUnaryReactor* SessionGet(grpc::CallbackServerContext* ctx, const v1::SessionGetRequest* req,
                                       v1::SessionGetResponse* resp) override {
    constexpr const char* kMethod = "SessionGet";
    auto session = impl_->FindSession(ctx, kMethod, req->session(), Role::kWrite);
    if (!session.ok()) return impl_->Finish(ctx, kMethod, session.status());
    Session& s = **session;
    auto value = s.db->ReadKv(s.snapshot, req->namespace_(), req->key());
    if (!value.ok()) return impl_->Finish(ctx, kMethod, value.status());
    {
      std::lock_guard lock(impl_->sessions_mu);
      s.reads[{req->namespace_(), req->key()}] = *value;
      s.last_used = Clock::now();
    }
    resp->set_found(value->has_value());
    if (value->has_value()) resp->set_value(**value);
    return impl_->Finish(ctx, kMethod, Status::Ok());
  }

  grpc::ServerUnaryReactor* SessionDocGet(grpc::CallbackServerContext* ctx, const v1::SessionDocGetRequest* req,
                                          v1::SessionDocGetResponse* resp) override {
    constexpr const char* kMethod = "SessionDocGet";
    auto session = impl_->FindSession(ctx, kMethod, req->session(), Role::kWrite);
    if (!session.ok()) return impl_->Finish(ctx, kMethod, session.status());
    Session& s = **session;
    auto rev = s.db->ReadDoc(s.snapshot, req->collection(), req->id());
    if (!rev.ok()) return impl_->Finish(ctx, kMethod, rev.status());
    {
      std::lock_guard lock(impl_->sessions_mu);
      s.doc_reads[{req->collection(), req->id()}] =
          rev->has_value() ? std::optional<std::uint64_t>((*rev)->version) : std::nullopt;
      s.last_used = Clock::now();
    }
    resp->set_found(rev->has_value());
    if (rev->has_value()) {
      v1::Document* d = resp->mutable_document();
      d->set_id(req->id());
      d->set_version((*rev)->version);
      d->set_height((*rev)->height);
      d->set_index_in_block((*rev)->index_in_block);
      d->set_time_us((*rev)->time_us);
      d->set_json((*rev)->json);
    }
    return impl_->Finish(ctx, kMethod, Status::Ok());
  }

  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* ctx, const v1::CommitRequest* req,
                                   v1::Receipt* resp) override {
    constexpr const char* kMethod = "Commit";
    auto found = impl_->FindSession(ctx, kMethod, req->session(), Role::kWrite);
    if (!found.ok()) return impl_->Finish(ctx, kMethod, found.status());
    std::shared_ptr<Session> session = *found;
    // Every read becomes an assertion that the key still holds what was read.
    auto* ops = new google::protobuf::RepeatedPtrField<v1::Operation>();
    {
      std::lock_guard lock(impl_->sessions_mu);
      if (session->committing) {
        delete ops;
        return impl_->Finish(ctx, kMethod, FailedPrecondition("session '" + req->session() + "' is already committing"));
      }
      session->committing = true;
      for (const auto& [where, value] : session->reads) {
        auto* assert_op = ops->Add()->mutable_kv_assert();
        assert_op->set_namespace_(where.first);
        assert_op->set_key(where.second);
        if (value.has_value()) assert_op->set_expected(*value);
      }
      for (const auto& [where, version] : session->doc_reads) {
        auto* assert_op = ops->Add()->mutable_doc_assert();
        assert_op->set_collection(where.first);
        assert_op->set_id(where.second);
        if (version.has_value()) assert_op->set_expected_version(*version);
      }
    }
    ops->MergeFrom(req->operations());
    if (req->operations().empty()) {
      // Read-only: nothing to commit, but the reads must still hold.
      if (ops->empty()) {
        impl_->sessions_mu.lock();
        impl_->sessions.erase(req->session());
        impl_->sessions_mu.unlock();
        delete ops;
        return impl_->Finish(ctx, kMethod, InvalidArgument("nothing to commit: no reads and no operations"));
      }
    }
    auto tx = ToTransaction(*ops, req->idempotency_token());
    if (!tx.ok()) {
      delete ops;
      std::lock_guard lock(impl_->sessions_mu);
      session->committing = false;  // the client may fix the operations and retry
      return impl_->Finish(ctx, kMethod, tx.status());
    }
    auto* reactor = ctx->DefaultReactor();
    const std::string id = req->session();
    // The receipt's document ids count only the client's operations; the
    // assertions come first and take no document id (document assertions
    // are skipped when ids are derived).
    impl_->Commit(ctx, reactor, kMethod, session->db, std::move(tx).value(), ops, resp, [this, ops, id] {
      delete ops;
      std::lock_guard lock(impl_->sessions_mu);
      impl_->sessions.erase(id);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Rollback(grpc::CallbackServerContext* ctx, const v1::RollbackRequest* req,
                                     v1::RollbackResponse*) override {
    constexpr const char* kMethod = "Rollback";
    auto session = impl_->FindSession(ctx, kMethod, req->session(), Role::kWrite);
    if (!session.ok()) return impl_->Finish(ctx, kMethod, session.status());
    std::lock_guard lock(impl_->sessions_mu);
    if ((*session)->committing) {
      return impl_->Finish(ctx, kMethod, FailedPrecondition("session '" + req->session() + "' is committing"));
    }
    impl_->sessions.erase(req->session());
    return impl_->Finish(ctx, kMethod, Status::Ok());
  }

 private:
  Impl* impl_;
};

// ---- QueryService ----------------------------------------------------------------

class QueryServiceImpl final : public v1::QueryService::CallbackService {
 public:
  explicit QueryServiceImpl(Impl* impl) : impl_(impl) {}

  grpc::ServerUnaryReactor* KvGet(grpc::CallbackServerContext* ctx, const v1::KvGetRequest* req,
                                  v1::KvGetResponse* resp) override {
    json q{{"kind", "kv.get"}, {"namespace", req->namespace_()}, {"key", Base64Encode(req->key())}};
    return impl_->Query(ctx, "KvGet", req->ledger(), std::move(q), req->options(), resp, [resp](const json& r) -> Status {
      resp->set_found(r.at("found").get<bool>());
      if (resp->found()) {
        VELLUM_ASSIGN_OR_RETURN(std::string value, FromBase64(r.at("value")));
        resp->set_value(std::move(value));
      }
      return Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* KvGetMany(grpc::CallbackServerContext* ctx, const v1::KvGetManyRequest* req,
                                      v1::KvGetManyResponse* resp) override {
    json keys = json::array();
    for (const auto& k : req->keys()) keys.push_back(Base64Encode(k));
    json q{{"kind", "kv.get_many"}, {"namespace", req->namespace_()}, {"keys", std::move(keys)}};
    return impl_->Query(ctx, "KvGetMany", req->ledger(), std::move(q), req->options(), resp,
                        [resp](const json& r) -> Status {
                          for (const auto& e : r.at("entries")) {
                            auto* entry = resp->add_entries();
                            VELLUM_ASSIGN_OR_RETURN(std::string key, FromBase64(e.at("key")));
                            entry->set_key(std::move(key));
                            entry->set_found(e.at("found").get<bool>());
                            if (entry->found()) {
                              VELLUM_ASSIGN_OR_RETURN(std::string value, FromBase64(e.at("value")));
                              entry->set_value(std::move(value));
                            }
                          }
                          return Status::Ok();
                        });
  }

  grpc::ServerUnaryReactor* KvScan(grpc::CallbackServerContext* ctx, const v1::KvScanRequest* req,
                                   v1::KvScanResponse* resp) override {
    json q{{"kind", "kv.scan"}, {"namespace", req->namespace_()}, {"limit", Page(req->limit())}, {"reverse", req->reverse()}};
    if (req->has_prefix()) {
      q["lo"] = "";
      q["prefix"] = Base64Encode(req->prefix());
    } else {
      q["lo"] = Base64Encode(req->lo());
      if (req->has_hi()) q["hi"] = Base64Encode(req->hi());
    }
    return impl_->Query(ctx, "KvScan", req->ledger(), std::move(q), req->options(), resp, [resp](const json& r) -> Status {
      for (const auto& e : r.at("entries")) {
        auto* entry = resp->add_entries();
        VELLUM_ASSIGN_OR_RETURN(std::string key, FromBase64(e.at("key")));
        VELLUM_ASSIGN_OR_RETURN(std::string value, FromBase64(e.at("value")));
        entry->set_key(std::move(key));
        entry->set_value(std::move(value));
      }
      resp->set_has_more(r.at("has_more").get<bool>());
      if (r.contains("next_key")) {
        VELLUM_ASSIGN_OR_RETURN(std::string next, FromBase64(r["next_key"]));
        resp->set_next_key(std::move(next));
      }
      return Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ZsetRank(grpc::CallbackServerContext* ctx, const v1::ZsetRankRequest* req,
                                     v1::ZsetRankResponse* resp) override {
    json q{{"kind", "zset.rank"}, {"namespace", req->namespace_()}, {"set", req->set()}, {"member", Base64Encode(req->member())}};
    return impl_->Query(ctx, "ZsetRank", req->ledger(), std::move(q), req->options(), resp, [resp](const json& r) -> Status {
      resp->set_found(r.at("found").get<bool>());
      if (resp->found()) {
        resp->set_score(r.at("score").get<std::int64_t>());
        resp->set_rank(r.at("rank").get<std::uint64_t>());
        resp->set_total(r.at("total").get<std::uint64_t>());
      }
      return Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ZsetTop(grpc::CallbackServerContext* ctx, const v1::ZsetTopRequest* req,
                                    v1::ZsetMembersResponse* resp) override {
    json q{{"kind", "zset.top"}, {"namespace", req->namespace_()}, {"set", req->set()}, {"n", req->n()}};
    return impl_->Query(ctx, "ZsetTop", req->ledger(), std::move(q), req->options(), resp,
                        [resp](const json& r) { return FillMembers(r, resp); });
  }

  grpc::ServerUnaryReactor* ZsetRange(grpc::CallbackServerContext* ctx, const v1::ZsetRangeRequest* req,
                                      v1::ZsetMembersResponse* resp) override {
    json q{{"kind", "zset.range"}, {"namespace", req->namespace_()}, {"set", req->set()},
           {"min", req->min()},    {"max", req->max()},               {"limit", Page(req->limit())}};
    return impl_->Query(ctx, "ZsetRange", req->ledger(), std::move(q), req->options(), resp,
                        [resp](const json& r) { return FillMembers(r, resp); });
  }

  grpc::ServerUnaryReactor* DocFind(grpc::CallbackServerContext* ctx, const v1::DocFindRequest* req,
                                    v1::DocFindResponse* resp) override {
    constexpr const char* kMethod = "DocFind";
    json filter = json::object();
    if (!req->filter().empty()) {
      filter = json::parse(req->filter(), nullptr, /*allow_exceptions=*/false);
      if (filter.is_discarded() || !filter.is_object()) {
        return impl_->Finish(ctx, kMethod, InvalidArgument("filter is not a JSON object"));
      }
    }
    json projection = json::array();
    for (const auto& p : req->projection()) projection.push_back(p);
    json q{{"kind", "doc.find"}, {"collection", req->collection()}, {"filter", std::move(filter)},
           {"descending", req->descending()}, {"skip", req->skip()}, {"projection", std::move(projection)}};
    if (!req->sort_path().empty()) q["sort_path"] = req->sort_path();
    if (req->limit() != 0) q["limit"] = req->limit();
    if (req->has_index()) q["index"] = req->index();
    return impl_->Query(ctx, kMethod, req->ledger(), std::move(q), req->options(), resp, [resp](const json& r) -> Status {
      for (const auto& d : r.at("documents")) VELLUM_RETURN_IF_ERROR(FillDocument(d, resp->add_documents()));
      return Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* DocHistory(grpc::CallbackServerContext* ctx, const v1::DocHistoryRequest* req,
                                       v1::DocHistoryResponse* resp) override {
    json q{{"kind", "doc.history"}, {"collection", req->collection()}, {"id", req->id()}};
    const std::string id = req->id();
    return impl_->Query(ctx, "DocHistory", req->ledger(), std::move(q), req->options(), resp,
                        [resp, id](const json& r) -> Status {
                          for (const auto& rev : r.at("revisions")) {
                            auto* doc = resp->add_revisions();
                            VELLUM_RETURN_IF_ERROR(FillDocument(rev, doc));
                            doc->set_id(id);
                          }
                          return Status::Ok();
                        });
  }

 private:
  Impl* impl_;
};

// ---- DigestService -------------------------------------------------------------

using DigestBase = v1::DigestService::WithCallbackMethod_GetDigest<v1::DigestService::WithCallbackMethod_ProveConsistency<
    v1::DigestService::WithCallbackMethod_ProveBlock<v1::DigestService::WithCallbackMethod_ProveTransaction<
        v1::DigestService::Service>>>>;

// The tree size a proof request means (0: the newest checkpoint's).
Result<std::uint64_t> TreeSize(LedgerDb& db, std::uint64_t requested) {
  if (requested != 0) return requested;
  VELLUM_ASSIGN_OR_RETURN(auto latest, db.LatestCheckpoint());
  return latest->checkpoint.size;
}

Result<merkle::Hash> RootOf(LedgerDb& db, std::uint64_t size) {
  VELLUM_ASSIGN_OR_RETURN(auto snapshot, db.journal().store().Read());
  if (size > snapshot->block_count()) {
    return OutOfRange("tree size " + std::to_string(size) + " is beyond the ledger's " +
                      std::to_string(snapshot->block_count()) + " blocks");
  }
  return merkle::RootAt(*snapshot, size);
}

Result<std::string> BlockProofJson(LedgerDb& db, const journal::BlockProof& proof) {
  VELLUM_ASSIGN_OR_RETURN(merkle::Hash root, RootOf(db, proof.inclusion.tree_size));
  verifier::InclusionClaim claim{proof.inclusion, journal::BlockHash(proof.header), root};
  return verifier::LogProofToJson(claim);
}

class DigestServiceImpl final : public DigestBase {
 public:
  explicit DigestServiceImpl(Impl* impl) : impl_(impl) {}

  grpc::ServerUnaryReactor* GetDigest(grpc::CallbackServerContext* ctx, const v1::DigestRequest* req,
                                      v1::DigestResponse* resp) override {
    return impl_->OnLedger(ctx, "GetDigest", req->ledger(), Role::kRead, [&](LedgerDb& db) -> Status {
      VELLUM_ASSIGN_OR_RETURN(auto latest, db.LatestCheckpoint());
      resp->set_checkpoint(latest->note);
      resp->set_tree_size(latest->checkpoint.size);
      resp->set_root(Bytes(latest->checkpoint.root));
      return Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ProveConsistency(grpc::CallbackServerContext* ctx, const v1::ConsistencyRequest* req,
                                             v1::LogProofResponse* resp) override {
    return impl_->OnLedger(ctx, "ProveConsistency", req->ledger(), Role::kRead, [&](LedgerDb& db) -> Status {
      VELLUM_ASSIGN_OR_RETURN(std::uint64_t new_size, TreeSize(db, req->new_size()));
      if (req->old_size() > new_size) {
        return InvalidArgument("old size " + std::to_string(req->old_size()) + " is larger than new size " +
                               std::to_string(new_size));
      }
      VELLUM_ASSIGN_OR_RETURN(merkle::Hash new_root, RootOf(db, new_size));
      VELLUM_ASSIGN_OR_RETURN(merkle::Hash old_root, RootOf(db, req->old_size()));
      VELLUM_ASSIGN_OR_RETURN(merkle::ConsistencyProof proof, db.journal().ProveConsistency(req->old_size(), new_size));
      resp->set_proof(verifier::LogProofToJson(verifier::ConsistencyClaim{std::move(proof), old_root, new_root}));
      return Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ProveBlock(grpc::CallbackServerContext* ctx, const v1::BlockProofRequest* req,
                                       v1::BlockProofResponse* resp) override {
    return impl_->OnLedger(ctx, "ProveBlock", req->ledger(), Role::kRead, [&](LedgerDb& db) -> Status {
      VELLUM_ASSIGN_OR_RETURN(std::uint64_t size, TreeSize(db, req->tree_size()));
      VELLUM_ASSIGN_OR_RETURN(journal::BlockProof proof, db.journal().ProveBlock(req->height(), size));
      VELLUM_ASSIGN_OR_RETURN(std::string json_text, BlockProofJson(db, proof));
      resp->set_header(proof.header);
      resp->set_proof(std::move(json_text));
      return Status::Ok();
    });
  }

  grpc::ServerUnaryReactor* ProveTransaction(grpc::CallbackServerContext* ctx, const v1::TransactionProofRequest* req,
                                             v1::TransactionProofResponse* resp) override {
    return impl_->OnLedger(ctx, "ProveTransaction", req->ledger(), Role::kRead, [&](LedgerDb& db) -> Status {
      VELLUM_ASSIGN_OR_RETURN(std::uint64_t size, TreeSize(db, req->tree_size()));
      VELLUM_ASSIGN_OR_RETURN(journal::TransactionProof proof, db.journal().ProveTransaction(req->tx_seq(), size));
      VELLUM_ASSIGN_OR_RETURN(std::string block_json, BlockProofJson(db, proof.block));
      resp->set_transaction(proof.transaction);
      resp->set_header(proof.block.header);
      for (const auto& h : proof.tx_path) resp->add_tx_path(Bytes(h));
      resp->set_index_in_block(proof.index_in_block);
      resp->set_block_proof(std::move(block_json));
      return Status::Ok();
    });
  }

  // Synchronous: one thread per stream, at most max_watch_streams of them.
  grpc::Status WatchJournal(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                            grpc::ServerWriter<v1::JournalBlock>* writer) override {
    constexpr const char* kMethod = "WatchJournal";
    auto db = impl_->LedgerFor(ctx, kMethod, req->ledger(), Role::kRead);
    if (!db.ok()) {
      impl_->LogOutcome(kMethod, db.status());
      return ToGrpc(db.status());
    }
    if (impl_->watch_streams.fetch_add(1) >= impl_->options.max_watch_streams) {
      impl_->watch_streams.fetch_sub(1);
      Status full = ResourceExhausted("too many journal watchers (" + std::to_string(impl_->options.max_watch_streams) +
                                      "); try again later");
      impl_->LogOutcome(kMethod, full);
      return ToGrpc(full);
    }
    Status status = Stream(ctx, **db, req->from_height(), writer);
    impl_->watch_streams.fetch_sub(1);
    if (impl_->shutting_down.load()) {
      impl_->options.logger->info("method={} ended: the server is shutting down", kMethod);
    } else {
      impl_->LogOutcome(kMethod, status);
    }
    return ToGrpc(status);
  }

 private:
  Status Stream(grpc::ServerContext* ctx, LedgerDb& db, std::uint64_t next, grpc::ServerWriter<v1::JournalBlock>* writer) {
    while (!ctx->IsCancelled() && !impl_->shutting_down.load()) {
      if (next >= db.journal().size()) {
        std::unique_lock lock(impl_->watch_mu);
        impl_->watch_cv.wait_for(lock, std::chrono::milliseconds(50));
        continue;
      }
      VELLUM_ASSIGN_OR_RETURN(auto snapshot, db.journal().store().Read());
      // At most a few blocks per snapshot so a long catch-up does not pin an
      // old LMDB read transaction.
      const std::uint64_t end = std::min<std::uint64_t>(snapshot->block_count(), next + 64);
      for (; next < end; ++next) {
        VELLUM_ASSIGN_OR_RETURN(std::string raw, snapshot->Header(next));
        VELLUM_ASSIGN_OR_RETURN(journal::BlockHeader header, journal::DecodeBlockHeader(raw));
        v1::JournalBlock block;
        block.set_height(next);
        block.set_hash(Bytes(journal::BlockHash(raw)));
        for (std::uint32_t i = 0; i < header.tx_count; ++i) {
          VELLUM_ASSIGN_OR_RETURN(std::string tx, snapshot->Transaction(header.first_tx_seq + i));
          block.add_transactions(std::move(tx));
        }
        block.set_header(std::move(raw));
        if (!writer->Write(block)) return Status::Ok();  // the client went away
      }
    }
    if (impl_->shutting_down.load()) return Unavailable("the server is shutting down");
    return Status::Ok();
  }

  Impl* impl_;
};

}  // namespace

Services::Services(LedgerRegistry* registry, ServiceOptions options)
    : impl_(std::make_unique<Impl>(registry, std::move(options))) {
  impl_->ledger_service = std::make_unique<LedgerServiceImpl>(impl_.get());
  impl_->transaction_service = std::make_unique<TransactionServiceImpl>(impl_.get());
  impl_->query_service = std::make_unique<QueryServiceImpl>(impl_.get());
  impl_->digest_service = std::make_unique<DigestServiceImpl>(impl_.get());
}

Services::~Services() = default;

void Services::Register(grpc::ServerBuilder& builder) {
  builder.RegisterService(impl_->ledger_service.get());
  builder.RegisterService(impl_->transaction_service.get());
  builder.RegisterService(impl_->query_service.get());
  builder.RegisterService(impl_->digest_service.get());
}

void Services::Shutdown() {
  impl_->shutting_down.store(true);
  impl_->watch_cv.notify_all();
}

}  // namespace vellum::api::server
