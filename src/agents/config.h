// Settings of the agents module: the [agents] section of mandate.toml (docs/configuration.md).
#ifndef MANDATE_AGENTS_CONFIG_H_
#define MANDATE_AGENTS_CONFIG_H_

#include <cstdint>
#include <string>

namespace mandate::agents {

struct Config {
  // The type of registered agents: requests whose actor (or a principal) has this type and an id in
  // the registry are subject to its status, and its owner is visible to the policy.
  std::string actor_type = "Agent";
  // When true, every link of a delegation chain (actor -> on_behalf_of[0] -> ...) must be backed by
  // a stored, granted or context fact delegates(principal, actor).
  bool require_delegation_fact = false;
  // The most principals `on_behalf_of` may name.
  int max_chain_length = 4;
  // How often expired grants are deleted from storage (they are invisible from their expiry on
  // either way).
  int64_t purge_interval_seconds = 60;
  // Human approvals (docs/approvals.md): how long a pending approval waits for a decision and,
  // unless the approver sets ttl_seconds, how long an approval stays usable once approved.
  int64_t approval_ttl_seconds = 3600;
  // The most pending approvals one actor may have at once; past it, checks that need a new
  // approval are denied (reason too_many_pending_approvals).
  int64_t max_pending_approvals = 20;
};

}  // namespace mandate::agents

#endif  // MANDATE_AGENTS_CONFIG_H_
