#include "server/config.h"

#include <cstdlib>

#include <toml++/toml.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "agents/approvals.h"
#include "store/store.h"

namespace mandate::server {
namespace {

std::string Where(const std::string& path, const toml::source_region& r) {
  return absl::StrCat(path, ":", r.begin.line, ":", r.begin.column);
}

absl::Status Bad(const std::string& path, const toml::node& node, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(Where(path, node.source()), ": ", std::string(problem)));
}

absl::Status ReadServerTable(const std::string& path, const toml::table& t, ServerConfig* c) {
  for (const auto& [key, value] : t) {
    const toml::node& node = value;  // a named reference: lambdas may not capture structured bindings
    const std::string k(key.str());
    auto string_value = [&](std::string* out) -> absl::Status {
      if (!node.is_string()) return Bad(path, node, absl::StrCat("server.", k, " must be a string"));
      *out = node.as_string()->get();
      return absl::OkStatus();
    };
    auto seconds_value = [&](double* out) -> absl::Status {
      std::optional<double> v = node.value<double>();
      if (!v || *v <= 0) return Bad(path, node, absl::StrCat("server.", k, " must be a positive number of seconds"));
      *out = *v;
      return absl::OkStatus();
    };
    absl::Status s;
    if (k == "listen") {
      s = string_value(&c->listen);
      if (s.ok() && !ParseListen(c->listen).ok()) s = Bad(path, node, "server.listen must be \"HOST:PORT\"");
    } else if (k == "data_dir") {
      s = string_value(&c->data_dir);
    } else if (k == "public_url") {
      s = string_value(&c->public_url);
      if (s.ok() && !c->public_url.empty() && !absl::StartsWith(c->public_url, "http://") &&
          !absl::StartsWith(c->public_url, "https://")) {
        s = Bad(path, node, "server.public_url must start with http:// or https://");
      }
    } else if (k == "log_level") {
      s = string_value(&c->log_level);
    } else if (k == "threads") {
      std::optional<int64_t> v = node.value<int64_t>();
      if (!v || *v < 1 || *v > 256) return Bad(path, node, "server.threads must be an integer from 1 to 256");
      c->threads = static_cast<int>(*v);
    } else if (k == "dev") {
      if (!node.is_boolean()) return Bad(path, node, "server.dev must be true or false");
      c->dev = node.as_boolean()->get();
    } else if (k == "body_limit_bytes") {
      std::optional<int64_t> v = node.value<int64_t>();
      if (!v || *v < 1024) return Bad(path, node, "server.body_limit_bytes must be an integer of at least 1024");
      c->body_limit_bytes = static_cast<size_t>(*v);
    } else if (k == "idle_timeout_seconds") {
      s = seconds_value(&c->idle_timeout_seconds);
    } else if (k == "header_timeout_seconds") {
      s = seconds_value(&c->header_timeout_seconds);
    } else if (k == "body_timeout_seconds") {
      s = seconds_value(&c->body_timeout_seconds);
    } else if (k == "shutdown_grace_seconds") {
      s = seconds_value(&c->shutdown_grace_seconds);
    } else if (k == "offset_wait_seconds") {
      s = seconds_value(&c->offset_wait_seconds);
    } else {
      return Bad(path, node, absl::StrCat("unknown setting server.", k));
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ReadAgentsTable(const std::string& path, const toml::table& t, agents::Config* c) {
  for (const auto& [key, value] : t) {
    const toml::node& node = value;
    const std::string k(key.str());
    if (k == "actor_type") {
      if (!node.is_string() || node.as_string()->get().empty()) {
        return Bad(path, node, "agents.actor_type must be a non-empty string");
      }
      c->actor_type = node.as_string()->get();
    } else if (k == "require_delegation_fact") {
      if (!node.is_boolean()) return Bad(path, node, "agents.require_delegation_fact must be true or false");
      c->require_delegation_fact = node.as_boolean()->get();
    } else if (k == "max_chain_length") {
      std::optional<int64_t> v = node.value<int64_t>();
      if (!node.is_integer() || !v || *v < 0 || *v > 64) {
        return Bad(path, node, "agents.max_chain_length must be an integer from 0 to 64");
      }
      c->max_chain_length = static_cast<int>(*v);
    } else if (k == "purge_interval_seconds") {
      std::optional<int64_t> v = node.value<int64_t>();
      if (!node.is_integer() || !v || *v < 1) {
        return Bad(path, node, "agents.purge_interval_seconds must be a positive integer");
      }
      c->purge_interval_seconds = *v;
    } else if (k == "approval_ttl_seconds" || k == "max_pending_approvals") {
      std::optional<int64_t> v = node.value<int64_t>();
      const int64_t most = k == "approval_ttl_seconds" ? agents::kMaxApprovalTtlSeconds : 1'000'000;
      if (!node.is_integer() || !v || *v < 1 || *v > most) {
        return Bad(path, node, absl::StrCat("agents.", k, " must be an integer from 1 to ", most));
      }
      (k == "approval_ttl_seconds" ? c->approval_ttl_seconds : c->max_pending_approvals) = *v;
    } else {
      return Bad(path, node, absl::StrCat("unknown setting agents.", k));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadApiKey(const std::string& path, const toml::table& t, ServerConfig* c) {
  ApiKey key;
  bool have_key = false;
  for (const auto& [name, node] : t) {
    const std::string k(name.str());
    if (k == "key" || k == "key_env" || k == "role" || k == "name") {
      if (!node.is_string()) return Bad(path, node, absl::StrCat("api_keys.", k, " must be a string"));
    }
    const std::string v = node.is_string() ? node.as_string()->get() : "";
    if (k == "key") {
      if (v.empty()) return Bad(path, node, "api_keys.key must not be empty");
      key.key = v;
      have_key = true;
    } else if (k == "key_env") {
      const char* env = std::getenv(v.c_str());
      if (env == nullptr || *env == '\0') {
        return Bad(path, node, absl::StrCat("api_keys.key_env names ", v, ", which is not set"));
      }
      key.key = env;
      have_key = true;
    } else if (k == "role") {
      absl::StatusOr<Role> role = ParseRole(v);
      if (!role.ok()) return Bad(path, node, std::string(role.status().message()));
      key.role = *role;
    } else if (k == "name") {
      key.name = v;
    } else {
      return Bad(path, node, absl::StrCat("unknown setting api_keys.", k));
    }
  }
  if (!have_key) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(path, t.source()), ": an [[api_keys]] entry needs `key` or `key_env`"));
  }
  c->api_keys.push_back(std::move(key));
  return absl::OkStatus();
}

absl::Status ReadStoreTable(const std::string& path, const toml::table& t, StoreConfig* c) {
  for (const auto& [key, value] : t) {
    const toml::node& node = value;
    const std::string k(key.str());
    auto seconds_value = [&](double* out) -> absl::Status {
      std::optional<double> v = node.value<double>();
      if (!v || *v <= 0) return Bad(path, node, absl::StrCat("store.", k, " must be a positive number of seconds"));
      *out = *v;
      return absl::OkStatus();
    };
    absl::Status s;
    if (k == "url") {
      if (!node.is_string()) return Bad(path, node, "store.url must be a string");
      c->url = node.as_string()->get();
      if (!c->url.empty() && !store::IsPostgresUrl(c->url)) {
        return Bad(path, node, "store.url must be a postgres:// or postgresql:// URL (or \"\" for SQLite)");
      }
    } else if (k == "auto_migrate") {
      if (!node.is_boolean()) return Bad(path, node, "store.auto_migrate must be true or false");
      c->auto_migrate = node.as_boolean()->get();
    } else if (k == "max_staleness_seconds") {
      s = seconds_value(&c->max_staleness_seconds);
    } else if (k == "poll_interval_seconds") {
      s = seconds_value(&c->poll_interval_seconds);
    } else {
      return Bad(path, node, absl::StrCat("unknown setting store.", k));
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ReadAuthzenTable(const std::string& path, const toml::table& t, ServerConfig* c) {
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    if (k == "policy_decision_point") {
      if (!node.is_string()) return Bad(path, node, "authzen.policy_decision_point must be a string");
      const std::string url = node.as_string()->get();
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
        return Bad(path, node, "authzen.policy_decision_point must be an http:// or https:// URL");
      }
      c->authzen.policy_decision_point = url;
    } else if (k == "types") {
      if (!node.is_table()) return Bad(path, node, "[authzen.types] must be a table of \"authzen type\" = \"PolarType\"");
      for (const auto& [from, to] : *node.as_table()) {
        if (!to.is_string() || to.as_string()->get().empty()) {
          return Bad(path, to, absl::StrCat("authzen.types.", std::string(from.str()), " must be a Polar type name"));
        }
        c->authzen.types[std::string(from.str())] = to.as_string()->get();
      }
    } else {
      return Bad(path, node, absl::StrCat("unknown setting authzen.", k));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LoadConfigFile(const std::string& path, ServerConfig* config) {
  toml::table root;
  try {
    // Debian's toml++ is built with exceptions; they stop here.
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(Where(path, e.source()), ": ", std::string(e.description())));
  }
  for (const auto& [key, node] : root) {
    const std::string k(key.str());
    if (k == "server") {
      if (!node.is_table()) return Bad(path, node, "[server] must be a table");
      if (absl::Status s = ReadServerTable(path, *node.as_table(), config); !s.ok()) return s;
    } else if (k == "agents") {
      if (!node.is_table()) return Bad(path, node, "[agents] must be a table");
      if (absl::Status s = ReadAgentsTable(path, *node.as_table(), &config->agents); !s.ok()) return s;
    } else if (k == "api_keys") {
      if (!node.is_array_of_tables()) return Bad(path, node, "api_keys must be written as [[api_keys]] tables");
      for (const toml::node& entry : *node.as_array()) {
        if (absl::Status s = ReadApiKey(path, *entry.as_table(), config); !s.ok()) return s;
      }
    } else if (k == "mcp" || k == "auth") {
      if (!node.is_table()) return Bad(path, node, absl::StrCat("[", k, "] must be a table"));
      absl::Status s = k == "mcp" ? mcp::ReadMcpTable(path, *node.as_table(), &config->mcp)
                                  : mcp::ReadAuthTable(path, *node.as_table(), &config->mcp);
      if (!s.ok()) return s;
    } else if (k == "audit" || k == "alerts") {
      if (!node.is_table()) return Bad(path, node, absl::StrCat("[", k, "] must be a table"));
      absl::Status s = k == "audit" ? audit::ReadAuditTable(path, *node.as_table(), &config->audit)
                                    : audit::ReadAlertsTable(path, *node.as_table(), &config->audit);
      if (!s.ok()) return s;
    } else if (k == "console") {
      if (!node.is_table()) return Bad(path, node, "[console] must be a table");
      if (absl::Status s = ReadConsoleTable(path, *node.as_table(), &config->console); !s.ok()) return s;
    } else if (k == "store") {
      if (!node.is_table()) return Bad(path, node, "[store] must be a table");
      if (absl::Status s = ReadStoreTable(path, *node.as_table(), &config->store); !s.ok()) return s;
    } else if (k == "authzen") {
      if (!node.is_table()) return Bad(path, node, "[authzen] must be a table");
      if (absl::Status s = ReadAuthzenTable(path, *node.as_table(), config); !s.ok()) return s;
    } else {
      return Bad(path, node, absl::StrCat("unknown section or setting `", k, "`"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<std::string, uint16_t>> ParseListen(std::string_view listen) {
  std::string host;
  std::string_view port;
  if (!listen.empty() && listen.front() == '[') {
    const size_t close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("invalid listen address \"", std::string(listen), "\""));
    }
    host = std::string(listen.substr(1, close - 1));
    port = listen.substr(close + 2);
  } else {
    const size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid listen address \"", std::string(listen), "\": expected HOST:PORT"));
    }
    host = std::string(listen.substr(0, colon));
    port = listen.substr(colon + 1);
  }
  uint32_t p = 0;
  if (!absl::SimpleAtoi(absl::string_view(port.data(), port.size()), &p) || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("invalid port in listen address \"", std::string(listen), "\""));
  }
  return std::make_pair(host, static_cast<uint16_t>(p));
}

}  // namespace mandate::server
