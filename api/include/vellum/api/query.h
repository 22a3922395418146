// Proven queries: a query (in the proof-bundle query JSON of
// verifier/bundle.h) answered on a LedgerDb as a complete proof bundle. The
// result is read from the same committed state the proofs are built from
// and encoded with the verifier's result encoders, so it is what a client's
// check recomputes from the proofs (query_test.cc checks this on random
// states); document queries are still evaluated over their proofs by the
// document engine's evaluator. Queries with omit_proof are answered from
// the committed state without building any proof.
// vellumd serves these; nothing here knows gRPC.
//
// Thread-safety: thread-safe (LedgerDb is).
#ifndef VELLUM_API_QUERY_H_
#define VELLUM_API_QUERY_H_

#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

#include "vellum/api/ledger_db.h"
#include "vellum/base/status.h"
#include "vellum/verifier/bundle.h"

namespace vellum::api {

// Pages and result sizes a single query may return.
inline constexpr std::uint64_t kMaxQueryPage = 10000;

struct QueryPoint {
  // The state after this block (default: the newest block of the tree).
  std::optional<std::uint64_t> at_height;
  // Prove against the tree of this many blocks, which must have a stored
  // signed checkpoint (default: the newest tree, signed now if needed).
  std::optional<std::uint64_t> tree_size;
};

// Answers `query` with its bundle. Errors: InvalidArgument (malformed query),
// FailedPrecondition (the ledger has no block yet), NotFound (no checkpoint
// for tree_size), OutOfRange (at_height not in the tree), DataLoss if the
// server's own proof does not check (storage damage).
Result<verifier::Bundle> AnswerQuery(LedgerDb& db, const nlohmann::json& query, const QueryPoint& point = {});

// An answer without its proof: the same height, tree size and result as
// AnswerQuery's bundle for the same query and point.
struct QueryAnswer {
  std::uint64_t height = 0;
  std::uint64_t tree_size = 0;
  nlohmann::json result;
};
// Answers `query` from the committed state without building a proof (the
// document kinds excepted, which evaluate their proofs). Errors as
// AnswerQuery.
Result<QueryAnswer> AnswerQueryWithoutProof(LedgerDb& db, const nlohmann::json& query, const QueryPoint& point = {});

}  // namespace vellum::api

#endif  // VELLUM_API_QUERY_H_
