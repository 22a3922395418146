#include "vellum/indexes/views.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "vellum/base/encoding.h"

namespace vellum::indexes {
namespace {

constexpr std::uint8_t kStateRecordVersion = 1;

bool KnownKind(merkle::MapKind kind) {
  return kind == merkle::MapKind::kPlain || kind == merkle::MapKind::kInt64Aggregate;
}

bool HasAggregate(merkle::MapKind kind) { return kind == merkle::MapKind::kInt64Aggregate; }

bool ValidFanout(size_t m) { return m >= 4 && m <= 256 && m % 2 == 0; }

std::string Describe(const MapId& id) { return "map (" + id.model + ", " + id.name + ", " + id.part + ")"; }

// u64 root page id || hash(32) || u64 count [|| i128 sum || i64 min || i64 max].
void PutVersion(ByteWriter* w, merkle::MapKind kind, const MapVersion& v) {
  w->U64(v.root);
  w->Fixed(merkle::HashView(v.digest.hash));
  w->U64(v.digest.count);
  if (HasAggregate(kind)) {
    const auto sum = static_cast<unsigned __int128>(v.digest.aggregate.sum);
    w->U64(static_cast<std::uint64_t>(sum >> 64));
    w->U64(static_cast<std::uint64_t>(sum));
    w->I64(v.digest.aggregate.min);
    w->I64(v.digest.aggregate.max);
  }
}

// Reads what PutVersion wrote and recomputes the root hash. An empty map must
// be exactly (no page, the empty digest); a page must hold entries.
MapVersion GetVersion(ByteReader* r, merkle::MapKind kind) {
  MapVersion v;
  v.root = r->U64();
  const std::string_view hash = r->Fixed(merkle::kHashSize);
  if (hash.size() == merkle::kHashSize) std::copy(hash.begin(), hash.end(), v.digest.hash.begin());
  v.digest.count = r->U64();
  if (HasAggregate(kind)) {
    const std::uint64_t hi = r->U64();
    const std::uint64_t lo = r->U64();
    v.digest.aggregate.sum = static_cast<merkle::Int128>((static_cast<unsigned __int128>(hi) << 64) | lo);
    v.digest.aggregate.min = r->I64();
    v.digest.aggregate.max = r->I64();
  }
  if (!r->ok()) return v;
  if (v.root == kNoNode) {
    if (!(v.digest == merkle::MapDigest{})) r->Fail("an empty map with a non-empty digest");
    v.root_hash = merkle::MapRootHash(kind, nullptr);
  } else {
    if (v.digest.count == 0) r->Fail("a root page without entries");
    v.root_hash = merkle::MapRootHash(kind, &v.digest);
  }
  return v;
}

Status ValidateMutation(const MapId& id, const MapMutation& m) {
  if (m.op != MapMutation::Op::kPut && m.op != MapMutation::Op::kDelete) {
    return InvalidArgument(Describe(id) + ": unknown mutation op " + std::to_string(static_cast<int>(m.op)));
  }
  if (m.key.size() > merkle::kMaxMapKeySize) {
    return InvalidArgument(Describe(id) + ": key of " + std::to_string(m.key.size()) + " bytes is longer than " +
                           std::to_string(merkle::kMaxMapKeySize));
  }
  if (m.op == MapMutation::Op::kPut && m.value.size() > merkle::kMaxMapValueSize) {
    return InvalidArgument(Describe(id) + ": value of " + std::to_string(m.value.size()) +
                           " bytes is longer than " + std::to_string(merkle::kMaxMapValueSize));
  }
  return Status::Ok();
}

}  // namespace

// Builds StateViews for the decoder (StateView's constructor is private).
struct StateRecordCodec {
  static std::shared_ptr<StateView> Make(std::optional<std::uint64_t> height, MapVersion catalog,
                                         std::map<MapId, MapState> maps) {
    return std::shared_ptr<StateView>(new StateView(height, catalog, std::move(maps)));
  }
};

Result<std::string> CatalogKeyOf(const MapId& id) { return merkle::CatalogKey(id.model, id.name, id.part); }

merkle::CatalogEntry CatalogEntryOf(const MapState& map) {
  return {map.spec.kind, map.version.root_hash, map.version.count(), map.spec.schema_hash};
}

std::vector<NodeId> StateView::RootPages() const {
  std::vector<NodeId> roots;
  roots.reserve(maps_.size() + 1);
  roots.push_back(catalog_.root);
  for (const auto& [id, map] : maps_) roots.push_back(map.version.root);
  return roots;
}

const MapState* StateView::Find(const MapId& id) const {
  auto it = maps_.find(id);
  return it == maps_.end() ? nullptr : &it->second;
}

// ---- State record ----

std::string EncodeStateRecord(const StateView& state, size_t max_page_items) {
  ByteWriter w;
  w.U8(kStateRecordVersion);
  w.U64(state.height().value_or(0));
  w.U16(static_cast<std::uint16_t>(max_page_items));
  PutVersion(&w, merkle::kCatalogMapKind, state.catalog());
  w.U32(static_cast<std::uint32_t>(state.maps().size()));
  for (const auto& [id, map] : state.maps()) {
    // Every map in a StateView passed CatalogKeyOf when it was created.
    w.Bytes(CatalogKeyOf(id).value());
    w.U8(static_cast<std::uint8_t>(map.spec.kind));
    w.Fixed(merkle::HashView(map.spec.schema_hash));
    PutVersion(&w, map.spec.kind, map.version);
  }
  return w.Take();
}

Result<DecodedStateRecord> DecodeStateRecord(std::string_view bytes) {
  ByteReader r(bytes, "state record");
  const std::uint8_t version = r.U8();
  if (r.ok() && version != kStateRecordVersion) r.Fail("unknown version " + std::to_string(version));
  const std::uint64_t height = r.U64();
  const std::uint16_t fanout = r.U16();
  if (r.ok() && !ValidFanout(fanout)) r.Fail("max_page_items " + std::to_string(fanout) + " not even in [4, 256]");
  const MapVersion catalog = GetVersion(&r, merkle::kCatalogMapKind);
  const std::uint32_t n = r.U32();
  if (r.ok() && n != catalog.count()) {
    r.Fail(std::to_string(n) + " maps but " + std::to_string(catalog.count()) + " catalog entries");
  }
  std::map<MapId, MapState> maps;
  std::string_view previous_key;
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    const std::string_view key = r.Bytes(merkle::kMaxMapKeySize);
    if (!r.ok()) break;
    if (i > 0 && !(previous_key < key)) {
      r.Fail("map " + std::to_string(i) + " out of catalog key order");
      break;
    }
    previous_key = key;
    Result<merkle::CatalogKeyParts> parts = merkle::DecodeCatalogKey(key);
    if (!parts.ok()) {
      r.Fail("map " + std::to_string(i) + ": " + parts.status().message());
      break;
    }
    MapState map;
    map.spec.kind = static_cast<merkle::MapKind>(r.U8());
    if (r.ok() && !KnownKind(map.spec.kind)) {
      r.Fail("map " + std::to_string(i) + " of unknown kind " + std::to_string(static_cast<int>(map.spec.kind)));
    }
    const std::string_view schema = r.Fixed(merkle::kHashSize);
    if (schema.size() == merkle::kHashSize) std::copy(schema.begin(), schema.end(), map.spec.schema_hash.begin());
    if (!r.ok()) break;
    map.version = GetVersion(&r, map.spec.kind);
    maps.emplace(MapId{std::move(parts->model), std::move(parts->name), std::move(parts->part)}, map);
  }
  VELLUM_RETURN_IF_ERROR(r.Finish());
  return DecodedStateRecord{fanout, StateRecordCodec::Make(height, catalog, std::move(maps))};
}

// ---- Views ----

Views::Views(ViewStore* store, ViewsOptions options, std::shared_ptr<const StateView> current)
    : store_(store), options_(options), current_(std::move(current)) {
  if (current_->height()) recent_.push_back(current_);
}

Result<std::unique_ptr<Views>> Views::Open(ViewStore* store, ViewsOptions options) {
  if (store == nullptr) return InvalidArgument("views need a store");
  if (options.recent_states == 0) return InvalidArgument("recent_states must be at least 1");
  if (!ValidFanout(options.max_page_items)) return InvalidArgument("max_page_items must be even and in [4, 256]");
  VELLUM_ASSIGN_OR_RETURN(std::optional<StateRecord> record, store->LatestRecord());
  std::shared_ptr<const StateView> state;
  if (!record) {
    state = StateRecordCodec::Make(std::nullopt, MapVersion{0, {}, merkle::MapRootHash(merkle::kCatalogMapKind, nullptr)},
                                   {});
  } else {
    Result<DecodedStateRecord> decoded = DecodeStateRecord(record->bytes);
    if (!decoded.ok()) {
      return DataLoss("state record of block " + std::to_string(record->height) + ": " +
                      decoded.status().message());
    }
    if (decoded->state->height() != record->height) {
      return DataLoss("state record stored under block " + std::to_string(record->height) + " is for block " +
                      std::to_string(*decoded->state->height()));
    }
    if (decoded->max_page_items != options.max_page_items) {
      return FailedPrecondition("views were written with max_page_items " +
                                std::to_string(decoded->max_page_items) + ", opened with " +
                                std::to_string(options.max_page_items));
    }
    state = std::move(decoded->state);
    // The record must name pages of this store: compare the root pages' digests.
    auto check_root = [&](const MapVersion& v, const std::string& what) -> Status {
      if (v.root == kNoNode) return Status::Ok();
      Result<std::shared_ptr<const MapNode>> page = store->nodes().Get(v.root);
      if (!page.ok()) return page.status().WithContext(what + " root page");
      if (!((*page)->digest == v.digest)) {
        return DataLoss(what + ": root page " + std::to_string(v.root) + " has digest " +
                        merkle::HashHex((*page)->digest.hash) + ", the state record says " +
                        merkle::HashHex(v.digest.hash));
      }
      return Status::Ok();
    };
    VELLUM_RETURN_IF_ERROR(check_root(state->catalog(), "catalog"));
    for (const auto& [id, map] : state->maps()) VELLUM_RETURN_IF_ERROR(check_root(map.version, Describe(id)));
  }
  return std::unique_ptr<Views>(new Views(store, options, std::move(state)));
}

Result<AuthenticatedMap> Views::MapFor(const MapSpec& spec) const {
  return AuthenticatedMap::Create({spec.kind, options_.max_page_items, &store_->nodes(), &store_->values()});
}

AuthenticatedMap Views::CatalogMap() const {
  // Kind and fanout were validated by Open.
  return AuthenticatedMap::Create(
             {merkle::kCatalogMapKind, options_.max_page_items, &store_->nodes(), &store_->values()})
      .value();
}

Result<merkle::Hash> Views::PrepareBlock(std::uint64_t height, std::vector<MapChange> changes) {
  const std::shared_ptr<const StateView> base = Tip();
  if (height != base->next_height()) {
    return FailedPrecondition("block " + std::to_string(height) + " does not follow the " +
                              (prepared_.empty() ? "current" : "prepared") + " state (next block " +
                              std::to_string(base->next_height()) + ")");
  }

  // Validate everything before writing anything.
  std::sort(changes.begin(), changes.end(), [](const MapChange& a, const MapChange& b) { return a.id < b.id; });
  std::vector<std::string> keys;
  keys.reserve(changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    const MapChange& c = changes[i];
    if (i > 0 && c.id == changes[i - 1].id) {
      return InvalidArgument(Describe(c.id) + " changed twice in block " + std::to_string(height));
    }
    Result<std::string> key = CatalogKeyOf(c.id);
    if (!key.ok()) return key.status().WithContext(Describe(c.id));
    keys.push_back(std::move(*key));
    if (!KnownKind(c.spec.kind)) {
      return InvalidArgument(Describe(c.id) + ": unknown map kind " + std::to_string(static_cast<int>(c.spec.kind)));
    }
    const MapState* existing = base->Find(c.id);
    if (existing != nullptr && !(existing->spec == c.spec)) {
      return FailedPrecondition(Describe(c.id) + " exists with kind " +
                                std::to_string(static_cast<int>(existing->spec.kind)) + " and schema " +
                                merkle::HashHex(existing->spec.schema_hash) + "; the change says kind " +
                                std::to_string(static_cast<int>(c.spec.kind)) + " and schema " +
                                merkle::HashHex(c.spec.schema_hash));
    }
    for (const MapMutation& m : c.mutations) VELLUM_RETURN_IF_ERROR(ValidateMutation(c.id, m));
  }

  // Apply; on a store error drop the pages this block wrote so far.
  auto fail = [this](Status s) {
    store_->RollbackTo(prepared_.empty() ? PutMark{} : prepared_.back().mark);
    return s;
  };
  std::map<MapId, MapState> maps = base->maps();
  std::vector<MapMutation> catalog_batch;
  for (size_t i = 0; i < changes.size(); ++i) {
    MapChange& c = changes[i];
    const MapState* existing = base->Find(c.id);
    if (existing != nullptr && c.mutations.empty()) continue;
    Result<AuthenticatedMap> map = MapFor(c.spec);
    if (!map.ok()) return fail(map.status());
    const MapVersion from = existing != nullptr ? existing->version : map->Empty();
    Result<MapVersion> to = map->Apply(from, std::move(c.mutations));
    if (!to.ok()) return fail(to.status().WithContext(Describe(c.id)));
    if (existing != nullptr && to->root_hash == existing->version.root_hash) continue;
    const MapState state{c.spec, *to};
    maps[c.id] = state;
    catalog_batch.push_back(MapMutation::Put(std::move(keys[i]), merkle::EncodeCatalogEntry(CatalogEntryOf(state))));
  }
  MapVersion catalog = base->catalog();
  if (!catalog_batch.empty()) {
    Result<MapVersion> next = CatalogMap().Apply(catalog, std::move(catalog_batch));
    if (!next.ok()) return fail(next.status().WithContext("catalog"));
    catalog = *next;
  }
  prepared_.push_back({StateRecordCodec::Make(height, catalog, std::move(maps)), store_->Mark()});
  return catalog.root_hash;
}

Status Views::CommitBlock(std::uint64_t height) {
  if (prepared_.empty() || *prepared_.front().state->height() != height) {
    return FailedPrecondition("block " + std::to_string(height) + " is not the oldest prepared block");
  }
  Prepared block = std::move(prepared_.front());
  prepared_.pop_front();
  block.state->pin_ = store_->CommitThrough(block.mark, height,
                                            EncodeStateRecord(*block.state, options_.max_page_items),
                                            block.state->RootPages());
  std::lock_guard lock(mu_);
  current_ = std::move(block.state);
  recent_.push_back(current_);
  while (recent_.size() > options_.recent_states) recent_.pop_front();
  return Status::Ok();
}

void Views::AbortBlock(std::uint64_t height) {
  auto it = std::find_if(prepared_.begin(), prepared_.end(),
                         [&](const Prepared& p) { return *p.state->height() == height; });
  if (it == prepared_.end()) return;
  store_->RollbackTo(it == prepared_.begin() ? PutMark{} : std::prev(it)->mark);
  prepared_.erase(it, prepared_.end());
}

Result<merkle::Hash> Views::ApplyBlock(std::uint64_t height, std::vector<MapChange> changes) {
  VELLUM_ASSIGN_OR_RETURN(merkle::Hash root, PrepareBlock(height, std::move(changes)));
  VELLUM_RETURN_IF_ERROR(CommitBlock(height));
  return root;
}

std::shared_ptr<const StateView> Views::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

std::shared_ptr<const StateView> Views::Tip() const {
  if (!prepared_.empty()) return prepared_.back().state;
  return Current();
}

Result<std::shared_ptr<const StateView>> Views::At(std::uint64_t height) const {
  std::lock_guard lock(mu_);
  if (recent_.empty() || height > *recent_.back()->height()) {
    return OutOfRange("no committed state after block " + std::to_string(height) + " yet");
  }
  const std::uint64_t oldest = *recent_.front()->height();
  if (height < oldest) {
    return OutOfRange("state after block " + std::to_string(height) + " is older than the " +
                      std::to_string(recent_.size()) + " states kept in memory (oldest " + std::to_string(oldest) +
                      ")");
  }
  return recent_[height - oldest];
}

Result<merkle::MapProof> Views::ProveCatalogEntry(const StateView& state, const MapId& id) const {
  VELLUM_ASSIGN_OR_RETURN(std::string key, CatalogKeyOf(id));
  return CatalogMap().ProveGet(state.catalog(), key);
}

Status Views::CheckState(const StateView& state) const {
  const AuthenticatedMap catalog = CatalogMap();
  VELLUM_RETURN_IF_ERROR(catalog.CheckInvariants(state.catalog()).WithContext("catalog"));
  if (state.catalog().count() != state.maps().size()) {
    return Internal("catalog holds " + std::to_string(state.catalog().count()) + " entries for " +
                    std::to_string(state.maps().size()) + " maps");
  }
  for (const auto& [id, map] : state.maps()) {
    VELLUM_ASSIGN_OR_RETURN(std::string key, CatalogKeyOf(id));
    VELLUM_ASSIGN_OR_RETURN(merkle::MapGetResult got, catalog.Get(state.catalog(), key));
    if (!got.entry) return Internal(Describe(id) + " has no catalog entry");
    if (got.entry->value != merkle::EncodeCatalogEntry(CatalogEntryOf(map))) {
      return Internal(Describe(id) + ": the catalog entry does not match the map");
    }
    VELLUM_ASSIGN_OR_RETURN(AuthenticatedMap m, MapFor(map.spec));
    VELLUM_RETURN_IF_ERROR(m.CheckInvariants(map.version).WithContext(Describe(id)));
  }
  return Status::Ok();
}

}  // namespace vellum::indexes
