#include "facts/value.h"

#include <atomic>
#include <cstring>
#include <mutex>

namespace mandate::facts {
namespace {

uint64_t Load64(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
uint64_t Load32(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// Fast hash for short strings (ids, type and action names): whole words, overlapping tail loads.
uint64_t HashString(std::string_view s) {
  auto mix = [](uint64_t x) {
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 29);
  };
  const char* p = s.data();
  const size_t n = s.size();
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xbf58476d1ce4e5b9ull);
  if (n >= 8) {
    size_t i = 0;
    for (; i + 8 < n; i += 8) h = mix(h ^ Load64(p + i));
    return mix(mix(h ^ Load64(p + n - 8)));
  }
  uint64_t w = 0;
  if (n >= 4) {
    w = Load32(p) | (Load32(p + n - 4) << 32);
  } else if (n > 0) {
    w = static_cast<uint8_t>(p[0]) | (uint64_t{static_cast<uint8_t>(p[n / 2])} << 8) |
        (uint64_t{static_cast<uint8_t>(p[n - 1])} << 16);
  }
  return mix(mix(h ^ w));
}

}  // namespace

struct SymbolTable::Index {
  // A slot holds the entry's full hash next to the pointer, so probes touch an entry only on a hash
  // match. Writers store the hash before publishing the pointer (release); readers load the pointer
  // (acquire) first, so a non-null pointer always comes with its hash.
  struct Slot {
    std::atomic<uint64_t> hash{0};
    std::atomic<const Entry*> entry{nullptr};
  };
  explicit Index(size_t capacity) : mask(capacity - 1), slots(new Slot[capacity]) {}
  void Put(const Entry* e) {
    size_t i = e->hash & mask;
    while (slots[i].entry.load(std::memory_order_relaxed) != nullptr) i = (i + 1) & mask;
    slots[i].hash.store(e->hash, std::memory_order_relaxed);
    slots[i].entry.store(e, std::memory_order_release);
    ++size;
  }
  size_t mask;
  size_t size = 0;
  std::unique_ptr<Slot[]> slots;
};

SymbolTable::SymbolTable() {
  // Order matches the kXxxType constants.
  for (std::string_view s : {"", "String", "Integer", "Boolean", "Actor", "Resource"}) Intern(s);
}

SymbolTable::~SymbolTable() = default;

SymbolTable& SymbolTable::Global() {
  static SymbolTable* table = new SymbolTable();
  return *table;
}

const SymbolTable::Entry* SymbolTable::FindIn(const Index* index, std::string_view s, uint64_t hash) const {
  if (index == nullptr) return nullptr;
  for (size_t i = hash & index->mask;; i = (i + 1) & index->mask) {
    const Entry* e = index->slots[i].entry.load(std::memory_order_acquire);
    if (e == nullptr) return nullptr;
    if (index->slots[i].hash.load(std::memory_order_relaxed) == hash && e->name == s) return e;
  }
}

void SymbolTable::Insert(const Entry* e) {
  const Index* cur = index_.load(std::memory_order_relaxed);
  if (cur == nullptr || (cur->size + 1) * 10 > (cur->mask + 1) * 7) {
    // Grow into a new index and publish it; readers holding the old one still see valid entries.
    auto next = std::make_unique<Index>(cur == nullptr ? 64 : (cur->mask + 1) * 2);
    for (const Entry& old : entries_) {
      if (&old != e) next->Put(&old);
    }
    cur = next.get();
    indexes_.push_back(std::move(next));
    index_.store(cur, std::memory_order_release);
  }
  indexes_.back()->Put(e);
}

SymbolId SymbolTable::Intern(std::string_view s) {
  const uint64_t h = HashString(s);
  if (const Entry* e = FindIn(index_.load(std::memory_order_acquire), s, h)) return e->id;
  std::unique_lock lock(mu_);
  if (const Entry* e = FindIn(index_.load(std::memory_order_relaxed), s, h)) return e->id;
  const SymbolId id = static_cast<SymbolId>(entries_.size());
  entries_.push_back(Entry{std::string(s), h, id});
  Insert(&entries_.back());
  return id;
}

std::optional<SymbolId> SymbolTable::Find(std::string_view s) const {
  const Entry* e = FindIn(index_.load(std::memory_order_acquire), s, HashString(s));
  if (e == nullptr) return std::nullopt;
  return e->id;
}

std::string_view SymbolTable::Name(SymbolId id) const {
  std::shared_lock lock(mu_);
  if (id >= entries_.size()) return {};
  return entries_[id].name;
}

size_t SymbolTable::size() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

namespace {
void AppendQuoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  out.push_back('"');
}
}  // namespace

std::string ToPolar(const Value& v, const SymbolTable& symbols) {
  std::string out;
  switch (v.type) {
    case kNoSymbol:
      return "_";
    case kStringType:
      AppendQuoted(out, symbols.Name(v.symbol()));
      return out;
    case kIntegerType:
      return std::to_string(v.integer());
    case kBooleanType:
      return v.boolean() ? "true" : "false";
    default:
      out.append(symbols.Name(v.type));
      out.push_back('{');
      AppendQuoted(out, symbols.Name(v.symbol()));
      out.push_back('}');
      return out;
  }
}

std::string ToTypedId(const Value& v, const SymbolTable& symbols) {
  std::string out(symbols.Name(v.type));
  out.push_back(':');
  switch (v.type) {
    case kIntegerType:
      out += std::to_string(v.integer());
      break;
    case kBooleanType:
      out += v.boolean() ? "true" : "false";
      break;
    default:
      out.append(symbols.Name(v.symbol()));
  }
  return out;
}

}  // namespace mandate::facts
