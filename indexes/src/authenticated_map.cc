#include "vellum/indexes/authenticated_map.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>
#include <thread>
#include <utility>

namespace vellum::indexes {

using merkle::MapDigest;
using merkle::MapProof;
using merkle::MapProofNode;

namespace {

// Batches of fewer ops are applied and built on one thread: handing work to
// the helper thread and waiting for it costs more than a few pages.
constexpr size_t kParallelOps = 64;
// The two threads share a batch's subtrees one at a time, whichever is free
// taking the next, so neither waits long for the other even when a third
// thread (the view flusher) takes its core for a while. Subtrees are taken
// at the level below the root, or the one below that if it has fewer than
// this many.
constexpr size_t kMinParallelUnits = 16;

// A page being built in this batch. Its slots are entries (level 0) or
// children (level >= 1): an item copied unchanged from a sealed page, a new
// entry (fresh), or a new child page (pending), built or not. Slots are
// small and trivially copyable, so moving them between pages while
// normalizing is cheap, and an unchanged item's bytes are copied into the
// page that is sealed (once, unless a merge makes a page built early be
// built again). Keys are borrowed from the batch or from pages the builder
// pins, so building copies no key bytes.
struct Pending;
struct Fresh {
  std::string_view key;
  MapNode::Item item;  // key offsets unused; a new page's ref is set once it is stored
  merkle::MapAggregate aggregate;

  void SetDigest(const MapDigest& d) {
    item.SetDigest(d);
    aggregate = d.aggregate;
  }
  MapDigest digest() const { return MapDigest{item.hash, item.count, aggregate}; }
};
struct Slot {
  const MapNode* page = nullptr;  // copied: item `index` of this sealed page
  std::uint32_t index = 0;
  const Fresh* fresh = nullptr;   // or a new entry
  Pending* pending = nullptr;     // or a new child page, built or not

  // A new item's entry or sealed page (a pending child once it is built).
  const Fresh* sealed() const;
  std::string_view key() const { return page != nullptr ? page->key(index) : sealed()->key; }
  const MapNode::Item& item() const { return page != nullptr ? page->items[index] : sealed()->item; }
  merkle::MapAggregate aggregate() const { return page != nullptr ? page->item_aggregate(index) : sealed()->aggregate; }
  MapDigest digest() const {
    return page != nullptr ? page->item_digest(index) : sealed()->digest();
  }
};
struct Sealing;
struct Pending {
  std::uint8_t level = 0;
  std::vector<Slot> slots;  // left as they are by building, so a page can be rebuilt
  // Set once the page is built: its sealed digest. `sealing` is set if the
  // page and its new descendants were built into a Sealing of their own (a
  // subtree built in parallel, or early, right after its descent), which is
  // where its pages wait to be stored; else they wait in an ancestor's.
  const Fresh* built = nullptr;
  Sealing* sealing = nullptr;
};
inline const Fresh* Slot::sealed() const { return fresh != nullptr ? fresh : pending->built; }

// A new page built and sealed but not stored yet, or (`splice`) the pages of
// a subtree built in a Sealing of its own, to be stored at this point. Pages
// are built (the costly part: copying items, hashing) possibly on two
// threads, then stored one by one in post-order, so node ids are the same
// whichever thread built what.
struct Built {
  std::shared_ptr<MapNode> node;
  Fresh* self = nullptr;  // gets the id once stored
  // Items whose ref is known only at storing time (item index, its Fresh):
  // new children (their node id) and new entries (their value ref, which
  // StoreValues may set after the leaf was built).
  std::vector<std::pair<std::uint32_t, const Fresh*>> late_refs;
  Sealing* splice = nullptr;
};
// New pages in post-order, with the scratch of the thread building them.
struct Sealing {
  std::deque<Built> built;
  std::deque<Fresh> fresh;
  std::vector<MapItemSource> sources;
};

// Builds and seals `p` and its new descendants not built yet, bottom-up, each
// once, into `w` (post-order), and sets their `built`; descendants built
// into a Sealing of their own are spliced in. Touches no store.
const Fresh* BuildPages(merkle::MapKind kind, Pending& p, Sealing& w);

// Forgets that `p` was built (its pages are left unstored), before its slots
// change: a later BuildPages builds it anew. Its new descendants built with
// it, into the same Sealing, go too; those built into a Sealing of their own
// stay built and are spliced in again.
void Unbuild(Pending& p) {
  if (p.built == nullptr) return;
  p.built = nullptr;
  p.sealing = nullptr;
  for (const Slot& s : p.slots) {
    if (s.pending != nullptr && s.pending->sealing == nullptr) Unbuild(*s.pending);
  }
}

// The process's page-building helper: one thread, started on first use and
// kept for the life of the process (a thread per batch would pay its start
// and a cold allocator cache every time). While it builds for one map's
// batch, other batches build on their caller's thread alone.
class BuildHelper {
 public:
  static BuildHelper& Instance() {
    static BuildHelper* const helper = new BuildHelper();  // never destroyed: its thread may still wait
    return *helper;
  }

  // Starts `job` on the helper thread; false (nothing started) if the helper
  // is busy or no thread can be started.
  bool TryStart(std::function<void()> job) {
    // A forked child has this object but not the thread (and maybe a mutex
    // held at the fork): it builds alone.
    const pid_t self = ::getpid();
    const pid_t owner = owner_.load(std::memory_order_acquire);
    if (owner != 0 && owner != self) return false;
    std::lock_guard<std::mutex> lock(mu_);
    if (busy_) return false;
    if (owner == 0) {
      try {
        std::thread([this] { Loop(); }).detach();
      } catch (const std::system_error&) {
        return false;
      }
      owner_.store(self, std::memory_order_release);
    }
    busy_ = true;
    job_ = std::move(job);
    wake_.notify_one();
    return true;
  }

  // Waits until the job that TryStart started has returned.
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return !busy_; });
  }

  // Runs `first` on this thread and `second` on the helper if it is free
  // (else here, after `first`); returns once both have run. Both may touch
  // the caller's stack: if `first` throws, the helper is still waited for.
  static void RunBoth(const std::function<void()>& first, const std::function<void()>& second) {
    BuildHelper& helper = Instance();
    struct Join {
      BuildHelper* helper;
      ~Join() {
        if (helper != nullptr) helper->Wait();
      }
    } join{helper.TryStart(second) ? &helper : nullptr};
    first();
    if (join.helper == nullptr) second();
  }

  // Calls task(k, on_helper) once for every k in [0, n): this thread and the
  // helper (if free) each take the next k not taken, so neither idles while
  // the other still has work. Returns once all have run.
  static void ShareOut(size_t n, const std::function<void(size_t, bool)>& task) {
    std::atomic<size_t> next{0};
    auto run = [&next, n, &task](bool on_helper) {
      for (size_t k; (k = next.fetch_add(1, std::memory_order_relaxed)) < n;) task(k, on_helper);
    };
    RunBoth([&run] { run(false); }, [&run] { run(true); });
  }

 private:
  BuildHelper() = default;

  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [this] { return job_ != nullptr; });
      std::function<void()> job = std::move(job_);
      job_ = nullptr;
      lock.unlock();
      job();
      lock.lock();
      busy_ = false;
      done_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::function<void()> job_;
  bool busy_ = false;
  std::atomic<pid_t> owner_{0};  // the process whose helper thread runs; 0 before the first start
};

// One normalized mutation of a batch.
struct Op {
  const MapMutation* m;
  merkle::Hash value_hash;
  MapDigest digest;  // of the new entry (puts), set by Hash()

  // Computed where the op meets its leaf, so on whichever thread applies it.
  void Hash(merkle::MapKind kind) {
    if (m->op != MapMutation::Op::kPut) return;
    value_hash = merkle::MapValueHash(m->value);
    digest = merkle::MapLeafDigest(kind, m->key, value_hash, m->aggregate);
  }
};

// The value of item `i` of leaf `page` (at `rank` in a map of `total`
// entries), fetched by its ref and checked against the hash the tree commits
// to: DataLoss with the evidence if the store returns other bytes.
Result<std::string> LoadValue(const ValueStore& values, const MapNode& page, size_t i, std::uint64_t rank,
                              std::uint64_t total) {
  VELLUM_ASSIGN_OR_RETURN(std::string value, values.Get(page.value_ref(i)));
  const merkle::Hash computed = merkle::MapValueHash(value);
  if (computed != page.items[i].value_hash) {
    return VerificationFailed({"map.value_store", merkle::HashHex(page.items[i].value_hash),
                               merkle::HashHex(computed), rank, total});
  }
  return value;
}

const Fresh* BuildPages(merkle::MapKind kind, Pending& p, Sealing& w) {
  size_t key_bytes = 0;
  for (const Slot& s : p.slots) {
    if (Pending* child = s.pending; child != nullptr) {
      if (child->built == nullptr) {
        BuildPages(kind, *child, w);
      } else {
        w.built.emplace_back().splice = child->sealing;
      }
    }
    key_bytes += s.key().size();
  }
  Built& b = w.built.emplace_back();
  auto node = std::make_shared<MapNode>();
  node->kind = kind;
  node->level = p.level;
  node->Reserve(p.slots.size(), key_bytes);
  w.sources.clear();
  w.sources.reserve(p.slots.size());
  for (const Slot& s : p.slots) {
    if (s.page == nullptr) b.late_refs.emplace_back(static_cast<std::uint32_t>(node->items.size()), s.sealed());
    node->Add(s.key(), s.item(), node->has_aggregates() ? s.aggregate() : merkle::MapAggregate{});
    w.sources.push_back(s.page != nullptr ? MapItemSource{s.page, s.index} : MapItemSource{});
  }
  node->Seal(w.sources);
  Fresh& ref = w.fresh.emplace_back();
  // The first slot's key outlives the batch's build as every slot key does,
  // so the new page need not be pinned (the store may not keep it in memory).
  ref.key = p.slots.front().key();
  ref.SetDigest(node->digest);
  b.node = std::move(node);
  b.self = &ref;
  p.built = &ref;
  return &ref;
}

}  // namespace

struct AuthenticatedMap::Plan {
  std::vector<std::pair<std::uint64_t, bool>> reveal;  // ascending rank, with value
  // Range scans: ranks returned are [first, last); next page starts at `next`.
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::optional<std::uint64_t> next;
};

// Applies one batch: builds Pending pages top-down, normalizes page sizes,
// then seals each new page once, bottom-up. Pending pages and fresh items live
// in per-batch deques (stable addresses, few allocations) until the batch is
// done.
class AuthenticatedMap::Builder {
 public:
  // `ops`: the batch's size after normalizing (0 for a partner builder).
  explicit Builder(const AuthenticatedMap& map, size_t ops = 0)
      : map_(map), max_(map.options_.max_page_items), min_(map.options_.max_page_items / 2), ops_(ops) {}

  // nullptr if the batch changes nothing under `id`. `top`: the root page,
  // whose children's subtrees may be applied on two threads.
  Result<Pending*> ApplyNode(NodeId id, std::span<Op> ops, bool top = false) {
    VELLUM_ASSIGN_OR_RETURN(const MapNode* node, Load(id));
    Pending* p = NewPending(node->level);
    const size_t n = node->items.size();
    bool changed = false;
    if (node->level == 0) {
      for (Op& op : ops) op.Hash(map_.options_.kind);
      p->slots.reserve(n + ops.size());
      size_t i = 0;
      size_t j = 0;
      while (i < n || j < ops.size()) {
        const int cmp = i == n ? 1 : j == ops.size() ? -1 : node->key(i).compare(ops[j].m->key);
        if (cmp < 0) {
          p->slots.push_back(Copy(node, i++));
        } else if (cmp > 0) {
          if (ops[j].m->op == MapMutation::Op::kPut) {
            p->slots.push_back(NewEntry(ops[j]));
            changed = true;
          }
          ++j;
        } else {
          if (ops[j].m->op == MapMutation::Op::kPut) {
            if (ops[j].digest == node->item_digest(i)) {
              p->slots.push_back(Copy(node, i));
            } else {
              p->slots.push_back(NewEntry(ops[j]));
              changed = true;
            }
          } else {
            changed = true;
          }
          ++i;
          ++j;
        }
      }
      if (!changed) return Drop(p);
      return p;
    }
    p->slots.reserve(n + 2);
    if (top && map_.options_.build_threads > 1 && ops.size() >= kParallelOps) {
      VELLUM_ASSIGN_OR_RETURN(changed, ApplyChildrenInParallel(*node, ops, p));
    } else {
      const std::vector<size_t> bounds = ChildBounds(*node, ops);
      for (size_t i = 0; i < n; ++i) {
        Pending* child = nullptr;
        if (bounds[i] != bounds[i + 1]) {
          VELLUM_ASSIGN_OR_RETURN(child, ApplyNode(node->child(i), ops.subspan(bounds[i], bounds[i + 1] - bounds[i])));
        }
        changed |= AddChild(p, node, i, child);
      }
    }
    if (!changed) return Drop(p);
    VELLUM_RETURN_IF_ERROR(Normalize(&p->slots));
    return p;
  }

  // The ops of each child of `page` (level >= 1): child i gets ops
  // [bounds[i], bounds[i + 1]).
  static std::vector<size_t> ChildBounds(const MapNode& page, std::span<const Op> ops) {
    const size_t n = page.items.size();
    std::vector<size_t> bounds(n + 1, ops.size());
    bounds[0] = 0;
    for (size_t i = 1; i < n; ++i) bounds[i] = FirstOpFrom(ops, bounds[i - 1], page.key(i));
    return bounds;
  }

  // ApplyNode's loop over the children of `node` (level >= 1), with the
  // subtrees shared by this builder and a partner on the helper thread. The
  // subtrees are the children that have ops or, if fewer than
  // kMinParallelUnits children have them and they are not leaves, their
  // children that have ops; the children around them are then completed
  // here, exactly as ApplyNode would. Appends p's slots; true if any changed.
  Result<bool> ApplyChildrenInParallel(const MapNode& node, std::span<Op> ops, Pending* p) {
    const size_t n = node.items.size();
    const std::vector<size_t> bounds = ChildBounds(node, ops);
    size_t with_ops = 0;
    for (size_t i = 0; i < n; ++i) with_ops += bounds[i] != bounds[i + 1] ? 1 : 0;
    const bool deeper = node.level >= 2 && with_ops < kMinParallelUnits;
    std::vector<const MapNode*> children(n, nullptr);  // deeper: the children with ops
    std::vector<std::vector<size_t>> child_bounds(n);  // deeper: their ops by grandchild
    std::vector<Unit> units;
    for (size_t i = 0; i < n; ++i) {
      if (bounds[i] == bounds[i + 1]) continue;
      const std::span<Op> child_ops = ops.subspan(bounds[i], bounds[i + 1] - bounds[i]);
      if (!deeper) {
        units.push_back(Unit{node.child(i), child_ops});
        continue;
      }
      VELLUM_ASSIGN_OR_RETURN(children[i], Load(node.child(i)));
      child_bounds[i] = ChildBounds(*children[i], child_ops);
      const std::vector<size_t>& cb = child_bounds[i];
      for (size_t j = 0; j + 1 < cb.size(); ++j) {
        if (cb[j] != cb[j + 1]) units.push_back(Unit{children[i]->child(j), child_ops.subspan(cb[j], cb[j + 1] - cb[j])});
      }
    }
    RunUnits(units);
    for (const Unit& u : units) VELLUM_RETURN_IF_ERROR(u.status);
    // Values are stored in key order: the units' in turn.
    for (const Unit& u : units) value_order_.push_back({u.builder, u.values_begin, u.values_end});
    bool changed = false;
    size_t next = 0;  // units are in key order
    for (size_t i = 0; i < n; ++i) {
      Pending* child = nullptr;
      if (bounds[i] != bounds[i + 1]) {
        if (!deeper) {
          child = units[next++].result;
        } else {
          const MapNode* c = children[i];
          Pending* pc = NewPending(c->level);
          pc->slots.reserve(c->items.size() + 2);
          bool child_changed = false;
          for (size_t j = 0; j < c->items.size(); ++j) {
            Pending* grandchild = child_bounds[i][j] != child_bounds[i][j + 1] ? units[next++].result : nullptr;
            child_changed |= AddChild(pc, c, j, grandchild);
          }
          if (child_changed) {
            VELLUM_RETURN_IF_ERROR(Normalize(&pc->slots));
            child = pc;
          }
        }
      }
      changed |= AddChild(p, &node, i, child);
    }
    return changed;
  }

  // One subtree of a batch applied by whichever builder is free.
  struct Unit {
    NodeId id = kNoNode;
    std::span<Op> ops;
    Pending* result = nullptr;
    Status status;
    Builder* builder = nullptr;  // the one that applied it; its new values are
    size_t values_begin = 0;     // builder->new_values_[values_begin, values_end)
    size_t values_end = 0;
  };

  // Applies every unit, this builder and its partner (on the helper thread)
  // each taking the next one not taken.
  void RunUnits(std::vector<Unit>& units) {
    if (partner_ == nullptr) partner_ = std::make_unique<Builder>(map_);
    BuildHelper::ShareOut(units.size(), [this, &units](size_t k, bool on_helper) {
      Builder& b = on_helper ? *partner_ : *this;
      Unit& u = units[k];
      u.builder = &b;
      u.values_begin = b.new_values_.size();
      Result<Pending*> r = b.ApplyNode(u.id, u.ops);
      if (r.ok()) {
        u.result = *r;
        if (u.result != nullptr) b.BuildEarly(*u.result);
      } else {
        u.status = r.status();
      }
      u.values_end = b.new_values_.size();
    });
  }

  // Builds a subtree just applied, into a Sealing of its own, while its
  // pages and the pages they copy from are still in this core's cache
  // (built after the whole descent, they were evicted). Its size is final
  // unless a merge at a level above takes it in, which unbuilds it (Take).
  // A page of the wrong size will be split or merged: its children (if of
  // the right size) are built instead, each into a Sealing of its own.
  void BuildEarly(Pending& p) {
    auto build_apart = [this](Pending& page) {
      page.sealing = &sealing_.emplace_back();
      BuildPages(map_.options_.kind, page, *page.sealing);
    };
    if (p.slots.size() >= min_ && p.slots.size() <= max_) {
      build_apart(p);
    } else if (p.level > 0) {
      for (const Slot& s : p.slots) {
        if (s.pending != nullptr && s.pending->slots.size() >= min_) build_apart(*s.pending);
      }
    }
  }

  // The index of the first op at or after `from` whose key is >= `key`.
  static size_t FirstOpFrom(std::span<const Op> ops, size_t from, std::string_view key) {
    return static_cast<size_t>(std::lower_bound(ops.begin() + static_cast<std::ptrdiff_t>(from), ops.end(), key,
                                                [](const Op& o, std::string_view k) { return o.m->key < k; }) -
                               ops.begin());
  }

  // Appends child i of `node` to `p`: copied if the batch left it unchanged
  // (`child` null), else its new page unless nothing is left in it. True if
  // the child changed.
  static bool AddChild(Pending* p, const MapNode* node, size_t i, Pending* child) {
    if (child == nullptr) {
      p->slots.push_back(Copy(node, i));
      return false;
    }
    if (!child->slots.empty()) p->slots.push_back(Slot{nullptr, 0, nullptr, child});
    return true;
  }

  // Stores the batch's new values, in key order, and sets their entries'
  // refs. Applied serially, they are this builder's in order; in parallel,
  // value_order_ lists which builder holds each run.
  Status StoreValues() {
    if (value_order_.empty()) value_order_.push_back({this, 0, new_values_.size()});
    for (const ValueRun& run : value_order_) {
      for (size_t i = run.begin; i < run.end; ++i) {
        const auto& [entry, value] = run.builder->new_values_[i];
        VELLUM_ASSIGN_OR_RETURN(entry->item.ref, map_.options_.values->Put(*value));
      }
    }
    return Status::Ok();
  }

  // Makes every new child in `slots` hold between min_ and max_ items, unless
  // it is the only child (the parent then is undersized and its own parent
  // merges it). Merging pulls in the neighbouring child and normalizes the
  // merged page's children too, so no undersized page survives at any level.
  Status Normalize(std::vector<Slot>* slots) {
    for (size_t i = 0; i < slots->size(); ++i) {
      if ((*slots)[i].pending != nullptr && (*slots)[i].pending->slots.size() > max_) i = SplitAt(slots, i);
    }
    size_t i = 0;
    while (i < slots->size() && slots->size() > 1) {
      const Slot& s = (*slots)[i];
      if (s.pending == nullptr || s.pending->slots.size() >= min_) {
        ++i;
        continue;
      }
      const size_t a = i + 1 < slots->size() ? i : i - 1;
      VELLUM_ASSIGN_OR_RETURN(Pending * left, Take((*slots)[a]));
      VELLUM_ASSIGN_OR_RETURN(Pending * right, Take((*slots)[a + 1]));
      left->slots.insert(left->slots.end(), right->slots.begin(), right->slots.end());
      if (left->level > 0) VELLUM_RETURN_IF_ERROR(Normalize(&left->slots));
      slots->erase(slots->begin() + static_cast<std::ptrdiff_t>(a + 1));
      (*slots)[a] = Slot{nullptr, 0, nullptr, left};
      if (left->slots.size() > max_) SplitAt(slots, a);
      i = a;
    }
    return Status::Ok();
  }

  // Builds and seals `top` and its new descendants not built early, then
  // stores them all in post-order. With enough ops, the new subtrees below
  // the top page (or below its children, if it has few) still to build are
  // built by this thread and the helper, each taking the next subtree not
  // taken, each subtree into a Sealing of its own that is stored where the
  // subtree sits in post-order.
  Result<const Fresh*> Finalize(Pending& top) {
    // A page built early that became the top (the levels above it went):
    // built again here, whole, which is rare enough to keep simple.
    if (top.built != nullptr) Unbuild(top);
    Sealing& main = sealing_.emplace_back();
    if (map_.options_.build_threads > 1 && ops_ >= kParallelOps && top.level > 0) {
      // The new subtrees not built yet (those built early are spliced in).
      std::vector<Pending*> units;
      for (const Slot& s : top.slots) {
        if (s.pending != nullptr && s.pending->built == nullptr) units.push_back(s.pending);
      }
      if (units.size() < kMinParallelUnits && top.level >= 2) {
        std::vector<Pending*> deeper;
        for (const Pending* child : units) {
          for (const Slot& s : child->slots) {
            if (s.pending != nullptr && s.pending->built == nullptr) deeper.push_back(s.pending);
          }
        }
        units = std::move(deeper);
      }
      if (units.size() >= 2) {
        for (Pending* u : units) u->sealing = &sealing_.emplace_back();
        const merkle::MapKind kind = map_.options_.kind;
        BuildHelper::ShareOut(units.size(), [&units, kind](size_t k, bool) {
          BuildPages(kind, *units[k], *units[k]->sealing);
        });
      }
    }
    const Fresh* root = BuildPages(map_.options_.kind, top, main);
    VELLUM_RETURN_IF_ERROR(StorePages(main));
    return root;
  }

  // Stores the pages of `w` in order (a spliced Sealing's where it sits),
  // each after its new children, whose ids it then refers to.
  Status StorePages(Sealing& w) {
    for (Built& b : w.built) {
      if (b.splice != nullptr) {
        VELLUM_RETURN_IF_ERROR(StorePages(*b.splice));
        continue;
      }
      for (const auto& [index, fresh] : b.late_refs) b.node->items[index].ref = fresh->item.ref;
      VELLUM_ASSIGN_OR_RETURN(b.self->item.ref, map_.options_.nodes->Put(std::move(b.node)));
    }
    return Status::Ok();
  }

  // Turns the new top page into a version: splits it into more levels while
  // it is too big, drops single-child roots, then seals.
  Result<MapVersion> Finish(Pending* top) {
    if (top->slots.empty()) return map_.Empty();
    while (top->slots.size() > max_) {
      Pending* wrap = NewPending(static_cast<std::uint8_t>(top->level + 1));
      wrap->slots.push_back(Slot{nullptr, 0, nullptr, top});
      VELLUM_RETURN_IF_ERROR(Normalize(&wrap->slots));
      top = wrap;
    }
    while (top->level > 0 && top->slots.size() == 1) {
      const Slot& only = top->slots.front();
      if (only.pending == nullptr) return Version(only.item().ref, only.digest());
      top = only.pending;
    }
    VELLUM_ASSIGN_OR_RETURN(const Fresh* root, Finalize(*top));
    return Version(root->item.ref, root->digest());
  }

  // A new or changed entry. Its value is stored by StoreValues (only for
  // these, so no-op puts write nothing), which also sets its ref.
  Slot NewEntry(const Op& op) {
    Fresh& f = fresh_.emplace_back();
    f.key = op.m->key;
    f.item.value_hash = op.value_hash;
    f.SetDigest(op.digest);
    new_values_.emplace_back(&f, &op.m->value);
    return Slot{nullptr, 0, &f, nullptr};
  }

  Pending* NewPending(std::uint8_t level) {
    Pending& p = pending_.emplace_back();
    p.level = level;
    return &p;
  }

 private:
  MapVersion Version(NodeId root, const MapDigest& digest) const {
    MapVersion v;
    v.root = root;
    v.digest = digest;
    v.root_hash = merkle::MapRootHash(map_.options_.kind, &v.digest);
    return v;
  }

  // Discards `p`, the last page started, whose subtree did not change (its
  // children, if any, were discarded before it). Returns nullptr.
  Pending* Drop(Pending* p) {
    if (!pending_.empty() && &pending_.back() == p) pending_.pop_back();
    return nullptr;
  }

  // Loads a stored page and keeps it alive until the batch is done (slots borrow its keys).
  Result<const MapNode*> Load(NodeId id) {
    VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> node, map_.options_.nodes->Get(id));
    pinned_.push_back(std::move(node));
    return pinned_.back().get();
  }

  static Slot Copy(const MapNode* node, size_t i) { return Slot{node, static_cast<std::uint32_t>(i), nullptr, nullptr}; }

  // The slot's page as a Pending (loading an existing child).
  Result<Pending*> Take(const Slot& s) {
    if (s.pending != nullptr) {
      Unbuild(*s.pending);  // its slots are about to change
      return s.pending;
    }
    VELLUM_ASSIGN_OR_RETURN(const MapNode* node, Load(s.item().ref));
    Pending* p = NewPending(node->level);
    p->slots.reserve(node->items.size() + max_);
    for (size_t i = 0; i < node->items.size(); ++i) p->slots.push_back(Copy(node, i));
    return p;
  }

  // Splits the oversized pending page at slots[i] into ceil(n / max_) pages
  // of near-equal size (each >= min_); returns the index of the last one.
  // The page is not built: pages are built early only at a final size.
  size_t SplitAt(std::vector<Slot>* slots, size_t i) {
    const Pending* big = (*slots)[i].pending;
    const size_t n = big->slots.size();
    const size_t k = (n + max_ - 1) / max_;
    chunks_.clear();
    size_t next = 0;
    for (size_t c = 0; c < k; ++c) {
      const size_t len = n / k + (c < n % k ? 1 : 0);
      Pending* part = NewPending(big->level);
      part->slots.reserve(len + 1);
      const auto from = big->slots.begin() + static_cast<std::ptrdiff_t>(next);
      part->slots.assign(from, from + static_cast<std::ptrdiff_t>(len));
      next += len;
      chunks_.push_back(Slot{nullptr, 0, nullptr, part});
    }
    (*slots)[i] = chunks_.front();
    slots->insert(slots->begin() + static_cast<std::ptrdiff_t>(i + 1), chunks_.begin() + 1, chunks_.end());
    return i + k - 1;
  }

  const AuthenticatedMap& map_;
  const size_t max_;
  const size_t min_;
  const size_t ops_;
  std::deque<Pending> pending_;                         // every page started in this batch
  std::deque<Fresh> fresh_;                             // new entries
  std::vector<std::pair<Fresh*, const std::string*>> new_values_;  // their values, in key order
  struct ValueRun {
    const Builder* builder;
    size_t begin;
    size_t end;
  };
  std::vector<ValueRun> value_order_;                   // parallel descent: runs of new_values_ in key order
  std::unique_ptr<Builder> partner_;                    // applies subtrees on the helper thread
  std::deque<Sealing> sealing_;                         // new pages: the top's, and each subtree's built apart
  std::vector<std::shared_ptr<const MapNode>> pinned_;  // loaded pages whose keys and items slots borrow
  std::vector<Slot> chunks_;                            // scratch for SplitAt
};

Result<AuthenticatedMap> AuthenticatedMap::Create(MapOptions options) {
  if (options.nodes == nullptr || options.values == nullptr) return InvalidArgument("map stores must be set");
  if (options.max_page_items < 4 || options.max_page_items > 256 || options.max_page_items % 2 != 0) {
    return InvalidArgument("max_page_items must be even and in [4, 256]");
  }
  if (options.build_threads < 1 || options.build_threads > 2) return InvalidArgument("build_threads must be 1 or 2");
  if (options.kind != merkle::MapKind::kPlain && options.kind != merkle::MapKind::kInt64Aggregate) {
    return InvalidArgument("unknown map kind");
  }
  return AuthenticatedMap(options);
}

MapVersion AuthenticatedMap::Empty() const {
  MapVersion v;
  v.root_hash = merkle::MapRootHash(options_.kind, nullptr);
  return v;
}

Result<MapVersion> AuthenticatedMap::Apply(const MapVersion& base, std::vector<MapMutation> batch) const {
  for (const MapMutation& m : batch) {
    if (m.key.size() > merkle::kMaxMapKeySize) {
      return InvalidArgument("map key of " + std::to_string(m.key.size()) + " bytes exceeds 4096");
    }
    if (m.op == MapMutation::Op::kPut && m.value.size() > merkle::kMaxMapValueSize) {
      return InvalidArgument("map value of " + std::to_string(m.value.size()) + " bytes exceeds 1 MiB");
    }
  }
  // Last mutation of a key wins: stable sort, keep the last of each run.
  std::vector<const MapMutation*> sorted;
  sorted.reserve(batch.size());
  for (const MapMutation& m : batch) sorted.push_back(&m);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const MapMutation* a, const MapMutation* b) { return a->key < b->key; });
  std::vector<Op> ops;
  ops.reserve(sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i + 1 < sorted.size() && sorted[i + 1]->key == sorted[i]->key) continue;
    ops.push_back(Op{sorted[i], {}, {}});
  }
  if (ops.empty()) return base;
  Builder b(*this, ops.size());
  Pending* top = nullptr;
  if (base.root == kNoNode) {
    top = b.NewPending(0);
    top->slots.reserve(ops.size());
    for (Op& op : ops) {
      if (op.m->op != MapMutation::Op::kPut) continue;
      op.Hash(options_.kind);
      top->slots.push_back(b.NewEntry(op));
    }
  } else {
    VELLUM_ASSIGN_OR_RETURN(top, b.ApplyNode(base.root, ops, /*top=*/true));
    if (top == nullptr) return base;
  }
  VELLUM_RETURN_IF_ERROR(b.StoreValues());
  return b.Finish(top);
}

// ---- Navigation ----

Result<AuthenticatedMap::Located> AuthenticatedMap::Find(const MapVersion& v, std::string_view key) const {
  Located out;
  NodeId id = v.root;
  while (id != kNoNode) {
    VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> node, options_.nodes->Get(id));
    const size_t n = node->items.size();
    // First item with key > `key` (internal) or >= `key` (leaf), by binary search.
    size_t lo = 0;
    size_t hi = n;
    const bool leaf = node->level == 0;
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      const int c = node->key(mid).compare(key);
      if (c < 0 || (!leaf && c == 0)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (leaf) {
      out.rank += lo;
      if (lo < n && node->key(lo) == key) {
        out.page = std::move(node);
        out.index = lo;
      }
      return out;
    }
    const size_t child = lo == 0 ? 0 : lo - 1;
    for (size_t i = 0; i < child; ++i) out.rank += node->items[i].count;
    id = node->child(child);
  }
  return out;
}

Result<std::uint64_t> AuthenticatedMap::LowerBound(const MapVersion& v, std::string_view key) const {
  VELLUM_ASSIGN_OR_RETURN(Located at, Find(v, key));
  return at.rank;
}

Result<AuthenticatedMap::Located> AuthenticatedMap::ItemAt(const MapVersion& v, std::uint64_t rank) const {
  if (rank >= v.count()) return OutOfRange("rank " + std::to_string(rank) + " beyond the map");
  Located out;
  out.rank = rank;
  NodeId id = v.root;
  while (true) {
    VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> node, options_.nodes->Get(id));
    if (node->level == 0) {
      if (rank >= node->items.size()) return Internal("map page counts are inconsistent");
      out.page = std::move(node);
      out.index = rank;
      return out;
    }
    size_t i = 0;
    while (i + 1 < node->items.size() && rank >= node->items[i].count) rank -= node->items[i++].count;
    id = node->child(i);
  }
}

Result<merkle::MapEntry> AuthenticatedMap::EntryOf(const Located& at, std::uint64_t total) const {
  const MapNode& page = *at.page;
  VELLUM_ASSIGN_OR_RETURN(std::string value, LoadValue(*options_.values, page, at.index, at.rank, total));
  return merkle::MapEntry{std::string(page.key(at.index)), std::move(value), page.items[at.index].value_hash,
                          page.aggregate(at.index), at.rank};
}

namespace {

// Appends the entries of ranks [a, b) under `node` (whose first rank is `offset`).
Status Collect(const NodeStore& nodes, const ValueStore& values, const MapNode& node, std::uint64_t offset,
               std::uint64_t a, std::uint64_t b, std::uint64_t total, std::vector<merkle::MapEntry>* out) {
  std::uint64_t pos = offset;
  for (size_t i = 0; i < node.items.size() && pos < b; ++i) {
    const std::uint64_t end = pos + node.items[i].count;
    if (end > a) {
      if (node.level == 0) {
        VELLUM_ASSIGN_OR_RETURN(std::string value, LoadValue(values, node, i, pos, total));
        out->push_back(merkle::MapEntry{std::string(node.key(i)), std::move(value), node.items[i].value_hash,
                                        node.aggregate(i), pos});
      } else {
        VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> child, nodes.Get(node.child(i)));
        VELLUM_RETURN_IF_ERROR(Collect(nodes, values, *child, pos, a, b, total, out));
      }
    }
    pos = end;
  }
  return Status::Ok();
}

}  // namespace

Status AuthenticatedMap::CollectEntries(const MapVersion& v, std::uint64_t first, std::uint64_t last,
                                        std::vector<merkle::MapEntry>* out) const {
  if (first >= last) return Status::Ok();
  VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> root, options_.nodes->Get(v.root));
  return Collect(*options_.nodes, *options_.values, *root, 0, first, last, v.count(), out);
}

// ---- Reads ----

Result<merkle::MapGetResult> AuthenticatedMap::Get(const MapVersion& v, std::string_view key) const {
  merkle::MapGetResult out;
  out.total = v.count();
  VELLUM_ASSIGN_OR_RETURN(Located at, Find(v, key));
  if (at.page != nullptr) {
    VELLUM_ASSIGN_OR_RETURN(merkle::MapEntry e, EntryOf(at, v.count()));
    out.entry = std::move(e);
  }
  return out;
}

Result<merkle::MapProof> AuthenticatedMap::ProveGet(const MapVersion& v, std::string_view key) const {
  Plan plan;
  VELLUM_ASSIGN_OR_RETURN(Located at, Find(v, key));
  const std::uint64_t pos = at.rank;
  const bool found = at.page != nullptr;
  // Presence needs only the entry; absence needs both neighbours.
  if (pos > 0 && !found) plan.reveal.emplace_back(pos - 1, false);
  if (pos < v.count()) plan.reveal.emplace_back(pos, found);
  return Prove(v, plan);
}

Result<AuthenticatedMap::Plan> AuthenticatedMap::PlanRange(const MapVersion& v, const merkle::MapRangeQuery& q) const {
  const std::uint64_t n = v.count();
  VELLUM_ASSIGN_OR_RETURN(std::uint64_t lo, LowerBound(v, q.lo));
  std::uint64_t hi = n;
  if (q.hi.has_value()) {
    VELLUM_ASSIGN_OR_RETURN(hi, LowerBound(v, *q.hi));
  }
  Plan plan;
  if (!q.reverse) {
    const std::uint64_t end = std::max(hi, lo);
    const std::uint64_t t = lo + std::min(q.limit, end - lo);
    if (lo > 0) plan.reveal.emplace_back(lo - 1, false);
    for (std::uint64_t r = lo; r < t; ++r) plan.reveal.emplace_back(r, true);
    if (t < n) plan.reveal.emplace_back(t, false);
    plan.first = lo;
    plan.last = t;
    if (t < end) plan.next = t;
  } else {
    const std::uint64_t begin = std::min(lo, hi);
    const std::uint64_t s = hi - std::min(q.limit, hi - begin);
    if (s > 0) plan.reveal.emplace_back(s - 1, false);
    for (std::uint64_t r = s; r < hi; ++r) plan.reveal.emplace_back(r, true);
    if (hi < n) plan.reveal.emplace_back(hi, false);
    plan.first = s;
    plan.last = hi;
    if (s > begin) plan.next = s - 1;
  }
  return plan;
}

Result<merkle::MapRangeResult> AuthenticatedMap::Range(const MapVersion& v, const merkle::MapRangeQuery& q) const {
  VELLUM_ASSIGN_OR_RETURN(Plan plan, PlanRange(v, q));
  merkle::MapRangeResult out;
  out.total = v.count();
  out.entries.reserve(plan.last - plan.first);
  VELLUM_RETURN_IF_ERROR(CollectEntries(v, plan.first, plan.last, &out.entries));
  if (q.reverse) std::reverse(out.entries.begin(), out.entries.end());
  if (plan.next.has_value()) {
    VELLUM_ASSIGN_OR_RETURN(Located at, ItemAt(v, *plan.next));
    out.has_more = true;
    out.next_key = std::string(at.page->key(at.index));
  }
  return out;
}

Result<merkle::MapProof> AuthenticatedMap::ProveRange(const MapVersion& v, const merkle::MapRangeQuery& q) const {
  VELLUM_ASSIGN_OR_RETURN(Plan plan, PlanRange(v, q));
  return Prove(v, plan);
}

merkle::MapRangeQuery AuthenticatedMap::Prefix(std::string_view prefix, std::uint64_t limit, bool reverse) {
  merkle::MapRangeQuery q;
  q.lo = std::string(prefix);
  std::string hi(prefix);
  while (!hi.empty() && static_cast<std::uint8_t>(hi.back()) == 0xff) hi.pop_back();
  if (!hi.empty()) {
    hi.back() = static_cast<char>(static_cast<std::uint8_t>(hi.back()) + 1);
    q.hi = std::move(hi);
  }
  q.limit = limit;
  q.reverse = reverse;
  return q;
}

Result<AuthenticatedMap::Plan> AuthenticatedMap::PlanSummary(const MapVersion& v, std::string_view lo,
                                                             const std::optional<std::string>& hi) const {
  const std::uint64_t n = v.count();
  VELLUM_ASSIGN_OR_RETURN(std::uint64_t b, LowerBound(v, lo));
  std::uint64_t e = n;
  if (hi.has_value()) {
    VELLUM_ASSIGN_OR_RETURN(e, LowerBound(v, *hi));
  }
  std::vector<std::uint64_t> ranks;
  for (std::uint64_t r : {b, e}) {
    if (r > 0) ranks.push_back(r - 1);
    if (r < n) ranks.push_back(r);
  }
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  Plan plan;
  for (std::uint64_t r : ranks) plan.reveal.emplace_back(r, false);
  return plan;
}

namespace {
// Adds the aggregate of ranks [a, b) under `node` (whose first rank is offset).
Status AddAggregate(const NodeStore& store, const MapNode& node, std::uint64_t offset, std::uint64_t a,
                    std::uint64_t b, merkle::MapAggregate* out) {
  std::uint64_t pos = offset;
  for (size_t i = 0; i < node.items.size(); ++i) {
    const std::uint64_t end = pos + node.items[i].count;
    if (end > a && pos < b) {
      if (pos >= a && end <= b) {
        out->Add(node.item_aggregate(i));
      } else {
        VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> child, store.Get(node.child(i)));
        VELLUM_RETURN_IF_ERROR(AddAggregate(store, *child, pos, a, b, out));
      }
    }
    pos = end;
    if (pos >= b) break;
  }
  return Status::Ok();
}
}  // namespace

Result<merkle::MapRangeSummary> AuthenticatedMap::Summary(const MapVersion& v, std::string_view lo,
                                                          const std::optional<std::string>& hi) const {
  merkle::MapRangeSummary out;
  out.total = v.count();
  VELLUM_ASSIGN_OR_RETURN(std::uint64_t b, LowerBound(v, lo));
  std::uint64_t e = v.count();
  if (hi.has_value()) {
    VELLUM_ASSIGN_OR_RETURN(e, LowerBound(v, *hi));
  }
  out.first_rank = b;
  if (e <= b) return out;
  out.count = e - b;
  if (options_.kind == merkle::MapKind::kInt64Aggregate) {
    VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> root, options_.nodes->Get(v.root));
    VELLUM_RETURN_IF_ERROR(AddAggregate(*options_.nodes, *root, 0, b, e, &out.aggregate));
  }
  return out;
}

Result<merkle::MapProof> AuthenticatedMap::ProveSummary(const MapVersion& v, std::string_view lo,
                                                        const std::optional<std::string>& hi) const {
  VELLUM_ASSIGN_OR_RETURN(Plan plan, PlanSummary(v, lo, hi));
  return Prove(v, plan);
}

Result<merkle::MapRankResult> AuthenticatedMap::AtRank(const MapVersion& v, std::uint64_t rank) const {
  merkle::MapRankResult out;
  out.total = v.count();
  if (rank < v.count()) {
    VELLUM_ASSIGN_OR_RETURN(Located at, ItemAt(v, rank));
    VELLUM_ASSIGN_OR_RETURN(merkle::MapEntry e, EntryOf(at, v.count()));
    out.entry = std::move(e);
  }
  return out;
}

Result<merkle::MapProof> AuthenticatedMap::ProveRank(const MapVersion& v, std::uint64_t rank) const {
  Plan plan;
  if (rank < v.count()) plan.reveal.emplace_back(rank, true);
  return Prove(v, plan);
}

// ---- Proof generation ----

namespace {

using Target = std::pair<std::uint64_t, bool>;

class ProofWriter {
 public:
  ProofWriter(const NodeStore& nodes, const ValueStore& values, std::uint64_t total, std::vector<MapProofNode>* out)
      : nodes_(nodes), values_(values), total_(total), out_(out) {}

  Status Page(const MapNode& page, std::uint64_t offset, std::span<const Target> targets) {
    std::vector<std::uint64_t> starts(page.items.size() + 1);
    starts[0] = offset;
    for (size_t i = 0; i < page.items.size(); ++i) starts[i + 1] = starts[i] + page.items[i].count;
    return Span(page, starts, 0, page.items.size(), 0, targets);
  }

 private:
  // Items [a, b) of `page`, whose in-page binary tree node has pre-order index
  // `idx` among the page's inner digests.
  Status Span(const MapNode& page, const std::vector<std::uint64_t>& starts, size_t a, size_t b, size_t idx,
              std::span<const Target> targets) {
    const std::uint64_t lo = starts[a];
    const std::uint64_t hi = starts[b];
    auto first = std::lower_bound(targets.begin(), targets.end(), lo,
                                  [](const Target& t, std::uint64_t r) { return t.first < r; });
    auto last = std::lower_bound(first, targets.end(), hi,
                                 [](const Target& t, std::uint64_t r) { return t.first < r; });
    std::span<const Target> sub(first, last);
    if (sub.empty()) {
      MapProofNode n;
      n.type = MapProofNode::Type::kPruned;
      n.digest = b - a == 1 ? page.item_digest(a) : page.InnerDigest(idx, a, b);
      out_->push_back(std::move(n));
      return Status::Ok();
    }
    if (b - a == 1) {
      if (page.level > 0) {
        VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> child, nodes_.Get(page.child(a)));
        return Page(*child, lo, sub);
      }
      MapProofNode n;
      n.key = std::string(page.key(a));
      n.value_hash = page.items[a].value_hash;
      n.aggregate = page.aggregate(a);
      if (sub.front().second) {
        n.type = MapProofNode::Type::kEntryWithValue;
        VELLUM_ASSIGN_OR_RETURN(n.value, LoadValue(values_, page, a, lo, total_));
      } else {
        n.type = MapProofNode::Type::kEntry;
      }
      out_->push_back(std::move(n));
      return Status::Ok();
    }
    MapProofNode inner;
    inner.type = MapProofNode::Type::kInner;
    out_->push_back(std::move(inner));
    const size_t k = merkle::MapPageSplit(b - a);
    VELLUM_RETURN_IF_ERROR(Span(page, starts, a, a + k, idx + 1, sub));
    return Span(page, starts, a + k, b, idx + k, sub);
  }

  const NodeStore& nodes_;
  const ValueStore& values_;
  const std::uint64_t total_;
  std::vector<MapProofNode>* out_;
};

}  // namespace

Result<merkle::MapProof> AuthenticatedMap::Prove(const MapVersion& v, const Plan& plan) const {
  MapProof proof;
  proof.kind = options_.kind;
  if (v.root == kNoNode) return proof;
  VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> root, options_.nodes->Get(v.root));
  ProofWriter w(*options_.nodes, *options_.values, v.count(), &proof.nodes);
  VELLUM_RETURN_IF_ERROR(w.Page(*root, 0, plan.reveal));
  return proof;
}

// ---- Checks ----

namespace {

struct CheckState {
  const AuthenticatedMap* map;
  const NodeStore* store;
  size_t max;
  std::optional<std::string> last_key;
  std::optional<std::uint64_t> leaf_depth;
  MapShape shape;
};

Status CheckPage(CheckState& st, NodeId id, std::uint64_t depth, bool is_root, const MapNode* parent,
                 size_t parent_index) {
  VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> node, st.store->Get(id));
  const std::string where = "page " + std::to_string(id) + ": ";
  const size_t n = node->items.size();
  st.shape.pages++;
  st.shape.max_page_bytes = std::max<std::uint64_t>(st.shape.max_page_bytes, EncodedMapNodeSize(*node));
  if (n == 0 || n > st.max) return Internal(where + "item count " + std::to_string(n) + " out of bounds");
  if (!is_root && n < st.max / 2) return Internal(where + "underfull (" + std::to_string(n) + " items)");
  if (is_root && node->level > 0 && n < 2) return Internal(where + "internal root with one child");
  if (node->kind != st.map->kind()) return Internal(where + "wrong kind");
  // Against the reference page hashing, independent of Seal()'s hash reuse.
  if (node->aggregates.size() != (node->has_aggregates() ? n : 0)) return Internal(where + "aggregates do not match the items");
  std::vector<MapDigest> digests;
  for (size_t i = 0; i < n; ++i) digests.push_back(node->item_digest(i));
  std::vector<MapDigest> inner;
  const MapDigest digest = merkle::MapPageDigest(node->kind, digests, &inner);
  bool inner_ok = inner.size() == node->inner.size();
  for (size_t i = 0; inner_ok && i < inner.size(); ++i) inner_ok = inner[i].hash == node->inner[i];
  if (!(digest == node->digest) || !inner_ok) return Internal(where + "stale digest");
  if (parent != nullptr &&
      (!(parent->item_digest(parent_index) == node->digest) || parent->key(parent_index) != node->key(0))) {
    return Internal(where + "parent reference does not match");
  }
  if (node->level == 0) {
    if (st.leaf_depth.has_value() && *st.leaf_depth != depth) return Internal(where + "leaves at unequal depth");
    st.leaf_depth = depth;
    for (size_t i = 0; i < n; ++i) {
      const std::string_view key = node->key(i);
      if (st.last_key.has_value() && !(*st.last_key < key)) return Internal(where + "keys out of order");
      st.last_key = std::string(key);
      if (node->value_ref(i) == kNoValue) return Internal(where + "entry without a value ref");
      if (!(merkle::MapLeafDigest(node->kind, key, node->items[i].value_hash, node->aggregate(i)) ==
            node->item_digest(i))) {
        return Internal(where + "stale entry digest");
      }
    }
    return Status::Ok();
  }
  for (size_t i = 0; i < n; ++i) {
    VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> child, st.store->Get(node->child(i)));
    if (child->level + 1 != node->level) return Internal(where + "child at the wrong level");
    VELLUM_RETURN_IF_ERROR(CheckPage(st, node->child(i), depth + 1, false, node.get(), i));
  }
  return Status::Ok();
}

}  // namespace

Status AuthenticatedMap::CheckInvariants(const MapVersion& v) const { return Shape(v).status(); }

Result<MapShape> AuthenticatedMap::Shape(const MapVersion& v) const {
  CheckState st{this, options_.nodes, options_.max_page_items, std::nullopt, std::nullopt, {}};
  if (v.root == kNoNode) {
    if (v.count() != 0 || v.root_hash != merkle::MapRootHash(options_.kind, nullptr)) {
      return Internal("empty version with a non-empty digest");
    }
    return st.shape;
  }
  VELLUM_ASSIGN_OR_RETURN(std::shared_ptr<const MapNode> root, options_.nodes->Get(v.root));
  if (!(root->digest == v.digest) || merkle::MapRootHash(options_.kind, &root->digest) != v.root_hash) {
    return Internal("version handle does not match its root page");
  }
  VELLUM_RETURN_IF_ERROR(CheckPage(st, v.root, 1, true, nullptr, 0));
  st.shape.height = st.leaf_depth.value_or(0);
  return st.shape;
}

}  // namespace vellum::indexes
