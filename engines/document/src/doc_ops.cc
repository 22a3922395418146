#include "vellum/engines/document/doc_ops.h"

#include "vellum/base/encoding.h"
#include "vellum/base/tuple.h"
#include "vellum/merkle/hasher.h"
#include "vellum/engines/document/canonical_json.h"
#include "vellum/engines/document/path_index.h"
#include "vellum/engines/document/validator.h"

namespace vellum::engines::document {
namespace {

void PutVersion(ByteWriter& w, const std::optional<std::uint64_t>& v) {
  w.U8(v.has_value() ? 1 : 0);
  if (v.has_value()) w.U64(*v);
}

Result<std::string> CanonicalObject(std::string_view text) {
  VELLUM_ASSIGN_OR_RETURN(nlohmann::json value, ParseJson(text));
  if (!value.is_object()) return InvalidArgument("a document must be a JSON object");
  VELLUM_ASSIGN_OR_RETURN(std::string canonical, CanonicalJson(value));
  if (canonical.size() > kMaxDocumentSize) {
    return InvalidArgument("document of " + std::to_string(canonical.size()) + " bytes exceeds " +
                           std::to_string(kMaxDocumentSize));
  }
  return canonical;
}

}  // namespace

std::uint16_t DocOpKind(const DocOp& op) {
  switch (op.type) {
    case DocOp::Type::kInsert: return kOpDocInsert;
    case DocOp::Type::kReplace: return kOpDocReplace;
    case DocOp::Type::kDelete: return kOpDocDelete;
    case DocOp::Type::kCreateIndex: return kOpDocCreateIndex;
    case DocOp::Type::kSetValidator: return kOpDocSetValidator;
    case DocOp::Type::kAssert: return kOpDocAssert;
  }
  return kOpDocInsert;
}

// The canonical form of a schema, checked (empty stays empty: no validator).
Result<std::string> CanonicalSchema(std::string_view text) {
  if (text.empty()) return std::string();
  VELLUM_ASSIGN_OR_RETURN(nlohmann::json value, ParseJson(text));
  VELLUM_ASSIGN_OR_RETURN(Validator validator, Validator::Parse(value));
  if (validator.canonical().size() > kMaxDocumentSize) return InvalidArgument("validator schema exceeds 1 MiB");
  return validator.canonical();
}

Result<std::string> EncodeDocOp(const DocOp& op) {
  ByteWriter w;
  w.Bytes(op.collection);
  if (op.type == DocOp::Type::kCreateIndex) {
    VELLUM_RETURN_IF_ERROR(CheckIndexPath(op.path));
    w.Bytes(op.path);
    return w.Take();
  }
  if (op.type == DocOp::Type::kSetValidator) {
    VELLUM_ASSIGN_OR_RETURN(std::string schema, CanonicalSchema(op.json));
    w.Bytes(schema);
    return w.Take();
  }
  w.Bytes(op.id);
  const bool has_body = op.type == DocOp::Type::kInsert || op.type == DocOp::Type::kReplace;
  if (has_body) {
    VELLUM_ASSIGN_OR_RETURN(std::string canonical, CanonicalObject(op.json));
    w.Bytes(canonical);
  }
  if (op.type != DocOp::Type::kInsert) PutVersion(w, op.expected_version);
  return w.Take();
}

Result<DocOp> DecodeDocOp(std::uint16_t kind, std::string_view body) {
  DocOp op;
  switch (kind) {
    case kOpDocInsert: op.type = DocOp::Type::kInsert; break;
    case kOpDocReplace: op.type = DocOp::Type::kReplace; break;
    case kOpDocDelete: op.type = DocOp::Type::kDelete; break;
    case kOpDocCreateIndex: op.type = DocOp::Type::kCreateIndex; break;
    case kOpDocSetValidator: op.type = DocOp::Type::kSetValidator; break;
    case kOpDocAssert: op.type = DocOp::Type::kAssert; break;
    default: return InvalidArgument("operation kind " + std::to_string(kind) + " is not a document operation");
  }
  ByteReader r(body, "document operation");
  op.collection = std::string(r.Bytes(kMaxCollectionNameSize));
  if (op.type == DocOp::Type::kCreateIndex || op.type == DocOp::Type::kSetValidator) {
    const std::string_view arg = r.Bytes(op.type == DocOp::Type::kCreateIndex ? kMaxIndexPathSize : kMaxDocumentSize);
    if (r.ok() && op.collection.empty()) r.Fail("collection name must not be empty");
    VELLUM_RETURN_IF_ERROR(r.Finish());
    if (op.type == DocOp::Type::kCreateIndex) {
      VELLUM_RETURN_IF_ERROR(CheckIndexPath(arg));
      op.path = std::string(arg);
      return op;
    }
    VELLUM_ASSIGN_OR_RETURN(op.json, CanonicalSchema(arg));
    if (op.json != arg) return InvalidArgument("validator schema is not in canonical JSON form");
    return op;
  }
  op.id = std::string(r.Bytes(kMaxDocumentIdSize));
  std::string_view json;
  const bool has_body = op.type == DocOp::Type::kInsert || op.type == DocOp::Type::kReplace;
  if (has_body) json = r.Bytes(kMaxDocumentSize);
  if (op.type != DocOp::Type::kInsert) {
    const std::uint8_t has = r.U8();
    if (r.ok() && has > 1) r.Fail("version flag must be 0 or 1");
    if (has == 1) op.expected_version = r.U64();
  }
  if (r.ok() && op.collection.empty()) r.Fail("collection name must not be empty");
  if (r.ok() && op.type != DocOp::Type::kInsert && op.id.empty()) r.Fail("document id must not be empty");
  VELLUM_RETURN_IF_ERROR(r.Finish());
  if (has_body) {
    VELLUM_ASSIGN_OR_RETURN(op.json, CanonicalObject(json));
    if (op.json != json) return InvalidArgument("document is not in canonical JSON form");
  }
  return op;
}

std::string EncodeRevision(const Revision& rev) {
  ByteWriter w(36 + rev.json.size());
  w.U64(rev.version);
  w.U64(rev.height);
  w.U32(rev.index_in_block);
  w.I64(rev.time_us);
  w.U8(rev.deleted ? 1 : 0);
  w.Bytes(rev.json);
  return w.Take();
}

Result<Revision> DecodeRevision(std::string_view bytes) {
  ByteReader r(bytes, "document revision");
  Revision rev;
  rev.version = r.U64();
  rev.height = r.U64();
  rev.index_in_block = r.U32();
  rev.time_us = r.I64();
  const std::uint8_t deleted = r.U8();
  if (r.ok() && deleted > 1) r.Fail("deleted flag must be 0 or 1");
  rev.deleted = deleted == 1;
  rev.json = std::string(r.Bytes(kMaxDocumentSize));
  if (r.ok() && rev.deleted != rev.json.empty()) r.Fail("a deleted revision has no body, a live one has one");
  VELLUM_RETURN_IF_ERROR(r.Finish());
  return rev;
}

std::string DerivedDocumentId(std::uint64_t height, std::uint32_t index_in_block, std::uint32_t doc_op_index) {
  ByteWriter where;
  where.U64(height);
  where.U32(index_in_block);
  where.U32(doc_op_index);
  return merkle::HashHex(merkle::HashTagged(merkle::kTagDocumentId, where.data())).substr(0, 24);
}

std::string RevisionKey(std::string_view id, std::uint64_t version) {
  std::string key;
  (void)AppendTuple(&key, Tuple{TupleElement{TupleBytes{std::string(id)}}, TupleElement{version}});
  return key;
}

std::string RevisionPrefix(std::string_view id) {
  std::string key;
  (void)AppendTuple(&key, Tuple{TupleElement{TupleBytes{std::string(id)}}});
  return key;
}

}  // namespace vellum::engines::document
