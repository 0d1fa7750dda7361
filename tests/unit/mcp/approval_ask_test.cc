// The pure parts of asking for an approval through elicitation: the form sent to the client and the
// reading of its answer (only an accepted, well-formed decision decides; anything else leaves the
// approval pending).
#include <gtest/gtest.h>

#include <string>

#include <boost/json.hpp>

#include "mcp/approval_ask.h"

namespace mandate::mcp {
namespace {

namespace json = boost::json;
using Kind = ApprovalAnswer::Kind;

ApprovalAnswer Read(std::string_view response) { return ReadApprovalAnswer(json::parse(response).as_object()); }

TEST(ApprovalAskTest, FormAsksForApproveOrDenyAndAnOptionalNote) {
  const json::object p = ApprovalElicitationParams("may claude deploy?");
  EXPECT_EQ(p.at("message").as_string(), "may claude deploy?");
  const json::object& schema = p.at("requestedSchema").as_object();
  EXPECT_EQ(schema.at("type").as_string(), "object");
  EXPECT_EQ(json::serialize(schema.at("required")), R"(["decision"])");
  const json::object& props = schema.at("properties").as_object();
  EXPECT_EQ(json::serialize(props.at("decision").at("enum")), R"(["approve","deny"])");
  EXPECT_EQ(props.at("note").at("type").as_string(), "string");
  EXPECT_FALSE(p.contains("mode"));  // form mode, understood by every revision
}

TEST(ApprovalAskTest, AcceptedDecisions) {
  ApprovalAnswer a = Read(R"({"result":{"action":"accept","content":{"decision":"approve","note":"ok"}}})");
  EXPECT_EQ(a.kind, Kind::kApprove);
  EXPECT_EQ(a.note, "ok");
  a = Read(R"({"result":{"action":"accept","content":{"decision":"deny"}}})");
  EXPECT_EQ(a.kind, Kind::kDeny);
  EXPECT_EQ(a.note, "");
}

TEST(ApprovalAskTest, AnythingElseDecidesNothing) {
  for (const char* r : {
           R"({"result":{"action":"decline"}})",
           R"({"result":{"action":"cancel","content":{"decision":"approve"}}})",
           R"({"result":{"action":"accept"}})",
           R"({"result":{"action":"accept","content":{"decision":"yes"}}})",
           R"({"result":{"action":"accept","content":{"decision":true}}})",
           R"({"result":{"action":"accept","content":["approve"]}})",
           R"({"result":"accept"})",
           R"({"error":{"code":-32601,"message":"no elicitation"}})",
           R"({})",
       }) {
    EXPECT_EQ(Read(r).kind, Kind::kNone) << r;
  }
  EXPECT_EQ(Read(R"({"result":{"action":"decline"}})").action, "decline");
}

TEST(ApprovalAskTest, NoteIsBounded) {
  const std::string long_note(5000, 'n');
  json::object response{
      {"result", json::object{{"action", "accept"},
                              {"content", json::object{{"decision", "approve"}, {"note", long_note}}}}}};
  const ApprovalAnswer a = ReadApprovalAnswer(response);
  EXPECT_EQ(a.kind, Kind::kApprove);
  EXPECT_EQ(a.note.size(), 4096u);
}

}  // namespace
}  // namespace mandate::mcp
