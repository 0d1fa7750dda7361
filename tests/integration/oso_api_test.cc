// Every endpoint of the Oso Cloud–compatible API over real HTTP, with the wire formats of the
// official clients (see /work/shared/reference/oso-cloud.md §1 and docs/api.md).
#include <regex>
#include <set>

#include <boost/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server_harness.h"

namespace mandate::testing {
namespace {

namespace json = boost::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string Str(const json::value& v) { return json::serialize(v); }

const std::string kAliceMember = FactJson("has_role", {{"User", "alice"}, {"String", "member"}, {"Org", "acme"}});
const std::string kBobWriter = FactJson("has_role", {{"User", "bob"}, {"String", "writer"}, {"Repo", "anvil"}});
const std::string kAnvilParent = FactJson("has_relation", {{"Repo", "anvil"}, {"String", "parent"}, {"Org", "acme"}});
const std::string kHammerParent = FactJson("has_relation", {{"Repo", "hammer"}, {"String", "parent"}, {"Org", "acme"}});
const std::string kGizmoPublic = FactJson("is_public", {{"Repo", "gizmo"}, {"Boolean", "true"}});

class OsoApiTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (HasFatalFailure()) return;
    LoadPolicy();
    Batch("[{\"inserts\":[" + kAliceMember + "," + kBobWriter + "," + kAnvilParent + "," + kHammerParent + "," +
          kGizmoPublic + "]}]");
  }
  bool Authorize(const std::string& user, const std::string& action, const std::string& repo,
                 const std::string& context = "[]") {
    HttpResult r = server_->Post("/api/authorize", R"({"actor_type":"User","actor_id":")" + user + R"(","action":")" +
                                                       action + R"(","resource_type":"Repo","resource_id":")" + repo +
                                                       R"(","context_facts":)" + context + "}");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json.is_object() && r.json.as_object().at("allowed").as_bool();
  }
};

TEST_F(OsoApiTest, Authorize) {
  EXPECT_TRUE(Authorize("alice", "read", "anvil"));
  EXPECT_FALSE(Authorize("alice", "push", "anvil"));
  EXPECT_TRUE(Authorize("bob", "push", "anvil"));
  EXPECT_TRUE(Authorize("carol", "read", "gizmo"));
  EXPECT_FALSE(Authorize("carol", "read", "anvil"));
  // Context facts count for this request only.
  const std::string ctx =
      "[" + FactJson("has_role", {{"User", "carol"}, {"String", "reader"}, {"Repo", "anvil"}}) + "]";
  EXPECT_TRUE(Authorize("carol", "read", "anvil", ctx));
  EXPECT_FALSE(Authorize("carol", "read", "anvil"));
  // The response is exactly {"allowed": bool}.
  HttpResult r = server_->Post(
      "/api/authorize",
      R"({"actor_type":"User","actor_id":"alice","action":"read","resource_type":"Repo","resource_id":"anvil"})");
  EXPECT_EQ(r.body, R"({"allowed":true})");
  EXPECT_EQ(r.Header("content-type"), "application/json");
}

TEST_F(OsoApiTest, ListWithPagination) {
  const std::string q =
      R"({"actor_type":"User","actor_id":"alice","action":"read","resource_type":"Repo","context_facts":[])";
  HttpResult all = server_->Post("/api/list", q + "}");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(Str(all.json), R"({"results":["anvil","gizmo","hammer"],"next_page_token":null})");

  std::vector<std::string> seen;
  HttpResult page = server_->Post("/api/list", q + R"(,"page_size":2})");
  ASSERT_EQ(page.status, 200) << page.body;
  for (int guard = 0; guard < 5; ++guard) {
    for (const json::value& id : page.json.at("results").as_array()) seen.emplace_back(id.as_string());
    const json::value& next = page.json.at("next_page_token");
    if (next.is_null()) break;
    page = server_->Post("/api/list", q + R"(,"page_size":2,"page_token":)" + Str(next) + "}");
    ASSERT_EQ(page.status, 200) << page.body;
  }
  EXPECT_THAT(seen, ElementsAre("anvil", "gizmo", "hammer"));

  EXPECT_EQ(server_->Post("/api/list", q + R"(,"page_token":"garbage!"})").status, 400);
  EXPECT_EQ(server_->Post("/api/list", q + R"(,"page_size":0})").status, 400);
}

TEST_F(OsoApiTest, ActionsAndBulkActions) {
  HttpResult r = server_->Post(
      "/api/actions",
      R"({"actor_type":"User","actor_id":"bob","resource_type":"Repo","resource_id":"anvil","context_facts":[]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Str(r.json), R"({"results":["push","read"]})");
  HttpResult bulk =
      server_->Post("/api/bulk_actions",
                    R"([{"actor_type":"User","actor_id":"bob","resource_type":"Repo","resource_id":"anvil"},)"
                    R"({"actor_type":"User","actor_id":"alice","resource_type":"Repo","resource_id":"anvil"},)"
                    R"({"actor_type":"User","actor_id":"nobody","resource_type":"Repo","resource_id":"anvil"}])");
  ASSERT_EQ(bulk.status, 200) << bulk.body;
  EXPECT_EQ(Str(bulk.json), R"([{"results":["push","read"]},{"results":["read"]},{"results":[]}])");
}

TEST_F(OsoApiTest, AuthorizeResourcesKeepsOrderAndDuplicates) {
  HttpResult r =
      server_->Post("/api/authorize_resources",
                    R"({"actor_type":"User","actor_id":"alice","action":"read","resources":[)"
                    R"({"type":"Repo","id":"hammer"},{"type":"Repo","id":"secret"},{"type":"Repo","id":"anvil"},)"
                    R"({"type":"Repo","id":"hammer"}],"context_facts":[]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      Str(r.json),
      R"({"results":[{"type":"Repo","id":"hammer"},{"type":"Repo","id":"anvil"},{"type":"Repo","id":"hammer"}]})");
  HttpResult none = server_->Post("/api/authorize_resources",
                                  R"({"actor_type":"User","actor_id":"alice","action":"read","resources":null})");
  EXPECT_EQ(Str(none.json), R"({"results":[]})");
}

TEST_F(OsoApiTest, EvaluateQueryV2) {
  // buildQuery(["allow", alice, action, repo]).and(["has_relation", repo, "parent", acme]).evaluate([action, repo])
  HttpResult r = server_->Post("/api/evaluate_query", R"({
    "predicate":["allow",["var_a","var_act","var_r"]],
    "calls":[["has_relation",["var_r","var_p","var_o"]]],
    "constraints":{"var_a":{"type":"User","ids":["alice"]},"var_act":{"type":"String","ids":null},
                   "var_r":{"type":"Repo","ids":null},"var_p":{"type":"String","ids":["parent"]},
                   "var_o":{"type":"Org","ids":["acme"]}},
    "context_facts":[]})");
  ASSERT_EQ(r.status, 200) << r.body;
  std::set<std::string> pairs;
  for (const json::value& row : r.json.at("results").as_array()) {
    pairs.insert(std::string(row.at("var_act").as_string()) + ":" + std::string(row.at("var_r").as_string()));
    EXPECT_EQ(row.at("var_a").as_string(), "alice");
  }
  EXPECT_EQ(pairs, (std::set<std::string>{"read:anvil", "read:hammer"}));

  // `in` constraint and context facts.
  HttpResult in = server_->Post("/api/evaluate_query", R"({
    "predicate":["allow",["var_a","var_act","var_r"]], "calls":[],
    "constraints":{"var_a":{"type":"User","ids":["carol"]},"var_act":{"type":"String","ids":["read"]},
                   "var_r":{"type":"Repo","ids":["anvil","gizmo"]}},
    "context_facts":[)" + FactJson("is_public", {{"Repo", "anvil"}, {"Boolean", "true"}}) +
                                                           "]}");
  ASSERT_EQ(in.status, 200) << in.body;
  std::set<std::string> repos;
  for (const json::value& row : in.json.at("results").as_array())
    repos.insert(std::string(row.at("var_r").as_string()));
  EXPECT_EQ(repos, (std::set<std::string>{"anvil", "gizmo"}));
}

TEST_F(OsoApiTest, LegacyQueryReturnsFacts) {
  HttpResult r =
      server_->Post("/api/query", R"({"fact":{"predicate":"allow","args":[{"type":"User","id":"bob"},)"
                                  R"({"type":"String","id":null},{"type":"Repo","id":"anvil"}]},"context_facts":[]})");
  ASSERT_EQ(r.status, 200) << r.body;
  std::set<std::string> facts;
  for (const json::value& f : r.json.at("results").as_array()) facts.insert(Str(f));
  EXPECT_EQ(
      facts,
      (std::set<std::string>{
          R"({"predicate":"allow","args":[{"type":"User","id":"bob"},{"type":"String","id":"push"},{"type":"Repo","id":"anvil"}]})",
          R"({"predicate":"allow","args":[{"type":"User","id":"bob"},{"type":"String","id":"read"},{"type":"Repo","id":"anvil"}]})"}));
}

TEST_F(OsoApiTest, GetFactsFiltersByArguments) {
  HttpResult r = server_->Get("/api/facts?predicate=has_role&args.0.type=User&args.0.id=alice");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Str(r.json), "[" + kAliceMember + "]");
  HttpResult by_type = server_->Get("/api/facts?predicate=has_relation&args.2.type=Org&args.2.id=acme");
  EXPECT_EQ(by_type.json.as_array().size(), 2u);
  HttpResult none = server_->Get("/api/facts?predicate=has_role&args.0.type=User&args.0.id=zed");
  EXPECT_EQ(none.body, "[]");
  EXPECT_EQ(server_->Get("/api/facts").status, 400);
  EXPECT_THAT(server_->Get("/api/facts?predicate=has_role&args.9.id=x").Message(), HasSubstr("args.9.id"));
  EXPECT_THAT(server_->Get("/api/facts?predicate=has_role&args.0.id=alice").Message(), HasSubstr("needs args.0.type"));
}

TEST_F(OsoApiTest, BatchAppliesChangesetsInOrderWithWildcardDeletes) {
  const uint64_t before = server_->Revision();
  // Insert then delete in one batch, and a wildcard delete of every role alice has on any Org.
  const uint64_t offset = Batch(
      "[{\"inserts\":[" + FactJson("has_role", {{"User", "alice"}, {"String", "admin"}, {"Org", "acme"}}) + "]}," +
      R"({"deletes":[{"predicate":"has_role","args":[{"type":"User","id":"alice"},{"type":null,"id":null},{"type":"Org","id":null}]}]},)" +
      "{\"inserts\":[" + FactJson("has_role", {{"User", "dan"}, {"String", "reader"}, {"Repo", "anvil"}}) + "]}]");
  EXPECT_GT(offset, before);
  EXPECT_EQ(server_->Revision(), offset);
  EXPECT_EQ(server_->Get("/api/facts?predicate=has_role&args.0.type=User&args.0.id=alice").body, "[]");
  EXPECT_EQ(server_->Get("/api/facts?predicate=has_role&args.0.type=User&args.0.id=dan").json.as_array().size(), 1u);
  // A delete that matches nothing is fine.
  Batch(
      R"([{"deletes":[{"predicate":"has_role","args":[{"type":"User","id":"nobody"},{"type":null,"id":null},{"type":null,"id":null}]}]}])");
}

TEST_F(OsoApiTest, BatchIsIdempotentUnderClientRetries) {
  const std::string batch =
      "[{\"inserts\":[" + FactJson("audit_tag", {{"Repo", "anvil"}, {"String", "sox"}}) + "]}," +
      R"({"deletes":[{"predicate":"is_public","args":[{"type":"Repo","id":"gizmo"},{"type":null,"id":null}]}]}])";
  Batch(batch);
  const std::vector<std::string> once = AllFacts();
  Batch(batch);
  Batch(batch);
  EXPECT_EQ(AllFacts(), once);
}

TEST_F(OsoApiTest, LegacyFactEndpoints) {
  const std::string carol = FactJson("has_role", {{"User", "carol"}, {"String", "reader"}, {"Repo", "hammer"}});
  HttpResult tell = server_->Post("/api/facts", carol);
  ASSERT_EQ(tell.status, 200) << tell.body;
  EXPECT_EQ(tell.body, carol);
  EXPECT_FALSE(tell.Header("osooffset").empty());
  EXPECT_EQ(server_->Delete("/api/facts", carol).status, 200);
  EXPECT_EQ(server_->Get("/api/facts?predicate=has_role&args.0.type=User&args.0.id=carol").body, "[]");

  HttpResult load = server_->Post(
      "/api/bulk_load", "[" + carol + "," + FactJson("audit_tag", {{"Repo", "hammer"}, {"String", "x"}}) + "]");
  ASSERT_EQ(load.status, 200) << load.body;
  EXPECT_EQ(server_->Get("/api/facts?predicate=audit_tag").json.as_array().size(), 1u);
  HttpResult del = server_->Post(
      "/api/bulk_delete", R"([{"predicate":"audit_tag","args":[{"type":null,"id":null},{"type":null,"id":null}]}])");
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(server_->Get("/api/facts?predicate=audit_tag").body, "[]");

  // /bulk: deletes run before inserts.
  HttpResult bulk =
      server_->Post("/api/bulk", R"({"delete":[{"predicate":"has_role","args":[{"type":"User","id":"carol"},)"
                                 R"({"type":null,"id":null},{"type":null,"id":null}]}],"tell":[)" +
                                     carol + "]}");
  ASSERT_EQ(bulk.status, 200) << bulk.body;
  EXPECT_EQ(server_->Get("/api/facts?predicate=has_role&args.0.type=User&args.0.id=carol").body, "[" + carol + "]");
}

TEST_F(OsoApiTest, PolicyUploadVersionsAndMetadata) {
  HttpResult got = server_->Get("/api/policy");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.json.at("policy").at("src").as_string(), ReadFile(TestData("policy.polar")));
  EXPECT_TRUE(got.json.at("policy").at("filename").is_null());

  // The same text again: 202, nothing new stored.
  const std::string same = json::serialize(json::object{{"src", ReadFile(TestData("policy.polar"))}, {"filename", ""}});
  const uint64_t rev = server_->Revision();
  HttpResult again = server_->Post("/api/policy", same);
  EXPECT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(server_->Revision(), rev);

  // A changed policy becomes version 2.
  const std::string v2 = json::serialize(
      json::object{{"src", ReadFile(TestData("policy.polar")) + "\n# v2\n"}, {"filename", "main.polar"}});
  HttpResult updated = server_->Post("/api/policy", v2);
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(std::stoull(updated.Header("osooffset")), rev + 1);
  HttpResult versions = server_->Get("/v1/policy/versions");
  ASSERT_EQ(versions.status, 200);
  const json::array& list = versions.json.at("versions").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].at("version").as_int64(), 2);
  EXPECT_EQ(list[1].at("filename").as_string(), "main.polar");
  EXPECT_TRUE(list[1].at("active").as_bool());
  EXPECT_FALSE(list[0].at("active").as_bool());
  EXPECT_EQ(list[0].at("sha256").as_string().size(), 64u);
  EXPECT_EQ(versions.json.at("active_version").as_int64(), 2);
  // Older versions stay readable.
  HttpResult v1 = server_->Get("/api/policy?id=1");
  EXPECT_EQ(v1.json.at("policy").at("src").as_string(), ReadFile(TestData("policy.polar")));
  EXPECT_EQ(server_->Get("/api/policy?id=9").status, 404);

  HttpResult meta = server_->Get("/api/policy_metadata");
  ASSERT_EQ(meta.status, 200) << meta.body;
  const json::value& repo = meta.json.at("metadata").at("resources").at("Repo");
  EXPECT_EQ(Str(repo.at("roles")), R"(["reader","writer"])");
  EXPECT_EQ(Str(repo.at("permissions")), R"(["read","push"])");
  EXPECT_EQ(Str(repo.at("relations")), R"({"parent":"Org"})");
  EXPECT_EQ(server_->Get("/api/policy_metadata?version=1").status, 200);
}

TEST_F(OsoApiTest, PolicyUploadRejectionsUseSavePolicyErrorShapes) {
  const State before = Observe();
  HttpResult syntax = server_->Post("/api/policy", R"({"src":"actor User {\n  roles = [;\n}","filename":"bad.polar"})");
  EXPECT_EQ(syntax.status, 400) << syntax.body;
  EXPECT_EQ(syntax.json.at("error_type").as_string(), "Validation");
  ASSERT_FALSE(syntax.json.at("errors").as_array().empty());
  EXPECT_EQ(syntax.json.at("errors").as_array()[0].at("error_type").as_string(), "ValidationFailed");
  EXPECT_THAT(syntax.Message(), HasSubstr("bad.polar:2"));

  HttpResult tests = server_->Post(
      "/api/policy", json::serialize(json::object{{"src", ReadFile(TestData("policy_failing_test.polar"))}}));
  EXPECT_EQ(tests.status, 400) << tests.body;
  EXPECT_EQ(tests.json.at("error_type").as_string(), "TestsFailed");
  const json::value& results = tests.json.at("test_results");
  EXPECT_FALSE(results.at("success").as_bool());
  ASSERT_EQ(results.at("tests").as_array().size(), 1u);
  EXPECT_EQ(results.at("tests").as_array()[0].at("name").as_string(), "readers can push (wrong on purpose)");
  EXPECT_EQ(results.at("tests").as_array()[0].at("passed").as_int64(), 1);
  EXPECT_EQ(results.at("tests").as_array()[0].at("total").as_int64(), 2);
  EXPECT_EQ(results.at("errors").as_array()[0].at("error_type").as_string(), "AssertionFailed");

  // A policy under which stored facts would no longer type-check is refused.
  HttpResult orphan =
      server_->Post("/api/policy", R"({"src":"actor User {}\nresource Repo { permissions = [\"read\"]; }"})");
  EXPECT_EQ(orphan.status, 400) << orphan.body;
  EXPECT_EQ(orphan.json.at("error_type").as_string(), "Validation");
  EXPECT_THAT(orphan.Message(), HasSubstr("stored fact(s) do not match the new policy"));

  HttpResult generic = server_->Post("/api/policy", R"({"source":"x"})");
  EXPECT_EQ(generic.status, 400);
  EXPECT_EQ(generic.json.at("error_type").as_string(), "Generic");
  EXPECT_THAT(generic.Message(), HasSubstr("/src: required field is missing"));
  EXPECT_EQ(Observe(), before);
}

TEST_F(OsoApiTest, ClearDataDeletesFactsAndKeepsThePolicy) {
  const uint64_t rev = server_->Revision();
  HttpResult r = server_->Post("/api/clear_data", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(std::stoull(r.Header("osooffset")), rev + 1);
  EXPECT_THAT(AllFacts(), IsEmpty());
  EXPECT_FALSE(server_->Get("/api/policy").json.at("policy").is_null());
}

TEST_F(OsoApiTest, Stats) {
  HttpResult r = server_->Get("/api/stats");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("num_facts").to_number<uint64_t>(), 5u);
  EXPECT_EQ(r.json.at("num_roles").to_number<uint64_t>(), 2u);
  EXPECT_EQ(r.json.at("num_relations").to_number<uint64_t>(), 2u);
  EXPECT_EQ(Str(r.json.at("facts").at("predicates")), R"({"has_relation":2,"has_role":2,"is_public":1})");
  EXPECT_EQ(r.json.at("policy").at("versions").as_array().size(), 1u);
}

TEST_F(OsoApiTest, UnsupportedOsoFeaturesSaySo) {
  HttpResult r = server_->Post("/api/list_query", "{}");
  EXPECT_EQ(r.status, 501);
  EXPECT_THAT(r.Message(), HasSubstr("not provide"));
}

TEST_F(OsoApiTest, HeadersRequestIdServerTimingAndOffsets) {
  HttpResult echoed = server_->Get("/api/policy", kAdminKey, {{"X-Request-ID", "req-123"}});
  EXPECT_EQ(echoed.Header("x-request-id"), "req-123");
  HttpResult generated = server_->Get("/api/policy");
  EXPECT_TRUE(std::regex_match(generated.Header("x-request-id"),
                               std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << generated.Header("x-request-id");
  EXPECT_TRUE(std::regex_match(generated.Header("server-timing"), std::regex("oso;dur=[0-9]+\\.[0-9]{3}")))
      << generated.Header("server-timing");

  // A read with an OsoOffset the server has reached is answered; one from the future gets 409.
  const std::string rev = std::to_string(server_->Revision());
  EXPECT_EQ(server_->Get("/api/facts?predicate=has_role", kAdminKey, {{"OsoOffset", rev}}).status, 200);
  HttpResult ahead = server_->Get("/api/facts?predicate=has_role", kAdminKey, {{"OsoOffset", "999999"}});
  EXPECT_EQ(ahead.status, 409);
  EXPECT_EQ(ahead.Header("retry-after"), "1");
  EXPECT_THAT(ahead.Message(), HasSubstr("OsoOffset 999999"));
  // An offset that is not ours (e.g. from Oso Cloud) is ignored.
  EXPECT_EQ(server_->Get("/api/facts?predicate=has_role", kAdminKey, {{"OsoOffset", "oso-abc"}}).status, 200);
}

TEST_F(OsoApiTest, AuthenticationAndRoles) {
  const std::string authorize =
      R"({"actor_type":"User","actor_id":"alice","action":"read","resource_type":"Repo","resource_id":"anvil"})";
  HttpResult missing = server_->Post("/api/authorize", authorize, "");
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.Header("www-authenticate"), "Bearer");
  EXPECT_THAT(missing.Message(), HasSubstr("missing API key"));
  EXPECT_EQ(server_->Post("/api/authorize", authorize, "wrong-key").status, 401);
  EXPECT_EQ(server_->Post("/api/authorize", authorize, kReadKey).status, 200);
  const State before = Observe();
  HttpResult forbidden = server_->Post("/api/batch", "[{\"inserts\":[" + kGizmoPublic + "]}]", kReadKey);
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_THAT(forbidden.Message(), HasSubstr("read-only"));
  EXPECT_EQ(server_->Post("/api/clear_data", "", kReadKey).status, 403);
  EXPECT_EQ(server_->Post("/api/clear_data", "", "").status, 401);
  EXPECT_EQ(Observe(), before);
}

TEST_F(OsoApiTest, HealthAndMetrics) {
  EXPECT_EQ(server_->Get("/healthz", "").status, 200);
  EXPECT_EQ(server_->Get("/api/healthcheck", "").status, 200);
  HttpResult ready = server_->Get("/readyz", "");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.json.at("status").as_string(), "ready");
  Authorize("alice", "read", "anvil");
  Authorize("alice", "push", "anvil");
  HttpResult m = server_->Get("/metrics", "");
  ASSERT_EQ(m.status, 200);
  EXPECT_THAT(m.Header("content-type"), HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(m.body, HasSubstr("mandate_http_requests_total{route=\"POST /api/authorize\",status=\"200\"} 2\n"));
  EXPECT_THAT(m.body,
              HasSubstr("mandate_http_request_duration_seconds_bucket{route=\"POST /api/authorize\",le=\"+Inf\"} 2\n"));
  EXPECT_THAT(m.body, HasSubstr("mandate_decisions_total{outcome=\"allow\"} 1\n"));
  EXPECT_THAT(m.body, HasSubstr("mandate_decisions_total{outcome=\"deny\"} 1\n"));
  EXPECT_THAT(m.body, HasSubstr("\nmandate_facts 5\n"));
  EXPECT_THAT(m.body, HasSubstr("\nmandate_policy_version 1\n"));
  EXPECT_THAT(m.body, HasSubstr("\nmandate_revision " + std::to_string(server_->Revision()) + "\n"));
}

TEST_F(OsoApiTest, UnknownPathsAndMethods) {
  HttpResult missing = server_->Get("/api/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Message(), "no such endpoint: GET /api/nope");
  HttpResult method = server_->Delete("/api/authorize", "");
  EXPECT_EQ(method.status, 405);
  EXPECT_EQ(method.Header("allow"), "POST");
  EXPECT_EQ(server_->Get("/api/facts?predicate=has_role", kAdminKey).status, 200);
  EXPECT_EQ(Http(server_->port(), "PUT", "/api/facts", "{}", {{"Authorization", std::string("Bearer ") + kAdminKey}})
                .Header("allow"),
            "GET, POST, DELETE");
}

// A rule that holds for any resource of a type: list and actions cannot enumerate it (422), and
// evaluate_query reports the unbound variable as null (a wildcard).
TEST_F(ServerTest, UnboundedResultsAreWildcards) {
  const std::string policy =
      "actor User {}\n"
      "resource Repo { permissions = [\"read\"]; }\n"
      "has_permission(user: User, \"read\", _repo: Repo) if is_admin(user, true);\n";
  ASSERT_EQ(server_->Post("/api/policy", json::serialize(json::object{{"src", policy}})).status, 200);
  Batch("[{\"inserts\":[" + FactJson("is_admin", {{"User", "root"}, {"Boolean", "true"}}) + "]}]");
  HttpResult list =
      server_->Post("/api/list", R"({"actor_type":"User","actor_id":"root","action":"read","resource_type":"Repo"})");
  EXPECT_EQ(list.status, 422) << list.body;
  EXPECT_THAT(list.Message(), HasSubstr("unbounded"));
  HttpResult query = server_->Post("/api/evaluate_query", R"({"predicate":["allow",["a","b","c"]],
    "constraints":{"a":{"type":"User","ids":["root"]},"b":{"type":"String","ids":["read"]},"c":{"type":"Repo","ids":null}}})");
  ASSERT_EQ(query.status, 200) << query.body;
  EXPECT_EQ(Str(query.json), R"({"results":[{"a":"root","b":"read","c":null}]})");
  HttpResult authorized = server_->Post(
      "/api/authorize",
      R"({"actor_type":"User","actor_id":"root","action":"read","resource_type":"Repo","resource_id":"any"})");
  EXPECT_EQ(authorized.body, R"({"allowed":true})");
}

}  // namespace
}  // namespace mandate::testing
