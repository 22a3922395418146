// vellum-bench-docs: the document and leaderboard figures of issue 4
// ("Key-value and document engines with proven queries", "Benchmarks").
//
//  1. Durable document inserts/s into a collection with two declared path
//     indexes (`order_no`, `customer.city`), in transactions of --ops-per-tx
//     inserts with --inflight transactions outstanding (group commit).
//  2. Indexed finds over the --docs documents returning 1 (`order_no` $eq),
//     100 (`customer.city` $eq: --docs/100 cities) and 1,000 (`customer.city`
//     $in of 10 cities) documents, and 100 by a two-sided range on `order_no`
//     (bounds intersected: the index is single-valued): server-side latency of the proven answer
//     (plan, proofs, self-check), bundle size, client-side VerifyBundle time.
//  3. A leaderboard of --members members: proven top-10 latency and size.
//
// Everything runs in one process on a LedgerDb (no gRPC; section 7 of
// docs/BENCHMARKS.md measures the transport).
//
// Run: build/bin/vellum-bench-docs [--docs 1000000] [--members 1000000] [--queries 200] [--dir DIR]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "vellum/api/ledger_db.h"
#include "vellum/api/query.h"
#include "vellum/base/bytes.h"
#include "vellum/engines/document/doc_ops.h"
#include "vellum/engines/kv/kv_ops.h"
#include "vellum/merkle/note.h"
#include "vellum/verifier/bundle.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace api = vellum::api;
namespace doc = vellum::engines::document;
namespace kv = vellum::engines::kv;
namespace journal = vellum::journal;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

journal::Operation DocOperation(const doc::DocOp& op) {
  auto body = doc::EncodeDocOp(op);
  if (!body.ok()) {
    std::fprintf(stderr, "bad document operation: %s\n", body.status().ToString().c_str());
    std::exit(1);
  }
  return {doc::DocOpKind(op), *body};
}

// Appends `total` transactions made by `next`, at most `inflight` outstanding.
void Run(api::LedgerDb& db, size_t total, size_t inflight, const std::function<journal::Transaction(size_t)>& next) {
  std::mutex mu;
  std::condition_variable cv;
  size_t outstanding = 0, failed = 0;
  for (size_t i = 0; i < total; ++i) {
    journal::Transaction tx = next(i);
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return outstanding < inflight; });
      ++outstanding;
    }
    db.ExecuteAsync(std::move(tx), [&](vellum::Result<journal::Receipt> r) {
      std::lock_guard lock(mu);
      if (!r.ok() && failed++ == 0) std::fprintf(stderr, "transaction failed: %s\n", r.status().ToString().c_str());
      --outstanding;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return outstanding == 0; });
  if (failed > 0) {
    std::fprintf(stderr, "%zu transactions failed\n", failed);
    std::exit(1);
  }
}

std::string City(std::uint64_t c) { return "city-" + std::to_string(c); }

json Order(std::uint64_t i, std::uint64_t cities, std::mt19937_64& rng) {
  return {{"order_no", i},
          {"customer", {{"city", City(i % cities)}, {"name", "customer " + std::to_string(rng() % 100000)}}},
          {"total", static_cast<double>(rng() % 100000) / 100},
          {"status", rng() % 3 == 0 ? "paid" : "open"},
          {"items", json::array({{{"sku", "sku-" + std::to_string(rng() % 5000)}, {"qty", 1 + rng() % 5}}})}};
}

struct Measured {
  std::vector<double> prove_ms, verify_ms;
  std::vector<double> bytes;
  size_t results = 0;
};

void Report(const char* what, const Measured& m) {
  std::printf("%-44s results %5zu  prove p50 %7.2f ms p99 %7.2f ms  verify p50 %7.2f ms p99 %7.2f ms  bundle %9.0f B\n",
              what, m.results, Percentile(m.prove_ms, 0.5), Percentile(m.prove_ms, 0.99), Percentile(m.verify_ms, 0.5),
              Percentile(m.verify_ms, 0.99), Percentile(m.bytes, 0.5));
}

// Answers `make(i)` `queries` times: server proof time, bundle bytes, client verification time.
Measured Measure(api::LedgerDb& db, const vellum::merkle::NoteVerifier& verifier, size_t queries,
                 const std::function<json(size_t)>& make, size_t expect) {
  Measured m;
  for (size_t i = 0; i < queries; ++i) {
    const json q = make(i);
    auto t0 = Clock::now();
    auto bundle = api::AnswerQuery(db, q);
    m.prove_ms.push_back(Seconds(t0) * 1000);
    if (!bundle.ok()) {
      std::fprintf(stderr, "query %s failed: %s\n", q.dump().c_str(), bundle.status().ToString().c_str());
      std::exit(1);
    }
    const std::string text = vellum::verifier::BundleToJson(*bundle);
    m.bytes.push_back(static_cast<double>(text.size()));
    t0 = Clock::now();
    auto parsed = vellum::verifier::ParseBundle(text);
    auto verified = parsed.ok() ? vellum::verifier::VerifyBundle(*parsed, verifier) : parsed.status();
    m.verify_ms.push_back(Seconds(t0) * 1000);
    if (!verified.ok()) {
      std::fprintf(stderr, "bundle does not verify: %s\n", verified.status().ToString().c_str());
      std::exit(1);
    }
    m.results = verified->result_size;
    if (expect != 0 && m.results != expect) {
      std::fprintf(stderr, "query %s: %zu results, expected %zu\n", q.dump().c_str(), m.results, expect);
      std::exit(1);
    }
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vellum-bench-docs: document inserts with path indexes, indexed finds, leaderboard top-10"};
  std::uint64_t docs = 1000000, members = 1000000;
  size_t queries = 200, ops_per_tx = 100, inflight = 64;
  std::string dir = (std::filesystem::temp_directory_path() / "vellum-bench-docs").string();
  app.add_option("--docs", docs, "documents loaded (a multiple of 1,000)")->capture_default_str();
  app.add_option("--members", members, "leaderboard members")->capture_default_str();
  app.add_option("--queries", queries, "queries per measured shape")->capture_default_str();
  app.add_option("--ops-per-tx", ops_per_tx, "inserts per transaction")->capture_default_str();
  app.add_option("--inflight", inflight, "transactions in flight")->capture_default_str();
  app.add_option("--dir", dir, "ledger directory (removed first; use a real disk)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (docs < 1000 || docs % 1000 != 0) {
    std::fprintf(stderr, "--docs must be a positive multiple of 1000\n");
    return 2;
  }

  std::filesystem::remove_all(dir);
  auto db = api::LedgerDb::Create(dir, "bench", {});
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    return 1;
  }
  auto verifier = vellum::merkle::NoteVerifier::Parse((*db)->journal().vkey());
  if (!verifier.ok()) return 1;

  // 1. Inserts with two path indexes.
  for (const char* path : {"order_no", "customer.city"}) {
    journal::Transaction tx;
    tx.operations.push_back(DocOperation({doc::DocOp::Type::kCreateIndex, "orders", "", "", std::nullopt, path}));
    if (auto r = (*db)->Execute(std::move(tx)); !r.ok()) {
      std::fprintf(stderr, "create index: %s\n", r.status().ToString().c_str());
      return 1;
    }
  }
  const std::uint64_t cities = docs / 100;
  std::mt19937_64 rng(7);
  const std::uint64_t blocks_before = (*db)->journal().size();
  auto t0 = Clock::now();
  Run(**db, (docs + ops_per_tx - 1) / ops_per_tx, inflight, [&](size_t t) {
    journal::Transaction tx;
    for (std::uint64_t i = t * ops_per_tx; i < std::min<std::uint64_t>(docs, (t + 1) * ops_per_tx); ++i) {
      tx.operations.push_back(DocOperation(
          {doc::DocOp::Type::kInsert, "orders", "o" + std::to_string(i), Order(i, cities, rng).dump(), std::nullopt}));
    }
    return tx;
  });
  const double load_s = Seconds(t0);
  std::printf("inserts: %llu documents (~%zu B canonical) with 2 path indexes, %zu per transaction, %zu in flight: "
              "%.1f s = %.0f docs/s durable, %.1f transactions per block\n",
              static_cast<unsigned long long>(docs), Order(0, cities, rng).dump().size(), ops_per_tx, inflight, load_s,
              static_cast<double>(docs) / load_s,
              static_cast<double>((docs + ops_per_tx - 1) / ops_per_tx) /
                  static_cast<double>((*db)->journal().size() - blocks_before));

  // 2. Indexed finds of 1, 100 and 1,000 documents.
  auto find = [](json filter) {
    return json{{"kind", "doc.find"}, {"collection", "orders"}, {"filter", std::move(filter)},
                {"descending", false}, {"skip", 0},           {"projection", json::array()}};
  };
  std::uniform_int_distribution<std::uint64_t> pick_doc(0, docs - 1), pick_city(0, cities - 10);
  Report("find order_no $eq (index order_no)",
         Measure(**db, *verifier, queries, [&](size_t) { return find({{"order_no", pick_doc(rng)}}); }, 1));
  Report("find customer.city $eq (index customer.city)",
         Measure(**db, *verifier, queries, [&](size_t) { return find({{"customer.city", City(pick_city(rng))}}); }, 100));
  Report("find order_no $gte a $lt a+100 (intersected)",
         Measure(**db, *verifier, queries, [&](size_t) {
           const std::uint64_t a = pick_doc(rng) % (docs - 100);
           return find({{"order_no", {{"$gte", a}, {"$lt", a + 100}}}});
         }, 100));
  Report("find customer.city $in 10 cities",
         Measure(**db, *verifier, std::max<size_t>(queries / 4, 10), [&](size_t) {
           json in = json::array();
           const std::uint64_t c = pick_city(rng);
           for (std::uint64_t k = 0; k < 10; ++k) in.push_back(City(c + k));
           return find({{"customer.city", {{"$in", in}}}});
         }, 1000));

  // 3. Leaderboard top-10.
  t0 = Clock::now();
  Run(**db, (members + ops_per_tx - 1) / ops_per_tx, inflight, [&](size_t t) {
    journal::Transaction tx;
    for (std::uint64_t i = t * ops_per_tx; i < std::min<std::uint64_t>(members, (t + 1) * ops_per_tx); ++i) {
      kv::ZsetOp op{kv::ZsetOp::Type::kAdd, "games", "season", "player-" + std::to_string(i),
                    static_cast<std::int64_t>(rng() % 1000000000)};
      tx.operations.push_back({kv::ZsetOpKind(op), kv::EncodeZsetOp(op)});
    }
    return tx;
  });
  std::printf("leaderboard load: %llu members in %.1f s = %.0f adds/s durable\n",
              static_cast<unsigned long long>(members), Seconds(t0), static_cast<double>(members) / Seconds(t0));
  Report("leaderboard top-10",
         Measure(**db, *verifier, queries,
                 [](size_t) { return json{{"kind", "zset.top"}, {"namespace", "games"}, {"set", "season"}, {"n", 10}}; },
                 10));
  Report("leaderboard rank of a member",
         Measure(**db, *verifier, queries, [&](size_t) {
           return json{{"kind", "zset.rank"}, {"namespace", "games"}, {"set", "season"},
                       {"member", vellum::Base64Encode("player-" + std::to_string(rng() % members))}};
         }, 1));
  const auto st = (*db)->view_store().stats();
  std::printf("views: %llu pages, %llu values, %.1f MiB views file\n", static_cast<unsigned long long>(st.pages),
              static_cast<unsigned long long>(st.values), static_cast<double>(st.file_bytes) / (1 << 20));
  db->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
