# plain rules with every operator
allow(actor: User, "read", doc: Doc) if
  (owns(actor, doc) or shared(doc, actor)) and not archived(doc) and
  expires(doc, t) and t > @current_unix_time and t != 0 and t >= -5 and t <= 9223372036854775807 and
  level(actor, l) and l == 3 and l < 10 and x = "a\"b\\c\n\u{1F600}" and x matches String and
  time_within("UTC", "mon-fri", "09:00", "17:00") and context("k", Integer{1}) and acts_for(actor, _: User);
rate_limit(actor: Agent, "write", _: Doc, "writes", 10, 60) if agent(actor);
requires_approval(_: Agent, "delete", _: Doc);
can_approve(u: User, _: Agent, "delete", d: Doc::Page) if owns(u, d);
