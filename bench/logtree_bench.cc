// vellum-bench-logtree: the RFC 9162 log tree (merkle/log_tree.h).
//
//  * appends: CompactRange::Append alone, and MemoryLogTree::Append (which
//    also keeps every perfect-subtree hash);
//  * proofs at a tree of --leaves leaves (default 1,000,000): inclusion and
//    consistency proof generation and verification, at random leaves / old
//    sizes, from a MemoryLogTree and from the journal's LMDB store
//    (JournalStore snapshot as the NodeReader, as Ledger::ProveBlock reads it).
//
// The LMDB store is filled once per run with one JournalStore::AppendBlock
// per leaf (sync off for the set-up only; the durable write path is measured
// by vellum-bench-journal), in a fresh directory under --dir, removed at exit.
//
// Run: build-bench/bin/vellum-bench-logtree [--leaves=N] [--dir=PATH] [benchmark flags]
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/base/encoding.h"
#include "vellum/journal/store.h"
#include "vellum/merkle/hasher.h"
#include "vellum/merkle/log_tree.h"

namespace {

namespace merkle = vellum::merkle;
namespace journal = vellum::journal;
using merkle::Hash;

std::uint64_t g_leaves = 1000000;
std::string g_dir;  // parent of the temporary store directory

Hash LeafOf(std::uint64_t i) { return merkle::HashLeaf(vellum::BigEndianKey(i)); }

void Check(const vellum::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

// Built on first use and shared by every benchmark of the run.
struct MemoryFixture {
  merkle::MemoryLogTree tree;
  Hash root{};
  std::vector<Hash> leaf_hashes;
};

const MemoryFixture& Memory() {
  static const MemoryFixture* fixture = [] {
    auto* f = new MemoryFixture;
    f->leaf_hashes.reserve(g_leaves);
    for (std::uint64_t i = 0; i < g_leaves; ++i) {
      f->leaf_hashes.push_back(LeafOf(i));
      f->tree.Append(f->leaf_hashes.back());
    }
    f->root = f->tree.Root();
    return f;
  }();
  return *fixture;
}

struct StoreFixture {
  std::string dir;
  std::unique_ptr<journal::JournalStore> store;
  ~StoreFixture() {
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

StoreFixture& Store() {
  static const std::unique_ptr<StoreFixture> fixture = [] {
    auto owned = std::make_unique<StoreFixture>();
    StoreFixture& f = *owned;
    std::string tmpl = (std::filesystem::path(g_dir) / "vellum-bench-logtree-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::exit(1);
    }
    f.dir = tmpl;
    journal::StoreOptions options;
    options.sync = false;  // set-up only; see the file comment
    auto store = journal::JournalStore::Open(f.dir, options);
    Check(store.status(), "open store");
    f.store = std::move(*store);
    merkle::CompactRange range;
    const std::string header(journal::kBlockHeaderSize, 'h');  // the store does not decode headers
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < g_leaves; ++i) {
      journal::BlockWrite write;
      write.height = i;
      write.header = header;
      write.first_tx_seq = 0;
      range.Append(LeafOf(i), [&](std::uint32_t level, std::uint64_t index, const Hash& h) {
        write.nodes.push_back({level, index, h});
      });
      Check(f.store->AppendBlock(write), "append block");
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto size = f.store->FileSize();
    std::fprintf(stderr,
                 "[setup] LMDB store: %llu AppendBlock calls (sync off) in %.2f s = %.0f blocks/s, data.mdb %.1f MiB\n",
                 static_cast<unsigned long long>(g_leaves), secs, static_cast<double>(g_leaves) / secs,
                 size.ok() ? static_cast<double>(*size) / (1 << 20) : -1.0);
    return owned;
  }();
  return *fixture;
}

// ---- Appends ----------------------------------------------------------------

void BM_CompactRangeAppend(benchmark::State& state) {
  merkle::CompactRange range;
  std::uint64_t i = 0;
  const Hash leaf = LeafOf(7);
  for (auto _ : state) {
    range.Append(leaf);
    ++i;
  }
  benchmark::DoNotOptimize(range.Root());
  state.SetItemsProcessed(static_cast<std::int64_t>(i));
}
BENCHMARK(BM_CompactRangeAppend);

// Appends to a MemoryLogTree until it holds --leaves leaves, then starts a
// fresh one (outside the timing), so the figure is the average over a tree
// growing from 0 to --leaves.
void BM_MemoryLogTreeAppend(benchmark::State& state) {
  auto tree = std::make_unique<merkle::MemoryLogTree>();
  const Hash leaf = LeafOf(7);
  for (auto _ : state) {
    if (tree->size() == g_leaves) {
      state.PauseTiming();
      tree = std::make_unique<merkle::MemoryLogTree>();
      state.ResumeTiming();
    }
    tree->Append(leaf);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MemoryLogTreeAppend);

// ---- Proofs from memory -----------------------------------------------------

void BM_InclusionProve_Memory(benchmark::State& state) {
  const MemoryFixture& f = Memory();
  std::mt19937_64 rng(1);
  for (auto _ : state) {
    auto path = merkle::InclusionPath(f.tree, rng() % g_leaves, g_leaves);
    if (!path.ok()) state.SkipWithError(path.status().ToString().c_str());
    benchmark::DoNotOptimize(path);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InclusionProve_Memory)->Unit(benchmark::kMicrosecond);

void BM_InclusionVerify(benchmark::State& state) {
  const MemoryFixture& f = Memory();
  std::mt19937_64 rng(2);
  struct Item {
    std::uint64_t index;
    std::vector<Hash> path;
  };
  std::vector<Item> items;
  for (int i = 0; i < 1024; ++i) {
    const std::uint64_t index = rng() % g_leaves;
    items.push_back({index, *merkle::InclusionPath(f.tree, index, g_leaves)});
  }
  size_t n = 0;
  for (auto _ : state) {
    const Item& it = items[n++ % items.size()];
    vellum::Status s = merkle::VerifyInclusion(it.index, g_leaves, f.leaf_hashes[it.index], it.path, f.root);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["path_len"] = static_cast<double>(items[0].path.size());
}
BENCHMARK(BM_InclusionVerify)->Unit(benchmark::kMicrosecond);

void BM_ConsistencyProve_Memory(benchmark::State& state) {
  const MemoryFixture& f = Memory();
  std::mt19937_64 rng(3);
  for (auto _ : state) {
    auto path = merkle::ConsistencyPath(f.tree, 1 + rng() % (g_leaves - 1), g_leaves);
    if (!path.ok()) state.SkipWithError(path.status().ToString().c_str());
    benchmark::DoNotOptimize(path);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ConsistencyProve_Memory)->Unit(benchmark::kMicrosecond);

void BM_ConsistencyVerify(benchmark::State& state) {
  const MemoryFixture& f = Memory();
  std::mt19937_64 rng(4);
  struct Item {
    std::uint64_t old_size;
    Hash old_root;
    std::vector<Hash> path;
  };
  std::vector<Item> items;
  for (int i = 0; i < 1024; ++i) {
    const std::uint64_t old_size = 1 + rng() % (g_leaves - 1);
    items.push_back({old_size, *merkle::RootAt(f.tree, old_size), *merkle::ConsistencyPath(f.tree, old_size, g_leaves)});
  }
  size_t n = 0;
  for (auto _ : state) {
    const Item& it = items[n++ % items.size()];
    vellum::Status s = merkle::VerifyConsistency(it.old_size, g_leaves, it.old_root, f.root, it.path);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ConsistencyVerify)->Unit(benchmark::kMicrosecond);

// ---- Proofs from the LMDB store ---------------------------------------------

// One read snapshot for the whole run: the cost of the node reads and hashing.
void BM_InclusionProve_Lmdb(benchmark::State& state) {
  StoreFixture& f = Store();
  auto snap = f.store->Read();
  if (!snap.ok()) return state.SkipWithError(snap.status().ToString().c_str());
  std::mt19937_64 rng(5);
  for (auto _ : state) {
    auto path = merkle::InclusionPath(**snap, rng() % g_leaves, g_leaves);
    if (!path.ok()) state.SkipWithError(path.status().ToString().c_str());
    benchmark::DoNotOptimize(path);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InclusionProve_Lmdb)->Unit(benchmark::kMicrosecond);

// A fresh snapshot per proof, plus the root, as a server request would do.
void BM_InclusionProve_LmdbSnapshotAndRoot(benchmark::State& state) {
  StoreFixture& f = Store();
  std::mt19937_64 rng(5);
  for (auto _ : state) {
    auto snap = f.store->Read();
    if (!snap.ok()) return state.SkipWithError(snap.status().ToString().c_str());
    auto path = merkle::InclusionPath(**snap, rng() % g_leaves, g_leaves);
    auto root = merkle::RootAt(**snap, g_leaves);
    if (!path.ok() || !root.ok()) state.SkipWithError("proof from store failed");
    benchmark::DoNotOptimize(path);
    benchmark::DoNotOptimize(root);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InclusionProve_LmdbSnapshotAndRoot)->Unit(benchmark::kMicrosecond);

void BM_ConsistencyProve_Lmdb(benchmark::State& state) {
  StoreFixture& f = Store();
  auto snap = f.store->Read();
  if (!snap.ok()) return state.SkipWithError(snap.status().ToString().c_str());
  std::mt19937_64 rng(6);
  for (auto _ : state) {
    auto path = merkle::ConsistencyPath(**snap, 1 + rng() % (g_leaves - 1), g_leaves);
    if (!path.ok()) state.SkipWithError(path.status().ToString().c_str());
    benchmark::DoNotOptimize(path);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ConsistencyProve_Lmdb)->Unit(benchmark::kMicrosecond);

// Consumes --leaves=N and --dir=PATH; everything else goes to Google Benchmark.
bool TakeFlag(std::string_view arg, std::string_view name, std::string* value) {
  if (arg.substr(0, name.size()) != name || arg.size() <= name.size() || arg[name.size()] != '=') return false;
  *value = std::string(arg.substr(name.size() + 1));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::error_code ec;
  g_dir = std::filesystem::temp_directory_path(ec).string();
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string value;
    if (i > 0 && TakeFlag(argv[i], "--leaves", &value)) {
      g_leaves = std::strtoull(value.c_str(), nullptr, 10);
      if (g_leaves < 2) {
        std::fprintf(stderr, "--leaves must be at least 2\n");
        return 2;
      }
    } else if (i > 0 && TakeFlag(argv[i], "--dir", &value)) {
      g_dir = value;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 2;
  benchmark::AddCustomContext("leaves", std::to_string(g_leaves));
  benchmark::AddCustomContext("store_parent_dir", g_dir);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
