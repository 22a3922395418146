#include "vellum/verifier/bundle.h"

#include <limits>
#include <set>
#include <utility>

#include "vellum/base/bytes.h"
#include "vellum/engines/document/canonical_json.h"
#include "vellum/engines/document/doc_ops.h"
#include "vellum/engines/document/doc_query.h"
#include "vellum/engines/document/filter.h"
#include "vellum/engines/document/path_index.h"
#include "vellum/engines/kv/kv_query.h"
#include "vellum/journal/format.h"
#include "vellum/merkle/catalog.h"
#include "vellum/verifier/view_proof.h"

namespace vellum::verifier {
namespace {

using nlohmann::json;
namespace doc = engines::document;
namespace kv = engines::kv;

// Exactly `required` plus any of `optional`; anything else is malformed, so a
// bundle has one reading.
Status CheckFields(const json& obj, std::string_view what, const std::set<std::string>& required,
                   const std::set<std::string>& optional = {}) {
  if (!obj.is_object()) return InvalidArgument(std::string(what) + " must be a JSON object");
  for (const auto& [key, value] : obj.items()) {
    if (required.count(key) == 0 && optional.count(key) == 0) {
      return InvalidArgument(std::string(what) + ": unknown field '" + key + "'");
    }
  }
  for (const auto& key : required) {
    if (!obj.contains(key)) return InvalidArgument(std::string(what) + ": missing field '" + key + "'");
  }
  return Status::Ok();
}

Result<std::string> GetString(const json& obj, const char* field) {
  const json& v = obj.at(field);
  if (!v.is_string()) return InvalidArgument(std::string("field '") + field + "' must be a string");
  return v.get<std::string>();
}

Result<std::string> GetBytes(const json& obj, const char* field) {
  VELLUM_ASSIGN_OR_RETURN(std::string text, GetString(obj, field));
  auto bytes = Base64Decode(text);
  if (!bytes.ok()) return bytes.status().WithContext(std::string("field '") + field + "'");
  return bytes;
}

Result<std::uint64_t> GetU64(const json& obj, const char* field) {
  const json& v = obj.at(field);
  // A query built in memory holds small integers as signed; parsed text holds
  // them as unsigned. Both mean the same number.
  if (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  }
  if (!v.is_number_unsigned()) return InvalidArgument(std::string("field '") + field + "' must be a non-negative integer");
  return v.get<std::uint64_t>();
}

Result<std::int64_t> GetI64(const json& obj, const char* field) {
  const json& v = obj.at(field);
  if (v.is_number_unsigned()) {
    if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return InvalidArgument(std::string("field '") + field + "' is out of the int64 range");
    }
    return static_cast<std::int64_t>(v.get<std::uint64_t>());
  }
  if (!v.is_number_integer()) return InvalidArgument(std::string("field '") + field + "' must be an integer");
  return v.get<std::int64_t>();
}

Result<bool> GetBool(const json& obj, const char* field) {
  const json& v = obj.at(field);
  if (!v.is_boolean()) return InvalidArgument(std::string("field '") + field + "' must be true or false");
  return v.get<bool>();
}

Result<std::string> Key(std::string_view model, std::string_view name, std::string_view part) {
  return merkle::CatalogKey(model, name, part);
}

// ---- Queries ----------------------------------------------------------------

struct KvGetQuery {
  std::string ns, key;
};
struct KvScanQuery {
  std::string ns;
  kv::KvScan scan;
};
struct ZsetQuery {
  std::string ns, set, member;
  std::uint64_t n = 0, limit = 0;
  std::int64_t min = 0, max = 0;
};
struct FindQuery {
  std::string collection;
  json filter;
  doc::FindOptions options;
  std::string index;  // the path index read; empty: a full scan
  bool single_valued = false;
};

Result<std::string> QueryKind(const json& query) {
  if (!query.is_object() || !query.contains("kind")) return InvalidArgument("query: missing field 'kind'");
  return GetString(query, "kind");
}

Result<KvScanQuery> ParseKvScan(const json& q) {
  VELLUM_RETURN_IF_ERROR(CheckFields(q, "kv.scan query", {"kind", "namespace", "lo", "limit", "reverse"}, {"hi", "prefix"}));
  KvScanQuery out;
  VELLUM_ASSIGN_OR_RETURN(out.ns, GetString(q, "namespace"));
  VELLUM_ASSIGN_OR_RETURN(out.scan.lo, GetBytes(q, "lo"));
  if (q.contains("hi")) {
    VELLUM_ASSIGN_OR_RETURN(std::string hi, GetBytes(q, "hi"));
    out.scan.hi = std::move(hi);
  }
  if (q.contains("prefix")) {
    VELLUM_ASSIGN_OR_RETURN(std::string prefix, GetBytes(q, "prefix"));
    out.scan.prefix = std::move(prefix);
  }
  VELLUM_ASSIGN_OR_RETURN(out.scan.limit, GetU64(q, "limit"));
  VELLUM_ASSIGN_OR_RETURN(out.scan.reverse, GetBool(q, "reverse"));
  return out;
}

Result<ZsetQuery> ParseZset(const json& q, std::string_view kind) {
  ZsetQuery out;
  if (kind == "zset.rank") {
    VELLUM_RETURN_IF_ERROR(CheckFields(q, "zset.rank query", {"kind", "namespace", "set", "member"}));
    VELLUM_ASSIGN_OR_RETURN(out.member, GetBytes(q, "member"));
  } else if (kind == "zset.top") {
    VELLUM_RETURN_IF_ERROR(CheckFields(q, "zset.top query", {"kind", "namespace", "set", "n"}));
    VELLUM_ASSIGN_OR_RETURN(out.n, GetU64(q, "n"));
  } else {
    VELLUM_RETURN_IF_ERROR(CheckFields(q, "zset.range query", {"kind", "namespace", "set", "min", "max", "limit"}));
    VELLUM_ASSIGN_OR_RETURN(out.min, GetI64(q, "min"));
    VELLUM_ASSIGN_OR_RETURN(out.max, GetI64(q, "max"));
    VELLUM_ASSIGN_OR_RETURN(out.limit, GetU64(q, "limit"));
  }
  VELLUM_ASSIGN_OR_RETURN(out.ns, GetString(q, "namespace"));
  VELLUM_ASSIGN_OR_RETURN(out.set, GetString(q, "set"));
  return out;
}

Result<FindQuery> ParseFind(const json& q) {
  VELLUM_RETURN_IF_ERROR(CheckFields(q, "doc.find query", {"kind", "collection", "filter", "descending", "skip", "projection"},
                                     {"sort_path", "limit", "index", "index_single_valued"}));
  FindQuery out;
  VELLUM_ASSIGN_OR_RETURN(out.collection, GetString(q, "collection"));
  if (q.contains("index")) {
    VELLUM_ASSIGN_OR_RETURN(out.index, GetString(q, "index"));
    if (!out.index.empty()) VELLUM_RETURN_IF_ERROR(doc::CheckIndexPath(out.index).WithContext("field 'index'"));
  }
  if (q.contains("index_single_valued")) {
    VELLUM_ASSIGN_OR_RETURN(out.single_valued, GetBool(q, "index_single_valued"));
    if (out.single_valued && out.index.empty()) return InvalidArgument("field 'index_single_valued' needs an 'index'");
  }
  out.filter = q.at("filter");
  if (q.contains("sort_path")) {
    VELLUM_ASSIGN_OR_RETURN(std::string path, GetString(q, "sort_path"));
    out.options.sort_path = std::move(path);
  }
  VELLUM_ASSIGN_OR_RETURN(out.options.descending, GetBool(q, "descending"));
  VELLUM_ASSIGN_OR_RETURN(out.options.skip, GetU64(q, "skip"));
  if (q.contains("limit")) {
    VELLUM_ASSIGN_OR_RETURN(out.options.limit, GetU64(q, "limit"));
  }
  const json& projection = q.at("projection");
  if (!projection.is_array()) return InvalidArgument("field 'projection' must be an array of paths");
  for (const auto& p : projection) {
    if (!p.is_string()) return InvalidArgument("field 'projection' must be an array of paths");
    out.options.projection.push_back(p.get<std::string>());
  }
  return out;
}

// The keys of a kv.get_many query, in order (1 to kMaxGetManyKeys).
Result<std::vector<std::string>> ParseGetMany(const json& q) {
  VELLUM_RETURN_IF_ERROR(CheckFields(q, "kv.get_many query", {"kind", "namespace", "keys"}));
  const json& list = q.at("keys");
  if (!list.is_array() || list.empty() || list.size() > kMaxGetManyKeys) {
    return InvalidArgument("field 'keys' must be an array of 1 to " + std::to_string(kMaxGetManyKeys) + " keys");
  }
  std::vector<std::string> keys;
  for (const auto& k : list) {
    if (!k.is_string()) return InvalidArgument("field 'keys' must hold base64 strings");
    auto decoded = Base64Decode(k.get<std::string>());
    if (!decoded.ok()) return decoded.status().WithContext("field 'keys'");
    keys.push_back(std::move(decoded).value());
  }
  return keys;
}

// The key ranges an index-backed find reads (nullopt: a full scan).
Result<std::optional<std::vector<merkle::MapRangeQuery>>> FindRanges(const FindQuery& f, const doc::Filter& filter) {
  if (f.index.empty()) return std::optional<std::vector<merkle::MapRangeQuery>>();
  auto ranges = doc::IndexRanges(filter, f.index, f.single_valued);
  if (!ranges.has_value()) {
    return InvalidArgument("query: the filter has no condition the index on '" + f.index + "' can serve");
  }
  return ranges;
}

Result<json> DocumentJson(const std::string& canonical) {
  if (canonical.empty()) return json();
  return doc::ParseJson(canonical);
}

// ---- Bundle JSON ------------------------------------------------------------

Result<merkle::MapProof> GetMapProof(const json& obj, const char* field) {
  VELLUM_ASSIGN_OR_RETURN(std::string bytes, GetBytes(obj, field));
  // A map the catalog proves absent has no map proof.
  if (bytes.empty()) return merkle::MapProof{};
  auto proof = merkle::MapProof::Decode(bytes);
  if (!proof.ok()) return proof.status().WithContext(std::string("field '") + field + "'");
  return proof;
}

}  // namespace

Result<std::vector<std::string>> BundleCatalogKeys(const json& query) {
  VELLUM_ASSIGN_OR_RETURN(std::string kind, QueryKind(query));
  std::vector<std::string> keys;
  if (kind == "kv.get" || kind == "kv.scan") {
    VELLUM_ASSIGN_OR_RETURN(std::string ns, GetString(query, "namespace"));
    VELLUM_ASSIGN_OR_RETURN(std::string key, Key("kv", ns, ""));
    keys.push_back(std::move(key));
  } else if (kind == "kv.get_many") {
    VELLUM_ASSIGN_OR_RETURN(std::vector<std::string> wanted, ParseGetMany(query));
    VELLUM_ASSIGN_OR_RETURN(std::string ns, GetString(query, "namespace"));
    VELLUM_ASSIGN_OR_RETURN(std::string key, Key("kv", ns, ""));
    keys.assign(wanted.size(), key);
  } else if (kind == "zset.rank" || kind == "zset.top" || kind == "zset.range") {
    VELLUM_ASSIGN_OR_RETURN(ZsetQuery z, ParseZset(query, kind));
    if (kind == "zset.rank") {
      VELLUM_ASSIGN_OR_RETURN(std::string members, Key("zset", z.ns, z.set + "/members"));
      keys.push_back(std::move(members));
    }
    VELLUM_ASSIGN_OR_RETURN(std::string scores, Key("zset", z.ns, z.set + "/by-score"));
    keys.push_back(std::move(scores));
  } else if (kind == "doc.find") {
    VELLUM_ASSIGN_OR_RETURN(FindQuery f, ParseFind(query));
    VELLUM_ASSIGN_OR_RETURN(doc::Filter filter, doc::Filter::Parse(f.filter));
    VELLUM_ASSIGN_OR_RETURN(auto ranges, FindRanges(f, filter));
    // One view per index range (all of the same map; a single-valued plan
    // first proves the multikey count absent), or the collection.
    VELLUM_ASSIGN_OR_RETURN(std::string key, Key("doc", f.collection, f.index.empty() ? "" : doc::IndexPart(f.index)));
    keys.assign(ranges.has_value() ? ranges->size() + (f.single_valued ? 1 : 0) : 1, key);
  } else if (kind == "doc.history") {
    VELLUM_ASSIGN_OR_RETURN(std::string collection, GetString(query, "collection"));
    VELLUM_ASSIGN_OR_RETURN(std::string key, Key("doc", collection, "revisions"));
    keys.push_back(std::move(key));
  } else {
    return InvalidArgument("query: unknown kind '" + kind + "'");
  }
  return keys;
}

json KvGetResultJson(const std::optional<std::string>& value) {
  if (!value.has_value()) return json{{"found", false}};
  return json{{"found", true}, {"value", Base64Encode(*value)}};
}

json KvScanResultJson(const kv::KvScanResult& scan) {
  json list = json::array();
  for (const auto& e : scan.entries) list.push_back({{"key", Base64Encode(e.key)}, {"value", Base64Encode(e.value)}});
  json out{{"entries", std::move(list)}, {"has_more", scan.has_more}};
  if (scan.next_key.has_value()) out["next_key"] = Base64Encode(*scan.next_key);
  return out;
}

json ZsetRankResultJson(const std::optional<kv::ZsetRank>& rank) {
  if (!rank.has_value()) return json{{"found", false}};
  return json{{"found", true}, {"score", rank->score}, {"rank", rank->rank}, {"total", rank->total}};
}

json ZsetMembersResultJson(const std::vector<kv::ZsetMember>& members) {
  json list = json::array();
  for (const auto& m : members) list.push_back({{"member", Base64Encode(m.member)}, {"score", m.score}});
  return {{"members", std::move(list)}};
}

namespace {

// Checks that `tx`, proven in the journal, wrote revision `rev` of document
// `id` in `collection`: it sits at the revision's block and place, its block's
// time is the revision's, and one of its document operations on that
// document has the revision's effect (the body of an insert or replace, or a
// delete).
Status CheckRevisionTransaction(const std::string& collection, const std::string& id, const doc::Revision& rev,
                                const journal::TransactionProof& proof, std::uint64_t at_height,
                                std::uint64_t tree_size, const merkle::Hash& root, std::uint64_t index) {
  VELLUM_ASSIGN_OR_RETURN(journal::Transaction tx, journal::VerifyTransactionProof(proof, tree_size, root));
  VELLUM_ASSIGN_OR_RETURN(journal::BlockHeader header, journal::DecodeBlockHeader(proof.block.header));
  auto fail = [&](const std::string& expected, const std::string& found) {
    return VerificationFailed({"doc.history.transaction", expected, found, index, rev.version});
  };
  if (header.height != rev.height || proof.index_in_block != rev.index_in_block || header.height > at_height) {
    return fail("transaction " + std::to_string(rev.index_in_block) + " of block " + std::to_string(rev.height),
                "transaction " + std::to_string(proof.index_in_block) + " of block " + std::to_string(header.height));
  }
  if (header.timestamp_us != rev.time_us) {
    return fail("block time " + std::to_string(rev.time_us), "block time " + std::to_string(header.timestamp_us));
  }
  std::uint32_t doc_index = 0;
  for (const auto& op : tx.operations) {
    if (!doc::IsDocOp(op.kind)) continue;
    auto decoded = doc::DecodeDocOp(op.kind, op.body);
    if (!decoded.ok()) return fail("a document operation", "a malformed one");
    if (decoded->type == doc::DocOp::Type::kAssert) continue;  // writes nothing, takes no id
    const std::string op_id = decoded->type == doc::DocOp::Type::kInsert && decoded->id.empty()
                                  ? doc::DerivedDocumentId(header.height, proof.index_in_block, doc_index)
                                  : decoded->id;
    ++doc_index;
    if (decoded->collection != collection || op_id != id) continue;
    const bool writes = decoded->type == doc::DocOp::Type::kInsert || decoded->type == doc::DocOp::Type::kReplace;
    if (rev.deleted ? decoded->type == doc::DocOp::Type::kDelete : writes && decoded->json == rev.json) {
      return Status::Ok();
    }
  }
  return fail("an operation writing version " + std::to_string(rev.version), "none in the transaction");
}

}  // namespace

Result<json> EvaluateBundle(const Bundle& bundle, std::uint64_t tree_size, const merkle::Hash& root) {
  VELLUM_ASSIGN_OR_RETURN(std::vector<std::string> keys, BundleCatalogKeys(bundle.query));
  if (!bundle.transactions.empty() && bundle.query.value("kind", "") != "doc.history") {
    return VerificationFailed({"bundle.transactions", "none for this query",
                               std::to_string(bundle.transactions.size()), 0, 0});
  }
  if (bundle.views.size() != keys.size()) {
    return VerificationFailed({"bundle.views", std::to_string(keys.size()) + " map proofs for this query",
                               std::to_string(bundle.views.size()), 0, 0});
  }
  std::vector<std::optional<merkle::CatalogEntry>> entries;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (bundle.views[i].catalog_key != keys[i]) {
      return VerificationFailed({"bundle.catalog_key", HexEncode(keys[i]), HexEncode(bundle.views[i].catalog_key), i, 0});
    }
    ViewProof view{bundle.block, bundle.views[i].catalog_key, bundle.views[i].catalog};
    VELLUM_ASSIGN_OR_RETURN(VerifiedView verified, VerifyViewProof(view, tree_size, root));
    if (verified.header.height != bundle.height) {
      return VerificationFailed({"bundle.height", std::to_string(bundle.height), std::to_string(verified.header.height),
                                 verified.header.height, tree_size});
    }
    entries.push_back(verified.entry);
  }

  const json& q = bundle.query;
  VELLUM_ASSIGN_OR_RETURN(std::string kind, QueryKind(q));
  if (kind == "kv.get") {
    VELLUM_RETURN_IF_ERROR(CheckFields(q, "kv.get query", {"kind", "namespace", "key"}));
    VELLUM_ASSIGN_OR_RETURN(std::string key, GetBytes(q, "key"));
    VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> value, kv::VerifyKvGet(key, entries[0], bundle.views[0].map));
    return KvGetResultJson(value);
  }
  if (kind == "kv.get_many") {
    VELLUM_ASSIGN_OR_RETURN(std::vector<std::string> wanted, ParseGetMany(q));
    json list = json::array();
    for (size_t i = 0; i < wanted.size(); ++i) {
      VELLUM_ASSIGN_OR_RETURN(std::optional<std::string> value, kv::VerifyKvGet(wanted[i], entries[i], bundle.views[i].map));
      json item{{"key", Base64Encode(wanted[i])}, {"found", value.has_value()}};
      if (value.has_value()) item["value"] = Base64Encode(*value);
      list.push_back(std::move(item));
    }
    return json{{"entries", std::move(list)}};
  }
  if (kind == "kv.scan") {
    VELLUM_ASSIGN_OR_RETURN(KvScanQuery s, ParseKvScan(q));
    VELLUM_ASSIGN_OR_RETURN(kv::KvScanResult r, kv::VerifyKvScan(s.scan, entries[0], bundle.views[0].map));
    return KvScanResultJson(r);
  }
  if (kind == "zset.rank") {
    VELLUM_ASSIGN_OR_RETURN(ZsetQuery z, ParseZset(q, kind));
    VELLUM_ASSIGN_OR_RETURN(std::optional<kv::ZsetRank> rank,
                            kv::VerifyZsetRank(z.member, entries[0], bundle.views[0].map, entries[1], bundle.views[1].map));
    return ZsetRankResultJson(rank);
  }
  if (kind == "zset.top") {
    VELLUM_ASSIGN_OR_RETURN(ZsetQuery z, ParseZset(q, kind));
    VELLUM_ASSIGN_OR_RETURN(auto members, kv::VerifyZsetTop(z.n, entries[0], bundle.views[0].map));
    return ZsetMembersResultJson(members);
  }
  if (kind == "zset.range") {
    VELLUM_ASSIGN_OR_RETURN(ZsetQuery z, ParseZset(q, kind));
    VELLUM_ASSIGN_OR_RETURN(auto members,
                            kv::VerifyZsetScoreRange(z.min, z.max, z.limit, entries[0], bundle.views[0].map));
    return ZsetMembersResultJson(members);
  }
  if (kind == "doc.find") {
    VELLUM_ASSIGN_OR_RETURN(FindQuery f, ParseFind(q));
    VELLUM_ASSIGN_OR_RETURN(doc::Filter filter, doc::Filter::Parse(f.filter));
    std::vector<doc::FoundDocument> found;
    if (f.index.empty()) {
      VELLUM_ASSIGN_OR_RETURN(found, doc::VerifyFind(filter, entries[0], bundle.views[0].map));
    } else {
      std::vector<const merkle::MapProof*> proofs;
      for (const auto& v : bundle.views) proofs.push_back(&v.map);
      const merkle::MapProof* multikey = nullptr;
      if (f.single_valued) {
        multikey = proofs.front();
        proofs.erase(proofs.begin());
      }
      VELLUM_ASSIGN_OR_RETURN(found, doc::VerifyIndexedFind(filter, f.index, f.single_valued, entries[0], multikey, proofs));
    }
    found = doc::ApplyFindOptions(std::move(found), f.options);
    json list = json::array();
    for (auto& d : found) {
      list.push_back({{"id", d.id}, {"version", d.revision.version}, {"height", d.revision.height},
                      {"index_in_block", d.revision.index_in_block}, {"time_us", d.revision.time_us},
                      {"document", std::move(d.document)}});
    }
    return json{{"documents", std::move(list)}};
  }
  // doc.history
  VELLUM_RETURN_IF_ERROR(CheckFields(q, "doc.history query", {"kind", "collection", "id"}));
  VELLUM_ASSIGN_OR_RETURN(std::string id, GetString(q, "id"));
  VELLUM_ASSIGN_OR_RETURN(std::vector<doc::Revision> revisions,
                          doc::VerifyHistory(id, entries[0], bundle.views[0].map));
  if (bundle.transactions.size() != revisions.size()) {
    return VerificationFailed({"doc.history.transactions", std::to_string(revisions.size()) + " transaction proofs",
                               std::to_string(bundle.transactions.size()), 0, revisions.size()});
  }
  VELLUM_ASSIGN_OR_RETURN(std::string collection, GetString(q, "collection"));
  for (size_t i = 0; i < revisions.size(); ++i) {
    VELLUM_RETURN_IF_ERROR(CheckRevisionTransaction(collection, id, revisions[i], bundle.transactions[i], bundle.height,
                                                    tree_size, root, i));
  }
  json list = json::array();
  for (const auto& r : revisions) {
    json item{{"version", r.version},
              {"height", r.height},
              {"index_in_block", r.index_in_block},
              {"time_us", r.time_us},
              {"deleted", r.deleted}};
    if (!r.deleted) {
      VELLUM_ASSIGN_OR_RETURN(item["document"], DocumentJson(r.json));
    }
    list.push_back(std::move(item));
  }
  return json{{"revisions", std::move(list)}};
}

size_t BundleResultSize(const json& result) {
  for (const char* field : {"entries", "members", "documents", "revisions"}) {
    if (result.contains(field) && result[field].is_array()) return result[field].size();
  }
  return result.value("found", false) ? 1 : 0;
}

Result<VerifiedBundle> VerifyBundle(const Bundle& bundle, const merkle::NoteVerifier& verifier,
                                    const std::optional<merkle::Checkpoint>& trusted) {
  auto own = merkle::VerifyCheckpoint(bundle.checkpoint, verifier);
  if (!own.ok()) return own.status().WithContext("the bundle's checkpoint");
  if (own->origin != bundle.ledger) {
    return VerificationFailed({"bundle.ledger", own->origin, bundle.ledger, 0, own->size});
  }
  if (own->size != bundle.tree_size) {
    return VerificationFailed({"bundle.tree_size", std::to_string(own->size), std::to_string(bundle.tree_size), 0, own->size});
  }
  if (trusted.has_value()) {
    if (trusted->origin != own->origin) {
      return VerificationFailed({"checkpoint.origin", trusted->origin, own->origin, 0, trusted->size});
    }
    if (trusted->size != own->size) {
      return VerificationFailed({"checkpoint.size", std::to_string(trusted->size), std::to_string(own->size), 0,
                                 trusted->size});
    }
    if (trusted->root != own->root) {
      return VerificationFailed({"checkpoint.root", merkle::HashHex(trusted->root), merkle::HashHex(own->root), 0,
                                 trusted->size});
    }
  }
  VELLUM_ASSIGN_OR_RETURN(json computed, EvaluateBundle(bundle, own->size, own->root));
  if (computed != bundle.result) {
    const size_t claimed_n = BundleResultSize(bundle.result);
    const size_t proven_n = BundleResultSize(computed);
    std::string claimed_text = bundle.result.dump();
    std::string proven_text = computed.dump();
    if (claimed_text.size() > 200) claimed_text = claimed_text.substr(0, 200) + "...";
    if (proven_text.size() > 200) proven_text = proven_text.substr(0, 200) + "...";
    return VerificationFailed({"bundle.result",
                               "the proven result (" + std::to_string(proven_n) + " items) " + proven_text,
                               "the claimed result (" + std::to_string(claimed_n) + " items) " + claimed_text, 0,
                               own->size});
  }
  VerifiedBundle out;
  out.checkpoint = *own;
  out.height = bundle.height;
  out.kind = bundle.query.at("kind").get<std::string>();
  out.result_size = BundleResultSize(computed);
  out.result = std::move(computed);
  return out;
}

// BundleToJson writes the text nlohmann::ordered_json::dump(2) produced for
// this document (FORMAT.md, "Proof bundles": fields in a fixed order, two
// spaces of indentation), byte for byte, without building a JSON tree:
// proofs are base64 strings of several KB, and copying them into a tree,
// escaping them character by character and copying them out again was most
// of the cost of a proven read. bundle_json_test.cc checks the equivalence
// against that nlohmann encoding on random bundles.
namespace {

class PrettyWriter {
 public:
  explicit PrettyWriter(std::string* out) : out_(*out) {}

  void Indent(int level) { out_.append(static_cast<size_t>(level) * 2, ' '); }

  // A JSON string as nlohmann writes it (ensure_ascii off): ASCII escaped
  // here; text with any non-ASCII byte goes through nlohmann itself, so
  // UTF-8 handling (and its refusal of invalid UTF-8) stays exactly its own.
  void String(std::string_view s) {
    for (unsigned char c : s) {
      if (c >= 0x80) {
        out_ += json(std::string(s)).dump();
        return;
      }
    }
    out_ += '"';
    size_t plain_from = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(s.data() + plain_from, i - plain_from);
      plain_from = i + 1;
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\b': out_ += "\\b"; break;
        case '\f': out_ += "\\f"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          out_ += "\\u00";
          out_ += kHex[c >> 4];
          out_ += kHex[c & 15];
        }
      }
    }
    out_.append(s.data() + plain_from, s.size() - plain_from);
    out_ += '"';
  }

  // A string known to need no escaping (base64, hex).
  void Base64String(std::string_view bytes) {
    out_ += '"';
    Base64EncodeAppend(&out_, bytes);
    out_ += '"';
  }

  void Key(std::string_view key, int level) {
    Indent(level);
    String(key);
    out_ += ": ";
  }

  void Unsigned(std::uint64_t v) {
    char buf[24];
    char* end = buf + sizeof(buf);
    char* p = end;
    do {
      *--p = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    out_.append(p, static_cast<size_t>(end - p));
  }

  // Any JSON value at nesting `level`, as dump(2) writes it there.
  void Value(const json& v, int level) {
    switch (v.type()) {
      case json::value_t::object: {
        if (v.empty()) {
          out_ += "{}";
          return;
        }
        out_ += "{\n";
        bool first = true;
        for (auto it = v.begin(); it != v.end(); ++it) {
          if (!first) out_ += ",\n";
          first = false;
          Key(it.key(), level + 1);
          Value(it.value(), level + 1);
        }
        out_ += '\n';
        Indent(level);
        out_ += '}';
        return;
      }
      case json::value_t::array: {
        if (v.empty()) {
          out_ += "[]";
          return;
        }
        out_ += "[\n";
        bool first = true;
        for (const auto& item : v) {
          if (!first) out_ += ",\n";
          first = false;
          Indent(level + 1);
          Value(item, level + 1);
        }
        out_ += '\n';
        Indent(level);
        out_ += ']';
        return;
      }
      case json::value_t::string:
        String(v.get_ref<const std::string&>());
        return;
      case json::value_t::boolean:
        out_ += v.get<bool>() ? "true" : "false";
        return;
      case json::value_t::null:
        out_ += "null";
        return;
      case json::value_t::number_unsigned:
        Unsigned(v.get<std::uint64_t>());
        return;
      case json::value_t::number_integer: {
        const std::int64_t i = v.get<std::int64_t>();
        if (i < 0) {
          out_ += '-';
          Unsigned(0 - static_cast<std::uint64_t>(i));
        } else {
          Unsigned(static_cast<std::uint64_t>(i));
        }
        return;
      }
      default:  // floats, binary, discarded: nlohmann's own formatting
        out_ += v.dump();
    }
  }

 private:
  std::string& out_;
};

}  // namespace

std::string BundleToJson(const Bundle& bundle) {
  std::string out;
  size_t proofs = 0;
  for (const auto& v : bundle.views) proofs += v.catalog_key.size() + 400 * (v.catalog.nodes.size() + v.map.nodes.size());
  out.reserve(1024 + bundle.checkpoint.size() + 2 * bundle.block.header.size() +
              70 * bundle.block.inclusion.path.size() + proofs * 4 / 3);
  PrettyWriter w(&out);
  // A JSON array of hex hashes whose items sit at `level` (the closing
  // bracket one level up).
  auto hashes = [&](const std::vector<merkle::Hash>& path, int level) {
    if (path.empty()) {
      out += "[]";
      return;
    }
    out += "[\n";
    for (size_t i = 0; i < path.size(); ++i) {
      if (i != 0) out += ",\n";
      w.Indent(level);
      out += '"';
      out += merkle::HashHex(path[i]);
      out += '"';
    }
    out += '\n';
    w.Indent(level - 1);
    out += ']';
  };
  out += "{\n";
  w.Key("vellum_proof_bundle", 1);
  w.Unsigned(kBundleVersion);
  out += ",\n";
  w.Key("ledger", 1);
  w.String(bundle.ledger);
  out += ",\n";
  w.Key("checkpoint", 1);
  w.String(bundle.checkpoint);
  out += ",\n";
  w.Key("tree_size", 1);
  w.Unsigned(bundle.tree_size);
  out += ",\n";
  w.Key("height", 1);
  w.Unsigned(bundle.height);
  out += ",\n";
  w.Key("query", 1);
  w.Value(bundle.query, 1);
  out += ",\n";
  w.Key("result", 1);
  w.Value(bundle.result, 1);
  out += ",\n";
  w.Key("block", 1);
  out += "{\n";
  w.Key("header", 2);
  w.Base64String(bundle.block.header);
  out += ",\n";
  w.Key("inclusion", 2);
  hashes(bundle.block.inclusion.path, 3);
  out += "\n  },\n";
  w.Key("views", 1);
  if (bundle.views.empty()) {
    out += "[]";
  } else {
    out += "[\n";
    for (size_t i = 0; i < bundle.views.size(); ++i) {
      const BundleView& v = bundle.views[i];
      if (i != 0) out += ",\n";
      w.Indent(2);
      out += "{\n";
      w.Key("catalog_key", 3);
      w.Base64String(v.catalog_key);
      out += ",\n";
      w.Key("catalog_proof", 3);
      w.Base64String(v.catalog.Encode());
      out += ",\n";
      w.Key("map_proof", 3);
      if (v.map.nodes.empty()) {
        out += "\"\"";
      } else {
        w.Base64String(v.map.Encode());
      }
      out += "\n    }";
    }
    out += "\n  ]";
  }
  if (!bundle.transactions.empty()) {
    out += ",\n";
    w.Key("transactions", 1);
    out += "[\n";
    for (size_t i = 0; i < bundle.transactions.size(); ++i) {
      const journal::TransactionProof& t = bundle.transactions[i];
      if (i != 0) out += ",\n";
      w.Indent(2);
      out += "{\n";
      w.Key("tx", 3);
      w.Base64String(t.transaction);
      out += ",\n";
      w.Key("tx_seq", 3);
      w.Unsigned(t.tx_seq);
      out += ",\n";
      w.Key("index_in_block", 3);
      w.Unsigned(t.index_in_block);
      out += ",\n";
      w.Key("tx_path", 3);
      hashes(t.tx_path, 4);
      out += ",\n";
      w.Key("header", 3);
      w.Base64String(t.block.header);
      out += ",\n";
      w.Key("inclusion", 3);
      hashes(t.block.inclusion.path, 4);
      out += "\n    }";
    }
    out += "\n  ]";
  }
  out += "\n}\n";
  return out;
}

namespace {

// An array of at most 64 hex hashes (an RFC 9162 path) in field `field`.
Status GetHashes(const json& obj, const char* field, std::vector<merkle::Hash>& out) {
  const json& list = obj.at(field);
  if (!list.is_array() || list.size() > 64) {
    return InvalidArgument(std::string("field '") + field + "' must be an array of at most 64 hex hashes");
  }
  for (const auto& h : list) {
    if (!h.is_string()) return InvalidArgument(std::string("field '") + field + "' must hold hex strings");
    auto hash = merkle::HashFromHex(h.get<std::string>());
    if (!hash.ok()) return hash.status().WithContext(std::string("field '") + field + "'");
    out.push_back(*hash);
  }
  return Status::Ok();
}

}  // namespace

Result<Bundle> ParseBundle(std::string_view text) {
  if (text.size() > kMaxBundleSize) {
    return InvalidArgument("bundle of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                           std::to_string(kMaxBundleSize));
  }
  VELLUM_ASSIGN_OR_RETURN(json doc, doc::ParseJson(text));
  if (!doc.is_object()) return InvalidArgument("a proof bundle must be a JSON object");
  if (!doc.contains("vellum_proof_bundle")) return InvalidArgument("not a proof bundle: missing 'vellum_proof_bundle'");
  VELLUM_ASSIGN_OR_RETURN(std::uint64_t version, GetU64(doc, "vellum_proof_bundle"));
  if (version != kBundleVersion) {
    return InvalidArgument("proof bundle version " + std::to_string(version) + " is not supported (this verifier reads version " +
                           std::to_string(kBundleVersion) + ")");
  }
  VELLUM_RETURN_IF_ERROR(CheckFields(doc, "bundle",
                                     {"vellum_proof_bundle", "ledger", "checkpoint", "tree_size", "height", "query",
                                      "result", "block", "views"},
                                     {"transactions"}));
  Bundle b;
  VELLUM_ASSIGN_OR_RETURN(b.ledger, GetString(doc, "ledger"));
  VELLUM_ASSIGN_OR_RETURN(b.checkpoint, GetString(doc, "checkpoint"));
  VELLUM_ASSIGN_OR_RETURN(b.tree_size, GetU64(doc, "tree_size"));
  VELLUM_ASSIGN_OR_RETURN(b.height, GetU64(doc, "height"));
  b.query = doc.at("query");
  VELLUM_RETURN_IF_ERROR(BundleCatalogKeys(b.query).status());
  b.result = doc.at("result");
  if (!b.result.is_object()) return InvalidArgument("field 'result' must be a JSON object");
  const json& block = doc.at("block");
  VELLUM_RETURN_IF_ERROR(CheckFields(block, "block", {"header", "inclusion"}));
  VELLUM_ASSIGN_OR_RETURN(b.block.header, GetBytes(block, "header"));
  VELLUM_RETURN_IF_ERROR(GetHashes(block, "inclusion", b.block.inclusion.path));
  b.block.inclusion.leaf_index = b.height;
  b.block.inclusion.tree_size = b.tree_size;
  const json& views = doc.at("views");
  if (!views.is_array() || views.size() > kMaxBundleViews) {
    return InvalidArgument("field 'views' must be an array of at most " + std::to_string(kMaxBundleViews) + " views");
  }
  for (const auto& v : views) {
    VELLUM_RETURN_IF_ERROR(CheckFields(v, "view", {"catalog_key", "catalog_proof", "map_proof"}));
    BundleView view;
    VELLUM_ASSIGN_OR_RETURN(view.catalog_key, GetBytes(v, "catalog_key"));
    VELLUM_ASSIGN_OR_RETURN(view.catalog, GetMapProof(v, "catalog_proof"));
    VELLUM_ASSIGN_OR_RETURN(view.map, GetMapProof(v, "map_proof"));
    b.views.push_back(std::move(view));
  }
  if (doc.contains("transactions")) {
    const json& txs = doc.at("transactions");
    if (!txs.is_array() || txs.empty() || txs.size() > kMaxBundleTransactions) {
      return InvalidArgument("field 'transactions' must be an array of 1 to " + std::to_string(kMaxBundleTransactions) +
                             " transaction proofs");
    }
    for (const auto& t : txs) {
      VELLUM_RETURN_IF_ERROR(
          CheckFields(t, "transaction proof", {"tx", "tx_seq", "index_in_block", "tx_path", "header", "inclusion"}));
      journal::TransactionProof proof;
      VELLUM_ASSIGN_OR_RETURN(proof.transaction, GetBytes(t, "tx"));
      VELLUM_ASSIGN_OR_RETURN(proof.tx_seq, GetU64(t, "tx_seq"));
      VELLUM_ASSIGN_OR_RETURN(std::uint64_t index, GetU64(t, "index_in_block"));
      if (index > std::numeric_limits<std::uint32_t>::max()) return InvalidArgument("field 'index_in_block' out of range");
      proof.index_in_block = static_cast<std::uint32_t>(index);
      VELLUM_RETURN_IF_ERROR(GetHashes(t, "tx_path", proof.tx_path));
      VELLUM_ASSIGN_OR_RETURN(proof.block.header, GetBytes(t, "header"));
      VELLUM_ASSIGN_OR_RETURN(journal::BlockHeader header, journal::DecodeBlockHeader(proof.block.header));
      VELLUM_RETURN_IF_ERROR(GetHashes(t, "inclusion", proof.block.inclusion.path));
      proof.block.inclusion.leaf_index = header.height;
      proof.block.inclusion.tree_size = b.tree_size;
      b.transactions.push_back(std::move(proof));
    }
  }
  return b;
}

}  // namespace vellum::verifier
