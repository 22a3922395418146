// Views: the versioned state of every authenticated map of one ledger, block
// by block, and the catalog whose root is each block's STATE ROOT
// (docs/FORMAT.md, "Catalog" and "State record"; DESIGN.md, "Data models
// as key layouts").
//
// Every data model stores its data in maps named by a MapId (model, name,
// part). After block h the state is a StateView: the catalog version and, for
// every map, its MapSpec (kind, schema hash; fixed when the map is created)
// and its MapVersion. The catalog maps CatalogKey(id) to the CatalogEntry
// (kind, map root, count, schema hash) of every map, so one catalog proof
// (merkle::VerifyCatalogEntry) ties a map root to the state root in the block
// header.
//
// Applying a block is two-phase, because the state root must go into the
// block header before the block is written to the journal, and the journal
// write can fail:
//   PrepareBlock(h, changes) -> state root   (pages written, not committed)
//   CommitBlock(h)   after the journal write: ViewStore::CommitThrough with
//                    the state record, the state becomes Current()
//   AbortBlock(h)    if the journal write failed: ViewStore::RollbackTo, the
//                    current state is unchanged and block h can be prepared again.
// ApplyBlock(h, changes) = PrepareBlock + CommitBlock (replay, tests).
// Blocks may be prepared ahead: block h+1 on top of the prepared block h
// (Tip()), so a writer applies h+1 while h is written to the journal. They
// commit in height order; aborting block h also aborts every block prepared
// after it, which was built on it.
//
// Determinism: the state root after block h is a pure function of the
// sequence of blocks 0..h (each map's batches, in order) and of
// max_page_items: replaying the same blocks into fresh Views gives the same
// state roots byte for byte (the RebuildViews property). Maps are applied in
// MapId order, so node ids are deterministic too. The same content reached
// through other batchings may give other roots (authenticated_map.h).
//
// Thread-safety: one writer thread calls PrepareBlock/CommitBlock/AbortBlock/
// ApplyBlock/Tip(); any number of threads may call Current(), At() and read or prove
// through MapFor()/CatalogMap()/ProveCatalogEntry() concurrently with it (the
// ViewStore serializes its own reads and writes). A StateView is immutable.
#ifndef VELLUM_INDEXES_VIEWS_H_
#define VELLUM_INDEXES_VIEWS_H_

#include <compare>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/indexes/authenticated_map.h"
#include "vellum/indexes/view_store.h"
#include "vellum/merkle/catalog.h"
#include "vellum/merkle/hasher.h"
#include "vellum/merkle/map_proof.h"

namespace vellum::indexes {

// The name of one map. Ordered as its catalog key is (field by field, strings
// by unsigned bytes).
struct MapId {
  std::string model;  // "kv", "doc", "rel", "graph", "ts", ...
  std::string name;   // namespace, collection, table, ...
  std::string part;   // "" for the primary map, else an index name, ...
  auto operator<=>(const MapId&) const = default;
  bool operator==(const MapId&) const = default;
};

// CatalogKey(model, name, part). InvalidArgument if longer than 4 KiB.
Result<std::string> CatalogKeyOf(const MapId& id);

// Fixed when a map is created.
struct MapSpec {
  merkle::MapKind kind = merkle::MapKind::kPlain;
  merkle::Hash schema_hash{};  // merkle::kZeroHash: no schema
  bool operator==(const MapSpec&) const = default;
};

// One map's batch in one block. The first change to a map creates it with
// `spec` (even with no mutations); later changes must carry the same spec.
struct MapChange {
  MapId id;
  MapSpec spec;
  std::vector<MapMutation> mutations;
};

struct MapState {
  MapSpec spec;
  MapVersion version;
};

// What the catalog holds for a map in a given state.
merkle::CatalogEntry CatalogEntryOf(const MapState& map);

// The immutable state after one block (or before block 0).
class StateView {
 public:
  // nullopt for the empty state before block 0.
  std::optional<std::uint64_t> height() const { return height_; }
  // The height of the block that follows this state.
  std::uint64_t next_height() const { return height_ ? *height_ + 1 : 0; }
  // The catalog root: the block header's state root.
  const merkle::Hash& state_root() const { return catalog_.root_hash; }
  const MapVersion& catalog() const { return catalog_; }
  // Null if the map does not exist in this state.
  const MapState* Find(const MapId& id) const;
  // Every map, in MapId (= catalog key) order.
  const std::map<MapId, MapState>& maps() const { return maps_; }
  // The root page of the catalog and of every map (kNoNode for empty ones):
  // where a walk of every page this state reaches starts.
  std::vector<NodeId> RootPages() const;

 private:
  friend class Views;
  friend struct StateRecordCodec;
  StateView(std::optional<std::uint64_t> height, MapVersion catalog, std::map<MapId, MapState> maps)
      : height_(height), catalog_(catalog), maps_(std::move(maps)) {}

  std::optional<std::uint64_t> height_;
  MapVersion catalog_;
  std::map<MapId, MapState> maps_;
  // Keeps the pages this state reaches readable (ViewStore::Commit).
  std::shared_ptr<const void> pin_;
};

// The storage record of a state (docs/FORMAT.md, "State record"): not
// hashed, written with ViewStore::Commit for every block. Canonical: one
// encoding per (state, max_page_items).
std::string EncodeStateRecord(const StateView& state, size_t max_page_items);
struct DecodedStateRecord {
  size_t max_page_items = 0;
  std::shared_ptr<const StateView> state;  // height() is always set
};
// Strict: InvalidArgument on malformed input (see the format), keys out of
// order, a catalog key that is not (model, name, part), an unknown kind,
// a root page without entries or entries without a root page.
Result<DecodedStateRecord> DecodeStateRecord(std::string_view bytes);

struct ViewsOptions {
  // States kept in memory for At(): the current one and the ones before it.
  // Each keeps the pages it reaches in memory (ViewStore::Commit's pin), so
  // the window bounds what superseded pages cost; older heights are rebuilt
  // from the nearest durable state and the journal.
  size_t recent_states = 64;
  // Page fanout of every map and the catalog (format constant 32; tests use
  // smaller ones). Part of the state's definition: it changes every root.
  size_t max_page_items = kDefaultMaxPageItems;
};

class Views {
 public:
  // Loads the newest record of `store` (store->LatestRecord()), or starts from
  // the empty state before block 0 if there is none. `store` is not owned and
  // must outlive the Views. InvalidArgument on bad options; FailedPrecondition
  // if the record was written with another max_page_items; the decoder's
  // InvalidArgument (as DataLoss) for a corrupt record; store errors as is.
  static Result<std::unique_ptr<Views>> Open(ViewStore* store, ViewsOptions options);

  // Applies block `height` (which must be Tip()->next_height()) and returns
  // its state root, without committing it: every map's batch with one
  // AuthenticatedMap::Apply, in MapId order, then the catalog entries of the
  // touched maps. An empty block keeps the root. The whole batch is validated
  // before anything is written; on any error nothing is left prepared and the
  // store is rolled back. Errors:
  //  - FailedPrecondition: `height` does not follow Tip(), or a change's
  //    spec differs from the map's;
  //  - InvalidArgument: two changes for one map, a catalog key over 4 KiB, an
  //    unknown kind or op, a key over 4 KiB or a value over 1 MiB;
  //  - store errors (pages and values are written here).
  Result<merkle::Hash> PrepareBlock(std::uint64_t height, std::vector<MapChange> changes);
  // Commits the oldest prepared block, which must be `height`:
  // store->CommitThrough(its mark, height, its record); it becomes Current()
  // and joins the At() window. FailedPrecondition if block `height` is not the
  // oldest prepared one.
  Status CommitBlock(std::uint64_t height);
  // Drops the prepared block `height` and every block prepared after it
  // (store->RollbackTo(where the block before it ended)); Current() is
  // unchanged. Does nothing if block `height` is not prepared.
  void AbortBlock(std::uint64_t height);
  // PrepareBlock then CommitBlock.
  Result<merkle::Hash> ApplyBlock(std::uint64_t height, std::vector<MapChange> changes);

  // The newest committed state; never null.
  std::shared_ptr<const StateView> Current() const;
  // The newest prepared state, or Current() if none is prepared: what the
  // next PrepareBlock builds on. For the writer thread; never null.
  std::shared_ptr<const StateView> Tip() const;
  // The committed state after block `height` if it is among the
  // options.recent_states newest; OutOfRange otherwise (older: not in
  // memory; newer: not committed yet).
  Result<std::shared_ptr<const StateView>> At(std::uint64_t height) const;

  // A handle to read and prove a map of kind spec.kind (give it the
  // MapState::version of a StateView). InvalidArgument for an unknown kind.
  Result<AuthenticatedMap> MapFor(const MapSpec& spec) const;
  // A handle to read and prove the catalog (give it StateView::catalog()).
  AuthenticatedMap CatalogMap() const;
  // A proof of the catalog entry of `id` in `state` (presence or absence),
  // for merkle::VerifyCatalogEntry against state.state_root().
  Result<merkle::MapProof> ProveCatalogEntry(const StateView& state, const MapId& id) const;
  // Slow self-check for tests and audits: every map's catalog entry is what
  // the catalog holds, the catalog has no other entries, and every map keeps
  // the invariants of authenticated_map.h. Internal on the first mismatch.
  Status CheckState(const StateView& state) const;

  const ViewsOptions& options() const { return options_; }

 private:
  Views(ViewStore* store, ViewsOptions options, std::shared_ptr<const StateView> current);

  ViewStore* store_;
  const ViewsOptions options_;

  // Writer only: the prepared blocks, ascending heights, each with the
  // store's mark after its puts.
  struct Prepared {
    std::shared_ptr<StateView> state;
    PutMark mark;
  };
  std::deque<Prepared> prepared_;

  mutable std::mutex mu_;  // guards the two below
  std::shared_ptr<const StateView> current_;
  std::deque<std::shared_ptr<const StateView>> recent_;  // committed, ascending heights
};

}  // namespace vellum::indexes

#endif  // VELLUM_INDEXES_VIEWS_H_
