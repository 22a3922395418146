// Byte strings and their text forms (lowercase hex, standard base64).
//
// Vellum keeps raw bytes in std::string (owned) and std::string_view
// (borrowed), as LevelDB does; nothing here assumes the bytes are text.
#ifndef VELLUM_BASE_BYTES_H_
#define VELLUM_BASE_BYTES_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "vellum/base/status.h"

namespace vellum {

// Borrowed view of arbitrary bytes.
inline std::string_view AsStringView(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
inline std::span<const std::uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Lowercase hex, two characters per byte.
std::string HexEncode(std::string_view bytes);
inline std::string HexEncode(std::span<const std::uint8_t> bytes) { return HexEncode(AsStringView(bytes)); }
// Accepts upper or lower case; InvalidArgument on odd length or a non-hex character.
Result<std::string> HexDecode(std::string_view hex);

// RFC 4648 base64 with padding (the alphabet C2SP notes use).
std::string Base64Encode(std::string_view bytes);
// Same encoding, appended to `*out` (no temporary string; for encoders that
// build one large document).
void Base64EncodeAppend(std::string* out, std::string_view bytes);
// Strict: padding required, no whitespace, non-canonical trailing bits rejected.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace vellum

#endif  // VELLUM_BASE_BYTES_H_
