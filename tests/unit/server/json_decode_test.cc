// Decoding of request bodies: every rejection names its place with a JSON pointer.
#include "server/json_decode.h"

#include <boost/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mandate::server {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

json::value Parse(std::string_view text) {
  auto v = ParseJsonBody(text);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : json::value();
}

// The error message of a failed decode, or "" if it succeeded.
template <typename T>
std::string ErrorOf(const absl::StatusOr<T>& r) {
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

TEST(JsonPointerTest, EscapesKeysAndFormatsErrors) {
  const JsonPointer root;
  EXPECT_EQ(root.Key("a/b").Key("c~d").Index(3).str(), "/a~1b/c~0d/3");
  EXPECT_EQ(root.Error("boom").message(), "invalid request body: boom");
  EXPECT_EQ(root.Key("x").Error("boom").message(), "invalid request body at /x: boom");
}

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_EQ(FindInvalidUtf8(""), std::nullopt);
  EXPECT_EQ(FindInvalidUtf8("plain ascii"), std::nullopt);
  EXPECT_EQ(FindInvalidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::nullopt);
  EXPECT_EQ(FindInvalidUtf8("\xf4\x8f\xbf\xbf"), std::nullopt);  // U+10FFFF
}

TEST(Utf8Test, FindsTheFirstBadByte) {
  EXPECT_EQ(FindInvalidUtf8("ab\xff"), 2u);
  EXPECT_EQ(FindInvalidUtf8("a\x80"), 1u);             // lone continuation byte
  EXPECT_EQ(FindInvalidUtf8("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(FindInvalidUtf8("\xe0\x80\xaf"), 0u);      // overlong, 3 bytes
  EXPECT_EQ(FindInvalidUtf8("x\xed\xa0\x80"), 1u);     // UTF-16 surrogate
  EXPECT_EQ(FindInvalidUtf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("ok\xe2\x82"), 2u);        // truncated
}

TEST(ParseJsonBodyTest, RejectsInvalidUtf8WithItsOffset) {
  EXPECT_THAT(ErrorOf(ParseJsonBody("{\"a\":\"\xff\"}")), HasSubstr("not valid UTF-8 (byte offset 6)"));
}

TEST(ParseJsonBodyTest, RejectsMalformedJsonWithItsPosition) {
  EXPECT_THAT(ErrorOf(ParseJsonBody("{\"a\": 1,\n \"b\": }")),
              HasSubstr("malformed JSON at byte offset 15 (line 2, column 7)"));
  EXPECT_THAT(ErrorOf(ParseJsonBody("")), HasSubstr("empty"));
  EXPECT_THAT(ErrorOf(ParseJsonBody("[1, 2")), HasSubstr("malformed JSON"));
  EXPECT_THAT(ErrorOf(ParseJsonBody("{} trailing")), HasSubstr("malformed JSON"));
}

TEST(DecodeFactTest, DecodesAConcreteFact) {
  auto f = DecodeFact(Parse(R"({"predicate":"has_role","args":[{"type":"User","id":"alice"},)"
                            R"({"type":"String","id":"admin"},{"type":"Integer","id":"-007"}]})"),
                      JsonPointer());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->predicate, "has_role");
  ASSERT_EQ(f->args.size(), 3u);
  EXPECT_EQ(f->args[0], (TypedValue{"User", "alice"}));
  EXPECT_EQ(f->args[2], (TypedValue{"Integer", "-7"}));  // canonical spelling
}

TEST(DecodeFactTest, NamesEveryProblemByPointer) {
  const JsonPointer at = JsonPointer().Index(0).Key("inserts").Index(2);
  auto err = [&](std::string_view body) { return ErrorOf(DecodeFact(Parse(body), at)); };
  EXPECT_EQ(err("[]"), "invalid request body at /0/inserts/2: expected an object, got an array");
  EXPECT_EQ(err(R"({"args":[]})"), "invalid request body at /0/inserts/2/predicate: required field is missing");
  EXPECT_EQ(err(R"({"predicate":7,"args":[]})"),
            "invalid request body at /0/inserts/2/predicate: expected a string, got a number");
  EXPECT_EQ(err(R"({"predicate":"","args":[{"type":"A","id":"1"}]})"),
            "invalid request body at /0/inserts/2/predicate: the predicate must not be empty");
  EXPECT_EQ(err(R"({"predicate":"p"})"), "invalid request body at /0/inserts/2/args: required field is missing");
  EXPECT_EQ(err(R"({"predicate":"p","args":{}})"),
            "invalid request body at /0/inserts/2/args: expected an array, got an object");
  EXPECT_EQ(err(R"({"predicate":"p","args":[]})"),
            "invalid request body at /0/inserts/2/args: a fact has 1 to 5 arguments, got 0");
  EXPECT_THAT(err(R"({"predicate":"p","args":[{"type":"A","id":"1"},{"type":"A","id":"1"},{"type":"A","id":"1"},)"
                  R"({"type":"A","id":"1"},{"type":"A","id":"1"},{"type":"A","id":"1"}]})"),
              HasSubstr("got 6"));
  EXPECT_EQ(err(R"({"predicate":"p","args":[{"type":"A"}]})"),
            "invalid request body at /0/inserts/2/args/0/id: required field is missing");
  EXPECT_EQ(err(R"({"predicate":"p","args":[{"type":"A","id":3}]})"),
            "invalid request body at /0/inserts/2/args/0/id: expected a string, got a number");
  EXPECT_THAT(err(R"({"predicate":"p","args":[{"type":null,"id":null}]})"),
              HasSubstr("/0/inserts/2/args/0/type: expected a string, got null (wildcards are allowed only"));
  EXPECT_EQ(err(R"({"predicate":"p","args":[{"type":"","id":"x"}]})"),
            "invalid request body at /0/inserts/2/args/0/type: the type must not be empty");
  EXPECT_EQ(err(R"({"predicate":"p","args":[{"type":"Integer","id":"12x"}]})"),
            "invalid request body at /0/inserts/2/args/0/id: \"12x\" is not a 64-bit decimal integer");
  EXPECT_THAT(err(R"({"predicate":"p","args":[{"type":"Integer","id":"99999999999999999999"}]})"),
              HasSubstr("not a 64-bit decimal integer"));
  EXPECT_EQ(err(R"({"predicate":"p","args":[{"type":"Boolean","id":"yes"}]})"),
            "invalid request body at /0/inserts/2/args/0/id: a Boolean id must be \"true\" or \"false\", got \"yes\"");
}

TEST(DecodeFactTest, EnforcesTheArgumentSizeLimit) {
  const std::string ok(384, 'a'), too_long(385, 'a');
  auto body = [](const std::string& id) {
    return "{\"predicate\":\"p\",\"args\":[{\"type\":\"A\",\"id\":\"" + id + "\"}]}";
  };
  EXPECT_TRUE(DecodeFact(Parse(body(ok)), JsonPointer()).ok());
  EXPECT_EQ(ErrorOf(DecodeFact(Parse(body(too_long)), JsonPointer())),
            "invalid request body at /args/0/id: the id is 385 bytes; at most 384 are allowed");
}

TEST(DecodeFactPatternTest, NullsAreWildcards) {
  auto p = DecodeFactPattern(
      Parse(
          R"({"predicate":"has_role","args":[{"type":"User","id":"alice"},{"type":null,"id":null},{"type":"Org","id":null}]})"),
      JsonPointer());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->arg_types, (std::vector<std::optional<std::string>>{"User", std::nullopt, "Org"}));
  EXPECT_EQ(p->arg_ids, (std::vector<std::optional<std::string>>{"alice", std::nullopt, std::nullopt}));
  // Absent fields are wildcards too, as some clients leave them out.
  auto q = DecodeFactPattern(Parse(R"({"predicate":"p","args":[{}]})"), JsonPointer());
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->arg_types[0], std::nullopt);
  EXPECT_EQ(ErrorOf(DecodeFactPattern(Parse(R"({"predicate":"p","args":[{"type":1}]})"), JsonPointer())),
            "invalid request body at /args/0/type: expected a string or null, got a number");
  EXPECT_EQ(ErrorOf(DecodeFactPattern(Parse(R"({"predicate":"p","args":[{"type":null,"id":"x"}]})"), JsonPointer())),
            "invalid request body at /args/0/type: an argument with an id needs a type (use null for both to match "
            "anything)");
}

TEST(DecodeTypedFieldTest, ReadsTypeAndIdFields) {
  auto body = Parse(R"({"actor_type":"User","actor_id":"alice","resource_type":"Integer","resource_id":"x"})");
  auto actor = DecodeTypedField(body.as_object(), "actor", JsonPointer());
  ASSERT_TRUE(actor.ok());
  EXPECT_EQ(*actor, (TypedValue{"User", "alice"}));
  EXPECT_EQ(ErrorOf(DecodeTypedField(body.as_object(), "resource", JsonPointer())),
            "invalid request body at /resource_id: \"x\" is not a 64-bit decimal integer");
  EXPECT_EQ(ErrorOf(DecodeTypedField(body.as_object(), "subject", JsonPointer())),
            "invalid request body at /subject_type: required field is missing");
}

TEST(DecodeQueryV2Test, DecodesTheClientsWireFormat) {
  auto body = Parse(R"({"predicate":["allow",["var_a","var_b","var_c"]],
    "calls":[["has_relation",["var_c","var_p","var_o"]]],
    "constraints":{"var_a":{"type":"User","ids":["alice"]},"var_b":{"type":"String","ids":null},
                   "var_c":{"type":"Repo","ids":["anvil","acme"]},"var_p":{"type":"String","ids":["parent"]},
                   "var_o":{"type":"Integer","ids":["0042"]}},
    "context_facts":[]})");
  auto q = DecodeQueryV2(body.as_object(), JsonPointer());
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->calls.size(), 2u);
  EXPECT_EQ(q->calls[0].predicate, "allow");
  EXPECT_EQ(q->calls[1].args[2].var, "var_o");
  EXPECT_FALSE(q->calls[1].args[2].value.has_value());
  EXPECT_EQ(q->constraints.at("var_a").type, "User");
  EXPECT_EQ(q->constraints.at("var_b").ids, std::nullopt);
  EXPECT_EQ(q->constraints.at("var_c").ids, (std::vector<std::string>{"anvil", "acme"}));
  EXPECT_EQ(q->constraints.at("var_o").ids, (std::vector<std::string>{"42"}));
}

TEST(DecodeQueryV2Test, NamesShapeErrorsByPointer) {
  auto err = [](std::string_view text) {
    auto v = ParseJsonBody(text);
    EXPECT_TRUE(v.ok());
    return ErrorOf(DecodeQueryV2(v->as_object(), JsonPointer()));
  };
  EXPECT_EQ(err("{}"), "invalid request body at /predicate: required field is missing");
  EXPECT_EQ(err(R"({"predicate":"allow"})"), "invalid request body at /predicate: expected an array, got a string");
  EXPECT_EQ(err(R"({"predicate":["allow"]})"),
            "invalid request body at /predicate: expected [predicate, [variables...]]");
  EXPECT_EQ(err(R"({"predicate":["allow",["a",1]]})"),
            "invalid request body at /predicate/1/1: expected a variable name (string), got a number");
  EXPECT_EQ(err(R"({"predicate":["allow",["a"]],"calls":[["p",["a"]],7]})"),
            "invalid request body at /calls/1: expected an array, got a number");
  EXPECT_EQ(err(R"({"predicate":["allow",["a"]],"constraints":{"a/b":{"type":"User","ids":[1]}}})"),
            "invalid request body at /constraints/a~1b/ids/0: expected a string, got a number");
  EXPECT_EQ(err(R"({"predicate":["allow",["a"]],"constraints":{"a":[]}})"),
            "invalid request body at /constraints/a: expected an object, got an array");
}

TEST(CheckFactLimitsTest, AppliesTheSameRulesToFileFacts) {
  Fact f{"p", {TypedValue{"Integer", "005"}}};
  EXPECT_TRUE(CheckFactLimits(f, "facts.jsonl").ok());
  EXPECT_EQ(f.args[0].id, "5");
  Fact none{"p", {}};
  EXPECT_EQ(CheckFactLimits(none, "facts.jsonl").message(), "facts.jsonl: p has 0 arguments; a fact has 1 to 5");
  Fact big{"p", {TypedValue{"A", std::string(400, 'x')}}};
  EXPECT_THAT(std::string(CheckFactLimits(big, "f").message()), HasSubstr("argument 1: the id is 400 bytes"));
}

}  // namespace
}  // namespace mandate::server
