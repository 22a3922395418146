// Throughput and latency of the authenticated map (issue 3, "Benchmarks"):
// load, batch apply in batches of random keys, proof generation and
// verification for get, absence, ranges and summaries, proof sizes, and the
// bytes of pages per update. Figures go to docs/BENCHMARKS.md.
//
// By default the pages live in memory and every version is kept (what every
// version would cost). With --dir they live in an LMDB view store as in a
// ledger: each batch is committed as a block, flushed lazily in the
// background, and only the newest version is pinned, so the pages no flushed
// version reaches are dropped (indexes/view_store.h).
//
//   vellum-bench-map                 # 1M keys, plain map, in memory
//   vellum-bench-map --aggregate     # int64-aggregate map
//   vellum-bench-map --ten-million --dir /var/tmp/map   # 10M keys, LMDB store
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "memory_use.h"
#include "vellum/indexes/authenticated_map.h"
#include "vellum/indexes/node_store.h"
#include "vellum/indexes/view_store.h"
#include "vellum/merkle/map_proof.h"

namespace vellum {
namespace {

using Clock = std::chrono::steady_clock;
using indexes::AuthenticatedMap;
using indexes::MapMutation;
using indexes::MapVersion;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct Options {
  std::uint64_t keys = 1'000'000;
  bool ten_million = false;
  bool aggregate = false;
  std::uint64_t load_batch = 10'000;
  std::uint64_t batch = 1'000;
  std::uint64_t batches = 100;
  std::uint64_t samples = 2'000;
  std::uint64_t seed = 1;
  std::string dir;  // LMDB view store; empty: in memory
  size_t page_items = indexes::kDefaultMaxPageItems;
};

class Gen {
 public:
  explicit Gen(std::uint64_t seed) : rng_(seed) {}
  std::string Key() {  // 16..32 random bytes
    std::string k(16 + rng_() % 17, '\0');
    for (char& c : k) c = static_cast<char>(rng_());
    return k;
  }
  std::string Value() {
    std::string v(100, '\0');
    for (size_t i = 0; i < v.size(); i += 8) {
      const std::uint64_t x = rng_();
      for (size_t j = 0; j < 8 && i + j < v.size(); ++j) v[i + j] = static_cast<char>(x >> (8 * j));
    }
    return v;
  }
  std::int64_t Aggregate() { return static_cast<std::int64_t>(rng_() % 2'000'001) - 1'000'000; }
  std::uint64_t Below(std::uint64_t n) { return rng_() % n; }

 private:
  std::mt19937_64 rng_;
};

std::vector<MapMutation> RandomBatch(Gen& g, std::uint64_t n) {
  std::vector<MapMutation> batch;
  batch.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) batch.push_back(MapMutation::Put(g.Key(), g.Value(), g.Aggregate()));
  return batch;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Times `prove` and `verify` over `samples` queries; prints p50/p99 and sizes.
void ProofRow(const char* name, std::uint64_t samples,
              const std::function<Result<merkle::MapProof>(std::uint64_t)>& prove,
              const std::function<Status(std::uint64_t, const merkle::MapProof&)>& verify) {
  std::vector<double> gen_us;
  std::vector<double> ver_us;
  std::vector<double> bytes;
  for (std::uint64_t i = 0; i < samples; ++i) {
    const auto t0 = Clock::now();
    Result<merkle::MapProof> p = prove(i);
    const auto t1 = Clock::now();
    if (!p.ok()) {
      std::fprintf(stderr, "%s: prove failed: %s\n", name, p.status().ToString().c_str());
      std::exit(1);
    }
    const std::string wire = p->Encode();
    Result<merkle::MapProof> back = merkle::MapProof::Decode(wire);
    const auto t2 = Clock::now();
    const Status s = back.ok() ? verify(i, *back) : back.status();
    const auto t3 = Clock::now();
    if (!s.ok()) {
      std::fprintf(stderr, "%s: verify failed: %s\n", name, s.ToString().c_str());
      std::exit(1);
    }
    gen_us.push_back(Seconds(t0, t1) * 1e6);
    ver_us.push_back(Seconds(t2, t3) * 1e6);
    bytes.push_back(static_cast<double>(wire.size()));
  }
  std::printf("%-12s prove p50 %8.1f us  p99 %8.1f us | verify p50 %8.1f us  p99 %8.1f us | bytes p50 %7.0f  max %7.0f\n",
              name, Percentile(gen_us, 0.5), Percentile(gen_us, 0.99), Percentile(ver_us, 0.5),
              Percentile(ver_us, 0.99), Percentile(bytes, 0.5), Percentile(bytes, 1.0));
}

int Run(const Options& o) {
  const std::uint64_t target = o.ten_million ? 10'000'000 : o.keys;
  std::unique_ptr<indexes::ViewStore> store;
  if (o.dir.empty()) {
    store = indexes::NewMemoryViewStore();
  } else {
    std::filesystem::remove_all(o.dir);
    auto opened = indexes::OpenLmdbViewStore(o.dir, {});
    if (!opened.ok()) {
      std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
      return 1;
    }
    store = std::move(opened).value();
  }
  const merkle::MapKind kind = o.aggregate ? merkle::MapKind::kInt64Aggregate : merkle::MapKind::kPlain;
  auto map_or = AuthenticatedMap::Create({kind, o.page_items, &store->nodes(), &store->values()});
  if (!map_or.ok()) return 1;
  const AuthenticatedMap& map = *map_or;
  Gen g(o.seed);
  std::printf("map kind %s, fanout %zu, %llu keys of 16-32 random bytes, 100-byte values, %s\n",
              o.aggregate ? "int64-aggregate" : "plain", o.page_items,
              static_cast<unsigned long long>(target),
              o.dir.empty() ? "pages in memory, every version kept" : "LMDB view store, flushed versions kept");
  // Each batch is committed as the next block; only the newest state is pinned.
  std::uint64_t height = 0;
  std::shared_ptr<const void> pin;
  auto commit = [&](const MapVersion& version) { pin = store->Commit(height++, std::to_string(version.root), {version.root}); };

  // Load, in batches of load_batch.
  MapVersion v = map.Empty();
  double load_s = 0;
  while (v.count() < target) {
    std::vector<MapMutation> batch = RandomBatch(g, std::min(o.load_batch, target - v.count()));
    const auto t0 = Clock::now();
    auto next = map.Apply(v, std::move(batch));
    if (!next.ok()) {
      std::fprintf(stderr, "load: %s\n", next.status().ToString().c_str());
      return 1;
    }
    commit(*next);
    load_s += Seconds(t0, Clock::now());
    v = *next;
  }
  std::printf("load         %10.0f puts/s (batches of %llu)\n", static_cast<double>(v.count()) / load_s,
              static_cast<unsigned long long>(o.load_batch));

  // Batch apply: random new keys, timing Apply only; pages written per batch.
  std::vector<double> batch_ms;
  std::uint64_t page_bytes = 0;
  std::uint64_t pages = 0;
  double apply_s = 0;
  if (!store->Flush().ok()) return 1;
  const indexes::ViewStoreStats before = store->stats();
  for (std::uint64_t b = 0; b < o.batches; ++b) {
    std::vector<MapMutation> batch = RandomBatch(g, o.batch);
    const std::uint64_t first_new = store->stats().pages + 1;
    const auto t0 = Clock::now();
    auto next = map.Apply(v, std::move(batch));
    if (next.ok()) commit(*next);
    const double s = Seconds(t0, Clock::now());
    if (!next.ok()) {
      std::fprintf(stderr, "apply: %s\n", next.status().ToString().c_str());
      return 1;
    }
    v = *next;
    apply_s += s;
    batch_ms.push_back(s * 1e3);
    const std::uint64_t last_new = store->stats().pages;
    for (std::uint64_t id = first_new; id <= last_new; ++id) {
      auto page = store->nodes().Get(id);
      if (!page.ok()) break;  // flushed over already
      page_bytes += indexes::EncodedMapNodeSize(**page);
      ++pages;
    }
  }
  if (!store->Flush().ok()) return 1;
  const indexes::ViewStoreStats after = store->stats();
  const double puts = static_cast<double>(o.batch * o.batches);
  std::printf("apply        %10.0f puts/s (batches of %llu at %llu keys; batch p50 %.2f ms, p99 %.2f ms)\n",
              puts / apply_s, static_cast<unsigned long long>(o.batch), static_cast<unsigned long long>(v.count()),
              Percentile(batch_ms, 0.5), Percentile(batch_ms, 0.99));
  std::printf("storage      %10.0f bytes of new pages per update (%.0f pages per batch)\n",
              static_cast<double>(page_bytes) / puts, static_cast<double>(pages) / static_cast<double>(o.batches));
  if (!o.dir.empty()) {
    std::printf("flushed      %10.0f bytes of pages and values per update written (%llu flushes)\n",
                static_cast<double>(after.flushed_bytes - before.flushed_bytes) / puts,
                static_cast<unsigned long long>(after.flushes - before.flushes));
  }

  // Proofs. Query keys: existing ones by rank, absent ones at random.
  std::vector<std::string> present;
  std::vector<std::string> absent;
  for (std::uint64_t i = 0; i < o.samples; ++i) {
    auto e = map.AtRank(v, g.Below(v.count()));
    if (!e.ok()) return 1;
    present.push_back(e->entry->key);
    absent.push_back(g.Key() + "~");
  }
  const merkle::Hash root = v.root_hash;
  ProofRow("get", o.samples, [&](std::uint64_t i) { return map.ProveGet(v, present[i]); },
           [&](std::uint64_t i, const merkle::MapProof& p) {
             auto r = merkle::VerifyMapGet(root, present[i], p);
             return r.ok() && !r->entry.has_value() ? Internal("not found") : r.status();
           });
  ProofRow("absence", o.samples, [&](std::uint64_t i) { return map.ProveGet(v, absent[i]); },
           [&](std::uint64_t i, const merkle::MapProof& p) { return merkle::VerifyMapGet(root, absent[i], p).status(); });
  for (std::uint64_t limit : {100, 1000}) {
    const std::uint64_t n = std::min<std::uint64_t>(o.samples, std::max<std::uint64_t>(10, o.samples / (limit / 10)));
    auto query = [&, limit](std::uint64_t i) { return merkle::MapRangeQuery{present[i], std::nullopt, limit, false}; };
    ProofRow(limit == 100 ? "range 100" : "range 1000", n, [&](std::uint64_t i) { return map.ProveRange(v, query(i)); },
             [&](std::uint64_t i, const merkle::MapProof& p) { return merkle::VerifyMapRange(root, query(i), p).status(); });
  }
  auto lo_hi = [&](std::uint64_t i) {
    std::string a = present[i];
    std::string b = present[(i + 1) % present.size()];
    if (b < a) std::swap(a, b);
    return std::make_pair(a, b);
  };
  ProofRow("summary", o.samples,
           [&](std::uint64_t i) {
             auto [a, b] = lo_hi(i);
             return map.ProveSummary(v, a, b);
           },
           [&](std::uint64_t i, const merkle::MapProof& p) {
             auto [a, b] = lo_hi(i);
             return merkle::VerifyMapSummary(root, a, b, p).status();
           });
  // Reads with values, one walk per range.
  {
    const auto t0 = Clock::now();
    std::uint64_t n = 0;
    for (std::uint64_t i = 0; i < 100; ++i) {
      auto r = map.Range(v, {present[i % present.size()], std::nullopt, 1000, false});
      if (!r.ok()) return 1;
      n += r->entries.size();
    }
    std::printf("range read   %10.0f entries/s (limit 1000, with values)\n", static_cast<double>(n) / Seconds(t0, Clock::now()));
  }
  const indexes::ViewStoreStats end = store->stats();
  std::printf("memory       %llu pages, %llu values handed out, %llu pages dropped by flushes; %s\n",
              static_cast<unsigned long long>(end.pages), static_cast<unsigned long long>(end.values),
              static_cast<unsigned long long>(end.dropped_pages), MemoryUse().c_str());
  return 0;
}

}  // namespace
}  // namespace vellum

int main(int argc, char** argv) {
  vellum::Options o;
  CLI::App app{"Authenticated map benchmark"};
  app.add_option("--keys", o.keys, "keys to load");
  app.add_flag("--ten-million", o.ten_million, "load 10M keys instead");
  app.add_flag("--aggregate", o.aggregate, "int64-aggregate map instead of plain");
  app.add_option("--load-batch", o.load_batch, "keys per batch while loading");
  app.add_option("--batch", o.batch, "keys per measured batch");
  app.add_option("--batches", o.batches, "measured batches");
  app.add_option("--samples", o.samples, "proofs per kind");
  app.add_option("--seed", o.seed, "random seed");
  app.add_option("--page-items", o.page_items, "max items per page (the format's M; even, 4..256)");
  app.add_option("--dir", o.dir, "keep pages in an LMDB view store in this directory (emptied first)");
  CLI11_PARSE(app, argc, argv);
  return vellum::Run(o);
}
