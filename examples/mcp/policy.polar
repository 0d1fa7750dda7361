# MCP gateway example (docs/mcp-gateway.md): which agents, acting for which users, may use which
# tools of the MCP servers behind `mandate serve`. Tools are Tool{"<upstream>/<tool>"}, the action is
# "call"; the tool's annotations and scalar arguments are visible as context(key, value).
# Run its tests with:  mandate test examples/mcp/policy.polar

actor User {}
actor Agent {}

global {
  roles = ["tool_user", "tool_writer"];
}

resource Tool {
  permissions = ["call"];
  roles = ["caller", "writer"];

  "caller" if global "tool_user";
  "writer" if global "tool_writer";
  "caller" if "writer";
}

# Callers may use tools that do not declare themselves destructive; writers may use every tool.
# (The agent and every user it acts for must each be allowed: the delegation ceiling.)
has_permission(actor: Actor, "call", tool: Tool) if
  has_role(actor, "caller", tool) and
  not context("annotations.destructiveHint", true);
has_permission(actor: Actor, "call", tool: Tool) if
  has_role(actor, "writer", tool);

test "writers may use destructive tools, callers may not" {
  setup {
    has_role(User{"alice"}, "tool_writer");
    has_role(User{"bob"}, "tool_user");
  }
  assert allow(User{"alice"}, "call", Tool{"fs/write_file"});
  assert allow(User{"bob"}, "call", Tool{"fs/read_text_file"});
}

# At most 2 calls of the "get-sum" tool per agent per hour (a rate_limit rule, docs/agents.md).
rate_limit(_: Agent, "call", Tool{"everything/get-sum"}, "get-sum", 2, 3600);
