// Document engine: key layout, write operations and revisions
// (docs/FORMAT.md, "Document operations").
//
// Collection COLL is two maps:
//   current   ("doc", COLL, "")           id -> revision record of the live document
//   revisions ("doc", COLL, "revisions")  tuple(bytes id, uint64 version) -> revision record
//   meta      ("doc", COLL, "meta")       "indexes" -> JSON array of the declared
//                                         index paths (sorted); "validator" -> schema
//   index P   ("doc", COLL, "index:" P)   see path_index.h (one map per declared path)
// A revision record is u64 version ‖ u64 block height ‖ u32 index of the
// transaction in its block ‖ i64 block time (µs since the Unix epoch, the
// header's timestamp) ‖ u8 deleted ‖ bytes(canonical JSON, empty when
// deleted). Every change is a new revision; a delete is a revision too (kept
// in `current` as a tombstone), so a document's history is one proven prefix
// range of `revisions`.
//
// Operations (kinds 0x0300..0x03ff):
//   insert  COLL ID? JSON     (no ID: one derived from the transaction; ALREADY_EXISTS if live)
//   replace COLL ID JSON EXPECTED_VERSION?   (NOT_FOUND if not live; ABORTED on a version mismatch)
//   delete  COLL ID EXPECTED_VERSION?
//   create_index  COLL PATH   (ALREADY_EXISTS if declared; built from the live documents)
//   assert  COLL ID EXPECTED_VERSION?        (ABORTED unless the live document is at
//                             that version, or, without one, unless none is live;
//                             writes nothing: an interactive session's read)
//   set_validator COLL SCHEMA (canonical JSON schema, see validator.h; empty removes it).
//                             Inserts and replaces after it must satisfy it;
//                             documents already stored are not re-checked.
//
// Thread-safety: pure functions.
#ifndef VELLUM_ENGINES_DOCUMENT_DOC_OPS_H_
#define VELLUM_ENGINES_DOCUMENT_DOC_OPS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vellum/base/status.h"

namespace vellum::engines::document {

inline constexpr std::uint16_t kOpDocInsert = 0x0300;
inline constexpr std::uint16_t kOpDocReplace = 0x0301;
inline constexpr std::uint16_t kOpDocDelete = 0x0302;
inline constexpr std::uint16_t kOpDocCreateIndex = 0x0303;
inline constexpr std::uint16_t kOpDocSetValidator = 0x0304;
inline constexpr std::uint16_t kOpDocAssert = 0x0305;
inline constexpr size_t kMaxCollectionNameSize = 255;
inline constexpr size_t kMaxDocumentIdSize = 512;
inline constexpr size_t kMaxDocumentSize = 1u << 20;

inline bool IsDocOp(std::uint16_t kind) { return kind >= 0x0300 && kind <= 0x03ff; }

struct DocOp {
  enum class Type : std::uint8_t { kInsert, kReplace, kDelete, kCreateIndex, kSetValidator, kAssert };
  Type type = Type::kInsert;
  std::string collection;
  std::string id;                              // insert: may be empty (derived)
  std::string json;                            // canonical JSON (insert, replace; the schema of set_validator)
  std::optional<std::uint64_t> expected_version;  // replace, delete
  std::string path;                               // create_index
};

std::uint16_t DocOpKind(const DocOp& op);
// Canonicalizes op.json; InvalidArgument if it is not a JSON object (or, for
// set_validator, not a valid schema), or the index path is not valid.
Result<std::string> EncodeDocOp(const DocOp& op);
// Strict: canonical JSON object, sizes within limits, a valid schema or path.
Result<DocOp> DecodeDocOp(std::uint16_t kind, std::string_view body);

struct Revision {
  std::uint64_t version = 0;
  std::uint64_t height = 0;          // block that wrote it
  std::uint32_t index_in_block = 0;  // its transaction's place in that block
  std::int64_t time_us = 0;          // that block's timestamp
  bool deleted = false;
  std::string json;          // canonical; empty when deleted
  bool operator==(const Revision&) const = default;
};
std::string EncodeRevision(const Revision& r);
Result<Revision> DecodeRevision(std::string_view bytes);

// The id a document insert without one gets: from its place in the journal
// (block height, index of its transaction in the block, index among the
// transaction's document operations other than assertions), which replay
// reproduces exactly.
std::string DerivedDocumentId(std::uint64_t height, std::uint32_t index_in_block, std::uint32_t doc_op_index);

// The revisions-map key of (id, version), and the prefix of all of id's.
std::string RevisionKey(std::string_view id, std::uint64_t version);
std::string RevisionPrefix(std::string_view id);

}  // namespace vellum::engines::document

#endif  // VELLUM_ENGINES_DOCUMENT_DOC_OPS_H_
