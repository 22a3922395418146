#include "vellum/indexes/node_store.h"

#include <cstring>

#include "vellum/base/encoding.h"

namespace vellum::indexes {
namespace {

constexpr std::uint8_t kNodeFormatVersion = 1;
constexpr size_t kMaxItemsPerNode = 1024;  // decoder sanity bound, far above any fanout

bool HasAggregate(merkle::MapKind kind) { return kind == merkle::MapKind::kInt64Aggregate; }

merkle::Hash ReadHash(ByteReader& r) {
  merkle::Hash h{};
  std::string_view b = r.Fixed(merkle::kHashSize);
  if (b.size() == merkle::kHashSize) std::memcpy(h.data(), b.data(), merkle::kHashSize);
  return h;
}

}  // namespace

void MapNode::Seal() {
  std::vector<merkle::MapDigest> digests;
  digests.reserve(items.size());
  for (const Item& it : items) digests.push_back(it.digest);
  digest = merkle::MapPageDigest(kind, digests, &inner);
}

std::string EncodeMapNode(const MapNode& node) {
  ByteWriter w;
  w.U8(kNodeFormatVersion);
  w.U8(static_cast<std::uint8_t>(node.kind));
  w.U8(node.level);
  w.U16(static_cast<std::uint16_t>(node.items.size()));
  for (const MapNode::Item& it : node.items) {
    w.Bytes(it.key);
    if (node.level == 0) {
      w.Fixed(merkle::HashView(it.value_hash));
      if (HasAggregate(node.kind)) w.I64(it.aggregate);
    } else {
      w.U64(it.child);
      w.Fixed(merkle::HashView(it.digest.hash));
      w.U64(it.digest.count);
      if (HasAggregate(node.kind)) {
        const auto sum = static_cast<unsigned __int128>(it.digest.aggregate.sum);
        w.U64(static_cast<std::uint64_t>(sum >> 64));
        w.U64(static_cast<std::uint64_t>(sum));
        w.I64(it.digest.aggregate.min);
        w.I64(it.digest.aggregate.max);
      }
    }
  }
  return w.Take();
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
  for (std::uint16_t i = 0; i < count && r.ok(); ++i) {
    MapNode::Item it;
    it.key = std::string(r.Bytes(merkle::kMaxMapKeySize));
    if (n.level == 0) {
      it.value_hash = ReadHash(r);
      if (HasAggregate(n.kind)) it.aggregate = r.I64();
      it.digest = merkle::MapLeafDigest(n.kind, it.key, it.value_hash, it.aggregate);
    } else {
      it.child = r.U64();
      it.digest.hash = ReadHash(r);
      it.digest.count = r.U64();
      if (HasAggregate(n.kind)) {
        const std::uint64_t hi = r.U64();
        const std::uint64_t lo = r.U64();
        it.digest.aggregate.sum = static_cast<merkle::Int128>((static_cast<unsigned __int128>(hi) << 64) | lo);
        it.digest.aggregate.min = r.I64();
        it.digest.aggregate.max = r.I64();
      }
    }
    if (r.ok() && !n.items.empty() && !(n.items.back().key < it.key)) r.Fail("keys out of order");
    n.items.push_back(std::move(it));
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

size_t InMemoryValueStore::HashHasher::operator()(const merkle::Hash& h) const {
  size_t v;
  std::memcpy(&v, h.data(), sizeof v);
  return v;
}

Status InMemoryValueStore::Put(const merkle::Hash& value_hash, std::string_view value) {
  values_.try_emplace(value_hash, value);
  return Status::Ok();
}

Result<std::string> InMemoryValueStore::Get(const merkle::Hash& value_hash) const {
  auto it = values_.find(value_hash);
  if (it == values_.end()) return NotFound("value " + merkle::HashHex(value_hash) + " not stored");
  return it->second;
}

}  // namespace vellum::indexes
