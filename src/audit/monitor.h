// What watches the audit log as it is written: the sinks that copy records elsewhere (stdout JSON
// lines, HTTP webhooks) and the alert rules. Both run on their own threads behind bounded queues, so
// a slow or dead receiver never delays a decision: when a queue is full, records are dropped and
// counted (mandate_audit_sink_dropped_total), and a sink that gives up on a batch fires the
// sink_failure rule. A fired alert is appended to the log as a record of kind "alert"; once written,
// it is delivered to the webhooks of its rule, to [alerts] webhooks and to the webhooks of the
// actor's owner ([[alerts.owners]]).
#ifndef MANDATE_AUDIT_MONITOR_H_
#define MANDATE_AUDIT_MONITOR_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

#include "audit/config.h"
#include "audit/log.h"

namespace mandate::audit {

// POSTs `body` (JSON) to an http:// or https:// URL; OK on a 2xx answer within `timeout_seconds`.
absl::Status PostJson(const std::string& url, const std::string& body, double timeout_seconds);

class Monitor {
 public:
  // The owner ("Type:id") of an actor ("Type:id"), or "" when it has none; called from the rule
  // thread, so it must be thread-safe.
  using OwnerOf = std::function<std::string(const std::string& actor)>;
  // Subscribes to `log` (which must outlive the Monitor) and starts the sinks and rules of `config`.
  // With `owner_of`, an alert about an actor names the actor's owner and is delivered to the
  // owner's [[alerts.owners]] webhooks as well.
  static absl::StatusOr<std::unique_ptr<Monitor>> Start(AuditLog* log, const Config& config,
                                                        OwnerOf owner_of = nullptr);
  ~Monitor();  // unsubscribes, then delivers what is queued (one attempt each) and stops

  // Prometheus text: log, sink and alert counters.
  std::string MetricsText() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mandate::audit

#endif  // MANDATE_AUDIT_MONITOR_H_
