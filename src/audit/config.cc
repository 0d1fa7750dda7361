#include "audit/config.h"

#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace mandate::audit {
namespace {

absl::Status Bad(const std::string& path, const toml::node& node, const std::string& problem) {
  const auto& r = node.source();
  return absl::InvalidArgumentError(absl::StrCat(path, ":", r.begin.line, ":", r.begin.column, ": ", problem));
}

// Typed readers of one setting; `name` is its dotted name for errors.
struct Reader {
  const std::string& path;
  const toml::node& node;
  std::string name;

  absl::Status String(std::string* out) const {
    if (!node.is_string()) return Bad(path, node, name + " must be a string");
    *out = node.as_string()->get();
    return absl::OkStatus();
  }
  absl::Status Bool(bool* out) const {
    if (!node.is_boolean()) return Bad(path, node, name + " must be true or false");
    *out = node.as_boolean()->get();
    return absl::OkStatus();
  }
  template <typename T>
  absl::Status Int(T* out, int64_t min, int64_t max) const {
    std::optional<int64_t> v = node.value<int64_t>();
    if (!node.is_integer() || !v || *v < min || *v > max) {
      return Bad(path, node, absl::StrCat(name, " must be an integer from ", min, " to ", max));
    }
    *out = static_cast<T>(*v);
    return absl::OkStatus();
  }
  absl::Status Seconds(double* out) const {
    std::optional<double> v = node.value<double>();
    if (!v || *v <= 0) return Bad(path, node, name + " must be a positive number of seconds");
    *out = *v;
    return absl::OkStatus();
  }
  absl::Status Strings(std::vector<std::string>* out) const {
    const toml::array* a = node.as_array();
    if (a == nullptr) return Bad(path, node, name + " must be an array of strings");
    out->clear();
    for (const toml::node& e : *a) {
      if (!e.is_string()) return Bad(path, e, name + " must be an array of strings");
      out->push_back(e.as_string()->get());
    }
    return absl::OkStatus();
  }
  absl::Status Url(std::string* out) const {
    if (absl::Status s = String(out); !s.ok()) return s;
    if (out->rfind("http://", 0) != 0 && out->rfind("https://", 0) != 0) {
      return Bad(path, node, name + " must be an http:// or https:// URL");
    }
    return absl::OkStatus();
  }
};

absl::StatusOr<int> ParseClock(std::string_view hhmm) {
  int h = 0, m = 0;
  if (hhmm.size() != 5 || hhmm[2] != ':' || !absl::SimpleAtoi(std::string(hhmm.substr(0, 2)), &h) ||
      !absl::SimpleAtoi(std::string(hhmm.substr(3)), &m) || h > 24 || m > 59 || (h == 24 && m != 0)) {
    return absl::InvalidArgumentError("not HH:MM");
  }
  return h * 60 + m;
}

absl::Status ReadWebhook(const std::string& path, const toml::table& t, Config* c) {
  WebhookConfig w;
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    const Reader r{path, node, "audit.webhooks." + k};
    absl::Status s;
    if (k == "name")
      s = r.String(&w.name);
    else if (k == "url")
      s = r.Url(&w.url);
    else if (k == "kinds")
      s = r.Strings(&w.kinds);
    else if (k == "batch_size")
      s = r.Int(&w.batch_size, 1, 10'000);
    else if (k == "max_queue")
      s = r.Int(&w.max_queue, 1, 10'000'000);
    else if (k == "max_attempts")
      s = r.Int(&w.max_attempts, 1, 100);
    else if (k == "timeout_seconds")
      s = r.Seconds(&w.timeout_seconds);
    else if (k == "flush_seconds")
      s = r.Seconds(&w.flush_seconds);
    else if (k == "backoff_seconds")
      s = r.Seconds(&w.backoff_seconds);
    else
      return Bad(path, node, absl::StrCat("unknown setting audit.webhooks.", k));
    if (!s.ok()) return s;
  }
  if (w.url.empty()) return Bad(path, t, "an [[audit.webhooks]] entry needs `url`");
  if (w.name.empty()) w.name = w.url;
  c->webhooks.push_back(std::move(w));
  return absl::OkStatus();
}

// [[alerts.owners]]: owner = "Type:id", webhook = URL and/or webhooks = [URL, ...].
absl::Status ReadOwner(const std::string& path, const toml::table& t, Config* c) {
  OwnerWebhooks owner;
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    const Reader r{path, node, "alerts.owners." + k};
    absl::Status s;
    if (k == "owner") {
      s = r.String(&owner.owner);
      const size_t colon = owner.owner.find(':');
      if (s.ok() && (colon == std::string::npos || colon == 0 || colon + 1 == owner.owner.size())) {
        return Bad(path, node, "alerts.owners.owner must be \"Type:id\", e.g. \"User:alice\"");
      }
    } else if (k == "webhook") {
      std::string url;
      s = r.Url(&url);
      owner.webhooks.push_back(url);
    } else if (k == "webhooks") {
      std::vector<std::string> urls;
      s = r.Strings(&urls);
      owner.webhooks.insert(owner.webhooks.end(), urls.begin(), urls.end());
    } else {
      return Bad(path, node, absl::StrCat("unknown setting alerts.owners.", k));
    }
    if (!s.ok()) return s;
  }
  if (owner.owner.empty()) return Bad(path, t, "an [[alerts.owners]] entry needs `owner`");
  if (owner.webhooks.empty()) return Bad(path, t, "an [[alerts.owners]] entry needs `webhook` or `webhooks`");
  c->owner_webhooks.push_back(std::move(owner));
  return absl::OkStatus();
}

absl::Status ReadRule(const std::string& path, const toml::table& t, Config* c) {
  AlertRule rule;
  bool have_type = false;
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    const Reader r{path, node, "alerts.rules." + k};
    absl::Status s;
    if (k == "name") {
      s = r.String(&rule.name);
    } else if (k == "type") {
      std::string type;
      s = r.String(&type);
      const std::pair<const char*, AlertRule::Type> types[] = {
          {"deny_burst", AlertRule::Type::kDenyBurst},    {"rate_limit", AlertRule::Type::kRateLimit},
          {"destructive", AlertRule::Type::kDestructive}, {"off_hours", AlertRule::Type::kOffHours},
          {"first_use", AlertRule::Type::kFirstUse},      {"sink_failure", AlertRule::Type::kSinkFailure}};
      have_type = false;
      for (const auto& [n, v] : types) {
        if (type == n) {
          rule.type = v;
          have_type = true;
        }
      }
      if (s.ok() && !have_type) {
        return Bad(
            path, node,
            "alerts.rules.type must be deny_burst, rate_limit, destructive, off_hours, first_use or sink_failure");
      }
    } else if (k == "threshold") {
      s = r.Int(&rule.threshold, 1, 1'000'000);
    } else if (k == "window_seconds") {
      s = r.Seconds(&rule.window_seconds);
    } else if (k == "cooldown_seconds") {
      std::optional<double> v = node.value<double>();
      if (!v || *v < 0) return Bad(path, node, "alerts.rules.cooldown_seconds must be a number of seconds (0 or more)");
      rule.cooldown_seconds = *v;
    } else if (k == "actions") {
      s = r.Strings(&rule.actions);
    } else if (k == "webhooks") {
      s = r.Strings(&rule.webhooks);
    } else if (k == "webhook") {
      std::string url;
      s = r.Url(&url);
      rule.webhooks.push_back(url);
    } else if (k == "hours") {
      std::string hours;
      s = r.String(&hours);
      const size_t dash = hours.find('-');
      absl::StatusOr<int> start = ParseClock(std::string_view(hours).substr(0, dash));
      absl::StatusOr<int> end = dash == std::string::npos ? absl::InvalidArgumentError("")
                                                          : ParseClock(std::string_view(hours).substr(dash + 1));
      if (s.ok() && (!start.ok() || !end.ok())) {
        return Bad(path, node, "alerts.rules.hours must be \"HH:MM-HH:MM\" (UTC), e.g. \"08:00-18:00\"");
      }
      rule.start_minute = *start;
      rule.end_minute = *end;
    } else if (k == "days") {
      std::vector<std::string> days;
      s = r.Strings(&days);
      static constexpr const char* kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
      for (const std::string& d : days) {
        int found = -1;
        for (int i = 0; i < 7; ++i) found = d == kDays[i] ? i : found;
        if (found < 0) return Bad(path, node, "alerts.rules.days lists sun, mon, tue, wed, thu, fri, sat");
        rule.days.push_back(found);
      }
    } else {
      return Bad(path, node, absl::StrCat("unknown setting alerts.rules.", k));
    }
    if (!s.ok()) return s;
  }
  if (!have_type) return Bad(path, t, "an [[alerts.rules]] entry needs `type`");
  if (rule.type == AlertRule::Type::kDestructive && rule.actions.empty()) {
    return Bad(path, t, "a destructive rule needs `actions` (the actions it counts)");
  }
  if (rule.name.empty()) rule.name = RuleTypeName(rule.type);
  c->rules.push_back(std::move(rule));
  return absl::OkStatus();
}

}  // namespace

const char* RuleTypeName(AlertRule::Type t) {
  switch (t) {
    case AlertRule::Type::kDenyBurst:
      return "deny_burst";
    case AlertRule::Type::kRateLimit:
      return "rate_limit";
    case AlertRule::Type::kDestructive:
      return "destructive";
    case AlertRule::Type::kOffHours:
      return "off_hours";
    case AlertRule::Type::kFirstUse:
      return "first_use";
    case AlertRule::Type::kSinkFailure:
      return "sink_failure";
  }
  return "?";
}

absl::Status ReadAuditTable(const std::string& path, const toml::table& t, Config* c) {
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    const Reader r{path, node, "audit." + k};
    absl::Status s;
    if (k == "enabled") {
      s = r.Bool(&c->enabled);
    } else if (k == "durability") {
      std::string mode;
      s = r.String(&mode);
      if (s.ok() && mode != "sync" && mode != "async")
        return Bad(path, node, "audit.durability must be \"sync\" or \"async\"");
      c->log.durability = mode == "async" ? Durability::kAsync : Durability::kSync;
    } else if (k == "segment_bytes") {
      s = r.Int(&c->log.segment_bytes, 4096, int64_t{1} << 40);
    } else if (k == "checkpoint_records") {
      s = r.Int(&c->log.checkpoint_records, 1, int64_t{1} << 40);
    } else if (k == "checkpoint_seconds") {
      double v = 0;
      s = r.Seconds(&v);
      c->log.checkpoint_interval = std::chrono::milliseconds(static_cast<int64_t>(v * 1000));
    } else if (k == "async_sync_seconds") {
      double v = 0;
      s = r.Seconds(&v);
      c->log.async_sync_interval = std::chrono::milliseconds(static_cast<int64_t>(v * 1000));
    } else if (k == "async_write_seconds") {
      double v = 0;
      s = r.Seconds(&v);
      c->log.async_write_delay = std::chrono::milliseconds(static_cast<int64_t>(v * 1000));
    } else if (k == "async_max_pending") {
      s = r.Int(&c->log.async_max_pending, 1, 100'000'000);
    } else if (k == "signing_key") {
      s = r.String(&c->log.signing_key);
    } else if (k == "context_max_bytes") {
      s = r.Int(&c->context_bytes, 64, 1 << 20);
    } else if (k == "stdout") {
      s = r.Bool(&c->stdout_sink);
    } else if (k == "webhooks") {
      if (!node.is_array_of_tables())
        return Bad(path, node, "audit.webhooks must be written as [[audit.webhooks]] tables");
      for (const toml::node& e : *node.as_array()) {
        if (s = ReadWebhook(path, *e.as_table(), c); !s.ok()) return s;
      }
    } else {
      return Bad(path, node, absl::StrCat("unknown setting audit.", k));
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ReadAlertsTable(const std::string& path, const toml::table& t, Config* c) {
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    const Reader r{path, node, "alerts." + k};
    absl::Status s;
    if (k == "webhooks") {
      s = r.Strings(&c->alert_webhooks);
    } else if (k == "owners") {
      if (!node.is_array_of_tables())
        return Bad(path, node, "alerts.owners must be written as [[alerts.owners]] tables");
      for (const toml::node& e : *node.as_array()) {
        if (s = ReadOwner(path, *e.as_table(), c); !s.ok()) return s;
      }
    } else if (k == "rules") {
      if (!node.is_array_of_tables()) return Bad(path, node, "alerts.rules must be written as [[alerts.rules]] tables");
      for (const toml::node& e : *node.as_array()) {
        if (s = ReadRule(path, *e.as_table(), c); !s.ok()) return s;
      }
    } else {
      return Bad(path, node, absl::StrCat("unknown setting alerts.", k));
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace mandate::audit
