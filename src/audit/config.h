// Configuration of auditing, as mandate.toml writes it: [audit] (the log), [[audit.webhooks]]
// (sinks), [alerts] and [[alerts.rules]]. docs/audit.md is the reference; the server's config loader
// hands those tables to the readers below, whose errors name file:line:col.
#ifndef MANDATE_AUDIT_CONFIG_H_
#define MANDATE_AUDIT_CONFIG_H_

#include <string>
#include <vector>

#include <toml++/toml.h>

#include "absl/status/status.h"

#include "audit/log.h"

namespace mandate::audit {

// An HTTP(S) endpoint that receives records as JSON arrays, batched, retried with backoff; when its
// bounded queue is full, records are dropped (and counted) rather than slowing decisions.
struct WebhookConfig {
  std::string name;
  std::string url;
  std::vector<std::string> kinds;  // record kinds sent (decision, admin, alert, system); empty = all
  size_t batch_size = 100;
  size_t max_queue = 10'000;
  int max_attempts = 5;
  double timeout_seconds = 5;
  double flush_seconds = 1;      // a partial batch waits at most this long
  double backoff_seconds = 0.2;  // doubled after each failed attempt
};

struct AlertRule {
  enum class Type { kDenyBurst, kRateLimit, kDestructive, kOffHours, kFirstUse, kSinkFailure };
  std::string name;
  Type type = Type::kDenyBurst;
  int threshold = 5;  // records within the window that fire it (deny_burst, rate_limit, destructive)
  double window_seconds = 60;
  std::vector<std::string> actions;  // destructive: the destructive actions
  int start_minute = 8 * 60;         // off_hours: the allowed hours [start, end) of the day, UTC
  int end_minute = 18 * 60;
  std::vector<int> days;              // off_hours: allowed weekdays (0 = Sunday); empty = every day
  double cooldown_seconds = 60;       // the same rule and actor fire at most once per cooldown
  std::vector<std::string> webhooks;  // URLs the alert is delivered to (besides [alerts] webhooks)
};
const char* RuleTypeName(AlertRule::Type t);

// [[alerts.owners]]: the webhooks of one owner ("Type:id", e.g. "User:alice"). Every alert about an
// agent the owner owns (the registry's owner of the alert's actor) is delivered there too.
struct OwnerWebhooks {
  std::string owner;
  std::vector<std::string> webhooks;
};

struct Config {
  bool enabled = true;
  LogOptions log;  // log.dir is set from the data directory by the server
  size_t context_bytes = 4096;
  bool stdout_sink = false;  // every record as a JSON line on stdout
  std::vector<WebhookConfig> webhooks;
  std::vector<std::string> alert_webhooks;  // every alert goes here too
  std::vector<OwnerWebhooks> owner_webhooks;
  std::vector<AlertRule> rules;
};

absl::Status ReadAuditTable(const std::string& path, const toml::table& t, Config* c);
absl::Status ReadAlertsTable(const std::string& path, const toml::table& t, Config* c);

}  // namespace mandate::audit

#endif  // MANDATE_AUDIT_CONFIG_H_
