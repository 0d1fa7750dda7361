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

TEST(SymbolTableTest, InlineNamesAreExactAndIdsCrossNameBlocks) {
  SymbolTable t;
  // Names of up to 8 bytes are stored inline and zero padded: a trailing NUL is still a different name.
  const SymbolId ab = t.Intern("ab");
  const SymbolId ab0 = t.Intern(std::string_view("ab\0", 3));
  const SymbolId eight0 = t.Intern(std::string_view("abcdefg\0", 8));
  EXPECT_NE(ab, ab0);
  EXPECT_NE(eight0, t.Intern("abcdefg"));
  EXPECT_EQ(t.Name(ab0), std::string_view("ab\0", 3));
  EXPECT_EQ(t.Find(std::string_view("abcdefg\0", 8)), eight0);
  EXPECT_EQ(t.Name(static_cast<SymbolId>(t.size())), "");  // never handed out
  // More names than one block holds (2^16), short and long, all still found by name.
  for (int i = 0; i < 70000; ++i) t.Intern((i % 2 ? "long-name-" : "n") + std::to_string(i));
  for (int i = 0; i < 70000; i += 997) {
    const std::string s = (i % 2 ? "long-name-" : "n") + std::to_string(i);
    std::optional<SymbolId> id = t.Find(s);
    ASSERT_TRUE(id.has_value()) << s;
    EXPECT_EQ(t.Name(*id), s);
  }
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
