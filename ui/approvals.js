// The approvals inbox: pending requests first, each said in plain words ("Agent:reporter acting for
// User:alice wants to transfer on Account:42"), with its context and why approval is needed;
// approve or deny with a note (a/d on the selected request, after a confirmation).
import { api, auth, parseValue, valueText } from "./api.js";
import { navigate, refreshPendingCount } from "./app.js";
import { badge, clear, confirmDialog, errorBox, h, SelectableList, time, toast } from "./dom.js";
import { proofTree } from "./explain.js";

const STATUSES = ["pending", "approved", "denied", "expired", "used", "all"];

export function describe(a) {
  const chain = (a.on_behalf_of || []).map(valueText);
  return `${valueText(a.actor)}${chain.length ? ` acting for ${chain.join(" → ")}` : ""} wants to ${a.action} on ${valueText(a.resource)}`;
}

function contextTable(context) {
  const entries = Object.entries(context || {});
  if (!entries.length) return h("p", { class: "muted" }, "No context.");
  return h(
    "table",
    { class: "kv" },
    h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, typeof v === "string" ? v : JSON.stringify(v))))),
  );
}

export async function render(main, route) {
  const status = STATUSES.includes(route.query.get("status")) ? route.query.get("status") : "pending";
  const select = h("select", { id: "approval-status", "aria-label": "Status" }, STATUSES.map((s) => h("option", { value: s, selected: s === status }, s)));
  const search = h("input", { type: "search", id: "approval-search", placeholder: "Filter (press /)", "aria-label": "Filter approvals" });
  const listEl = h("ul", { class: "list", role: "listbox", "aria-label": "Approval requests" });
  const detail = h("section", { class: "detail", "aria-live": "polite", "aria-label": "Selected approval" });
  select.addEventListener("change", () => navigate("approvals", null, new URLSearchParams({ status: select.value })));
  clear(
    main,
    h("div", { class: "page" }, h("div", { class: "toolbar" }, h("h1", {}, "Approvals"), select, search), h("div", { class: "split" }, listEl, detail)),
  );

  const r = await api.get(status === "all" ? "/v1/approvals" : `/v1/approvals?status=${status}`);
  const all = (r.approvals || []).slice();
  all.sort((a, b) => (b.status === "pending") - (a.status === "pending") || String(b.created_at).localeCompare(String(a.created_at)));
  const controller = { search, list: null, openOnMove: true, onKey: () => false };
  let shown = [];

  async function showDetail(a) {
    clear(detail, h("p", { class: "muted" }, "Loading…"));
    let full;
    try {
      full = await api.get(`/v1/approvals/${encodeURIComponent(a.id)}`);
    } catch (err) {
      return clear(detail, errorBox(err));
    }
    const pending = full.status === "pending";
    const decide = async (approve) => {
      const keyMode = !!auth().key;
      const answer = await confirmDialog({
        title: approve ? "Approve this request?" : "Deny this request?",
        text: describe(full),
        ok: approve ? "Approve" : "Deny",
        danger: !approve,
        askApprover: keyMode,
      });
      if (!answer) return;
      const body = { note: answer.note };
      if (keyMode) {
        const approver = parseValue(answer.approver);
        if (!approver) return toast("The approver must be written Type:id, e.g. User:alice", "error");
        body.approver = approver;
      }
      try {
        await api.post(`/v1/approvals/${encodeURIComponent(full.id)}/${approve ? "approve" : "deny"}`, body);
        toast(approve ? "Approved" : "Denied", "ok");
        refreshPendingCount();
        await render(main, route).then((c) => Object.assign(controller, c));
      } catch (err) {
        detail.prepend(errorBox(err));
        toast(err.status === 403 ? `Refused: ${err.message}` : err.message, "error");
      }
    };
    controller.onKey = (key) => {
      if (!pending) return false;
      if (key === "a") decide(true);
      else if (key === "d") decide(false);
      else return false;
      return true;
    };
    clear(
      detail,
      h("h2", { class: "plain" }, describe(full)),
      h("p", {}, badge(full.status), " requested ", time(full.created_at), pending ? [" · expires ", time(full.expires_at)] : null),
      pending
        ? h(
            "div",
            { class: "buttons" },
            h("button", { class: "primary", id: "approve", onclick: () => decide(true) }, "Approve (a)"),
            h("button", { class: "danger", id: "deny", onclick: () => decide(false) }, "Deny (d)"),
          )
        : h(
            "p",
            { class: "decided" },
            full.approver ? ["Decided by ", h("strong", {}, valueText(full.approver)), " "] : null,
            full.decided_at ? time(full.decided_at) : null,
            full.note ? [" — “", full.note, "”"] : null,
          ),
      h("h3", {}, "Request"),
      h(
        "table",
        { class: "kv" },
        h(
          "tbody",
          {},
          h("tr", {}, h("th", { scope: "row" }, "Actor"), h("td", {}, valueText(full.actor))),
          h("tr", {}, h("th", { scope: "row" }, "On behalf of"), h("td", {}, (full.on_behalf_of || []).map(valueText).join(" → ") || "—")),
          h("tr", {}, h("th", { scope: "row" }, "Action"), h("td", {}, full.action)),
          h("tr", {}, h("th", { scope: "row" }, "Resource"), h("td", {}, valueText(full.resource))),
          full.arguments_digest ? h("tr", {}, h("th", { scope: "row" }, "Arguments digest"), h("td", {}, h("code", {}, full.arguments_digest))) : null,
          pending ? null : h("tr", {}, h("th", { scope: "row" }, "Uses left"), h("td", {}, String(full.uses_left ?? "—"))),
          h("tr", {}, h("th", { scope: "row" }, "Id"), h("td", {}, h("code", {}, full.id))),
        ),
      ),
      h("h3", {}, "Context"),
      contextTable(full.context),
      h("h3", {}, "Why approval is needed"),
      (full.reasons || []).length
        ? h("ul", { class: "reasons" }, full.reasons.map((x) => h("li", {}, typeof x === "string" ? x : x.message || JSON.stringify(x))))
        : h("p", { class: "muted" }, "A requires_approval rule matched this request."),
      full.explanation ? [h("h3", {}, "Explanation"), proofTree(full.explanation)] : null,
    );
  }

  function paint() {
    const q = search.value.trim().toLowerCase();
    shown = all.filter((a) => !q || `${describe(a)} ${a.status} ${a.id}`.toLowerCase().includes(q));
    const rows = shown.map((a) =>
      h(
        "li",
        { role: "option", class: `row status-${a.status}`, dataset: { id: a.id } },
        h("div", { class: "row-main" }, describe(a)),
        h("div", { class: "row-meta" }, badge(a.status), " ", time(a.created_at)),
      ),
    );
    clear(listEl, rows.length ? rows : h("li", { class: "empty" }, status === "pending" ? "Nothing waiting for a decision." : "No approvals."));
    controller.list = new SelectableList(listEl, rows, (i) => showDetail(shown[i]));
    const wanted = route.id ? shown.findIndex((a) => a.id === route.id) : 0;
    if (rows.length) {
      controller.list.select(Math.max(0, wanted));
      controller.list.open();
    } else {
      clear(detail, h("p", { class: "muted" }, "Select a request to see it here."));
    }
  }
  search.addEventListener("input", paint);
  paint();
  return controller;
}
