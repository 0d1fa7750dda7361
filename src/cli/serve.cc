// `mandate serve`: the HTTP server with the Oso Cloud–compatible API (src/server/).
#include <memory>

#include "cli/commands.h"

#include "server/config.h"
#include "server/server.h"
#include "store/store.h"

namespace mandate::cli {

void AddServeCommand(CLI::App& app) {
  struct Flags {
    std::vector<std::string> config_files;
    std::string data_dir;
    std::string listen;
    std::string policy_file;
    std::vector<std::string> fact_files;
    bool dev = false;
    int threads = 0;
    std::string store_url;
    bool no_migrate = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Run the authorization server: the Oso Cloud-compatible API under /api, OpenID AuthZEN under /access/v1, "
      "the native /v1 API (checks, agents, grants, approvals, audit), the MCP gateway at /mcp/<name>, the web "
      "console at /ui/, and /healthz, /readyz, /metrics. Facts and policy versions are stored durably in the "
      "data directory, or with --store in a PostgreSQL database that several nodes serve together.");
  cmd->add_option("--config", flags->config_files,
                  "TOML configuration file ([server], [[api_keys]], [audit], [[alerts.rules]], ...); may be repeated, "
                  "later files adding to and overriding earlier ones")
      ->check(CLI::ExistingFile)
      ->allow_extra_args(false);
  cmd->add_option("--data-dir", flags->data_dir, "Directory of the embedded store (default ./mandate-data)");
  cmd->add_option("--store", flags->store_url,
                  "Shared store URL: postgres://USER@HOST:PORT/DB (libpq URL syntax). Many nodes may serve one "
                  "database; without it the store is SQLite in the data directory (docs/operations.md)");
  cmd->add_flag("--no-migrate", flags->no_migrate,
                "Do not apply pending schema migrations at start (fail if the schema is behind; see `mandate migrate`)");
  cmd->add_option("--listen", flags->listen, "Address to listen on, HOST:PORT (default 127.0.0.1:8080)");
  cmd->add_option("--policy", flags->policy_file, "Policy file to load and store at start (its tests must pass)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--facts", flags->fact_files, "Facts file (.jsonl, .json or .polar) to load and store at start")
      ->check(CLI::ExistingFile)
      ->allow_extra_args(false);
  cmd->add_flag("--dev", flags->dev,
                "Also accept the Oso Dev Server key e_0123456789_12345_osotesttoken01xiIn as an admin key");
  cmd->add_option("--threads", flags->threads, "I/O threads (default 2)")->check(CLI::Range(1, 256));
  cmd->footer(
      "API keys come from [[api_keys]] in the config file, from MANDATE_API_KEY (admin), or --dev.\n"
      "See docs/api.md, docs/configuration.md and, for several nodes on PostgreSQL, docs/operations.md.");
  cmd->callback([flags] {
    server::ServerConfig config;
    for (const std::string& file : flags->config_files) {
      if (absl::Status s = server::LoadConfigFile(file, &config); !s.ok()) Fail(s);
    }
    // The command line overrides the file.
    if (!flags->data_dir.empty()) config.data_dir = flags->data_dir;
    if (!flags->listen.empty()) config.listen = flags->listen;
    if (flags->threads > 0) config.threads = flags->threads;
    if (flags->dev) config.dev = true;
    if (!flags->store_url.empty()) {
      if (!store::IsPostgresUrl(flags->store_url)) Fail("--store must be a postgres:// or postgresql:// URL");
      config.store.url = flags->store_url;
    }
    if (flags->no_migrate) config.store.auto_migrate = false;
    config.policy_file = flags->policy_file;
    config.fact_files = flags->fact_files;
    if (absl::Status s = server::RunServer(config); !s.ok()) Fail(s);
  });
}

void AddMigrateCommand(CLI::App& app) {
  struct Flags {
    std::vector<std::string> config_files;
    std::string store_url;
    std::string data_dir;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "migrate",
      "Apply the pending numbered schema migrations to the store and exit. Safe while other nodes run or start: "
      "migrations take an advisory lock. (`mandate serve` also migrates at start unless --no-migrate.)");
  cmd->add_option("--config", flags->config_files, "TOML configuration file; its [store] url is used")
      ->check(CLI::ExistingFile)
      ->allow_extra_args(false);
  cmd->add_option("--store", flags->store_url, "PostgreSQL URL, postgres://USER@HOST:PORT/DB");
  cmd->add_option("--data-dir", flags->data_dir, "SQLite: the data directory (default ./mandate-data)");
  cmd->callback([flags] {
    server::ServerConfig config;
    for (const std::string& file : flags->config_files) {
      if (absl::Status s = server::LoadConfigFile(file, &config); !s.ok()) Fail(s);
    }
    if (!flags->store_url.empty()) config.store.url = flags->store_url;
    if (!flags->data_dir.empty()) config.data_dir = flags->data_dir;
    if (config.store.url.empty()) {
      // SQLite migrates whenever it opens.
      absl::StatusOr<std::unique_ptr<store::Store>> s = store::OpenSqliteStore(config.data_dir);
      if (!s.ok()) Fail(s.status());
      std::printf("SQLite store in %s: schema up to date\n", config.data_dir.c_str());
      return;
    }
    absl::StatusOr<std::pair<int, int>> m = store::MigratePostgres(config.store.url);
    if (!m.ok()) Fail(m.status());
    if (m->first == m->second) {
      std::printf("schema at version %d: up to date\n", m->second);
    } else {
      std::printf("schema migrated from version %d to %d\n", m->first, m->second);
    }
  });
}

}  // namespace mandate::cli
