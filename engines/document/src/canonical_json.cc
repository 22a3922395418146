#include "vellum/engines/document/canonical_json.h"

#include <charconv>
#include <cmath>
#include <set>
#include <vector>

namespace vellum::engines::document {
namespace {

using nlohmann::json;

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid (overlong
// forms, surrogates and code points above U+10FFFF are invalid).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  auto cont = [&](size_t k) { return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80; };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c == 0xE0 && c1 < 0xA0) return 0;  // overlong
    if (c == 0xED && c1 >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c == 0xF0 && c1 < 0x90) return 0;  // overlong
    if (c == 0xF4 && c1 >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

Status AppendString(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return InvalidArgument("string is not valid UTF-8 at byte " + std::to_string(i));
    const auto c = static_cast<unsigned char>(s[i]);
    if (n == 1) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  out.push_back('"');
  return Status::Ok();
}

Status AppendDouble(double d, std::string& out) {
  if (!std::isfinite(d)) return InvalidArgument("NaN and infinity are not JSON numbers");
  if (d == 0) {
    out.push_back('0');  // also -0
    return Status::Ok();
  }
  if (std::trunc(d) == d && std::fabs(d) < 9007199254740992.0) {
    out += std::to_string(static_cast<std::int64_t>(d));
    return Status::Ok();
  }
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  if (ec != std::errc()) return Internal("cannot format a double");
  out.append(buf, end);
  return Status::Ok();
}

Status Append(const json& v, int depth, std::string& out) {
  if (v.is_structured() && depth >= kMaxJsonDepth) {
    return InvalidArgument("JSON nesting deeper than " + std::to_string(kMaxJsonDepth));
  }
  switch (v.type()) {
    case json::value_t::null: out += "null"; return Status::Ok();
    case json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return Status::Ok();
    case json::value_t::number_integer: out += std::to_string(v.get<std::int64_t>()); return Status::Ok();
    case json::value_t::number_unsigned: out += std::to_string(v.get<std::uint64_t>()); return Status::Ok();
    case json::value_t::number_float: return AppendDouble(v.get<double>(), out);
    case json::value_t::string: return AppendString(v.get_ref<const std::string&>(), out);
    case json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v) {
        if (!first) out.push_back(',');
        first = false;
        VELLUM_RETURN_IF_ERROR(Append(e, depth + 1, out));
      }
      out.push_back(']');
      return Status::Ok();
    }
    case json::value_t::object: {
      // nlohmann::json objects are std::map<std::string, ...>: iteration is
      // already in byte order of the keys.
      out.push_back('{');
      bool first = true;
      for (const auto& [key, value] : v.items()) {
        if (!first) out.push_back(',');
        first = false;
        VELLUM_RETURN_IF_ERROR(AppendString(key, out));
        out.push_back(':');
        VELLUM_RETURN_IF_ERROR(Append(value, depth + 1, out));
      }
      out.push_back('}');
      return Status::Ok();
    }
    case json::value_t::binary:
    case json::value_t::discarded:
      break;
  }
  return InvalidArgument("value is not JSON");
}

}  // namespace

Result<nlohmann::json> ParseJson(std::string_view text) {
  // Depth and duplicate keys are checked in the SAX callback, before any
  // deep structure is built.
  std::vector<std::set<std::string>> keys_per_object;
  int depth = 0;
  Status problem;
  auto callback = [&](int d, json::parse_event_t event, json& parsed) -> bool {
    depth = d;
    const bool opens = event == json::parse_event_t::object_start || event == json::parse_event_t::array_start;
    if (opens && depth >= kMaxJsonDepth) {
      if (problem.ok()) problem = InvalidArgument("JSON nesting deeper than " + std::to_string(kMaxJsonDepth));
      return false;
    }
    switch (event) {
      case json::parse_event_t::object_start: keys_per_object.emplace_back(); break;
      case json::parse_event_t::object_end: keys_per_object.pop_back(); break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!keys_per_object.back().insert(key).second) {
          if (problem.ok()) problem = InvalidArgument("duplicate object key \"" + key + "\"");
          return false;
        }
        break;
      }
      default: break;
    }
    return true;
  };
  json value;
  try {
    value = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    if (!problem.ok()) return problem;
    return InvalidArgument(std::string("malformed JSON: ") + e.what());
  }
  if (!problem.ok()) return problem;
  if (value.is_discarded()) return InvalidArgument("malformed JSON");
  // Validates UTF-8 and numbers once more through the encoder's rules.
  VELLUM_RETURN_IF_ERROR(CanonicalJson(value).status());
  return value;
}

Result<std::string> CanonicalJson(const nlohmann::json& value) {
  std::string out;
  VELLUM_RETURN_IF_ERROR(Append(value, 0, out));
  return out;
}

Result<std::string> CanonicalizeJsonText(std::string_view text) {
  VELLUM_ASSIGN_OR_RETURN(nlohmann::json value, ParseJson(text));
  return CanonicalJson(value);
}

}  // namespace vellum::engines::document
