# Payments that need a person's approval (docs/approvals.md).
#
# - pay-bot, an agent, pays invoices for the finance clerk it acts for (on_behalf_of).
# - Paying any invoice needs a person's approval; paying more than 10,000 is approved only by a
#   finance lead, smaller amounts by any finance approver. Reading invoices needs no approval.
# - Approvers approve payments of their own company's invoices.
# - Nobody approves their own payment: pay-bot itself never may (Mandate refuses that whatever the
#   policy says), and the clerk it acts for may not either, because no can_approve_in_chain rule
#   grants it. The CFO is the exception: a can_approve_in_chain rule lets her approve what is paid
#   on her own behalf.
#
# Mandate checks the delegation ceiling first (allow must hold for pay-bot and for the clerk);
# requires_approval is asked only about requests the policy allows.

actor User {}
actor Agent {}

resource Company {
  roles = ["clerk", "approver", "lead", "cfo"];
  "approver" if "lead";
  "lead" if "cfo";
  "clerk" if "approver";
}

resource Invoice {
  permissions = ["read", "pay"];
  relations = { company: Company };
  "read" if "clerk" on "company";
  "pay" if "clerk" on "company";
}

declare amount(Invoice, Integer);

# An agent may do what the person it acts for may do.
has_permission(agent: Agent, action: String, invoice: Invoice) if
  acts_for(agent, person) and has_permission(person, action, invoice);

# Every payment an agent makes needs a person's approval.
requires_approval(_: Agent, "pay", _: Invoice);

# Approvers of the invoice's company approve payments up to 10,000; leads approve any amount.
can_approve(approver: User, _: Agent, "pay", invoice: Invoice) if
  has_relation(invoice, "company", company) and
  has_role(approver, "approver", company) and
  amount(invoice, n) and n <= 10000;
can_approve(approver: User, _: Agent, "pay", invoice: Invoice) if
  has_relation(invoice, "company", company) and
  has_role(approver, "lead", company);

# The CFO may approve payments an agent makes on her own behalf.
can_approve_in_chain(approver: User, agent: Agent, "pay", invoice: Invoice) if
  acts_for(agent, approver) and
  has_relation(invoice, "company", company) and
  has_role(approver, "cfo", company);

test "who may approve a payment" {
  setup {
    has_relation(Invoice{"inv-1"}, "company", Company{"acme"});
    amount(Invoice{"inv-1"}, 500);
    has_relation(Invoice{"inv-2"}, "company", Company{"acme"});
    amount(Invoice{"inv-2"}, 25000);
    has_role(User{"clara"}, "clerk", Company{"acme"});
    has_role(User{"avi"}, "approver", Company{"acme"});
    has_role(User{"lea"}, "lead", Company{"acme"});
    has_role(User{"cora"}, "cfo", Company{"acme"});
    acts_for(Agent{"pay-bot"}, User{"clara"});
  }
  assert allow(Agent{"pay-bot"}, "pay", Invoice{"inv-1"});
  assert allow(User{"clara"}, "pay", Invoice{"inv-1"});
  assert requires_approval(Agent{"pay-bot"}, "pay", Invoice{"inv-1"});
  assert_not requires_approval(Agent{"pay-bot"}, "read", Invoice{"inv-1"});
  assert can_approve(User{"avi"}, Agent{"pay-bot"}, "pay", Invoice{"inv-1"});
  assert_not can_approve(User{"avi"}, Agent{"pay-bot"}, "pay", Invoice{"inv-2"});
  assert can_approve(User{"lea"}, Agent{"pay-bot"}, "pay", Invoice{"inv-2"});
  assert_not can_approve(User{"clara"}, Agent{"pay-bot"}, "pay", Invoice{"inv-1"});
}

test "the CFO approves what is paid on her behalf; other principals of the chain do not" {
  setup {
    has_relation(Invoice{"inv-3"}, "company", Company{"acme"});
    amount(Invoice{"inv-3"}, 900);
    has_role(User{"cora"}, "cfo", Company{"acme"});
    has_role(User{"avi"}, "approver", Company{"acme"});
    acts_for(Agent{"pay-bot"}, User{"cora"});
    acts_for(Agent{"pay-bot-2"}, User{"avi"});
  }
  assert can_approve(User{"cora"}, Agent{"pay-bot"}, "pay", Invoice{"inv-3"});
  assert can_approve_in_chain(User{"cora"}, Agent{"pay-bot"}, "pay", Invoice{"inv-3"});
  assert can_approve(User{"avi"}, Agent{"pay-bot-2"}, "pay", Invoice{"inv-3"});
  assert_not can_approve_in_chain(User{"avi"}, Agent{"pay-bot-2"}, "pay", Invoice{"inv-3"});
}
