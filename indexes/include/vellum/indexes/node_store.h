// Pages of the authenticated map's Merkle B+-tree, and where they and the
// values live (docs/FORMAT.md, "Pages" and "Storage encoding").
//
// A MapNode (page) is immutable once stored and addressed by a NodeId that a
// NodeStore hands out in strictly increasing order, so a store can append
// pages (LMDB MDB_APPEND) and flush them lazily. Values are stored beside the
// tree in a ValueStore, append-only too: each stored value gets the next
// ValueRef (1, 2, 3, ...), which the entry keeps in its page's storage
// encoding. The ref is never hashed: the entry commits to the value hash, and
// readers check every fetched value against it.
//
// Thread-safety: MapNode is an immutable value once built. AuthenticatedMap::
// Apply reads a store's pages (Get) from two threads at once while it
// descends, and writes (Put) from one thread after that, so every store must
// allow concurrent Gets while no Put runs. The in-memory stores allow exactly
// that (const reads); callers serialize their writes with all other calls.
#ifndef VELLUM_INDEXES_NODE_STORE_H_
#define VELLUM_INDEXES_NODE_STORE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/merkle/hasher.h"
#include "vellum/merkle/map_proof.h"

namespace vellum::indexes {

// 0 is "no node"; stores hand out 1, 2, 3, ...
using NodeId = std::uint64_t;
inline constexpr NodeId kNoNode = 0;
// Where a value lives in a ValueStore. 0 is "no value"; stores hand out 1, 2, 3, ...
using ValueRef = std::uint64_t;
inline constexpr ValueRef kNoValue = 0;

// Where an item of a page being built was copied from: item `index` of the
// sealed page `page` (null: a new or changed item). Lets Seal() reuse the
// in-page hashes of runs copied unchanged.
struct MapNode;
struct MapItemSource {
  const MapNode* page = nullptr;
  std::uint32_t index = 0;
};

// One page. Compact on purpose (every version of every page is kept, and
// building a batch copies every item of every page it touches): items are
// small and trivially copyable, aggregates are kept beside the items only in
// maps that have them, in-page inner nodes keep only their hash (counts and
// aggregates are re-derived from the items when a proof needs them). The
// items, aggregates, inner hashes and keys share one allocation, so a page
// costs one allocation besides its header and reading it touches few
// memory pages.
struct MapNode {
  // One entry (level 0) or one child reference (level >= 1); with its
  // aggregate (if any), the item's merkle::MapDigest.
  struct Item {
    std::uint32_t key_offset = 0;  // into `keys`: the entry key, or the first key of the child's subtree
    std::uint32_t key_size = 0;
    std::uint64_t ref = 0;         // level 0: ValueRef of the value (not hashed); else the child NodeId
    merkle::Hash hash{};           // the entry's digest hash, or the child page's
    std::uint64_t count = 0;       // 1 for an entry, else the entries under the child
    merkle::Hash value_hash{};     // level 0

    void SetDigest(const merkle::MapDigest& d) {
      hash = d.hash;
      count = d.count;
    }
  };

  // A run of T in the page's allocation: read like a vector, filled only by
  // MapNode (Add, Seal).
  template <typename T>
  class Run {
   public:
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    T* data() { return data_; }
    const T* data() const { return data_; }
    T& operator[](size_t i) { return data_[i]; }
    const T& operator[](size_t i) const { return data_[i]; }
    T* begin() { return data_; }
    T* end() { return data_ + size_; }
    const T* begin() const { return data_; }
    const T* end() const { return data_ + size_; }
    friend bool operator==(const Run& a, const Run& b) {
      return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
    }

   private:
    friend struct MapNode;
    T* data_ = nullptr;
    size_t size_ = 0;
  };

  MapNode() = default;
  MapNode(const MapNode& other);
  MapNode& operator=(const MapNode& other);
  MapNode(MapNode&& other) noexcept;
  MapNode& operator=(MapNode&& other) noexcept;
  ~MapNode() = default;

  merkle::MapKind kind = merkle::MapKind::kPlain;
  std::uint8_t level = 0;  // 0: leaf page of entries
  Run<char> keys;          // the items' keys, back to back in item order
  Run<Item> items;
  // kInt64Aggregate maps: the aggregate of each item (an entry's field as
  // MapAggregate::Of, or the child's); empty in other maps.
  Run<merkle::MapAggregate> aggregates;
  // Derived by Seal(): the hashes of the page's binary tree
  // (merkle::MapPageDigest), items.size() - 1 inner nodes in pre-order.
  Run<merkle::Hash> inner;
  merkle::MapDigest digest;

  bool has_aggregates() const { return kind == merkle::MapKind::kInt64Aggregate; }
  std::string_view key(size_t i) const { return std::string_view(keys.data() + items[i].key_offset, items[i].key_size); }
  NodeId child(size_t i) const { return items[i].ref; }
  ValueRef value_ref(size_t i) const { return items[i].ref; }
  // Item i's aggregate (the identity in maps without aggregates).
  merkle::MapAggregate item_aggregate(size_t i) const { return has_aggregates() ? aggregates[i] : merkle::MapAggregate{}; }
  // Item i's full digest: the entry's or the child page's.
  merkle::MapDigest item_digest(size_t i) const {
    return merkle::MapDigest{items[i].hash, items[i].count, item_aggregate(i)};
  }
  // The entry's aggregate field (level 0; 0 in kPlain maps).
  std::int64_t aggregate(size_t i) const { return has_aggregates() ? aggregates[i].min : 0; }
  // Appends an item, copying `key` into `keys` (offsets of `item` are set
  // here); `aggregate` is kept only if the page's kind has aggregates (set
  // `kind` first).
  void Add(std::string_view key, const Item& item, const merkle::MapAggregate& aggregate);
  // Makes room for `item_count` items with `key_bytes` bytes of keys in
  // all, so Adds up to that size allocate nothing (set `kind` first).
  void Reserve(size_t item_count, size_t key_bytes);
  // The full digest of the in-page inner node with pre-order index `idx`,
  // which covers items [a, b).
  merkle::MapDigest InnerDigest(size_t idx, size_t a, size_t b) const;

  // Computes `inner` and `digest` from the items' digests (items non-empty),
  // hashing each inner node once. If `sources` is given (one per item), a
  // power-of-two aligned run of items copied in order from the same aligned
  // run of a sealed page takes that page's hashes instead of rehashing: the
  // result is the same bytes, only cheaper.
  void Seal(std::span<const MapItemSource> sources = {});

 private:
  // Moves the runs into a new allocation for `item_capacity` items and
  // `key_capacity` key bytes: aggregates (16-byte aligned), items, inner
  // hashes, keys.
  void Reallocate(size_t item_capacity, size_t key_capacity);

  std::unique_ptr<std::byte[]> block_;
  size_t item_capacity_ = 0;
  size_t key_capacity_ = 0;
  bool aggregate_room_ = false;  // the block has room for aggregates (allocated for such a kind)
};

// Walks pages from `roots` downwards: `enter(id)` returns the page to descend
// into (its children are walked next, or, for a leaf, `on_value` gets each of
// its value refs), or null to stop there (a page outside the caller's window,
// or one already seen). Used to find which pages and values of a window of
// new pages a state still reaches (ViewStore flushes, the audit's rebuild).
void WalkPages(std::vector<NodeId> roots, const std::function<const MapNode*(NodeId)>& enter,
               const std::function<void(ValueRef)>& on_value);

// Canonical storage encoding of a page (items only; digests of level-0 items,
// `inner` and `digest` are recomputed by DecodeMapNode).
std::string EncodeMapNode(const MapNode& node);
// The same bytes written into `out`, which must hold EncodedMapNodeSize(node)
// of them (a flush encodes straight into the database's buffer).
size_t EncodedMapNodeSize(const MapNode& node);
void EncodeMapNodeInto(const MapNode& node, char* out);
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

// Append-only value storage. The map stores each new or changed value once
// and keeps the returned ref in the entry; the store need not deduplicate.
class ValueStore {
 public:
  virtual ~ValueStore() = default;
  // Stores a copy of `value` and returns its ref, greater than every ref
  // returned before (so a store can append, LMDB MDB_APPEND). May fail (e.g.
  // ResourceExhausted) in persistent implementations.
  virtual Result<ValueRef> Put(std::string_view value) = 0;
  // The value stored under `ref`. NotFound if the ref was never handed out (or
  // was dropped by retention); DataLoss if the stored bytes are known corrupt.
  // The map checks the value against the entry's hash itself.
  virtual Result<std::string> Get(ValueRef ref) const = 0;
};

class InMemoryValueStore final : public ValueStore {
 public:
  Result<ValueRef> Put(std::string_view value) override;
  Result<std::string> Get(ValueRef ref) const override;
  size_t size() const { return values_.size(); }

 private:
  std::vector<std::string> values_;  // ref i at index i - 1
};

}  // namespace vellum::indexes

#endif  // VELLUM_INDEXES_NODE_STORE_H_
