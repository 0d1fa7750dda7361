// Handlers of the native and operational endpoints: /v1/policy/versions, health, readiness and
// Prometheus metrics.
#include <boost/json.hpp>

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
  return Reply{200, json::object{{"status", "ready"}, {"revision", service_.revision()}}};
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
  return reply;
}

}  // namespace mandate::server
