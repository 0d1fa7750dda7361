// The audit log: filters (actor, agents only, decision, action, resource, kind, time), the records
// newest first with paging, a record's full detail, and the hash chain's verification status.
import { api, valueText } from "./api.js";
import { navigate } from "./app.js";
import { badge, clear, errorBox, field, h, jsonBlock, SelectableList, time } from "./dom.js";

const FILTERS = ["actor", "agent", "decision", "action", "resource", "kind", "since", "until"];

async function verification(box) {
  clear(box, h("span", { class: "muted" }, "Verifying the audit chain…"));
  try {
    const v = await api.get("/v1/audit/verify");
    box.className = `verify ${v.intact ? "intact" : "broken"}`;
    clear(
      box,
      v.intact
        ? [
            h("strong", {}, "✓ Chain intact"),
            ` — ${v.records} record(s) in ${v.segments} segment(s); ${v.checkpoints} signed checkpoint(s), sealed through #${v.sealed_seq} of #${v.last_seq}; key ${v.key_id}`,
          ]
        : [h("strong", {}, "✗ Chain broken"), " — ", v.problem ? v.problem.message : "unknown problem"],
    );
  } catch (err) {
    clear(box, errorBox(err));
  }
}

function recordDetail(rec) {
  const rows = [
    ["Sequence", `#${rec.seq}`],
    ["Time", rec.ts],
    ["Kind", rec.kind],
    ["Actor", rec.actor],
    ["Chain", (rec.chain || []).join(" → ")],
    ["Action", rec.action],
    ["Resource", rec.resource],
    ["Decision", rec.decision],
    ["Reasons", (rec.reasons || []).join("; ")],
    ["API", rec.api],
    ["Request id", rec.request_id],
    ["Status", rec.status],
    ["Policy version", rec.policy_version],
    ["Revision", rec.revision],
    ["Latency", rec.latency_us !== undefined ? `${rec.latency_us} µs` : undefined],
    ["Client", rec.client],
    ["Key role", rec.key_role],
  ].filter(([, v]) => v !== undefined && v !== null && v !== "");
  return [
    h("h2", {}, `Record #${rec.seq}`),
    h("table", { class: "kv" }, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, String(v)))))),
    h("h3", {}, "Full record"),
    jsonBlock(rec),
  ];
}

export async function render(main, route) {
  const q = route.query;
  const inputs = {
    actor: h("input", { id: "audit-actor", placeholder: "Agent:churn-bot", value: q.get("actor") || "" }),
    agent: h("input", { id: "audit-agent", type: "checkbox", checked: q.get("agent") === "true" }),
    decision: h(
      "select",
      { id: "audit-decision" },
      ["", "allow", "deny", "approval_required", "ok", "error"].map((d) => h("option", { value: d, selected: q.get("decision") === d }, d || "any")),
    ),
    action: h("input", { id: "audit-action", value: q.get("action") || "" }),
    resource: h("input", { id: "audit-resource", placeholder: "Account:42", value: q.get("resource") || "" }),
    kind: h(
      "select",
      { id: "audit-kind" },
      ["", "decision", "admin", "alert", "system", "checkpoint"].map((d) => h("option", { value: d, selected: q.get("kind") === d }, d || "any")),
    ),
    since: h("input", { id: "audit-since", placeholder: "2h, 2026-11-30, RFC 3339", value: q.get("since") || "" }),
    until: h("input", { id: "audit-until", value: q.get("until") || "" }),
  };
  const form = h(
    "form",
    {
      class: "filters",
      "aria-label": "Filter records",
      onsubmit: (e) => {
        e.preventDefault();
        const p = new URLSearchParams();
        for (const k of FILTERS) {
          const el = inputs[k];
          if (el.type === "checkbox") {
            if (el.checked) p.set(k, "true");
          } else if (el.value.trim()) p.set(k, el.value.trim());
        }
        navigate("audit", null, p);
      },
    },
    field("Actor", inputs.actor),
    h("div", { class: "field check" }, inputs.agent, h("label", { for: "audit-agent" }, "Agents only")),
    field("Decision", inputs.decision),
    field("Action", inputs.action),
    field("Resource", inputs.resource),
    field("Kind", inputs.kind),
    field("Since", inputs.since),
    field("Until", inputs.until),
    h("button", { type: "submit", class: "primary" }, "Filter"),
  );
  const verifyBox = h("div", { class: "verify", role: "status" });
  const tbody = h("tbody", {});
  const more = h("button", { type: "button", hidden: true }, "Older records");
  const detail = h("section", { class: "detail", "aria-live": "polite", "aria-label": "Selected record" });
  clear(
    main,
    h(
      "div",
      { class: "page" },
      h("div", { class: "toolbar" }, h("h1", {}, "Audit log")),
      verifyBox,
      form,
      h(
        "div",
        { class: "split wide-list" },
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "records", "aria-label": "Audit records, newest first" },
            h("thead", {}, h("tr", {}, ["#", "Time", "Kind", "Actor", "Action", "Resource", "Decision"].map((t) => h("th", { scope: "col" }, t)))),
            tbody,
          ),
          more,
        ),
        detail,
      ),
    ),
  );
  verification(verifyBox);

  const records = [];
  const controller = { search: inputs.actor, list: null, openOnMove: true };
  const params = new URLSearchParams();
  for (const k of FILTERS) if (q.get(k)) params.set(k, q.get(k));
  params.set("limit", "50");

  async function load(before) {
    if (before) params.set("before", before);
    let page;
    try {
      page = await api.get(`/v1/audit?${params}`);
    } catch (err) {
      detail.replaceChildren(errorBox(err));
      return;
    }
    records.push(...page.records);
    const rows = records.map((rec) =>
      h(
        "tr",
        { class: `row kind-${rec.kind}`, dataset: { seq: rec.seq } },
        h("td", {}, String(rec.seq)),
        h("td", {}, time(rec.ts)),
        h("td", {}, rec.kind),
        h("td", {}, rec.actor || "", rec.chain && rec.chain.length ? h("span", { class: "muted" }, ` for ${rec.chain.join(" → ")}`) : null),
        h("td", {}, rec.action || ""),
        h("td", {}, valueText(rec.resource || "")),
        h("td", {}, rec.decision ? badge(rec.decision) : ""),
      ),
    );
    clear(tbody, rows.length ? rows : h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No records match.")));
    const selected = controller.list ? controller.list.index : 0;
    controller.list = new SelectableList(tbody, rows, (i) => clear(detail, recordDetail(records[i])));
    if (rows.length) {
      controller.list.select(Math.max(0, selected));
      controller.list.open();
    }
    more.hidden = page.next_before === null || page.next_before === undefined;
    more.onclick = () => load(page.next_before);
  }
  await load();
  return controller;
}
