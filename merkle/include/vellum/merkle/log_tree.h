// The RFC 9162 Merkle log tree (docs/FORMAT.md, "Log tree"): tree hashes,
// inclusion and consistency proofs and their verification, exactly as
// RFC 9162 §2.1.
//
// Decided edge cases (the same as transparency-dev/merkle):
//   * the empty tree's root is SHA256("");
//   * inclusion needs leaf_index < tree_size;
//   * consistency needs 0 < old_size <= new_size; equal sizes need an empty
//     proof and equal roots; old_size == 0 is rejected (nothing to prove);
//   * every hash is exactly 32 bytes (the Hash type enforces it).
//
// Storage model: a tree of n leaves is represented by its *perfect* subtree
// hashes, node(level, index) = hash of leaves [index·2^level, (index+1)·2^level).
// Appending a leaf creates at most log2(n)+1 of them (CompactRange::Append
// reports each), and any root, inclusion or consistency proof for any past
// size is computed from O(log n) of them read through NodeReader.
//
// Thread-safety: the free functions are pure and thread-safe. CompactRange is
// a value type (not synchronized).
#ifndef VELLUM_MERKLE_LOG_TREE_H_
#define VELLUM_MERKLE_LOG_TREE_H_

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/merkle/hasher.h"

namespace vellum::merkle {

// Proofs carry no hashes beyond what the RFC defines; sizes travel beside them.
struct InclusionProof {
  std::uint64_t leaf_index = 0;
  std::uint64_t tree_size = 0;
  std::vector<Hash> path;
};

struct ConsistencyProof {
  std::uint64_t old_size = 0;
  std::uint64_t new_size = 0;
  std::vector<Hash> path;
};

// ---- Verification (pure) ---------------------------------------------------

// Returns the root implied by an inclusion proof (RFC 9162 §2.1.3.2), or
// InvalidArgument when the sizes are impossible (index >= size) and kDataLoss
// (VerificationFailed, check "inclusion.path_length") when the path has the
// wrong length.
Result<Hash> RootFromInclusionProof(std::uint64_t leaf_index, std::uint64_t tree_size,
                                    const Hash& leaf_hash, std::span<const Hash> path);

// OK iff `path` proves `leaf_hash` is leaf `leaf_index` of the tree of
// `tree_size` leaves whose root is `root`. Failures are kDataLoss with
// VerificationError evidence ("inclusion.root": expected vs computed root),
// or InvalidArgument for impossible sizes.
Status VerifyInclusion(std::uint64_t leaf_index, std::uint64_t tree_size, const Hash& leaf_hash,
                       std::span<const Hash> path, const Hash& root);

// OK iff `path` proves the tree of `new_size` leaves with `new_root` extends
// the tree of `old_size` leaves with `old_root` (RFC 9162 §2.1.4.2).
// Failures: kDataLoss with evidence ("consistency.old_root",
// "consistency.new_root", "consistency.path_length", "consistency.equal_sizes"),
// or InvalidArgument for old_size == 0 or old_size > new_size.
Status VerifyConsistency(std::uint64_t old_size, std::uint64_t new_size, const Hash& old_root,
                         const Hash& new_root, std::span<const Hash> path);

// ---- Computing from leaf hashes held in memory -----------------------------

// RFC 9162 MTH over leaf hashes (already HashLeaf'ed). Empty input gives
// EmptyTreeRoot(). O(n) hashes, O(log n) memory.
Hash RootFromLeafHashes(std::span<const Hash> leaf_hashes);
// RFC 9162 PATH(index, leaves). InvalidArgument if index >= size.
Result<std::vector<Hash>> InclusionPathFromLeafHashes(std::span<const Hash> leaf_hashes,
                                                      std::uint64_t leaf_index);

// ---- Computing from stored perfect-subtree hashes --------------------------

// Source of perfect-subtree hashes. Implementations: an in-memory vector of
// levels (tests, benches), the journal's LMDB node table.
class NodeReader {
 public:
  virtual ~NodeReader() = default;
  // Hash of leaves [index << level, (index + 1) << level); NotFound/DataLoss
  // if it is not stored.
  virtual Result<Hash> PerfectNode(std::uint32_t level, std::uint64_t index) const = 0;
};

// Root of the first `size` leaves. O(log size) node reads.
Result<Hash> RootAt(const NodeReader& nodes, std::uint64_t size);
// RFC 9162 inclusion path for leaf_index in the tree of tree_size leaves.
Result<std::vector<Hash>> InclusionPath(const NodeReader& nodes, std::uint64_t leaf_index,
                                        std::uint64_t tree_size);
// RFC 9162 consistency path between old_size and new_size (0 < old <= new).
Result<std::vector<Hash>> ConsistencyPath(const NodeReader& nodes, std::uint64_t old_size,
                                          std::uint64_t new_size);

// The right border of a tree: one perfect-subtree hash per set bit of size,
// largest first. Appending is O(1) amortized hashes, O(log n) worst case.
class CompactRange {
 public:
  // Called for every perfect subtree completed by Append, lowest level first
  // (the leaf itself is level 0).
  using NodeSink = std::function<void(std::uint32_t level, std::uint64_t index, const Hash& hash)>;

  CompactRange() = default;
  // Loads the peaks of a stored tree of `size` leaves.
  static Result<CompactRange> Load(const NodeReader& nodes, std::uint64_t size);

  std::uint64_t size() const { return size_; }
  const std::vector<Hash>& peaks() const { return peaks_; }

  void Append(const Hash& leaf_hash, const NodeSink& sink = nullptr);
  // Root of the current tree (EmptyTreeRoot() when empty).
  Hash Root() const;

 private:
  std::uint64_t size_ = 0;
  std::vector<Hash> peaks_;
};

// The storage key of node (level, index): big-endian index of its last leaf,
// then the level byte. Keys grow in append order, so an LMDB table of nodes
// can be written with MDB_APPEND.
std::string PerfectNodeKey(std::uint32_t level, std::uint64_t index);

// An in-memory NodeReader that also collects appended nodes (tests, benches).
class MemoryLogTree : public NodeReader {
 public:
  void Append(const Hash& leaf_hash);
  std::uint64_t size() const { return range_.size(); }
  Hash Root() const { return range_.Root(); }
  Result<Hash> PerfectNode(std::uint32_t level, std::uint64_t index) const override;

 private:
  std::vector<std::vector<Hash>> levels_;
  CompactRange range_;
};

}  // namespace vellum::merkle

#endif  // VELLUM_MERKLE_LOG_TREE_H_
