// Handlers of the native and operational endpoints: /v1/policy/versions, health, readiness and
// Prometheus metrics.
#include <algorithm>

#include <boost/json.hpp>

#include "absl/strings/str_cat.h"

#include "audit/monitor.h"
#include "server/api.h"
#include "server/status_macros.h"

namespace mandate::server {

namespace json = boost::json;

absl::StatusOr<Reply> Api::PolicyVersions(Call&) {
  MANDATE_ASSIGN_OR_RETURN(std::vector<store::PolicyVersion> versions, service_.store().ListPolicyVersions());
  const std::shared_ptr<const store::PolicyVersion> active = service_.policy_version();
  json::array out;
  for (const store::PolicyVersion& v : versions) {
    out.emplace_back(json::object{{"version", v.version},
                                  {"revision", v.revision},
                                  {"sha256", v.sha256},
                                  {"filename", v.filename},
                                  {"created_at", v.created_at},
                                  {"active", active != nullptr && active->version == v.version}});
  }
  return Reply{200, json::object{{"versions", std::move(out)},
                                 {"active_version", active ? json::value(active->version) : json::value(nullptr)}}};
}

absl::StatusOr<Reply> Api::Healthcheck(Call&) { return Reply{200, json::object{{"message", "ok"}}}; }

absl::StatusOr<Reply> Api::Healthz(Call&) { return Reply{200, json::object{{"status", "ok"}}}; }

absl::StatusOr<Reply> Api::Readyz(Call&) {
  if (stopping_) return Reply{503, json::object{{"status", "shutting down"}}};
  if (!service_.healthy()) {
    return Reply{503, json::object{{"status", "a stored write could not be applied in memory; restart the server"}}};
  }
  json::object body{{"status", "ready"}, {"revision", service_.revision()}};
  // Several nodes on one database: how far this node is behind it. A node that lost the database
  // stays ready (it answers checks from its snapshot) and reports itself stale.
  if (const store::SyncStatus sync = service_.store().sync_status(); sync.shared) {
    const uint64_t applied = std::max<uint64_t>(sync.applied, service_.revision());
    json::object st{{"backend", "postgres"},
                    {"connected", sync.connected},
                    {"applied_revision", applied},
                    {"latest_revision", sync.latest},
                    {"lag_revisions", sync.latest > applied ? sync.latest - applied : 0},
                    {"stale", sync.stale}};
    if (sync.last_sync_unix_ms > 0) st["last_sync_unix_ms"] = sync.last_sync_unix_ms;
    if (!sync.last_error.empty()) st["last_error"] = sync.last_error;
    body["store"] = std::move(st);
  }
  return Reply{200, std::move(body)};
}

absl::StatusOr<Reply> Api::MetricsText(Call&) {
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  const std::shared_ptr<const store::PolicyVersion> active = service_.policy_version();
  Metrics::Gauges gauges;
  gauges.facts = snap->fact_count();
  gauges.revision = service_.revision();
  gauges.policy_version = active ? active->version : 0;
  gauges.ready = !stopping_ && service_.healthy();
  Reply reply;
  reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
  reply.text = metrics_.Render(gauges);
  if (options_.audit_monitor != nullptr) reply.text += options_.audit_monitor->MetricsText();
  if (const store::SyncStatus sync = service_.store().sync_status(); sync.shared) {
    const uint64_t applied = std::max<uint64_t>(sync.applied, service_.revision());
    reply.text += absl::StrCat(
        "# HELP mandate_store_connected Whether the last contact with the shared database succeeded.\n"
        "# TYPE mandate_store_connected gauge\nmandate_store_connected ", sync.connected ? 1 : 0,
        "\n# HELP mandate_store_lag_revisions Revisions committed in the database that this node has not applied.\n"
        "# TYPE mandate_store_lag_revisions gauge\nmandate_store_lag_revisions ",
        sync.latest > applied ? sync.latest - applied : 0,
        "\n# HELP mandate_store_stale Whether this node could not confirm it is current within the staleness bound.\n"
        "# TYPE mandate_store_stale gauge\nmandate_store_stale ", sync.stale ? 1 : 0, "\n");
  }
  return reply;
}

}  // namespace mandate::server
