#include "server/server.h"

#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "audit/log.h"
#include "audit/monitor.h"
#include "mcp/gateway.h"
#include "server/api.h"
#include "server/http_server.h"
#include "server/json_decode.h"
#include "server/metrics.h"
#include "server/service.h"
#include "server/status_macros.h"
#include "store/store.h"

namespace mandate::server {
namespace {

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

absl::Status LoadPolicyFile(Service& service, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read policy file ", path));
  std::stringstream text;
  text << in.rdbuf();
  PolicyRejection rejection;
  absl::StatusOr<Service::PolicyUpload> upload =
      service.UploadPolicy(std::filesystem::path(path).filename().string(), text.str(), &rejection);
  if (upload.ok()) {
    if (upload->changed) spdlog::info("policy {} stored as version {}", path, upload->version->version);
    return absl::OkStatus();
  }
  if (upload.status().code() != absl::StatusCode::kInvalidArgument) return upload.status();
  std::vector<std::string> lines = rejection.errors;
  for (const TestResult& t : rejection.tests.tests) {
    for (const AssertionFailure& f : t.failures) {
      lines.push_back(absl::StrCat("test \"", t.name, "\": ", f.assertion, " (", f.location, "): ", f.message));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("policy file ", path, " was not loaded: ", rejection.message, "\n  ", absl::StrJoin(lines, "\n  ")));
}

absl::Status LoadFactFile(Service& service, const std::string& path) {
  MANDATE_ASSIGN_OR_RETURN(std::vector<Fact> facts, LoadFactsFile(path));
  std::vector<LabeledChange> changes;
  changes.reserve(facts.size());
  for (Fact& f : facts) {
    MANDATE_RETURN_IF_ERROR(CheckFactLimits(f, path));
    LabeledChange c;
    c.change.kind = Change::Kind::kInsert;
    c.change.fact = std::move(f);
    c.where = path;
    changes.push_back(std::move(c));
  }
  const size_t n = changes.size();
  MANDATE_ASSIGN_OR_RETURN(uint64_t revision, service.ApplyChanges(std::move(changes)));
  spdlog::info("loaded {} fact(s) from {} (revision {})", n, path, revision);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<audit::AuditLog>> OpenAuditLog(const ServerConfig& config, const Service& service) {
  audit::LogOptions options = config.audit.log;
  options.dir = absl::StrCat(config.data_dir, "/audit");
  MANDATE_ASSIGN_OR_RETURN(std::unique_ptr<audit::AuditLog> log, audit::AuditLog::Open(options));
  boost::json::object start{{"kind", "system"},
                            {"action", "server.start"},
                            {"revision", service.revision()},
                            {"durability", options.durability == audit::Durability::kSync ? "sync" : "async"},
                            {"key_id", log->public_key().key_id()}};
  if (auto v = service.policy_version()) start["policy_version"] = v->version;
  if (!config.policy_file.empty()) start["policy_file"] = config.policy_file;
  if (!config.fact_files.empty()) {
    boost::json::array files;
    for (const std::string& f : config.fact_files) files.emplace_back(f);
    start["fact_files"] = std::move(files);
  }
  MANDATE_RETURN_IF_ERROR(log->AppendAndWait({boost::json::serialize(start)}));
  spdlog::info("audit log {} ({}), signing key {}", options.dir,
               options.durability == audit::Durability::kSync ? "sync" : "async", log->public_key().key_id());
  return log;
}

}  // namespace

absl::StatusOr<std::unique_ptr<store::Store>> OpenStore(const ServerConfig& config) {
  if (config.store.url.empty()) return store::OpenSqliteStore(config.data_dir);
  store::PostgresOptions options;
  options.migrate = config.store.auto_migrate;
  options.max_staleness_seconds = config.store.max_staleness_seconds;
  options.poll_interval_seconds = config.store.poll_interval_seconds;
  return store::OpenPostgresStore(config.store.url, options);
}

absl::Status RunServer(const ServerConfig& config) {
  auto logger = std::make_shared<spdlog::logger>("mandate", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  spdlog::set_default_logger(logger);
  const spdlog::level::level_enum level = spdlog::level::from_str(config.log_level);
  if (level == spdlog::level::off && config.log_level != "off") {
    return absl::InvalidArgumentError(absl::StrCat("unknown log level \"", config.log_level,
                                                   "\"; use trace, debug, info, warn, error, critical or off"));
  }
  spdlog::set_level(level);

  std::vector<ApiKey> keys = config.api_keys;
  const char* env_key = std::getenv("MANDATE_API_KEY");
  if (env_key != nullptr && *env_key != '\0') keys.push_back(ApiKey{env_key, Role::kAdmin, "MANDATE_API_KEY"});
  if (config.dev) keys.push_back(ApiKey{std::string(kOsoDevKey), Role::kAdmin, "oso-dev"});
  KeyRing ring(keys);
  if (ring.empty()) {
    return absl::FailedPreconditionError(
        "no API key configured: set MANDATE_API_KEY, add an [[api_keys]] entry to the config file, or pass --dev "
        "to accept the Oso Dev Server key");
  }
  MANDATE_ASSIGN_OR_RETURN(auto listen, ParseListen(config.listen));

  MANDATE_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, OpenStore(config));
  MANDATE_ASSIGN_OR_RETURN(std::unique_ptr<Service> service, Service::Open(std::move(store), config.agents));
  if (!config.policy_file.empty()) MANDATE_RETURN_IF_ERROR(LoadPolicyFile(*service, config.policy_file));
  for (const std::string& path : config.fact_files) MANDATE_RETURN_IF_ERROR(LoadFactFile(*service, path));
  // Loading builds the snapshot through transient copies of every fact (decoded rows, change lists,
  // table builders); glibc keeps their freed pages. Giving them back at start makes the resident size
  // the snapshot's own (`mandate bench` measures the same load at 1.5M facts: 461 bytes per fact of
  // resident growth before the trim, 126 after; docs/performance.md).
  malloc_trim(0);
  // The audit log (src/audit, docs/audit.md), opened after the store, whose lock guards the directory.
  std::unique_ptr<audit::AuditLog> audit_log;
  std::unique_ptr<audit::Monitor> audit_monitor;
  if (config.audit.enabled) {
    MANDATE_ASSIGN_OR_RETURN(audit_log, OpenAuditLog(config, *service));
    // Alerts about a registered agent go to its owner's webhooks too ([[alerts.owners]]).
    auto owner_of = [agents = &service->agents()](const std::string& actor) -> std::string {
      const std::string prefix = agents->config().actor_type + ":";
      if (actor.rfind(prefix, 0) != 0) return "";
      std::optional<store::AgentRecord> agent = agents->GetAgent(actor.substr(prefix.size()));
      if (!agent || agent->owner.type.empty()) return "";
      return absl::StrCat(agent->owner.type, ":", agent->owner.id);
    };
    MANDATE_ASSIGN_OR_RETURN(audit_monitor, audit::Monitor::Start(audit_log.get(), config.audit, owner_of));
  }

  Metrics metrics;
  HttpOptions http_options;
  http_options.host = listen.first;
  http_options.port = listen.second;
  http_options.threads = config.threads;
  http_options.body_limit = config.body_limit_bytes;
  http_options.idle_timeout = Millis(config.idle_timeout_seconds);
  http_options.header_timeout = Millis(config.header_timeout_seconds);
  http_options.body_timeout = Millis(config.body_timeout_seconds);
  http_options.shutdown_grace = Millis(config.shutdown_grace_seconds);
  http_options.on_rejected = [&metrics](int status) { metrics.RecordRequest("rejected", status, 0); };
  Api* api_ptr = nullptr;
  HttpServer http(http_options, [&api_ptr](Request request, Respond respond) {
    api_ptr->Handle(std::move(request), std::move(respond));
  });
  if (audit_log != nullptr) {
    // The answers a sync covers are sent by one function posted to the I/O threads, not by one
    // cross-thread wake-up each (docs/audit.md).
    audit_log->SetCompletionRunner(
        [&ioc = http.io_context()](std::function<void()> run) { boost::asio::post(ioc, std::move(run)); });
  }
  // The MCP gateway, when upstreams are configured (src/mcp/, docs/mcp-gateway.md).
  std::unique_ptr<mcp::Gateway> mcp_gateway;
  if (config.mcp.enabled()) {
    mcp::Gateway::Options o;
    o.config = config.mcp;
    o.data_dir = config.data_dir;
    o.snapshot = [&service] { return service->snapshot(); };
    o.agents = &service->agents();
    o.io = &http.io_context();  // plain http upstreams are called from the I/O threads
    o.is_admin = [admin = KeyRing(keys)](std::optional<std::string_view> authorization) {
      absl::StatusOr<Role> role = admin.Authenticate(authorization);
      return role.ok() && *role == Role::kAdmin;
    };
    if (audit_log != nullptr) {
      o.audit = [log = audit_log.get()](std::string entry, mcp::Gateway::Options::Kept kept) {
        log->Append({std::move(entry)}, std::move(kept));
      };
      o.audit_reserve = [log = audit_log.get()] { return log->Reserve(); };
      o.audit_reserved = [log = audit_log.get()](std::string entry) { log->AppendReserved(std::move(entry)); };
    }
    o.on_checked = [&metrics](std::string_view upstream, std::string_view method, std::string_view decision) {
      metrics.RecordMcpMessage(upstream, method, decision);
    };
    o.on_forwarded = [&metrics](std::string_view upstream, double upstream_seconds, double gateway_seconds) {
      metrics.RecordMcpForwarded(upstream, upstream_seconds, gateway_seconds);
    };
    o.approval_audit = [&api_ptr](const std::vector<agents::ApprovalEvent>& events) {
      if (api_ptr != nullptr) api_ptr->AuditApprovalSteps("MCP elicitation/create", events);
    };
    MANDATE_ASSIGN_OR_RETURN(mcp_gateway, mcp::Gateway::Create(std::move(o)));
  }
  // The web console (/ui/, docs/console.md).
  std::unique_ptr<Console> console;
  if (config.console.enabled) console = std::make_unique<Console>(config.console);
  ApiOptions api_options;
  api_options.console = console.get();
  api_options.offset_wait = Millis(config.offset_wait_seconds);
  api_options.mcp_gateway = mcp_gateway.get();
  api_options.authzen = config.authzen;
  api_options.audit_log = audit_log.get();
  api_options.audit_context_bytes = config.audit.context_bytes;
  api_options.audit_monitor = audit_monitor.get();
  api_options.public_url = config.public_url;
  Api api(*service, std::move(ring), metrics, http.io_context(), api_options);
  api_ptr = &api;
  // Installed before the address is announced: whoever reads it may signal at once.
  boost::asio::signal_set signals(http.io_context(), SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: finishing requests in flight, then stopping", signal);
    api.Stop();
    http.Shutdown();
  });
  MANDATE_RETURN_IF_ERROR(http.Listen());

  const std::string host =
      listen.first.find(':') != std::string::npos ? absl::StrCat("[", listen.first, "]") : listen.first;
  if (mcp_gateway != nullptr) {
    mcp_gateway->SetBaseUrl(absl::StrCat("http://", host, ":", http.port()));
    mcp_gateway->Start();
  }
  std::printf(
      "Mandate listening on http://%s:%u (revision %llu, %zu fact(s), policy %s)\n", host.c_str(),
      static_cast<unsigned>(http.port()), static_cast<unsigned long long>(service->revision()),
      service->snapshot()->fact_count(),
      service->policy_version() ? absl::StrCat("version ", service->policy_version()->version).c_str() : "none yet");
  if (console != nullptr) {
    std::printf("Web console: http://%s:%u/ui/ (%zu console user(s); or sign in with an API key)\n", host.c_str(),
                static_cast<unsigned>(http.port()), config.console.users.size());
  }
  if (config.dev) {
    const std::string url = absl::StrCat("http://", host, ":", http.port());
    const std::string auth = absl::StrCat("-H 'Authorization: Bearer ", std::string(kOsoDevKey), "'");
    std::printf(
        "Dev mode: the Oso dev key %s is accepted as an admin key. Try:\n"
        "  curl -s %s/api/policy_metadata %s\n"
        "  curl -s '%s/api/facts?predicate=has_role' %s\n"
        "  curl -s %s/api/authorize %s -d "
        "'{\"actor_type\":\"User\",\"actor_id\":\"alice\",\"action\":\"read\",\"resource_type\":\"Repo\","
        "\"resource_id\":\"anvil\"}'\n",
        std::string(kOsoDevKey).c_str(), url.c_str(), auth.c_str(), url.c_str(), auth.c_str(), url.c_str(),
        auth.c_str());
  }
  if (env_key != nullptr && *env_key != '\0') std::printf("MANDATE_API_KEY is accepted as an admin key.\n");
  if (!config.api_keys.empty()) std::printf("%zu API key(s) from the config file.\n", config.api_keys.size());
  std::printf("Send it as `Authorization: Bearer <key>`. Data directory: %s\n", config.data_dir.c_str());
  std::fflush(stdout);

  http.Run();
  // The gateway's threads may still audit and decide: stop them while the API and the log live.
  mcp_gateway.reset();
  if (audit_log != nullptr) {
    // Sealed with a final checkpoint by Close(). Written after every record appended before it, so
    // the callbacks of those (the gateway's among them) have all gone to the runner by its end:
    // into the stopped I/O threads' queue, where they are dropped without running.
    audit_log->AppendAndWait({boost::json::serialize(
        boost::json::object{{"kind", "system"}, {"action", "server.stop"}, {"revision", service->revision()}})})
        .IgnoreError();
    audit_log->SetCompletionRunner(nullptr);  // the I/O threads have stopped
    audit_monitor.reset();
    audit_log->Close();
  }
  spdlog::info("stopped at revision {}", service->revision());
  return absl::OkStatus();
}

}  // namespace mandate::server
