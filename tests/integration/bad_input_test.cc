// Bad input over real HTTP: each request gets the documented status and a message that says what
// was wrong and where, and changes nothing (facts, revision, policy and its versions).
#include <boost/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server_harness.h"

namespace mandate::testing {
namespace {

using ::testing::HasSubstr;

struct BadRequest {
  std::string name;
  std::string method;
  std::string target;
  std::string body;
  int status;
  std::string message;  // a substring of the error message
};

const std::string kAuthorizeOk =
    R"({"actor_type":"User","actor_id":"alice","action":"read","resource_type":"Repo","resource_id":"anvil"})";

const std::string kInvalidUtf8 =
    "[{\"inserts\":[{\"predicate\":\"has_role\",\"args\":[{\"type\":\"User\",\"id\":\"\xff\xfe\"}]}]}]";

std::vector<BadRequest> Cases() {
  const std::string fact6 =
      FactJson("has_role", {{"User", "a"}, {"String", "b"}, {"Org", "c"}, {"A", "1"}, {"A", "2"}, {"A", "3"}});
  return {
      {"malformed_json", "POST", "/api/batch", R"([{"inserts":[)", 400, "malformed JSON at byte offset 13"},
      {"malformed_json_read", "POST", "/api/authorize", "{\"actor_type\": \"User\",}", 400, "malformed JSON"},
      {"empty_body", "POST", "/api/batch", "", 400, "request body is empty"},
      {"invalid_utf8", "POST", "/api/batch", kInvalidUtf8, 400,
       "not valid UTF-8 (byte offset " + std::to_string(kInvalidUtf8.find('\xff')) + ")"},
      {"batch_not_array", "POST", "/api/batch", R"({"inserts":[]})", 400,
       "invalid request body: expected an array, got an object"},
      {"changeset_both_kinds", "POST", "/api/batch", R"([{"inserts":[],"deletes":[]}])", 400,
       "at /0: a changeset has exactly one of"},
      {"wrong_type_id", "POST", "/api/batch",
       R"([{"inserts":[{"predicate":"has_role","args":[{"type":"User","id":7}]}]}])", 400,
       "at /0/inserts/0/args/0/id: expected a string, got a number"},
      {"missing_predicate", "POST", "/api/batch", R"([{"inserts":[{"args":[{"type":"User","id":"a"}]}]}])", 400,
       "at /0/inserts/0/predicate: required field is missing"},
      {"wildcard_in_insert", "POST", "/api/batch",
       R"([{"inserts":[{"predicate":"is_public","args":[{"type":"Repo","id":"x"},{"type":null,"id":null}]}]}])", 400,
       "at /0/inserts/0/args/1/type: expected a string, got null"},
      {"unknown_predicate", "POST", "/api/batch",
       "[{\"inserts\":[" + FactJson("has_role", {{"User", "z"}, {"String", "member"}, {"Org", "acme"}}) + "," +
           FactJson("no_such_thing", {{"User", "alice"}}) + "]}]",
       400, "invalid request body at /0/inserts/1: "},
      {"wrong_argument_type", "POST", "/api/batch",
       "[{\"inserts\":[" + FactJson("is_public", {{"Repo", "x"}, {"String", "yes"}}) + "]}]", 400,
       "invalid request body at /0/inserts/0: "},
      {"too_many_args", "POST", "/api/batch", "[{\"inserts\":[" + fact6 + "]}]", 400,
       "at /0/inserts/0/args: a fact has 1 to 5 arguments, got 6"},
      {"arg_too_long", "POST", "/api/batch",
       "[{\"inserts\":[" + FactJson("audit_tag", {{"Repo", "x"}, {"String", std::string(385, 'x')}}) + "]}]", 400,
       "the id is 385 bytes; at most 384"},
      {"bad_integer", "POST", "/api/facts", FactJson("audit_tag", {{"Repo", "x"}, {"Integer", "1.5"}}), 400,
       "is not a 64-bit decimal integer"},
      {"delete_id_without_type", "POST", "/api/batch",
       R"([{"deletes":[{"predicate":"has_role","args":[{"type":null,"id":"alice"},{"type":null,"id":null},{"type":null,"id":null}]}]}])",
       400, "at /0/deletes/0/args/0/type: an argument with an id needs a type"},
      {"legacy_bulk_not_object", "POST", "/api/bulk", "[]", 400, "expected an object, got an array"},
      {"legacy_delete_missing_args", "DELETE", "/api/facts", R"({"predicate":"has_role"})", 400,
       "at /args: required field is missing"},
      {"read_missing_field", "POST", "/api/authorize",
       R"({"actor_type":"User","actor_id":"alice","resource_type":"Repo","resource_id":"anvil"})", 400,
       "at /action: required field is missing"},
      {"read_wrong_type", "POST", "/api/list",
       R"({"actor_type":"User","actor_id":"alice","action":"read","resource_type":["Repo"]})", 400,
       "at /resource_type: expected a string, got an array"},
      {"context_fact_unknown_predicate", "POST", "/api/authorize",
       R"({"actor_type":"User","actor_id":"alice","action":"read","resource_type":"Repo","resource_id":"anvil",)"
       R"("context_facts":[)" +
           FactJson("nope", {{"User", "a"}}) + "]}",
       400, "invalid request body at /context_facts/0: "},
      {"query_bad_shape", "POST", "/api/evaluate_query", R"({"predicate":["allow"]})", 400,
       "at /predicate: expected [predicate, [variables...]]"},
      {"bulk_actions_bad_item", "POST", "/api/bulk_actions", R"([{"actor_type":"User"}])", 400,
       "at /0/actor_id: required field is missing"},
      {"policy_not_string", "POST", "/api/policy", R"({"src":5})", 400, "at /src: expected a string, got a number"},
      {"facts_bad_param", "GET", "/api/facts?predicate=has_role&args.x.id=1", "", 400, "args.x.id"},
      {"facts_missing_predicate", "GET", "/api/facts?args.0.type=User", "", 400, "`predicate` is required"},
      {"actions_missing_field", "POST", "/api/actions",
       R"({"actor_type":"User","actor_id":"alice","resource_type":"Repo"})", 400,
       "at /resource_id: required field is missing"},
      {"actions_invalid_utf8", "POST", "/api/actions", "{\"actor_type\":\"\xc0\xaf\"}", 400,
       "not valid UTF-8 (byte offset 15)"},
      {"list_page_size_type", "POST", "/api/list",
       R"({"actor_type":"User","actor_id":"alice","action":"read","resource_type":"Repo","page_size":"10"})", 400,
       "at /page_size: expected an integer, got a string"},
      {"evaluate_query_bad_ids", "POST", "/api/evaluate_query",
       R"({"predicate":["allow",["a","b","c"]],"constraints":{"c":{"type":"Repo","ids":"anvil"}}})", 400,
       "at /constraints/c/ids: expected an array, got a string"},
      {"evaluate_query_context_fact", "POST", "/api/evaluate_query",
       R"({"predicate":["allow",["a","b","c"]],"context_facts":[{"predicate":"is_public","args":[]}]})", 400,
       "at /context_facts/0/args: a fact has 1 to 5 arguments, got 0"},
      {"query_missing_fact", "POST", "/api/query", R"({"context_facts":[]})", 400,
       "at /fact: required field is missing"},
      {"authorize_resources_bad_resource", "POST", "/api/authorize_resources",
       R"({"actor_type":"User","actor_id":"alice","action":"read","resources":[{"type":"Repo"}]})", 400,
       "at /resources/0/id: required field is missing"},
      {"bulk_load_not_array", "POST", "/api/bulk_load", "{}", 400, "expected an array, got an object"},
      {"bulk_load_unknown_predicate", "POST", "/api/bulk_load", "[" + FactJson("nope", {{"User", "a"}}) + "]", 400,
       "invalid request body at /0: "},
      {"bulk_delete_bad_args", "POST", "/api/bulk_delete", R"([{"predicate":"has_role","args":"all"}])", 400,
       "at /0/args: expected an array, got a string"},
      {"bulk_tell_unknown_predicate", "POST", "/api/bulk",
       R"({"delete":[],"tell":[)" + FactJson("nope", {{"User", "a"}}) + "]}", 400, "invalid request body at /tell/0: "},
      {"insert_fact_unknown_predicate", "POST", "/api/facts", FactJson("nope", {{"User", "a"}}), 400,
       "invalid request body: "},
      {"policy_version_not_a_number", "GET", "/api/policy?id=abc", "", 400, "not a policy version number"},
      {"policy_metadata_unknown_version", "GET", "/api/policy_metadata?version=42", "", 404, "no policy version 42"},
      {"policy_malformed_json", "POST", "/api/policy", "{\"src\": ", 400, "malformed JSON"},
  };
}

class BadInputTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (HasFatalFailure()) return;
    LoadPolicy();
    Batch("[{\"inserts\":[" + FactJson("has_role", {{"User", "alice"}, {"String", "member"}, {"Org", "acme"}}) + "," +
          FactJson("has_relation", {{"Repo", "anvil"}, {"String", "parent"}, {"Org", "acme"}}) + "]}]");
  }
};

TEST_F(BadInputTest, EachIsRejectedWithItsErrorAndChangesNothing) {
  const State before = Observe();
  ASSERT_EQ(before.facts.size(), 2u);
  for (const BadRequest& c : Cases()) {
    SCOPED_TRACE(c.name);
    HttpResult r =
        Http(server_->port(), c.method, c.target, c.body, {{"Authorization", std::string("Bearer ") + kAdminKey}});
    EXPECT_EQ(r.status, c.status) << r.body;
    EXPECT_THAT(r.Message(), HasSubstr(c.message)) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/json");
    EXPECT_FALSE(r.Header("x-request-id").empty());
    EXPECT_EQ(r.Header("osooffset"), "");
  }
  EXPECT_EQ(Observe(), before);
}

TEST_F(BadInputTest, OversizedBodiesAreRefusedWith413) {
  const State before = Observe();
  // A real 11 MiB body (a valid batch, so only its size is wrong).
  std::string big = "[{\"inserts\":[";
  const std::string fact = FactJson("audit_tag", {{"Repo", "anvil"}, {"String", std::string(300, 'x')}});
  while (big.size() < 11 * 1024 * 1024) big += fact + ",";
  big.back() = ']';
  big += "}]";
  HttpResult r = server_->Post("/api/batch", big);
  EXPECT_EQ(r.status, 413) << r.body.substr(0, 200);
  EXPECT_THAT(r.Message(), HasSubstr("exceeds the limit of 10485760 bytes"));
  // Refused from the header alone, before any body arrives.
  const std::string raw = RawExchange(server_->port(),
                                      "POST /api/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                          std::string(kAdminKey) + "\r\nContent-Length: 20000000\r\n\r\n",
                                      std::chrono::seconds(5));
  EXPECT_THAT(raw, HasSubstr("HTTP/1.1 413"));
  EXPECT_EQ(Observe(), before);
}

TEST_F(BadInputTest, MalformedHttpIsABadRequest) {
  const std::string raw = RawExchange(server_->port(), "NOT-HTTP\r\n\r\n", std::chrono::seconds(5));
  EXPECT_THAT(raw, HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(raw, HasSubstr("malformed HTTP request"));
}

}  // namespace
}  // namespace mandate::testing
