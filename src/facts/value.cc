#include "facts/value.h"

#include <atomic>
#include <cstring>
#include <algorithm>
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
  // A slot is one word: the high 32 bits of the name's hash, and id + 1 (0 marks an empty slot).
  // Probes compare the tag and read the name only on a tag match. Writers store the name record
  // before publishing its slot (release); readers load the slot with acquire.
  explicit Index(size_t capacity) : mask(capacity - 1), slots(new std::atomic<uint64_t>[capacity]) {
    for (size_t i = 0; i < capacity; ++i) slots[i].store(0, std::memory_order_relaxed);
  }
  static uint64_t Word(uint64_t hash, SymbolId id) { return (hash & 0xffffffff00000000ull) | (uint64_t{id} + 1); }
  void Put(uint64_t hash, SymbolId id) {
    size_t i = hash & mask;
    while (slots[i].load(std::memory_order_relaxed) != 0) i = (i + 1) & mask;
    slots[i].store(Word(hash, id), std::memory_order_release);
    ++size;
  }
  size_t mask;
  size_t size = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> slots;
};

SymbolTable::SymbolTable() : blocks_(new std::atomic<NameRef*>[size_t{1} << (32 - kBlockBits)]) {
  for (size_t b = 0; b < (size_t{1} << (32 - kBlockBits)); ++b) blocks_[b].store(nullptr, std::memory_order_relaxed);
  // Order matches the kXxxType constants.
  for (std::string_view s : {"", "String", "Integer", "Boolean", "Actor", "Resource"}) Intern(s);
}

SymbolTable::~SymbolTable() = default;

SymbolTable& SymbolTable::Global() {
  static SymbolTable* table = new SymbolTable();
  return *table;
}

namespace {
// The first min(n, 8) bytes of `s` as a zero-padded little-endian word (as NameRef stores short
// names), without reading past the string.
uint64_t PaddedWord(std::string_view s) {
  const char* p = s.data();
  const size_t n = std::min<size_t>(s.size(), 8);
  if (n >= 4) return Load32(p) | ((Load32(p + n - 4) >> (8 * (8 - n))) << 32);
  uint64_t w = 0;
  for (size_t i = 0; i < n; ++i) w |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return w;
}
}  // namespace

int64_t SymbolTable::FindIn(const Index* index, std::string_view s, uint64_t hash) const {
  if (index == nullptr) return -1;
  const uint32_t tag = static_cast<uint32_t>(hash >> 32);
  const uint64_t word = s.size() <= 8 ? PaddedWord(s) : 0;
  for (size_t i = hash & index->mask;; i = (i + 1) & index->mask) {
    const uint64_t w = index->slots[i].load(std::memory_order_acquire);
    if (w == 0) return -1;
    if (static_cast<uint32_t>(w >> 32) != tag) continue;
    const SymbolId id = static_cast<SymbolId>(w) - 1;
    const NameRef& r = Ref(id);
    if (r.size != s.size()) continue;
    if (s.size() <= 8 ? Load64(r.chars) == word : r.view() == s) return id;
  }
}

void SymbolTable::Insert(SymbolId id, uint64_t hash) {
  const Index* cur = index_.load(std::memory_order_relaxed);
  if (cur == nullptr || (cur->size + 1) * 10 > (cur->mask + 1) * 7) {
    // Grow into a new index and publish it; readers holding the old one still see valid names.
    auto next = std::make_unique<Index>(cur == nullptr ? 64 : (cur->mask + 1) * 2);
    for (SymbolId old = 0; old < id; ++old) next->Put(HashString(Ref(old).view()), old);
    cur = next.get();
    indexes_.push_back(std::move(next));
    index_.store(cur, std::memory_order_release);
  }
  indexes_.back()->Put(hash, id);
}

SymbolId SymbolTable::Intern(std::string_view s) {
  const uint64_t h = HashString(s);
  if (int64_t id = FindIn(index_.load(std::memory_order_acquire), s, h); id >= 0) return static_cast<SymbolId>(id);
  std::lock_guard lock(mu_);
  if (int64_t id = FindIn(index_.load(std::memory_order_relaxed), s, h); id >= 0) return static_cast<SymbolId>(id);
  const SymbolId id = size_.load(std::memory_order_relaxed);
  const uint32_t b = id >> kBlockBits;
  if (blocks_[b].load(std::memory_order_relaxed) == nullptr) {
    block_storage_.emplace_back(new NameRef[size_t{1} << kBlockBits]);
    blocks_[b].store(block_storage_.back().get(), std::memory_order_release);
  }
  NameRef& r = blocks_[b].load(std::memory_order_relaxed)[id & ((1u << kBlockBits) - 1)];
  r.size = static_cast<uint32_t>(s.size());
  if (s.size() <= 8) {
    std::memset(r.chars, 0, sizeof(r.chars));
    if (!s.empty()) std::memcpy(r.chars, s.data(), s.size());
  } else {
    if (arena_left_ < s.size()) {
      const size_t chunk = std::max<size_t>(s.size(), 64 * 1024);
      arena_.emplace_back(new char[chunk]);
      arena_next_ = arena_.back().get();
      arena_left_ = chunk;
    }
    std::memcpy(arena_next_, s.data(), s.size());
    r.ptr = arena_next_;
    arena_next_ += s.size();
    arena_left_ -= s.size();
  }
  // Name() of the id works as soon as Find() can return it.
  size_.store(id + 1, std::memory_order_release);
  Insert(id, h);
  return id;
}

std::optional<SymbolId> SymbolTable::Find(std::string_view s) const {
  const int64_t id = FindIn(index_.load(std::memory_order_acquire), s, HashString(s));
  if (id < 0) return std::nullopt;
  return static_cast<SymbolId>(id);
}

std::string_view SymbolTable::Name(SymbolId id) const {
  if (id >= size_.load(std::memory_order_acquire)) return {};
  return Ref(id).view();
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
