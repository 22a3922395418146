// Pages of the authenticated map's Merkle B+-tree, and where they and the
// values live (docs/FORMAT-map.md, "Pages" and "Storage encoding").
//
// A MapNode (page) is immutable once stored and addressed by a NodeId that a
// NodeStore hands out in strictly increasing order, so a store can append
// pages (LMDB MDB_APPEND) and flush them lazily. Values are stored beside the
// tree in a ValueStore, addressed by their value hash (content-addressed:
// every version that references a value can read it).
//
// Thread-safety: MapNode is an immutable value once built. The in-memory stores
// are not thread-safe; callers serialize writes and reads per store.
#ifndef VELLUM_INDEXES_NODE_STORE_H_
#define VELLUM_INDEXES_NODE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/merkle/hasher.h"
#include "vellum/merkle/map_proof.h"

namespace vellum::indexes {

// 0 is "no node"; stores hand out 1, 2, 3, ...
using NodeId = std::uint64_t;
inline constexpr NodeId kNoNode = 0;

struct MapNode {
  // One entry (level 0) or one child reference (level >= 1).
  struct Item {
    std::string key;                 // entry key, or first key of the child's subtree
    merkle::Hash value_hash{};       // level 0
    std::int64_t aggregate = 0;      // level 0, kInt64Aggregate maps
    NodeId child = kNoNode;          // level >= 1
    merkle::MapDigest digest;        // entry digest, or the child page's digest
  };

  merkle::MapKind kind = merkle::MapKind::kPlain;
  std::uint8_t level = 0;  // 0: leaf page of entries
  std::vector<Item> items;
  // Derived by Seal(): the page's binary tree (merkle::MapPageDigest).
  std::vector<merkle::MapDigest> inner;  // items.size() - 1 inner digests, pre-order
  merkle::MapDigest digest;

  // Computes `inner` and `digest` from the items' digests (items non-empty).
  void Seal();
};

// Canonical storage encoding of a page (items only; digests of level-0 items,
// `inner` and `digest` are recomputed by DecodeMapNode).
std::string EncodeMapNode(const MapNode& node);
// InvalidArgument on malformed input, an empty page or keys out of order.
Result<MapNode> DecodeMapNode(std::string_view bytes);

class NodeStore {
 public:
  virtual ~NodeStore() = default;
  // Stores a sealed page and returns its id, greater than every id returned
  // before. May fail (e.g. ResourceExhausted) in persistent implementations.
  virtual Result<NodeId> Put(std::shared_ptr<const MapNode> node) = 0;
  // NotFound if the id was never stored (or was dropped by retention);
  // DataLoss if the stored bytes are corrupt.
  virtual Result<std::shared_ptr<const MapNode>> Get(NodeId id) const = 0;
};

class InMemoryNodeStore final : public NodeStore {
 public:
  Result<NodeId> Put(std::shared_ptr<const MapNode> node) override;
  Result<std::shared_ptr<const MapNode>> Get(NodeId id) const override;
  size_t size() const { return nodes_.size(); }

 private:
  std::vector<std::shared_ptr<const MapNode>> nodes_;  // id i at index i - 1
};

class ValueStore {
 public:
  virtual ~ValueStore() = default;
  // Idempotent: storing the same value twice is fine.
  virtual Status Put(const merkle::Hash& value_hash, std::string_view value) = 0;
  // NotFound if absent.
  virtual Result<std::string> Get(const merkle::Hash& value_hash) const = 0;
};

class InMemoryValueStore final : public ValueStore {
 public:
  Status Put(const merkle::Hash& value_hash, std::string_view value) override;
  Result<std::string> Get(const merkle::Hash& value_hash) const override;
  size_t size() const { return values_.size(); }

 private:
  struct HashHasher {
    size_t operator()(const merkle::Hash& h) const;
  };
  std::unordered_map<merkle::Hash, std::string, HashHasher> values_;
};

}  // namespace vellum::indexes

#endif  // VELLUM_INDEXES_NODE_STORE_H_
