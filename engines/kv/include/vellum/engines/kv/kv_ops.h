// Key-value engine: its key layout and its write operations
// (docs/FORMAT.md, "Key-value operations").
//
// Layout: namespace NS is the plain authenticated map (model "kv", name NS,
// part ""); a key is its raw bytes (1..4 KiB, byte order = scan order), a
// value its raw bytes (0..1 MiB).
//
// Operations (kinds 0x0200..0x02ff):
//   put     NS KEY VALUE
//   delete  NS KEY
//   compare-and-set NS KEY EXPECTED? NEW?   — applied only if the key's value
//     at commit time equals EXPECTED (absent when EXPECTED is not given); NEW
//     absent deletes the key. A failed comparison aborts the transaction.
//   assert NS KEY EXPECTED?  — writes nothing; aborts the transaction unless
//     the key's value at commit time equals EXPECTED (absent if not given).
//     This is how a transaction carries its read set (optimistic
//     concurrency): every value it read is asserted unchanged at commit.
//
// Sorted sets (leaderboards), kinds 0x0210..0x0212: set SET of namespace NS
// is two maps — members ("zset", NS, SET + "/members"; int64-aggregate,
// member -> 8-byte big-endian score, aggregate = score) and scores ("zset",
// NS, SET + "/by-score"; plain, tuple(int64 score, bytes member) -> empty).
// Ranks come from subtree counts, so a member's rank, the top n and a score
// range are proven in O(log n).
//   zadd  NS SET MEMBER SCORE   (sets the score)
//   zincr NS SET MEMBER DELTA   (absent member counts as 0; ABORTED on overflow)
//   zrem  NS SET MEMBER
//
// Thread-safety: pure functions.
#ifndef VELLUM_ENGINES_KV_KV_OPS_H_
#define VELLUM_ENGINES_KV_KV_OPS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vellum/base/status.h"
#include "vellum/engines/kv/kv_query.h"
#include "vellum/indexes/views.h"

namespace vellum::engines::kv {

inline constexpr std::uint16_t kOpPut = 0x0200;
inline constexpr std::uint16_t kOpDelete = 0x0201;
inline constexpr std::uint16_t kOpCompareAndSet = 0x0202;
inline constexpr std::uint16_t kOpAssert = 0x0203;
inline constexpr std::uint16_t kOpZsetAdd = 0x0210;
inline constexpr std::uint16_t kOpZsetIncrement = 0x0211;
inline constexpr std::uint16_t kOpZsetRemove = 0x0212;
inline constexpr size_t kMaxNamespaceSize = 255;
inline constexpr size_t kMaxSetNameSize = 200;

// True for the operation kinds this engine owns.
inline bool IsKvOp(std::uint16_t kind) { return kind >= 0x0200 && kind <= 0x02ff; }

struct KvOp {
  enum class Type : std::uint8_t { kPut, kDelete, kCompareAndSet, kAssert };
  Type type = Type::kPut;
  std::string ns;
  std::string key;
  std::optional<std::string> value;     // put: the value; CAS: the new value (nullopt deletes)
  std::optional<std::string> expected;  // CAS, assert: the value required now (nullopt: must be absent)
};

struct ZsetOp {
  enum class Type : std::uint8_t { kAdd, kIncrement, kRemove };
  Type type = Type::kAdd;
  std::string ns;
  std::string set;
  std::string member;
  std::int64_t score = 0;  // add: the score; increment: the delta
};

// True for sorted-set operation kinds (a subset of IsKvOp).
inline bool IsZsetOp(std::uint16_t kind) { return kind >= kOpZsetAdd && kind <= kOpZsetRemove; }
indexes::MapId ZsetMembersMap(std::string_view ns, std::string_view set);
indexes::MapId ZsetScoresMap(std::string_view ns, std::string_view set);
const indexes::MapSpec& ZsetMembersSpec();

std::uint16_t ZsetOpKind(const ZsetOp& op);
std::string EncodeZsetOp(const ZsetOp& op);
Result<ZsetOp> DecodeZsetOp(std::uint16_t kind, std::string_view body);

indexes::MapId KvMap(std::string_view ns);
const indexes::MapSpec& KvSpec();

std::uint16_t KvOpKind(const KvOp& op);
std::string EncodeKvOp(const KvOp& op);
// Strict. InvalidArgument for an unknown kind, malformed body, an empty or
// over-long namespace, an empty key or one over 4 KiB, a value over 1 MiB.
Result<KvOp> DecodeKvOp(std::uint16_t kind, std::string_view body);

}  // namespace vellum::engines::kv

#endif  // VELLUM_ENGINES_KV_KV_OPS_H_
