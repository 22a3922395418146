// The catalog: the authenticated map that names every map of a ledger's
// views, and whose root is the STATE ROOT written into each block header
// (docs/FORMAT.md, "Catalog").
//
// The catalog is an authenticated map of kind kPlain (map_proof.h). Its key
// is the tuple encoding (base/tuple.h) of three strings (model, name, part),
// e.g. ("kv", "accounts", "primary"); its value is the canonical encoding of a
// CatalogEntry: the map's kind, its root hash, its number of entries and the
// hash of its schema. A proof about a view's data is therefore a map proof
// against the entry's map_root plus a catalog proof (VerifyCatalogEntry)
// against the state root of a block header.
//
// The entry is hashed as a map value (kTagMapValue) under a catalog key, so it
// needs no tag of its own: it can only be read as a catalog entry by a proof
// against a state root, and its encoding starts with its own version byte.
//
// Thread-safety: pure functions over values.
#ifndef VELLUM_MERKLE_CATALOG_H_
#define VELLUM_MERKLE_CATALOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vellum/base/status.h"
#include "vellum/merkle/hasher.h"
#include "vellum/merkle/map_proof.h"

namespace vellum::merkle {

// The kind of the catalog map itself (fixed by the format).
inline constexpr MapKind kCatalogMapKind = MapKind::kPlain;
// Encoded size of a CatalogEntry.
inline constexpr size_t kCatalogEntrySize = 1 + 1 + kHashSize + 8 + kHashSize;

// What the catalog commits to about one map after a block.
struct CatalogEntry {
  MapKind kind = MapKind::kPlain;
  Hash map_root{};           // MapRootHash(kind, top) of the map
  std::uint64_t count = 0;   // entries in the map (also committed in map_root)
  Hash schema_hash{};        // kZeroHash: the map has no schema
  bool operator==(const CatalogEntry&) const = default;
};

// u8 version (1) || u8 kind || map_root(32) || u64 count || schema_hash(32).
std::string EncodeCatalogEntry(const CatalogEntry& entry);
// Strict: InvalidArgument unless `bytes` is exactly EncodeCatalogEntry(e) for
// some entry e with a known kind.
Result<CatalogEntry> DecodeCatalogEntry(std::string_view bytes);

// The three names of a map.
struct CatalogKeyParts {
  std::string model;
  std::string name;
  std::string part;
  bool operator==(const CatalogKeyParts&) const = default;
};

// EncodeTuple((String(model), String(name), String(part))). InvalidArgument if
// the encoding is longer than kMaxMapKeySize (the catalog is a map).
Result<std::string> CatalogKey(std::string_view model, std::string_view name, std::string_view part);
// Strict inverse of CatalogKey: InvalidArgument unless `key` is the encoding
// of exactly three strings and at most kMaxMapKeySize bytes.
Result<CatalogKeyParts> DecodeCatalogKey(std::string_view key);

// Verifies a catalog get proof against a trusted state root. Returns the entry
// of `catalog_key` if the proof shows it present, nullopt if it proves the key
// absent. Errors:
//  - kInvalidArgument: `catalog_key` is not a catalog key, the proof is not of
//    kind kCatalogMapKind or is malformed;
//  - kDataLoss (VerificationError) with the checks of VerifyMapGet ("map.root"
//    when the proof is for another state root or was altered, "map.boundary",
//    "map.value", ...) or "catalog.entry" when the proven value is not a
//    canonical CatalogEntry (expected: the format, computed: the reason).
Result<std::optional<CatalogEntry>> VerifyCatalogEntry(const Hash& state_root, const MapProof& proof,
                                                       std::string_view catalog_key);

}  // namespace vellum::merkle

#endif  // VELLUM_MERKLE_CATALOG_H_
