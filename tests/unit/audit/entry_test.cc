// Record bodies: the direct serializer writes the JSON boost::json would (same fields, order and
// escapes), and the field reader that filters and alert rules use agrees with a full JSON parse.
#include "audit/entry.h"

#include <boost/json.hpp>

#include "gtest/gtest.h"

#include "audit/fields.h"

namespace mandate::audit {
namespace {

namespace json = boost::json;

TEST(RecordWriterTest, WritesTheFieldsInOrder) {
  RequestInfo info;
  info.request_id = "rid-1";
  info.api = "POST /api/authorize";
  info.client = "127.0.0.1:5000";
  info.role = "read";
  info.status = 200;
  info.latency_us = 41;
  info.policy_version = 3;
  info.revision = 1234;
  Entry e = DecisionEntry(TypedValue{"Agent", "bot"}, "read", "Repo:r1", true);
  e.chain = {"Agent:bot", "User:alice"};
  e.reasons = {"because"};
  e.context_json = std::make_shared<const std::string>(R"({"context_facts":[]})");
  e.detail = {{"results", 2}};
  EXPECT_EQ(Serialize(e, info, 4096),
            R"({"kind":"decision","request_id":"rid-1","api":"POST /api/authorize","actor":"Agent:bot","agent":true,)"
            R"("chain":["Agent:bot","User:alice"],"action":"read","resource":"Repo:r1","decision":"allow",)"
            R"("reasons":["because"],"context":{"context_facts":[]},"detail":{"results":2},"status":200,)"
            R"("policy_version":3,"revision":1234,"latency_us":41,"client":"127.0.0.1:5000","key_role":"read"})");
}

TEST(RecordWriterTest, AdminRecordsTakeTheirDecisionFromTheStatusAndLargeContextsAreCapped) {
  RequestInfo info;
  info.status = 403;
  info.error = "no";
  Entry e;
  e.kind = "admin";
  e.action = "facts.write";
  e.context = json::object{{"big", std::string(100, 'x')}};
  const json::value v = json::parse(Serialize(e, info, 50));
  EXPECT_EQ(v.at("decision"), "error");
  EXPECT_EQ(v.at("error"), "no");
  EXPECT_EQ(v.at("context").at("truncated"), true);
  EXPECT_EQ(v.at("context").at("bytes"), 110);
  EXPECT_EQ(v.at("context").at("sha256").as_string().size(), 64u);
}

TEST(RecordWriterTest, EscapesAsBoostJsonDoes) {
  const std::string nasty = std::string("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f é ✓ ") + std::string(1, '\0') + "end";
  std::string ours;
  AppendJsonString(&ours, nasty);
  EXPECT_EQ(ours, json::serialize(json::string(nasty)));
  Entry e;
  e.actor = nasty;
  EXPECT_EQ(json::parse(Serialize(e, RequestInfo{}, 4096)).at("actor").as_string(), nasty);
}

// AppendJsonString skips eight bytes at a time while none needs escaping: each special byte, at
// each offset of a string long enough for several words, and plain bytes around it.
TEST(RecordWriterTest, EscapesEveryOffsetOfLongStrings) {
  for (const char special : {'"', '\\', '\n', '\x01', '\x1f', '\0', '\x20', '\x7f', '\x80', '\xff', '!', '#', '['}) {
    for (size_t at = 0; at < 24; ++at) {
      std::string s = "0123456789abcdefghijklmnopqrstu";
      s[at] = special;
      std::string ours = "prefix";
      AppendJsonString(&ours, s);
      EXPECT_EQ(ours, "prefix" + json::serialize(json::string(s))) << "byte " << int(special) << " at " << at;
    }
  }
}

// What ReadRecordFields finds, as strings ("<none>" for a field that is absent or not a string).
std::vector<std::string> Ours(std::string_view body) {
  RecordFields f;
  if (!ReadRecordFields(body, &f)) return {"<invalid>"};
  std::vector<std::string> out;
  for (std::string_view s : f.str) out.emplace_back(s.empty() ? "<none>" : std::string(s));
  out.push_back(f.agent ? "agent" : "-");
  out.push_back(f.status ? std::to_string(*f.status) : "-");
  return out;
}

// The same read from a boost::json DOM.
std::vector<std::string> Theirs(std::string_view body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return {"<invalid>"};
  const json::object& o = v.as_object();
  std::vector<std::string> out;
  for (const char* k : {"kind", "actor", "action", "resource", "decision", "rule", "owner"}) {
    const json::value* x = o.if_contains(k);
    out.emplace_back(x != nullptr && x->is_string() && !x->as_string().empty() ? std::string(x->as_string())
                                                                               : "<none>");
  }
  const json::value* a = o.if_contains("agent");
  out.push_back(a != nullptr && a->is_bool() && a->as_bool() ? "agent" : "-");
  const json::value* s = o.if_contains("status");
  out.push_back(s != nullptr && s->is_int64() ? std::to_string(s->as_int64()) : "-");
  return out;
}

TEST(RecordFieldsTest, AgreeWithAFullParse) {
  for (std::string_view body : {
           R"({"kind":"decision","actor":"User:a","action":"read","resource":"Repo:1","decision":"deny","status":200})",
           R"({ "kind" : "alert" , "rule":"r1","owner":"User:o", "agent" : true , "status": 429 })",
           R"({"kind":"decision","context":{"kind":"not me","a":[1,{"actor":"x"}],"s":"}]\"{["},"actor":"User:b"})",
           R"({"actor":"User:\"q\"\\ \u00e9\ud83d\ude00 \n","action":"a\/b","agent":false,"status":-3})",
           R"({"kind":1,"actor":null,"action":["x"],"resource":{"a":1},"status":"200","agent":"true"})",
           R"({"status":1.5,"kind":"x","kind":"y"})",
           R"({})",
       }) {
    EXPECT_EQ(Ours(body), Theirs(body)) << body;
  }
  for (std::string_view bad : {"", "[]", "{", R"({"a":})", R"({"a":1,})", R"({"a" 1})", R"({"a":"\x"})",
                               R"({"actor":"\ud800"})", "{\"a\":\"tab\there\"}", R"({"a":1} x)", R"({"a":tru})"}) {
    EXPECT_EQ(Ours(bad), std::vector<std::string>{"<invalid>"}) << bad;
  }
}

}  // namespace
}  // namespace mandate::audit
