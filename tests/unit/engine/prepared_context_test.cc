// QueryOptions::prepared_context (Snapshot::PrepareContext): context facts converted once and shared
// by several queries of one request give the same answers as converting them in every query,
// including strings no stored fact or policy has (request-local symbols).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "engine_test_util.h"
#include "facts/value.h"

namespace mandate::testing {
namespace {

constexpr char kPolicy[] = R"(actor User {}
resource Doc {}
allow(u: User, "read", d: Doc) if ctx_owner(d, u);
allow(u: User, action: String, d: Doc) if ctx_may(u, action, d) and not ctx_blocked(action);
label(d: Doc, l: String) if ctx_label(d, l);
declare ctx_owner(Doc, User);
declare ctx_may(User, String, Doc);
declare ctx_blocked(String);
declare ctx_label(Doc, String);
)";

// Every string below except "read" is known to neither the policy nor the stored facts.
std::vector<Fact> ContextFacts() {
  return {
      {"ctx_owner", {V("Doc:pc-doc"), V("User:pc-ann")}},
      {"unknown_predicate", {V("String:pc-ignored")}},
      {"ctx_may", {V("User:pc-ann"), V("String:pc-act"), V("Doc:pc-doc")}},
      {"ctx_may", {V("User:pc-ann"), V("String:pc-stop"), V("Doc:pc-doc")}},
      {"ctx_blocked", {V("String:pc-stop")}},
      {"ctx_label", {V("Doc:pc-doc"), V("String:pc-label-a")}},
      {"ctx_label", {V("Doc:pc-doc"), V("String:pc-label-b")}},
  };
}

std::string Render(const Decision& d) {
  return absl::StrCat(d.allowed ? "allow" : "deny", " [", absl::StrJoin(d.reasons, "; "), "]\n",
                      d.explanation ? d.explanation->ToText() : "");
}

std::string Render(const absl::StatusOr<std::vector<std::string>>& r) {
  return r.ok() ? absl::StrJoin(*r, ",") : std::string(r.status().message());
}

std::string Render(const absl::StatusOr<QueryResult>& r) {
  if (!r.ok()) return std::string(r.status().message());
  std::vector<std::string> rows;
  for (const auto& row : r->rows) {
    std::vector<std::string> cells;
    for (const auto& v : row) cells.push_back(v ? ToString(*v) : "*");
    rows.push_back(absl::StrJoin(cells, " "));
  }
  return absl::StrJoin(rows, " | ");
}

// The answers of one request's queries, all asked with the same options, in one string.
std::string Answers(const Snapshot& snap, const QueryOptions& options) {
  std::vector<std::string> out;
  out.push_back(Render(snap.Check(V("User:pc-ann"), "read", V("Doc:pc-doc"), options)));
  out.push_back(Render(snap.Check(V("User:pc-ann"), "pc-act", V("Doc:pc-doc"), options)));
  out.push_back(Render(snap.Check(V("User:pc-ann"), "pc-stop", V("Doc:pc-doc"), options)));
  // Strings new to this query get ids after the context's.
  out.push_back(Render(snap.Check(V("User:pc-bob"), "pc-other", V("Doc:pc-doc"), options)));
  out.push_back(Render(snap.Actions(V("User:pc-ann"), V("Doc:pc-doc"), options)));
  out.push_back(Render(snap.List(V("User:pc-ann"), "pc-act", "Doc", options)));
  for (const char* text : {"label(Doc{\"pc-doc\"}, l)", "label(Doc{\"pc-new\"}, l)",
                           "ctx_may(u, a, Doc{\"pc-doc\"}) and label(Doc{\"pc-doc\"}, \"pc-label-b\")"}) {
    absl::StatusOr<ConjunctiveQuery> q = ParseQuery(text);
    EXPECT_TRUE(q.ok()) << q.status().message();
    if (q.ok()) out.push_back(Render(snap.Query(*q, options)));
  }
  return absl::StrJoin(out, "\n");
}

TEST(PreparedContextTest, SameAnswersAsConvertingInEveryQuery) {
  World w(kPolicy, "");
  ASSERT_TRUE(w.ok());
  std::shared_ptr<const Snapshot> snap = w.snap();
  for (bool explain : {false, true}) {
    QueryOptions plain;
    plain.context_facts = ContextFacts();
    plain.explain = explain;
    QueryOptions prepared = plain;
    prepared.prepared_context = snap->PrepareContext(prepared.context_facts);
    const std::string want = Answers(*snap, plain);
    EXPECT_THAT(want, ::testing::HasSubstr("pc-label-a"));
    if (explain) {
      EXPECT_THAT(want, ::testing::HasSubstr("pc-bob"));
    }
    // Nothing is interned meanwhile, so the queries below do use the prepared context.
    const size_t symbols = facts::SymbolTable::Global().size();
    EXPECT_EQ(Answers(*snap, prepared), want);
    EXPECT_EQ(facts::SymbolTable::Global().size(), symbols);
  }
}

TEST(PreparedContextTest, AConversionErrorFailsEveryQueryAlike) {
  World w(kPolicy, "");
  QueryOptions plain;
  plain.context_facts = {{"ctx_may", {V("User:pc-ann"), {"Integer", "x"}, V("Doc:pc-doc")}}};
  QueryOptions prepared = plain;
  prepared.prepared_context = w.snap()->PrepareContext(prepared.context_facts);
  const std::string want = Answers(*w.snap(), plain);
  EXPECT_THAT(want, ::testing::HasSubstr("invalid Integer id"));
  EXPECT_EQ(Answers(*w.snap(), prepared), want);
}

// Whether a query used the prepared context, seen through options whose context_facts say otherwise
// (which the contract forbids; only a test may tell the two paths apart this way).
bool UsesPrepared(const Snapshot& snap, std::shared_ptr<const PreparedContext> prepared) {
  QueryOptions o;
  o.prepared_context = std::move(prepared);
  return snap.Check(V("User:pc-ann"), "read", V("Doc:pc-doc"), o).allowed;
}

TEST(PreparedContextTest, UsedOnlyWhereItGivesTheSameConversion) {
  World w(kPolicy, "");
  std::shared_ptr<const PreparedContext> p = w.snap()->PrepareContext(ContextFacts());
  EXPECT_TRUE(UsesPrepared(*w.snap(), p));
  // Another policy numbers predicates differently.
  World other(std::string(kPolicy) + "declare unrelated(String);\n", "");
  EXPECT_FALSE(UsesPrepared(*other.snap(), p));
  // A string interned since then might be one of the context's local strings.
  w.Insert("ctx_blocked(\"pc-interned-later\");");
  EXPECT_FALSE(UsesPrepared(*w.snap(), p));
  EXPECT_TRUE(UsesPrepared(*w.snap(), w.snap()->PrepareContext(ContextFacts())));
}

}  // namespace
}  // namespace mandate::testing
