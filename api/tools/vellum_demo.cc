// vellum-demo: a local walk through the journal until the gRPC server lands.
// Appends transactions from several threads into a ledger under --data,
// signs a checkpoint, and writes proof files for vellum-verify:
//   DATA/checkpoint.txt, DATA/vkey.txt, DATA/block-proof.json and, when a
//   previous run left a checkpoint, DATA/consistency-proof.json.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "vellum/journal/ledger.h"
#include "vellum/merkle/note.h"
#include "vellum/verifier/verify.h"

namespace {

using vellum::journal::Ledger;

int Die(const vellum::Status& status) {
  std::cerr << "vellum-demo: " << status.ToString() << "\n";
  return 1;
}

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vellum-demo: append transactions to a local ledger, sign a checkpoint, write proofs"};
  std::string data = "vellum-data/demo";
  int transactions = 2000;
  int writers = 16;
  app.add_option("--data", data, "Ledger directory")->capture_default_str();
  app.add_option("--transactions", transactions, "Transactions to append")->capture_default_str()->check(CLI::Range(1, 10000000));
  app.add_option("--writers", writers, "Concurrent writer threads")->capture_default_str()->check(CLI::Range(1, 1024));
  CLI11_PARSE(app, argc, argv);

  const std::filesystem::path dir(data);
  const std::filesystem::path ledger_dir = dir / "ledger";
  vellum::journal::LedgerOptions options;
  auto ledger = std::filesystem::exists(ledger_dir / "data.mdb") ? Ledger::Open(ledger_dir.string(), options)
                                                                  : Ledger::Create(ledger_dir.string(), "vellum-demo", options);
  if (!ledger.ok()) return Die(ledger.status());
  std::cout << "ledger 'vellum-demo' in " << ledger_dir.string() << ": " << (*ledger)->size() << " blocks\n";

  const std::string previous_checkpoint = std::filesystem::exists(dir / "checkpoint.txt") ? ReadText(dir / "checkpoint.txt") : "";

  std::atomic<int> next{0}, failed{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&] {
      for (int i = next++; i < transactions; i = next++) {
        vellum::journal::Transaction tx;
        tx.operations.push_back({1, R"({"payment":)" + std::to_string(i) + R"(,"amount_cents":)" +
                                        std::to_string(100 + i % 9000) + R"(,"currency":"EUR"})"});
        if (!(*ledger)->Append(std::move(tx)).ok()) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failed > 0) {
    std::cerr << "vellum-demo: " << failed << " transactions failed\n";
    return 1;
  }
  const auto stats = (*ledger)->stats();
  std::cout << "appended " << transactions << " durable transactions from " << writers << " writers in " << secs
            << " s (" << static_cast<long>(transactions / secs) << " tx/s); ledger now has " << stats.blocks
            << " blocks, " << stats.transactions << " transactions\n";

  auto note = (*ledger)->Checkpoint();
  if (!note.ok()) return Die(note.status());
  WriteText(dir / "checkpoint.txt", *note);
  WriteText(dir / "vkey.txt", (*ledger)->vkey() + "\n");
  std::cout << "\nsigned checkpoint (" << (dir / "checkpoint.txt").string() << "):\n" << *note
            << "\nverifier key: " << (*ledger)->vkey() << "\n";

  auto cp = vellum::verifier::VerifyCheckpointNote(*note, (*ledger)->vkey());
  if (!cp.ok()) return Die(cp.status());
  std::mt19937_64 rng(std::random_device{}());
  const std::uint64_t height = rng() % cp->size;
  auto proof = (*ledger)->ProveBlock(height, cp->size);
  if (!proof.ok()) return Die(proof.status());
  vellum::verifier::InclusionClaim claim{proof->inclusion, vellum::journal::BlockHash(proof->header), cp->root};
  WriteText(dir / "block-proof.json", vellum::verifier::LogProofToJson(claim));
  std::cout << "inclusion proof of block " << height << " in the checkpoint: " << (dir / "block-proof.json").string() << "\n";

  std::filesystem::remove(dir / "consistency-proof.json");
  if (!previous_checkpoint.empty()) {
    auto old_cp = vellum::verifier::VerifyCheckpointNote(previous_checkpoint, (*ledger)->vkey());
    if (old_cp.ok() && old_cp->size > 0) {
      auto consistency = (*ledger)->ProveConsistency(old_cp->size, cp->size);
      if (!consistency.ok()) return Die(consistency.status());
      vellum::verifier::ConsistencyClaim c{*consistency, old_cp->root, cp->root};
      WriteText(dir / "consistency-proof.json", vellum::verifier::LogProofToJson(c));
      std::cout << "consistency proof from the previous run's checkpoint (size " << old_cp->size
                << "): " << (dir / "consistency-proof.json").string() << "\n";
    }
  }
  return 0;
}
