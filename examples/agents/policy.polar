# The customer-churn scenario (docs/agents.md): an agent that works for a customer-success manager.
#
# - churn-bot is owned by alice (the owner fact comes from the agent registry: POST /v1/agents).
# - It reads only the CRM accounts its owner manages, and their usage data.
# - It reads the playbook folder of the shared drive, and every folder nested in it.
# - It may email its owner's customers only on weekdays 08:00-17:00 in the owner's time zone, and
#   at most 50 emails an hour.
# - It cannot delete anything: no rule gives an agent "delete".
# - drafter, a sub-agent that drafts emails for churn-bot, reads what churn-bot reads and nothing
#   more; it never emails.
#
# Mandate adds the delegation ceiling on top: a request from churn-bot on behalf of alice is allowed
# only if it is allowed for churn-bot AND for alice.

actor User {}
actor Agent {
  relations = { owner: User };
}

resource Account {
  permissions = ["read", "email", "delete"];
  roles = ["manager"];
  "read" if "manager";
  "email" if "manager";
  "delete" if "manager";
}

# Product usage of one account; readable by whoever may read the account.
resource Usage {
  permissions = ["read"];
  relations = { account: Account };
  "read" if "read" on "account";
}

# Shared-drive folders: a reader of a folder reads every folder below it.
resource Folder {
  permissions = ["read"];
  roles = ["reader"];
  relations = { parent: Folder };
  "read" if "reader";
  "reader" if "reader" on "parent";
}

declare time_zone(User, String);
declare delegates(Agent, Agent);

# An agent works on the accounts its owner manages.
has_permission(agent: Agent, "read", account: Account) if
  has_relation(agent, "owner", manager) and
  has_role(manager, "manager", account);

# ... and emails their contacts only in the owner's working hours.
has_permission(agent: Agent, "email", account: Account) if
  has_relation(agent, "owner", manager) and
  has_role(manager, "manager", account) and
  time_zone(manager, tz) and
  time_within(tz, "mon-fri", "08:00", "17:00");

# A sub-agent reads what the agent it works for (and that delegated to it) reads.
has_permission(sub: Agent, "read", account: Account) if
  acts_for(sub, agent) and
  delegates(agent, sub) and
  has_permission(agent, "read", account);

# At most 50 emails an hour per agent.
rate_limit(_: Agent, "email", _: Account, "email", 50, 3600);

test "churn-bot reads its owner's accounts, their usage and the playbooks" {
  setup {
    has_relation(Agent{"churn-bot"}, "owner", User{"alice"});
    has_role(User{"alice"}, "manager", Account{"acme"});
    has_role(User{"bob"}, "manager", Account{"initech"});
    has_relation(Usage{"acme-usage"}, "account", Account{"acme"});
    has_relation(Usage{"initech-usage"}, "account", Account{"initech"});
    has_role(Agent{"churn-bot"}, "reader", Folder{"playbooks"});
    has_relation(Folder{"playbooks/churn"}, "parent", Folder{"playbooks"});
    has_relation(Folder{"playbooks/churn/emails"}, "parent", Folder{"playbooks/churn"});
  }
  assert allow(Agent{"churn-bot"}, "read", Account{"acme"});
  assert_not allow(Agent{"churn-bot"}, "read", Account{"initech"});
  assert allow(Agent{"churn-bot"}, "read", Usage{"acme-usage"});
  assert_not allow(Agent{"churn-bot"}, "read", Usage{"initech-usage"});
  assert allow(Agent{"churn-bot"}, "read", Folder{"playbooks/churn/emails"});
  assert_not allow(Agent{"churn-bot"}, "read", Folder{"finance"});
}

test "no agent deletes anything, though managers may" {
  setup {
    has_relation(Agent{"churn-bot"}, "owner", User{"alice"});
    has_role(User{"alice"}, "manager", Account{"acme"});
  }
  assert allow(User{"alice"}, "delete", Account{"acme"});
  assert_not allow(Agent{"churn-bot"}, "delete", Account{"acme"});
}

test "churn-bot emails alice's customers on weekdays 08:00-17:00 New York time" {
  setup {
    has_relation(Agent{"churn-bot"}, "owner", User{"alice"});
    has_role(User{"alice"}, "manager", Account{"acme"});
    has_role(User{"bob"}, "manager", Account{"initech"});
    time_zone(User{"alice"}, "America/New_York");
  }
  at "2026-11-30T09:30:00-05:00";  # a Monday morning
  assert allow(Agent{"churn-bot"}, "email", Account{"acme"});
  assert_not allow(Agent{"churn-bot"}, "email", Account{"initech"});
  at "2026-11-30T17:00:00-05:00";  # the window ends at 17:00
  assert_not allow(Agent{"churn-bot"}, "email", Account{"acme"});
  at "2026-11-28T10:00:00-05:00";  # a Saturday
  assert_not allow(Agent{"churn-bot"}, "email", Account{"acme"});
  at "2026-03-09T12:30:00Z";       # 08:30 EDT, the Monday after the switch to daylight time
  assert allow(Agent{"churn-bot"}, "email", Account{"acme"});
  at "2026-03-09T11:30:00Z";       # 07:30 EDT
  assert_not allow(Agent{"churn-bot"}, "email", Account{"acme"});
}
