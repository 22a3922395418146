#include "auth.h"

#include <openssl/crypto.h>

#include <set>

#include <nlohmann/json.hpp>

namespace vellum::api::server {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kRead: return "read";
    case Role::kWrite: return "write";
    case Role::kAdmin: return "admin";
    case Role::kNone: break;
  }
  return "none";
}

namespace {

Result<Role> ParseRole(const nlohmann::json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "read") return Role::kRead;
    if (s == "write") return Role::kWrite;
    if (s == "admin") return Role::kAdmin;
  }
  return InvalidArgument("a role is one of \"read\", \"write\", \"admin\"; got " + v.dump());
}

}  // namespace

Result<AuthConfig> ParseAuthConfig(std::string_view json_text) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    return InvalidArgument(std::string("auth file is not JSON: ") + e.what());
  }
  if (!doc.is_object() || doc.size() != 1 || !doc.contains("tokens") || !doc["tokens"].is_array()) {
    return InvalidArgument("auth file must be {\"tokens\": [...]}");
  }
  AuthConfig config;
  std::set<merkle::Hash> seen;
  for (size_t i = 0; i < doc["tokens"].size(); ++i) {
    const auto& t = doc["tokens"][i];
    const std::string where = "tokens[" + std::to_string(i) + "]";
    if (!t.is_object()) return InvalidArgument(where + " must be an object");
    for (const auto& [key, value] : t.items()) {
      if (key != "name" && key != "token" && key != "token_sha256" && key != "roles") {
        return InvalidArgument(where + ": unknown field '" + key + "'");
      }
    }
    AuthConfig::Token token;
    if (!t.contains("name") || !t["name"].is_string()) return InvalidArgument(where + ": missing string 'name'");
    token.name = t["name"].get<std::string>();
    if (t.contains("token") == t.contains("token_sha256")) {
      return InvalidArgument(where + ": give exactly one of 'token' and 'token_sha256'");
    }
    if (t.contains("token")) {
      if (!t["token"].is_string() || t["token"].get<std::string>().size() < 8) {
        return InvalidArgument(where + ": 'token' must be a string of at least 8 characters");
      }
      token.token_sha256 = merkle::Sha256Of(t["token"].get<std::string>());
    } else {
      if (!t["token_sha256"].is_string()) return InvalidArgument(where + ": 'token_sha256' must be 64 hex digits");
      auto h = merkle::HashFromHex(t["token_sha256"].get<std::string>());
      if (!h.ok()) return h.status().WithContext(where + ".token_sha256");
      token.token_sha256 = *h;
    }
    if (!seen.insert(token.token_sha256).second) return InvalidArgument(where + ": the same token appears twice");
    if (!t.contains("roles") || !t["roles"].is_object()) return InvalidArgument(where + ": missing object 'roles'");
    for (const auto& [ledger, role] : t["roles"].items()) {
      auto r = ParseRole(role);
      if (!r.ok()) return r.status().WithContext(where + ".roles." + ledger);
      token.roles.emplace(ledger, *r);
    }
    config.tokens.push_back(std::move(token));
  }
  return config;
}

Role RoleOn(const AuthConfig::Token& token, std::string_view ledger) {
  if (!ledger.empty()) {
    if (auto it = token.roles.find(ledger); it != token.roles.end()) return it->second;
  }
  if (auto it = token.roles.find("*"); it != token.roles.end()) return it->second;
  return Role::kNone;
}

Result<std::string> Authorize(const AuthConfig& config, std::optional<std::string_view> authorization,
                              std::string_view ledger, Role needed) {
  if (!config.enabled()) return std::string("anonymous");
  if (!authorization.has_value()) return Status(StatusCode::kUnauthenticated, "missing 'authorization: Bearer <token>'");
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization->substr(0, kBearer.size()) != kBearer) {
    return Status(StatusCode::kUnauthenticated, "the authorization metadata must be 'Bearer <token>'");
  }
  const merkle::Hash presented = merkle::Sha256Of(authorization->substr(kBearer.size()));
  const AuthConfig::Token* match = nullptr;
  for (const auto& token : config.tokens) {
    // Constant time per comparison, so timing does not reveal a prefix.
    if (CRYPTO_memcmp(token.token_sha256.data(), presented.data(), presented.size()) == 0) match = &token;
  }
  if (match == nullptr) return Status(StatusCode::kUnauthenticated, "unknown token");
  const Role held = RoleOn(*match, ledger);
  if (held < needed) {
    return Status(StatusCode::kPermissionDenied,
                  "token '" + match->name + "' has role " + std::string(RoleName(held)) + " on " +
                      (ledger.empty() ? std::string("all ledgers") : "ledger '" + std::string(ledger) + "'") +
                      "; this call needs " + std::string(RoleName(needed)));
  }
  return match->name;
}

}  // namespace vellum::api::server
