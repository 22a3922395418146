// The canonical binary encoding primitives every hashed Vellum structure is
// built from (docs/FORMAT.md, "Primitives"): fixed-width big-endian integers,
// fixed-size byte fields and u32-length-prefixed byte strings.
//
// ByteWriter appends; ByteReader consumes with a sticky error so decoders stay
// flat: read every field, then call Finish(), which also rejects trailing bytes.
#ifndef VELLUM_BASE_ENCODING_H_
#define VELLUM_BASE_ENCODING_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "vellum/base/status.h"

namespace vellum {

// Big-endian fixed-width helpers on raw buffers.
void PutBigEndian64(char* out, std::uint64_t v);
std::uint64_t GetBigEndian64(const char* in);
// An 8-byte big-endian key, the form of every append-only LMDB key.
std::string BigEndianKey(std::uint64_t v);

class ByteWriter {
 public:
  ByteWriter() = default;
  explicit ByteWriter(size_t reserve) { out_.reserve(reserve); }

  void U8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U16(std::uint16_t v);
  void U32(std::uint32_t v);
  void U64(std::uint64_t v);
  void I64(std::int64_t v) { U64(static_cast<std::uint64_t>(v)); }
  // Raw bytes with no length (fixed-size fields such as hashes).
  void Fixed(std::string_view bytes) { out_.append(bytes); }
  // u32 big-endian length, then the bytes.
  void Bytes(std::string_view bytes);

  const std::string& data() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  // `what` names the structure in error messages, e.g. "block header".
  ByteReader(std::string_view data, std::string_view what) : data_(data), what_(what) {}

  std::uint8_t U8();
  std::uint16_t U16();
  std::uint32_t U32();
  std::uint64_t U64();
  std::int64_t I64() { return static_cast<std::int64_t>(U64()); }
  std::string_view Fixed(size_t n);
  // A u32-length-prefixed string; fails if longer than max_len.
  std::string_view Bytes(size_t max_len);

  size_t remaining() const { return ok_ ? data_.size() - pos_ : 0; }
  bool ok() const { return ok_; }
  // Fails (sticky) with a message; use for semantic checks during decoding.
  void Fail(std::string message);
  // OK iff every read succeeded and every byte was consumed.
  Status Finish() const;

 private:
  bool Need(size_t n, std::string_view field);

  std::string_view data_;
  std::string_view what_;
  size_t pos_ = 0;
  bool ok_ = true;
  std::string error_;
};

}  // namespace vellum

#endif  // VELLUM_BASE_ENCODING_H_
