#include "mcp/config.h"

#include <cstdlib>
#include <functional>

#include "absl/strings/str_cat.h"

namespace mandate::mcp {
namespace {

absl::Status Bad(const std::string& path, const toml::node& node, std::string_view problem) {
  const toml::source_region& r = node.source();
  return absl::InvalidArgumentError(absl::StrCat(path, ":", r.begin.line, ":", r.begin.column, ": ", std::string(problem)));
}

// Reads the keys of `t` through `fields`; an unknown key is an error naming `section`.
using FieldReader = std::function<absl::Status(const toml::node&)>;
absl::Status ReadFields(const std::string& path, const toml::table& t, std::string_view section,
                        const std::map<std::string, FieldReader>& fields) {
  for (const auto& [key, value] : t) {
    auto it = fields.find(std::string(key.str()));
    if (it == fields.end()) return Bad(path, value, absl::StrCat("unknown setting ", std::string(section), ".", std::string(key.str())));
    if (absl::Status s = it->second(value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

FieldReader String(const std::string& path, std::string name, std::string* out) {
  return [&path, name = std::move(name), out](const toml::node& n) -> absl::Status {
    if (!n.is_string()) return Bad(path, n, absl::StrCat(name, " must be a string"));
    *out = n.as_string()->get();
    return absl::OkStatus();
  };
}

// A secret given inline or through an environment variable (`<name>_env`).
FieldReader EnvString(const std::string& path, std::string name, std::string* out) {
  return [&path, name = std::move(name), out](const toml::node& n) -> absl::Status {
    if (!n.is_string()) return Bad(path, n, absl::StrCat(name, " must be a string"));
    const char* v = std::getenv(n.as_string()->get().c_str());
    if (v == nullptr || *v == '\0') {
      return Bad(path, n, absl::StrCat(name, " names ", n.as_string()->get(), ", which is not set"));
    }
    *out = v;
    return absl::OkStatus();
  };
}

FieldReader Strings(const std::string& path, std::string name, std::vector<std::string>* out) {
  return [&path, name = std::move(name), out](const toml::node& n) -> absl::Status {
    const toml::array* a = n.as_array();
    if (a == nullptr) return Bad(path, n, absl::StrCat(name, " must be an array of strings"));
    out->clear();
    for (const toml::node& e : *a) {
      if (!e.is_string()) return Bad(path, e, absl::StrCat(name, " must be an array of strings"));
      out->push_back(e.as_string()->get());
    }
    return absl::OkStatus();
  };
}

FieldReader Seconds(const std::string& path, std::string name, double* out) {
  return [&path, name = std::move(name), out](const toml::node& n) -> absl::Status {
    std::optional<double> v = n.value<double>();
    if (!v || *v < 0) return Bad(path, n, absl::StrCat(name, " must be a non-negative number of seconds"));
    *out = *v;
    return absl::OkStatus();
  };
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

absl::Status ReadUpstream(const std::string& path, const toml::table& t, GatewayConfig* c) {
  UpstreamConfig u;
  std::string auth_kind;
  const std::string s = "mcp.upstreams";
  absl::Status st = ReadFields(
      path, t, s,
      {{"name", String(path, s + ".name", &u.name)},
       {"command", Strings(path, s + ".command", &u.command)},
       {"cwd", String(path, s + ".cwd", &u.cwd)},
       {"env",
        [&](const toml::node& n) -> absl::Status {
          const toml::table* e = n.as_table();
          if (e == nullptr) return Bad(path, n, "mcp.upstreams.env must be a table of strings");
          for (const auto& [k, v] : *e) {
            if (!v.is_string()) return Bad(path, v, "mcp.upstreams.env values must be strings");
            u.env[std::string(k.str())] = v.as_string()->get();
          }
          return absl::OkStatus();
        }},
       {"url", String(path, s + ".url", &u.url)},
       {"timeout_seconds", Seconds(path, s + ".timeout_seconds", &u.timeout_seconds)},
       {"max_concurrency",
        [&](const toml::node& n) -> absl::Status {
          std::optional<int64_t> v = n.value_exact<int64_t>();
          if (!v || *v < 1 || *v > 256) return Bad(path, n, "mcp.upstreams.max_concurrency must be an integer from 1 to 256");
          u.max_concurrency = static_cast<int>(*v);
          return absl::OkStatus();
        }},
       {"required_scopes", Strings(path, s + ".required_scopes", &u.required_scopes)},
       {"auth", String(path, s + ".auth", &auth_kind)},
       {"bearer_token", String(path, s + ".bearer_token", &u.auth.bearer_token)},
       {"bearer_token_env", EnvString(path, s + ".bearer_token_env", &u.auth.bearer_token)},
       {"token_url", String(path, s + ".token_url", &u.auth.token_url)},
       {"client_id", String(path, s + ".client_id", &u.auth.client_id)},
       {"client_secret", String(path, s + ".client_secret", &u.auth.client_secret)},
       {"client_secret_env", EnvString(path, s + ".client_secret_env", &u.auth.client_secret)},
       {"scope", String(path, s + ".scope", &u.auth.scope)},
       {"resource", String(path, s + ".resource", &u.auth.resource)}});
  if (!st.ok()) return st;
  if (!ValidName(u.name)) return Bad(path, t, "an [[mcp.upstreams]] entry needs a `name` of letters, digits, - and _");
  for (const UpstreamConfig& other : c->upstreams) {
    if (other.name == u.name) return Bad(path, t, absl::StrCat("upstream name \"", u.name, "\" is used twice"));
  }
  if (u.command.empty() == u.url.empty()) {
    return Bad(path, t, absl::StrCat("upstream \"", u.name, "\" needs exactly one of `command` (stdio) and `url`"));
  }
  if (!u.url.empty() && u.url.rfind("http://", 0) != 0 && u.url.rfind("https://", 0) != 0) {
    return Bad(path, t, absl::StrCat("upstream \"", u.name, "\": url must start with http:// or https://"));
  }
  if (auth_kind.empty()) {
    auth_kind = !u.auth.bearer_token.empty() ? "bearer" : !u.auth.token_url.empty() ? "client_credentials" : "none";
  }
  if (auth_kind == "bearer") {
    u.auth.kind = UpstreamAuth::Kind::kBearer;
    if (u.auth.bearer_token.empty()) return Bad(path, t, "auth = \"bearer\" needs bearer_token or bearer_token_env");
  } else if (auth_kind == "client_credentials") {
    u.auth.kind = UpstreamAuth::Kind::kClientCredentials;
    if (u.auth.token_url.empty() || u.auth.client_id.empty()) {
      return Bad(path, t, "auth = \"client_credentials\" needs token_url and client_id");
    }
  } else if (auth_kind != "none") {
    return Bad(path, t, "mcp.upstreams.auth must be \"none\", \"bearer\" or \"client_credentials\"");
  }
  if (u.is_stdio() && u.auth.kind != UpstreamAuth::Kind::kNone) {
    return Bad(path, t, "a stdio upstream takes its credentials from `env`, not `auth`");
  }
  c->upstreams.push_back(std::move(u));
  return absl::OkStatus();
}

absl::Status ReadAgentKey(const std::string& path, const toml::table& t, GatewayConfig* c) {
  AgentKey k;
  std::string user;
  const std::string s = "mcp.api_keys";
  absl::Status st = ReadFields(path, t, s,
                               {{"key", String(path, s + ".key", &k.key)},
                                {"key_env", EnvString(path, s + ".key_env", &k.key)},
                                {"name", String(path, s + ".name", &k.name)},
                                {"agent", String(path, s + ".agent", &k.agent)},
                                {"user", String(path, s + ".user", &user)},
                                {"on_behalf_of", Strings(path, s + ".on_behalf_of", &k.on_behalf_of)}});
  if (!st.ok()) return st;
  if (k.key.empty() || k.agent.empty()) return Bad(path, t, "an [[mcp.api_keys]] entry needs `key` (or `key_env`) and `agent`");
  if (!user.empty()) k.on_behalf_of.insert(k.on_behalf_of.begin(), user);
  c->api_keys.push_back(std::move(k));
  return absl::OkStatus();
}

absl::Status ReadIssuer(const std::string& path, const toml::table& t, GatewayConfig* c) {
  JwtIssuerConfig j;
  const std::string s = "auth.jwt_issuers";
  absl::Status st = ReadFields(path, t, s,
                               {{"issuer", String(path, s + ".issuer", &j.issuer)},
                                {"jwks_file", String(path, s + ".jwks_file", &j.jwks_file)},
                                {"jwks_url", String(path, s + ".jwks_url", &j.jwks_url)},
                                {"audience", String(path, s + ".audience", &j.audience)},
                                {"leeway_seconds", Seconds(path, s + ".leeway_seconds", &j.leeway_seconds)},
                                {"jwks_refresh_seconds", Seconds(path, s + ".jwks_refresh_seconds", &j.jwks_refresh_seconds)},
                                {"user_claim", String(path, s + ".user_claim", &j.user_claim)},
                                {"user_type", String(path, s + ".user_type", &j.user_type)},
                                {"agent_type", String(path, s + ".agent_type", &j.agent_type)}});
  if (!st.ok()) return st;
  if (j.issuer.empty() || j.audience.empty()) return Bad(path, t, "an [[auth.jwt_issuers]] entry needs `issuer` and `audience`");
  if (j.jwks_file.empty() == j.jwks_url.empty()) {
    return Bad(path, t, "an [[auth.jwt_issuers]] entry needs exactly one of `jwks_file` and `jwks_url`");
  }
  if (j.leeway_seconds > 300) return Bad(path, t, "auth.jwt_issuers.leeway_seconds must be at most 300");
  c->jwt_issuers.push_back(std::move(j));
  return absl::OkStatus();
}

absl::Status ReadTables(const std::string& path, const toml::node& n, std::string_view name,
                        const std::function<absl::Status(const toml::table&)>& read) {
  if (!n.is_array_of_tables()) return Bad(path, n, absl::StrCat(std::string(name), " must be written as [[", std::string(name), "]] tables"));
  for (const toml::node& e : *n.as_array()) {
    if (absl::Status s = read(*e.as_table()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadMcpTable(const std::string& path, const toml::table& t, GatewayConfig* c) {
  double max_sessions = static_cast<double>(c->max_sessions);
  absl::Status st = ReadFields(
      path, t, "mcp",
      {{"upstreams",
        [&](const toml::node& n) {
          return ReadTables(path, n, "mcp.upstreams", [&](const toml::table& e) { return ReadUpstream(path, e, c); });
        }},
       {"api_keys",
        [&](const toml::node& n) {
          return ReadTables(path, n, "mcp.api_keys", [&](const toml::table& e) { return ReadAgentKey(path, e, c); });
        }},
       {"public_url", String(path, "mcp.public_url", &c->public_url)},
       {"allowed_origins", Strings(path, "mcp.allowed_origins", &c->allowed_origins)},
       {"allowed_hosts", Strings(path, "mcp.allowed_hosts", &c->allowed_hosts)},
       {"tool_type", String(path, "mcp.tool_type", &c->tool_type)},
       {"resource_type", String(path, "mcp.resource_type", &c->resource_type)},
       {"prompt_type", String(path, "mcp.prompt_type", &c->prompt_type)},
       {"pins_file", String(path, "mcp.pins_file", &c->pins_file)},
       {"session_idle_seconds", Seconds(path, "mcp.session_idle_seconds", &c->session_idle_seconds)},
       {"max_sessions", Seconds(path, "mcp.max_sessions", &max_sessions)}});
  if (!st.ok()) return st;
  c->max_sessions = static_cast<size_t>(max_sessions);
  while (!c->public_url.empty() && c->public_url.back() == '/') c->public_url.pop_back();
  return absl::OkStatus();
}

absl::Status ReadAuthTable(const std::string& path, const toml::table& t, GatewayConfig* c) {
  return ReadFields(path, t, "auth", {{"jwt_issuers", [&](const toml::node& n) {
                                         return ReadTables(path, n, "auth.jwt_issuers", [&](const toml::table& e) {
                                           return ReadIssuer(path, e, c);
                                         });
                                       }}});
}

}  // namespace mandate::mcp
