// The readers of [audit], [[audit.webhooks]], [alerts], [[alerts.rules]] and [[alerts.owners]]:
// what they accept, and errors that name file:line:col and the setting.
#include "audit/config.h"

#include <string>
#include <string_view>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mandate::audit {
namespace {

using ::testing::HasSubstr;

toml::table Parse(std::string_view text) { return toml::parse(text, std::string_view("mandate.toml")); }

absl::Status ReadAlerts(const std::string& text, Config* c) {
  toml::table t = Parse(text);
  return ReadAlertsTable("mandate.toml", *t["alerts"].as_table(), c);
}

TEST(AlertsConfigTest, ReadsRulesWebhooksAndOwners) {
  Config c;
  ASSERT_TRUE(ReadAlerts(R"(
[alerts]
webhooks = ["http://127.0.0.1:9/all"]
[[alerts.rules]]
name = "deletes"
type = "destructive"
actions = ["delete", "drop"]
threshold = 3
window_seconds = 30
webhook = "https://hooks.example/sec"
[[alerts.rules]]
type = "off_hours"
hours = "08:00-18:00"
days = ["mon", "fri"]
[[alerts.owners]]
owner = "User:alice"
webhook = "https://hooks.example/alice"
webhooks = ["https://hooks.example/alice-2"]
)",
                         &c)
                  .ok());
  EXPECT_THAT(c.alert_webhooks, ::testing::ElementsAre("http://127.0.0.1:9/all"));
  ASSERT_EQ(c.rules.size(), 2u);
  EXPECT_EQ(c.rules[0].name, "deletes");
  EXPECT_EQ(c.rules[0].type, AlertRule::Type::kDestructive);
  EXPECT_EQ(c.rules[0].threshold, 3);
  EXPECT_EQ(c.rules[0].window_seconds, 30);
  EXPECT_THAT(c.rules[0].webhooks, ::testing::ElementsAre("https://hooks.example/sec"));
  EXPECT_EQ(c.rules[1].name, "off_hours");  // the type names an unnamed rule
  EXPECT_EQ(c.rules[1].start_minute, 8 * 60);
  EXPECT_EQ(c.rules[1].end_minute, 18 * 60);
  EXPECT_THAT(c.rules[1].days, ::testing::ElementsAre(1, 5));
  ASSERT_EQ(c.owner_webhooks.size(), 1u);
  EXPECT_EQ(c.owner_webhooks[0].owner, "User:alice");
  EXPECT_THAT(c.owner_webhooks[0].webhooks,
              ::testing::ElementsAre("https://hooks.example/alice", "https://hooks.example/alice-2"));
}

TEST(AlertsConfigTest, ErrorsNameTheFileLineAndSetting) {
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {"[alerts]\n[[alerts.rules]]\ntype = \"flood\"\n", "mandate.toml:3:8: alerts.rules.type must be deny_burst"},
      {"[alerts]\n[[alerts.rules]]\nname = \"x\"\n", "an [[alerts.rules]] entry needs `type`"},
      {"[alerts]\n[[alerts.rules]]\ntype = \"destructive\"\n", "a destructive rule needs `actions`"},
      {"[alerts]\n[[alerts.rules]]\ntype = \"off_hours\"\nhours = \"8-18\"\n",
       "mandate.toml:4:9: alerts.rules.hours must be \"HH:MM-HH:MM\""},
      {"[alerts]\n[[alerts.rules]]\ntype = \"deny_burst\"\nthreshold = 0\n",
       "alerts.rules.threshold must be an integer from 1"},
      {"[alerts]\n[[alerts.rules]]\ntype = \"deny_burst\"\nwebhook = \"ftp://x\"\n",
       "alerts.rules.webhook must be an http:// or https:// URL"},
      {"[alerts]\n[[alerts.owners]]\nowner = \"alice\"\nwebhook = \"http://x\"\n",
       "mandate.toml:3:9: alerts.owners.owner must be \"Type:id\""},
      {"[alerts]\n[[alerts.owners]]\nowner = \"User:alice\"\n",
       "an [[alerts.owners]] entry needs `webhook` or `webhooks`"},
      {"[alerts]\n[[alerts.owners]]\nwebhook = \"http://x\"\n", "an [[alerts.owners]] entry needs `owner`"},
      {"[alerts]\n[[alerts.owners]]\nowner = \"User:a\"\nurl = \"http://x\"\n", "unknown setting alerts.owners.url"},
      {"[alerts]\nowners = 3\n", "alerts.owners must be written as [[alerts.owners]] tables"},
      {"[alerts]\nrulez = []\n", "unknown setting alerts.rulez"},
  };
  for (const Case& k : cases) {
    Config c;
    absl::Status s = ReadAlerts(k.text, &c);
    EXPECT_FALSE(s.ok()) << k.text;
    EXPECT_THAT(std::string(s.message()), HasSubstr(k.error)) << k.text;
  }
}

TEST(AuditConfigTest, ReadsWebhookSinksAndRejectsUnknownSettings) {
  Config c;
  toml::table t = Parse(R"(
[audit]
[[audit.webhooks]]
name = "siem"
url = "https://siem.example/in"
kinds = ["decision", "admin"]
batch_size = 50
)");
  ASSERT_TRUE(ReadAuditTable("mandate.toml", *t["audit"].as_table(), &c).ok());
  ASSERT_EQ(c.webhooks.size(), 1u);
  EXPECT_EQ(c.webhooks[0].name, "siem");
  EXPECT_EQ(c.webhooks[0].batch_size, 50u);
  EXPECT_THAT(c.webhooks[0].kinds, ::testing::ElementsAre("decision", "admin"));

  Config bad;
  toml::table u = Parse("[audit]\n[[audit.webhooks]]\nname = \"x\"\n");
  absl::Status s = ReadAuditTable("mandate.toml", *u["audit"].as_table(), &bad);
  EXPECT_THAT(std::string(s.message()), HasSubstr("an [[audit.webhooks]] entry needs `url`"));
}

}  // namespace
}  // namespace mandate::audit
