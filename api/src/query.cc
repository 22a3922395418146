#include "vellum/api/query.h"

#include <utility>

#include "vellum/base/bytes.h"
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

// The checkpoint the answer is proven against: (note, size, root).
Result<merkle::Checkpoint> PickCheckpoint(LedgerDb& db, const QueryPoint& point, std::string& note) {
  if (point.tree_size.has_value()) {
    VELLUM_ASSIGN_OR_RETURN(auto snapshot, db.journal().store().Read());
    auto stored = snapshot->CheckpointAt(*point.tree_size);
    if (!stored.ok()) {
      return NotFound("no signed checkpoint of tree size " + std::to_string(*point.tree_size) +
                      " (ask for one the server has issued, or omit the size)");
    }
    note = std::move(stored).value();
  } else {
    VELLUM_ASSIGN_OR_RETURN(note, db.journal().Checkpoint());
  }
  VELLUM_ASSIGN_OR_RETURN(merkle::SignedNote parsed, merkle::ParseSignedNote(note));
  return merkle::ParseCheckpointBody(parsed.body);
}

}  // namespace

Result<verifier::Bundle> AnswerQuery(LedgerDb& db, const json& query, const QueryPoint& point) {
  VELLUM_ASSIGN_OR_RETURN(std::vector<std::string> keys, verifier::BundleCatalogKeys(query));
  (void)keys;  // validates the kind and the names before any work
  verifier::Bundle bundle;
  bundle.query = query;
  VELLUM_ASSIGN_OR_RETURN(merkle::Checkpoint cp, PickCheckpoint(db, point, bundle.checkpoint));
  if (cp.size == 0) return FailedPrecondition("the ledger has no block yet");
  bundle.ledger = cp.origin;
  bundle.tree_size = cp.size;
  bundle.height = point.at_height.value_or(cp.size - 1);
  if (bundle.height >= cp.size) {
    return OutOfRange("block " + std::to_string(bundle.height) + " is not in the tree of " + std::to_string(cp.size) +
                      " blocks");
  }
  VELLUM_ASSIGN_OR_RETURN(StateAt at, db.State(bundle.height));

  const std::string kind = query.at("kind").get<std::string>();
  if (kind == "kv.get") {
    VELLUM_ASSIGN_OR_RETURN(std::string key, Bytes(query, "key"));
    VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveKvGet(at, Str(query, "namespace"), key, cp.size));
    AddView(bundle, std::move(answer));
  } else if (kind == "kv.get_many") {
    const std::string ns = Str(query, "namespace");
    for (const auto& k : query.at("keys")) {
      VELLUM_ASSIGN_OR_RETURN(std::string key, Base64Decode(k.get<std::string>()));
      VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveKvGet(at, ns, key, cp.size));
      AddView(bundle, std::move(answer));
    }
  } else if (kind == "kv.scan") {
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
    VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveKvScan(at, Str(query, "namespace"), scan, cp.size));
    AddView(bundle, std::move(answer));
  } else if (kind == "zset.rank") {
    VELLUM_ASSIGN_OR_RETURN(std::string member, Bytes(query, "member"));
    VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveZsetRank(at, Str(query, "namespace"), Str(query, "set"), member, cp.size));
    AddView(bundle, std::move(answer.members));
    AddView(bundle, std::move(answer.scores));
  } else if (kind == "zset.top") {
    const std::uint64_t n = query.value("n", std::uint64_t{0});
    if (n > kMaxQueryPage) return InvalidArgument("top-n above the maximum page of " + std::to_string(kMaxQueryPage));
    VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveZsetTop(at, Str(query, "namespace"), Str(query, "set"), n, cp.size));
    AddView(bundle, std::move(answer));
  } else if (kind == "zset.range") {
    const std::uint64_t limit = query.value("limit", kMaxQueryPage);
    if (limit > kMaxQueryPage) return InvalidArgument("limit above the maximum page of " + std::to_string(kMaxQueryPage));
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
    VELLUM_ASSIGN_OR_RETURN(auto answer, db.ProveDocHistory(at, Str(query, "collection"), Str(query, "id"), cp.size));
    AddView(bundle, std::move(answer));
  }

  // The answer is what the verifier's evaluator makes of the proofs; a proof
  // that does not check against our own tree means damaged storage.
  auto result = verifier::EvaluateBundle(bundle, cp.size, cp.root);
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kInvalidArgument) return result.status();
    return DataLoss("the server's own proof does not verify: " + result.status().message());
  }
  bundle.result = std::move(result).value();
  return bundle;
}

}  // namespace vellum::api
