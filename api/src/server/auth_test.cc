#include "auth.h"

#include <catch2/catch.hpp>

#include "vellum/merkle/hasher.h"

namespace vellum::api::server {
namespace {

AuthConfig Config() {
  const std::string hashed = merkle::HashHex(merkle::Sha256Of("ops-secret"));
  auto config = ParseAuthConfig(R"({"tokens":[
    {"name":"ops","token_sha256":")" + hashed + R"(","roles":{"*":"admin"}},
    {"name":"app","token":"app-secret","roles":{"*":"read","shop":"write"}},
    {"name":"auditor","token":"audit-secret","roles":{"shop":"read"}}]})");
  REQUIRE(config.ok());
  return *config;
}

StatusCode CodeOf(const Result<std::string>& r) { return r.ok() ? StatusCode::kOk : r.status().code(); }

TEST_CASE("roles per ledger, '*' as the fallback, a ledger's own entry wins", "[api][auth]") {
  const AuthConfig config = Config();
  CHECK(*Authorize(config, "Bearer ops-secret", "anything", Role::kAdmin) == "ops");
  CHECK(*Authorize(config, "Bearer app-secret", "shop", Role::kWrite) == "app");
  CHECK(CodeOf(Authorize(config, "Bearer app-secret", "other", Role::kWrite)) == StatusCode::kPermissionDenied);
  CHECK(*Authorize(config, "Bearer app-secret", "other", Role::kRead) == "app");
  CHECK(*Authorize(config, "Bearer audit-secret", "shop", Role::kRead) == "auditor");
  CHECK(CodeOf(Authorize(config, "Bearer audit-secret", "shop", Role::kWrite)) == StatusCode::kPermissionDenied);
  CHECK(CodeOf(Authorize(config, "Bearer audit-secret", "other", Role::kRead)) == StatusCode::kPermissionDenied);
  // Calls on no particular ledger need the role on "*".
  CHECK(CodeOf(Authorize(config, "Bearer audit-secret", "", Role::kRead)) == StatusCode::kPermissionDenied);
}

TEST_CASE("missing, malformed and unknown tokens are unauthenticated", "[api][auth]") {
  const AuthConfig config = Config();
  CHECK(CodeOf(Authorize(config, std::nullopt, "shop", Role::kRead)) == StatusCode::kUnauthenticated);
  CHECK(CodeOf(Authorize(config, "app-secret", "shop", Role::kRead)) == StatusCode::kUnauthenticated);
  CHECK(CodeOf(Authorize(config, "Bearer app-secreT", "shop", Role::kRead)) == StatusCode::kUnauthenticated);
  CHECK(CodeOf(Authorize(config, "Bearer ", "shop", Role::kRead)) == StatusCode::kUnauthenticated);
  // With no tokens configured, auth is off.
  CHECK(*Authorize(AuthConfig{}, std::nullopt, "shop", Role::kAdmin) == "anonymous");
}

TEST_CASE("the auth file is parsed strictly", "[api][auth]") {
  for (const char* bad : {
           "not json",
           R"({"tokens":{}})",
           R"({"tokens":[],"extra":1})",
           R"({"tokens":[{"name":"a","token":"t","roles":{"*":"root"}}]})",
           R"({"tokens":[{"name":"a","token":"t","token_sha256":"00","roles":{}}]})",
           R"({"tokens":[{"name":"a","token_sha256":"zz","roles":{}}]})",
           R"({"tokens":[{"name":"a","token":"t","roles":{},"colour":"red"}]})",
           R"({"tokens":[{"name":"a","token":"t","roles":{}},{"name":"b","token":"t","roles":{}}]})",
       }) {
    INFO(bad);
    auto config = ParseAuthConfig(bad);
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().code() == StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace vellum::api::server
