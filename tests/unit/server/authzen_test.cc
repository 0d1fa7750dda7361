// AuthZEN request validation (1.0 request schemas), defaults of boxcar requests, pages, type
// matching and the request-scoped facts (authzen.h).
#include "server/authzen.h"

#include <fstream>
#include <ostream>

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server/config.h"

namespace mandate {
// Readable failure messages.
void PrintTo(const TypedValue& v, std::ostream* os) { *os << ToString(v); }
void PrintTo(const Fact& f, std::ostream* os) { *os << ToString(f); }
}  // namespace mandate

namespace mandate::server {
namespace {

namespace json = boost::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

json::object Obj(std::string_view text) { return json::parse(text).as_object(); }

const JsonPointer kRoot;

absl::StatusOr<AuthzenTuple> Tuple(const json::object& o, AuthzenRequestKind kind = AuthzenRequestKind::kEvaluation) {
  return DecodeAuthzenTuple(o, kRoot, kind);
}

constexpr std::string_view kValid =
    R"({"subject":{"type":"user","id":"alice","properties":{"department":"Sales"}},
        "action":{"name":"can_read","properties":{"method":"GET"}},
        "resource":{"type":"account","id":"123"},
        "context":{"time":"1985-10-26T01:22-07:00"}})";

TEST(AuthzenDecode, AcceptsTheSchemaExample) {
  const json::object o = Obj(kValid);
  absl::StatusOr<AuthzenTuple> t = Tuple(o);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->subject->type, "user");
  EXPECT_EQ(t->subject->id, "alice");
  EXPECT_EQ(t->action->name, "can_read");
  EXPECT_EQ(t->resource->id, "123");
  ASSERT_NE(t->context, nullptr);
  ASSERT_NE(t->subject->properties, nullptr);
}

TEST(AuthzenDecode, IgnoresUnknownFields) {
  const json::object o = Obj(R"({"subject":{"type":"user","id":"a","_note":"x","identity":"y"},
      "action":{"name":"r","extra":[1]},"resource":{"type":"t","id":"1","ownerID":"z"},"whatever":{}})");
  EXPECT_TRUE(Tuple(o).ok());
}

TEST(AuthzenDecode, MissingPartsAreNamed) {
  for (const char* field : {"subject", "action", "resource"}) {
    json::object o = Obj(kValid);
    o.erase(field);
    absl::StatusOr<AuthzenTuple> t = Tuple(o);
    ASSERT_FALSE(t.ok()) << field;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(t.status().message(), HasSubstr(absl::StrCat("/", field, ": required field is missing")));
  }
}

TEST(AuthzenDecode, RejectsWhatTheSchemaRejects) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"subject":"alice","action":{"name":"r"},"resource":{"type":"t","id":"1"}})", "/subject"},
      {R"({"subject":{"id":"a"},"action":{"name":"r"},"resource":{"type":"t","id":"1"}})", "/subject/type"},
      {R"({"subject":{"type":"u"},"action":{"name":"r"},"resource":{"type":"t","id":"1"}})", "/subject/id"},
      {R"({"subject":{"type":"u","id":1},"action":{"name":"r"},"resource":{"type":"t","id":"1"}})", "/subject/id"},
      {R"({"subject":{"type":"u","id":"a","properties":[]},"action":{"name":"r"},"resource":{"type":"t","id":"1"}})",
       "/subject/properties"},
      {R"({"subject":{"type":"u","id":"a"},"action":{},"resource":{"type":"t","id":"1"}})", "/action/name"},
      {R"({"subject":{"type":"u","id":"a"},"action":{"name":true},"resource":{"type":"t","id":"1"}})", "/action/name"},
      {R"({"subject":{"type":"u","id":"a"},"action":{"name":"r","properties":1},"resource":{"type":"t","id":"1"}})",
       "/action/properties"},
      {R"({"subject":{"type":"u","id":"a"},"action":{"name":"r"},"resource":{"type":2,"id":"1"}})", "/resource/type"},
      {R"({"subject":{"type":"u","id":"a"},"action":{"name":"r"},"resource":{"type":"t","id":"1"},"context":[]})",
       "/context"},
  };
  for (const auto& [body, where] : cases) {
    absl::StatusOr<AuthzenTuple> t = Tuple(Obj(body));
    ASSERT_FALSE(t.ok()) << body;
    EXPECT_THAT(t.status().message(), HasSubstr(where)) << body;
  }
}

TEST(AuthzenDecode, SearchesMayOmitTheSearchedId) {
  const json::object subject_search = Obj(R"({"subject":{"type":"user"},"action":{"name":"r"},
      "resource":{"type":"t","id":"1"}})");
  EXPECT_TRUE(Tuple(subject_search, AuthzenRequestKind::kSubjectSearch).ok());
  EXPECT_FALSE(Tuple(subject_search, AuthzenRequestKind::kResourceSearch).ok());
  const json::object resource_search = Obj(R"({"subject":{"type":"user","id":"a"},"action":{"name":"r"},
      "resource":{"type":"t"}})");
  absl::StatusOr<AuthzenTuple> t = Tuple(resource_search, AuthzenRequestKind::kResourceSearch);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->resource->id.has_value());
  const json::object action_search = Obj(R"({"subject":{"type":"user","id":"a"},"resource":{"type":"t","id":"1"}})");
  EXPECT_TRUE(Tuple(action_search, AuthzenRequestKind::kActionSearch).ok());
  EXPECT_FALSE(Tuple(action_search, AuthzenRequestKind::kEvaluation).ok());
}

TEST(AuthzenBatch, TopLevelValuesAreDefaultsThatItemsOverride) {
  const json::object o = Obj(R"({"subject":{"type":"user","id":"alice"},"action":{"name":"read"},
      "context":{"time":"t"},
      "evaluations":[{"resource":{"type":"doc","id":"1"}},
                     {"action":{"name":"edit"},"resource":{"type":"doc","id":"2"}},
                     {"subject":{"type":"user","id":"bob"},"resource":{"type":"doc","id":"3"},"context":{"x":1}}]})");
  absl::StatusOr<AuthzenBatch> b = DecodeAuthzenBatch(o);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(b->has_evaluations);
  ASSERT_EQ(b->items.size(), 3u);
  EXPECT_EQ(b->items[0].action->name, "read");
  EXPECT_EQ(b->items[0].subject->id, "alice");
  EXPECT_EQ(b->items[1].action->name, "edit");
  EXPECT_EQ(b->items[2].subject->id, "bob");
  EXPECT_EQ(b->items[0].context, b->items[1].context);
  EXPECT_NE(b->items[2].context, b->items[0].context);
  EXPECT_EQ(b->semantic, EvaluationsSemantic::kExecuteAll);
}

TEST(AuthzenBatch, SemanticsAndErrors) {
  absl::StatusOr<AuthzenBatch> b = DecodeAuthzenBatch(Obj(R"({"subject":{"type":"u","id":"a"},
      "action":{"name":"r"},"options":{"evaluations_semantic":"deny_on_first_deny"},
      "evaluations":[{"resource":{"type":"t","id":"1"}}]})"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->semantic, EvaluationsSemantic::kDenyOnFirstDeny);

  b = DecodeAuthzenBatch(Obj(R"({"options":{"evaluations_semantic":"maybe"},"evaluations":[]})"));
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("/options/evaluations_semantic"));

  b = DecodeAuthzenBatch(Obj(R"({"subject":{"type":"u","id":"a"},"evaluations":[{"resource":{"type":"t","id":"1"}}]})"));
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("/evaluations/0/action: required field is missing"));

  // Without an evaluations array the request is one evaluation.
  b = DecodeAuthzenBatch(Obj(kValid));
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->has_evaluations);
  EXPECT_EQ(b->items.size(), 1u);
  EXPECT_FALSE(DecodeAuthzenBatch(Obj(R"({"subject":{"type":"u","id":"a"}})")).ok());
}

TEST(AuthzenPageTest, TokenAndLimit) {
  absl::StatusOr<AuthzenPage> p = DecodeAuthzenPage(Obj(R"({})"), kRoot);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->token.has_value());
  EXPECT_EQ(p->limit, kAuthzenMaxPageSize);
  p = DecodeAuthzenPage(Obj(R"({"page":{"token":"abc","limit":5}})"), kRoot);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->token, "abc");
  EXPECT_EQ(p->limit, 5);
  p = DecodeAuthzenPage(Obj(R"({"page":{"next_token":"","limit":100000}})"), kRoot);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->token.has_value());
  EXPECT_EQ(p->limit, kAuthzenMaxPageSize);
  EXPECT_FALSE(DecodeAuthzenPage(Obj(R"({"page":{"limit":-1}})"), kRoot).ok());
  EXPECT_FALSE(DecodeAuthzenPage(Obj(R"({"page":{"limit":"3"}})"), kRoot).ok());
  EXPECT_FALSE(DecodeAuthzenPage(Obj(R"({"page":{"token":3}})"), kRoot).ok());
}

TEST(AuthzenExplain, Option) {
  EXPECT_FALSE(*DecodeAuthzenExplain(Obj(R"({})")));
  EXPECT_TRUE(*DecodeAuthzenExplain(Obj(R"({"options":{"explain":true}})")));
  EXPECT_FALSE(DecodeAuthzenExplain(Obj(R"({"options":{"explain":"yes"}})")).ok());
}

std::shared_ptr<const Policy> Compile(const std::string& text) {
  absl::StatusOr<std::shared_ptr<const Policy>> p = Policy::Compile({SourceFile{"p.polar", text}});
  EXPECT_TRUE(p.ok()) << p.status();
  return *p;
}

TEST(AuthzenTypes, MatchedIgnoringCaseOrByTheConfig) {
  auto policy = Compile("actor User {}\nresource Todo {}\nresource ApiRoute {}\nresource todo_list {}\n");
  AuthzenConfig config;
  EXPECT_EQ(*ResolveAuthzenType(policy, config, "user"), "User");
  EXPECT_EQ(*ResolveAuthzenType(policy, config, "TODO"), "Todo");
  EXPECT_EQ(*ResolveAuthzenType(policy, config, "apiroute"), "ApiRoute");
  EXPECT_EQ(*ResolveAuthzenType(policy, config, "Todo_List"), "todo_list");
  absl::StatusOr<std::string> unknown = ResolveAuthzenType(policy, config, "robot");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(ResolveAuthzenType(policy, config, "global").ok());

  config.types["Identity"] = "User";
  config.types["route"] = "ApiRoute";
  EXPECT_EQ(*ResolveAuthzenType(policy, config, "identity"), "User");
  EXPECT_EQ(*ResolveAuthzenType(policy, config, "ROUTE"), "ApiRoute");
}

TEST(AuthzenTypes, AmbiguousNamesNeedAMapping) {
  auto policy = Compile("actor User {}\nresource USER {}\n");
  AuthzenConfig config;
  EXPECT_EQ(*ResolveAuthzenType(policy, config, "USER"), "USER");
  absl::StatusOr<std::string> t = ResolveAuthzenType(policy, config, "user");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("several"));
  config.types["user"] = "User";
  EXPECT_EQ(*ResolveAuthzenType(policy, config, "user"), "User");
}

TEST(AuthzenFactsTest, ScalarConversion) {
  std::vector<TypedValue> v;
  for (const char* text : {R"("s")", "true", "42", "-7", "3.0", "2.5", "1e300", "18446744073709551615", "null", R"([1,"a",[2],{"x":1}])"}) {
    AuthzenScalars(json::parse(text), &v);
  }
  EXPECT_THAT(v, ElementsAre(TypedValue{"String", "s"}, TypedValue{"Boolean", "true"}, TypedValue{"Integer", "42"},
                             TypedValue{"Integer", "-7"}, TypedValue{"Integer", "3"}, TypedValue{"String", "2.5"}, TypedValue{"String", "1e+300"},
                             TypedValue{"String", "18446744073709551615"}, TypedValue{"Integer", "1"},
                             TypedValue{"String", "a"}));
}

TEST(AuthzenFactsTest, PropertiesAndContextBecomeFacts) {
  const json::object o = Obj(R"({"subject":{"type":"user","id":"alice","properties":{"roles":["a","b"]}},
      "action":{"name":"read","properties":{"method":"GET"}},
      "resource":{"type":"book","id":"1","properties":{"library_record":{"isbn":"978","pages":300}}},
      "context":{"ip":"10.0.0.1","trusted":false}})");
  absl::StatusOr<AuthzenTuple> t = Tuple(o);
  ASSERT_TRUE(t.ok());
  const TypedValue alice{"User", "alice"};
  const TypedValue book{"Book", "1"};
  const TypedValue key_roles{"String", "roles"};
  std::vector<Fact> facts = AuthzenFacts(*t, alice, book);
  auto fact = [](std::string p, std::vector<TypedValue> args) { return Fact{std::move(p), std::move(args)}; };
  EXPECT_THAT(facts,
              ElementsAre(fact("subject_property", {alice, key_roles, {"String", "a"}}),
                          fact("subject_property", {alice, key_roles, {"String", "b"}}),
                          fact("resource_property", {book, {"String", "library_record.isbn"}, {"String", "978"}}),
                          fact("resource_property", {book, {"String", "library_record.pages"}, {"Integer", "300"}}),
                          fact("action_property", {{"String", "read"}, {"String", "method"}, {"String", "GET"}}),
                          fact("context", {{"String", "ip"}, {"String", "10.0.0.1"}}),
                          fact("context", {{"String", "trusted"}, {"Boolean", "false"}})));
  // A search names no instance for the searched entity: its properties have nothing to attach to.
  facts = AuthzenFacts(*t, std::nullopt, std::nullopt);
  EXPECT_EQ(facts.size(), 3u);
}

TEST(AuthzenFactsTest, TheEngineSeesThem) {
  auto policy = Compile(R"(actor User {}
resource Book { permissions = ["read"]; }
has_permission(user: User, "read", book: Book) if
  subject_property(user, "department", "Sales") and resource_property(book, "isbn", "978") and
  context("trusted", true);
)");
  Database db(policy);
  const json::object o = Obj(R"({"subject":{"type":"user","id":"a","properties":{"department":"Sales"}},
      "action":{"name":"read"},"resource":{"type":"book","id":"1","properties":{"isbn":"978"}},
      "context":{"trusted":true}})");
  absl::StatusOr<AuthzenTuple> t = Tuple(o);
  ASSERT_TRUE(t.ok());
  const TypedValue user{"User", "a"};
  const TypedValue book{"Book", "1"};
  QueryOptions options;
  options.context_facts = AuthzenFacts(*t, user, book);
  EXPECT_TRUE(db.snapshot()->Check(user, "read", book, options).allowed);
  options.context_facts.pop_back();  // without context("trusted", true)
  EXPECT_FALSE(db.snapshot()->Check(user, "read", book, options).allowed);
}

TEST(AuthzenConfigFile, ReadsTheSection) {
  const std::string path = ::testing::TempDir() + "/mandate-authzen-config-test.toml";
  {
    std::ofstream out(path);
    out << "[authzen]\npolicy_decision_point = \"https://pdp.example.com\"\n[authzen.types]\nidentity = \"User\"\n";
  }
  ServerConfig c;
  ASSERT_TRUE(LoadConfigFile(path, &c).ok());
  EXPECT_EQ(c.authzen.policy_decision_point, "https://pdp.example.com");
  EXPECT_EQ(c.authzen.types.at("identity"), "User");
  {
    std::ofstream out(path);
    out << "[authzen]\npolicy_decision_point = \"pdp.example.com\"\n";
  }
  EXPECT_FALSE(LoadConfigFile(path, &c).ok());
  {
    std::ofstream out(path);
    out << "[authzen.types]\nidentity = 3\n";
  }
  EXPECT_FALSE(LoadConfigFile(path, &c).ok());
}

}  // namespace
}  // namespace mandate::server
