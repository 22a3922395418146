#include "vellum/journal/store.h"

#include <catch2/catch.hpp>

#include "vellum/base/encoding.h"
#include "vellum/testing/temp_dir.h"

namespace vellum::journal {
namespace {

BlockWrite MakeBlock(std::uint64_t height, std::uint64_t first_seq, const std::string& header,
                     const std::vector<std::string>& txs) {
  BlockWrite w;
  w.height = height;
  w.header = header;
  w.first_tx_seq = first_seq;
  for (const auto& t : txs) w.txs.push_back(t);
  return w;
}

TEST_CASE("The store appends blocks in order and reads them back", "[journal][store]") {
  testing::TempDir dir;
  auto store = JournalStore::Open(dir.path(), {});
  REQUIRE(store.ok());
  CHECK_FALSE((*store)->ReadMeta()->has_value());
  LedgerMeta meta{"books", {}, "vk", 42};
  meta.id[0] = 7;
  REQUIRE((*store)->WriteMeta(meta).ok());
  CHECK((*store)->WriteMeta(meta).code() == StatusCode::kAlreadyExists);
  CHECK((*store)->ReadMeta()->value().name == "books");
  CHECK((*store)->ReadMeta()->value().id[0] == 7);

  const std::vector<std::string> txs0 = {"t0", "t1"}, txs1 = {"t2"};
  REQUIRE((*store)->AppendBlock(MakeBlock(0, 0, "h0", txs0)).ok());
  // Gaps and duplicates are refused inside the write transaction.
  CHECK((*store)->AppendBlock(MakeBlock(0, 2, "hx", txs1)).code() == StatusCode::kFailedPrecondition);
  CHECK((*store)->AppendBlock(MakeBlock(2, 2, "hx", txs1)).code() == StatusCode::kFailedPrecondition);
  CHECK((*store)->AppendBlock(MakeBlock(1, 3, "hx", txs1)).code() == StatusCode::kFailedPrecondition);
  REQUIRE((*store)->AppendBlock(MakeBlock(1, 2, "h1", txs1)).ok());

  auto snap = (*store)->Read();
  REQUIRE(snap.ok());
  CHECK((*snap)->block_count() == 2);
  CHECK((*snap)->tx_count() == 3);
  CHECK(*(*snap)->Header(1) == "h1");
  CHECK(*(*snap)->Transaction(2) == "t2");
  CHECK((*snap)->Header(2).status().code() == StatusCode::kNotFound);

  REQUIRE((*store)->PutCheckpoint(2, "note-2").ok());
  CHECK((*store)->PutCheckpoint(2, "note-2").ok());
  CHECK((*store)->PutCheckpoint(2, "other").code() == StatusCode::kFailedPrecondition);
  auto snap2 = (*store)->Read();
  CHECK((*snap2)->LatestCheckpoint()->value().second == "note-2");
  // The older snapshot does not see later writes.
  CHECK_FALSE((*snap)->LatestCheckpoint()->has_value());
}

TEST_CASE("A read-only store refuses writes and a missing one is NotFound", "[journal][store]") {
  testing::TempDir dir;
  CHECK(JournalStore::Open(dir.Sub("none"), {.read_only = true}).status().code() == StatusCode::kNotFound);
  {
    auto store = JournalStore::Open(dir.path(), {});
    REQUIRE(store.ok());
  }
  auto ro = JournalStore::Open(dir.path(), {.read_only = true});
  REQUIRE(ro.ok());
  CHECK((*ro)->AppendBlock(MakeBlock(0, 0, "h", {"t"})).code() == StatusCode::kFailedPrecondition);
  CHECK((*ro)->WriteMeta({}).code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("A full map is RESOURCE_EXHAUSTED and leaves the store as it was", "[journal][store]") {
  testing::TempDir dir;
  auto store = JournalStore::Open(dir.path(), {.map_size = 1 << 20});
  REQUIRE(store.ok());
  const std::vector<std::string> big = {std::string(600 << 10, 'x'), std::string(600 << 10, 'y')};
  Status s = (*store)->AppendBlock(MakeBlock(0, 0, "h", big));
  CHECK(s.code() == StatusCode::kResourceExhausted);
  CHECK((*(*store)->Read())->block_count() == 0);
  CHECK((*store)->AppendBlock(MakeBlock(0, 0, "h", {"small"})).ok());
}

}  // namespace
}  // namespace vellum::journal
