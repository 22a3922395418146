#include "vellum/indexes/node_store.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>

#include "vellum/base/encoding.h"

namespace vellum::indexes {
namespace {

constexpr std::uint8_t kNodeFormatVersion = 2;  // 2: leaf items carry a value ref
constexpr size_t kMaxItemsPerNode = 1024;  // decoder sanity bound, far above any fanout

bool HasAggregate(merkle::MapKind kind) { return kind == merkle::MapKind::kInt64Aggregate; }

merkle::Hash ReadHash(ByteReader& r) {
  merkle::Hash h{};
  std::string_view b = r.Fixed(merkle::kHashSize);
  if (b.size() == merkle::kHashSize) std::memcpy(h.data(), b.data(), merkle::kHashSize);
  return h;
}

// Building a batch copies every item of every page it touches: keep them to
// two hashes and three words.
static_assert(sizeof(MapNode::Item) == 88 && std::is_trivially_copyable_v<MapNode::Item>);

}  // namespace

MapNode::MapNode(const MapNode& other)
    : kind(other.kind),
      level(other.level),
      keys(other.keys),
      items(other.items),
      aggregates(other.aggregates),
      inner(other.inner),
      digest(other.digest) {
  // The runs still point into `other`'s block: Reallocate copies them into
  // one of this page's own.
  Reallocate(other.items.size(), other.keys.size());
}

MapNode& MapNode::operator=(const MapNode& other) {
  if (this != &other) *this = MapNode(other);
  return *this;
}

MapNode::MapNode(MapNode&& other) noexcept { *this = std::move(other); }

MapNode& MapNode::operator=(MapNode&& other) noexcept {
  if (this == &other) return *this;
  kind = other.kind;
  level = other.level;
  digest = other.digest;
  block_ = std::move(other.block_);
  keys = std::exchange(other.keys, {});
  items = std::exchange(other.items, {});
  aggregates = std::exchange(other.aggregates, {});
  inner = std::exchange(other.inner, {});
  item_capacity_ = std::exchange(other.item_capacity_, 0);
  key_capacity_ = std::exchange(other.key_capacity_, 0);
  aggregate_room_ = std::exchange(other.aggregate_room_, false);
  return *this;
}

void MapNode::Reallocate(size_t item_capacity, size_t key_capacity) {
  static_assert(alignof(merkle::MapAggregate) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  static_assert(sizeof(merkle::MapAggregate) % alignof(Item) == 0 && std::is_trivially_copyable_v<merkle::MapAggregate>);
  // Aggregates added under another kind would not fit: a caller's bug that
  // must not become a buffer overflow.
  if (!has_aggregates() && !aggregates.empty()) std::abort();
  const size_t aggregate_bytes = has_aggregates() ? item_capacity * sizeof(merkle::MapAggregate) : 0;
  const size_t item_bytes = item_capacity * sizeof(Item);
  const size_t inner_bytes = (item_capacity > 0 ? item_capacity - 1 : 0) * sizeof(merkle::Hash);
  auto block = std::make_unique_for_overwrite<std::byte[]>(aggregate_bytes + item_bytes + inner_bytes + key_capacity);
  std::byte* at = block.get();
  auto place = [&at](auto& run, size_t bytes) {
    using T = std::remove_reference_t<decltype(*run.data_)>;
    T* to = reinterpret_cast<T*>(at);
    if (run.size_ > 0) std::memcpy(static_cast<void*>(to), run.data_, run.size_ * sizeof(T));
    run.data_ = to;
    at += bytes;
  };
  place(aggregates, aggregate_bytes);
  place(items, item_bytes);
  place(inner, inner_bytes);
  place(keys, key_capacity);
  block_ = std::move(block);
  item_capacity_ = item_capacity;
  key_capacity_ = key_capacity;
  aggregate_room_ = has_aggregates();
}

void MapNode::Reserve(size_t item_count, size_t key_bytes) {
  if (item_count > item_capacity_ || key_bytes > key_capacity_ || aggregate_room_ != has_aggregates()) {
    Reallocate(std::max(item_count, item_capacity_), std::max(key_bytes, key_capacity_));
  }
}

void MapNode::Add(std::string_view key, const Item& item, const merkle::MapAggregate& aggregate) {
  if (items.size() == item_capacity_ || keys.size() + key.size() > key_capacity_ ||
      aggregate_room_ != has_aggregates()) {
    Reallocate(std::max<size_t>(items.size() + 1, 2 * item_capacity_),
               std::max<size_t>(keys.size() + key.size(), 2 * key_capacity_));
  }
  if (has_aggregates()) aggregates.data_[aggregates.size_++] = aggregate;
  Item& it = items.data_[items.size_++];
  it = item;
  it.key_offset = static_cast<std::uint32_t>(keys.size());
  it.key_size = static_cast<std::uint32_t>(key.size());
  if (!key.empty()) std::memcpy(keys.data_ + keys.size_, key.data(), key.size());
  keys.size_ += key.size();
}

merkle::MapDigest MapNode::InnerDigest(size_t idx, size_t a, size_t b) const {
  merkle::MapDigest d;
  d.hash = inner[idx];
  for (size_t i = a; i < b; ++i) d.count += items[i].count;
  if (has_aggregates()) {
    for (size_t i = a; i < b; ++i) d.aggregate.Add(aggregates[i]);
  }
  return d;
}

namespace {

bool IsPowerOfTwo(size_t n) { return (n & (n - 1)) == 0; }

// Pre-order index, among the inner nodes of a page of n items, of the node
// over the aligned power-of-two run [j, j + s) (s >= 2; every such run inside
// the page is a node of its RFC 9162-shaped tree).
size_t InnerIndexOf(size_t n, size_t j, size_t s) {
  size_t a = 0;
  size_t b = n;
  size_t idx = 0;
  while (a != j || b - a != s) {
    const size_t k = merkle::MapPageSplit(b - a);
    if (j < a + k) {
      b = a + k;
      idx += 1;
    } else {
      a += k;
      idx += k;
    }
  }
  return idx;
}

class Sealer {
 public:
  Sealer(MapNode& node, std::span<const MapItemSource> sources) : node_(node), sources_(sources) {}

  // Digest of items [a, b), whose node has pre-order index idx.
  merkle::MapDigest Rec(size_t a, size_t b, size_t idx) {
    if (b - a == 1) return node_.item_digest(a);
    if (IsPowerOfTwo(b - a)) {
      if (const MapNode* page = Reusable(a, b)) {
        const size_t from = InnerIndexOf(page->items.size(), sources_[a].index, b - a);
        std::copy_n(page->inner.begin() + static_cast<std::ptrdiff_t>(from), b - a - 1,
                    node_.inner.begin() + static_cast<std::ptrdiff_t>(idx));
        return node_.InnerDigest(idx, a, b);
      }
    }
    const size_t k = merkle::MapPageSplit(b - a);
    const merkle::MapDigest left = Rec(a, a + k, idx + 1);
    const merkle::MapDigest right = Rec(a + k, b, idx + k);
    merkle::MapDigest d = merkle::MapInnerDigest(node_.kind, left, right);
    node_.inner[idx] = d.hash;
    return d;
  }

 private:
  // The sealed page whose aligned run equals items [a, b), or null.
  const MapNode* Reusable(size_t a, size_t b) const {
    if (sources_.empty()) return nullptr;
    const MapItemSource& first = sources_[a];
    const MapNode* page = first.page;
    if (page == nullptr || page->kind != node_.kind || page->level != node_.level) return nullptr;
    if (first.index % (b - a) != 0 || first.index + (b - a) > page->items.size()) return nullptr;
    for (size_t i = a + 1; i < b; ++i) {
      if (sources_[i].page != page || sources_[i].index != first.index + (i - a)) return nullptr;
    }
    return page;
  }

  MapNode& node_;
  std::span<const MapItemSource> sources_;
};

}  // namespace

void MapNode::Seal(std::span<const MapItemSource> sources) {
  inner.size_ = items.size() - 1;  // room for them comes with the items'
  std::fill(inner.begin(), inner.end(), merkle::Hash{});
  digest = Sealer(*this, sources).Rec(0, items.size(), 0);
}

namespace {

// Field widths of the storage encoding (docs/FORMAT.md), shared by the size
// computation and the encoder so the two cannot disagree.
constexpr size_t kPageHeaderBytes = 1 + 1 + 1 + 2;  // version, kind, level, item count
constexpr size_t kKeyLengthBytes = 4;
constexpr size_t kLeafItemBytes = merkle::kHashSize + 8;             // value hash, value ref
constexpr size_t kLeafAggregateBytes = 8;                            // i64
constexpr size_t kInternalItemBytes = 8 + merkle::kHashSize + 8;     // child id, hash, count
constexpr size_t kInternalAggregateBytes = 16 + 8 + 8;               // i128 sum, i64 min, i64 max

// Writes big-endian fields at a cursor into a buffer sized by EncodedMapNodeSize.
class PageWriter {
 public:
  explicit PageWriter(char* out) : p_(out) {}
  void U8(std::uint8_t v) { *p_++ = static_cast<char>(v); }
  void U16(std::uint16_t v) {
    U8(static_cast<std::uint8_t>(v >> 8));
    U8(static_cast<std::uint8_t>(v));
  }
  void U32(std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) U8(static_cast<std::uint8_t>(v >> shift));
  }
  void U64(std::uint64_t v) {
    PutBigEndian64(p_, v);
    p_ += 8;
  }
  void Raw(const void* data, size_t n) {
    std::memcpy(p_, data, n);
    p_ += n;
  }

 private:
  char* p_;
};

// Encoded bytes of one item, besides its key.
size_t ItemBytesBesideKey(merkle::MapKind kind, std::uint8_t level) {
  const bool agg = HasAggregate(kind);
  return kKeyLengthBytes + (level == 0 ? kLeafItemBytes + (agg ? kLeafAggregateBytes : 0)
                                       : kInternalItemBytes + (agg ? kInternalAggregateBytes : 0));
}

}  // namespace

size_t EncodedMapNodeSize(const MapNode& node) {
  return kPageHeaderBytes + node.keys.size() + node.items.size() * ItemBytesBesideKey(node.kind, node.level);
}

void EncodeMapNodeInto(const MapNode& node, char* out) {
  PageWriter w(out);
  w.U8(kNodeFormatVersion);
  w.U8(static_cast<std::uint8_t>(node.kind));
  w.U8(node.level);
  w.U16(static_cast<std::uint16_t>(node.items.size()));
  const bool agg = HasAggregate(node.kind);
  for (size_t i = 0; i < node.items.size(); ++i) {
    const MapNode::Item& it = node.items[i];
    w.U32(it.key_size);
    w.Raw(node.keys.data() + it.key_offset, it.key_size);
    if (node.level == 0) {
      w.Raw(it.value_hash.data(), merkle::kHashSize);
      w.U64(it.ref);
      if (agg) w.U64(static_cast<std::uint64_t>(node.aggregate(i)));
    } else {
      w.U64(it.ref);
      w.Raw(it.hash.data(), merkle::kHashSize);
      w.U64(it.count);
      if (agg) {
        const merkle::MapAggregate& a = node.aggregates[i];
        const auto sum = static_cast<unsigned __int128>(a.sum);
        w.U64(static_cast<std::uint64_t>(sum >> 64));
        w.U64(static_cast<std::uint64_t>(sum));
        w.U64(static_cast<std::uint64_t>(a.min));
        w.U64(static_cast<std::uint64_t>(a.max));
      }
    }
  }
}

std::string EncodeMapNode(const MapNode& node) {
  std::string out(EncodedMapNodeSize(node), '\0');
  EncodeMapNodeInto(node, out.data());
  return out;
}

Result<MapNode> DecodeMapNode(std::string_view bytes) {
  ByteReader r(bytes, "map node");
  MapNode n;
  if (r.U8() != kNodeFormatVersion && r.ok()) r.Fail("unsupported map node version");
  const std::uint8_t kind = r.U8();
  if (r.ok() && kind > static_cast<std::uint8_t>(merkle::MapKind::kInt64Aggregate)) r.Fail("unknown map kind");
  n.kind = static_cast<merkle::MapKind>(kind);
  n.level = r.U8();
  const std::uint16_t count = r.U16();
  if (r.ok() && (count == 0 || count > kMaxItemsPerNode)) r.Fail("bad item count");
  if (r.ok()) {
    // What the keys take if the encoding is well formed (else Add grows).
    const size_t fixed = kPageHeaderBytes + count * ItemBytesBesideKey(n.kind, n.level);
    n.Reserve(count, bytes.size() > fixed ? bytes.size() - fixed : 0);
  }
  for (std::uint16_t i = 0; i < count && r.ok(); ++i) {
    MapNode::Item it;
    merkle::MapAggregate aggregate;
    const std::string_view key = r.Bytes(merkle::kMaxMapKeySize);
    if (n.level == 0) {
      it.value_hash = ReadHash(r);
      it.ref = r.U64();
      if (r.ok() && it.ref == kNoValue) r.Fail("entry without a value ref");
      const merkle::MapDigest d =
          merkle::MapLeafDigest(n.kind, key, it.value_hash, HasAggregate(n.kind) ? r.I64() : 0);
      it.SetDigest(d);
      aggregate = d.aggregate;
    } else {
      it.ref = r.U64();
      it.hash = ReadHash(r);
      it.count = r.U64();
      if (HasAggregate(n.kind)) {
        const std::uint64_t hi = r.U64();
        const std::uint64_t lo = r.U64();
        aggregate.sum = static_cast<merkle::Int128>((static_cast<unsigned __int128>(hi) << 64) | lo);
        aggregate.min = r.I64();
        aggregate.max = r.I64();
      }
    }
    if (r.ok() && !n.items.empty() && !(n.key(n.items.size() - 1) < key)) r.Fail("keys out of order");
    if (!r.ok()) break;
    n.Add(key, it, aggregate);
  }
  VELLUM_RETURN_IF_ERROR(r.Finish());
  n.Seal();
  return n;
}

Result<NodeId> InMemoryNodeStore::Put(std::shared_ptr<const MapNode> node) {
  nodes_.push_back(std::move(node));
  return static_cast<NodeId>(nodes_.size());
}

Result<std::shared_ptr<const MapNode>> InMemoryNodeStore::Get(NodeId id) const {
  if (id == kNoNode || id > nodes_.size()) return NotFound("map node " + std::to_string(id) + " not stored");
  return nodes_[id - 1];
}

Result<ValueRef> InMemoryValueStore::Put(std::string_view value) {
  values_.emplace_back(value);
  return static_cast<ValueRef>(values_.size());
}

Result<std::string> InMemoryValueStore::Get(ValueRef ref) const {
  if (ref == kNoValue || ref > values_.size()) return NotFound("value " + std::to_string(ref) + " not stored");
  return values_[ref - 1];
}

void WalkPages(std::vector<NodeId> roots, const std::function<const MapNode*(NodeId)>& enter,
               const std::function<void(ValueRef)>& on_value) {
  std::vector<NodeId> stack = std::move(roots);
  while (!stack.empty()) {
    const NodeId id = stack.back();
    stack.pop_back();
    const MapNode* page = enter(id);
    if (page == nullptr) continue;
    for (size_t i = 0; i < page->items.size(); ++i) {
      if (page->level == 0) {
        on_value(page->value_ref(i));
      } else {
        stack.push_back(page->child(i));
      }
    }
  }
}

}  // namespace vellum::indexes
