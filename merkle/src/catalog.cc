#include "vellum/merkle/catalog.h"

#include <algorithm>
#include <variant>

#include "vellum/base/encoding.h"
#include "vellum/base/tuple.h"

namespace vellum::merkle {
namespace {

constexpr std::uint8_t kCatalogEntryVersion = 1;

bool KnownKind(std::uint8_t kind) {
  return kind == static_cast<std::uint8_t>(MapKind::kPlain) ||
         kind == static_cast<std::uint8_t>(MapKind::kInt64Aggregate);
}

Hash ToHash(std::string_view bytes) {
  Hash h{};
  if (bytes.size() == kHashSize) std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

}  // namespace

std::string EncodeCatalogEntry(const CatalogEntry& entry) {
  ByteWriter w(kCatalogEntrySize);
  w.U8(kCatalogEntryVersion);
  w.U8(static_cast<std::uint8_t>(entry.kind));
  w.Fixed(HashView(entry.map_root));
  w.U64(entry.count);
  w.Fixed(HashView(entry.schema_hash));
  return w.Take();
}

Result<CatalogEntry> DecodeCatalogEntry(std::string_view bytes) {
  ByteReader r(bytes, "catalog entry");
  const std::uint8_t version = r.U8();
  if (r.ok() && version != kCatalogEntryVersion) r.Fail("unknown version " + std::to_string(version));
  const std::uint8_t kind = r.U8();
  if (r.ok() && !KnownKind(kind)) r.Fail("unknown map kind " + std::to_string(kind));
  CatalogEntry e;
  e.kind = static_cast<MapKind>(kind);
  e.map_root = ToHash(r.Fixed(kHashSize));
  e.count = r.U64();
  e.schema_hash = ToHash(r.Fixed(kHashSize));
  VELLUM_RETURN_IF_ERROR(r.Finish());
  return e;
}

Result<std::string> CatalogKey(std::string_view model, std::string_view name, std::string_view part) {
  VELLUM_ASSIGN_OR_RETURN(std::string key,
                          EncodeTuple({TupleElement::String(std::string(model)),
                                       TupleElement::String(std::string(name)),
                                       TupleElement::String(std::string(part))}));
  if (key.size() > kMaxMapKeySize) {
    return InvalidArgument("catalog key of " + std::to_string(key.size()) + " bytes is longer than " +
                           std::to_string(kMaxMapKeySize));
  }
  return key;
}

Result<CatalogKeyParts> DecodeCatalogKey(std::string_view key) {
  if (key.size() > kMaxMapKeySize) {
    return InvalidArgument("catalog key of " + std::to_string(key.size()) + " bytes is longer than " +
                           std::to_string(kMaxMapKeySize));
  }
  VELLUM_ASSIGN_OR_RETURN(Tuple t, DecodeTuple(key));
  if (t.size() != 3) {
    return InvalidArgument("catalog key has " + std::to_string(t.size()) + " elements, want 3 strings");
  }
  std::string* parts[3] = {nullptr, nullptr, nullptr};
  for (size_t i = 0; i < 3; ++i) {
    parts[i] = std::get_if<std::string>(&t[i].value);
    if (parts[i] == nullptr) return InvalidArgument("catalog key element " + std::to_string(i) + " is not a string");
  }
  return CatalogKeyParts{std::move(*parts[0]), std::move(*parts[1]), std::move(*parts[2])};
}

Result<std::optional<CatalogEntry>> VerifyCatalogEntry(const Hash& state_root, const MapProof& proof,
                                                       std::string_view catalog_key) {
  VELLUM_RETURN_IF_ERROR(DecodeCatalogKey(catalog_key).status().WithContext("catalog proof"));
  if (proof.kind != kCatalogMapKind) {
    return InvalidArgument("catalog proof is of map kind " + std::to_string(static_cast<int>(proof.kind)) +
                           ", want plain");
  }
  VELLUM_ASSIGN_OR_RETURN(MapGetResult got, VerifyMapGet(state_root, catalog_key, proof));
  if (!got.entry) return std::optional<CatalogEntry>();
  Result<CatalogEntry> entry = DecodeCatalogEntry(got.entry->value);
  if (!entry.ok()) {
    return VerificationFailed(VerificationError{"catalog.entry", "canonical catalog entry (docs/FORMAT.md)",
                                                entry.status().message(), got.entry->rank, got.total});
  }
  return std::optional<CatalogEntry>(std::move(*entry));
}

}  // namespace vellum::merkle
