// Test support: fills a LedgerDb with a bit of everything the audit replays —
// blocks of several key-value transactions (written concurrently so blocks
// hold more than one), sorted-set and document operations through
// LedgerDb::Execute, and a signed checkpoint every few rounds. Link vellum_db,
// vellum_kv_pure and vellum_document_pure.
#ifndef VELLUM_TESTING_SAMPLE_LEDGER_H_
#define VELLUM_TESTING_SAMPLE_LEDGER_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "vellum/api/ledger_db.h"
#include "vellum/engines/document/doc_ops.h"
#include "vellum/engines/kv/kv_ops.h"

namespace vellum::testing {

inline journal::Operation KvPut(const std::string& ns, const std::string& key, const std::string& value) {
  engines::kv::KvOp op{engines::kv::KvOp::Type::kPut, ns, key, value, std::nullopt};
  return {engines::kv::KvOpKind(op), engines::kv::EncodeKvOp(op)};
}

inline journal::Operation KvDelete(const std::string& ns, const std::string& key) {
  engines::kv::KvOp op{engines::kv::KvOp::Type::kDelete, ns, key, std::nullopt, std::nullopt};
  return {engines::kv::KvOpKind(op), engines::kv::EncodeKvOp(op)};
}

inline journal::Operation ZAdd(const std::string& ns, const std::string& set, const std::string& member, std::int64_t score) {
  engines::kv::ZsetOp op{engines::kv::ZsetOp::Type::kAdd, ns, set, member, score};
  return {engines::kv::ZsetOpKind(op), engines::kv::EncodeZsetOp(op)};
}

inline journal::Operation Doc(engines::document::DocOp::Type type, const std::string& id, const std::string& json) {
  engines::document::DocOp op;
  op.type = type;
  op.collection = "orders";
  op.id = id;
  op.json = json;
  auto body = engines::document::EncodeDocOp(op);
  return {engines::document::DocOpKind(op), body.ok() ? *body : std::string()};
}

// Appends rounds [first_round, first_round + rounds) to `db` (a later call
// continues where an earlier one stopped); a checkpoint is signed after every
// `checkpoint_every`-th round. Returns the first error.
inline Status FillSampleLedger(api::LedgerDb& db, int rounds, int first_round = 0, int checkpoint_every = 4,
                               int puts_per_round = 8) {
  using DocType = engines::document::DocOp::Type;
  for (int r = first_round; r < first_round + rounds; ++r) {
    // Concurrent puts, so that blocks carry several transactions.
    std::mutex mu;
    std::condition_variable cv;
    int pending = puts_per_round;
    Status first = Status::Ok();
    for (int i = 0; i < puts_per_round; ++i) {
      journal::Transaction tx;
      tx.operations.push_back(KvPut("accounts", "acct-" + std::to_string(r) + "-" + std::to_string(i),
                                    "balance " + std::to_string(r * 100 + i)));
      tx.operations.push_back(KvPut("hot", "key" + std::to_string(i % 5), "round " + std::to_string(r)));
      db.journal().AppendAsync(std::move(tx), [&](Result<journal::Receipt> receipt) {
        std::lock_guard lock(mu);
        if (!receipt.ok() && first.ok()) first = receipt.status();
        if (--pending == 0) cv.notify_all();
      });
    }
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return pending == 0; });
    }
    VELLUM_RETURN_IF_ERROR(first);

    journal::Transaction games;
    games.operations.push_back(ZAdd("games", "scores", "player" + std::to_string(r % 7), r * 10));
    if (r % 3 == 2) games.operations.push_back(KvDelete("hot", "key" + std::to_string(r % 5)));
    VELLUM_RETURN_IF_ERROR(db.Execute(std::move(games)).status());

    journal::Transaction docs;
    docs.operations.push_back(Doc(DocType::kInsert, "d" + std::to_string(r),
                                  "{\"n\":" + std::to_string(r) + ",\"status\":\"open\"}"));
    if (r % 3 == 1) {
      docs.operations.push_back(Doc(DocType::kReplace, "d" + std::to_string(r - 1),
                                    "{\"n\":" + std::to_string(r - 1) + ",\"status\":\"paid\"}"));
    }
    if (r % 4 == 0 && r >= 2) docs.operations.push_back(Doc(DocType::kDelete, "d" + std::to_string(r - 2), ""));
    VELLUM_RETURN_IF_ERROR(db.Execute(std::move(docs)).status());

    if (checkpoint_every > 0 && (r + 1) % checkpoint_every == 0) VELLUM_RETURN_IF_ERROR(db.journal().Checkpoint().status());
  }
  return Status::Ok();
}

}  // namespace vellum::testing

#endif  // VELLUM_TESTING_SAMPLE_LEDGER_H_
