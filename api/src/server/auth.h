// Bearer-token authorization with per-ledger roles (read < write < admin),
// configured by a JSON file (docs/FORMAT.md is not involved: this is
// configuration, documented in README "Security"):
//
//   {"tokens": [
//     {"name": "ops",     "token_sha256": "<64 hex>", "roles": {"*": "admin"}},
//     {"name": "billing", "token": "s3cret",          "roles": {"payments": "write", "audit": "read"}}
//   ]}
//
// "*" applies to every ledger; a ledger's own entry wins over "*". Tokens may
// be given in clear or as the SHA-256 of the token (hex), so the file need
// not hold secrets. Comparison is by hash, in constant time.
//
// Thread-safety: AuthConfig is immutable once parsed.
#ifndef VELLUM_API_SERVER_AUTH_H_
#define VELLUM_API_SERVER_AUTH_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/merkle/hasher.h"

namespace vellum::api::server {

enum class Role : std::uint8_t { kNone = 0, kRead = 1, kWrite = 2, kAdmin = 3 };
std::string_view RoleName(Role role);

struct AuthConfig {
  struct Token {
    std::string name;  // who, for the logs
    merkle::Hash token_sha256{};
    std::map<std::string, Role, std::less<>> roles;  // ledger or "*" -> role
  };
  std::vector<Token> tokens;
  bool enabled() const { return !tokens.empty(); }
};

// InvalidArgument with the reason (unknown field, bad role, duplicate token).
Result<AuthConfig> ParseAuthConfig(std::string_view json_text);

// The caller's identity for a call needing `needed` on `ledger` ("" for calls
// on no particular ledger, which need the role on "*"): its token's name, or
// "anonymous" when auth is off. `authorization` is the metadata value
// ("Bearer <token>"), if any. Unauthenticated (missing/unknown token) or
// PermissionDenied (role too low).
Result<std::string> Authorize(const AuthConfig& config, std::optional<std::string_view> authorization,
                              std::string_view ledger, Role needed);

// The role a token holds on `ledger` (kNone if it holds none).
Role RoleOn(const AuthConfig::Token& token, std::string_view ledger);

}  // namespace vellum::api::server

#endif  // VELLUM_API_SERVER_AUTH_H_
