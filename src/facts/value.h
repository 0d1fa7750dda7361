// Values and interned symbols: the representation every fact, rule constant and request argument is
// reduced to before evaluation. A Value is 16 bytes, compared and hashed without touching strings.
#ifndef MANDATE_FACTS_VALUE_H_
#define MANDATE_FACTS_VALUE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/hash/hash.h"

namespace mandate::facts {

using SymbolId = uint32_t;

// Symbol ids reserved for the built-in types; SymbolTable::Global() interns these names first so
// that the ids are the same in every process.
inline constexpr SymbolId kNoSymbol = 0;
inline constexpr SymbolId kStringType = 1;   // "String"
inline constexpr SymbolId kIntegerType = 2;  // "Integer"
inline constexpr SymbolId kBooleanType = 3;  // "Boolean"
inline constexpr SymbolId kActorType = 4;    // "Actor" (abstract)
inline constexpr SymbolId kResourceType = 5; // "Resource" (abstract)
inline constexpr SymbolId kFirstUserSymbol = 6;

// Append-only table of interned strings, shared by every snapshot in the process.
// Thread safety: all methods may be called concurrently. Find() and Name() take no lock (they read an
// index and name blocks that writers publish atomically); Intern() takes a lock only when the string
// is new. Returned string_views stay valid for the life of the table (strings are never moved or
// freed).
//
// Memory: a symbol costs a 16-byte name record (names of up to 8 bytes are stored in it, longer ones
// in an append-only arena) plus 8-byte index slots at a load of at most 0.7 (and the smaller indexes
// that growth retired, which lock-free readers may still hold).
class SymbolTable {
 public:
  SymbolTable();
  ~SymbolTable();
  SymbolTable(const SymbolTable&) = delete;
  SymbolTable& operator=(const SymbolTable&) = delete;

  // The process-wide table (with the built-in type names pre-interned).
  static SymbolTable& Global();

  SymbolId Intern(std::string_view s);
  std::optional<SymbolId> Find(std::string_view s) const;
  std::string_view Name(SymbolId id) const;  // "" for an id never handed out
  size_t size() const { return size_.load(std::memory_order_acquire); }

 private:
  // A stored name: inline when it fits the pointer's 8 bytes, else a pointer into the arena.
  struct NameRef {
    union {
      const char* ptr;
      char chars[8];
    };
    uint32_t size;
    std::string_view view() const { return size <= 8 ? std::string_view(chars, size) : std::string_view(ptr, size); }
  };
  static constexpr uint32_t kBlockBits = 16;  // names per block = 2^16; 2^16 blocks cover every id
  struct Index;  // open addressing over (hash tag, id) words, read without locks
  int64_t FindIn(const Index* index, std::string_view s, uint64_t hash) const;  // id, or -1
  const NameRef& Ref(SymbolId id) const {
    return blocks_[id >> kBlockBits].load(std::memory_order_acquire)[id & ((1u << kBlockBits) - 1)];
  }
  void Insert(SymbolId id, uint64_t hash);  // with mu_ held

  std::mutex mu_;  // writers
  std::atomic<uint32_t> size_{0};
  std::unique_ptr<std::atomic<NameRef*>[]> blocks_;
  std::vector<std::unique_ptr<NameRef[]>> block_storage_;
  std::vector<std::unique_ptr<char[]>> arena_;  // names longer than 8 bytes
  char* arena_next_ = nullptr;
  size_t arena_left_ = 0;
  std::atomic<const Index*> index_{nullptr};
  std::vector<std::unique_ptr<Index>> indexes_;  // the current one and retired ones readers may hold
};

// A typed scalar. `type` is the SymbolId of the type name (kStringType, kIntegerType, kBooleanType,
// or a user type such as "User"); `bits` holds the payload: the SymbolId of the string or instance id,
// the two's complement of an Integer, or 0/1 for a Boolean. type == kNoSymbol means "no value".
struct Value {
  SymbolId type = kNoSymbol;
  uint64_t bits = 0;

  static Value String(SymbolId s) { return {kStringType, s}; }
  static Value Integer(int64_t i) { return {kIntegerType, static_cast<uint64_t>(i)}; }
  static Value Boolean(bool b) { return {kBooleanType, b ? 1u : 0u}; }
  static Value Instance(SymbolId type, SymbolId id) { return {type, id}; }

  bool valid() const { return type != kNoSymbol; }
  bool is_string() const { return type == kStringType; }
  bool is_integer() const { return type == kIntegerType; }
  bool is_boolean() const { return type == kBooleanType; }
  bool is_instance() const { return type >= kFirstUserSymbol || type == kActorType || type == kResourceType; }
  int64_t integer() const { return static_cast<int64_t>(bits); }
  bool boolean() const { return bits != 0; }
  SymbolId symbol() const { return static_cast<SymbolId>(bits); }  // for strings and instances

  friend bool operator==(const Value& a, const Value& b) { return a.type == b.type && a.bits == b.bits; }
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const Value& v) {
    return H::combine(std::move(h), v.type, v.bits);
  }
};

// Renders a value the way Polar writes it: "read", 42, true, User{"alice"}.
std::string ToPolar(const Value& v, const SymbolTable& symbols = SymbolTable::Global());
// Renders the wire form used by the CLI: User:alice, String:read, Integer:42.
std::string ToTypedId(const Value& v, const SymbolTable& symbols = SymbolTable::Global());

}  // namespace mandate::facts

#endif  // MANDATE_FACTS_VALUE_H_
