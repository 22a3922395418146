#include "vellum/engines/document/filter.h"

#include <string_view>

namespace vellum::engines::document {

using nlohmann::json;

struct Filter::Node {
  enum class Kind { kAnd, kOr, kEq, kNe, kGt, kGte, kLt, kLte, kIn, kExists };
  Kind kind = Kind::kAnd;
  std::vector<std::string> path;  // comparisons
  json operand;                   // comparisons
  std::vector<Node> children;     // kAnd, kOr
};

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t dot = path.find('.', start);
    parts.emplace_back(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

namespace {

// <0, 0, >0 comparing two JSON numbers exactly.
int CompareNumbers(const json& a, const json& b) {
  if (a.is_number_float() || b.is_number_float()) {
    const double x = a.get<double>(), y = b.get<double>();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  // Both integers: int64 (negative ones parse as such) or uint64.
  if (a.is_number_unsigned() && b.is_number_unsigned()) {
    const auto x = a.get<std::uint64_t>(), y = b.get<std::uint64_t>();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_number_integer() && !a.is_number_unsigned() && b.is_number_integer() && !b.is_number_unsigned()) {
    const auto x = a.get<std::int64_t>(), y = b.get<std::int64_t>();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  // One signed, one unsigned.
  if (a.is_number_unsigned()) return -CompareNumbers(b, a);
  const auto x = a.get<std::int64_t>();
  const auto y = b.get<std::uint64_t>();
  if (x < 0) return -1;
  const auto ux = static_cast<std::uint64_t>(x);
  return ux < y ? -1 : (ux > y ? 1 : 0);
}

}  // namespace

bool JsonEquals(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return CompareNumbers(a, b) == 0;
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!JsonEquals(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !JsonEquals(*it, *other)) return false;
    }
    return true;
  }
  return a == b;
}

namespace {

using Node = Filter::Node;
constexpr int kMaxFilterDepth = 32;

Result<Node> ParseFilter(const json& spec, int depth);

Result<Node> ParseLogical(Node::Kind kind, const std::string& name, const json& operand, int depth) {
  if (!operand.is_array() || operand.empty()) return InvalidArgument(name + " needs a non-empty array of filters");
  Node node;
  node.kind = kind;
  for (size_t i = 0; i < operand.size(); ++i) {
    auto child = ParseFilter(operand[i], depth + 1);
    if (!child.ok()) return child.status().WithContext(name + "[" + std::to_string(i) + "]");
    node.children.push_back(std::move(child).value());
  }
  return node;
}

Result<Node::Kind> OperatorKind(const std::string& op) {
  if (op == "$eq") return Node::Kind::kEq;
  if (op == "$ne") return Node::Kind::kNe;
  if (op == "$gt") return Node::Kind::kGt;
  if (op == "$gte") return Node::Kind::kGte;
  if (op == "$lt") return Node::Kind::kLt;
  if (op == "$lte") return Node::Kind::kLte;
  if (op == "$in") return Node::Kind::kIn;
  if (op == "$exists") return Node::Kind::kExists;
  return InvalidArgument("unknown operator '" + op + "'");
}

bool IsOperatorObject(const json& v) {
  return v.is_object() && !v.empty() && v.begin().key().starts_with("$");
}

Result<Node> ParseField(const std::string& path, const json& value) {
  if (path.empty() || path.front() == '.' || path.back() == '.' || path.find("..") != std::string::npos) {
    return InvalidArgument("invalid field path '" + path + "'");
  }
  Node all;
  all.kind = Node::Kind::kAnd;
  if (!IsOperatorObject(value)) {
    all.children.push_back({Node::Kind::kEq, SplitPath(path), value, {}});
    return all;
  }
  for (const auto& [op, operand] : value.items()) {
    if (!op.starts_with("$")) return InvalidArgument("field '" + path + "' mixes operators with the field '" + op + "'");
    auto kind = OperatorKind(op);
    if (!kind.ok()) return kind.status().WithContext("field '" + path + "'");
    if (*kind == Node::Kind::kIn && !operand.is_array()) return InvalidArgument("field '" + path + "': $in needs an array");
    if (*kind == Node::Kind::kExists && !operand.is_boolean()) {
      return InvalidArgument("field '" + path + "': $exists needs true or false");
    }
    all.children.push_back({*kind, SplitPath(path), operand, {}});
  }
  return all;
}

Result<Node> ParseFilter(const json& spec, int depth) {
  if (depth > kMaxFilterDepth) return InvalidArgument("filter nested deeper than " + std::to_string(kMaxFilterDepth));
  if (!spec.is_object()) return InvalidArgument("a filter must be a JSON object");
  Node all;
  all.kind = Node::Kind::kAnd;
  for (const auto& [key, value] : spec.items()) {
    if (key == "$and" || key == "$or") {
      VELLUM_ASSIGN_OR_RETURN(Node logical, ParseLogical(key == "$and" ? Node::Kind::kAnd : Node::Kind::kOr, key,
                                                          value, depth));
      all.children.push_back(std::move(logical));
    } else if (key.starts_with("$")) {
      return InvalidArgument("unknown top-level operator '" + key + "'");
    } else {
      VELLUM_ASSIGN_OR_RETURN(Node field, ParseField(key, value));
      all.children.push_back(std::move(field));
    }
  }
  return all;
}

// Collects the values a path resolves to: through objects, and fanning out
// over array elements (MongoDB semantics). Arrays themselves are collected
// too when the path ends on them.
void Resolve(const json& v, const std::vector<std::string>& path, size_t i, std::vector<const json*>& out) {
  if (i == path.size()) {
    out.push_back(&v);
    return;
  }
  if (v.is_object()) {
    auto it = v.find(path[i]);
    if (it != v.end()) Resolve(*it, path, i + 1, out);
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (e.is_object() || e.is_array()) Resolve(e, path, i, out);
    }
  }
}

bool Ordered(const json& a, const json& b, Node::Kind kind) {
  int cmp;
  if (a.is_number() && b.is_number()) {
    cmp = CompareNumbers(a, b);
  } else if (a.is_string() && b.is_string()) {
    const int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
    cmp = c < 0 ? -1 : (c > 0 ? 1 : 0);
  } else {
    return false;
  }
  switch (kind) {
    case Node::Kind::kGt: return cmp > 0;
    case Node::Kind::kGte: return cmp >= 0;
    case Node::Kind::kLt: return cmp < 0;
    case Node::Kind::kLte: return cmp <= 0;
    default: return false;
  }
}

bool EqualsAny(const json& value, const json& operand) {
  if (JsonEquals(value, operand)) return true;
  if (value.is_array()) {
    for (const auto& e : value) {
      if (JsonEquals(e, operand)) return true;
    }
  }
  return false;
}

bool Eval(const Node& n, const json& doc) {
  switch (n.kind) {
    case Node::Kind::kAnd:
      for (const auto& c : n.children) {
        if (!Eval(c, doc)) return false;
      }
      return true;
    case Node::Kind::kOr:
      for (const auto& c : n.children) {
        if (Eval(c, doc)) return true;
      }
      return false;
    default: break;
  }
  std::vector<const json*> values;
  Resolve(doc, n.path, 0, values);
  switch (n.kind) {
    case Node::Kind::kExists: return values.empty() != n.operand.get<bool>();
    case Node::Kind::kEq:
      for (const json* v : values) {
        if (EqualsAny(*v, n.operand)) return true;
      }
      return false;
    case Node::Kind::kNe:
      for (const json* v : values) {
        if (EqualsAny(*v, n.operand)) return false;
      }
      return true;
    case Node::Kind::kIn:
      for (const json* v : values) {
        for (const auto& candidate : n.operand) {
          if (EqualsAny(*v, candidate)) return true;
        }
      }
      return false;
    default:
      for (const json* v : values) {
        if (Ordered(*v, n.operand, n.kind)) return true;
        if (v->is_array()) {
          for (const auto& e : *v) {
            if (Ordered(e, n.operand, n.kind)) return true;
          }
        }
      }
      return false;
  }
}

void CollectConjuncts(const Node& n, std::vector<Filter::Conjunct>& out) {
  using Op = Filter::Conjunct::Op;
  std::string path;
  for (const auto& part : n.path) path += (path.empty() ? "" : ".") + part;
  switch (n.kind) {
    case Node::Kind::kAnd:
      for (const auto& c : n.children) CollectConjuncts(c, out);
      return;
    case Node::Kind::kEq: out.push_back({Op::kEq, path, n.operand}); return;
    case Node::Kind::kGt: out.push_back({Op::kGt, path, n.operand}); return;
    case Node::Kind::kGte: out.push_back({Op::kGte, path, n.operand}); return;
    case Node::Kind::kLt: out.push_back({Op::kLt, path, n.operand}); return;
    case Node::Kind::kLte: out.push_back({Op::kLte, path, n.operand}); return;
    case Node::Kind::kIn: out.push_back({Op::kIn, path, n.operand}); return;
    default: return;
  }
}

}  // namespace

void ResolvePath(const json& doc, const std::vector<std::string>& parts, std::vector<const json*>& out) {
  Resolve(doc, parts, 0, out);
}

std::vector<Filter::Conjunct> Filter::Conjuncts() const {
  std::vector<Conjunct> out;
  CollectConjuncts(*root_, out);
  return out;
}

Result<Filter> Filter::Parse(const json& spec) {
  VELLUM_ASSIGN_OR_RETURN(Node root, ParseFilter(spec, 0));
  return Filter(std::make_shared<const Node>(std::move(root)));
}

bool Filter::Matches(const json& doc) const { return Eval(*root_, doc); }

}  // namespace vellum::engines::document
