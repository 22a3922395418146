#include "vellum/merkle/log_tree.h"

#include <bit>
#include <string>

#include "vellum/base/encoding.h"

namespace vellum::merkle {
namespace {

// Largest power of two strictly below n (n >= 2): the RFC 9162 split point k.
std::uint64_t SplitPoint(std::uint64_t n) { return std::uint64_t{1} << (63 - std::countl_zero(n - 1)); }

bool IsPowerOfTwo(std::uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

// MTH(D[begin:end]) from perfect subtrees: the left part of every split is a
// perfect aligned subtree, so this reads O(log n) nodes.
Result<Hash> SubtreeHash(const NodeReader& nodes, std::uint64_t begin, std::uint64_t end) {
  const std::uint64_t n = end - begin;
  if (IsPowerOfTwo(n) && begin % n == 0) {
    const auto level = static_cast<std::uint32_t>(std::countr_zero(n));
    return nodes.PerfectNode(level, begin >> level);
  }
  const std::uint64_t k = SplitPoint(n);
  VELLUM_ASSIGN_OR_RETURN(Hash left, SubtreeHash(nodes, begin, begin + k));
  VELLUM_ASSIGN_OR_RETURN(Hash right, SubtreeHash(nodes, begin + k, end));
  return HashChildren(left, right);
}

// RFC 9162 §2.1.3.1 PATH(m, D[begin:end]).
Status AppendPath(const NodeReader& nodes, std::uint64_t m, std::uint64_t begin, std::uint64_t end,
                  std::vector<Hash>& out) {
  if (end - begin <= 1) return Status::Ok();
  const std::uint64_t k = SplitPoint(end - begin);
  if (m < begin + k) {
    VELLUM_RETURN_IF_ERROR(AppendPath(nodes, m, begin, begin + k, out));
    VELLUM_ASSIGN_OR_RETURN(Hash sibling, SubtreeHash(nodes, begin + k, end));
    out.push_back(sibling);
  } else {
    VELLUM_RETURN_IF_ERROR(AppendPath(nodes, m, begin + k, end, out));
    VELLUM_ASSIGN_OR_RETURN(Hash sibling, SubtreeHash(nodes, begin, begin + k));
    out.push_back(sibling);
  }
  return Status::Ok();
}

// RFC 9162 §2.1.4.1 SUBPROOF(m, D[begin:end], b), with m relative to begin.
Status AppendSubproof(const NodeReader& nodes, std::uint64_t m, std::uint64_t begin,
                      std::uint64_t end, bool complete, std::vector<Hash>& out) {
  const std::uint64_t n = end - begin;
  if (m == n) {
    if (!complete) {
      VELLUM_ASSIGN_OR_RETURN(Hash h, SubtreeHash(nodes, begin, end));
      out.push_back(h);
    }
    return Status::Ok();
  }
  const std::uint64_t k = SplitPoint(n);
  if (m <= k) {
    VELLUM_RETURN_IF_ERROR(AppendSubproof(nodes, m, begin, begin + k, complete, out));
    VELLUM_ASSIGN_OR_RETURN(Hash h, SubtreeHash(nodes, begin + k, end));
    out.push_back(h);
  } else {
    VELLUM_RETURN_IF_ERROR(AppendSubproof(nodes, m - k, begin + k, end, false, out));
    VELLUM_ASSIGN_OR_RETURN(Hash h, SubtreeHash(nodes, begin, begin + k));
    out.push_back(h);
  }
  return Status::Ok();
}

Status PathLengthError(std::string check, std::uint64_t index, std::uint64_t size, std::string what) {
  return VerificationFailed({std::move(check), "", std::move(what), index, size});
}

}  // namespace

Result<Hash> RootFromInclusionProof(std::uint64_t leaf_index, std::uint64_t tree_size,
                                    const Hash& leaf_hash, std::span<const Hash> path) {
  if (leaf_index >= tree_size) {
    return InvalidArgument("leaf index " + std::to_string(leaf_index) + " is not below tree size " +
                           std::to_string(tree_size));
  }
  std::uint64_t fn = leaf_index;
  std::uint64_t sn = tree_size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : path) {
    if (sn == 0) {
      return PathLengthError("inclusion.path_length", leaf_index, tree_size,
                             "path of " + std::to_string(path.size()) + " hashes is too long");
    }
    if ((fn & 1) != 0 || fn == sn) {
      r = HashChildren(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = HashChildren(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return PathLengthError("inclusion.path_length", leaf_index, tree_size,
                           "path of " + std::to_string(path.size()) + " hashes is too short");
  }
  return r;
}

Status VerifyInclusion(std::uint64_t leaf_index, std::uint64_t tree_size, const Hash& leaf_hash,
                       std::span<const Hash> path, const Hash& root) {
  VELLUM_ASSIGN_OR_RETURN(Hash computed, RootFromInclusionProof(leaf_index, tree_size, leaf_hash, path));
  if (computed != root) {
    return VerificationFailed({"inclusion.root", HashHex(root), HashHex(computed), leaf_index, tree_size});
  }
  return Status::Ok();
}

Status VerifyConsistency(std::uint64_t old_size, std::uint64_t new_size, const Hash& old_root,
                         const Hash& new_root, std::span<const Hash> path) {
  if (old_size == 0) return InvalidArgument("consistency from an empty tree proves nothing (old size 0)");
  if (old_size > new_size) {
    return InvalidArgument("old size " + std::to_string(old_size) + " is larger than new size " +
                           std::to_string(new_size));
  }
  if (old_size == new_size) {
    if (!path.empty()) {
      return VerificationFailed({"consistency.equal_sizes", "empty path",
                                 std::to_string(path.size()) + " hashes", old_size, new_size});
    }
    if (old_root != new_root) {
      return VerificationFailed({"consistency.equal_sizes", HashHex(old_root), HashHex(new_root), old_size, new_size});
    }
    return Status::Ok();
  }
  if (path.empty()) {
    return PathLengthError("consistency.path_length", old_size, new_size, "empty path");
  }
  // When old_size is a power of two the old root is itself the first node of
  // the proof and the RFC leaves it out.
  size_t next = 0;
  Hash seed;
  if (IsPowerOfTwo(old_size)) {
    seed = old_root;
  } else {
    seed = path[0];
    next = 1;
  }
  std::uint64_t fn = old_size - 1;
  std::uint64_t sn = new_size - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = seed;
  Hash sr = seed;
  for (; next < path.size(); ++next) {
    const Hash& c = path[next];
    if (sn == 0) {
      return PathLengthError("consistency.path_length", old_size, new_size,
                             "path of " + std::to_string(path.size()) + " hashes is too long");
    }
    if ((fn & 1) != 0 || fn == sn) {
      fr = HashChildren(c, fr);
      sr = HashChildren(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = HashChildren(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return PathLengthError("consistency.path_length", old_size, new_size,
                           "path of " + std::to_string(path.size()) + " hashes is too short");
  }
  if (fr != old_root) {
    return VerificationFailed({"consistency.old_root", HashHex(old_root), HashHex(fr), old_size, new_size});
  }
  if (sr != new_root) {
    return VerificationFailed({"consistency.new_root", HashHex(new_root), HashHex(sr), old_size, new_size});
  }
  return Status::Ok();
}

Hash RootFromLeafHashes(std::span<const Hash> leaf_hashes) {
  CompactRange range;
  for (const Hash& h : leaf_hashes) range.Append(h);
  return range.Root();
}

Result<std::vector<Hash>> InclusionPathFromLeafHashes(std::span<const Hash> leaf_hashes,
                                                      std::uint64_t leaf_index) {
  MemoryLogTree tree;
  for (const Hash& h : leaf_hashes) tree.Append(h);
  return InclusionPath(tree, leaf_index, tree.size());
}

Result<Hash> RootAt(const NodeReader& nodes, std::uint64_t size) {
  if (size == 0) return EmptyTreeRoot();
  return SubtreeHash(nodes, 0, size);
}

Result<std::vector<Hash>> InclusionPath(const NodeReader& nodes, std::uint64_t leaf_index,
                                        std::uint64_t tree_size) {
  if (leaf_index >= tree_size) {
    return InvalidArgument("leaf index " + std::to_string(leaf_index) + " is not below tree size " +
                           std::to_string(tree_size));
  }
  std::vector<Hash> path;
  path.reserve(64);
  VELLUM_RETURN_IF_ERROR(AppendPath(nodes, leaf_index, 0, tree_size, path));
  return path;
}

Result<std::vector<Hash>> ConsistencyPath(const NodeReader& nodes, std::uint64_t old_size,
                                          std::uint64_t new_size) {
  if (old_size == 0 || old_size > new_size) {
    return InvalidArgument("no consistency proof from size " + std::to_string(old_size) + " to size " +
                           std::to_string(new_size) + " (need 0 < old <= new)");
  }
  std::vector<Hash> path;
  path.reserve(64);
  VELLUM_RETURN_IF_ERROR(AppendSubproof(nodes, old_size, 0, new_size, true, path));
  return path;
}

Result<CompactRange> CompactRange::Load(const NodeReader& nodes, std::uint64_t size) {
  CompactRange range;
  std::uint64_t offset = 0;
  for (int bit = 63; bit >= 0; --bit) {
    const std::uint64_t width = std::uint64_t{1} << bit;
    if ((size & width) == 0) continue;
    VELLUM_ASSIGN_OR_RETURN(Hash h, nodes.PerfectNode(static_cast<std::uint32_t>(bit), offset >> bit));
    range.peaks_.push_back(h);
    offset += width;
  }
  range.size_ = size;
  return range;
}

void CompactRange::Append(const Hash& leaf_hash, const NodeSink& sink) {
  const std::uint64_t index = size_;
  if (sink) sink(0, index, leaf_hash);
  Hash h = leaf_hash;
  std::uint32_t level = 0;
  while (((size_ >> level) & 1) != 0) {
    h = HashChildren(peaks_.back(), h);
    peaks_.pop_back();
    ++level;
    if (sink) sink(level, index >> level, h);
  }
  peaks_.push_back(h);
  ++size_;
}

Hash CompactRange::Root() const {
  if (peaks_.empty()) return EmptyTreeRoot();
  Hash r = peaks_.back();
  for (size_t i = peaks_.size() - 1; i-- > 0;) r = HashChildren(peaks_[i], r);
  return r;
}

std::string PerfectNodeKey(std::uint32_t level, std::uint64_t index) {
  std::string key(9, '\0');
  const std::uint64_t last_leaf = ((index + 1) << level) - 1;
  PutBigEndian64(key.data(), last_leaf);
  key[8] = static_cast<char>(level);
  return key;
}

void MemoryLogTree::Append(const Hash& leaf_hash) {
  range_.Append(leaf_hash, [this](std::uint32_t level, std::uint64_t index, const Hash& h) {
    if (levels_.size() <= level) levels_.resize(level + 1);
    auto& row = levels_[level];
    if (row.size() <= index) row.resize(index + 1);
    row[index] = h;
  });
}

Result<Hash> MemoryLogTree::PerfectNode(std::uint32_t level, std::uint64_t index) const {
  if (level >= levels_.size() || index >= levels_[level].size() ||
      ((index + 1) << level) > range_.size()) {
    return NotFound("no perfect subtree at level " + std::to_string(level) + " index " + std::to_string(index));
  }
  return levels_[level][index];
}

}  // namespace vellum::merkle
