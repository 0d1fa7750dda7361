// Indexed, immutable sets of facts. A FactSet is what the engine evaluates against: every fact is a
// tuple of Values filed under its predicate (name symbol, arity). Lookups never allocate: a fully bound
// tuple is one hash probe, a partially bound one walks the row list of its most selective bound
// argument.
//
// Writes never copy the world: a FactSet is an immutable shared base plus a small immutable delta
// (facts added, facts of the base deleted). Apply() builds a new delta that shares the base, and folds
// the delta into a new base only when it has grown past a fraction of the base (as an LSM tree does).
// Every FactSet carries a revision number.
//
// A fact may carry an expiry time. Expiry is kept beside the tables, per predicate, only for facts
// that have one, so sets without expiring facts pay nothing; readers pass their request time to
// RelationView::Live. Expired facts stay stored (and counted by size()) until deleted.
//
// Thread safety: FactSet, Table and RelationView are immutable; any number of threads may read them.
#ifndef MANDATE_FACTS_FACT_SET_H_
#define MANDATE_FACTS_FACT_SET_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "facts/value.h"

namespace mandate::facts {

struct PredicateKey {
  SymbolId name = kNoSymbol;
  uint32_t arity = 0;
  friend bool operator==(const PredicateKey&, const PredicateKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const PredicateKey& k) {
    return H::combine(std::move(h), k.name, k.arity);
  }
};

uint64_t HashValue(const Value& v);
uint64_t HashTuple(const Value* tuple, uint32_t arity);

namespace internal {
// Open-addressing hash index of 64-bit slots: the high 32 bits are a hash tag, the low 32 bits a
// payload + 1 (0 marks an empty slot). What a payload means and how keys compare is the owner's
// business; the index only stores and probes.
class SlotIndex {
 public:
  void Reset(size_t expected);  // capacity for `expected` entries at load <= 0.7
  size_t capacity() const { return slots_.size(); }
  size_t size() const { return size_; }
  // Payload of the entry with this hash for which eq(payload) holds, or -1.
  template <typename Eq>
  int64_t Find(uint64_t hash, Eq&& eq) const {
    if (slots_.empty()) return -1;
    const uint32_t tag = static_cast<uint32_t>(hash >> 32);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const uint64_t s = slots_[i];
      if (s == 0) return -1;
      if (static_cast<uint32_t>(s >> 32) == tag && eq(static_cast<uint32_t>(s) - 1)) {
        return static_cast<uint32_t>(s) - 1;
      }
    }
  }
  // Slot position of the matching entry, or of the empty slot where it would go.
  template <typename Eq>
  size_t Probe(uint64_t hash, Eq&& eq) const {
    const uint32_t tag = static_cast<uint32_t>(hash >> 32);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const uint64_t s = slots_[i];
      if (s == 0 || (static_cast<uint32_t>(s >> 32) == tag && eq(static_cast<uint32_t>(s) - 1))) return i;
    }
  }
  bool occupied(size_t pos) const { return slots_[pos] != 0; }
  uint32_t payload(size_t pos) const { return static_cast<uint32_t>(slots_[pos]) - 1; }
  void Set(size_t pos, uint64_t hash, uint32_t payload);  // pos from Probe()
  // Replaces the payload of an occupied slot.
  void Update(size_t pos, uint32_t payload) {
    slots_[pos] = (slots_[pos] & 0xffffffff00000000ull) | (uint64_t{payload} + 1);
  }
  // Linear probing stays short up to a load of 0.7 because most mismatches are settled by the tag.
  bool NeedsGrow() const { return (size_ + 1) * 10 > slots_.size() * 7; }
  // Rehashes into twice the capacity; hash_of(payload) recomputes each entry's hash.
  void Grow(absl::FunctionRef<uint64_t(uint32_t)> hash_of);
  size_t MemoryBytes() const { return slots_.capacity() * sizeof(uint64_t); }

 private:
  std::vector<uint64_t> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};
}  // namespace internal

// Row numbers of a Table that share one value at one position. A value held by a single row is
// stored in the index slot itself, so this is a small value type rather than a span.
struct RowList {
  const uint32_t* data = nullptr;  // null: the single row is `single`
  uint32_t count = 0;
  uint32_t single = 0;
  size_t size() const { return count; }
  bool empty() const { return count == 0; }
  uint32_t operator[](size_t i) const { return data != nullptr ? data[i] : single; }
};

// The facts of one predicate: rows of `arity` Values, a tuple index for existence probes and one
// value index per argument position. Immutable once built (see TableBuilder).
class Table {
 public:
  uint32_t arity() const { return arity_; }
  size_t size() const { return rows_; }
  const Value* row(uint32_t i) const { return values_.data() + size_t{i} * arity_; }
  // Row number of `tuple` (arity values), or -1.
  int64_t Find(const Value* tuple) const;
  bool Contains(const Value* tuple) const { return Find(tuple) >= 0; }
  // Rows whose argument `pos` equals `v`, in row order. Valid as long as the table.
  RowList RowsWith(uint32_t pos, const Value& v) const;
  size_t MemoryBytes() const;

 private:
  friend class TableBuilder;
  uint32_t arity_ = 0;
  uint32_t rows_ = 0;
  std::vector<Value> values_;
  internal::SlotIndex tuples_;  // payload = row
  // Per position: payload = row | kSingle when one row has the value, else the offset in postings_
  // of [count, row, row, ...].
  std::vector<internal::SlotIndex> positions_;
  std::vector<uint32_t> postings_;
};

// Builds a Table: rows are appended (duplicates ignored) and removed, then Build() compacts them and
// indexes every position.
class TableBuilder {
 public:
  explicit TableBuilder(uint32_t arity) : arity_(arity) {}
  // Starts from the rows of `t` (all of them).
  explicit TableBuilder(const Table& t);

  uint32_t arity() const { return arity_; }
  size_t live() const { return live_; }
  // Adds a row; false when it was already present.
  bool Insert(const Value* tuple);
  // Removes a row; false when it was not present.
  bool Remove(const Value* tuple);
  bool Contains(const Value* tuple) const;
  // Live rows, in insertion order. fn returns false to stop.
  void ForEach(absl::FunctionRef<bool(const Value*)> fn) const;
  std::shared_ptr<const Table> Build() const;

 private:
  uint64_t RowHash(uint32_t r) const { return HashTuple(values_.data() + size_t{r} * arity_, arity_); }
  int64_t FindRow(const Value* tuple, uint64_t hash) const;

  uint32_t arity_;
  std::vector<Value> values_;
  std::vector<bool> removed_;
  uint32_t rows_ = 0;  // rows appended, including removed ones
  size_t live_ = 0;
  internal::SlotIndex index_;  // payload = row (removed rows stay indexed and are re-used on insert)
};

// Expiry times of the facts of one predicate that have one (most facts have none and are not here).
// A fact is visible to a request whose time is before its expiry. Immutable.
class ExpiryTable {
 public:
  // Whether `row`, a fact of this predicate, is visible at `now` (Unix seconds). One hash probe, and
  // none while `now` is before the earliest expiry.
  bool Live(const Value* row, int64_t now) const {
    if (now < earliest_) return true;
    const int64_t r = tuples_->Find(row);
    return r < 0 || now < at_[r];
  }
  // The expiry of `row`, or -1 when it has none.
  int64_t ExpiresAt(const Value* row) const {
    const int64_t r = tuples_->Find(row);
    return r < 0 ? -1 : at_[r];
  }
  size_t size() const { return at_.size(); }
  size_t MemoryBytes() const { return tuples_->MemoryBytes() + at_.capacity() * sizeof(int64_t); }

 private:
  friend class FactSet;
  static std::shared_ptr<const ExpiryTable> Build(const absl::flat_hash_map<std::vector<Value>, int64_t>& m,
                                                  uint32_t arity);
  std::shared_ptr<const Table> tuples_;
  std::vector<int64_t> at_;  // by row of tuples_
  int64_t earliest_ = INT64_MAX;
};

// The facts of one predicate in one FactSet: base minus deleted, plus added. Pointers may be null.
// `expiry` is null when no fact of the predicate expires; readers that honour expiry filter rows
// with Live().
struct RelationView {
  const Table* base = nullptr;
  const Table* deleted = nullptr;
  const Table* added = nullptr;
  const ExpiryTable* expiry = nullptr;

  bool Live(const Value* row, int64_t now) const { return expiry == nullptr || expiry->Live(row, now); }

  bool empty() const { return (base == nullptr || base->size() == 0) && (added == nullptr || added->size() == 0); }
  // Whether the fully bound `tuple` is present.
  bool Contains(const Value* tuple) const;
  // Calls fn for every row matching `pattern` (arity Values; invalid ones are unbound) until fn returns
  // false. Returns false when stopped. Never allocates.
  template <typename Fn>
  bool ForEach(const Value* pattern, Fn&& fn) const;
  // Number of rows (an upper bound when deletes are pending).
  size_t size() const;
};

// One change for FactSet::Apply. Inserts carry a full tuple. Deletes carry one ArgPattern per argument.
struct ArgPattern {
  SymbolId type = kNoSymbol;  // kNoSymbol = any type
  bool has_value = false;     // false = any value of the type
  uint64_t bits = 0;          // Value::bits to match when has_value
  bool Matches(const Value& v) const {
    return (type == kNoSymbol || v.type == type) && (!has_value || v.bits == bits);
  }
};
struct FactChange {
  enum class Kind { kInsert, kDelete };
  Kind kind = Kind::kInsert;
  PredicateKey key;
  std::vector<Value> tuple;          // kInsert: key.arity values
  std::vector<ArgPattern> pattern;   // kDelete: key.arity patterns
  // kInsert: the fact is invisible from this Unix time on. Inserting a fact that is present keeps
  // the later expiry of the two (none = never): an insert never shortens what another one granted.
  std::optional<int64_t> expires_at = std::nullopt;
};

class FactSet {
 public:
  FactSet();  // empty, revision 0
  // A FactSet holding exactly `facts` (duplicates dropped) at `revision`.
  static FactSet FromFacts(const std::vector<std::pair<PredicateKey, std::vector<Value>>>& facts,
                           uint64_t revision = 0);

  uint64_t revision() const { return revision_; }
  size_t size() const { return size_; }
  RelationView Relation(const PredicateKey& key) const;
  // Every predicate that has (or had) facts, in no particular order.
  std::vector<PredicateKey> Predicates() const;

  // Applies `changes` in order and returns the result at revision()+1, or *this unchanged when no
  // change had an effect (inserting present facts, deleting absent ones). `*changed` says which.
  FactSet Apply(const std::vector<FactChange>& changes, bool* changed = nullptr) const;
  // The same facts at another revision.
  FactSet WithRevision(uint64_t revision) const;

  // Number of facts held in the delta (added + deleted); the rest is in the shared base.
  size_t delta_size() const;
  size_t MemoryBytes() const;

  // Whether any fact has an expiry (then requests need their time to read facts).
  bool has_expiry() const { return expiry_ != nullptr; }
  // The expiry of a present fact, or nullopt when it has none.
  std::optional<int64_t> ExpiresAt(const PredicateKey& key, const Value* tuple) const;

  using Layer = absl::flat_hash_map<PredicateKey, std::shared_ptr<const Table>>;
  using ExpiryLayer = absl::flat_hash_map<PredicateKey, std::shared_ptr<const ExpiryTable>>;

 private:
  std::shared_ptr<const Layer> base_;
  std::shared_ptr<const Layer> added_;
  std::shared_ptr<const Layer> deleted_;
  std::shared_ptr<const ExpiryLayer> expiry_;  // null when no fact expires
  uint64_t revision_ = 0;
  size_t size_ = 0;
};

// ---- inline implementation ---------------------------------------------------------------------

namespace internal {
// Walks the rows of `t` matching `pattern` using the most selective bound position. `skip` filters rows.
template <typename Fn, typename Skip>
bool ScanTable(const Table& t, const Value* pattern, Skip&& skip, Fn&& fn) {
  const uint32_t n = t.arity();
  RowList best;
  bool have_best = false;
  for (uint32_t p = 0; p < n; ++p) {
    if (!pattern[p].valid()) continue;
    RowList rows = t.RowsWith(p, pattern[p]);
    if (!have_best || rows.size() < best.size()) {
      best = rows;
      have_best = true;
      if (rows.empty()) return true;
      if (rows.size() == 1) break;  // cannot do better
    }
  }
  auto matches = [&](const Value* row) {
    for (uint32_t p = 0; p < n; ++p) {
      if (pattern[p].valid() && pattern[p] != row[p]) return false;
    }
    return true;
  };
  if (have_best) {
    for (size_t i = 0, e = best.size(); i < e; ++i) {
      const Value* row = t.row(best[i]);
      if (!matches(row) || skip(row)) continue;
      if (!fn(row)) return false;
    }
    return true;
  }
  for (uint32_t r = 0, e = static_cast<uint32_t>(t.size()); r < e; ++r) {
    const Value* row = t.row(r);
    if (skip(row)) continue;
    if (!fn(row)) return false;
  }
  return true;
}
}  // namespace internal

inline bool RelationView::Contains(const Value* tuple) const {
  if (base != nullptr && base->Contains(tuple)) return deleted == nullptr || !deleted->Contains(tuple);
  return added != nullptr && added->Contains(tuple);
}

template <typename Fn>
bool RelationView::ForEach(const Value* pattern, Fn&& fn) const {
  if (base != nullptr && base->size() != 0) {
    bool ok;
    if (deleted != nullptr && deleted->size() != 0) {
      ok = internal::ScanTable(*base, pattern, [this](const Value* row) { return deleted->Contains(row); }, fn);
    } else {
      ok = internal::ScanTable(*base, pattern, [](const Value*) { return false; }, fn);
    }
    if (!ok) return false;
  }
  if (added != nullptr && added->size() != 0) {
    return internal::ScanTable(*added, pattern, [](const Value*) { return false; }, fn);
  }
  return true;
}

}  // namespace mandate::facts

#endif  // MANDATE_FACTS_FACT_SET_H_
