// Configuration of the MCP gateway, as `mandate.toml` writes it ([mcp], [[mcp.upstreams]],
// [[mcp.api_keys]], [[auth.jwt_issuers]]; docs/mcp-gateway.md is the reference). The server's config
// loader hands those tables to the readers below; errors name file:line:col.
#ifndef MANDATE_MCP_CONFIG_H_
#define MANDATE_MCP_CONFIG_H_

#include <map>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "absl/status/status.h"

namespace mandate::mcp {

// The credential the gateway presents to a Streamable HTTP upstream. The client's own token is never
// forwarded.
struct UpstreamAuth {
  enum class Kind { kNone, kBearer, kClientCredentials } kind = Kind::kNone;
  std::string bearer_token;  // kBearer
  // kClientCredentials (RFC 6749 §4.4, client_secret_basic).
  std::string token_url;
  std::string client_id;
  std::string client_secret;
  std::string scope;     // optional
  std::string resource;  // RFC 8707 resource indicator; defaults to the upstream URL
};

struct UpstreamConfig {
  std::string name;  // served at /mcp/<name>; [A-Za-z0-9_-]
  // stdio: the command line, fixed here and never taken from a client.
  std::vector<std::string> command;
  std::map<std::string, std::string> env;  // the child's environment besides PATH, HOME, LANG
  std::string cwd;
  // Streamable HTTP.
  std::string url;
  UpstreamAuth auth;
  double timeout_seconds = 60;  // per request to the upstream
  // Streamable HTTP: requests in flight to the upstream at once; more wait in line (their timeout
  // runs while they wait).
  int max_concurrency = 16;
  // OAuth scopes a JWT must carry (the `scope` claim, space-separated, or an `scp` array) to use
  // this upstream; missing ones get 403 insufficient_scope. API keys are not scoped.
  std::vector<std::string> required_scopes;
  bool is_stdio() const { return !command.empty(); }
};

// A Mandate API key for local agents: the key names the agent and the user it acts for.
struct AgentKey {
  std::string key;
  std::string name;                 // for logs
  std::string agent;                // Agent{agent}
  std::vector<std::string> on_behalf_of;  // User ids, nearest first; may be empty
};

struct JwtIssuerConfig {
  std::string issuer;
  std::string jwks_file;
  std::string jwks_url;
  std::string audience;  // the resource URL tokens must be issued for (/mcp/<name> of this gateway)
  double leeway_seconds = 60;
  double jwks_refresh_seconds = 300;
  // Claims mapping (see docs/mcp-gateway.md).
  std::string user_claim = "sub";
  std::string user_type = "User";
  std::string agent_type = "Agent";
};

struct GatewayConfig {
  std::vector<UpstreamConfig> upstreams;
  std::vector<AgentKey> api_keys;
  std::vector<JwtIssuerConfig> jwt_issuers;
  // The base URL clients reach the gateway at ("https://mandate.example"); resource URLs are
  // <public_url>/mcp/<name>. Empty: http://<listen address>.
  std::string public_url;
  // Origins allowed besides the public URL's and loopback ones, e.g. "https://app.example".
  std::vector<std::string> allowed_origins;
  // Host header values allowed besides the public URL's host and loopback names.
  std::vector<std::string> allowed_hosts;
  std::string tool_type = "Tool";
  std::string resource_type = "McpResource";
  std::string prompt_type = "Prompt";
  size_t max_sessions = 10'000;
  double session_idle_seconds = 3600;
  std::string pins_file;  // tool pins; empty = <data_dir>/mcp-tool-pins.json

  bool enabled() const { return !upstreams.empty(); }
};

// Readers for the TOML tables; `path` is the file name used in error messages.
absl::Status ReadMcpTable(const std::string& path, const toml::table& table, GatewayConfig* config);
absl::Status ReadAuthTable(const std::string& path, const toml::table& table, GatewayConfig* config);

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_CONFIG_H_
