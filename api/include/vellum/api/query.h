// Proven queries: a query (in the proof-bundle query JSON of
// verifier/bundle.h) answered on a LedgerDb as a complete proof bundle whose
// result is computed by the verifier's own evaluator over the proofs — the
// server's answer is, by construction, what a client's check recomputes.
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

}  // namespace vellum::api

#endif  // VELLUM_API_QUERY_H_
