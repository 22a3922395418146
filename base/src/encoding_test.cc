#include "vellum/base/encoding.h"

#include <catch2/catch.hpp>

namespace vellum {
namespace {

TEST_CASE("ByteWriter writes big-endian fixed widths", "[base]") {
  ByteWriter w;
  w.U8(1);
  w.U16(0x0203);
  w.U32(0x04050607);
  w.U64(0x08090a0b0c0d0e0fULL);
  w.Bytes("xy");
  CHECK(w.data() == std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
                                "\x00\x00\x00\x02xy", 21));
  ByteReader r(w.data(), "test");
  CHECK(r.U8() == 1);
  CHECK(r.U16() == 0x0203);
  CHECK(r.U32() == 0x04050607);
  CHECK(r.U64() == 0x08090a0b0c0d0e0fULL);
  CHECK(r.Bytes(10) == "xy");
  CHECK(r.Finish().ok());
}

TEST_CASE("ByteReader rejects truncation, trailing bytes and oversized strings", "[base]") {
  ByteWriter w;
  w.Bytes("hello");
  {
    ByteReader r(std::string_view(w.data()).substr(0, 6), "thing");
    (void)r.Bytes(100);
    Status s = r.Finish();
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message().find("malformed thing") != std::string::npos);
  }
  {
    ByteReader r(w.data(), "thing");
    (void)r.Bytes(4);
    CHECK_FALSE(r.Finish().ok());
  }
  {
    std::string extra = w.data() + "z";
    ByteReader r(extra, "thing");
    (void)r.Bytes(100);
    CHECK(r.Finish().message().find("1 trailing bytes") != std::string::npos);
  }
  CHECK(GetBigEndian64(BigEndianKey(0x1122334455667788ULL).data()) == 0x1122334455667788ULL);
  CHECK(BigEndianKey(1) < BigEndianKey(256));
}

}  // namespace
}  // namespace vellum
