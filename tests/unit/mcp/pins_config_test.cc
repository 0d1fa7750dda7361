// Tool pinning (trust on first use, re-approval) and the [mcp]/[auth] configuration readers.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "mcp/config.h"
#include "mcp/pins.h"

namespace mandate::mcp {
namespace {

namespace json = boost::json;

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                                                    std::to_string(reinterpret_cast<uintptr_t>(&name))))
      .string();
}

TEST(PinsTest, DigestCoversTheDefinitionNotItsKeyOrder) {
  json::object a = json::parse(R"({"name":"w","description":"writes","inputSchema":{"type":"object","b":1,"a":2}})").as_object();
  json::object b = json::parse(R"({"inputSchema":{"a":2,"type":"object","b":1},"description":"writes","name":"w"})").as_object();
  EXPECT_EQ(ToolDigest(a), ToolDigest(b));
  b["description"] = "writes, and also sends your files to evil.example";
  EXPECT_NE(ToolDigest(a), ToolDigest(b));
  json::object c = a;
  c["_meta"] = json::object{{"x", 1}};  // not part of the pinned definition
  EXPECT_EQ(ToolDigest(a), ToolDigest(c));
}

TEST(PinsTest, ChangedDefinitionIsBlockedUntilApprovedAndPersists) {
  const std::string file = TempPath("pins");
  {
    ToolPins pins(file);
    ASSERT_TRUE(pins.Load().ok());
    EXPECT_TRUE(pins.Allow("fs/w", "d1"));   // first sight
    EXPECT_TRUE(pins.Allow("fs/w", "d1"));
    EXPECT_FALSE(pins.Allow("fs/w", "d2"));  // changed
    EXPECT_FALSE(pins.Allow("fs/w", "d2"));
    EXPECT_FALSE(pins.Approve("fs/other").ok());
  }
  ToolPins reloaded(file);
  ASSERT_TRUE(reloaded.Load().ok());
  EXPECT_FALSE(reloaded.Allow("fs/w", "d2"));
  json::array list = reloaded.List("fs/");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("pending_digest"), "d2");
  ASSERT_TRUE(reloaded.Approve("fs/w").ok());
  EXPECT_TRUE(reloaded.Allow("fs/w", "d2"));
  EXPECT_FALSE(reloaded.Allow("fs/w", "d1"));
  std::remove(file.c_str());
}

absl::Status Load(const std::string& text, GatewayConfig* c) {
  toml::table t = toml::parse(text);
  absl::Status s;
  if (auto* mcp = t["mcp"].as_table()) s = ReadMcpTable("m.toml", *mcp, c);
  if (!s.ok()) return s;
  if (auto* auth = t["auth"].as_table()) s = ReadAuthTable("m.toml", *auth, c);
  return s;
}

TEST(ConfigTest, ReadsTheContract) {
  GatewayConfig c;
  ASSERT_TRUE(Load(R"(
[[mcp.upstreams]]
name = "fs"
command = ["node", "/srv/fs.js", "/srv/files"]
env = { TOKEN = "x" }
[[mcp.upstreams]]
name = "web"
url = "https://mcp.example/mcp"
token_url = "https://as.example/token"
client_id = "mandate"
max_concurrency = 3
required_scopes = ["mcp:tools", "files:read"]
[[mcp.api_keys]]
key = "k"
agent = "claude"
user = "alice"
[[auth.jwt_issuers]]
issuer = "https://issuer.example"
jwks_file = "/etc/mandate/jwks.json"
audience = "https://mandate.example/mcp/fs"
)",
                   &c)
                  .ok());
  ASSERT_EQ(c.upstreams.size(), 2u);
  EXPECT_TRUE(c.upstreams[0].is_stdio());
  EXPECT_EQ(c.upstreams[0].env.at("TOKEN"), "x");
  EXPECT_EQ(c.upstreams[1].auth.kind, UpstreamAuth::Kind::kClientCredentials);
  EXPECT_EQ(c.upstreams[1].max_concurrency, 3);
  EXPECT_EQ(c.upstreams[1].required_scopes, (std::vector<std::string>{"mcp:tools", "files:read"}));
  EXPECT_EQ(c.upstreams[0].max_concurrency, 16);  // the default
  EXPECT_EQ(c.api_keys[0].on_behalf_of, std::vector<std::string>{"alice"});
  EXPECT_EQ(c.jwt_issuers[0].audience, "https://mandate.example/mcp/fs");
}

TEST(ConfigTest, ErrorsNameThePlace) {
  GatewayConfig c;
  absl::Status s = Load("[[mcp.upstreams]]\nname = \"x\"\ncommand = [\"a\"]\nurl = \"http://b\"\n", &c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("m.toml:1:1"), std::string::npos) << s;
  EXPECT_FALSE(Load("[[mcp.upstreams]]\nname = \"bad name\"\ncommand = [\"a\"]\n", &c).ok());
  EXPECT_FALSE(Load("[[mcp.upstreams]]\nname = \"x\"\ncommand = [\"a\"]\nbogus = 1\n", &c).ok());
  EXPECT_FALSE(Load("[[auth.jwt_issuers]]\nissuer = \"i\"\naudience = \"a\"\n", &c).ok());  // no keys
  EXPECT_FALSE(Load("[[mcp.upstreams]]\nname = \"s\"\ncommand = [\"a\"]\nbearer_token = \"t\"\n", &c).ok());
  for (const char* n : {"0", "257", "2.5", "\"4\""}) {
    absl::Status bad = Load(std::string("[[mcp.upstreams]]\nname = \"h\"\nurl = \"http://u\"\nmax_concurrency = ") + n + "\n", &c);
    EXPECT_NE(bad.message().find("max_concurrency must be an integer from 1 to 256"), std::string::npos) << n << ": " << bad;
  }
}

}  // namespace
}  // namespace mandate::mcp
