// Configuration of `mandate serve`: defaults, the TOML file (mandate.toml, see
// docs/configuration.md) and the pieces the command line overrides.
#ifndef MANDATE_SERVER_CONFIG_H_
#define MANDATE_SERVER_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

#include "agents/config.h"
#include "audit/config.h"
#include "mcp/config.h"
#include "server/auth.h"
#include "server/authzen.h"
#include "server/console.h"

namespace mandate::server {

// [store]: where facts, policies, agents and grants live (docs/configuration.md, docs/operations.md).
struct StoreConfig {
  std::string url;            // "" = SQLite in data_dir; postgres://... = PostgreSQL shared by many nodes
  bool auto_migrate = true;   // apply pending schema migrations at start
  double max_staleness_seconds = 5;  // PostgreSQL: /readyz reports stale after this long out of touch
  double poll_interval_seconds = 0.5;  // PostgreSQL: changelog poll besides LISTEN/NOTIFY
};

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./mandate-data";
  int threads = 2;
  bool dev = false;  // also accept the Oso Dev Server key as admin
  std::string log_level = "info";
  size_t body_limit_bytes = size_t{10} << 20;
  double idle_timeout_seconds = 60;
  double header_timeout_seconds = 10;
  double body_timeout_seconds = 30;
  double shutdown_grace_seconds = 10;
  double offset_wait_seconds = 2;
  // The base URL people reach this server at (e.g. "https://mandate.example.com"), for links such
  // as an approval's console URL; "" = "http://<listen>".
  std::string public_url;
  StoreConfig store;  // [store]
  std::vector<ApiKey> api_keys;
  AuthzenConfig authzen;  // [authzen] and [authzen.types]
  agents::Config agents;  // [agents]
  audit::Config audit;    // [audit], [[audit.webhooks]], [alerts], [[alerts.rules]] (src/audit/)
  ConsoleConfig console;  // [console], [[console.users]] (console.h, docs/console.md)
  mcp::GatewayConfig mcp;  // [mcp], [[mcp.upstreams]], [[mcp.api_keys]], [[auth.jwt_issuers]] (src/mcp/)
  // Loaded (and stored) at start; command line only.
  std::string policy_file;
  std::vector<std::string> fact_files;
};

// Reads `path` over `config`: [server] and [agents] settings and [[api_keys]] entries (appended). Unknown keys
// and wrong types are errors naming file:line:col.
absl::Status LoadConfigFile(const std::string& path, ServerConfig* config);

// "HOST:PORT" or "[IPv6]:PORT".
absl::StatusOr<std::pair<std::string, uint16_t>> ParseListen(std::string_view listen);

}  // namespace mandate::server

#endif  // MANDATE_SERVER_CONFIG_H_
