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

std::optional<std::vector<merkle::MapRangeQuery>> IndexRanges(const Filter& filter, std::string_view path) {
  using Op = Filter::Conjunct::Op;
  const std::vector<Filter::Conjunct> conjuncts = filter.Conjuncts();
  for (const auto& c : conjuncts) {
    if (c.path == path && c.op == Op::kEq && Indexable(c.operand)) {
      return std::vector<merkle::MapRangeQuery>{PointRange(*IndexValue(c.operand))};
    }
  }
  for (const auto& c : conjuncts) {
    if (c.path != path || c.op != Op::kIn || c.operand.size() > kMaxIndexedInValues) continue;
    if (!std::all_of(c.operand.begin(), c.operand.end(), Indexable)) continue;
    std::vector<std::string> values;
    for (const auto& v : c.operand) values.push_back(*IndexValue(v));
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    std::vector<merkle::MapRangeQuery> ranges;
    for (const auto& v : values) ranges.push_back(PointRange(v));
    return ranges;
  }
  for (const auto& c : conjuncts) {
    if (c.path != path || c.op == Op::kEq || c.op == Op::kIn) continue;
    if (auto r = OrderedRange(c.op, c.operand)) return std::vector<merkle::MapRangeQuery>{std::move(*r)};
  }
  return std::nullopt;
}

Result<std::vector<FoundDocument>> VerifyIndexedFind(const Filter& filter, std::string_view path,
                                                     const std::optional<merkle::CatalogEntry>& index,
                                                     std::span<const merkle::MapProof* const> proofs) {
  auto ranges = IndexRanges(filter, path);
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
