#include "vellum/base/status.h"

#include <catch2/catch.hpp>

namespace vellum {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  VELLUM_ASSIGN_OR_RETURN(int h, Half(x));
  VELLUM_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  VELLUM_RETURN_IF_ERROR(Half(x));
  return Status::Ok();
}

TEST_CASE("Status codes follow gRPC numbering and names", "[base]") {
  CHECK(static_cast<int>(StatusCode::kInvalidArgument) == 3);
  CHECK(static_cast<int>(StatusCode::kAborted) == 10);
  CHECK(static_cast<int>(StatusCode::kDataLoss) == 15);
  CHECK(static_cast<int>(StatusCode::kUnauthenticated) == 16);
  CHECK(StatusCodeName(StatusCode::kResourceExhausted) == "RESOURCE_EXHAUSTED");
  CHECK(Status().ok());
  CHECK(NotFound("x").ToString() == "NOT_FOUND: x");
  CHECK(NotFound("x").WithContext("ledger a").message() == "ledger a: x");
}

TEST_CASE("Result and the macros propagate errors", "[base]") {
  CHECK(*Quarter(8) == 2);
  auto r = Quarter(6);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK(r.status().message() == "odd: 3");
  CHECK(CheckEven(4).ok());
  CHECK(CheckEven(5).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Verification failures carry their evidence", "[base]") {
  Status s = VerificationFailed({"inclusion.root", "aa", "bb", 5, 8});
  CHECK(s.code() == StatusCode::kDataLoss);
  REQUIRE(s.verification() != nullptr);
  CHECK(s.verification()->check == "inclusion.root");
  CHECK(s.message().find("expected aa, computed bb") != std::string::npos);
  CHECK(s.message().find("index 5, size 8") != std::string::npos);
  CHECK(s.WithContext("block 3").verification() != nullptr);
}

}  // namespace
}  // namespace vellum
