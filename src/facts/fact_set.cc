#include "facts/fact_set.h"

#include <algorithm>
#include <bit>

#include "absl/container/flat_hash_set.h"

namespace mandate::facts {
namespace {

constexpr uint32_t kSingle = 0x80000000u;  // position index payload flag: the payload is a row

inline uint64_t Mix(uint64_t x) {
  // splitmix64 finalizer: cheap and good enough for open addressing on interned ids.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

bool TupleEq(const Value* a, const Value* b, uint32_t arity) {
  for (uint32_t i = 0; i < arity; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

}  // namespace

uint64_t HashValue(const Value& v) { return Mix(v.bits * 0x9e3779b97f4a7c15ull + v.type); }

uint64_t HashTuple(const Value* tuple, uint32_t arity) {
  uint64_t h = 0x243f6a8885a308d3ull + arity;
  for (uint32_t i = 0; i < arity; ++i) h = Mix(h ^ (tuple[i].bits * 0x9e3779b97f4a7c15ull + tuple[i].type));
  return h;
}

// ---- SlotIndex ---------------------------------------------------------------------------------

namespace internal {

void SlotIndex::Reset(size_t expected) {
  size_t cap = 8;
  while (cap * 7 < expected * 10) cap *= 2;
  slots_.assign(cap, 0);
  mask_ = cap - 1;
  size_ = 0;
}

void SlotIndex::Set(size_t pos, uint64_t hash, uint32_t payload) {
  slots_[pos] = (hash & 0xffffffff00000000ull) | (uint64_t{payload} + 1);
  ++size_;
}

void SlotIndex::Grow(absl::FunctionRef<uint64_t(uint32_t)> hash_of) {
  std::vector<uint64_t> old = std::move(slots_);
  const size_t cap = std::max<size_t>(16, old.size() * 2);
  slots_.assign(cap, 0);
  mask_ = cap - 1;
  for (uint64_t s : old) {
    if (s == 0) continue;
    const uint64_t h = hash_of(static_cast<uint32_t>(s) - 1);
    size_t i = h & mask_;
    while (slots_[i] != 0) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

}  // namespace internal

// ---- Table -------------------------------------------------------------------------------------

int64_t Table::Find(const Value* tuple) const {
  return tuples_.Find(HashTuple(tuple, arity_),
                      [&](uint32_t r) { return TupleEq(row(r), tuple, arity_); });
}

RowList Table::RowsWith(uint32_t pos, const Value& v) const {
  const internal::SlotIndex& index = positions_[pos];
  const int64_t found = index.Find(HashValue(v), [&](uint32_t payload) {
    const uint32_t r = (payload & kSingle) ? (payload & ~kSingle) : postings_[payload + 1];
    return row(r)[pos] == v;
  });
  if (found < 0) return {};
  const uint32_t payload = static_cast<uint32_t>(found);
  if (payload & kSingle) return RowList{nullptr, 1, payload & ~kSingle};
  return RowList{&postings_[payload + 1], postings_[payload], 0};
}

size_t Table::MemoryBytes() const {
  size_t n = values_.capacity() * sizeof(Value) + tuples_.MemoryBytes() + postings_.capacity() * sizeof(uint32_t);
  for (const auto& p : positions_) n += p.MemoryBytes();
  return n;
}

// ---- TableBuilder ------------------------------------------------------------------------------

TableBuilder::TableBuilder(const Table& t) : arity_(t.arity()) {
  values_.reserve(t.values_.size());
  index_.Reset(t.size());
  for (uint32_t r = 0; r < t.size(); ++r) Insert(t.row(r));
}

int64_t TableBuilder::FindRow(const Value* tuple, uint64_t hash) const {
  return index_.Find(hash, [&](uint32_t r) { return TupleEq(values_.data() + size_t{r} * arity_, tuple, arity_); });
}

bool TableBuilder::Insert(const Value* tuple) {
  const uint64_t h = HashTuple(tuple, arity_);
  if (index_.capacity() == 0 || index_.NeedsGrow()) {
    if (index_.capacity() == 0) {
      index_.Reset(8);
    } else {
      index_.Grow([this](uint32_t r) { return RowHash(r); });
    }
  }
  const size_t pos =
      index_.Probe(h, [&](uint32_t r) { return TupleEq(values_.data() + size_t{r} * arity_, tuple, arity_); });
  if (index_.occupied(pos)) {
    const uint32_t r = index_.payload(pos);
    if (!removed_[r]) return false;
    removed_[r] = false;
    ++live_;
    return true;
  }
  values_.insert(values_.end(), tuple, tuple + arity_);
  removed_.push_back(false);
  index_.Set(pos, h, rows_++);
  ++live_;
  return true;
}

bool TableBuilder::Remove(const Value* tuple) {
  const int64_t r = FindRow(tuple, HashTuple(tuple, arity_));
  if (r < 0 || removed_[r]) return false;
  removed_[r] = true;
  --live_;
  return true;
}

bool TableBuilder::Contains(const Value* tuple) const {
  const int64_t r = FindRow(tuple, HashTuple(tuple, arity_));
  return r >= 0 && !removed_[r];
}

void TableBuilder::ForEach(absl::FunctionRef<bool(const Value*)> fn) const {
  for (uint32_t r = 0; r < rows_; ++r) {
    if (!removed_[r] && !fn(values_.data() + size_t{r} * arity_)) return;
  }
}

std::shared_ptr<const Table> TableBuilder::Build() const {
  auto t = std::make_shared<Table>();
  t->arity_ = arity_;
  t->values_.reserve(live_ * arity_);
  for (uint32_t r = 0; r < rows_; ++r) {
    if (removed_[r]) continue;
    const Value* row = values_.data() + size_t{r} * arity_;
    t->values_.insert(t->values_.end(), row, row + arity_);
  }
  const uint32_t n = static_cast<uint32_t>(live_);
  t->rows_ = n;
  t->tuples_.Reset(n);
  for (uint32_t r = 0; r < n; ++r) {
    const uint64_t h = HashTuple(t->row(r), arity_);
    t->tuples_.Set(t->tuples_.Probe(h, [](uint32_t) { return false; }), h, r);
  }
  // Per position: group rows by value (pass 1), then lay out postings for values held by several rows.
  t->positions_.resize(arity_);
  std::vector<uint32_t> row_group(n);
  std::vector<uint32_t> group_first, group_count;
  for (uint32_t p = 0; p < arity_; ++p) {
    group_first.clear();
    group_count.clear();
    internal::SlotIndex groups;
    groups.Reset(16);
    for (uint32_t r = 0; r < n; ++r) {
      const Value& v = t->row(r)[p];
      if (groups.NeedsGrow()) {
        groups.Grow([&](uint32_t g) { return HashValue(t->row(group_first[g])[p]); });
      }
      const uint64_t h = HashValue(v);
      const size_t pos = groups.Probe(h, [&](uint32_t g) { return t->row(group_first[g])[p] == v; });
      if (groups.occupied(pos)) {
        const uint32_t g = groups.payload(pos);
        row_group[r] = g;
        ++group_count[g];
      } else {
        const uint32_t g = static_cast<uint32_t>(group_first.size());
        groups.Set(pos, h, g);
        group_first.push_back(r);
        group_count.push_back(1);
        row_group[r] = g;
      }
    }
    // Values held by several rows get postings_[off] = count followed by the rows, in row order.
    std::vector<uint32_t> group_off(group_first.size(), 0);
    for (size_t g = 0; g < group_first.size(); ++g) {
      if (group_count[g] < 2) continue;
      group_off[g] = static_cast<uint32_t>(t->postings_.size());
      t->postings_.push_back(group_count[g]);
      t->postings_.resize(t->postings_.size() + group_count[g]);
    }
    std::vector<uint32_t> fill(group_first.size(), 1);
    for (uint32_t r = 0; r < n; ++r) {
      const uint32_t g = row_group[r];
      if (group_count[g] >= 2) t->postings_[group_off[g] + fill[g]++] = r;
    }
    internal::SlotIndex& index = t->positions_[p];
    index.Reset(group_first.size());
    for (size_t g = 0; g < group_first.size(); ++g) {
      const uint64_t h = HashValue(t->row(group_first[g])[p]);
      const uint32_t payload = group_count[g] >= 2 ? group_off[g] : (group_first[g] | kSingle);
      index.Set(index.Probe(h, [](uint32_t) { return false; }), h, payload);
    }
  }
  return t;
}

// ---- RelationView ------------------------------------------------------------------------------

size_t RelationView::size() const {
  return (base != nullptr ? base->size() : 0) + (added != nullptr ? added->size() : 0);
}

// ---- FactSet -----------------------------------------------------------------------------------

namespace {

const Table* Lookup(const FactSet::Layer& layer, const PredicateKey& key) {
  auto it = layer.find(key);
  return it == layer.end() ? nullptr : it->second.get();
}

size_t LayerSize(const FactSet::Layer& layer) {
  size_t n = 0;
  for (const auto& [key, table] : layer) n += table->size();
  return n;
}

using ExpiryMap = absl::flat_hash_map<std::vector<Value>, int64_t>;

// The delta of one predicate while a write is being applied.
struct Work {
  const Table* base = nullptr;
  std::unique_ptr<TableBuilder> added;
  std::unique_ptr<TableBuilder> deleted;
  // Expiry of the predicate's facts, copied from the current table when the write touches expiry.
  std::unique_ptr<ExpiryMap> expiry;
};


}  // namespace

FactSet::FactSet()
    : base_(std::make_shared<Layer>()), added_(std::make_shared<Layer>()), deleted_(std::make_shared<Layer>()) {}

FactSet FactSet::FromFacts(const std::vector<std::pair<PredicateKey, std::vector<Value>>>& facts,
                           uint64_t revision) {
  absl::flat_hash_map<PredicateKey, std::unique_ptr<TableBuilder>> builders;
  for (const auto& [key, tuple] : facts) {
    auto& b = builders[key];
    if (b == nullptr) b = std::make_unique<TableBuilder>(key.arity);
    b->Insert(tuple.data());
  }
  auto base = std::make_shared<Layer>();
  FactSet out;
  for (auto& [key, b] : builders) {
    out.size_ += b->live();
    (*base)[key] = b->Build();
  }
  out.base_ = std::move(base);
  out.revision_ = revision;
  return out;
}

RelationView FactSet::Relation(const PredicateKey& key) const {
  RelationView v;
  v.base = Lookup(*base_, key);
  if (!added_->empty()) v.added = Lookup(*added_, key);
  if (!deleted_->empty()) v.deleted = Lookup(*deleted_, key);
  if (expiry_ != nullptr) {
    auto it = expiry_->find(key);
    if (it != expiry_->end()) v.expiry = it->second.get();
  }
  return v;
}

std::optional<int64_t> FactSet::ExpiresAt(const PredicateKey& key, const Value* tuple) const {
  if (expiry_ == nullptr) return std::nullopt;
  auto it = expiry_->find(key);
  if (it == expiry_->end()) return std::nullopt;
  const int64_t at = it->second->ExpiresAt(tuple);
  return at < 0 ? std::nullopt : std::optional<int64_t>(at);
}

std::shared_ptr<const ExpiryTable> ExpiryTable::Build(const absl::flat_hash_map<std::vector<Value>, int64_t>& m,
                                                      uint32_t arity) {
  auto out = std::make_shared<ExpiryTable>();
  TableBuilder b(arity);
  out->at_.reserve(m.size());
  for (const auto& [tuple, at] : m) {
    b.Insert(tuple.data());  // a fresh builder without removals keeps insertion order in Build()
    out->at_.push_back(at);
    out->earliest_ = std::min(out->earliest_, at);
  }
  out->tuples_ = b.Build();
  return out;
}

std::vector<PredicateKey> FactSet::Predicates() const {
  absl::flat_hash_set<PredicateKey> keys;
  for (const auto& [k, t] : *base_) keys.insert(k);
  for (const auto& [k, t] : *added_) keys.insert(k);
  return {keys.begin(), keys.end()};
}

size_t FactSet::delta_size() const { return LayerSize(*added_) + LayerSize(*deleted_); }

size_t FactSet::MemoryBytes() const {
  size_t n = 0;
  for (const Layer* layer : {base_.get(), added_.get(), deleted_.get()}) {
    for (const auto& [k, t] : *layer) n += t->MemoryBytes();
  }
  if (expiry_ != nullptr) {
    for (const auto& [k, t] : *expiry_) n += t->MemoryBytes();
  }
  return n;
}

FactSet FactSet::WithRevision(uint64_t revision) const {
  FactSet out = *this;
  out.revision_ = revision;
  return out;
}

FactSet FactSet::Apply(const std::vector<FactChange>& changes, bool* changed) const {
  absl::flat_hash_map<PredicateKey, Work> work;
  auto work_for = [&](const PredicateKey& key) -> Work& {
    auto [it, inserted] = work.try_emplace(key);
    Work& w = it->second;
    if (inserted) {
      w.base = Lookup(*base_, key);
      const Table* a = Lookup(*added_, key);
      const Table* d = Lookup(*deleted_, key);
      w.added = a != nullptr ? std::make_unique<TableBuilder>(*a) : std::make_unique<TableBuilder>(key.arity);
      w.deleted = d != nullptr ? std::make_unique<TableBuilder>(*d) : std::make_unique<TableBuilder>(key.arity);
    }
    return w;
  };

  // The predicate's expiry map, loaded on first use; null when it has none and `create` is false.
  auto expiry_for = [&](const PredicateKey& key, Work& w, bool create) -> ExpiryMap* {
    if (w.expiry != nullptr) return w.expiry.get();
    const ExpiryTable* current = nullptr;
    if (expiry_ != nullptr) {
      auto it = expiry_->find(key);
      if (it != expiry_->end()) current = it->second.get();
    }
    if (current == nullptr && !create) return nullptr;
    w.expiry = std::make_unique<ExpiryMap>();
    if (current != nullptr) {
      for (uint32_t r = 0; r < current->tuples_->size(); ++r) {
        const Value* row = current->tuples_->row(r);
        w.expiry->emplace(std::vector<Value>(row, row + key.arity), current->at_[r]);
      }
    }
    return w.expiry.get();
  };

  bool any = false;
  ptrdiff_t size_delta = 0;
  std::vector<Value> pattern;
  std::vector<std::vector<Value>> doomed;
  for (const FactChange& c : changes) {
    Work& w = work_for(c.key);
    const uint32_t n = c.key.arity;
    if (c.kind == FactChange::Kind::kInsert) {
      if (c.tuple.size() != n) continue;
      const Value* t = c.tuple.data();
      const bool in_added = w.added->Contains(t);
      const bool in_base = !in_added && w.base != nullptr && w.base->Contains(t);
      if (in_added || (in_base && !w.deleted->Contains(t))) {
        // Present: it stays visible as long as any insert keeps it (no expiry = forever).
        ExpiryMap* m = expiry_for(c.key, w, false);
        auto it = m != nullptr ? m->find(c.tuple) : ExpiryMap::iterator();
        if (m == nullptr || it == m->end()) continue;  // present without expiry: nothing to extend
        if (!c.expires_at) {
          m->erase(it);
          any = true;
        } else if (*c.expires_at > it->second) {
          it->second = *c.expires_at;
          any = true;
        }
        continue;
      }
      if (in_base) {
        w.deleted->Remove(t);
      } else {
        w.added->Insert(t);
      }
      if (c.expires_at) (*expiry_for(c.key, w, true))[c.tuple] = *c.expires_at;
      any = true;
      ++size_delta;
      continue;
    }
    ExpiryMap* expiry = expiry_for(c.key, w, false);  // deleted facts lose their expiry
    if (c.pattern.size() != n) continue;
    auto matches = [&](const Value* row) {
      for (uint32_t i = 0; i < n; ++i) {
        if (!c.pattern[i].Matches(row[i])) return false;
      }
      return true;
    };
    pattern.assign(n, Value{});
    for (uint32_t i = 0; i < n; ++i) {
      if (c.pattern[i].type != kNoSymbol && c.pattern[i].has_value) pattern[i] = Value{c.pattern[i].type, c.pattern[i].bits};
    }
    if (w.base != nullptr) {
      internal::ScanTable(*w.base, pattern.data(), [](const Value*) { return false; }, [&](const Value* row) {
        if (matches(row) && w.deleted->Insert(row)) {
          any = true;
          --size_delta;
          if (expiry != nullptr) expiry->erase(std::vector<Value>(row, row + n));
        }
        return true;
      });
    }
    doomed.clear();
    w.added->ForEach([&](const Value* row) {
      if (matches(row)) doomed.emplace_back(row, row + n);
      return true;
    });
    for (const auto& t : doomed) {
      w.added->Remove(t.data());
      any = true;
      --size_delta;
      if (expiry != nullptr) expiry->erase(t);
    }
  }
  if (changed != nullptr) *changed = any;
  if (!any) return *this;

  FactSet out;
  out.revision_ = revision_ + 1;
  out.size_ = static_cast<size_t>(static_cast<ptrdiff_t>(size_) + size_delta);
  out.expiry_ = expiry_;
  bool expiry_touched = false;
  for (const auto& [key, w] : work) expiry_touched |= w.expiry != nullptr;
  if (expiry_touched) {
    auto layer = expiry_ != nullptr ? std::make_shared<ExpiryLayer>(*expiry_) : std::make_shared<ExpiryLayer>();
    for (const auto& [key, w] : work) {
      if (w.expiry == nullptr) continue;
      if (w.expiry->empty()) {
        layer->erase(key);
      } else {
        (*layer)[key] = ExpiryTable::Build(*w.expiry, key.arity);
      }
    }
    out.expiry_ = layer->empty() ? nullptr : std::move(layer);
  }

  // Delta size after this write: untouched predicates keep theirs.
  size_t delta = 0;
  for (const auto& [key, w] : work) delta += w.added->live() + w.deleted->live();
  for (const Layer* layer : {added_.get(), deleted_.get()}) {
    for (const auto& [key, t] : *layer) {
      if (!work.contains(key)) delta += t->size();
    }
  }
  const size_t base_size = out.size_;
  if (delta > std::max<size_t>(1024, base_size / 8)) {
    // Fold every delta into a new base; tables of predicates without a delta are shared.
    for (const Layer* layer : {added_.get(), deleted_.get()}) {
      for (const auto& [key, t] : *layer) work_for(key);
    }
    auto base = std::make_shared<Layer>(*base_);
    for (auto& [key, w] : work) {
      if (w.added->live() == 0 && w.deleted->live() == 0) continue;
      if (w.base == nullptr) {
        // A new predicate (a bulk load): its delta is the whole table, so build it as it is.
        (*base)[key] = w.added->Build();
        continue;
      }
      auto merged = std::make_unique<TableBuilder>(*w.base);
      w.deleted->ForEach([&](const Value* row) { return merged->Remove(row) || true; });
      w.added->ForEach([&](const Value* row) { return merged->Insert(row) || true; });
      if (merged->live() == 0) {
        base->erase(key);
      } else {
        (*base)[key] = merged->Build();
      }
    }
    out.base_ = std::move(base);
    return out;
  }
  out.base_ = base_;
  auto added = std::make_shared<Layer>(*added_);
  auto deleted = std::make_shared<Layer>(*deleted_);
  for (auto& [key, w] : work) {
    for (auto [builder, layer] : {std::pair{w.added.get(), added.get()}, std::pair{w.deleted.get(), deleted.get()}}) {
      if (builder->live() == 0) {
        layer->erase(key);
      } else {
        (*layer)[key] = builder->Build();
      }
    }
  }
  out.added_ = std::move(added);
  out.deleted_ = std::move(deleted);
  return out;
}

}  // namespace mandate::facts
