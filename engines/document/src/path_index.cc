#include "vellum/engines/document/path_index.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <map>

#include "vellum/base/tuple.h"
#include "vellum/engines/document/canonical_json.h"

namespace vellum::engines::document {
namespace {

using nlohmann::json;

constexpr char kTagNull = 0x01;
constexpr char kTagFalse = 0x02;
constexpr char kTagTrue = 0x03;
constexpr char kTagNumber = 0x04;
constexpr char kTagString = 0x05;

std::string NumberValue(double d) {
  if (d == 0) d = 0;  // -0 and +0 are one value
  std::uint64_t bits = std::bit_cast<std::uint64_t>(d);
  bits = (bits >> 63) != 0 ? ~bits : bits ^ (std::uint64_t{1} << 63);
  std::string out(1, kTagNumber);
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((bits >> shift) & 0xff));
  return out;
}

// The key of tuple(bytes(value)): every index key of that value starts with it.
std::string ValueStart(std::string_view value) {
  std::string key;
  (void)AppendTuple(&key, Tuple{TupleElement::Bytes(std::string(value))});
  return key;
}

// Keys of every entry whose value equals `value`: [start, successor).
merkle::MapRangeQuery PointRange(std::string_view value) {
  const std::string start = ValueStart(value);
  return {start, PrefixSuccessor(start), std::numeric_limits<std::uint64_t>::max(), false};
}

bool Indexable(const json& v) { return v.is_null() || v.is_boolean() || v.is_number() || v.is_string(); }

std::optional<merkle::MapRangeQuery> OrderedRange(Filter::Conjunct::Op op, const json& operand) {
  using Op = Filter::Conjunct::Op;
  char tag;
  if (operand.is_number()) tag = kTagNumber;
  else if (operand.is_string()) tag = kTagString;
  else return std::nullopt;  // never matches anything; a scan says so
  const std::string value = *IndexValue(operand);
  merkle::MapRangeQuery q;
  q.limit = std::numeric_limits<std::uint64_t>::max();
  if (op == Op::kGt || op == Op::kGte) {
    // Inclusive at the encoded bound: the encoding may merge values.
    q.lo = ValueStart(value);
    q.hi = ValueStart(std::string(1, static_cast<char>(tag + 1)));
  } else {
    q.lo = ValueStart(std::string(1, tag));
    q.hi = PrefixSuccessor(ValueStart(value));
  }
  return q;
}

}  // namespace

Status CheckIndexPath(std::string_view path) {
  if (path.empty() || path.size() > kMaxIndexPathSize) {
    return InvalidArgument("index path must be 1 to " + std::to_string(kMaxIndexPathSize) + " bytes");
  }
  if (path.front() == '.' || path.back() == '.' || path.find("..") != std::string_view::npos ||
      path.front() == '$') {
    return InvalidArgument("invalid index path '" + std::string(path) + "'");
  }
  if (static_cast<size_t>(std::count(path.begin(), path.end(), '.')) + 1 > kMaxIndexPathDepth) {
    return InvalidArgument("index path '" + std::string(path) + "' is deeper than " + std::to_string(kMaxIndexPathDepth));
  }
  return Status::Ok();
}

std::string IndexPart(std::string_view path) { return std::string(kIndexPartPrefix) + std::string(path); }

std::optional<std::string> IndexValue(const json& v) {
  if (v.is_null()) return std::string(1, kTagNull);
  if (v.is_boolean()) return std::string(1, v.get<bool>() ? kTagTrue : kTagFalse);
  if (v.is_number()) return NumberValue(v.get<double>());
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    std::string out(1, kTagString);
    out.append(s, 0, std::min(s.size(), kMaxIndexedStringBytes));
    return out;
  }
  return std::nullopt;
}

Result<std::vector<std::string>> IndexValues(const json& doc, std::string_view path) {
  std::vector<const json*> resolved;
  ResolvePath(doc, SplitPath(path), resolved);
  std::vector<std::string> out;
  auto add = [&](const json& v) {
    if (auto e = IndexValue(v)) out.push_back(std::move(*e));
  };
  for (const json* v : resolved) {
    if (v->is_array()) {
      for (const auto& e : *v) add(e);
    } else {
      add(*v);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.size() > kMaxIndexValuesPerDocument) {
    return InvalidArgument("path '" + std::string(path) + "' gives " + std::to_string(out.size()) +
                           " distinct indexable values, above the limit of " +
                           std::to_string(kMaxIndexValuesPerDocument) + " per document");
  }
  return out;
}

std::string EncodeMultikeyCount(std::uint64_t n) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  return out;
}

Result<std::uint64_t> DecodeMultikeyCount(std::string_view value) {
  if (value.size() != 8) return InvalidArgument("malformed multikey count");
  std::uint64_t n = 0;
  for (char c : value) n = (n << 8) | static_cast<unsigned char>(c);
  return n;
}

std::string IndexKey(std::string_view value, std::string_view id) {
  std::string key;
  (void)AppendTuple(&key, Tuple{TupleElement::Bytes(std::string(value)), TupleElement::Bytes(std::string(id))});
  return key;
}

Result<std::pair<std::string, std::string>> DecodeIndexKey(std::string_view key) {
  auto t = DecodeTuple(key);
  if (!t.ok() || t->size() != 2 || !std::holds_alternative<TupleBytes>((*t)[0].value) ||
      !std::holds_alternative<TupleBytes>((*t)[1].value)) {
    return InvalidArgument("not an index key");
  }
  return std::pair{std::get<TupleBytes>((*t)[0].value).data, std::get<TupleBytes>((*t)[1].value).data};
}

namespace {

using Ranges = std::vector<merkle::MapRangeQuery>;

// The ranges one condition on the path gives, or nullopt if it cannot narrow.
std::optional<Ranges> ConjunctRanges(const Filter::Conjunct& c) {
  using Op = Filter::Conjunct::Op;
  if (c.op == Op::kEq) {
    if (!Indexable(c.operand)) return std::nullopt;
    return Ranges{PointRange(*IndexValue(c.operand))};
  }
  if (c.op == Op::kIn) {
    if (c.operand.size() > kMaxIndexedInValues || !std::all_of(c.operand.begin(), c.operand.end(), Indexable)) {
      return std::nullopt;
    }
    std::vector<std::string> values;
    for (const auto& v : c.operand) values.push_back(*IndexValue(v));
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    Ranges ranges;
    for (const auto& v : values) ranges.push_back(PointRange(v));
    return ranges;
  }
  if (auto r = OrderedRange(c.op, c.operand)) return Ranges{std::move(*r)};
  return std::nullopt;
}

// Intersection of two sorted lists of disjoint ranges (every hi is set).
Ranges Intersect(const Ranges& a, const Ranges& b) {
  Ranges out;
  for (const auto& x : a) {
    for (const auto& y : b) {
      merkle::MapRangeQuery r;
      r.lo = std::max(x.lo, y.lo);
      r.hi = std::min(*x.hi, *y.hi);
      if (r.lo < *r.hi) out.push_back(std::move(r));
    }
  }
  return out;
}

}  // namespace

size_t IndexableConditions(const Filter& filter, std::string_view path) {
  size_t n = 0;
  for (const auto& c : filter.Conjuncts()) n += c.path == path && ConjunctRanges(c).has_value() ? 1 : 0;
  return n;
}

std::optional<std::vector<merkle::MapRangeQuery>> IndexRanges(const Filter& filter, std::string_view path,
                                                              bool single_valued) {
  using Op = Filter::Conjunct::Op;
  const std::vector<Filter::Conjunct> conjuncts = filter.Conjuncts();
  if (single_valued) {
    std::optional<Ranges> all;
    for (const auto& c : conjuncts) {
      if (c.path != path) continue;
      auto ranges = ConjunctRanges(c);
      if (!ranges.has_value()) continue;
      all = all.has_value() ? Intersect(*all, *ranges) : std::move(*ranges);
    }
    return all;
  }
  // Priority: an $eq, then an $in, then an ordered comparison; the first of each.
  auto priority = [](Op op) { return op == Op::kEq ? 0 : op == Op::kIn ? 1 : 2; };
  for (int want = 0; want < 3; ++want) {
    for (const auto& c : conjuncts) {
      if (c.path != path || priority(c.op) != want) continue;
      // An empty list ($in []) is left to a scan: every plan reads a view.
      if (auto ranges = ConjunctRanges(c); ranges.has_value() && !ranges->empty()) return ranges;
    }
  }
  return std::nullopt;
}

Result<std::vector<FoundDocument>> VerifyIndexedFind(const Filter& filter, std::string_view path, bool single_valued,
                                                     const std::optional<merkle::CatalogEntry>& index,
                                                     const merkle::MapProof* multikey,
                                                     std::span<const merkle::MapProof* const> proofs) {
  auto ranges = IndexRanges(filter, path, single_valued);
  if (!ranges.has_value()) {
    return InvalidArgument("the filter has no condition the index on '" + std::string(path) + "' can serve");
  }
  if (ranges->size() != proofs.size()) {
    return InvalidArgument("an index find on '" + std::string(path) + "' needs " + std::to_string(ranges->size()) +
                           " range proofs, the bundle has " + std::to_string(proofs.size()));
  }
  if (!index.has_value()) {
    return VerificationFailed({"doc.find.index", "the index on '" + std::string(path) + "'", "no such index", 0, 0});
  }
  if (single_valued) {
    if (multikey == nullptr) return InvalidArgument("a single-valued index find needs the multikey proof");
    VELLUM_ASSIGN_OR_RETURN(merkle::MapGetResult got, merkle::VerifyMapGet(index->map_root, kMultikeyKey, *multikey));
    if (got.entry.has_value()) {
      return VerificationFailed({"doc.find.single_valued", "no document with several values", "a multikey count", 0, 0});
    }
  }
  std::map<std::string, std::pair<std::string, FoundDocument>> docs;  // id -> (revision record, document)
  std::uint64_t seen = 0;
  for (size_t i = 0; i < ranges->size(); ++i) {
    VELLUM_ASSIGN_OR_RETURN(merkle::MapRangeResult range, merkle::VerifyMapRange(index->map_root, (*ranges)[i], *proofs[i]));
    if (range.has_more) return VerificationFailed({"doc.find.complete", "the whole index range", "a partial range", i, ranges->size()});
    for (auto& e : range.entries) {
      const std::uint64_t at = seen++;
      auto fail = [&](const char* what) {
        return VerificationFailed({"doc.find.index_entry", "an entry of a live document with that value", what, at, range.total});
      };
      auto key = DecodeIndexKey(e.key);
      if (!key.ok()) return fail("a malformed key");
      auto rev = DecodeRevision(e.value);
      if (!rev.ok()) return fail("a malformed revision");
      if (rev->deleted) return fail("a deleted document");
      auto doc = ParseJson(rev->json);
      if (!doc.ok()) return fail("a document that is not JSON");
      auto values = IndexValues(*doc, path);
      if (!values.ok() || !std::binary_search(values->begin(), values->end(), key->first)) {
        return fail("a document without that value");
      }
      if (single_valued && values->size() != 1) return fail("a document with several values in a single-valued index");
      auto [it, fresh] = docs.try_emplace(key->second);
      if (!fresh) {
        if (it->second.first != e.value) return fail("two revisions of one document");
        continue;
      }
      it->second.first = std::move(e.value);
      it->second.second = {key->second, std::move(rev).value(), std::move(doc).value()};
    }
  }
  std::vector<FoundDocument> out;
  for (auto& [id, entry] : docs) {
    if (filter.Matches(entry.second.document)) out.push_back(std::move(entry.second));
  }
  return out;
}

}  // namespace vellum::engines::document
