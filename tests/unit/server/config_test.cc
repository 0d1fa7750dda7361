#include "server/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <stdlib.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mandate::server {
namespace {

using ::testing::HasSubstr;

class ConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    // ctest runs each test in its own process, in parallel: one file per process.
    const std::string path = (std::filesystem::path(::testing::TempDir()) /
                              ("mandate-config-test-" + std::to_string(getpid()) + ".toml"))
                                 .string();
    std::ofstream(path) << text;
    return path;
  }
};

TEST_F(ConfigTest, ReadsServerSettingsAndApiKeys) {
  setenv("MANDATE_CONFIG_TEST_KEY", "from-env", 1);
  ServerConfig c;
  ASSERT_TRUE(LoadConfigFile(Write(R"(
[server]
listen = "0.0.0.0:9000"
data_dir = "/var/lib/mandate"
threads = 4
dev = true
body_limit_bytes = 2048
header_timeout_seconds = 2.5
offset_wait_seconds = 1
log_level = "debug"

[[api_keys]]
key = "secret-1"
role = "read"
name = "dashboards"

[[api_keys]]
key_env = "MANDATE_CONFIG_TEST_KEY"
)"),
                             &c)
                  .ok());
  EXPECT_EQ(c.listen, "0.0.0.0:9000");
  EXPECT_EQ(c.data_dir, "/var/lib/mandate");
  EXPECT_EQ(c.threads, 4);
  EXPECT_TRUE(c.dev);
  EXPECT_EQ(c.body_limit_bytes, 2048u);
  EXPECT_DOUBLE_EQ(c.header_timeout_seconds, 2.5);
  EXPECT_DOUBLE_EQ(c.offset_wait_seconds, 1);
  EXPECT_EQ(c.log_level, "debug");
  ASSERT_EQ(c.api_keys.size(), 2u);
  EXPECT_EQ(c.api_keys[0].key, "secret-1");
  EXPECT_EQ(c.api_keys[0].role, Role::kRead);
  EXPECT_EQ(c.api_keys[0].name, "dashboards");
  EXPECT_EQ(c.api_keys[1].key, "from-env");
  EXPECT_EQ(c.api_keys[1].role, Role::kAdmin);
}

TEST_F(ConfigTest, ErrorsNameFileLineAndColumn) {
  ServerConfig c;
  const std::string path = Write("[server]\nlisten = \"127.0.0.1:1\"\nthreds = 3\n");
  absl::Status s = LoadConfigFile(path, &c);
  EXPECT_EQ(s.message(), path + ":3:10: unknown setting server.threds");

  EXPECT_THAT(std::string(LoadConfigFile(Write("[server]\nthreads = \"two\"\n"), &c).message()),
              HasSubstr(":2:11: server.threads must be an integer from 1 to 256"));
  EXPECT_THAT(std::string(LoadConfigFile(Write("[[api_keys]]\nkey = \"k\"\nrole = \"owner\"\n"), &c).message()),
              HasSubstr(":3:8: unknown role \"owner\""));
  EXPECT_THAT(std::string(LoadConfigFile(Write("[[api_keys]]\nrole = \"read\"\n"), &c).message()),
              HasSubstr("needs `key` or `key_env`"));
  EXPECT_THAT(std::string(LoadConfigFile(Write("[server]\nlisten = 8080\n"), &c).message()),
              HasSubstr("server.listen must be a string"));
  EXPECT_THAT(std::string(LoadConfigFile(Write("[server\n"), &c).message()), HasSubstr(":1:"));
  EXPECT_THAT(std::string(LoadConfigFile(Write("port = 1\n"), &c).message()),
              HasSubstr("unknown section or setting `port`"));
}

TEST_F(ConfigTest, ReadsTheAgentsSection) {
  ServerConfig c;
  ASSERT_TRUE(LoadConfigFile(Write("[agents]\nactor_type = \"Bot\"\nrequire_delegation_fact = true\n"
                                   "max_chain_length = 2\npurge_interval_seconds = 5\n"),
                             &c)
                  .ok());
  EXPECT_EQ(c.agents.actor_type, "Bot");
  EXPECT_TRUE(c.agents.require_delegation_fact);
  EXPECT_EQ(c.agents.max_chain_length, 2);
  EXPECT_EQ(c.agents.purge_interval_seconds, 5);
  EXPECT_THAT(std::string(LoadConfigFile(Write("[agents]\nmax_chain_length = -1\n"), &c).message()),
              HasSubstr(":2:20: agents.max_chain_length must be an integer from 0 to 64"));
  EXPECT_THAT(std::string(LoadConfigFile(Write("[agents]\nrequire_delegation = true\n"), &c).message()),
              HasSubstr("unknown setting agents.require_delegation"));
  EXPECT_THAT(std::string(LoadConfigFile(Write("[agents]\nactor_type = \"\"\n"), &c).message()),
              HasSubstr("agents.actor_type must be a non-empty string"));
}

TEST_F(ConfigTest, ReadsTheStoreTable) {
  ServerConfig c;
  EXPECT_TRUE(c.store.url.empty());  // SQLite by default
  ASSERT_TRUE(LoadConfigFile(Write(R"(
[store]
url = "postgres://mandate@db:5432/mandate"
auto_migrate = false
max_staleness_seconds = 2.5
poll_interval_seconds = 0.25
)"),
                             &c)
                  .ok());
  EXPECT_EQ(c.store.url, "postgres://mandate@db:5432/mandate");
  EXPECT_FALSE(c.store.auto_migrate);
  EXPECT_DOUBLE_EQ(c.store.max_staleness_seconds, 2.5);
  EXPECT_DOUBLE_EQ(c.store.poll_interval_seconds, 0.25);
  EXPECT_THAT(std::string(LoadConfigFile(Write("[store]\nurl = \"mysql://x\"\n"), &c).message()),
              HasSubstr(":2:7: store.url must be a postgres:// or postgresql:// URL"));
  EXPECT_THAT(std::string(LoadConfigFile(Write("[store]\nurl_typo = 1\n"), &c).message()),
              HasSubstr("unknown setting store.url_typo"));
}

TEST(ParseListenTest, AcceptsHostPortAndBracketedIpv6) {
  EXPECT_EQ(*ParseListen("127.0.0.1:8080"), std::make_pair(std::string("127.0.0.1"), uint16_t{8080}));
  EXPECT_EQ(*ParseListen("[::1]:0"), std::make_pair(std::string("::1"), uint16_t{0}));
  EXPECT_EQ(*ParseListen("localhost:9"), std::make_pair(std::string("localhost"), uint16_t{9}));
  for (const char* bad : {"8080", ":8080", "host:", "host:70000", "host:x", "[::1]8080", "[::1"}) {
    EXPECT_FALSE(ParseListen(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace mandate::server
