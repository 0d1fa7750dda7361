// The public API around evaluation: explanations, Database writes, policy tests, fact decoding,
// compile errors and metadata.
#include <thread>

#include "engine_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mandate::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kPolicy[] = R"(actor User {}
resource Org {
  roles = ["member", "admin"];
}
resource Repo {
  roles = ["reader", "maintainer"];
  permissions = ["read", "write"];
  relations = { parent: Org };
  "read" if "reader";
  "write" if "maintainer";
  "reader" if "member" on "parent";
  "maintainer" if "admin" on "parent";
}
)";

constexpr char kFacts[] = R"(
has_role(User{"alice"}, "member", Org{"acme"});
has_relation(Repo{"anvil"}, "parent", Org{"acme"});
)";

const ExplainNode* FindNode(const ExplainNode& n, std::string_view kind, std::string_view text_part) {
  if (n.kind == kind && n.text.find(text_part) != std::string::npos) return &n;
  for (const ExplainNode& c : n.children) {
    if (const ExplainNode* f = FindNode(c, kind, text_part)) return f;
  }
  return nullptr;
}

TEST(ExplainTest, AllowGivesTheProofTree) {
  World w(kPolicy, kFacts);
  QueryOptions explain;
  explain.explain = true;
  Decision d = w.Check("User:alice", "read", "Repo:anvil", explain);
  ASSERT_TRUE(d.allowed);
  ASSERT_TRUE(d.explanation.has_value());
  ASSERT_EQ(d.explanation->roots.size(), 1u);
  const ExplainNode& root = d.explanation->roots[0];
  EXPECT_EQ(root.kind, "rule");
  EXPECT_TRUE(root.satisfied);
  EXPECT_THAT(root.text, HasSubstr("allow(User{\"alice\"}, \"read\", Repo{\"anvil\"})"));
  const ExplainNode* member_rule = FindNode(root, "rule", "has_role(User{\"alice\"}, \"reader\", Repo{\"anvil\"})");
  ASSERT_NE(member_rule, nullptr) << d.explanation->ToText();
  EXPECT_THAT(member_rule->text, HasSubstr("\"reader\" if \"member\" on \"parent\""));  // the shorthand's origin
  EXPECT_EQ(member_rule->location, "policy.polar:11");
  EXPECT_NE(FindNode(root, "fact", "has_relation(Repo{\"anvil\"}, \"parent\", Org{\"acme\"})"), nullptr);
  EXPECT_NE(FindNode(root, "fact", "has_role(User{\"alice\"}, \"member\", Org{\"acme\"})"), nullptr);
  const std::string text = d.explanation->ToText();
  EXPECT_THAT(text, HasSubstr("+ fact has_role(User{\"alice\"}, \"member\", Org{\"acme\"})"));
}

TEST(ExplainTest, DenyNamesTheFirstFailedConditionPerRule) {
  World w(kPolicy, kFacts);
  QueryOptions explain;
  explain.explain = true;
  Decision d = w.Check("User:alice", "write", "Repo:anvil", explain);
  ASSERT_FALSE(d.allowed);
  ASSERT_TRUE(d.explanation.has_value());
  ASSERT_EQ(d.explanation->roots.size(), 1u);
  const ExplainNode& allow = d.explanation->roots[0];
  EXPECT_FALSE(allow.satisfied);
  EXPECT_EQ(allow.failed, "has_permission(User{\"alice\"}, \"write\", Repo{\"anvil\"})");
  // One level down: the has_permission rule for "write" failed on has_role(..., "maintainer", ...).
  const ExplainNode* perm = FindNode(allow, "rule", "has_permission(User{\"alice\"}, \"write\"");
  ASSERT_NE(perm, nullptr) << d.explanation->ToText();
  EXPECT_EQ(perm->failed, "has_role(User{\"alice\"}, \"maintainer\", Repo{\"anvil\"})");
  // And below it, the "maintainer" if "admin" on "parent" rule got past the relation but not the role.
  const ExplainNode* maint = FindNode(*perm, "rule", "\"maintainer\" if \"admin\" on \"parent\"");
  ASSERT_NE(maint, nullptr) << d.explanation->ToText();
  EXPECT_EQ(maint->failed, "has_role(User{\"alice\"}, \"admin\", Org{\"acme\"})");
  EXPECT_THAT(d.explanation->ToText(), HasSubstr("failed: has_role(User{\"alice\"}, \"admin\", Org{\"acme\"})"));
}

TEST(ExplainTest, ProofsOverCyclicDataAreFinite) {
  World w(R"(actor User {}
resource Folder {
  roles = ["viewer"];
  permissions = ["view"];
  relations = { parent: Folder };
  "view" if "viewer";
  "viewer" if "viewer" on "parent";
}
)",
          R"(
has_relation(Folder{"a"}, "parent", Folder{"b"});
has_relation(Folder{"b"}, "parent", Folder{"a"});
has_relation(Folder{"b"}, "parent", Folder{"c"});
has_role(User{"ann"}, "viewer", Folder{"c"});
)");
  QueryOptions explain;
  explain.explain = true;
  Decision d = w.Check("User:ann", "view", "Folder:a", explain);
  ASSERT_TRUE(d.allowed);
  ASSERT_EQ(d.explanation->roots.size(), 1u);
  EXPECT_NE(FindNode(d.explanation->roots[0], "fact", "has_role(User{\"ann\"}, \"viewer\", Folder{\"c\"})"), nullptr)
      << d.explanation->ToText();
}

TEST(ExplainTest, ContextFactsAndComparisonsAppearInProofs) {
  World w(R"(actor User {}
resource Doc { permissions = ["read"]; }
has_permission(u: User, "read", d: Doc) if grant(u, d, until) and until > @current_unix_time;
declare grant(User, Doc, Integer);
)");
  QueryOptions o;
  o.explain = true;
  o.now_unix = 100;
  o.context_facts.push_back({"grant", {V("User:u"), V("Doc:d"), V("Integer:200")}});
  Decision d = w.Check("User:u", "read", "Doc:d", o);
  ASSERT_TRUE(d.allowed);
  const ExplainNode& root = d.explanation->roots[0];
  EXPECT_NE(FindNode(root, "context_fact", "grant(User{\"u\"}, Doc{\"d\"}, 200)"), nullptr) << d.explanation->ToText();
  EXPECT_NE(FindNode(root, "compare", "200 > 100"), nullptr) << d.explanation->ToText();
}

TEST(ExplainTest, OffByDefault) {
  World w(kPolicy, kFacts);
  EXPECT_FALSE(w.Check("User:alice", "read", "Repo:anvil").explanation.has_value());
}

TEST(DatabaseTest, FailingChangeAppliesNothing) {
  World w(kPolicy, kFacts);
  const uint64_t before = w.snap()->revision();
  std::vector<Change> changes = {
      {Change::Kind::kInsert, {"has_role", {V("User:bob"), V("String:member"), V("Org:acme")}}, {}},
      {Change::Kind::kInsert, {"has_role", {V("User:bob"), V("String:member")}}, {}},  // wrong arity
  };
  absl::StatusOr<uint64_t> r = w.db().Apply(changes);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("change 1"));
  EXPECT_EQ(w.snap()->revision(), before);
  EXPECT_FALSE(w.Allowed("User:bob", "read", "Repo:anvil"));
  // Wrong types and unknown predicates are rejected too, naming the fact.
  EXPECT_THAT(w.db().Apply({{Change::Kind::kInsert, {"has_relation", {V("Repo:x"), V("String:parent"), V("Integer:3")}}, {}}})
                  .status()
                  .message(),
              HasSubstr("has_relation(Repo{\"x\"}, \"parent\", 3)"));
  EXPECT_THAT(w.db().Apply({{Change::Kind::kInsert, {"nope", {V("Repo:x")}}, {}}}).status().message(),
              HasSubstr("unknown predicate \"nope\""));
  EXPECT_THAT(w.db().Apply({{Change::Kind::kInsert, {"has_role", {V("User:a"), V("Integer:x"), V("Org:o")}}, {}}})
                  .status()
                  .message(),
              HasSubstr("invalid Integer id \"x\""));
}

TEST(DatabaseTest, RevisionsAndDeletes) {
  World w(kPolicy);
  const uint64_t r0 = w.snap()->revision();
  w.Insert(kFacts);
  const uint64_t r1 = w.snap()->revision();
  EXPECT_EQ(r1, r0 + 1);
  // A no-op write leaves the revision alone.
  absl::StatusOr<uint64_t> same =
      w.db().Apply({{Change::Kind::kInsert, {"has_role", {V("User:alice"), V("String:member"), V("Org:acme")}}, {}}});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, r1);
  std::shared_ptr<const Snapshot> old = w.snap();
  FactPattern all_of_alice{"has_role", {"User", std::nullopt, std::nullopt}, {"alice", std::nullopt, std::nullopt}};
  Change del;
  del.kind = Change::Kind::kDelete;
  del.pattern = all_of_alice;
  absl::StatusOr<uint64_t> r2 = w.db().Apply({del});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(*r2, r1 + 1);
  EXPECT_FALSE(w.Allowed("User:alice", "read", "Repo:anvil"));
  EXPECT_TRUE(old->Check(V("User:alice"), "read", V("Repo:anvil")).allowed);  // old snapshots are unchanged
  EXPECT_EQ(old->Facts(all_of_alice).size(), 1u);
  EXPECT_THAT(w.snap()->Facts(all_of_alice), IsEmpty());
  // Deleting by a pattern naming strings never seen is a no-op, not an error.
  FactPattern unseen{"has_role", {"User", std::nullopt, std::nullopt}, {"never-seen-user", std::nullopt, std::nullopt}};
  Change del2;
  del2.kind = Change::Kind::kDelete;
  del2.pattern = unseen;
  EXPECT_EQ(*w.db().Apply({del2}), r1 + 1);
  // Clear and SetPolicy bump the revision.
  EXPECT_EQ(*w.db().Clear(), r1 + 2);
  EXPECT_EQ(w.snap()->fact_count(), 0u);
  ASSERT_TRUE(w.db().SetPolicy(w.snap()->policy()).ok());
  EXPECT_EQ(w.snap()->revision(), r1 + 3);
}

TEST(DatabaseTest, FactsListsStoredFactsInStableOrder) {
  World w(kPolicy, kFacts);
  std::vector<Fact> all = w.snap()->Facts({});
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(ToString(all[0]), "has_relation(Repo{\"anvil\"}, \"parent\", Org{\"acme\"})");
  EXPECT_EQ(ToString(all[1]), "has_role(User{\"alice\"}, \"member\", Org{\"acme\"})");
  EXPECT_EQ(w.snap()->Facts({"has_role", {}, {}}).size(), 1u);
  EXPECT_EQ(w.snap()->Facts({"has_role", {"User", std::nullopt, "Org"}, {"alice", std::nullopt, std::nullopt}}).size(),
            1u);
  EXPECT_THAT(w.snap()->Facts({"has_role", {"Team", std::nullopt, std::nullopt}, {std::nullopt, std::nullopt, std::nullopt}}),
              IsEmpty());
  EXPECT_EQ(w.snap()->Facts({}, 1).size(), 1u);
}

TEST(DatabaseTest, ReadersSeeWholeWritesOnly) {
  World w(kPolicy);
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!stop) {
      std::shared_ptr<const Snapshot> s = w.snap();
      // Each write inserts a pair of facts; a snapshot holds both or neither.
      if (s->fact_count() % 2 != 0) ++torn;
    }
  });
  for (int i = 0; i < 200; ++i) {
    const std::string u = "u" + std::to_string(i);
    ASSERT_TRUE(w.db()
                    .Apply({{Change::Kind::kInsert, {"has_role", {V("User:" + u), V("String:member"), V("Org:o")}}, {}},
                            {Change::Kind::kInsert, {"has_role", {V("User:" + u), V("String:admin"), V("Org:o")}}, {}}})
                    .ok());
  }
  stop = true;
  reader.join();
  EXPECT_EQ(torn, 0);
  EXPECT_EQ(w.snap()->fact_count(), 400u);
}

TEST(PolicyTest, CompileErrorsListEveryError) {
  std::vector<Diagnostic> diags;
  absl::StatusOr<std::shared_ptr<const Policy>> p = Policy::Compile(
      {{"bad.polar", "actor User {}\nresource Repo {\n  permissions = [\"read\"];\n  \"read\" if \"nope\";\n}\n"}},
      &diags);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("bad.polar:4"));
  ASSERT_FALSE(diags.empty());
  EXPECT_TRUE(diags[0].is_error);
  EXPECT_EQ(diags[0].file, "bad.polar");
  EXPECT_EQ(diags[0].line, 4);
  EXPECT_THAT(diags[0].ToString(), HasSubstr("bad.polar:4:"));
}

TEST(PolicyTest, HashMetadataAndFactChecks) {
  World w(kPolicy);
  EXPECT_EQ(w.policy().hash().size(), 64u);
  World same(kPolicy);
  EXPECT_EQ(w.policy().hash(), same.policy().hash());
  std::map<std::string, TypeMetadata> md = w.policy().Metadata();
  EXPECT_THAT(md["Repo"].roles, ElementsAre("reader", "maintainer"));
  EXPECT_THAT(md["Repo"].permissions, ElementsAre("read", "write"));
  EXPECT_EQ(md["Repo"].relations["parent"], "Org");
  EXPECT_TRUE(w.policy().CheckFact({"has_role", {V("User:a"), V("String:member"), V("Org:o")}}).ok());
  EXPECT_FALSE(w.policy().CheckFact({"has_role", {V("String:a"), V("String:member"), V("Org:o")}}).ok());
}

TEST(PolicyTestsTest, RunsAssertionsAgainstTheirOwnSetup) {
  absl::StatusOr<std::shared_ptr<const Policy>> p = Policy::Compile({{"t.polar", std::string(kPolicy) + R"(
test fixture acme {
  has_relation(Repo{"anvil"}, "parent", Org{"acme"});
}
test "members read" {
  setup {
    has_role(User{"alice"}, "member", Org{"acme"});
    fixture acme;
  }
  assert allow(User{"alice"}, "read", Repo{"anvil"});
  assert_not allow(User{"alice"}, "write", Repo{"anvil"});
  assert allow(User{"alice"}, action: String, Repo{"anvil"}) iff action in ["read"];
}
test "wrong on purpose" {
  setup {
    has_role(User{"bob"}, "admin", Org{"acme"});
    fixture acme;
  }
  assert allow(User{"bob"}, "read", Repo{"other"});
  assert allow(User{"bob"}, action: String, Repo{"anvil"}) iff action in ["read", "delete"];
  assert_not allow(User{"alice"}, "read", Repo{"anvil"});
}
)"}});
  ASSERT_TRUE(p.ok()) << p.status().message();
  TestReport report = RunPolicyTests(**p);
  ASSERT_EQ(report.tests.size(), 2u);
  EXPECT_EQ(report.tests[0].name, "members read");
  EXPECT_EQ(report.tests[0].passed, 3);
  EXPECT_EQ(report.tests[0].total, 3);
  EXPECT_THAT(report.tests[0].failures, IsEmpty());
  const TestResult& bad = report.tests[1];
  EXPECT_EQ(bad.passed, 1);  // facts of the first test do not leak into the second
  EXPECT_EQ(bad.total, 3);
  ASSERT_EQ(bad.failures.size(), 2u);
  EXPECT_EQ(bad.failures[0].message, "expected true, got false");
  EXPECT_THAT(bad.failures[0].location, HasSubstr("t.polar:"));
  EXPECT_THAT(bad.failures[0].assertion, HasSubstr("allow(User{\"bob\"}, \"read\", Repo{\"other\"})"));
  EXPECT_EQ(bad.failures[1].message, "iff: missing [\"delete\", \"read\"], unexpected [\"write\"]");
  EXPECT_EQ(report.passed(), 4);
  EXPECT_EQ(report.failed(), 2);
}

TEST(FactsDecodingTest, JsonlAndPolar) {
  absl::StatusOr<std::vector<Fact>> f = ParseFactsJsonl(
      "{\"predicate\":\"has_role\",\"args\":[{\"type\":\"User\",\"id\":\"alice\"},{\"type\":\"String\",\"id\":"
      "\"admin\"},{\"type\":\"Org\",\"id\":\"acme\"}]}\n\n"
      "{\"predicate\":\"level\",\"args\":[{\"type\":\"Integer\",\"id\":\"-42\"},{\"type\":\"Boolean\",\"id\":\"true\"}]}\n");
  ASSERT_TRUE(f.ok()) << f.status().message();
  ASSERT_EQ(f->size(), 2u);
  EXPECT_EQ(ToString((*f)[0]), "has_role(User{\"alice\"}, \"admin\", Org{\"acme\"})");
  EXPECT_EQ(ToString((*f)[1]), "level(-42, true)");
  absl::StatusOr<std::vector<Fact>> p = ParseFactsPolar("has_role(User{\"alice\"}, \"admin\", Org{\"acme\"});\n", "x.polar");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ((*p)[0], (*f)[0]);
}

TEST(FactsDecodingTest, CanonicalLinesAndOtherShapesDecodeAlike) {
  // The canonical shape takes the scanner; spacing, other key orders, extra keys and escapes take the
  // JSON parser. All of them must give the same fact, and a bad line the parser's error.
  const std::string want = "has_role(User{\"a\\\"b\"}, \"admin\", Org{\"acme\"})";
  for (const char* line : {
           R"({"predicate":"has_role","args":[{"type":"User","id":"a\"b"},{"type":"String","id":"admin"},{"type":"Org","id":"acme"}]})",
           R"( { "predicate" : "has_role" , "args" : [ {"type":"User","id":"a\u0022b"}, {"type":"String","id":"admin"}, {"type":"Org","id":"acme"} ] } )",
           R"({"args":[{"id":"a\"b","type":"User"},{"type":"String","id":"admin"},{"type":"Org","id":"acme"}],"predicate":"has_role"})",
           R"({"predicate":"has_role","args":[{"type":"User","id":"a\"b","x":1},{"type":"String","id":"admin"},{"type":"Org","id":"acme"}],"note":"n"})"}) {
    absl::StatusOr<std::vector<Fact>> f = ParseFactsJsonl(line);
    ASSERT_TRUE(f.ok()) << line << ": " << f.status().message();
    ASSERT_EQ(f->size(), 1u) << line;
    EXPECT_EQ(ToString((*f)[0]), want) << line;
  }
  absl::StatusOr<std::vector<Fact>> plain = ParseFactsJsonl(
      R"({"predicate":"has_role","args":[{"type":"User","id":"alice"},{"type":"String","id":"admin"},{"type":"Org","id":"acme"}]})"
      "\r\n"
      R"({"predicate":"p","args":[]})");
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  ASSERT_EQ(plain->size(), 2u);
  EXPECT_EQ(ToString((*plain)[0]), "has_role(User{\"alice\"}, \"admin\", Org{\"acme\"})");
  EXPECT_EQ(ToString((*plain)[1]), "p()");
  // Trailing text after the object, invalid UTF-8 and an empty type are still errors.
  EXPECT_THAT(std::string(ParseFactsJsonl("{\"predicate\":\"p\",\"args\":[{\"type\":\"U\",\"id\":\"\xff\"}]}", "f.jsonl")
                              .status()
                              .message()),
              HasSubstr("f.jsonl:1: invalid JSON"));
  EXPECT_THAT(std::string(ParseFactsJsonl(R"({"predicate":"p","args":[]} x)", "f.jsonl").status().message()),
              HasSubstr("f.jsonl:1: invalid JSON"));
  EXPECT_EQ(std::string(ParseFactsJsonl(R"({"predicate":"p","args":[{"type":"","id":"x"}]})", "f.jsonl").status().message()),
            "f.jsonl:1: /args/0/type: empty type");
}

TEST(FactsDecodingTest, ErrorsNameLineAndPointer) {
  auto err = [](std::string_view text) { return std::string(ParseFactsJsonl(text, "f.jsonl").status().message()); };
  EXPECT_EQ(err("{\"predicate\":\"p\",\"args\":[]}\n{\"predicate\":\"p\",\"args\":[{\"type\":\"User\",\"id\":7}]}"),
            "f.jsonl:2: /args/0/id: expected a string");
  EXPECT_EQ(err("{\"predicate\":\"p\",\"args\":[{\"type\":\"Integer\",\"id\":\"4x\"}]}"),
            "f.jsonl:1: /args/0/id: invalid Integer id \"4x\"");
  EXPECT_EQ(err("{\"args\":[]}"), "f.jsonl:1: /predicate: expected a non-empty string");
  EXPECT_THAT(err("{not json"), HasSubstr("f.jsonl:1: invalid JSON"));
  EXPECT_EQ(err("[1]"), "f.jsonl:1: /: expected a fact object");
  EXPECT_EQ(err("{\"predicate\":\"p\",\"args\":[{\"id\":\"x\"}]}"), "f.jsonl:1: /args/0/type: missing");
}

TEST(ValuesTest, ParseTypedValueAndQueries) {
  EXPECT_EQ(*ParseTypedValue("User:alice"), (TypedValue{"User", "alice"}));
  EXPECT_EQ(*ParseTypedValue("read"), (TypedValue{"String", "read"}));
  EXPECT_EQ(*ParseTypedValue("Url:http://x"), (TypedValue{"Url", "http://x"}));
  EXPECT_FALSE(ParseTypedValue(":x").ok());
  EXPECT_EQ(ToString(TypedValue{"User", "alice"}), "User:alice");
  absl::StatusOr<ConjunctiveQuery> q = ParseQuery("allow(User:alice, action, r: Repo) and has_relation(r, \"parent\", Org:_)");
  ASSERT_TRUE(q.ok()) << q.status().message();
  ASSERT_EQ(q->calls.size(), 2u);
  EXPECT_EQ(q->calls[0].args[0].value, (TypedValue{"User", "alice"}));
  EXPECT_EQ(q->calls[0].args[1].var, "action");
  EXPECT_EQ(q->constraints["r"].type, "Repo");
  const std::string hidden = q->calls[1].args[2].var;
  EXPECT_EQ(hidden[0], '_');
  EXPECT_EQ(q->constraints[hidden].type, "Org");
}

}  // namespace
}  // namespace mandate::testing
