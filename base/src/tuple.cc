#include "vellum/base/tuple.h"

#include <algorithm>

#include "vellum/base/encoding.h"

namespace vellum {
namespace {

enum Tag : std::uint8_t {
  kEnd = 0x00,
  kNull = 0x01,
  kBool = 0x02,
  kInt64 = 0x03,
  kUint64 = 0x04,
  kTime = 0x05,
  kBytes = 0x06,
  kString = 0x07,
  kTuple = 0x08,
};

// Variant index -> tag; the variant's alternatives are declared in tag order.
std::uint8_t TagOf(const TupleElement& e) { return static_cast<std::uint8_t>(e.value.index() + 1); }

void PutFixed64(std::string* out, std::uint64_t v) {
  char buf[8];
  PutBigEndian64(buf, v);
  out->append(buf, 8);
}

constexpr std::uint64_t kSignBit = std::uint64_t{1} << 63;

void PutEscaped(std::string* out, std::string_view s) {
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\0') {
      out->append(s.substr(start, i + 1 - start));
      out->push_back('\xff');
      start = i + 1;
    }
  }
  out->append(s.substr(start));
  out->push_back('\0');
}

Status AppendElements(std::string* out, const Tuple& t, int depth);

Status AppendElement(std::string* out, const TupleElement& e, int depth) {
  out->push_back(static_cast<char>(TagOf(e)));
  switch (TagOf(e)) {
    case kNull:
      return Status::Ok();
    case kBool:
      out->push_back(std::get<bool>(e.value) ? '\x01' : '\x00');
      return Status::Ok();
    case kInt64:
      PutFixed64(out, static_cast<std::uint64_t>(std::get<std::int64_t>(e.value)) ^ kSignBit);
      return Status::Ok();
    case kUint64:
      PutFixed64(out, std::get<std::uint64_t>(e.value));
      return Status::Ok();
    case kTime:
      PutFixed64(out, static_cast<std::uint64_t>(std::get<Timestamp>(e.value).micros) ^ kSignBit);
      return Status::Ok();
    case kBytes:
      PutEscaped(out, std::get<TupleBytes>(e.value).data);
      return Status::Ok();
    case kString:
      PutEscaped(out, std::get<std::string>(e.value));
      return Status::Ok();
    default: {  // kTuple
      if (depth + 1 > kMaxTupleDepth) return InvalidArgument("tuple nested deeper than 32 levels");
      VELLUM_RETURN_IF_ERROR(AppendElements(out, std::get<Tuple>(e.value), depth + 1));
      out->push_back('\0');
      return Status::Ok();
    }
  }
}

Status AppendElements(std::string* out, const Tuple& t, int depth) {
  for (const TupleElement& e : t) VELLUM_RETURN_IF_ERROR(AppendElement(out, e, depth));
  return Status::Ok();
}

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  // Reads elements until the end of input (depth 0) or a 0x00 terminator.
  Status Elements(Tuple* out, int depth) {
    while (true) {
      if (pos_ == in_.size()) {
        if (depth == 0) return Status::Ok();
        return Error("unterminated nested tuple");
      }
      const auto tag = static_cast<std::uint8_t>(in_[pos_]);
      if (tag == kEnd) {
        if (depth == 0) return Error("unexpected 0x00 at top level");
        ++pos_;
        return Status::Ok();
      }
      ++pos_;
      switch (tag) {
        case kNull:
          out->push_back(TupleElement::Null());
          break;
        case kBool: {
          if (pos_ == in_.size()) return Error("truncated bool");
          const auto b = static_cast<std::uint8_t>(in_[pos_++]);
          if (b > 1) return Error("bool byte must be 0 or 1");
          out->push_back(TupleElement::Bool(b == 1));
          break;
        }
        case kInt64:
        case kUint64:
        case kTime: {
          if (in_.size() - pos_ < 8) return Error("truncated integer");
          const std::uint64_t raw = GetBigEndian64(in_.data() + pos_);
          pos_ += 8;
          if (tag == kUint64) {
            out->push_back(TupleElement::Uint64(raw));
          } else if (tag == kInt64) {
            out->push_back(TupleElement::Int64(static_cast<std::int64_t>(raw ^ kSignBit)));
          } else {
            out->push_back(TupleElement::Time(static_cast<std::int64_t>(raw ^ kSignBit)));
          }
          break;
        }
        case kBytes:
        case kString: {
          std::string s;
          VELLUM_RETURN_IF_ERROR(Escaped(&s));
          out->push_back(tag == kBytes ? TupleElement::Bytes(std::move(s)) : TupleElement::String(std::move(s)));
          break;
        }
        case kTuple: {
          if (depth + 1 > kMaxTupleDepth) return Error("tuple nested deeper than 32 levels");
          Tuple nested;
          VELLUM_RETURN_IF_ERROR(Elements(&nested, depth + 1));
          out->push_back(TupleElement::Nested(std::move(nested)));
          break;
        }
        default:
          --pos_;
          return Error("unknown type tag " + std::to_string(tag));
      }
    }
  }

 private:
  Status Escaped(std::string* out) {
    while (true) {
      const size_t zero = in_.find('\0', pos_);
      if (zero == std::string_view::npos) return Error("unterminated byte string");
      out->append(in_.substr(pos_, zero - pos_));
      pos_ = zero + 1;
      if (pos_ < in_.size() && static_cast<std::uint8_t>(in_[pos_]) == 0xff) {
        out->push_back('\0');
        ++pos_;
        continue;
      }
      return Status::Ok();
    }
  }

  Status Error(const std::string& what) const {
    return InvalidArgument("malformed tuple at offset " + std::to_string(pos_) + ": " + what);
  }

  std::string_view in_;
  size_t pos_ = 0;
};

template <typename T>
int Cmp(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

int CompareElements(const TupleElement& a, const TupleElement& b) {
  if (a.value.index() != b.value.index()) return Cmp(a.value.index(), b.value.index());
  switch (TagOf(a)) {
    case kNull:
      return 0;
    case kBool:
      return Cmp(std::get<bool>(a.value), std::get<bool>(b.value));
    case kInt64:
      return Cmp(std::get<std::int64_t>(a.value), std::get<std::int64_t>(b.value));
    case kUint64:
      return Cmp(std::get<std::uint64_t>(a.value), std::get<std::uint64_t>(b.value));
    case kTime:
      return Cmp(std::get<Timestamp>(a.value).micros, std::get<Timestamp>(b.value).micros);
    case kBytes:
      return Cmp(std::string_view(std::get<TupleBytes>(a.value).data),
                 std::string_view(std::get<TupleBytes>(b.value).data));
    case kString:
      return Cmp(std::string_view(std::get<std::string>(a.value)), std::string_view(std::get<std::string>(b.value)));
    default:
      return CompareTuples(std::get<Tuple>(a.value), std::get<Tuple>(b.value));
  }
}

}  // namespace

bool TupleElement::operator==(const TupleElement& other) const { return CompareElements(*this, other) == 0; }

Status AppendTuple(std::string* out, const Tuple& t) { return AppendElements(out, t, 0); }

Result<std::string> EncodeTuple(const Tuple& t) {
  std::string out;
  VELLUM_RETURN_IF_ERROR(AppendTuple(&out, t));
  return out;
}

Result<Tuple> DecodeTuple(std::string_view encoded) {
  Tuple t;
  Decoder d(encoded);
  VELLUM_RETURN_IF_ERROR(d.Elements(&t, 0));
  return t;
}

int CompareTuples(const Tuple& a, const Tuple& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (int c = CompareElements(a[i], b[i]); c != 0) return c;
  }
  return Cmp(a.size(), b.size());
}

std::optional<std::string> PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty() && static_cast<std::uint8_t>(s.back()) == 0xff) s.pop_back();
  if (s.empty()) return std::nullopt;
  s.back() = static_cast<char>(static_cast<std::uint8_t>(s.back()) + 1);
  return s;
}

Result<KeyRange> TuplePrefixRange(const Tuple& prefix) {
  KeyRange r;
  VELLUM_ASSIGN_OR_RETURN(r.lo, EncodeTuple(prefix));
  r.hi = PrefixSuccessor(r.lo);
  return r;
}

}  // namespace vellum
