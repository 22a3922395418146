#include "vellum/engines/kv/kv_ops.h"

#include "vellum/base/encoding.h"
#include "vellum/base/tuple.h"
#include "vellum/merkle/map_proof.h"

namespace vellum::engines::kv {
namespace {

void PutOptional(ByteWriter& w, const std::optional<std::string>& v) {
  w.U8(v.has_value() ? 1 : 0);
  if (v.has_value()) w.Bytes(*v);
}

std::optional<std::string> GetOptional(ByteReader& r) {
  const std::uint8_t present = r.U8();
  if (!r.ok()) return std::nullopt;
  if (present > 1) {
    r.Fail("presence flag must be 0 or 1");
    return std::nullopt;
  }
  if (present == 0) return std::nullopt;
  return std::string(r.Bytes(merkle::kMaxMapValueSize));
}

}  // namespace

indexes::MapId KvMap(std::string_view ns) { return {"kv", std::string(ns), ""}; }

const indexes::MapSpec& KvSpec() {
  static const indexes::MapSpec spec{merkle::MapKind::kPlain, merkle::kZeroHash};
  return spec;
}

std::uint16_t KvOpKind(const KvOp& op) {
  switch (op.type) {
    case KvOp::Type::kPut: return kOpPut;
    case KvOp::Type::kDelete: return kOpDelete;
    case KvOp::Type::kCompareAndSet: return kOpCompareAndSet;
    case KvOp::Type::kAssert: return kOpAssert;
  }
  return kOpPut;
}

std::string EncodeKvOp(const KvOp& op) {
  ByteWriter w(16 + op.ns.size() + op.key.size() + (op.value ? op.value->size() : 0) +
               (op.expected ? op.expected->size() : 0));
  w.Bytes(op.ns);
  w.Bytes(op.key);
  switch (op.type) {
    case KvOp::Type::kPut: w.Bytes(op.value.value_or("")); break;
    case KvOp::Type::kDelete: break;
    case KvOp::Type::kCompareAndSet:
      PutOptional(w, op.expected);
      PutOptional(w, op.value);
      break;
    case KvOp::Type::kAssert: PutOptional(w, op.expected); break;
  }
  return w.Take();
}

Result<KvOp> DecodeKvOp(std::uint16_t kind, std::string_view body) {
  if (IsZsetOp(kind)) return InvalidArgument("operation kind " + std::to_string(kind) + " is a sorted-set operation");
  KvOp op;
  switch (kind) {
    case kOpPut: op.type = KvOp::Type::kPut; break;
    case kOpDelete: op.type = KvOp::Type::kDelete; break;
    case kOpCompareAndSet: op.type = KvOp::Type::kCompareAndSet; break;
    case kOpAssert: op.type = KvOp::Type::kAssert; break;
    default: return InvalidArgument("operation kind " + std::to_string(kind) + " is not a key-value operation");
  }
  ByteReader r(body, "key-value operation");
  op.ns = std::string(r.Bytes(kMaxNamespaceSize));
  op.key = std::string(r.Bytes(merkle::kMaxMapKeySize));
  if (op.type == KvOp::Type::kPut) {
    op.value = std::string(r.Bytes(merkle::kMaxMapValueSize));
  } else if (op.type == KvOp::Type::kCompareAndSet) {
    op.expected = GetOptional(r);
    op.value = GetOptional(r);
  } else if (op.type == KvOp::Type::kAssert) {
    op.expected = GetOptional(r);
  }
  if (r.ok() && op.ns.empty()) r.Fail("namespace must not be empty");
  if (r.ok() && op.key.empty()) r.Fail("key must not be empty");
  VELLUM_RETURN_IF_ERROR(r.Finish());
  return op;
}

indexes::MapId ZsetMembersMap(std::string_view ns, std::string_view set) {
  return {"zset", std::string(ns), std::string(set) + "/members"};
}
indexes::MapId ZsetScoresMap(std::string_view ns, std::string_view set) {
  return {"zset", std::string(ns), std::string(set) + "/by-score"};
}
const indexes::MapSpec& ZsetMembersSpec() {
  static const indexes::MapSpec spec{merkle::MapKind::kInt64Aggregate, merkle::kZeroHash};
  return spec;
}

std::uint16_t ZsetOpKind(const ZsetOp& op) {
  switch (op.type) {
    case ZsetOp::Type::kAdd: return kOpZsetAdd;
    case ZsetOp::Type::kIncrement: return kOpZsetIncrement;
    case ZsetOp::Type::kRemove: return kOpZsetRemove;
  }
  return kOpZsetAdd;
}

std::string EncodeZsetOp(const ZsetOp& op) {
  ByteWriter w(32 + op.ns.size() + op.set.size() + op.member.size());
  w.Bytes(op.ns);
  w.Bytes(op.set);
  w.Bytes(op.member);
  if (op.type != ZsetOp::Type::kRemove) w.I64(op.score);
  return w.Take();
}

Result<ZsetOp> DecodeZsetOp(std::uint16_t kind, std::string_view body) {
  ZsetOp op;
  switch (kind) {
    case kOpZsetAdd: op.type = ZsetOp::Type::kAdd; break;
    case kOpZsetIncrement: op.type = ZsetOp::Type::kIncrement; break;
    case kOpZsetRemove: op.type = ZsetOp::Type::kRemove; break;
    default: return InvalidArgument("operation kind " + std::to_string(kind) + " is not a sorted-set operation");
  }
  ByteReader r(body, "sorted-set operation");
  op.ns = std::string(r.Bytes(kMaxNamespaceSize));
  op.set = std::string(r.Bytes(kMaxSetNameSize));
  // The scores key holds the member plus at most 12 bytes of tuple framing
  // and escapes; keep it within the map's key limit in the worst case.
  op.member = std::string(r.Bytes(merkle::kMaxMapKeySize / 2 - 16));
  if (op.type != ZsetOp::Type::kRemove) op.score = r.I64();
  if (r.ok() && (op.ns.empty() || op.set.empty() || op.member.empty())) {
    r.Fail("namespace, set and member must not be empty");
  }
  VELLUM_RETURN_IF_ERROR(r.Finish());
  return op;
}

}  // namespace vellum::engines::kv
