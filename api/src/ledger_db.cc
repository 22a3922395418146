#include "vellum/api/ledger_db.h"

#include "internal/read_cache.h"
#include "vellum/base/encoding.h"
#include "vellum/engines/document/canonical_json.h"
#include "vellum/merkle/note.h"
#include "vellum/engines/document/doc_query.h"
#include "vellum/engines/document/path_index.h"
#include "vellum/engines/document/validator.h"
#include "vellum/engines/kv/kv_ops.h"

#include <algorithm>
#include <cassert>

#include <filesystem>
#include <iostream>
#include <map>

namespace vellum::api {
namespace {

std::string Sub(const std::string& dir, const char* name) { return (std::filesystem::path(dir) / name).string(); }

std::string Describe(const indexes::MapId& id) {
  return id.model + "/" + id.name + (id.part.empty() ? "" : "/" + id.part);
}

}  // namespace

namespace internal {

// LedgerDb's caches of shared proof parts (read_cache.h).
class ReadCache {
 public:
  // Sizes: a few tree sizes and heights are read at once (the newest, and
  // as-of reads); a proof part is a few KB.
  BoundedCache<std::uint64_t, LedgerDb::SignedCheckpoint> checkpoints{64};
  BoundedCache<std::pair<std::uint64_t, std::uint64_t>, journal::BlockProof> block_proofs{64};
  // (state root, catalog key): the catalog proof of that key.
  BoundedCache<std::pair<merkle::Hash, std::string>, merkle::MapProof> catalog_proofs{256};

  // The newest checkpoint handed out, compared by note text (cheaper than
  // parsing it again).
  std::shared_ptr<const LedgerDb::SignedCheckpoint> Latest() const {
    std::lock_guard lock(mu_);
    return latest_;
  }
  void SetLatest(std::shared_ptr<const LedgerDb::SignedCheckpoint> cp) {
    std::lock_guard lock(mu_);
    if (latest_ == nullptr || latest_->checkpoint.size <= cp->checkpoint.size) latest_ = std::move(cp);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const LedgerDb::SignedCheckpoint> latest_;
};

}  // namespace internal

indexes::MapId TokensMap() { return {"sys", "tokens", ""}; }


Result<TransactionEffects> ProjectTransaction(const journal::Transaction& tx) {
  TransactionEffects effects;
  effects.writes.reserve(tx.operations.size());
  for (size_t i = 0; i < tx.operations.size(); ++i) {
    const journal::Operation& op = tx.operations[i];
    if (engines::document::IsDocOp(op.kind)) {
      auto d = engines::document::DecodeDocOp(op.kind, op.body);
      if (!d.ok()) return d.status().WithContext("operation " + std::to_string(i));
      effects.doc_ops.push_back(std::move(d).value());
      continue;
    }
    if (engines::kv::IsZsetOp(op.kind)) {
      auto z = engines::kv::DecodeZsetOp(op.kind, op.body);
      if (!z.ok()) return z.status().WithContext("operation " + std::to_string(i));
      effects.zset_ops.push_back(std::move(z).value());
      continue;
    }
    if (engines::kv::IsKvOp(op.kind)) {
      auto kv = engines::kv::DecodeKvOp(op.kind, op.body);
      if (!kv.ok()) return kv.status().WithContext("operation " + std::to_string(i));
      indexes::MapOp write{engines::kv::KvMap(kv->ns), engines::kv::KvSpec(), {}};
      if (kv->type == engines::kv::KvOp::Type::kCompareAndSet || kv->type == engines::kv::KvOp::Type::kAssert) {
        effects.preconditions.push_back({write.map, kv->key, kv->expected});
      }
      if (kv->type == engines::kv::KvOp::Type::kAssert) continue;  // a read, no write
      write.mutation = kv->value.has_value() && kv->type != engines::kv::KvOp::Type::kDelete
                           ? indexes::MapMutation::Put(kv->key, *kv->value)
                           : indexes::MapMutation::Delete(kv->key);
      effects.writes.push_back(std::move(write));
      continue;
    }
    auto decoded = indexes::DecodeMapOp(op.kind, op.body);
    if (!decoded.ok()) return decoded.status().WithContext("operation " + std::to_string(i));
    effects.writes.push_back(std::move(decoded).value());
  }
  return effects;
}

namespace {

// Values written by the accepted transactions of the block being projected
// (nullopt: deleted), consulted before the committed state.
using PendingWrites = std::map<indexes::MapId, std::map<std::string, std::optional<std::string>>>;

// The value of `key` in `map` in a committed state (nullopt: the map or the
// key does not exist).
Result<std::optional<std::string>> CommittedValue(const indexes::Views& views, const indexes::StateView& state,
                                                  const indexes::MapId& map, const std::string& key) {
  const auto* existing = state.Find(map);
  if (existing == nullptr) return std::optional<std::string>();
  VELLUM_ASSIGN_OR_RETURN(indexes::AuthenticatedMap reader, views.MapFor(existing->spec));
  VELLUM_ASSIGN_OR_RETURN(merkle::MapGetResult got, reader.Get(existing->version, key));
  if (!got.entry.has_value()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(got.entry->value));
}

// The value of `key` in `map` as a transaction sees it: its own earlier
// writes (`local`, if given), then the block's earlier accepted transactions
// (`pending`), then the committed state.
Result<std::optional<std::string>> CurrentValue(const indexes::Views& views, const indexes::StateView& state,
                                                const PendingWrites& pending, const indexes::MapId& map,
                                                const std::string& key, const PendingWrites* local = nullptr) {
  for (const PendingWrites* layer : {local, &pending}) {
    if (layer == nullptr) continue;
    if (auto m = layer->find(map); m != layer->end()) {
      if (auto k = m->second.find(key); k != m->second.end()) return k->second;
    }
  }
  return CommittedValue(views, state, map, key);
}

// Turns the transaction's sorted-set operations into writes, reading each
// member's current score (this transaction's earlier operations first, then
// the block's earlier transactions, then the committed state).
Status ResolveZsetOps(const indexes::Views& views, const indexes::StateView& state, const PendingWrites& pending,
                      TransactionEffects& effects) {
  namespace kv = engines::kv;
  PendingWrites local;
  for (const kv::ZsetOp& z : effects.zset_ops) {
    const indexes::MapId members = kv::ZsetMembersMap(z.ns, z.set);
    const indexes::MapId scores = kv::ZsetScoresMap(z.ns, z.set);
    VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> old_raw,
                            CurrentValue(views, state, pending, members, z.member, &local));
    std::optional<std::int64_t> old_score;
    if (old_raw.has_value()) {
      VELLUM_ASSIGN_OR_RETURN(std::int64_t decoded, kv::DecodeScore(*old_raw));
      old_score = decoded;
    }
    std::optional<std::int64_t> new_score;
    switch (z.type) {
      case kv::ZsetOp::Type::kAdd: new_score = z.score; break;
      case kv::ZsetOp::Type::kIncrement: {
        std::int64_t sum = 0;
        if (__builtin_add_overflow(old_score.value_or(0), z.score, &sum)) {
          return OutOfRange("incrementing the score of '" + z.member + "' in " + Describe(members) + " by " +
                            std::to_string(z.score) + " overflows int64");
        }
        new_score = sum;
        break;
      }
      case kv::ZsetOp::Type::kRemove: break;
    }
    if (old_score.has_value()) {
      effects.writes.push_back({scores, kv::KvSpec(), indexes::MapMutation::Delete(kv::ZsetScoreKey(*old_score, z.member))});
    }
    if (new_score.has_value()) {
      effects.writes.push_back({members, kv::ZsetMembersSpec(),
                                indexes::MapMutation::Put(z.member, kv::EncodeScore(*new_score), *new_score)});
      effects.writes.push_back({scores, kv::KvSpec(), indexes::MapMutation::Put(kv::ZsetScoreKey(*new_score, z.member), "")});
      local[members][z.member] = kv::EncodeScore(*new_score);
    } else if (old_score.has_value()) {
      effects.writes.push_back({members, kv::ZsetMembersSpec(), indexes::MapMutation::Delete(z.member)});
      local[members][z.member].reset();
    }
  }
  return Status::Ok();
}

// A collection's declared indexes and validator, as a transaction sees them.
struct CollectionMeta {
  std::vector<std::string> indexes;  // sorted paths
  std::optional<engines::document::Validator> validator;
};

indexes::MapId MetaMap(const std::string& collection) { return {"doc", collection, "meta"}; }
constexpr const char* kMetaIndexes = "indexes";
constexpr const char* kMetaValidator = "validator";

Result<CollectionMeta> ReadMeta(const indexes::Views& views, const indexes::StateView& state,
                                const PendingWrites& pending, const PendingWrites& local, const std::string& collection) {
  namespace doc = engines::document;
  CollectionMeta meta;
  const indexes::MapId id = MetaMap(collection);
  VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> list, CurrentValue(views, state, pending, id, kMetaIndexes, &local));
  if (list.has_value()) {
    auto parsed = doc::ParseJson(*list);
    if (!parsed.ok() || !parsed->is_array()) return DataLoss("collection '" + collection + "': malformed index list");
    for (const auto& p : *parsed) {
      if (!p.is_string()) return DataLoss("collection '" + collection + "': malformed index list");
      meta.indexes.push_back(p.get<std::string>());
    }
  }
  VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> schema, CurrentValue(views, state, pending, id, kMetaValidator, &local));
  if (schema.has_value() && !schema->empty()) {
    auto parsed = doc::ParseJson(*schema);
    if (!parsed.ok()) return DataLoss("collection '" + collection + "': malformed validator");
    auto validator = doc::Validator::Parse(*parsed);
    if (!validator.ok()) return DataLoss("collection '" + collection + "': stored validator: " + validator.status().message());
    meta.validator = std::move(validator).value();
  }
  return meta;
}

// Every live document of `collection` as a transaction sees it: id -> revision record.
Result<std::map<std::string, std::string>> LiveDocuments(const indexes::Views& views, const indexes::StateView& state,
                                                         const PendingWrites& pending, const PendingWrites& local,
                                                         const indexes::MapId& current) {
  std::map<std::string, std::optional<std::string>> all;
  if (const auto* existing = state.Find(current)) {
    VELLUM_ASSIGN_OR_RETURN(indexes::AuthenticatedMap reader, views.MapFor(existing->spec));
    VELLUM_ASSIGN_OR_RETURN(merkle::MapRangeResult scan,
                            reader.Range(existing->version, engines::document::FindScanQuery()));
    for (auto& e : scan.entries) all.emplace(std::move(e.key), std::move(e.value));
  }
  for (const PendingWrites* layer : {&pending, &local}) {
    if (auto m = layer->find(current); m != layer->end()) {
      for (const auto& [id, value] : m->second) all[id] = value;
    }
  }
  std::map<std::string, std::string> live;
  for (auto& [id, value] : all) {
    if (!value.has_value()) continue;
    VELLUM_ASSIGN_OR_RETURN(engines::document::Revision rev, engines::document::DecodeRevision(*value));
    if (!rev.deleted) live.emplace(id, std::move(*value));
  }
  return live;
}

// The index writes that take document `id` from revision `before` (nullopt or
// deleted: no entries) to `after` (its encoded record, nullopt: none), and
// the index's multikey count when the document starts or stops giving
// several values.
Status IndexWrites(const indexes::Views& views, const indexes::StateView& state, const PendingWrites& pending,
                   PendingWrites& local, const std::string& collection, const std::vector<std::string>& paths,
                   const std::string& id, const std::optional<nlohmann::json>& before,
                   const std::optional<nlohmann::json>& after, const std::string& after_record,
                   TransactionEffects& effects) {
  namespace doc = engines::document;
  const indexes::MapSpec plain{merkle::MapKind::kPlain, merkle::kZeroHash};
  for (const auto& path : paths) {
    const indexes::MapId map{"doc", collection, doc::IndexPart(path)};
    std::vector<std::string> old_values, new_values;
    if (before.has_value()) {
      VELLUM_ASSIGN_OR_RETURN(old_values, doc::IndexValues(*before, path));
    }
    if (after.has_value()) {
      auto values = doc::IndexValues(*after, path);
      if (!values.ok()) return values.status().WithContext("document '" + id + "', index '" + path + "'");
      new_values = std::move(values).value();
    }
    for (const auto& v : old_values) {
      if (!std::binary_search(new_values.begin(), new_values.end(), v)) {
        effects.writes.push_back({map, plain, indexes::MapMutation::Delete(doc::IndexKey(v, id))});
      }
    }
    for (const auto& v : new_values) {
      effects.writes.push_back({map, plain, indexes::MapMutation::Put(doc::IndexKey(v, id), after_record)});
    }
    const int delta = (new_values.size() > 1 ? 1 : 0) - (old_values.size() > 1 ? 1 : 0);
    if (delta == 0) continue;
    VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> raw,
                            CurrentValue(views, state, pending, map, doc::kMultikeyKey, &local));
    std::uint64_t multikey = 0;
    if (raw.has_value()) {
      VELLUM_ASSIGN_OR_RETURN(multikey, doc::DecodeMultikeyCount(*raw));
    }
    if (delta < 0 && multikey == 0) return DataLoss("index " + Describe(map) + ": multikey count below zero");
    multikey = delta > 0 ? multikey + 1 : multikey - 1;
    if (multikey == 0) {
      effects.writes.push_back({map, plain, indexes::MapMutation::Delete(doc::kMultikeyKey)});
      local[map][doc::kMultikeyKey].reset();
    } else {
      const std::string encoded = doc::EncodeMultikeyCount(multikey);
      effects.writes.push_back({map, plain, indexes::MapMutation::Put(doc::kMultikeyKey, encoded)});
      local[map][doc::kMultikeyKey] = encoded;
    }
  }
  return Status::Ok();
}

// Declares an index: records it in the collection's meta map and builds it
// from the live documents (the map exists from then on, even when empty).
Status CreateIndex(const indexes::Views& views, const indexes::StateView& state, const PendingWrites& pending,
                   PendingWrites& local, const engines::document::DocOp& op, TransactionEffects& effects) {
  namespace doc = engines::document;
  const indexes::MapSpec plain{merkle::MapKind::kPlain, merkle::kZeroHash};
  VELLUM_ASSIGN_OR_RETURN(CollectionMeta meta, ReadMeta(views, state, pending, local, op.collection));
  if (std::binary_search(meta.indexes.begin(), meta.indexes.end(), op.path)) {
    return AlreadyExists("collection '" + op.collection + "' already has an index on '" + op.path + "'");
  }
  if (meta.indexes.size() >= doc::kMaxIndexesPerCollection) {
    return ResourceExhausted("collection '" + op.collection + "' already has the maximum of " +
                             std::to_string(doc::kMaxIndexesPerCollection) + " indexes");
  }
  const indexes::MapId index{"doc", op.collection, doc::IndexPart(op.path)};
  if (state.Find(index) != nullptr || pending.count(index) != 0 || local.count(index) != 0) {
    return AlreadyExists("map " + Describe(index) + " already exists");
  }
  VELLUM_ASSIGN_OR_RETURN(auto live, LiveDocuments(views, state, pending, local, {"doc", op.collection, ""}));
  local[index];  // the map exists for this transaction's later operations
  for (const auto& [id, record] : live) {
    VELLUM_ASSIGN_OR_RETURN(doc::Revision rev, doc::DecodeRevision(record));
    VELLUM_ASSIGN_OR_RETURN(nlohmann::json body, doc::ParseJson(rev.json));
    VELLUM_RETURN_IF_ERROR(
        IndexWrites(views, state, pending, local, op.collection, {op.path}, id, std::nullopt, body, record, effects));
  }
  meta.indexes.insert(std::upper_bound(meta.indexes.begin(), meta.indexes.end(), op.path), op.path);
  nlohmann::json list = meta.indexes;
  VELLUM_ASSIGN_OR_RETURN(std::string encoded, doc::CanonicalJson(list));
  effects.writes.push_back({MetaMap(op.collection), plain, indexes::MapMutation::Put(kMetaIndexes, encoded)});
  effects.creates.push_back({index, plain});
  local[MetaMap(op.collection)][kMetaIndexes] = encoded;
  return Status::Ok();
}

// Turns the transaction's document operations into revision writes, reading
// each document's current revision (this transaction first, then the block,
// then the committed state), and keeps the collection's indexes in step.
// The block being built is state.next_height(), committed at `block_time_us`.
//
// An insert without an id gets one derived from its place in the journal —
// (block height, index among the block's accepted transactions, operation
// index) — which replay reproduces exactly and no other insert shares.
Status ResolveDocOps(const indexes::Views& views, const indexes::StateView& state, const PendingWrites& pending,
                     std::uint32_t accepted_index, std::int64_t block_time_us, TransactionEffects& effects) {
  namespace doc = engines::document;
  PendingWrites local;
  const indexes::MapSpec plain{merkle::MapKind::kPlain, merkle::kZeroHash};
  std::uint32_t id_index = 0;  // among the document operations other than assertions
  // Each collection's indexes and validator, read once per transaction; only
  // this transaction's create_index/set_validator change them meanwhile.
  std::map<std::string, CollectionMeta> metas;
  for (size_t op_index = 0; op_index < effects.doc_ops.size(); ++op_index) {
    doc::DocOp& op = effects.doc_ops[op_index];
    const std::string at = "operation " + std::to_string(op_index);
    const std::uint32_t this_id_index = id_index;
    if (op.type != doc::DocOp::Type::kAssert) ++id_index;
    if (op.type == doc::DocOp::Type::kCreateIndex || op.type == doc::DocOp::Type::kSetValidator) {
      metas.erase(op.collection);
    }
    if (op.type == doc::DocOp::Type::kCreateIndex) {
      VELLUM_RETURN_IF_ERROR(CreateIndex(views, state, pending, local, op, effects).WithContext(at));
      continue;
    }
    if (op.type == doc::DocOp::Type::kSetValidator) {
      effects.writes.push_back({MetaMap(op.collection), plain, indexes::MapMutation::Put(kMetaValidator, op.json)});
      local[MetaMap(op.collection)][kMetaValidator] = op.json;
      continue;
    }
    if (op.type == doc::DocOp::Type::kInsert && op.id.empty()) {
      op.id = doc::DerivedDocumentId(state.next_height(), accepted_index, this_id_index);
    }
    const indexes::MapId current{"doc", op.collection, ""};
    const indexes::MapId revisions{"doc", op.collection, "revisions"};
    VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> raw, CurrentValue(views, state, pending, current, op.id, &local));
    std::optional<doc::Revision> cur;
    if (raw.has_value()) {
      VELLUM_ASSIGN_OR_RETURN(doc::Revision decoded, doc::DecodeRevision(*raw));
      cur = std::move(decoded);
    }
    const bool live = cur.has_value() && !cur->deleted;
    const std::string where = "document '" + op.id + "' in collection '" + op.collection + "'";
    if (op.type == doc::DocOp::Type::kAssert) {
      if (op.expected_version.has_value() ? !live || cur->version != *op.expected_version : live) {
        return Aborted("conflict on " + where + ": read " +
                       (op.expected_version ? "at version " + std::to_string(*op.expected_version) : std::string("absent")) +
                       ", now " + (live ? "at version " + std::to_string(cur->version) : std::string("absent")));
      }
      continue;
    }
    if (op.type == doc::DocOp::Type::kInsert && live) return AlreadyExists(where + " exists");
    if (op.type != doc::DocOp::Type::kInsert) {
      if (!live) return NotFound(where + " does not exist");
      if (op.expected_version.has_value() && *op.expected_version != cur->version) {
        return Aborted(where + " is at version " + std::to_string(cur->version) + ", expected " +
                       std::to_string(*op.expected_version));
      }
    }
    auto cached = metas.find(op.collection);
    if (cached == metas.end()) {
      VELLUM_ASSIGN_OR_RETURN(CollectionMeta read, ReadMeta(views, state, pending, local, op.collection));
      cached = metas.emplace(op.collection, std::move(read)).first;
    }
    const CollectionMeta& meta = cached->second;
    std::optional<nlohmann::json> after;
    if (op.type != doc::DocOp::Type::kDelete) {
      VELLUM_ASSIGN_OR_RETURN(after, doc::ParseJson(op.json));
      if (meta.validator.has_value()) {
        VELLUM_RETURN_IF_ERROR(meta.validator->Validate(*after).WithContext(where + " fails the collection's validator"));
      }
    }
    doc::Revision next;
    next.version = cur.has_value() ? cur->version + 1 : 1;
    next.height = state.next_height();
    next.index_in_block = accepted_index;
    next.time_us = block_time_us;
    next.deleted = op.type == doc::DocOp::Type::kDelete;
    if (!next.deleted) next.json = op.json;
    const std::string encoded = doc::EncodeRevision(next);
    if (!meta.indexes.empty()) {
      std::optional<nlohmann::json> before;
      if (live) {
        VELLUM_ASSIGN_OR_RETURN(before, doc::ParseJson(cur->json));
      }
      VELLUM_RETURN_IF_ERROR(
          IndexWrites(views, state, pending, local, op.collection, meta.indexes, op.id, before, after, encoded, effects));
    }
    effects.writes.push_back({current, plain, indexes::MapMutation::Put(op.id, encoded)});
    effects.writes.push_back({revisions, plain, indexes::MapMutation::Put(doc::RevisionKey(op.id, next.version), encoded)});
    local[current][op.id] = encoded;
  }
  return Status::Ok();
}

// An idempotency token may be used by one accepted transaction only: the
// first records (block height, index in block) under the token in the tokens
// map; later ones are refused with ALREADY_EXISTS (vellumd then answers with
// the first one's receipt). Deterministic, so replay refuses the same ones.
Status RecordToken(const indexes::Views& views, const indexes::StateView& state, const PendingWrites& pending,
                   const journal::Transaction& tx, std::uint32_t accepted_index, TransactionEffects& effects) {
  const indexes::MapId tokens = TokensMap();
  VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> used, CurrentValue(views, state, pending, tokens, tx.client_token));
  if (used.has_value()) return AlreadyExists("idempotency token already used by a committed transaction");
  ByteWriter where;
  where.U64(state.next_height());
  where.U32(accepted_index);
  effects.writes.push_back({tokens, indexes::MapSpec{merkle::MapKind::kPlain, merkle::kZeroHash},
                            indexes::MapMutation::Put(tx.client_token, where.data())});
  return Status::Ok();
}

std::string Shown(const std::optional<std::string>& v) {
  if (!v.has_value()) return "absent";
  if (v->size() > 64) return "a value of " + std::to_string(v->size()) + " bytes";
  return "'" + *v + "'";
}

}  // namespace

BlockProjection ProjectBlock(const indexes::Views& views, const indexes::StateView& state,
                             std::span<const journal::Transaction> txs, std::int64_t block_time_us,
                             std::span<TransactionEffects* const> decoded) {
  BlockProjection out;
  out.verdicts.resize(txs.size());
  std::map<indexes::MapId, indexes::MapChange> merged;
  // The accepted transactions' writes by key, for the lookups of the ones
  // after them. Most blocks make none (plain writes only), so the writes are
  // indexed when a lookup comes, from where the last indexing stopped.
  PendingWrites pending;
  std::map<indexes::MapId, size_t> indexed;  // per map: mutations already in `pending`
  auto writes_so_far = [&]() -> const PendingWrites& {
    for (const auto& [map, change] : merged) {
      auto& keys = pending[map];  // a map created in the block exists, even empty
      size_t& done = indexed[map];
      for (; done < change.mutations.size(); ++done) {
        const indexes::MapMutation& m = change.mutations[done];
        auto& slot = keys[m.key];
        if (m.op == indexes::MapMutation::Op::kPut) slot = m.value; else slot.reset();
      }
    }
    return pending;
  };
  std::uint32_t accepted = 0;  // index of the next accepted transaction in the block
  for (size_t i = 0; i < txs.size(); ++i) {
    auto effects = i < decoded.size() && decoded[i] != nullptr ? Result<TransactionEffects>(std::move(*decoded[i]))
                                                               : ProjectTransaction(txs[i]);
    if (!effects.ok()) {
      out.verdicts[i] = effects.status();
      continue;
    }
    Status verdict;
    if (!effects->zset_ops.empty()) verdict = ResolveZsetOps(views, state, writes_so_far(), *effects);
    if (verdict.ok() && !effects->doc_ops.empty()) {
      verdict = ResolveDocOps(views, state, writes_so_far(), accepted, block_time_us, *effects);
    }
    if (verdict.ok() && !txs[i].client_token.empty()) {
      verdict = RecordToken(views, state, writes_so_far(), txs[i], accepted, *effects);
    }
    // A map's spec is fixed when it is created; check against the state and
    // the earlier accepted transactions of this block before applying any.
    std::map<indexes::MapId, indexes::MapSpec> specs;
    auto check_spec = [&](const indexes::MapId& map, const indexes::MapSpec& spec) {
      if (!verdict.ok()) return;
      const indexes::MapSpec* known = nullptr;
      if (auto it = specs.find(map); it != specs.end()) known = &it->second;
      else if (auto m = merged.find(map); m != merged.end()) known = &m->second.spec;
      else if (const auto* existing = state.Find(map)) known = &existing->spec;
      if (known != nullptr && !(*known == spec)) {
        verdict = FailedPrecondition("map " + Describe(map) + " exists with kind " +
                                     std::to_string(static_cast<int>(known->kind)) + " and schema " +
                                     merkle::HashHex(known->schema_hash) + "; the operation names kind " +
                                     std::to_string(static_cast<int>(spec.kind)) + " and schema " +
                                     merkle::HashHex(spec.schema_hash));
        return;
      }
      specs.emplace(map, spec);
    };
    for (const auto& [map, spec] : effects->creates) check_spec(map, spec);
    const indexes::MapOp* previous = nullptr;
    for (const auto& op : effects->writes) {
      // Runs of writes to one map: its spec was just checked.
      if (previous == nullptr || !(previous->map == op.map && previous->spec == op.spec)) check_spec(op.map, op.spec);
      previous = &op;
    }
    for (const auto& pre : effects->preconditions) {
      if (!verdict.ok()) break;
      auto current = CurrentValue(views, state, writes_so_far(), pre.map, pre.key);
      if (!current.ok()) {
        verdict = current.status();
      } else if (*current != pre.expected) {
        verdict = Aborted("conflict on " + Describe(pre.map) + " key '" + pre.key + "': expected " +
                          Shown(pre.expected) + " but found " + Shown(*current));
      }
    }
    if (!verdict.ok()) {
      out.verdicts[i] = verdict;
      continue;
    }
    ++accepted;
    for (auto& [map, spec] : effects->creates) {
      auto& change = merged[map];
      change.id = map;
      change.spec = spec;
    }
    indexes::MapChange* change = nullptr;  // the previous write's map: writes come in runs per map
    for (auto& op : effects->writes) {
      if (change == nullptr || !(change->id == op.map)) {
        change = &merged[op.map];
        change->id = op.map;
        change->spec = op.spec;
      }
      change->mutations.push_back(std::move(op.mutation));
    }
  }
  out.changes.reserve(merged.size());
  for (auto& [id, change] : merged) out.changes.push_back(std::move(change));
  return out;
}

Status ReplayBlocks(const journal::Snapshot& journal, std::uint64_t from, std::uint64_t to, indexes::Views& views) {
  for (std::uint64_t h = from; h < to; ++h) {
    VELLUM_ASSIGN_OR_RETURN(std::string raw, journal.Header(h));
    VELLUM_ASSIGN_OR_RETURN(journal::BlockHeader header, journal::DecodeBlockHeader(raw));
    // Only the tip was verified when the journal opened: check each replayed
    // block's place in the chain and its transactions before trusting them.
    if (header.height != h || header.first_tx_seq > journal.tx_count() ||
        header.tx_count > journal.tx_count() - header.first_tx_seq) {
      return DataLoss("block " + std::to_string(h) + ": header says height " + std::to_string(header.height) +
                      ", transactions " + std::to_string(header.first_tx_seq) + "+" + std::to_string(header.tx_count) +
                      " of " + std::to_string(journal.tx_count()));
    }
    if (h > 0) {
      VELLUM_ASSIGN_OR_RETURN(std::string prev_raw, journal.Header(h - 1));
      VELLUM_ASSIGN_OR_RETURN(journal::BlockHeader prev, journal::DecodeBlockHeader(prev_raw));
      if (header.prev_hash != journal::BlockHash(prev_raw) || header.first_tx_seq != prev.first_tx_seq + prev.tx_count) {
        return VerificationFailed({"chain.prev_hash", merkle::HashHex(journal::BlockHash(prev_raw)),
                                   merkle::HashHex(header.prev_hash), h, to})
            .WithContext("block " + std::to_string(h));
      }
    }
    std::vector<journal::Transaction> txs;
    std::vector<merkle::Hash> leaves;
    txs.reserve(header.tx_count);
    leaves.reserve(header.tx_count);
    for (std::uint32_t i = 0; i < header.tx_count; ++i) {
      VELLUM_ASSIGN_OR_RETURN(std::string tx, journal.Transaction(header.first_tx_seq + i));
      leaves.push_back(journal::TransactionLeafHash(tx));
      auto decoded = journal::DecodeTransaction(tx);
      if (!decoded.ok()) return DataLoss("block " + std::to_string(h) + ": " + decoded.status().message());
      txs.push_back(std::move(decoded).value());
    }
    const merkle::Hash tx_root = merkle::RootFromLeafHashes(leaves);
    if (tx_root != header.tx_root) {
      return VerificationFailed({"block.tx_root", merkle::HashHex(header.tx_root), merkle::HashHex(tx_root), h, to})
          .WithContext("block " + std::to_string(h));
    }
    BlockProjection projection = ProjectBlock(views, *views.Current(), txs, header.timestamp_us);
    for (size_t i = 0; i < projection.verdicts.size(); ++i) {
      if (!projection.verdicts[i].ok()) {
        return DataLoss("block " + std::to_string(h) + ": committed transaction " +
                        std::to_string(header.first_tx_seq + i) + " is refused on replay: " +
                        projection.verdicts[i].message());
      }
    }
    VELLUM_ASSIGN_OR_RETURN(merkle::Hash root, views.ApplyBlock(h, std::move(projection.changes)));
    if (root != header.state_root) {
      return VerificationFailed({"block.state_root", merkle::HashHex(header.state_root), merkle::HashHex(root), h, to})
          .WithContext("block " + std::to_string(h));
    }
  }
  return Status::Ok();
}

LedgerDb::~LedgerDb() {
  // The journal first: it commits what is queued, which still calls into the views.
  ledger_.reset();
  views_.reset();
  view_store_.reset();
}

Result<std::unique_ptr<LedgerDb>> LedgerDb::Create(const std::string& dir, std::string_view name,
                                                   const LedgerDbOptions& options) {
  return OpenWith(dir, options, std::string(name));
}

Result<std::unique_ptr<LedgerDb>> LedgerDb::Open(const std::string& dir, const LedgerDbOptions& options) {
  return OpenWith(dir, options, std::nullopt);
}

Result<std::unique_ptr<LedgerDb>> LedgerDb::OpenWith(const std::string& dir, const LedgerDbOptions& options,
                                                     std::optional<std::string> create_name) {
  if (!create_name.has_value() && !std::filesystem::exists(Sub(dir, "journal"))) {
    return NotFound("no ledger in " + dir);
  }
  std::unique_ptr<LedgerDb> db(new LedgerDb());
  db->read_cache_ = std::make_unique<internal::ReadCache>();
  db->state_root_hook_ = options.state_root_hook_for_testing;
  VELLUM_ASSIGN_OR_RETURN(db->view_store_, indexes::OpenLmdbViewStore(Sub(dir, "views"), options.view_store));
  VELLUM_ASSIGN_OR_RETURN(db->views_, indexes::Views::Open(db->view_store_.get(), options.views));
  journal::LedgerOptions journal_options = options.journal;
  journal_options.state = db.get();
  if (create_name.has_value()) {
    if (db->views_->Current()->height().has_value()) {
      return AlreadyExists("views in " + Sub(dir, "views") + " already hold state");
    }
    VELLUM_ASSIGN_OR_RETURN(db->ledger_, journal::Ledger::Create(Sub(dir, "journal"), *create_name, journal_options));
  } else {
    VELLUM_ASSIGN_OR_RETURN(db->ledger_, journal::Ledger::Open(Sub(dir, "journal"), journal_options));
  }
  // Bring the views up to the journal before anyone can append.
  VELLUM_ASSIGN_OR_RETURN(auto snapshot, db->ledger_->store().Read());
  const std::uint64_t blocks = snapshot->block_count();
  const auto current = db->views_->Current();
  const std::uint64_t next = current->next_height();
  if (next > blocks) {
    return DataLoss("views in " + Sub(dir, "views") + " hold block " + std::to_string(next - 1) +
                    " but the journal has " + std::to_string(blocks) + " blocks; remove the views directory to rebuild it");
  }
  if (current->height().has_value()) {
    VELLUM_ASSIGN_OR_RETURN(std::string raw, snapshot->Header(*current->height()));
    VELLUM_ASSIGN_OR_RETURN(journal::BlockHeader header, journal::DecodeBlockHeader(raw));
    if (header.state_root != current->state_root()) {
      return VerificationFailed({"views.state_root", merkle::HashHex(header.state_root),
                                 merkle::HashHex(current->state_root()), *current->height(), blocks})
          .WithContext("views in " + Sub(dir, "views") + " at block " + std::to_string(*current->height()));
    }
  }
  VELLUM_RETURN_IF_ERROR(ReplayBlocks(*snapshot, next, blocks, *db->views_).WithContext("replaying the journal into the views"));
  return db;
}

// The ledger refuses a transaction PrepareTransaction cannot decode before
// queuing it.
Result<journal::Receipt> LedgerDb::Execute(journal::Transaction tx) { return ledger_->Append(std::move(tx)); }

void LedgerDb::ExecuteAsync(journal::Transaction tx, std::function<void(Result<journal::Receipt>)> done) {
  ledger_->AppendAsync(std::move(tx), std::move(done));
}

namespace {

struct DecodedTransaction final : journal::PreparedTransaction {
  TransactionEffects effects;
};

}  // namespace

Result<std::unique_ptr<journal::PreparedTransaction>> LedgerDb::PrepareTransaction(const journal::Transaction& tx) {
  VELLUM_ASSIGN_OR_RETURN(TransactionEffects effects, ProjectTransaction(tx));
  auto decoded = std::make_unique<DecodedTransaction>();
  decoded->effects = std::move(effects);
  return std::unique_ptr<journal::PreparedTransaction>(std::move(decoded));
}

Result<LedgerDb::TokenUse> LedgerDb::FindToken(const std::string& token) {
  VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> record,
                          CommittedValue(*views_, *views_->Current(), TokensMap(), token));
  if (!record.has_value()) return NotFound("no transaction used idempotency token '" + token + "'");
  ByteReader r(*record, "idempotency record");
  const std::uint64_t height = r.U64();
  const std::uint32_t index = r.U32();
  if (!r.ok() || r.remaining() != 0) return DataLoss("malformed idempotency record for token '" + token + "'");
  VELLUM_ASSIGN_OR_RETURN(journal::BlockHeader header, ledger_->GetBlock(height));
  TokenUse use;
  use.receipt.block_height = height;
  use.receipt.index_in_block = index;
  use.receipt.tx_seq = header.first_tx_seq + index;
  use.receipt.block_hash = journal::BlockHash(journal::EncodeBlockHeader(header));
  VELLUM_ASSIGN_OR_RETURN(use.tx, ledger_->GetTransaction(use.receipt.tx_seq));
  use.receipt.tx_hash = journal::TransactionHash(journal::EncodeTransaction(use.tx));
  return use;
}

Result<merkle::Hash> LedgerDb::ApplyBlock(std::uint64_t height, std::int64_t timestamp_us,
                                          std::span<const journal::Transaction> txs,
                                          std::span<std::unique_ptr<journal::PreparedTransaction>> prepared,
                                          std::span<Status> verdicts) {
  std::vector<TransactionEffects*> decoded(txs.size(), nullptr);
  for (size_t i = 0; i < prepared.size() && i < txs.size(); ++i) {
    if (auto* d = dynamic_cast<DecodedTransaction*>(prepared[i].get())) decoded[i] = &d->effects;
  }
  // On the newest prepared state: the block before may still be on its way to the journal.
  BlockProjection projection = ProjectBlock(*views_, *views_->Tip(), txs, timestamp_us, decoded);
  bool any = false;
  for (size_t i = 0; i < txs.size(); ++i) {
    verdicts[i] = projection.verdicts[i];
    any = any || verdicts[i].ok();
  }
  if (!any) return views_->Tip()->state_root();  // no block will be written
  auto root = views_->PrepareBlock(height, std::move(projection.changes));
  if (root.ok() && state_root_hook_) state_root_hook_(height, *root);
  return root;
}

void LedgerDb::CommitBlock(std::uint64_t height) {
  const Status status = views_->CommitBlock(height);
  // Only fails if `height` was not prepared: a bug in the wiring, not input.
  assert(status.ok());
  if (!status.ok()) std::cerr << "vellum: views could not commit block " << height << ": " << status.ToString() << "\n";
}

void LedgerDb::AbortBlock(std::uint64_t height) { views_->AbortBlock(height); }

Result<StateAt> LedgerDb::State(std::optional<std::uint64_t> height) {
  auto current = views_->Current();
  if (!height.has_value() || height == current->height()) return StateAt{current, views_.get(), nullptr};
  if (!current->height().has_value() || *height > *current->height()) {
    return OutOfRange("block " + std::to_string(*height) + " is beyond the ledger's " +
                      std::to_string(current->next_height()) + " blocks");
  }
  if (auto recent = views_->At(*height); recent.ok()) return StateAt{*recent, views_.get(), nullptr};
  // Older than the in-memory window: the nearest durable state at or before
  // it, plus a private replay of the blocks after it.
  VELLUM_ASSIGN_OR_RETURN(auto record, view_store_->DurableRecordAtOrBefore(*height));
  struct Replay {
    std::unique_ptr<indexes::ViewStore> store;
    std::unique_ptr<indexes::Views> views;
  };
  auto replay = std::make_shared<Replay>();
  replay->store = indexes::NewOverlayViewStore(*view_store_, std::move(record));
  VELLUM_ASSIGN_OR_RETURN(replay->views, indexes::Views::Open(replay->store.get(), views_->options()));
  VELLUM_ASSIGN_OR_RETURN(auto snapshot, ledger_->store().Read());
  VELLUM_RETURN_IF_ERROR(ReplayBlocks(*snapshot, replay->views->Current()->next_height(), *height + 1, *replay->views));
  return StateAt{replay->views->Current(), replay->views.get(), replay};
}

Result<std::optional<std::string>> LedgerDb::ReadKv(const StateAt& at, const std::string& ns, const std::string& key) {
  return CommittedValue(*at.views, *at.state, engines::kv::KvMap(ns), key);
}

namespace {

Result<std::shared_ptr<const LedgerDb::SignedCheckpoint>> ParseSigned(std::string note) {
  VELLUM_ASSIGN_OR_RETURN(merkle::SignedNote parsed, merkle::ParseSignedNote(note));
  VELLUM_ASSIGN_OR_RETURN(merkle::Checkpoint cp, merkle::ParseCheckpointBody(parsed.body));
  return std::make_shared<const LedgerDb::SignedCheckpoint>(LedgerDb::SignedCheckpoint{std::move(note), std::move(cp)});
}

}  // namespace

Result<std::shared_ptr<const LedgerDb::SignedCheckpoint>> LedgerDb::LatestCheckpoint() {
  VELLUM_ASSIGN_OR_RETURN(std::string note, ledger_->Checkpoint());
  if (auto latest = read_cache_->Latest(); latest != nullptr && latest->note == note) return latest;
  VELLUM_ASSIGN_OR_RETURN(auto parsed, ParseSigned(std::move(note)));
  const std::uint64_t size = parsed->checkpoint.size;
  parsed = read_cache_->checkpoints.Insert(size, std::move(parsed));
  read_cache_->SetLatest(parsed);
  return parsed;
}

Result<std::shared_ptr<const LedgerDb::SignedCheckpoint>> LedgerDb::CheckpointOf(std::uint64_t tree_size) {
  if (auto cached = read_cache_->checkpoints.Find(tree_size)) return cached;
  VELLUM_ASSIGN_OR_RETURN(auto snapshot, ledger_->store().Read());
  auto stored = snapshot->CheckpointAt(tree_size);
  if (!stored.ok()) {
    if (stored.status().code() != StatusCode::kNotFound) return stored.status();
    return NotFound("no signed checkpoint of tree size " + std::to_string(tree_size) +
                    " (ask for one the server has issued, or omit the size)");
  }
  VELLUM_ASSIGN_OR_RETURN(auto parsed, ParseSigned(std::move(stored).value()));
  if (parsed->checkpoint.size != tree_size) {
    return DataLoss("the stored checkpoint of tree size " + std::to_string(tree_size) + " is for size " +
                    std::to_string(parsed->checkpoint.size));
  }
  return read_cache_->checkpoints.Insert(tree_size, std::move(parsed));
}

Result<std::optional<engines::document::Revision>> LedgerDb::ReadDoc(const StateAt& at, const std::string& collection,
                                                                    const std::string& id) {
  VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> raw, CommittedValue(*at.views, *at.state, {"doc", collection, ""}, id));
  if (!raw.has_value()) return std::optional<engines::document::Revision>();
  VELLUM_ASSIGN_OR_RETURN(engines::document::Revision rev, engines::document::DecodeRevision(*raw));
  if (rev.deleted) return std::optional<engines::document::Revision>();
  return std::optional<engines::document::Revision>(std::move(rev));
}

Result<verifier::ViewProof> LedgerDb::ProveView(const StateAt& at, const indexes::MapId& id, std::uint64_t tree_size) {
  if (!at.state->height().has_value()) return FailedPrecondition("the ledger has no block yet");
  const std::uint64_t height = *at.state->height();
  verifier::ViewProof proof;
  if (tree_size == 0) {
    VELLUM_ASSIGN_OR_RETURN(proof.block, ledger_->ProveBlock(height, tree_size));
  } else if (auto cached = read_cache_->block_proofs.Find({height, tree_size})) {
    proof.block = *cached;
  } else {
    VELLUM_ASSIGN_OR_RETURN(journal::BlockProof block, ledger_->ProveBlock(height, tree_size));
    proof.block = *read_cache_->block_proofs.Insert({height, tree_size},
                                                    std::make_shared<const journal::BlockProof>(std::move(block)));
  }
  VELLUM_ASSIGN_OR_RETURN(proof.catalog_key, indexes::CatalogKeyOf(id));
  std::pair<merkle::Hash, std::string> catalog_at{at.state->state_root(), proof.catalog_key};
  if (auto cached = read_cache_->catalog_proofs.Find(catalog_at)) {
    proof.catalog = *cached;
  } else {
    VELLUM_ASSIGN_OR_RETURN(merkle::MapProof catalog, at.views->ProveCatalogEntry(*at.state, id));
    proof.catalog = *read_cache_->catalog_proofs.Insert(catalog_at, std::make_shared<const merkle::MapProof>(std::move(catalog)));
  }
  return proof;
}

namespace {

// The proof of `query` (get or range) on map `id` in `at`, plus its view chain.
template <typename ProveFn>
Result<LedgerDb::KvAnswer> AnswerOn(LedgerDb& db, const StateAt& at, const indexes::MapId& id, std::uint64_t tree_size,
                                    ProveFn prove) {
  LedgerDb::KvAnswer answer;
  VELLUM_ASSIGN_OR_RETURN(answer.view, db.ProveView(at, id, tree_size));
  if (const auto* map = at.state->Find(id)) {
    VELLUM_ASSIGN_OR_RETURN(indexes::AuthenticatedMap reader, at.views->MapFor(map->spec));
    VELLUM_ASSIGN_OR_RETURN(answer.map, prove(reader, map->version));
  }
  return answer;
}

}  // namespace

Result<LedgerDb::KvAnswer> LedgerDb::ProveKvGet(const StateAt& at, const std::string& ns, const std::string& key,
                                                std::uint64_t tree_size) {
  return AnswerOn(*this, at, engines::kv::KvMap(ns), tree_size,
                  [&](const indexes::AuthenticatedMap& m, const indexes::MapVersion& v) { return m.ProveGet(v, key); });
}

Result<LedgerDb::KvAnswer> LedgerDb::ProveKvScan(const StateAt& at, const std::string& ns,
                                                 const engines::kv::KvScan& scan, std::uint64_t tree_size) {
  return AnswerOn(*this, at, engines::kv::KvMap(ns), tree_size,
                  [&](const indexes::AuthenticatedMap& m, const indexes::MapVersion& v) {
                    return m.ProveRange(v, engines::kv::ToRangeQuery(scan));
                  });
}

Result<LedgerDb::ZsetRankAnswer> LedgerDb::ProveZsetRank(const StateAt& at, const std::string& ns, const std::string& set,
                                                         const std::string& member, std::uint64_t tree_size) {
  namespace kv = engines::kv;
  ZsetRankAnswer answer;
  std::optional<std::int64_t> score;
  VELLUM_ASSIGN_OR_RETURN(answer.members,
                          AnswerOn(*this, at, kv::ZsetMembersMap(ns, set), tree_size,
                                   [&](const indexes::AuthenticatedMap& m, const indexes::MapVersion& v) -> Result<merkle::MapProof> {
                                     VELLUM_ASSIGN_OR_RETURN(merkle::MapGetResult got, m.Get(v, member));
                                     if (got.entry.has_value()) {
                                       VELLUM_ASSIGN_OR_RETURN(score, kv::DecodeScore(got.entry->value));
                                     }
                                     return m.ProveGet(v, member);
                                   }));
  const std::string key = kv::ZsetScoreKey(score.value_or(0), member);
  VELLUM_ASSIGN_OR_RETURN(answer.scores, AnswerOn(*this, at, kv::ZsetScoresMap(ns, set), tree_size,
                                                  [&](const indexes::AuthenticatedMap& m, const indexes::MapVersion& v) {
                                                    return m.ProveGet(v, key);
                                                  }));
  return answer;
}

Result<LedgerDb::KvAnswer> LedgerDb::ProveZsetTop(const StateAt& at, const std::string& ns, const std::string& set,
                                                  std::uint64_t n, std::uint64_t tree_size) {
  return AnswerOn(*this, at, engines::kv::ZsetScoresMap(ns, set), tree_size,
                  [&](const indexes::AuthenticatedMap& m, const indexes::MapVersion& v) {
                    return m.ProveRange(v, engines::kv::ZsetTopQuery(n));
                  });
}

Result<LedgerDb::KvAnswer> LedgerDb::ProveZsetScoreRange(const StateAt& at, const std::string& ns, const std::string& set,
                                                         std::int64_t min, std::int64_t max, std::uint64_t limit,
                                                         std::uint64_t tree_size) {
  return AnswerOn(*this, at, engines::kv::ZsetScoresMap(ns, set), tree_size,
                  [&](const indexes::AuthenticatedMap& m, const indexes::MapVersion& v) {
                    return m.ProveRange(v, engines::kv::ZsetScoreRangeQuery(min, max, limit));
                  });
}

Result<LedgerDb::KvAnswer> LedgerDb::ProveDocScan(const StateAt& at, const std::string& collection,
                                                  std::uint64_t tree_size) {
  return AnswerOn(*this, at, {"doc", collection, ""}, tree_size,
                  [&](const indexes::AuthenticatedMap& m, const indexes::MapVersion& v) {
                    return m.ProveRange(v, engines::document::FindScanQuery());
                  });
}

Result<LedgerDb::KvAnswer> LedgerDb::ProveDocHistory(const StateAt& at, const std::string& collection,
                                                     const std::string& id, std::uint64_t tree_size) {
  return AnswerOn(*this, at, {"doc", collection, "revisions"}, tree_size,
                  [&](const indexes::AuthenticatedMap& m, const indexes::MapVersion& v) {
                    return m.ProveRange(v, engines::document::HistoryQuery(id));
                  });
}

Result<std::optional<LedgerDb::DocPlan>> LedgerDb::ChooseDocIndex(const StateAt& at, const std::string& collection,
                                                                  const engines::document::Filter& filter) {
  namespace doc = engines::document;
  std::optional<DocPlan> best;
  const auto* current = at.state->Find({"doc", collection, ""});
  if (current == nullptr) return best;  // nothing to read either way
  std::uint64_t best_cost = current->version.count();
  const auto& maps = at.state->maps();
  for (auto it = maps.lower_bound({"doc", collection, std::string(doc::kIndexPartPrefix)});
       it != maps.end() && it->first.model == "doc" && it->first.name == collection &&
       it->first.part.starts_with(doc::kIndexPartPrefix);
       ++it) {
    DocPlan plan{it->first.part.substr(doc::kIndexPartPrefix.size()), false};
    VELLUM_ASSIGN_OR_RETURN(indexes::AuthenticatedMap reader, at.views->MapFor(it->second.spec));
    if (doc::IndexableConditions(filter, plan.path) > 1) {  // else intersecting narrows nothing
      VELLUM_ASSIGN_OR_RETURN(merkle::MapGetResult multikey, reader.Get(it->second.version, doc::kMultikeyKey));
      plan.single_valued = !multikey.entry.has_value();
    }
    auto ranges = doc::IndexRanges(filter, plan.path, plan.single_valued);
    if (!ranges.has_value()) continue;
    std::uint64_t cost = 0;
    for (const auto& r : *ranges) {
      VELLUM_ASSIGN_OR_RETURN(merkle::MapRangeSummary summary, reader.Summary(it->second.version, r.lo, r.hi));
      cost += summary.count;
    }
    if (cost < best_cost) {
      best_cost = cost;
      best = std::move(plan);
    }
  }
  return best;
}

Result<std::vector<LedgerDb::KvAnswer>> LedgerDb::ProveDocIndexed(const StateAt& at, const std::string& collection,
                                                                 const DocPlan& plan,
                                                                 std::span<const merkle::MapRangeQuery> ranges,
                                                                 std::uint64_t tree_size) {
  namespace doc = engines::document;
  const indexes::MapId id{"doc", collection, doc::IndexPart(plan.path)};
  const auto* map = at.state->Find(id);
  if (map == nullptr) {
    return FailedPrecondition("collection '" + collection + "' has no index on '" + plan.path + "' at block " +
                              std::to_string(at.state->height().value_or(0)));
  }
  std::vector<KvAnswer> answers;
  if (plan.single_valued) {
    VELLUM_ASSIGN_OR_RETURN(indexes::AuthenticatedMap reader, at.views->MapFor(map->spec));
    VELLUM_ASSIGN_OR_RETURN(merkle::MapGetResult multikey, reader.Get(map->version, doc::kMultikeyKey));
    if (multikey.entry.has_value()) {
      return FailedPrecondition("the index on '" + plan.path + "' holds documents with several values at block " +
                                std::to_string(at.state->height().value_or(0)) + "; its bounds cannot be intersected");
    }
    VELLUM_ASSIGN_OR_RETURN(KvAnswer answer, AnswerOn(*this, at, id, tree_size,
                                                      [&](const indexes::AuthenticatedMap& m, const indexes::MapVersion& v) {
                                                        return m.ProveGet(v, doc::kMultikeyKey);
                                                      }));
    answers.push_back(std::move(answer));
  }
  for (const auto& range : ranges) {
    VELLUM_ASSIGN_OR_RETURN(KvAnswer answer, AnswerOn(*this, at, id, tree_size,
                                                      [&](const indexes::AuthenticatedMap& m, const indexes::MapVersion& v) {
                                                        return m.ProveRange(v, range);
                                                      }));
    answers.push_back(std::move(answer));
  }
  return answers;
}

}  // namespace vellum::api
