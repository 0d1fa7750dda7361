// The decision explorer: enter a request (actor, on behalf of, action, resource, context), ask
// POST /v1/check with "explain": true, and read the decision and its proof tree.
import { api, parseValue, valueText } from "./api.js";
import { badge, clear, errorBox, field, h } from "./dom.js";
import { proofTree } from "./explain.js";

const STORAGE = "mandate.explorer";

// "key=value" lines (numbers and true/false typed) or a JSON object.
function parseContext(text) {
  const t = text.trim();
  if (!t) return undefined;
  if (t.startsWith("{")) return JSON.parse(t);
  const out = {};
  for (const line of t.split("\n")) {
    if (!line.trim()) continue;
    const i = line.indexOf("=");
    if (i <= 0) throw new Error(`context line "${line}" is not key=value`);
    const k = line.slice(0, i).trim();
    const v = line.slice(i + 1).trim();
    out[k] = v === "true" ? true : v === "false" ? false : /^-?\d+$/.test(v) ? Number(v) : v;
  }
  return out;
}

export async function render(main) {
  const saved = JSON.parse(sessionStorage.getItem(STORAGE) || "{}");
  const inputs = {
    actor: h("input", { id: "x-actor", required: true, placeholder: "Agent:churn-bot", value: saved.actor || "" }),
    chain: h("input", { id: "x-chain", placeholder: "User:alice, …", value: saved.chain || "" }),
    action: h("input", { id: "x-action", required: true, placeholder: "read", value: saved.action || "" }),
    resource: h("input", { id: "x-resource", required: true, placeholder: "Account:42", value: saved.resource || "" }),
    context: h("textarea", { id: "x-context", rows: 3, placeholder: "device=managed\nrisk=3", value: undefined }),
  };
  inputs.context.value = saved.context || "";
  const result = h("section", { class: "result", "aria-live": "polite", "aria-label": "Decision" });
  const form = h(
    "form",
    {
      class: "explorer-form card",
      onsubmit: async (e) => {
        e.preventDefault();
        const values = Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value]));
        sessionStorage.setItem(STORAGE, JSON.stringify(values));
        const body = { action: values.action.trim(), explain: true };
        try {
          body.actor = parseValue(values.actor);
          body.resource = parseValue(values.resource);
          if (!body.actor) throw new Error("Actor must be written Type:id");
          if (!body.resource) throw new Error("Resource must be written Type:id");
          const chain = values.chain.split(",").map((s) => s.trim()).filter(Boolean);
          body.on_behalf_of = chain.map((s) => {
            const v = parseValue(s);
            if (!v) throw new Error(`"${s}" in On behalf of must be written Type:id`);
            return v;
          });
          const context = parseContext(values.context);
          if (context) body.context = context;
        } catch (err) {
          return clear(result, errorBox(err));
        }
        clear(result, h("p", { class: "muted" }, "Asking…"));
        try {
          const d = await api.post("/v1/check", body);
          clear(
            result,
            h(
              "div",
              { class: `decision decision-${d.decision}` },
              badge(d.decision),
              " ",
              `${valueText(body.actor)}${body.on_behalf_of.length ? ` acting for ${body.on_behalf_of.map(valueText).join(" → ")}` : ""} ${d.allowed ? "may" : "may not"} ${body.action} ${valueText(body.resource)}`,
              h("span", { class: "muted" }, ` (revision ${d.revision})`),
            ),
            d.approval
              ? h("p", {}, "Approval request ", h("a", { href: `#/approvals/${encodeURIComponent(d.approval.id)}` }, d.approval.id), ` is ${d.approval.status}.`)
              : null,
            (d.reasons || []).length ? h("ul", { class: "reasons" }, d.reasons.map((r) => h("li", {}, h("code", {}, r.code), " ", r.message))) : null,
            h("h3", {}, "Why"),
            proofTree(d.explanation) || h("p", { class: "muted" }, "No explanation returned."),
          );
        } catch (err) {
          clear(result, errorBox(err));
        }
      },
    },
    h("div", { class: "grid" }, field("Actor", inputs.actor), field("On behalf of", inputs.chain, "Comma-separated, nearest first"), field("Action", inputs.action), field("Resource", inputs.resource)),
    field("Context", inputs.context, "key=value per line, or a JSON object"),
    h("button", { type: "submit", class: "primary" }, "Check"),
  );
  clear(main, h("div", { class: "page" }, h("div", { class: "toolbar" }, h("h1", {}, "Decision explorer")), form, result));
  return { search: inputs.actor };
}
