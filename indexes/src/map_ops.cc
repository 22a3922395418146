#include "vellum/indexes/map_ops.h"

#include "vellum/base/encoding.h"

namespace vellum::indexes {

std::uint16_t MapOpKind(const MapOp& op) {
  return op.mutation.op == MapMutation::Op::kPut ? kOpMapPut : kOpMapDelete;
}

std::string EncodeMapOp(const MapOp& op) {
  ByteWriter w(64 + op.mutation.key.size() + op.mutation.value.size());
  w.Bytes(op.map.model);
  w.Bytes(op.map.name);
  w.Bytes(op.map.part);
  w.U8(static_cast<std::uint8_t>(op.spec.kind));
  w.Fixed(merkle::HashView(op.spec.schema_hash));
  w.Bytes(op.mutation.key);
  if (op.mutation.op == MapMutation::Op::kPut) {
    w.Bytes(op.mutation.value);
    w.I64(op.mutation.aggregate);
  }
  return w.Take();
}

Result<MapOp> DecodeMapOp(std::uint16_t kind, std::string_view body) {
  if (kind != kOpMapPut && kind != kOpMapDelete) {
    return InvalidArgument("operation kind " + std::to_string(kind) + " is not a map operation");
  }
  ByteReader r(body, "map operation");
  MapOp op;
  op.map.model = std::string(r.Bytes(kMaxMapIdPartSize));
  op.map.name = std::string(r.Bytes(kMaxMapIdPartSize));
  op.map.part = std::string(r.Bytes(kMaxMapIdPartSize));
  const std::uint8_t map_kind = r.U8();
  if (r.ok() && map_kind > static_cast<std::uint8_t>(merkle::MapKind::kInt64Aggregate)) {
    r.Fail("unknown map kind " + std::to_string(map_kind));
  }
  op.spec.kind = static_cast<merkle::MapKind>(map_kind);
  const std::string_view schema = r.Fixed(merkle::kHashSize);
  op.mutation.key = std::string(r.Bytes(merkle::kMaxMapKeySize));
  if (kind == kOpMapPut) {
    op.mutation.op = MapMutation::Op::kPut;
    op.mutation.value = std::string(r.Bytes(merkle::kMaxMapValueSize));
    op.mutation.aggregate = r.I64();
  } else {
    op.mutation.op = MapMutation::Op::kDelete;
  }
  if (r.ok() && (op.map.model.empty() || op.map.name.empty())) r.Fail("map model and name must not be empty");
  VELLUM_RETURN_IF_ERROR(r.Finish());
  op.spec.schema_hash = *merkle::HashFromBytes(schema);
  return op;
}

}  // namespace vellum::indexes
