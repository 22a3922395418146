// End to end against a real vellumd on a free loopback port in a temporary
// directory, through the generated gRPC stubs: every engine written and
// queried with proofs that the verifier library checks; restart with the
// digest consistent with the one before; auth refusals; bad input;
// concurrent writers, conflicting interactive transactions, idempotent
// retries; no acknowledged write lost across kill -9.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "vellum/base/bytes.h"
#include "vellum/journal/format.h"
#include "vellum/journal/proofs.h"
#include "vellum/merkle/note.h"
#include "vellum/testing/server_process.h"
#include "vellum/testing/temp_dir.h"
#include "vellum/v1/vellum.grpc.pb.h"
#include "vellum/verifier/bundle.h"
#include "vellum/verifier/verify.h"

namespace vellum {
namespace {

using nlohmann::json;
using testing::ServerProcess;
using testing::TempDir;

const std::string kVellumd = std::string(VELLUM_BIN_DIR) + "/vellumd";
const std::string kVellum = std::string(VELLUM_BIN_DIR) + "/vellum";
const std::string kVerify = std::string(VELLUM_BIN_DIR) + "/vellum-verify";

struct Client {
  explicit Client(const std::string& address, std::string token = "") : token_(std::move(token)) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(256 << 20);
    args.SetMaxSendMessageSize(256 << 20);
    channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    ledgers = v1::LedgerService::NewStub(channel);
    txs = v1::TransactionService::NewStub(channel);
    queries = v1::QueryService::NewStub(channel);
    digests = v1::DigestService::NewStub(channel);
  }
  std::unique_ptr<grpc::ClientContext> Ctx() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!token_.empty()) ctx->AddMetadata("authorization", "Bearer " + token_);
    return ctx;
  }

  grpc::Status Put(const std::string& ledger, const std::string& ns, const std::string& key, const std::string& value,
                   v1::Receipt* receipt = nullptr, const std::string& token = "") const {
    v1::ExecuteRequest req;
    req.set_ledger(ledger);
    req.set_idempotency_token(token);
    auto* put = req.add_operations()->mutable_kv_put();
    put->set_namespace_(ns);
    put->set_key(key);
    put->set_value(value);
    v1::Receipt local;
    return txs->Execute(Ctx().get(), req, receipt != nullptr ? receipt : &local);
  }

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::LedgerService::Stub> ledgers;
  std::unique_ptr<v1::TransactionService::Stub> txs;
  std::unique_ptr<v1::QueryService::Stub> queries;
  std::unique_ptr<v1::DigestService::Stub> digests;

 private:
  std::string token_;
};

// Checks a bundle with the verifier library against the ledger's key and
// returns what it proved.
verifier::VerifiedBundle VerifyBundleText(const std::string& text, const std::string& vkey) {
  REQUIRE_FALSE(text.empty());
  auto bundle = verifier::ParseBundle(text);
  REQUIRE(bundle.ok());
  auto key = merkle::NoteVerifier::Parse(vkey);
  REQUIRE(key.ok());
  auto verified = verifier::VerifyBundle(*bundle, *key);
  INFO(verified.status().ToString());
  REQUIRE(verified.ok());
  return std::move(verified).value();
}

std::string CreateLedger(Client& c, const std::string& name) {
  v1::CreateLedgerRequest req;
  req.set_name(name);
  v1::LedgerInfo info;
  auto status = c.ledgers->CreateLedger(c.Ctx().get(), req, &info);
  INFO(status.error_message());
  REQUIRE(status.ok());
  REQUIRE(info.blocks() == 1);  // the genesis block
  return info.vkey();
}

v1::DigestResponse Digest(Client& c, const std::string& ledger) {
  v1::DigestRequest req;
  req.set_ledger(ledger);
  v1::DigestResponse resp;
  REQUIRE(c.digests->GetDigest(c.Ctx().get(), req, &resp).ok());
  return resp;
}

TEST_CASE("every engine over gRPC, proven and verified, and a restart keeps data and digests consistent", "[e2e]") {
  TempDir dir;
  std::string vkey;
  v1::DigestResponse before;
  {
    ServerProcess server(kVellumd, {"--data", dir.Sub("data")});
    Client c(server.address());
    vkey = CreateLedger(c, "acme/payments");

    // Key-value, sorted set and documents in one transaction, then more.
    v1::ExecuteRequest req;
    req.set_ledger("acme/payments");
    for (int i = 0; i < 20; ++i) {
      auto* put = req.add_operations()->mutable_kv_put();
      put->set_namespace_("accounts");
      put->set_key("acct-" + std::to_string(100 + i));
      put->set_value("balance " + std::to_string(i * 10));
    }
    auto* add = req.add_operations()->mutable_zset_add();
    add->set_namespace_("games");
    add->set_set("board");
    add->set_member("alice");
    add->set_score(50);
    auto* add2 = req.add_operations()->mutable_zset_add();
    add2->CopyFrom(*add);
    add2->set_member("bob");
    add2->set_score(70);
    auto* ins = req.add_operations()->mutable_doc_insert();
    ins->set_collection("policies");
    ins->set_json(R"({"holder":"Ann","premium":120,"kind":"car"})");
    auto* ins2 = req.add_operations()->mutable_doc_insert();
    ins2->set_collection("policies");
    ins2->set_id("p-2");
    ins2->set_json(R"({"holder":"Ben","premium":80,"kind":"home"})");
    v1::Receipt receipt;
    auto status = c.txs->Execute(c.Ctx().get(), req, &receipt);
    INFO(status.error_message());
    REQUIRE(status.ok());
    REQUIRE(receipt.block_height() >= 1);
    REQUIRE(receipt.document_ids_size() == 2);
    REQUIRE(receipt.document_ids(1) == "p-2");
    const std::string derived_id = receipt.document_ids(0);
    REQUIRE(derived_id.size() == 24);
    const std::uint64_t first_height = receipt.block_height();

    v1::ExecuteRequest update;
    update.set_ledger("acme/payments");
    auto* replace = update.add_operations()->mutable_doc_replace();
    replace->set_collection("policies");
    replace->set_id("p-2");
    replace->set_json(R"({"holder":"Ben","premium":95,"kind":"home"})");
    replace->set_expected_version(1);
    auto* incr = update.add_operations()->mutable_zset_increment();
    incr->set_namespace_("games");
    incr->set_set("board");
    incr->set_member("alice");
    incr->set_delta(40);
    auto* put = update.add_operations()->mutable_kv_put();
    put->set_namespace_("accounts");
    put->set_key("acct-100");
    put->set_value("balance 999");
    REQUIRE(c.txs->Execute(c.Ctx().get(), update, &receipt).ok());

    SECTION("kv get, present and absent, now and as of an earlier block") {
      v1::KvGetRequest get;
      get.set_ledger("acme/payments");
      get.set_namespace_("accounts");
      get.set_key("acct-100");
      v1::KvGetResponse resp;
      REQUIRE(c.queries->KvGet(c.Ctx().get(), get, &resp).ok());
      REQUIRE(resp.found());
      REQUIRE(resp.value() == "balance 999");
      auto proved = VerifyBundleText(resp.header().bundle(), vkey);
      REQUIRE(proved.result["value"] == Base64Encode("balance 999"));

      get.mutable_options()->set_at_height(first_height);
      REQUIRE(c.queries->KvGet(c.Ctx().get(), get, &resp).ok());
      REQUIRE(resp.value() == "balance 0");
      REQUIRE(resp.header().height() == first_height);
      proved = VerifyBundleText(resp.header().bundle(), vkey);
      REQUIRE(proved.height == first_height);

      get.clear_options();
      get.set_key("acct-999");
      REQUIRE(c.queries->KvGet(c.Ctx().get(), get, &resp).ok());
      REQUIRE_FALSE(resp.found());
      REQUIRE(VerifyBundleText(resp.header().bundle(), vkey).result["found"] == false);

      get.mutable_options()->set_omit_proof(true);
      REQUIRE(c.queries->KvGet(c.Ctx().get(), get, &resp).ok());
      REQUIRE(resp.header().bundle().empty());

      // Without a proof (answered from the state, no proof built), the same
      // answer as the proven one, now and as of the earlier block.
      for (bool as_of : {false, true}) {
        v1::KvGetRequest both = get;
        both.set_key("acct-100");
        both.clear_options();
        if (as_of) both.mutable_options()->set_at_height(first_height);
        v1::KvGetResponse proven, plain;
        REQUIRE(c.queries->KvGet(c.Ctx().get(), both, &proven).ok());
        both.mutable_options()->set_omit_proof(true);
        REQUIRE(c.queries->KvGet(c.Ctx().get(), both, &plain).ok());
        REQUIRE(plain.header().bundle().empty());
        CHECK(plain.found() == proven.found());
        CHECK(plain.value() == proven.value());
        CHECK(plain.value() == (as_of ? "balance 0" : "balance 999"));
        CHECK(plain.header().height() == proven.header().height());
        CHECK(plain.header().tree_size() == proven.header().tree_size());
        CHECK(VerifyBundleText(proven.header().bundle(), vkey).result["value"] == Base64Encode(plain.value()));
      }
    }
    SECTION("kv scan with a prefix and with pages") {
      v1::KvScanRequest scan;
      scan.set_ledger("acme/payments");
      scan.set_namespace_("accounts");
      scan.set_prefix("acct-11");
      v1::KvScanResponse resp;
      REQUIRE(c.queries->KvScan(c.Ctx().get(), scan, &resp).ok());
      REQUIRE(resp.entries_size() == 10);
      REQUIRE(VerifyBundleText(resp.header().bundle(), vkey).result_size == 10);

      scan.clear_prefix();
      scan.set_limit(7);
      std::set<std::string> seen;
      for (int page = 0; page < 10; ++page) {
        REQUIRE(c.queries->KvScan(c.Ctx().get(), scan, &resp).ok());
        VerifyBundleText(resp.header().bundle(), vkey);
        for (const auto& e : resp.entries()) seen.insert(e.key());
        if (!resp.has_more()) break;
        REQUIRE(resp.has_next_key());
        scan.set_lo(resp.next_key());
      }
      REQUIRE(seen.size() == 20);
    }
    SECTION("sorted sets: rank, top, range") {
      v1::ZsetRankRequest rank;
      rank.set_ledger("acme/payments");
      rank.set_namespace_("games");
      rank.set_set("board");
      rank.set_member("alice");
      v1::ZsetRankResponse r;
      REQUIRE(c.queries->ZsetRank(c.Ctx().get(), rank, &r).ok());
      REQUIRE(r.found());
      REQUIRE(r.score() == 90);
      REQUIRE(r.rank() == 0);
      REQUIRE(r.total() == 2);
      VerifyBundleText(r.header().bundle(), vkey);

      v1::ZsetTopRequest top;
      top.set_ledger("acme/payments");
      top.set_namespace_("games");
      top.set_set("board");
      top.set_n(5);
      v1::ZsetMembersResponse members;
      REQUIRE(c.queries->ZsetTop(c.Ctx().get(), top, &members).ok());
      REQUIRE(members.members_size() == 2);
      REQUIRE(members.members(0).member() == "alice");
      VerifyBundleText(members.header().bundle(), vkey);

      v1::ZsetRangeRequest range;
      range.set_ledger("acme/payments");
      range.set_namespace_("games");
      range.set_set("board");
      range.set_min(60);
      range.set_max(80);
      REQUIRE(c.queries->ZsetRange(c.Ctx().get(), range, &members).ok());
      REQUIRE(members.members_size() == 1);
      REQUIRE(members.members(0).member() == "bob");
      VerifyBundleText(members.header().bundle(), vkey);
    }
    SECTION("documents: find with a filter, history") {
      v1::DocFindRequest find;
      find.set_ledger("acme/payments");
      find.set_collection("policies");
      find.set_filter(R"({"premium":{"$gte":90}})");
      v1::DocFindResponse found;
      REQUIRE(c.queries->DocFind(c.Ctx().get(), find, &found).ok());
      REQUIRE(found.documents_size() == 2);
      VerifyBundleText(found.header().bundle(), vkey);
      find.set_filter(R"({"kind":"car"})");
      REQUIRE(c.queries->DocFind(c.Ctx().get(), find, &found).ok());
      REQUIRE(found.documents_size() == 1);
      REQUIRE(found.documents(0).id() == derived_id);
      REQUIRE(json::parse(found.documents(0).json())["holder"] == "Ann");

      v1::DocHistoryRequest history;
      history.set_ledger("acme/payments");
      history.set_collection("policies");
      history.set_id("p-2");
      v1::DocHistoryResponse revisions;
      REQUIRE(c.queries->DocHistory(c.Ctx().get(), history, &revisions).ok());
      REQUIRE(revisions.revisions_size() == 2);
      REQUIRE(json::parse(revisions.revisions(1).json())["premium"] == 95);
      VerifyBundleText(revisions.header().bundle(), vkey);

      // A collection that does not exist: an empty answer, proven empty.
      find.set_collection("no-such-collection");
      REQUIRE(c.queries->DocFind(c.Ctx().get(), find, &found).ok());
      REQUIRE(found.documents_size() == 0);
      VerifyBundleText(found.header().bundle(), vkey);
    }
    SECTION("block and transaction proofs, watch") {
      const auto digest = Digest(c, "acme/payments");
      auto cp = verifier::VerifyCheckpointNote(digest.checkpoint(), vkey);
      REQUIRE(cp.ok());
      v1::BlockProofRequest breq;
      breq.set_ledger("acme/payments");
      breq.set_height(first_height);
      v1::BlockProofResponse bresp;
      REQUIRE(c.digests->ProveBlock(c.Ctx().get(), breq, &bresp).ok());
      auto claim = verifier::ParseLogProof(bresp.proof());
      REQUIRE(claim.ok());
      REQUIRE(verifier::VerifyLogProof(*claim).ok());
      REQUIRE(std::get<verifier::InclusionClaim>(*claim).root == cp->root);

      v1::TransactionProofRequest treq;
      treq.set_ledger("acme/payments");
      treq.set_tx_seq(receipt.tx_seq());
      v1::TransactionProofResponse tresp;
      REQUIRE(c.digests->ProveTransaction(c.Ctx().get(), treq, &tresp).ok());
      journal::TransactionProof tproof;
      tproof.transaction = tresp.transaction();
      tproof.tx_seq = receipt.tx_seq();
      tproof.index_in_block = tresp.index_in_block();
      for (const auto& h : tresp.tx_path()) {
        merkle::Hash hash{};
        REQUIRE(h.size() == hash.size());
        std::copy(h.begin(), h.end(), hash.begin());
        tproof.tx_path.push_back(hash);
      }
      tproof.block.header = tresp.header();
      auto bclaim = verifier::ParseLogProof(tresp.block_proof());
      REQUIRE(bclaim.ok());
      tproof.block.inclusion = std::get<verifier::InclusionClaim>(*bclaim).proof;
      auto tx = journal::VerifyTransactionProof(tproof, cp->size, cp->root);
      INFO(tx.status().ToString());
      REQUIRE(tx.ok());
      REQUIRE(tx->operations.size() == 3);

      v1::WatchRequest wreq;
      wreq.set_ledger("acme/payments");
      auto ctx = c.Ctx();
      auto reader = c.digests->WatchJournal(ctx.get(), wreq);
      v1::JournalBlock block;
      merkle::Hash prev{};
      for (std::uint64_t h = 0; h < cp->size; ++h) {
        REQUIRE(reader->Read(&block));
        REQUIRE(block.height() == h);
        auto header = journal::DecodeBlockHeader(block.header());
        REQUIRE(header.ok());
        REQUIRE(header->prev_hash == prev);
        prev = journal::BlockHash(block.header());
        REQUIRE(block.transactions_size() == static_cast<int>(header->tx_count));
      }
      ctx->TryCancel();
    }
    before = Digest(c, "acme/payments");
    REQUIRE(server.Kill(SIGTERM) == 0);
  }
  // Restart on the same directory: everything is there, and the new digest
  // extends the old one.
  ServerProcess server(kVellumd, {"--data", dir.Sub("data")});
  Client c(server.address());
  v1::DescribeLedgerRequest describe;
  describe.set_ledger("acme/payments");
  v1::LedgerInfo info;
  REQUIRE(c.ledgers->DescribeLedger(c.Ctx().get(), describe, &info).ok());
  REQUIRE(info.vkey() == vkey);
  REQUIRE(info.blocks() == before.tree_size());
  REQUIRE(c.Put("acme/payments", "accounts", "acct-new", "after restart").ok());
  const auto after = Digest(c, "acme/payments");
  REQUIRE(after.tree_size() > before.tree_size());
  v1::ConsistencyRequest creq;
  creq.set_ledger("acme/payments");
  creq.set_old_size(before.tree_size());
  v1::LogProofResponse cresp;
  REQUIRE(c.digests->ProveConsistency(c.Ctx().get(), creq, &cresp).ok());
  auto claim = verifier::ParseLogProof(cresp.proof());
  REQUIRE(claim.ok());
  auto extended = verifier::VerifyCheckpointConsistency(before.checkpoint(), after.checkpoint(),
                                                        std::get<verifier::ConsistencyClaim>(*claim), vkey);
  INFO(extended.status().ToString());
  REQUIRE(extended.ok());
  v1::KvGetRequest get;
  get.set_ledger("acme/payments");
  get.set_namespace_("accounts");
  get.set_key("acct-100");
  v1::KvGetResponse resp;
  REQUIRE(c.queries->KvGet(c.Ctx().get(), get, &resp).ok());
  REQUIRE(resp.value() == "balance 999");
  VerifyBundleText(resp.header().bundle(), vkey);
}

TEST_CASE("auth: missing, wrong, read-only and other-ledger tokens are refused", "[e2e][auth]") {
  TempDir dir;
  testing::WriteFile(dir.Sub("tokens.json"), R"({"tokens":[
    {"name":"ops","token":"admin-secret","roles":{"*":"admin"}},
    {"name":"app","token":"writer-secret","roles":{"shop":"write"}},
    {"name":"auditor","token":"reader-secret","roles":{"shop":"read"}}]})");
  ServerProcess server(kVellumd, {"--data", dir.Sub("data"), "--auth", dir.Sub("tokens.json")});
  Client admin(server.address(), "admin-secret");
  CreateLedger(admin, "shop");
  CreateLedger(admin, "other");

  Client anonymous(server.address());
  Client wrong(server.address(), "not-a-token");
  Client writer(server.address(), "writer-secret");
  Client reader(server.address(), "reader-secret");
  REQUIRE(anonymous.Put("shop", "n", "k", "v").error_code() == grpc::StatusCode::UNAUTHENTICATED);
  REQUIRE(wrong.Put("shop", "n", "k", "v").error_code() == grpc::StatusCode::UNAUTHENTICATED);
  REQUIRE(reader.Put("shop", "n", "k", "v").error_code() == grpc::StatusCode::PERMISSION_DENIED);
  REQUIRE(writer.Put("other", "n", "k", "v").error_code() == grpc::StatusCode::PERMISSION_DENIED);
  REQUIRE(writer.Put("shop", "n", "k", "v").ok());

  v1::CreateLedgerRequest create;
  create.set_name("mine");
  v1::LedgerInfo info;
  REQUIRE(writer.ledgers->CreateLedger(writer.Ctx().get(), create, &info).error_code() ==
          grpc::StatusCode::PERMISSION_DENIED);
  v1::KvGetRequest get;
  get.set_ledger("shop");
  get.set_namespace_("n");
  get.set_key("k");
  v1::KvGetResponse resp;
  REQUIRE(reader.queries->KvGet(reader.Ctx().get(), get, &resp).ok());
  REQUIRE(resp.value() == "v");
  get.set_ledger("other");
  REQUIRE(reader.queries->KvGet(reader.Ctx().get(), get, &resp).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  REQUIRE(anonymous.queries->KvGet(anonymous.Ctx().get(), get, &resp).error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);

  v1::ListLedgersRequest list;
  v1::ListLedgersResponse ledgers;
  REQUIRE(reader.ledgers->ListLedgers(reader.Ctx().get(), list, &ledgers).ok());
  REQUIRE(ledgers.ledgers_size() == 1);  // only what the caller may read
  REQUIRE(anonymous.ledgers->ListLedgers(anonymous.Ctx().get(), list, &ledgers).error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
}

TEST_CASE("bad input gets precise codes, the server keeps serving, data stays untouched", "[e2e][bad-input]") {
  TempDir dir;
  ServerProcess server(kVellumd, {"--data", dir.Sub("data"), "--max-message-mib", "4"});
  Client c(server.address());
  CreateLedger(c, "shop");
  REQUIRE(c.Put("shop", "n", "k", "v").ok());
  const auto before = Digest(c, "shop");

  auto execute = [&](const v1::ExecuteRequest& req) {
    v1::Receipt receipt;
    return c.txs->Execute(c.Ctx().get(), req, &receipt).error_code();
  };
  v1::ExecuteRequest req;
  req.set_ledger("nope");
  req.add_operations()->mutable_kv_put()->set_key("k");
  CHECK(execute(req) == grpc::StatusCode::NOT_FOUND);
  req.set_ledger("shop");
  req.clear_operations();
  CHECK(execute(req) == grpc::StatusCode::INVALID_ARGUMENT);  // no operations
  req.add_operations();
  CHECK(execute(req) == grpc::StatusCode::INVALID_ARGUMENT);  // operation without a kind
  req.clear_operations();
  auto* doc = req.add_operations()->mutable_doc_insert();
  doc->set_collection("c");
  doc->set_json("[1,2,3]");
  CHECK(execute(req) == grpc::StatusCode::INVALID_ARGUMENT);  // not an object
  doc->set_json("{\"a\":");
  CHECK(execute(req) == grpc::StatusCode::INVALID_ARGUMENT);  // malformed JSON
  req.clear_operations();
  auto* big = req.add_operations()->mutable_kv_put();
  big->set_namespace_("n");
  big->set_key("big");
  big->set_value(std::string(2u << 20, 'x'));
  CHECK(execute(req) == grpc::StatusCode::INVALID_ARGUMENT);  // value above the map's 1 MiB
  big->set_value(std::string(5u << 20, 'x'));
  CHECK(execute(req) == grpc::StatusCode::RESOURCE_EXHAUSTED);  // message above --max-message-mib
  req.clear_operations();
  auto* replace = req.add_operations()->mutable_doc_replace();
  replace->set_collection("no-such-collection");
  replace->set_id("x");
  replace->set_json("{}");
  CHECK(execute(req) == grpc::StatusCode::NOT_FOUND);
  req.clear_operations();
  auto* cas = req.add_operations()->mutable_kv_compare_and_set();
  cas->set_namespace_("n");
  cas->set_key("k");
  cas->set_expected("not v");
  cas->set_value("w");
  CHECK(execute(req) == grpc::StatusCode::ABORTED);

  v1::DocFindRequest find;
  find.set_ledger("shop");
  find.set_collection("c");
  find.set_filter("{\"a\":{\"$bogus\":1}}");
  v1::DocFindResponse found;
  CHECK(c.queries->DocFind(c.Ctx().get(), find, &found).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  find.set_filter("not json");
  CHECK(c.queries->DocFind(c.Ctx().get(), find, &found).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  v1::KvGetRequest get;
  get.set_ledger("shop");
  get.set_namespace_("n");
  get.set_key("k");
  get.mutable_options()->set_at_height(1000);
  v1::KvGetResponse got;
  CHECK(c.queries->KvGet(c.Ctx().get(), get, &got).error_code() == grpc::StatusCode::OUT_OF_RANGE);
  get.mutable_options()->clear_at_height();
  get.mutable_options()->set_tree_size(12345);
  CHECK(c.queries->KvGet(c.Ctx().get(), get, &got).error_code() == grpc::StatusCode::NOT_FOUND);
  v1::CreateLedgerRequest create;
  create.set_name("bad name!");
  v1::LedgerInfo info;
  CHECK(c.ledgers->CreateLedger(c.Ctx().get(), create, &info).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  create.set_name("shop");
  CHECK(c.ledgers->CreateLedger(c.Ctx().get(), create, &info).error_code() == grpc::StatusCode::ALREADY_EXISTS);

  // Bytes that are not a protobuf message at all, through a generic stub.
  grpc::GenericStub generic(c.channel);
  grpc::ByteBuffer garbage_request;
  grpc::Slice slice(std::string("\xff\xff\xff\xff garbage", 12));
  garbage_request = grpc::ByteBuffer(&slice, 1);
  grpc::ClientContext ctx;
  grpc::ByteBuffer reply;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status garbage_status;
  generic.UnaryCall(&ctx, "/vellum.v1.TransactionService/Execute", grpc::StubOptions(), &garbage_request, &reply,
                    [&](grpc::Status s) {
                      std::lock_guard lock(mu);
                      garbage_status = std::move(s);
                      done = true;
                      cv.notify_one();
                    });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  CHECK_FALSE(garbage_status.ok());

  // Nothing above changed the ledger, and it still serves.
  const auto after = Digest(c, "shop");
  CHECK(after.tree_size() == before.tree_size());
  CHECK(after.root() == before.root());
  REQUIRE(c.Put("shop", "n", "k2", "v2").ok());
}

TEST_CASE("concurrent writers, idempotent retries, conflicting sessions abort exactly when they should", "[e2e][concurrency]") {
  TempDir dir;
  ServerProcess server(kVellumd, {"--data", dir.Sub("data")});
  Client c(server.address());
  const std::string vkey = CreateLedger(c, "shop");

  SECTION("many clients writing and reading at once") {
    constexpr int kThreads = 16, kPerThread = 40;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        Client mine(server.address());
        for (int i = 0; i < kPerThread; ++i) {
          const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
          if (!mine.Put("shop", "n", key, "value " + key).ok()) ++failures;
          v1::KvGetRequest get;
          get.set_ledger("shop");
          get.set_namespace_("n");
          get.set_key(key);
          get.mutable_options()->set_omit_proof(true);
          v1::KvGetResponse resp;
          if (!mine.queries->KvGet(mine.Ctx().get(), get, &resp).ok() || resp.value() != "value " + key) ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    REQUIRE(failures == 0);
    v1::KvScanRequest scan;
    scan.set_ledger("shop");
    scan.set_namespace_("n");
    v1::KvScanResponse resp;
    REQUIRE(c.queries->KvScan(c.Ctx().get(), scan, &resp).ok());
    REQUIRE(resp.entries_size() == kThreads * kPerThread);
    REQUIRE(VerifyBundleText(resp.header().bundle(), vkey).result_size == kThreads * kPerThread);
  }
  SECTION("an idempotency token commits once") {
    v1::Receipt first, second;
    REQUIRE(c.Put("shop", "n", "once", "1", &first, "token-42").ok());
    REQUIRE_FALSE(first.replayed());
    REQUIRE(c.Put("shop", "n", "once", "1", &second, "token-42").ok());
    REQUIRE(second.replayed());
    REQUIRE(second.tx_seq() == first.tx_seq());
    REQUIRE(second.tx_hash() == first.tx_hash());
    REQUIRE(c.Put("shop", "n", "once", "2", &second, "token-42").error_code() == grpc::StatusCode::ALREADY_EXISTS);
    // Racing retries: exactly one commits.
    std::vector<std::thread> threads;
    std::atomic<int> replayed{0}, committed{0};
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        Client mine(server.address());
        v1::Receipt r;
        if (mine.Put("shop", "n", "race", "x", &r, "token-race").ok()) (r.replayed() ? replayed : committed)++;
      });
    }
    for (auto& t : threads) t.join();
    REQUIRE(committed == 1);
    REQUIRE(replayed == 7);
  }
  SECTION("interactive transactions: the second writer of a read key aborts") {
    REQUIRE(c.Put("shop", "n", "stock", "10").ok());
    auto begin = [&] {
      v1::BeginRequest req;
      req.set_ledger("shop");
      v1::BeginResponse resp;
      REQUIRE(c.txs->Begin(c.Ctx().get(), req, &resp).ok());
      return resp.session();
    };
    auto read = [&](const std::string& session, const std::string& key) {
      v1::SessionGetRequest req;
      req.set_session(session);
      req.set_namespace_("n");
      req.set_key(key);
      v1::SessionGetResponse resp;
      REQUIRE(c.txs->SessionGet(c.Ctx().get(), req, &resp).ok());
      return resp.found() ? resp.value() : std::string("<absent>");
    };
    auto commit = [&](const std::string& session, const std::string& key, const std::string& value, std::string* message) {
      v1::CommitRequest req;
      req.set_session(session);
      auto* put = req.add_operations()->mutable_kv_put();
      put->set_namespace_("n");
      put->set_key(key);
      put->set_value(value);
      v1::Receipt receipt;
      auto status = c.txs->Commit(c.Ctx().get(), req, &receipt);
      if (message != nullptr) *message = status.error_message();
      return status.error_code();
    };
    const std::string a = begin(), b = begin(), d = begin();
    REQUIRE(read(a, "stock") == "10");
    REQUIRE(read(b, "stock") == "10");
    REQUIRE(read(d, "other") == "<absent>");
    REQUIRE(commit(a, "stock", "9", nullptr) == grpc::StatusCode::OK);
    std::string message;
    REQUIRE(commit(b, "stock", "9", &message) == grpc::StatusCode::ABORTED);
    REQUIRE(message.find("stock") != std::string::npos);
    // d read an unrelated key: no conflict, it commits.
    REQUIRE(commit(d, "stock-log", "a sold one", nullptr) == grpc::StatusCode::OK);
    // A finished session is gone.
    REQUIRE(commit(a, "stock", "8", nullptr) == grpc::StatusCode::NOT_FOUND);
    // Documents: a session's read records the version; a concurrent replace aborts it.
    {
      v1::ExecuteRequest r;
      r.set_ledger("shop");
      auto* insert = r.add_operations()->mutable_doc_insert();
      insert->set_collection("carts");
      insert->set_id("cart-1");
      insert->set_json(R"({"items":1})");
      v1::Receipt receipt;
      REQUIRE(c.txs->Execute(c.Ctx().get(), r, &receipt).ok());
    }
    auto read_doc = [&](const std::string& session) {
      v1::SessionDocGetRequest req;
      req.set_session(session);
      req.set_collection("carts");
      req.set_id("cart-1");
      v1::SessionDocGetResponse resp;
      REQUIRE(c.txs->SessionDocGet(c.Ctx().get(), req, &resp).ok());
      REQUIRE(resp.found());
      return resp.document().version();
    };
    auto replace_doc = [&](const std::string& session, const char* body, std::string* why) {
      v1::CommitRequest req;
      req.set_session(session);
      auto* replace = req.add_operations()->mutable_doc_replace();
      replace->set_collection("carts");
      replace->set_id("cart-1");
      replace->set_json(body);
      v1::Receipt receipt;
      auto status = c.txs->Commit(c.Ctx().get(), req, &receipt);
      if (why != nullptr) *why = status.error_message();
      return status.error_code();
    };
    const std::string e = begin(), f = begin();
    REQUIRE(read_doc(e) == 1);
    REQUIRE(read_doc(f) == 1);
    REQUIRE(replace_doc(e, R"({"items":2})", nullptr) == grpc::StatusCode::OK);
    REQUIRE(replace_doc(f, R"({"items":5})", &message) == grpc::StatusCode::ABORTED);
    REQUIRE(message.find("cart-1") != std::string::npos);

    v1::RollbackRequest rollback;
    rollback.set_session(begin());
    v1::RollbackResponse rolled;
    REQUIRE(c.txs->Rollback(c.Ctx().get(), rollback, &rolled).ok());
    REQUIRE(c.txs->Rollback(c.Ctx().get(), rollback, &rolled).error_code() == grpc::StatusCode::NOT_FOUND);
  }
}

TEST_CASE("no acknowledged write is lost when vellumd is killed with SIGKILL", "[e2e][crash]") {
  TempDir dir;
  std::string address;
  std::mutex mu;
  std::vector<std::string> acknowledged;
  {
    // A small flush window, so views flushes run in the background while
    // writers are acknowledged and the kill can land before, during or after
    // one: recovery replays the journal from the newest flushed state.
    ServerProcess server(kVellumd,
                         {"--data", dir.Sub("data"), "--flush-every-pages", "1024", "--page-cache-pages", "64"});
    address = server.address();
    Client c(address);
    CreateLedger(c, "shop");
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < 8; ++t) {
      writers.emplace_back([&, t] {
        Client mine(address);
        for (int i = 0; !stop; ++i) {
          const std::string key = "w" + std::to_string(t) + "-" + std::to_string(i);
          if (mine.Put("shop", "n", key, key).ok()) {
            std::lock_guard lock(mu);
            acknowledged.push_back(key);
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    server.Kill(SIGKILL);
    stop = true;
    for (auto& w : writers) w.join();
  }
  REQUIRE(acknowledged.size() > 10);
  ServerProcess server(kVellumd, {"--data", dir.Sub("data")});
  Client c(server.address());
  v1::KvScanRequest scan;
  scan.set_ledger("shop");
  scan.set_namespace_("n");
  scan.mutable_options()->set_omit_proof(true);
  std::set<std::string> stored;
  for (;;) {
    v1::KvScanResponse resp;
    REQUIRE(c.queries->KvScan(c.Ctx().get(), scan, &resp).ok());
    for (const auto& e : resp.entries()) stored.insert(e.key());
    if (!resp.has_more()) break;
    scan.set_lo(resp.next_key());
  }
  for (const auto& key : acknowledged) {
    INFO(key);
    REQUIRE(stored.count(key) == 1);
  }
}

TEST_CASE("the vellum CLI forms scripts rely on, ending in verified proofs", "[e2e][cli]") {
  TempDir dir;
  ServerProcess server(kVellumd, {"--data", dir.Sub("data")});
  const std::string addr = server.address();
  auto vellum = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {kVellum, "--addr", addr});
    return testing::RunCommand(args);
  };
  auto ok = [](const testing::CommandResult& r) {
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return r.out;
  };
  ok(vellum({"ledger", "create", "shop"}));
  const json described = json::parse(ok(vellum({"--json", "ledger", "describe", "shop"})));
  REQUIRE(described["name"] == "shop");
  REQUIRE(described["blocks"] == 1);
  const std::string vkey = described["vkey"];
  testing::WriteFile(dir.Sub("vkey"), vkey);
  auto verify = [&](const std::string& file) {
    return testing::RunCommand({kVerify, "bundle", file, "--vkey", vkey});
  };

  ok(vellum({"--ledger", "shop", "digest", "--out", dir.Sub("cp1")}));
  ok(vellum({"--ledger", "shop", "kv", "put", "fruit", "apple", "red"}));
  ok(vellum({"--ledger", "shop", "kv", "put", "fruit", "apricot", "orange"}));
  ok(vellum({"--ledger", "shop", "kv", "put", "fruit", "banana", "yellow"}));

  REQUIRE(ok(vellum({"--ledger", "shop", "kv", "get", "fruit", "apple", "--proof-out", dir.Sub("get.json")})) == "red\n");
  REQUIRE(verify(dir.Sub("get.json")).exit_code == 0);

  // A missing key: nothing on stdout, exit 1, and its absence proof verifies.
  auto missing = vellum({"--ledger", "shop", "kv", "get", "fruit", "cherry", "--proof-out", dir.Sub("absent.json")});
  REQUIRE(missing.exit_code == 1);
  REQUIRE(missing.out.empty());
  auto absent = verify(dir.Sub("absent.json"));
  REQUIRE(absent.exit_code == 0);

  const std::string scanned =
      ok(vellum({"--ledger", "shop", "kv", "scan", "fruit", "--prefix", "ap", "--proof-out", dir.Sub("scan.json")}));
  REQUIRE(scanned == "apple\tred\napricot\torange\n");
  REQUIRE(verify(dir.Sub("scan.json")).exit_code == 0);
  // The same proof with a row dropped does not verify.
  json dropped = json::parse(testing::ReadFile(dir.Sub("scan.json")));
  dropped["result"]["entries"].erase(dropped["result"]["entries"].begin());
  testing::WriteFile(dir.Sub("dropped.json"), dropped.dump());
  auto refused = verify(dir.Sub("dropped.json"));
  REQUIRE(refused.exit_code == 1);
  REQUIRE(refused.err.find("bundle.result") != std::string::npos);

  const std::string inserted = ok(vellum({"--ledger", "shop", "doc", "insert", "orders", R"({"item":"pear","qty":3})"}));
  REQUIRE(inserted.find(" id ") != std::string::npos);
  ok(vellum({"--ledger", "shop", "doc", "insert", "orders", R"({"item":"fig","qty":12})"}));
  const std::string found =
      ok(vellum({"--ledger", "shop", "doc", "find", "orders", R"({"qty":{"$gt":5}})", "--proof-out", dir.Sub("find.json")}));
  REQUIRE(found.find("fig") != std::string::npos);
  REQUIRE(found.find("pear") == std::string::npos);
  REQUIRE(verify(dir.Sub("find.json")).exit_code == 0);

  const std::string note = ok(vellum({"--ledger", "shop", "digest"}));
  auto checkpoint = verifier::VerifyCheckpointNote(note, vkey);
  REQUIRE(checkpoint.ok());
  REQUIRE(checkpoint->size == 6);

  // The new digest extends the first one.
  testing::WriteFile(dir.Sub("cp2"), note);
  ok(vellum({"--ledger", "shop", "proof", "consistency", "1", std::to_string(checkpoint->size), "--out",
             dir.Sub("consistency.json")}));
  auto consistent = testing::RunCommand({kVerify, "consistency", "--old", dir.Sub("cp1"), "--new", dir.Sub("cp2"),
                                         "--proof", dir.Sub("consistency.json"), "--vkey", vkey});
  INFO(consistent.err);
  REQUIRE(consistent.exit_code == 0);

  // Several keys in one proven call; a path index the next find reads; a validator.
  REQUIRE(ok(vellum({"--ledger", "shop", "kv", "get-many", "fruit", "apple", "cherry", "apricot", "--proof-out",
                     dir.Sub("many.json")})) == "apple\tred\napricot\torange\n");
  REQUIRE(verify(dir.Sub("many.json")).exit_code == 0);
  ok(vellum({"--ledger", "shop", "doc", "index", "orders", "qty"}));
  const json indexed = json::parse(ok(vellum({"--json", "--ledger", "shop", "doc", "find", "orders",
                                               R"({"qty":{"$gt":5,"$lt":100}})", "--proof-out", dir.Sub("indexed.json")})));
  REQUIRE(indexed["index"] == "qty");
  REQUIRE(indexed["documents"].size() == 1);
  REQUIRE(indexed["documents"][0]["time_us"].get<std::int64_t>() > 0);
  REQUIRE(verify(dir.Sub("indexed.json")).exit_code == 0);
  ok(vellum({"--ledger", "shop", "doc", "validator", "orders", R"({"required":["item"]})"}));
  auto invalid = vellum({"--ledger", "shop", "doc", "insert", "orders", R"({"qty":1})"});
  REQUIRE(invalid.exit_code == 3);
  REQUIRE(invalid.err.find("INVALID_ARGUMENT") != std::string::npos);
  REQUIRE(invalid.err.find("missing required property 'item'") != std::string::npos);

  // Usage errors exit 2; server errors print the code and exit 3.
  REQUIRE(vellum({"--ledger", "shop", "kv", "put", "fruit"}).exit_code == 2);
  REQUIRE(vellum({"kv", "get", "fruit", "apple"}).exit_code == 2);  // no ledger
  auto unknown = vellum({"--ledger", "nope", "kv", "get", "fruit", "apple"});
  REQUIRE(unknown.exit_code == 3);
  REQUIRE(unknown.err.find("NOT_FOUND") != std::string::npos);
  auto bad_doc = vellum({"--ledger", "shop", "doc", "insert", "orders", "[1,2]"});
  REQUIRE(bad_doc.exit_code != 0);
}

}  // namespace
}  // namespace vellum
