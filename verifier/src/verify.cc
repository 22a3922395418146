#include "vellum/verifier/verify.h"

#include <set>

#include <nlohmann/json.hpp>

#include "vellum/engines/document/canonical_json.h"

namespace vellum::verifier {
namespace {

using nlohmann::json;

// The document engine's strict parser: duplicate keys, invalid UTF-8 and
// deep nesting are errors, so a proof file has exactly one reading.
Result<json> ParseJson(std::string_view text) { return engines::document::ParseJson(text); }

Status CheckFields(const json& doc, const std::set<std::string>& allowed) {
  for (const auto& [key, value] : doc.items()) {
    if (allowed.count(key) == 0) return InvalidArgument("unknown field '" + key + "'");
  }
  for (const auto& key : allowed) {
    if (!doc.contains(key)) return InvalidArgument("missing field '" + key + "'");
  }
  return Status::Ok();
}

Result<std::uint64_t> GetSize(const json& doc, const char* field) {
  const json& v = doc.at(field);
  if (!v.is_number_unsigned()) {
    return InvalidArgument(std::string("field '") + field + "' must be a non-negative integer");
  }
  return v.get<std::uint64_t>();
}

Result<merkle::Hash> GetHash(const json& v, const std::string& field) {
  if (!v.is_string()) return InvalidArgument("field '" + field + "' must be a hex string");
  auto h = merkle::HashFromHex(v.get<std::string>());
  if (!h.ok()) return h.status().WithContext("field '" + field + "'");
  return h;
}

Result<std::vector<merkle::Hash>> GetPath(const json& doc) {
  const json& v = doc.at("path");
  if (!v.is_array()) return InvalidArgument("field 'path' must be an array of hex strings");
  if (v.size() > 128) return InvalidArgument("path of " + std::to_string(v.size()) + " hashes is longer than any tree allows");
  std::vector<merkle::Hash> path;
  for (size_t i = 0; i < v.size(); ++i) {
    VELLUM_ASSIGN_OR_RETURN(merkle::Hash h, GetHash(v[i], "path[" + std::to_string(i) + "]"));
    path.push_back(h);
  }
  return path;
}

}  // namespace

Result<LogProofClaim> ParseLogProof(std::string_view json_text) {
  VELLUM_ASSIGN_OR_RETURN(json doc, ParseJson(json_text));
  if (!doc.is_object()) return InvalidArgument("a log proof must be a JSON object");
  if (!doc.contains("type") || !doc["type"].is_string()) return InvalidArgument("missing string field 'type'");
  const std::string type = doc["type"];
  if (type == "inclusion") {
    VELLUM_RETURN_IF_ERROR(CheckFields(doc, {"type", "tree_size", "leaf_index", "leaf_hash", "root", "path"}));
    InclusionClaim c;
    VELLUM_ASSIGN_OR_RETURN(c.proof.tree_size, GetSize(doc, "tree_size"));
    VELLUM_ASSIGN_OR_RETURN(c.proof.leaf_index, GetSize(doc, "leaf_index"));
    VELLUM_ASSIGN_OR_RETURN(c.leaf_hash, GetHash(doc["leaf_hash"], "leaf_hash"));
    VELLUM_ASSIGN_OR_RETURN(c.root, GetHash(doc["root"], "root"));
    VELLUM_ASSIGN_OR_RETURN(c.proof.path, GetPath(doc));
    return LogProofClaim(std::move(c));
  }
  if (type == "consistency") {
    VELLUM_RETURN_IF_ERROR(CheckFields(doc, {"type", "old_size", "new_size", "old_root", "new_root", "path"}));
    ConsistencyClaim c;
    VELLUM_ASSIGN_OR_RETURN(c.proof.old_size, GetSize(doc, "old_size"));
    VELLUM_ASSIGN_OR_RETURN(c.proof.new_size, GetSize(doc, "new_size"));
    VELLUM_ASSIGN_OR_RETURN(c.old_root, GetHash(doc["old_root"], "old_root"));
    VELLUM_ASSIGN_OR_RETURN(c.new_root, GetHash(doc["new_root"], "new_root"));
    VELLUM_ASSIGN_OR_RETURN(c.proof.path, GetPath(doc));
    return LogProofClaim(std::move(c));
  }
  return InvalidArgument("unknown proof type '" + type + "' (expected \"inclusion\" or \"consistency\")");
}

std::string LogProofToJson(const LogProofClaim& claim) {
  json doc;
  auto path = [](const std::vector<merkle::Hash>& p) {
    json arr = json::array();
    for (const auto& h : p) arr.push_back(merkle::HashHex(h));
    return arr;
  };
  if (const auto* inc = std::get_if<InclusionClaim>(&claim)) {
    doc = {{"type", "inclusion"},
           {"tree_size", inc->proof.tree_size},
           {"leaf_index", inc->proof.leaf_index},
           {"leaf_hash", merkle::HashHex(inc->leaf_hash)},
           {"root", merkle::HashHex(inc->root)},
           {"path", path(inc->proof.path)}};
  } else {
    const auto& con = std::get<ConsistencyClaim>(claim);
    doc = {{"type", "consistency"},
           {"old_size", con.proof.old_size},
           {"new_size", con.proof.new_size},
           {"old_root", merkle::HashHex(con.old_root)},
           {"new_root", merkle::HashHex(con.new_root)},
           {"path", path(con.proof.path)}};
  }
  return doc.dump(2) + "\n";
}

Status VerifyLogProof(const LogProofClaim& claim) {
  if (const auto* inc = std::get_if<InclusionClaim>(&claim)) {
    return merkle::VerifyInclusion(inc->proof.leaf_index, inc->proof.tree_size, inc->leaf_hash, inc->proof.path,
                                   inc->root);
  }
  const auto& con = std::get<ConsistencyClaim>(claim);
  return merkle::VerifyConsistency(con.proof.old_size, con.proof.new_size, con.old_root, con.new_root,
                                   con.proof.path);
}

Result<merkle::Checkpoint> VerifyCheckpointNote(std::string_view note, std::string_view vkey) {
  VELLUM_ASSIGN_OR_RETURN(merkle::NoteVerifier verifier, merkle::NoteVerifier::Parse(vkey));
  return merkle::VerifyCheckpoint(note, verifier);
}

Result<merkle::Checkpoint> VerifyCheckpointConsistency(std::string_view old_note, std::string_view new_note,
                                                       const ConsistencyClaim& proof, std::string_view vkey) {
  auto old_cp = VerifyCheckpointNote(old_note, vkey);
  if (!old_cp.ok()) return old_cp.status().WithContext("the old checkpoint");
  auto new_cp = VerifyCheckpointNote(new_note, vkey);
  if (!new_cp.ok()) return new_cp.status().WithContext("the new checkpoint");
  if (old_cp->origin != new_cp->origin) {
    return VerificationFailed({"checkpoint.origin", old_cp->origin, new_cp->origin, 0, new_cp->size});
  }
  const auto check = [&](const char* name, std::uint64_t want, std::uint64_t got) -> Status {
    if (want == got) return Status::Ok();
    return VerificationFailed({name, std::to_string(want), std::to_string(got), 0, new_cp->size});
  };
  VELLUM_RETURN_IF_ERROR(check("consistency.old_size", old_cp->size, proof.proof.old_size));
  VELLUM_RETURN_IF_ERROR(check("consistency.new_size", new_cp->size, proof.proof.new_size));
  if (proof.old_root != old_cp->root) {
    return VerificationFailed({"consistency.old_root", merkle::HashHex(old_cp->root), merkle::HashHex(proof.old_root), 0,
                               old_cp->size});
  }
  if (proof.new_root != new_cp->root) {
    return VerificationFailed({"consistency.new_root", merkle::HashHex(new_cp->root), merkle::HashHex(proof.new_root), 0,
                               new_cp->size});
  }
  VELLUM_RETURN_IF_ERROR(VerifyLogProof(proof));
  return new_cp;
}

}  // namespace vellum::verifier
