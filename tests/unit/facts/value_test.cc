// SymbolTable: interning, lock-free Find while another thread interns, built-in ids.
#include "facts/value.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace mandate::facts {
namespace {

TEST(SymbolTableTest, BuiltinsAndRoundTrip) {
  SymbolTable t;
  EXPECT_EQ(t.Find("String"), kStringType);
  EXPECT_EQ(t.Find("Resource"), kResourceType);
  EXPECT_EQ(t.Find("nope"), std::nullopt);
  const SymbolId a = t.Intern("alice");
  EXPECT_EQ(t.Intern("alice"), a);
  EXPECT_EQ(t.Find("alice"), a);
  EXPECT_EQ(t.Name(a), "alice");
  EXPECT_EQ(t.Intern(""), kNoSymbol);
  // Strings of every length class the hash treats differently, and ones sharing prefixes.
  for (const char* s : {"a", "ab", "abc", "abcd", "abcdefg", "abcdefgh", "abcdefghi", "abcdefghijklmnopq"}) {
    const SymbolId id = t.Intern(s);
    EXPECT_EQ(t.Find(s), id) << s;
    EXPECT_EQ(t.Name(id), s);
  }
  EXPECT_EQ(t.size(), kFirstUserSymbol + 9);
}

TEST(SymbolTableTest, FindIsSafeWhileAnotherThreadInterns) {
  SymbolTable t;
  constexpr int kN = 50000;
  std::atomic<int> published{0};
  std::atomic<int> wrong{0};
  std::thread reader([&] {
    while (published.load() < kN) {
      const int upto = published.load();
      for (int i = std::max(0, upto - 64); i < upto; ++i) {
        const std::string s = "s" + std::to_string(i);
        std::optional<SymbolId> id = t.Find(s);
        if (!id || t.Name(*id) != s) ++wrong;
      }
    }
  });
  for (int i = 0; i < kN; ++i) {
    t.Intern("s" + std::to_string(i));
    published.store(i + 1);
  }
  reader.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(t.size(), kFirstUserSymbol + kN);
}

TEST(ValueTest, Rendering) {
  SymbolTable& g = SymbolTable::Global();
  EXPECT_EQ(ToPolar(Value::Instance(g.Intern("User"), g.Intern("al\"ice"))), "User{\"al\\\"ice\"}");
  EXPECT_EQ(ToTypedId(Value::Integer(-3)), "Integer:-3");
  EXPECT_EQ(ToPolar(Value::Boolean(true)), "true");
}

}  // namespace
}  // namespace mandate::facts
