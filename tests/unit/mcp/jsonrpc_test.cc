// The JSON-RPC codec: every malformed message gets the right error object, never a crash.
#include "mcp/jsonrpc.h"

#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace mandate::mcp {
namespace {

namespace json = boost::json;

int ErrorCode(std::string_view text, const Limits& limits = {}) {
  Decoded d = Decode(text, limits);
  EXPECT_FALSE(d.message.has_value());
  return d.error ? d.error->code : 0;
}

TEST(JsonRpcTest, DecodesRequestNotificationAndResponse) {
  Decoded r = Decode(R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}})");
  ASSERT_TRUE(r.message);
  EXPECT_EQ(r.message->kind, Message::Kind::kRequest);
  EXPECT_EQ(r.message->id, json::value(7));
  EXPECT_EQ(r.message->method, "tools/call");
  EXPECT_EQ(r.message->params.at("name"), "x");

  Decoded n = Decode(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  ASSERT_TRUE(n.message);
  EXPECT_EQ(n.message->kind, Message::Kind::kNotification);
  EXPECT_FALSE(n.message->has_params);

  Decoded s = Decode(R"({"jsonrpc":"2.0","id":"a","result":{}})");
  ASSERT_TRUE(s.message);
  EXPECT_EQ(s.message->kind, Message::Kind::kResponse);
  Decoded e = Decode(R"({"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"m"}})");
  ASSERT_TRUE(e.message);
}

TEST(JsonRpcTest, ParseErrors) {
  EXPECT_EQ(ErrorCode("{"), kParseError);
  EXPECT_EQ(ErrorCode(""), kParseError);
  EXPECT_EQ(ErrorCode("\xff\xfe"), kParseError);
  EXPECT_EQ(ErrorCode(std::string(100, '[') + std::string(100, ']')), kParseError);
}

TEST(JsonRpcTest, InvalidRequests) {
  EXPECT_EQ(ErrorCode(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])"), kInvalidRequest);  // batch
  EXPECT_EQ(ErrorCode("42"), kInvalidRequest);
  EXPECT_EQ(ErrorCode(R"({"id":1,"method":"ping"})"), kInvalidRequest);                     // no jsonrpc
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"1.0","id":1,"method":"ping"})"), kInvalidRequest);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":null,"method":"ping"})"), kInvalidRequest);  // null id
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})"), kInvalidRequest);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":{},"method":"ping"})"), kInvalidRequest);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":""})"), kInvalidRequest);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":3})"), kInvalidRequest);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":"x","result":{}})"), kInvalidRequest);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0"})"), kInvalidRequest);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1})"), kInvalidRequest);                     // neither
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"result":1,"error":{}})"), kInvalidRequest);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}})"), kInvalidRequest);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":"x","params":[1]})"), kInvalidParams);
}

TEST(JsonRpcTest, ErrorsCarryTheIdWhenKnown) {
  Decoded d = Decode(R"({"jsonrpc":"1.0","id":"abc","method":"ping"})");
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->id, json::value("abc"));
  json::object o = MakeError(*d.error);
  EXPECT_EQ(o.at("id"), "abc");
  EXPECT_EQ(o.at("error").at("code"), kInvalidRequest);
  EXPECT_EQ(o.at("jsonrpc"), "2.0");
}

TEST(JsonRpcTest, SizeAndDepthLimits) {
  Limits limits;
  limits.max_bytes = 64;
  EXPECT_EQ(ErrorCode(std::string(R"({"jsonrpc":"2.0","method":"x","params":{"p":")") + std::string(100, 'a') + "\"}}",
                      limits),
            kInvalidRequest);
  limits = Limits{};
  limits.max_depth = 3;
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","method":"x","params":{"a":{"b":{"c":1}}}})", limits), kParseError);
  EXPECT_TRUE(Decode(R"({"jsonrpc":"2.0","method":"x","params":{"a":1}})", limits).message);
}

TEST(JsonRpcTest, Builders) {
  EXPECT_EQ(json::serialize(MakeResult(1, json::object{})), R"({"jsonrpc":"2.0","id":1,"result":{}})");
  EXPECT_EQ(json::serialize(MakeNotification("n", {})), R"({"jsonrpc":"2.0","method":"n"})");
  EXPECT_EQ(json::serialize(MakeRequest("r", "m", json::object{{"a", 1}})),
            R"({"jsonrpc":"2.0","id":"r","method":"m","params":{"a":1}})");
  EXPECT_EQ(json::serialize(MakeError(2, kMethodNotFound, "no")),
            R"({"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"no"}})");
}

}  // namespace
}  // namespace mandate::mcp
