#include "vellum/merkle/map_proof.h"

#include <algorithm>
#include <cstring>

#include "vellum/base/encoding.h"

namespace vellum::merkle {
namespace {

constexpr std::uint8_t kProofVersion = 1;

bool HasAggregate(MapKind kind) { return kind == MapKind::kInt64Aggregate; }

// Writes D(d) into buf, returns the bytes written (40 or 72).
size_t PutDigest(char* buf, MapKind kind, const MapDigest& d) {
  std::memcpy(buf, d.hash.data(), kHashSize);
  PutBigEndian64(buf + 32, d.count);
  if (!HasAggregate(kind)) return 40;
  const auto sum = static_cast<unsigned __int128>(d.aggregate.sum);
  PutBigEndian64(buf + 40, static_cast<std::uint64_t>(sum >> 64));
  PutBigEndian64(buf + 48, static_cast<std::uint64_t>(sum));
  PutBigEndian64(buf + 56, static_cast<std::uint64_t>(d.aggregate.min));
  PutBigEndian64(buf + 64, static_cast<std::uint64_t>(d.aggregate.max));
  return 72;
}

MapDigest PageRec(MapKind kind, std::span<const MapDigest> items, std::vector<MapDigest>* inner) {
  if (items.size() == 1) return items[0];
  size_t slot = 0;
  if (inner != nullptr) {
    slot = inner->size();
    inner->emplace_back();
  }
  const size_t k = MapPageSplit(items.size());
  const MapDigest left = PageRec(kind, items.first(k), inner);
  const MapDigest right = PageRec(kind, items.subspan(k), inner);
  MapDigest d = MapInnerDigest(kind, left, right);
  if (inner != nullptr) (*inner)[slot] = d;
  return d;
}

Status Fail(std::string check, std::string expected, std::string computed, std::uint64_t index,
            std::uint64_t size) {
  return VerificationFailed(
      VerificationError{std::move(check), std::move(expected), std::move(computed), index, size});
}

// ---- Evaluation of a pruned tree ----

struct Revealed {
  const MapProofNode* node;
  std::uint64_t pos;
  Hash value_hash;
};

struct PrunedSpan {
  std::uint64_t start;
  std::uint64_t count;
  MapAggregate aggregate;
};

struct Evaluation {
  MapKind kind = MapKind::kPlain;
  std::vector<Revealed> leaves;  // ascending position (pre-order visits leaves left to right)
  std::vector<PrunedSpan> pruned;
  std::uint64_t total = 0;

  // The revealed leaf at `pos`, or null.
  const Revealed* At(std::uint64_t pos) const {
    auto it = std::lower_bound(leaves.begin(), leaves.end(), pos,
                               [](const Revealed& r, std::uint64_t p) { return r.pos < p; });
    return it != leaves.end() && it->pos == pos ? &*it : nullptr;
  }
};

class Evaluator {
 public:
  Evaluator(const MapProof& proof, Evaluation* out) : proof_(proof), out_(out) {}

  Result<MapDigest> Node(size_t depth, std::uint64_t pos) {
    if (depth > kMaxMapProofDepth) return InvalidArgument("map proof deeper than 128 levels");
    if (next_ >= proof_.nodes.size()) return InvalidArgument("map proof ends inside the tree");
    const MapProofNode& n = proof_.nodes[next_++];
    switch (n.type) {
      case MapProofNode::Type::kPruned:
        if (n.digest.count == 0) return InvalidArgument("map proof has a pruned subtree with count 0");
        out_->pruned.push_back({pos, n.digest.count, n.digest.aggregate});
        return n.digest;
      case MapProofNode::Type::kEntry:
      case MapProofNode::Type::kEntryWithValue: {
        if (n.key.size() > kMaxMapKeySize) return InvalidArgument("map proof key longer than 4096 bytes");
        const Hash vh = n.type == MapProofNode::Type::kEntry ? n.value_hash : MapValueHash(n.value);
        out_->leaves.push_back({&n, pos, vh});
        return MapLeafDigest(proof_.kind, n.key, vh, n.aggregate);
      }
      case MapProofNode::Type::kInner: {
        VELLUM_ASSIGN_OR_RETURN(MapDigest left, Node(depth + 1, pos));
        VELLUM_ASSIGN_OR_RETURN(MapDigest right, Node(depth + 1, pos + left.count));
        return MapInnerDigest(proof_.kind, left, right);
      }
    }
    return InvalidArgument("map proof node of unknown type");
  }

  size_t consumed() const { return next_; }

 private:
  const MapProof& proof_;
  Evaluation* out_;
  size_t next_ = 0;
};

Result<Evaluation> Evaluate(const Hash& root, const MapProof& proof) {
  Evaluation ev;
  ev.kind = proof.kind;
  if (proof.kind != MapKind::kPlain && proof.kind != MapKind::kInt64Aggregate) {
    return InvalidArgument("unknown map kind");
  }
  Hash computed;
  if (proof.nodes.empty()) {
    computed = MapRootHash(proof.kind, nullptr);
  } else {
    Evaluator e(proof, &ev);
    VELLUM_ASSIGN_OR_RETURN(MapDigest top, e.Node(0, 0));
    if (e.consumed() != proof.nodes.size()) return InvalidArgument("map proof has nodes after the tree");
    ev.total = top.count;
    computed = MapRootHash(proof.kind, &top);
  }
  if (computed != root) return Fail("map.root", HashHex(root), HashHex(computed), 0, ev.total);
  for (size_t i = 1; i < ev.leaves.size(); ++i) {
    if (!(ev.leaves[i - 1].node->key < ev.leaves[i].node->key)) {
      return Fail("map.order", "keys strictly increasing", "entry out of order", ev.leaves[i].pos, ev.total);
    }
  }
  return ev;
}

// Rank of the first entry with key >= `key`, proven by the revealed neighbours
// on both sides (or the edge of the map).
Result<std::uint64_t> LowerBound(const Evaluation& ev, std::string_view key) {
  auto it = std::lower_bound(ev.leaves.begin(), ev.leaves.end(), key,
                             [](const Revealed& r, std::string_view k) { return r.node->key < k; });
  // An exact match needs no left neighbour: keys are unique and sorted.
  if (it != ev.leaves.end() && it->node->key == key) return it->pos;
  const std::uint64_t below = it == ev.leaves.begin() ? 0 : std::prev(it)->pos + 1;
  const std::uint64_t above = it == ev.leaves.end() ? ev.total : it->pos;
  if (below != above) {
    return Fail("map.boundary", "adjacent neighbours around the key",
                "revealed neighbours at ranks " + std::to_string(below) + " and " + std::to_string(above),
                below, ev.total);
  }
  return below;
}

Result<MapEntry> EntryAt(const Evaluation& ev, const Revealed& r) {
  if (r.node->type != MapProofNode::Type::kEntryWithValue) {
    return Fail("map.value", "entry with its value", "value not revealed", r.pos, ev.total);
  }
  return MapEntry{r.node->key, r.node->value, r.value_hash, HasAggregate(ev.kind) ? r.node->aggregate : 0, r.pos};
}

// ---- Encoding ----

void EncodeDigest(ByteWriter& w, MapKind kind, const MapDigest& d) {
  char buf[72];
  w.Fixed(std::string_view(buf, PutDigest(buf, kind, d)));
}

Hash ReadHash(ByteReader& r) {
  Hash h{};
  std::string_view b = r.Fixed(kHashSize);
  if (b.size() == kHashSize) std::memcpy(h.data(), b.data(), kHashSize);
  return h;
}

}  // namespace

Hash MapValueHash(std::string_view value) { return HashTagged(kTagMapValue, value); }

MapDigest MapLeafDigest(MapKind kind, std::string_view key, const Hash& value_hash, std::int64_t aggregate) {
  thread_local std::string buf;
  buf.clear();
  buf.push_back(static_cast<char>(kind));
  char len[4] = {static_cast<char>(key.size() >> 24), static_cast<char>(key.size() >> 16),
                 static_cast<char>(key.size() >> 8), static_cast<char>(key.size())};
  buf.append(len, 4);
  buf.append(key);
  buf.append(HashView(value_hash));
  MapDigest d;
  d.count = 1;
  if (HasAggregate(kind)) {
    char a[8];
    PutBigEndian64(a, static_cast<std::uint64_t>(aggregate));
    buf.append(a, 8);
    d.aggregate = MapAggregate::Of(aggregate);
  }
  d.hash = HashTagged(kTagMapLeaf, buf);
  return d;
}

MapDigest MapInnerDigest(MapKind kind, const MapDigest& left, const MapDigest& right) {
  char buf[1 + 2 * 72];
  buf[0] = static_cast<char>(kind);
  size_t n = 1;
  n += PutDigest(buf + n, kind, left);
  n += PutDigest(buf + n, kind, right);
  MapDigest d;
  d.hash = HashTagged(kTagMapInner, std::string_view(buf, n));
  d.count = left.count + right.count;
  if (HasAggregate(kind)) {
    d.aggregate = left.aggregate;
    d.aggregate.Add(right.aggregate);
  }
  return d;
}

Hash MapRootHash(MapKind kind, const MapDigest* top) {
  const MapDigest empty;
  char buf[1 + 72];
  buf[0] = static_cast<char>(kind);
  const size_t n = 1 + PutDigest(buf + 1, kind, top != nullptr ? *top : empty);
  return HashTagged(kTagMapRoot, std::string_view(buf, n));
}

size_t MapPageSplit(size_t n) {
  size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

MapDigest MapPageDigest(MapKind kind, std::span<const MapDigest> items, std::vector<MapDigest>* inner) {
  if (inner != nullptr) {
    inner->clear();
    inner->reserve(items.size() - 1);
  }
  return PageRec(kind, items, inner);
}

std::string MapProof::Encode() const {
  ByteWriter w;
  w.U8(kProofVersion);
  w.U8(static_cast<std::uint8_t>(kind));
  w.U32(static_cast<std::uint32_t>(nodes.size()));
  for (const MapProofNode& n : nodes) {
    w.U8(static_cast<std::uint8_t>(n.type));
    switch (n.type) {
      case MapProofNode::Type::kPruned:
        EncodeDigest(w, kind, n.digest);
        break;
      case MapProofNode::Type::kEntry:
        w.Bytes(n.key);
        w.Fixed(HashView(n.value_hash));
        if (HasAggregate(kind)) w.I64(n.aggregate);
        break;
      case MapProofNode::Type::kEntryWithValue:
        w.Bytes(n.key);
        w.Bytes(n.value);
        if (HasAggregate(kind)) w.I64(n.aggregate);
        break;
      case MapProofNode::Type::kInner:
        break;
    }
  }
  return w.Take();
}

Result<MapProof> MapProof::Decode(std::string_view bytes) {
  ByteReader r(bytes, "map proof");
  MapProof p;
  if (r.U8() != kProofVersion && r.ok()) r.Fail("unsupported map proof version");
  const std::uint8_t kind = r.U8();
  if (r.ok() && kind > static_cast<std::uint8_t>(MapKind::kInt64Aggregate)) r.Fail("unknown map kind");
  p.kind = static_cast<MapKind>(kind);
  const std::uint32_t count = r.U32();
  if (r.ok() && count > r.remaining()) r.Fail("node count exceeds the proof size");
  if (!r.ok()) return r.Finish();
  p.nodes.reserve(count);
  // Shape check: `open` subtrees still to read, and the depth of each.
  std::vector<std::uint32_t> pending;  // depths of subtrees not yet started
  if (count > 0) pending.push_back(0);
  for (std::uint32_t i = 0; i < count && r.ok(); ++i) {
    if (pending.empty()) {
      r.Fail("nodes after the end of the tree");
      break;
    }
    const std::uint32_t depth = pending.back();
    pending.pop_back();
    MapProofNode n;
    const std::uint8_t type = r.U8();
    if (!r.ok()) break;
    if (type > static_cast<std::uint8_t>(MapProofNode::Type::kInner)) {
      r.Fail("unknown node type " + std::to_string(type));
      break;
    }
    n.type = static_cast<MapProofNode::Type>(type);
    switch (n.type) {
      case MapProofNode::Type::kPruned: {
        n.digest.hash = ReadHash(r);
        n.digest.count = r.U64();
        if (HasAggregate(p.kind)) {
          const std::uint64_t hi = r.U64();
          const std::uint64_t lo = r.U64();
          n.digest.aggregate.sum = static_cast<Int128>((static_cast<unsigned __int128>(hi) << 64) | lo);
          n.digest.aggregate.min = r.I64();
          n.digest.aggregate.max = r.I64();
        }
        if (r.ok() && n.digest.count == 0) r.Fail("pruned subtree with count 0");
        break;
      }
      case MapProofNode::Type::kEntry:
        n.key = std::string(r.Bytes(kMaxMapKeySize));
        n.value_hash = ReadHash(r);
        if (HasAggregate(p.kind)) n.aggregate = r.I64();
        break;
      case MapProofNode::Type::kEntryWithValue:
        n.key = std::string(r.Bytes(kMaxMapKeySize));
        n.value = std::string(r.Bytes(kMaxMapValueSize));
        n.value_hash = MapValueHash(n.value);
        if (HasAggregate(p.kind)) n.aggregate = r.I64();
        break;
      case MapProofNode::Type::kInner:
        if (depth + 1 > kMaxMapProofDepth) {
          r.Fail("tree deeper than 128 levels");
          break;
        }
        pending.push_back(depth + 1);  // right, read second
        pending.push_back(depth + 1);  // left, read first
        break;
    }
    p.nodes.push_back(std::move(n));
  }
  if (r.ok() && !pending.empty()) r.Fail("node sequence ends inside the tree");
  VELLUM_RETURN_IF_ERROR(r.Finish());
  return p;
}

Result<MapGetResult> VerifyMapGet(const Hash& root, std::string_view key, const MapProof& proof) {
  VELLUM_ASSIGN_OR_RETURN(Evaluation ev, Evaluate(root, proof));
  VELLUM_ASSIGN_OR_RETURN(std::uint64_t pos, LowerBound(ev, key));
  MapGetResult out;
  out.total = ev.total;
  const Revealed* r = ev.At(pos);
  if (r != nullptr && r->node->key == key) {
    VELLUM_ASSIGN_OR_RETURN(MapEntry e, EntryAt(ev, *r));
    out.entry = std::move(e);
  }
  return out;
}

Result<MapRangeResult> VerifyMapRange(const Hash& root, const MapRangeQuery& q, const MapProof& proof) {
  VELLUM_ASSIGN_OR_RETURN(Evaluation ev, Evaluate(root, proof));
  MapRangeResult out;
  out.total = ev.total;
  auto gap = [&](std::uint64_t pos) {
    return Fail("map.range.gap", "entry at rank " + std::to_string(pos) + " revealed", "not revealed", pos,
                ev.total);
  };
  if (!q.reverse) {
    VELLUM_ASSIGN_OR_RETURN(std::uint64_t pos, LowerBound(ev, q.lo));
    for (; pos < ev.total; ++pos) {
      const Revealed* r = ev.At(pos);
      if (r == nullptr) return gap(pos);
      if (q.hi.has_value() && r->node->key >= *q.hi) break;
      if (out.entries.size() == q.limit) {
        out.has_more = true;
        out.next_key = r->node->key;
        break;
      }
      VELLUM_ASSIGN_OR_RETURN(MapEntry e, EntryAt(ev, *r));
      out.entries.push_back(std::move(e));
    }
  } else {
    std::uint64_t end = ev.total;
    if (q.hi.has_value()) {
      VELLUM_ASSIGN_OR_RETURN(end, LowerBound(ev, *q.hi));
    }
    for (std::uint64_t pos = end; pos > 0; --pos) {
      const Revealed* r = ev.At(pos - 1);
      if (r == nullptr) return gap(pos - 1);
      if (r->node->key < q.lo) break;
      if (out.entries.size() == q.limit) {
        out.has_more = true;
        out.next_key = r->node->key;
        break;
      }
      VELLUM_ASSIGN_OR_RETURN(MapEntry e, EntryAt(ev, *r));
      out.entries.push_back(std::move(e));
    }
  }
  return out;
}

Result<MapRangeSummary> VerifyMapSummary(const Hash& root, std::string_view lo,
                                         const std::optional<std::string>& hi, const MapProof& proof) {
  VELLUM_ASSIGN_OR_RETURN(Evaluation ev, Evaluate(root, proof));
  VELLUM_ASSIGN_OR_RETURN(std::uint64_t begin, LowerBound(ev, lo));
  std::uint64_t end = ev.total;
  if (hi.has_value()) {
    VELLUM_ASSIGN_OR_RETURN(end, LowerBound(ev, *hi));
  }
  MapRangeSummary out;
  out.total = ev.total;
  out.first_rank = begin;
  if (end <= begin) return out;
  out.count = end - begin;
  if (HasAggregate(ev.kind)) {
    for (const Revealed& r : ev.leaves) {
      if (r.pos >= begin && r.pos < end) out.aggregate.Add(MapAggregate::Of(r.node->aggregate));
    }
    for (const PrunedSpan& s : ev.pruned) {
      const std::uint64_t s_end = s.start + s.count;
      if (s_end <= begin || s.start >= end) continue;
      if (s.start < begin || s_end > end) {
        return Fail("map.summary.straddle", "pruned subtree inside or outside [" + std::to_string(begin) + ", " +
                                                std::to_string(end) + ")",
                    "subtree at ranks [" + std::to_string(s.start) + ", " + std::to_string(s_end) + ")", s.start,
                    ev.total);
      }
      out.aggregate.Add(s.aggregate);
    }
  }
  return out;
}

Result<MapRankResult> VerifyMapRank(const Hash& root, std::uint64_t rank, const MapProof& proof) {
  VELLUM_ASSIGN_OR_RETURN(Evaluation ev, Evaluate(root, proof));
  MapRankResult out;
  out.total = ev.total;
  if (rank >= ev.total) return out;
  const Revealed* r = ev.At(rank);
  if (r == nullptr) {
    return Fail("map.rank", "entry at rank " + std::to_string(rank) + " revealed", "not revealed", rank, ev.total);
  }
  VELLUM_ASSIGN_OR_RETURN(MapEntry e, EntryAt(ev, *r));
  out.entry = std::move(e);
  return out;
}

}  // namespace vellum::merkle
