// Raw map operations: the lowest-level writes a transaction can carry, one
// put or delete on one authenticated map (docs/FORMAT.md, "Map operations").
// Engines express their writes as these or as their own operation kinds that
// project to MapChanges.
//
// Thread-safety: pure functions.
#ifndef VELLUM_INDEXES_MAP_OPS_H_
#define VELLUM_INDEXES_MAP_OPS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "vellum/base/status.h"
#include "vellum/indexes/views.h"

namespace vellum::indexes {

// Operation kinds 0x0100..0x01ff belong to this layer.
inline constexpr std::uint16_t kOpMapPut = 0x0100;
inline constexpr std::uint16_t kOpMapDelete = 0x0101;
inline constexpr size_t kMaxMapIdPartSize = 255;

struct MapOp {
  MapId map;
  MapSpec spec;
  MapMutation mutation;
};

// The operation kind of `op` (put or delete).
std::uint16_t MapOpKind(const MapOp& op);
std::string EncodeMapOp(const MapOp& op);
// Strict; InvalidArgument for an unknown kind, malformed body, an empty or
// over-long model/name/part, a key over 4 KiB or a value over 1 MiB.
Result<MapOp> DecodeMapOp(std::uint16_t kind, std::string_view body);

}  // namespace vellum::indexes

#endif  // VELLUM_INDEXES_MAP_OPS_H_
