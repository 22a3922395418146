#include "vellum/base/encoding.h"

namespace vellum {

void PutBigEndian64(char* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

std::uint64_t GetBigEndian64(const char* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::string BigEndianKey(std::uint64_t v) {
  std::string key(8, '\0');
  PutBigEndian64(key.data(), v);
  return key;
}

void ByteWriter::U16(std::uint16_t v) {
  out_.push_back(static_cast<char>(v >> 8));
  out_.push_back(static_cast<char>(v & 0xff));
}

void ByteWriter::U32(std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<char>((v >> shift) & 0xff));
}

void ByteWriter::U64(std::uint64_t v) {
  char buf[8];
  PutBigEndian64(buf, v);
  out_.append(buf, 8);
}

void ByteWriter::Bytes(std::string_view bytes) {
  U32(static_cast<std::uint32_t>(bytes.size()));
  out_.append(bytes);
}

bool ByteReader::Need(size_t n, std::string_view field) {
  if (!ok_) return false;
  if (data_.size() - pos_ < n) {
    Fail("truncated " + std::string(field) + " at offset " + std::to_string(pos_) + " (need " +
         std::to_string(n) + " bytes, have " + std::to_string(data_.size() - pos_) + ")");
    return false;
  }
  return true;
}

std::uint8_t ByteReader::U8() {
  if (!Need(1, "u8")) return 0;
  return static_cast<std::uint8_t>(data_[pos_++]);
}

std::uint16_t ByteReader::U16() {
  if (!Need(2, "u16")) return 0;
  const auto v = static_cast<std::uint16_t>((static_cast<unsigned char>(data_[pos_]) << 8) |
                                            static_cast<unsigned char>(data_[pos_ + 1]));
  pos_ += 2;
  return v;
}

std::uint32_t ByteReader::U32() {
  if (!Need(4, "u32")) return 0;
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(data_[pos_ + i]);
  pos_ += 4;
  return v;
}

std::uint64_t ByteReader::U64() {
  if (!Need(8, "u64")) return 0;
  const std::uint64_t v = GetBigEndian64(data_.data() + pos_);
  pos_ += 8;
  return v;
}

std::string_view ByteReader::Fixed(size_t n) {
  if (!Need(n, "fixed field")) return {};
  std::string_view v = data_.substr(pos_, n);
  pos_ += n;
  return v;
}

std::string_view ByteReader::Bytes(size_t max_len) {
  const std::uint32_t len = U32();
  if (!ok_) return {};
  if (len > max_len) {
    Fail("byte string of length " + std::to_string(len) + " at offset " + std::to_string(pos_ - 4) +
         " exceeds the limit " + std::to_string(max_len));
    return {};
  }
  return Fixed(len);
}

void ByteReader::Fail(std::string message) {
  if (!ok_) return;
  ok_ = false;
  error_ = std::move(message);
}

Status ByteReader::Finish() const {
  if (!ok_) return InvalidArgument("malformed " + std::string(what_) + ": " + error_);
  if (pos_ != data_.size()) {
    return InvalidArgument("malformed " + std::string(what_) + ": " + std::to_string(data_.size() - pos_) +
                           " trailing bytes");
  }
  return Status::Ok();
}

}  // namespace vellum
