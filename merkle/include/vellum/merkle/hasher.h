// The one SHA-256 hasher of Vellum, with the domain separation every hashed
// structure uses (docs/FORMAT.md, "Hashing").
//
//   leaf  = SHA256(0x00 || data)            RFC 9162 §2.1.1 log-tree leaf
//   node  = SHA256(0x01 || left || right)   RFC 9162 §2.1.1 interior node
//   empty = SHA256("")                      root of the empty log tree
//   tagged(tag, data) = SHA256(u8(len(tag)) || tag || data)
//
// Tags are ASCII, 2..63 bytes, so a tagged input starts with a byte in
// 0x02..0x3f and can never be read as a leaf or node input.
//
// Thread-safety: a Sha256 object is not thread-safe. The free functions use a
// thread-local context, so they may be called from any thread.
#ifndef VELLUM_MERKLE_HASHER_H_
#define VELLUM_MERKLE_HASHER_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "vellum/base/status.h"

namespace vellum::merkle {

inline constexpr size_t kHashSize = 32;
using Hash = std::array<std::uint8_t, kHashSize>;

// Views and conversions. HashFromBytes/HashFromHex reject anything but 32 bytes.
inline std::string_view HashView(const Hash& h) {
  return {reinterpret_cast<const char*>(h.data()), h.size()};
}
std::string HashHex(const Hash& h);
Result<Hash> HashFromBytes(std::string_view bytes);
Result<Hash> HashFromHex(std::string_view hex);
inline constexpr Hash kZeroHash{};

// Incremental SHA-256 over one reusable OpenSSL EVP context.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  void Update(const Hash& h) { Update(HashView(h)); }
  // Returns the digest and resets the context for the next message.
  Hash Finish();

 private:
  void* ctx_;  // EVP_MD_CTX*, kept opaque so OpenSSL stays out of this header.
};

Hash Sha256Of(std::string_view data);
// RFC 9162 leaf hash: SHA256(0x00 || data).
Hash HashLeaf(std::string_view data);
// RFC 9162 interior node: SHA256(0x01 || left || right).
Hash HashChildren(const Hash& left, const Hash& right);
// Root of the empty log tree, SHA256("").
Hash EmptyTreeRoot();

// Domain-separated hash for Vellum's own structures. `tag` must be one of the
// constants below (2..63 ASCII bytes).
Hash HashTagged(std::string_view tag, std::string_view data);

// Registered tags; each names one structure and its format version.
inline constexpr std::string_view kTagTransaction = "vellum/tx/v1";
inline constexpr std::string_view kTagLedgerId = "vellum/ledger-id/v1";
// Derived document ids: HashTagged(tag, u64 height ‖ u32 accepted tx index ‖ u32 op index).
inline constexpr std::string_view kTagDocumentId = "vellum/doc-id/v1";
// Authenticated map (docs/FORMAT.md): value, entry (leaf), inner node, root.
inline constexpr std::string_view kTagMapValue = "vellum/map-value/v1";
inline constexpr std::string_view kTagMapLeaf = "vellum/map-leaf/v1";
inline constexpr std::string_view kTagMapInner = "vellum/map-inner/v1";
inline constexpr std::string_view kTagMapRoot = "vellum/map-root/v1";

}  // namespace vellum::merkle

#endif  // VELLUM_MERKLE_HASHER_H_
