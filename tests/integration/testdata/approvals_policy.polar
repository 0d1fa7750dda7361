# Agents pay invoices for the users they act for, once an approver of the invoice approves.
actor User {}
actor Agent {}
resource Invoice {
  permissions = ["pay", "read"];
  roles = ["payer", "approver"];
  "pay" if "payer";
  "read" if "payer";
}
has_permission(agent: Agent, action: String, inv: Invoice) if
  acts_for(agent, user) and has_permission(user, action, inv);
requires_approval(_: Agent, "pay", _: Invoice);
can_approve(u: User, _: Agent, "pay", inv: Invoice) if has_role(u, "approver", inv);
