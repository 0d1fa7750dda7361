// Renders an explanation (POST /v1/check with "explain": true) as a readable proof tree: one
// section per principal of the chain, each a tree of rules, facts and conditions, marked as held
// or failed, collapsible, with the policy location of each rule.
import { h } from "./dom.js";
import { valueText } from "./api.js";

const KIND_LABEL = {
  rule: "rule",
  fact: "fact",
  context_fact: "context fact",
  compare: "comparison",
  not: "not",
  matches: "type check",
  builtin: "built-in",
};

function node(n, depth) {
  const mark = n.satisfied ? h("span", { class: "ok", "aria-label": "holds" }, "✓") : h("span", { class: "no", "aria-label": "fails" }, "✗");
  const head = h(
    "span",
    { class: "node-head" },
    mark,
    " ",
    h("span", { class: "kind" }, KIND_LABEL[n.kind] || n.kind),
    " ",
    h("code", {}, n.text),
    n.location ? h("span", { class: "loc" }, ` ${n.location}`) : null,
  );
  const failed = n.failed ? h("div", { class: "failed" }, "first failing condition: ", h("code", {}, n.failed)) : null;
  if (!n.children || !n.children.length) return h("li", { class: n.satisfied ? "held" : "notheld" }, head, failed);
  return h(
    "li",
    { class: n.satisfied ? "held" : "notheld" },
    h("details", { open: depth < 3 || !n.satisfied ? true : null }, h("summary", {}, head), failed, h("ul", {}, n.children.map((c) => node(c, depth + 1)))),
  );
}

export function proofTree(explanation) {
  if (!explanation) return null;
  const evaluations = explanation.evaluations || [{ principal: null, allowed: null, explanation }];
  return h(
    "div",
    { class: "proof" },
    evaluations.map((e) =>
      h(
        "section",
        { class: "proof-principal" },
        e.principal
          ? h("h4", {}, valueText(e.principal), " ", e.allowed ? h("span", { class: "ok" }, "allowed") : h("span", { class: "no" }, "not allowed"))
          : null,
        e.explanation && e.explanation.roots && e.explanation.roots.length
          ? h("ul", { class: "tree" }, e.explanation.roots.map((r) => node(r, 0)))
          : h("p", { class: "muted" }, "No rule matched."),
      ),
    ),
  );
}
