#include "vellum/api/query.h"

#include <utility>

#include "vellum/base/bytes.h"
#include "vellum/engines/document/doc_query.h"
#include "vellum/engines/document/path_index.h"
#include "vellum/engines/kv/kv_query.h"
#include "vellum/merkle/note.h"

namespace vellum::api {
namespace {

using nlohmann::json;

Result<std::string> Bytes(const json& q, const char* field) {
  if (!q.contains(field) || !q[field].is_string()) return InvalidArgument(std::string("query field '") + field + "' must be base64");
  return Base64Decode(q[field].get<std::string>());
}

std::string Str(const json& q, const char* field) {
  return q.contains(field) && q[field].is_string() ? q[field].get<std::string>() : std::string();
}

void AddView(verifier::Bundle& bundle, LedgerDb::KvAnswer answer) {
  bundle.block = std::move(answer.view.block);
  bundle.views.push_back({std::move(answer.view.catalog_key), std::move(answer.view.catalog), std::move(answer.map)});
}

// Where a query is answered: the checkpoint it is proven against (or would
// be), the block whose state answers, and that state.
struct Resolved {
  std::shared_ptr<const LedgerDb::SignedCheckpoint> signed_checkpoint;
  std::uint64_t height = 0;
  StateAt at;
  const merkle::Checkpoint& cp() const { return signed_checkpoint->checkpoint; }
};

Result<Resolved> Resolve(LedgerDb& db, const QueryPoint& point) {
  Resolved r;
  if (point.tree_size.has_value()) {
    VELLUM_ASSIGN_OR_RETURN(r.signed_checkpoint, db.CheckpointOf(*point.tree_size));
  } else {
    VELLUM_ASSIGN_OR_RETURN(r.signed_checkpoint, db.LatestCheckpoint());
  }
  const std::uint64_t size = r.cp().size;
  if (size == 0) return FailedPrecondition("the ledger has no block yet");
  r.height = point.at_height.value_or(size - 1);
  if (r.height >= size) {
    return OutOfRange("block " + std::to_string(r.height) + " is not in the tree of " + std::to_string(size) + " blocks");
  }
  VELLUM_ASSIGN_OR_RETURN(r.at, db.State(r.height));
  return r;
}

Result<engines::kv::KvScan> ParseScan(const json& query) {
  engines::kv::KvScan scan;
  VELLUM_ASSIGN_OR_RETURN(scan.lo, Bytes(query, "lo"));
  if (query.contains("hi")) {
    VELLUM_ASSIGN_OR_RETURN(std::string hi, Bytes(query, "hi"));
    scan.hi = std::move(hi);
  }
  if (query.contains("prefix")) {
    VELLUM_ASSIGN_OR_RETURN(std::string prefix, Bytes(query, "prefix"));
    scan.prefix = std::move(prefix);
  }
  scan.limit = query.value("limit", kMaxQueryPage);
  scan.reverse = query.value("reverse", false);
  if (scan.limit > kMaxQueryPage) return InvalidArgument("scan limit above the maximum page of " + std::to_string(kMaxQueryPage));
  return scan;
}

// Map `id` as of `at`: a reader and the version to read (nullopt: the map
// does not exist in that state).
struct MapAt {
  indexes::AuthenticatedMap reader;
  const indexes::MapVersion* version;
};
Result<std::optional<MapAt>> FindMap(const StateAt& at, const indexes::MapId& id) {
  const indexes::MapState* map = at.state->Find(id);
  if (map == nullptr) return std::optional<MapAt>();
  VELLUM_ASSIGN_OR_RETURN(indexes::AuthenticatedMap reader, at.views->MapFor(map->spec));
  return std::optional<MapAt>(MapAt{std::move(reader), &map->version});
}

// The result of a key-value or sorted-set query, read from the committed
// state `at` with the maps' plain reads. AuthenticatedMap's reads return
// exactly what the matching proofs verify to (authenticated_map.h), and the
// result is encoded by the verifier's own *ResultJson functions, so this is
// what a client's check of the bundle computes. nullopt for the document
// kinds, whose results need the document engine's evaluator.
Result<std::optional<json>> ResultFromState(LedgerDb& db, const StateAt& at, const json& query, const std::string& kind) {
  namespace kv = engines::kv;
  const std::string ns = Str(query, "namespace");
  if (kind == "kv.get") {
    VELLUM_ASSIGN_OR_RETURN(std::string key, Bytes(query, "key"));
    VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> value, db.ReadKv(at, ns, key));
    return std::optional<json>(verifier::KvGetResultJson(value));
  }
  if (kind == "kv.scan") {
    VELLUM_ASSIGN_OR_RETURN(kv::KvScan scan, ParseScan(query));
    kv::KvScanResult out;
    VELLUM_ASSIGN_OR_RETURN(std::optional<MapAt> map, FindMap(at, kv::KvMap(ns)));
    if (map.has_value()) {
      VELLUM_ASSIGN_OR_RETURN(merkle::MapRangeResult range, map->reader.Range(*map->version, kv::ToRangeQuery(scan)));
      out.entries.reserve(range.entries.size());
      for (auto& e : range.entries) out.entries.push_back({std::move(e.key), std::move(e.value)});
      out.has_more = range.has_more;
      out.next_key = std::move(range.next_key);
    }
    return std::optional<json>(verifier::KvScanResultJson(out));
  }
  const std::string set = Str(query, "set");
  if (kind == "zset.rank") {
    VELLUM_ASSIGN_OR_RETURN(std::string member, Bytes(query, "member"));
    VELLUM_ASSIGN_OR_RETURN(std::optional<MapAt> members, FindMap(at, kv::ZsetMembersMap(ns, set)));
    if (!members.has_value()) return std::optional<json>(verifier::ZsetRankResultJson(std::nullopt));
    VELLUM_ASSIGN_OR_RETURN(merkle::MapGetResult m, members->reader.Get(*members->version, member));
    if (!m.entry.has_value()) return std::optional<json>(verifier::ZsetRankResultJson(std::nullopt));
    VELLUM_ASSIGN_OR_RETURN(std::int64_t score, kv::DecodeScore(m.entry->value));
    VELLUM_ASSIGN_OR_RETURN(std::optional<MapAt> scores, FindMap(at, kv::ZsetScoresMap(ns, set)));
    if (!scores.has_value()) return DataLoss("sorted set '" + set + "' has members but no scores map");
    VELLUM_ASSIGN_OR_RETURN(merkle::MapGetResult s, scores->reader.Get(*scores->version, kv::ZsetScoreKey(score, member)));
    if (!s.entry.has_value() || s.total != m.total) {
      return DataLoss("sorted set '" + set + "': the scores map does not match the members map");
    }
    // Rank 0 is the highest score: the last entry in key order (as kv::VerifyZsetRank).
    return std::optional<json>(verifier::ZsetRankResultJson(kv::ZsetRank{score, s.total - 1 - s.entry->rank, s.total}));
  }
  if (kind == "zset.top" || kind == "zset.range") {
    merkle::MapRangeQuery range_query;
    if (kind == "zset.top") {
      range_query = kv::ZsetTopQuery(query.value("n", std::uint64_t{0}));
    } else {
      const std::int64_t min = query.value("min", std::int64_t{0}), max = query.value("max", std::int64_t{0});
      if (min > max) return std::optional<json>(verifier::ZsetMembersResultJson({}));
      range_query = kv::ZsetScoreRangeQuery(min, max, query.value("limit", kMaxQueryPage));
    }
    VELLUM_ASSIGN_OR_RETURN(std::optional<MapAt> scores, FindMap(at, kv::ZsetScoresMap(ns, set)));
    if (!scores.has_value()) return std::optional<json>(verifier::ZsetMembersResultJson({}));
    VELLUM_ASSIGN_OR_RETURN(merkle::MapRangeResult range, scores->reader.Range(*scores->version, range_query));
    VELLUM_ASSIGN_OR_RETURN(std::vector<kv::ZsetMember> members, kv::ZsetMembersOf(range.entries));
    return std::optional<json>(verifier::ZsetMembersResultJson(members));
  }
  return std::optional<json>();
}

// The value a get proof reveals for `key` (nullopt: the key is absent).
std::optional<std::string> RevealedValue(const merkle::MapProof& proof, std::string_view key) {
  for (const auto& node : proof.nodes) {
    if (node.type == merkle::MapProofNode::Type::kEntryWithValue && node.key == key) return node.value;
  }
  return std::nullopt;
}

// Limits the query kinds share, checked before any work.
Status CheckLimits(const json& query, const std::string& kind) {
  if (kind == "zset.top" && query.value("n", std::uint64_t{0}) > kMaxQueryPage) {
    return InvalidArgument("top-n above the maximum page of " + std::to_string(kMaxQueryPage));
  }
  if (kind == "zset.range" && query.value("limit", kMaxQueryPage) > kMaxQueryPage) {
    return InvalidArgument("limit above the maximum page of " + std::to_string(kMaxQueryPage));
  }
  if (kind == "kv.scan") return ParseScan(query).status();
  return Status::Ok();
}

}  // namespace

Result<verifier::Bundle> AnswerQuery(LedgerDb& db, const json& query, const QueryPoint& point) {
  VELLUM_ASSIGN_OR_RETURN(std::vector<std::string> keys, verifier::BundleCatalogKeys(query));
  (void)keys;  // validates the kind and the names before any work
  const std::string kind = query.at("kind").get<std::string>();
  VELLUM_RETURN_IF_ERROR(CheckLimits(query, kind));
  VELLUM_ASSIGN_OR_RETURN(Resolved r, Resolve(db, point));
  const merkle::Checkpoint& cp = r.cp();
  verifier::Bundle bundle;
  bundle.query = query;
  bundle.checkpoint = r.signed_checkpoint->note;
  bundle.ledger = cp.origin;
  bundle.tree_size = cp.size;
  bundle.height = r.height;
  const StateAt& at = r.at;

  if (kind == "kv.get") {
    // The lookup that builds the proof also gives the answer: a present key's
    // entry is revealed with its value (merkle::VerifyMapGet requires it), an
    // absent key's never is.
    VELLUM_ASSIGN_OR_RETURN(std::string key, Bytes(query, "key"));
    VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveKvGet(at, Str(query, "namespace"), key, cp.size));
    bundle.result = verifier::KvGetResultJson(RevealedValue(answer.map, key));
    AddView(bundle, std::move(answer));
    return bundle;
  } else if (kind == "kv.get_many") {
    const std::string ns = Str(query, "namespace");
    for (const auto& k : query.at("keys")) {
      VELLUM_ASSIGN_OR_RETURN(std::string key, Base64Decode(k.get<std::string>()));
      VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveKvGet(at, ns, key, cp.size));
      AddView(bundle, std::move(answer));
    }
  } else if (kind == "kv.scan") {
    VELLUM_ASSIGN_OR_RETURN(engines::kv::KvScan scan, ParseScan(query));
    VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveKvScan(at, Str(query, "namespace"), scan, cp.size));
    AddView(bundle, std::move(answer));
  } else if (kind == "zset.rank") {
    VELLUM_ASSIGN_OR_RETURN(std::string member, Bytes(query, "member"));
    VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveZsetRank(at, Str(query, "namespace"), Str(query, "set"), member, cp.size));
    AddView(bundle, std::move(answer.members));
    AddView(bundle, std::move(answer.scores));
  } else if (kind == "zset.top") {
    const std::uint64_t n = query.value("n", std::uint64_t{0});
    VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveZsetTop(at, Str(query, "namespace"), Str(query, "set"), n, cp.size));
    AddView(bundle, std::move(answer));
  } else if (kind == "zset.range") {
    const std::uint64_t limit = query.value("limit", kMaxQueryPage);
    VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveZsetScoreRange(at, Str(query, "namespace"), Str(query, "set"),
                                                                query.value("min", std::int64_t{0}),
                                                                query.value("max", std::int64_t{0}), limit, cp.size));
    AddView(bundle, std::move(answer));
  } else if (kind == "doc.find") {
    namespace doc = engines::document;
    const std::string collection = Str(query, "collection");
    VELLUM_ASSIGN_OR_RETURN(doc::Filter filter, doc::Filter::Parse(query.at("filter")));
    // The plan: the index the query names, else the cheapest declared one,
    // else a full scan. The bundle's query records the choice ("index",
    // "index_single_valued").
    LedgerDb::DocPlan plan{Str(query, "index"), query.value("index_single_valued", false)};
    if (!query.contains("index")) {
      VELLUM_ASSIGN_OR_RETURN(std::optional<LedgerDb::DocPlan> chosen, db.ChooseDocIndex(at, collection, filter));
      if (chosen.has_value()) {
        plan = std::move(*chosen);
        bundle.query["index"] = plan.path;
        if (plan.single_valued) bundle.query["index_single_valued"] = true;
      }
    }
    if (plan.path.empty()) {
      VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveDocScan(at, collection, cp.size));
      AddView(bundle, std::move(answer));
    } else {
      auto ranges = doc::IndexRanges(filter, plan.path, plan.single_valued);
      if (!ranges.has_value()) {
        return InvalidArgument("the filter has no condition the index on '" + plan.path + "' can serve");
      }
      VELLUM_ASSIGN_OR_RETURN(auto answers, db.ProveDocIndexed(at, collection, plan, *ranges, cp.size));
      for (auto& answer : answers) AddView(bundle, std::move(answer));
    }
  } else {  // doc.history (BundleCatalogKeys refused anything else)
    const std::string collection = Str(query, "collection"), id = Str(query, "id");
    VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveDocHistory(at, collection, id, cp.size));
    // Each revision's transaction, proven in the journal. The revisions are
    // the entries the range proof reveals with their values, in key order.
    const std::string prefix = engines::document::RevisionPrefix(id);
    for (const auto& node : answer.map.nodes) {
      if (node.type != merkle::MapProofNode::Type::kEntryWithValue || !node.key.starts_with(prefix)) continue;
      if (bundle.transactions.size() == verifier::kMaxBundleTransactions) {
        return ResourceExhausted("document '" + id + "' has more than " +
                                 std::to_string(verifier::kMaxBundleTransactions) + " revisions");
      }
      VELLUM_ASSIGN_OR_RETURN(engines::document::Revision rev, engines::document::DecodeRevision(node.value));
      VELLUM_ASSIGN_OR_RETURN(journal::BlockHeader header, db.journal().GetBlock(rev.height));
      VELLUM_ASSIGN_OR_RETURN(journal::TransactionProof proof,
                              db.journal().ProveTransaction(header.first_tx_seq + rev.index_in_block, cp.size));
      bundle.transactions.push_back(std::move(proof));
    }
    AddView(bundle, std::move(answer));
  }

  // The answer comes from the same committed state as the proofs, read
  // directly (a client's check recomputes it from the proofs; the api and
  // bundle tests check that both agree). Documents: the document engine's
  // evaluator over the proofs (filters, projections) is the only one there is.
  VELLUM_ASSIGN_OR_RETURN(std::optional<json> direct, ResultFromState(db, at, query, kind));
  if (direct.has_value()) {
    bundle.result = std::move(*direct);
    return bundle;
  }
  auto result = verifier::EvaluateBundle(bundle, cp.size, cp.root);
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kInvalidArgument) return result.status();
    return DataLoss("the server's own proof does not verify: " + result.status().message());
  }
  bundle.result = std::move(result).value();
  return bundle;
}

Result<QueryAnswer> AnswerQueryWithoutProof(LedgerDb& db, const json& query, const QueryPoint& point) {
  VELLUM_ASSIGN_OR_RETURN(std::vector<std::string> keys, verifier::BundleCatalogKeys(query));
  (void)keys;
  const std::string kind = query.at("kind").get<std::string>();
  VELLUM_RETURN_IF_ERROR(CheckLimits(query, kind));
  VELLUM_ASSIGN_OR_RETURN(Resolved r, Resolve(db, point));
  VELLUM_ASSIGN_OR_RETURN(std::optional<json> direct, ResultFromState(db, r.at, query, kind));
  if (direct.has_value()) return QueryAnswer{r.height, r.cp().size, std::move(*direct)};
  // Documents: evaluated over their proofs (see AnswerQuery).
  VELLUM_ASSIGN_OR_RETURN(verifier::Bundle bundle, AnswerQuery(db, query, point));
  return QueryAnswer{bundle.height, bundle.tree_size, std::move(bundle.result)};
}

}  // namespace vellum::api
