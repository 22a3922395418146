#include "vellum/indexes/view_store.h"

#include <atomic>
#include <map>
#include <mutex>
#include <chrono>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "vellum/indexes/authenticated_map.h"
#include "vellum/testing/temp_dir.h"

namespace vellum::indexes {
namespace {

AuthenticatedMap MapOn(ViewStore& store) {
  auto map = AuthenticatedMap::Create(MapOptions{merkle::MapKind::kPlain, kDefaultMaxPageItems, &store.nodes(), &store.values()});
  REQUIRE(map.ok());
  return std::move(map).value();
}

std::string RecordOf(const MapVersion& v) { return std::to_string(v.root) + ":" + merkle::HashHex(v.root_hash); }

MapVersion ParseRecord(const std::string& bytes) {
  MapVersion v;
  v.root = std::stoull(bytes.substr(0, bytes.find(':')));
  return v;
}

// Applies `blocks` batches of random puts, committing each as a height; the
// pins of the committed states go to `pins` if given.
std::vector<MapVersion> Fill(ViewStore& store, AuthenticatedMap& map, std::map<std::string, std::string>& model,
                             int blocks, std::uint64_t first_height, MapVersion base, std::mt19937_64& rng,
                             std::vector<std::shared_ptr<const void>>* pins = nullptr,
                             std::vector<std::map<std::string, std::string>>* models = nullptr) {
  std::vector<MapVersion> versions;
  for (int b = 0; b < blocks; ++b) {
    std::vector<MapMutation> batch;
    for (int i = 0; i < 50; ++i) {
      std::string key = "k" + std::to_string(rng() % 2000);
      std::string value = "v" + std::to_string(rng());
      model[key] = value;
      batch.push_back(MapMutation::Put(key, value));
    }
    auto next = map.Apply(base, std::move(batch));
    REQUIRE(next.ok());
    base = *next;
    auto pin = store.Commit(first_height + static_cast<std::uint64_t>(b), RecordOf(base), {base.root});
    if (pins != nullptr) pins->push_back(std::move(pin));
    if (models != nullptr) models->push_back(model);
    versions.push_back(base);
  }
  return versions;
}

void CheckContent(AuthenticatedMap& map, const MapVersion& v, const std::map<std::string, std::string>& model) {
  CHECK(v.count() == model.size());
  for (const auto& [k, value] : model) {
    auto got = map.Get(v, k);
    REQUIRE(got.ok());
    REQUIRE(got->entry.has_value());
    CHECK(got->entry->value == value);
  }
}

TEST_CASE("LMDB view store: lazy flush, reopen, records, rollback", "[indexes][view_store]") {
  testing::TempDir dir;
  std::mt19937_64 rng(3);
  std::map<std::string, std::string> model;
  MapVersion last;
  {
    auto store = OpenLmdbViewStore(dir.path(), {.flush_every_blocks = 8, .page_cache_entries = 64});
    REQUIRE(store.ok());
    auto map = MapOn(**store);
    std::vector<std::shared_ptr<const void>> pins;
    auto versions = Fill(**store, map, model, 30, 0, map.Empty(), rng, &pins);
    last = versions.back();
    CheckContent(map, last, model);
    // A block that is rolled back leaves no trace.
    auto doomed = map.Apply(last, {MapMutation::Put("doomed", "x")});
    REQUIRE(doomed.ok());
    (*store)->Rollback();
    REQUIRE((*store)->Flush().ok());
    const auto stats = (*store)->stats();
    CHECK(stats.unflushed_pages == 0);
    CHECK(stats.flushes >= 1);
    CHECK((*store)->LatestRecord()->value().height == 29);
    // Older versions stay readable while pinned.
    CHECK(map.Get(versions[3], "doomed")->entry.has_value() == false);
  }
  auto store = OpenLmdbViewStore(dir.path(), {.flush_every_blocks = 8, .page_cache_entries = 16});
  REQUIRE(store.ok());
  auto latest = (*store)->LatestRecord();
  REQUIRE(latest.ok());
  REQUIRE(latest->has_value());
  CHECK((*latest)->height == 29);
  auto map = MapOn(**store);
  MapVersion reopened = ParseRecord((*latest)->bytes);
  reopened.digest = last.digest;
  reopened.root_hash = last.root_hash;
  CheckContent(map, reopened, model);
  CHECK(map.Get(reopened, "doomed")->entry.has_value() == false);
  // Ids continue after the flushed ones.
  auto next = Fill(**store, map, model, 3, 30, reopened, rng);
  CheckContent(map, next.back(), model);
  CHECK((*store)->DurableRecordAtOrBefore(100)->value().height == 29);
  CHECK_FALSE((*store)->DurableRecordAtOrBefore(100)->value().height == 32);
  REQUIRE((*store)->Flush().ok());
  CHECK((*store)->DurableRecordAtOrBefore(100)->value().height == 32);
  CHECK((*store)->DurableRecordAtOrBefore(31)->value().height <= 31);
}

TEST_CASE("A crash loses only unflushed state, and the durable record is complete", "[indexes][view_store]") {
  testing::TempDir dir;
  std::mt19937_64 rng(5);
  std::map<std::string, std::string> model;
  {
    auto store = OpenLmdbViewStore(dir.path(), {.flush_every_blocks = 0});
    REQUIRE(store.ok());
    auto map = MapOn(**store);
    Fill(**store, map, model, 5, 0, map.Empty(), rng);
    REQUIRE((*store)->Flush().ok());
    // Five more blocks that never get flushed: simulate losing them by
    // reading only what is durable.
    auto more_model = model;
    auto versions = Fill(**store, map, more_model, 5, 5, ParseRecord((*store)->LatestRecord()->value().bytes), rng);
    (void)versions;
    auto durable = (*store)->DurableRecordAtOrBefore(UINT64_MAX);
    REQUIRE(durable->has_value());
    CHECK((*durable)->height == 4);
  }
  // (The destructor flushes what it can; reopen sees a complete record.)
  auto store = OpenLmdbViewStore(dir.path(), {});
  REQUIRE(store.ok());
  auto latest = (*store)->LatestRecord();
  REQUIRE(latest->has_value());
  CHECK(((*latest)->height == 4 || (*latest)->height == 9));
}

TEST_CASE("A flush writes only what the flushed state reaches, and pinned states keep the rest readable",
          "[indexes][view_store]") {
  testing::TempDir dir;
  std::mt19937_64 rng(11);
  std::map<std::string, std::string> model;
  std::vector<std::map<std::string, std::string>> models;
  std::vector<std::shared_ptr<const void>> pins;
  auto store = OpenLmdbViewStore(dir.path(), {.flush_every_blocks = 0, .page_cache_entries = 0});
  REQUIRE(store.ok());
  auto map = MapOn(**store);
  // 20 blocks of 50 puts over 2,000 keys: later blocks supersede pages and
  // values of earlier ones.
  auto versions = Fill(**store, map, model, 20, 0, map.Empty(), rng, &pins, &models);
  const std::uint64_t pages = (*store)->stats().pages;
  const std::uint64_t values = (*store)->stats().values;
  REQUIRE((*store)->Flush().ok());
  ViewStoreStats stats = (*store)->stats();
  CHECK(stats.unflushed_pages == 0);
  CHECK(stats.dropped_pages > 0);
  CHECK(stats.dropped_pages < pages);
  CHECK(stats.dropped_values > 0);
  CHECK(stats.dropped_values < values);
  CHECK(stats.pinned_pages == stats.dropped_pages);
  // Every version is still readable and complete while its pin lives.
  for (size_t i = 0; i < versions.size(); ++i) CheckContent(map, versions[i], models[i]);
  // Unpinned, the dropped pages go at the next commit; intermediate versions
  // are gone, the flushed one stays whole.
  pins.clear();
  auto more = Fill(**store, map, model, 1, 20, versions.back(), rng);
  CHECK((*store)->stats().pinned_pages == 0);
  CHECK(map.Get(versions[3], models[3].begin()->first).status().code() == StatusCode::kNotFound);
  CheckContent(map, versions.back(), models.back());
  CheckContent(map, more.back(), model);
  // The dropped pages were never written: a reopened store has exactly the
  // flushed state's pages, and its content.
  REQUIRE((*store)->Flush().ok());
  store->reset();
  auto reopened = OpenLmdbViewStore(dir.path(), {.page_cache_entries = 0});
  REQUIRE(reopened.ok());
  auto map2 = MapOn(**reopened);
  CheckContent(map2, more.back(), model);
  REQUIRE(map2.CheckInvariants(more.back()).ok());
}

TEST_CASE("Ids continue after a reopen exactly as without one, even if the newest value was dropped",
          "[indexes][view_store]") {
  testing::TempDir dir;
  auto memory = NewMemoryViewStore();
  auto mem_map = MapOn(*memory);
  const std::vector<std::vector<MapMutation>> blocks = {
      {MapMutation::Put("a", "1"), MapMutation::Put("b", "2"), MapMutation::Put("c", "3")},
      {MapMutation::Put("x", "4")},
      {MapMutation::Delete("x")},  // the newest value ref is now unreached
  };
  MapVersion mem_v = mem_map.Empty();
  MapVersion lmdb_v;
  {
    auto store = OpenLmdbViewStore(dir.path(), {.flush_every_blocks = 0});
    REQUIRE(store.ok());
    auto map = MapOn(**store);
    lmdb_v = map.Empty();
    for (size_t h = 0; h < blocks.size(); ++h) {
      lmdb_v = map.Apply(lmdb_v, blocks[h]).value();
      (*store)->Commit(h, RecordOf(lmdb_v), {lmdb_v.root});
      mem_v = mem_map.Apply(mem_v, blocks[h]).value();
      memory->Commit(h, RecordOf(mem_v), {mem_v.root});
    }
    REQUIRE((*store)->Flush().ok());
    CHECK((*store)->stats().dropped_values == 0);  // the newest value is kept for the id counter
  }
  auto store = OpenLmdbViewStore(dir.path(), {});
  REQUIRE(store.ok());
  auto map = MapOn(**store);
  lmdb_v = map.Apply(lmdb_v, {MapMutation::Put("y", "5")}).value();
  mem_v = mem_map.Apply(mem_v, {MapMutation::Put("y", "5")}).value();
  CHECK(lmdb_v.root == mem_v.root);
  CHECK((*store)->stats().pages == memory->stats().pages);
  CHECK((*store)->stats().values == memory->stats().values);
  CHECK(map.Get(lmdb_v, "y")->entry->value == "5");
}

TEST_CASE("Unflushed bytes are counted exactly and start a background flush at the bound",
          "[indexes][view_store]") {
  testing::TempDir dir;
  std::mt19937_64 rng(11);
  // Only the byte bound can start a background flush here.
  auto store = OpenLmdbViewStore(
      dir.path(), {.flush_every_blocks = 0, .flush_every_pages = 0, .flush_every_bytes = 256 * 1024});
  REQUIRE(store.ok());
  auto map = MapOn(**store);
  MapVersion v = map.Empty();
  // Bytes a block adds: its values plus its new pages, encoded. A
  // background flush that ends while the block is applied takes bytes out
  // of the count; the exact check is for the blocks no flush overlapped
  // (stats() reads the count and the flush counter under one lock).
  int exact_checks = 0;
  auto put_block = [&](std::uint64_t height, size_t value_bytes) {
    const auto before = (*store)->stats();
    std::vector<MapMutation> batch;
    std::uint64_t value_total = 0;
    for (std::uint64_t i = 0; i < 4; ++i) {
      // Distinct keys and new values: every put stores its value.
      std::string value = std::to_string(height) + "/" + std::to_string(i);
      value.resize(value_bytes, 'v');
      value_total += value.size();
      batch.push_back(MapMutation::Put("k" + std::to_string(rng() % 125 * 4 + i), std::move(value)));
    }
    auto next = map.Apply(v, std::move(batch));
    REQUIRE(next.ok());
    const auto after = (*store)->stats();
    std::uint64_t page_total = 0;
    for (NodeId id = before.pages + 1; id <= after.pages; ++id) {
      page_total += EncodedMapNodeSize(**(*store)->nodes().Get(id));
    }
    if (after.flushes == before.flushes) {
      CHECK(after.unflushed_bytes - before.unflushed_bytes == value_total + page_total);
      ++exact_checks;
    }
    v = *next;
    (*store)->Commit(height, RecordOf(v), {v.root});
  };
  // Below the bound nothing is flushed in the background.
  put_block(0, 1000);
  put_block(1, 1000);
  CHECK((*store)->stats().flushes == 0);
  CHECK(exact_checks == 2);
  // A rolled-back block takes its bytes back out.
  const std::uint64_t committed_bytes = (*store)->stats().unflushed_bytes;
  auto doomed = map.Apply(v, {MapMutation::Put("doomed", std::string(5000, 'x'))});
  REQUIRE(doomed.ok());
  CHECK((*store)->stats().unflushed_bytes > committed_bytes + 5000);
  (*store)->Rollback();
  CHECK((*store)->stats().unflushed_bytes == committed_bytes);
  // Past the bound a flush starts on its own, and empties the window.
  for (std::uint64_t h = 2; h < 12; ++h) put_block(h, 10000);
  for (int i = 0; i < 3000 && (*store)->stats().flushes == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE((*store)->stats().flushes >= 1);
  REQUIRE((*store)->Flush().ok());
  CHECK((*store)->stats().unflushed_bytes == 0);
  CHECK((*store)->stats().unflushed_pages == 0);
}

TEST_CASE("Memory view store behaves like the LMDB one", "[indexes][view_store]") {
  auto store = NewMemoryViewStore();
  std::mt19937_64 rng(9);
  std::map<std::string, std::string> model;
  auto map = MapOn(*store);
  auto versions = Fill(*store, map, model, 10, 0, map.Empty(), rng);
  CheckContent(map, versions.back(), model);
  const auto before = store->stats().pages;
  REQUIRE(map.Apply(versions.back(), {MapMutation::Put("zzz", "1")}).ok());
  store->Rollback();
  CHECK(store->stats().pages == before);
  CHECK(store->DurableRecordAtOrBefore(4)->value().height == 4);
  CHECK_FALSE(store->DurableRecordAtOrBefore(0)->value().height != 0);
}

TEST_CASE("Readers on other threads find every page while flushes move pages to the cache and to LMDB",
          "[indexes][view_store]") {
  // Small flush interval and cache: pages leave the unflushed window, enter
  // the cache and are evicted from it while two readers read and prove the
  // newest committed version.
  testing::TempDir dir;
  auto store = OpenLmdbViewStore(dir.path(), {.flush_every_blocks = 2, .page_cache_entries = 32});
  REQUIRE(store.ok());
  auto map = MapOn(**store);
  std::mutex mu;
  MapVersion latest = map.Empty();
  std::vector<std::shared_ptr<const void>> pins;  // every committed state stays readable
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::vector<std::string> errors;
  auto reader = [&](std::uint64_t seed) {
    std::mt19937_64 r(seed);
    while (!done.load()) {
      MapVersion v;
      {
        std::lock_guard lock(mu);
        v = latest;
      }
      const std::string key = "k" + std::to_string(r() % 2000);
      auto got = map.Get(v, key);
      auto proof = map.ProveGet(v, key);
      std::string error;
      if (!got.ok() || !proof.ok()) {
        error = (!got.ok() ? got.status() : proof.status()).ToString();
      } else if (auto checked = merkle::VerifyMapGet(v.root_hash, key, *proof); !checked.ok()) {
        error = checked.status().ToString();
      } else if (checked->entry.has_value() != got->entry.has_value() ||
                 (got->entry.has_value() && checked->entry->value != got->entry->value)) {
        error = "read and proof disagree on " + key;
      }
      if (!error.empty()) {
        std::lock_guard lock(mu);
        errors.push_back(std::move(error));
        return;
      }
      reads.fetch_add(1);
    }
  };
  std::thread a(reader, 1);
  std::thread b(reader, 2);
  std::mt19937_64 rng(11);
  MapVersion base = map.Empty();
  for (std::uint64_t h = 0; h < 60; ++h) {
    std::vector<MapMutation> batch;
    for (int i = 0; i < 50; ++i) batch.push_back(MapMutation::Put("k" + std::to_string(rng() % 2000), std::to_string(rng())));
    auto next = map.Apply(base, std::move(batch));
    if (!next.ok()) break;
    base = *next;
    auto pin = (*store)->Commit(h, RecordOf(base), {base.root});
    {
      std::lock_guard lock(mu);
      pins.push_back(std::move(pin));
      latest = base;
    }
    // As in the views test: the flusher may merge requests when it falls
    // behind, so these waits make sure flushes happen while the readers run.
    if (h % 10 == 9) REQUIRE((*store)->Flush().ok());
  }
  // Let the readers see the last flushes too.
  REQUIRE((*store)->Flush().ok());
  while (reads.load() < 2000 && errors.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  done = true;
  a.join();
  b.join();
  INFO((errors.empty() ? std::string() : errors.front()));
  CHECK(errors.empty());
  CHECK(base.count() > 1000);
  CHECK((*store)->stats().flushes >= 6);
}

TEST_CASE("Read-only view store opens an existing store and refuses writes", "[indexes][view_store]") {
  testing::TempDir dir;
  CHECK(OpenLmdbViewStore(dir.Sub("none"), {.read_only = true}).status().code() == StatusCode::kNotFound);
  {
    auto store = OpenLmdbViewStore(dir.path(), {});
    REQUIRE(store.ok());
    auto map = MapOn(**store);
    auto v = map.Apply(map.Empty(), {MapMutation::Put("a", "1")});
    REQUIRE(v.ok());
    (*store)->Commit(0, RecordOf(*v), {v->root});
  }
  auto ro = OpenLmdbViewStore(dir.path(), {.read_only = true});
  REQUIRE(ro.ok());
  CHECK((*ro)->LatestRecord()->value().height == 0);
  CHECK((*ro)->values().Put("x").status().code() == StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace vellum::indexes

namespace vellum::indexes {
namespace {

TEST_CASE("A failing flush is reported, retried on request, and does not spin", "[indexes][view_store]") {
  testing::TempDir dir;
  auto store = OpenLmdbViewStore(dir.path(), {.map_size = 1 << 20, .flush_every_blocks = 1});
  REQUIRE(store.ok());
  auto map = MapOn(**store);
  auto v = map.Apply(map.Empty(), {MapMutation::Put("a", std::string(600 << 10, 'x'))});
  REQUIRE(v.ok());
  (*store)->Commit(0, RecordOf(*v), {v->root});
  auto w = map.Apply(*v, {MapMutation::Put("b", std::string(600 << 10, 'y'))});
  REQUIRE(w.ok());
  (*store)->Commit(1, RecordOf(*w), {w->root});
  const Status first = (*store)->Flush();
  CHECK(first.code() == StatusCode::kResourceExhausted);
  // Nothing was lost: the unflushed state is still readable from memory.
  CHECK(map.Get(*w, "b")->entry->value.size() == (600u << 10));
  // A second request retries and reports again, promptly.
  const auto start = std::chrono::steady_clock::now();
  CHECK((*store)->Flush().code() == StatusCode::kResourceExhausted);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  // The background flusher is idle between retries (about one per second),
  // not spinning on the error.
  const auto failures_before = (*store)->stats().failed_flushes;
  CHECK(failures_before >= 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK((*store)->stats().failed_flushes <= failures_before + 3);
}

}  // namespace
}  // namespace vellum::indexes
