// Agents: the registry with owners and status, suspend/resume, and the grants and tasks in effect.
import { api, valueText } from "./api.js";
import { badge, clear, confirmDialog, errorBox, h, SelectableList, time, toast } from "./dom.js";

function factText(f) {
  return `${f.predicate}(${f.args.map((a) => (a.type === "String" ? JSON.stringify(a.id) : valueText(a))).join(", ")})`;
}

export async function render(main, route) {
  const search = h("input", { type: "search", id: "agent-search", placeholder: "Filter (press /)", "aria-label": "Filter agents" });
  const tbody = h("tbody", {});
  const detail = h("section", { class: "detail", "aria-live": "polite", "aria-label": "Selected agent" });
  clear(
    main,
    h(
      "div",
      { class: "page" },
      h("div", { class: "toolbar" }, h("h1", {}, "Agents"), search),
      h(
        "div",
        { class: "split wide-list" },
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "records", "aria-label": "Agents" },
            h("thead", {}, h("tr", {}, ["Agent", "Owner", "Status", "Description"].map((t) => h("th", { scope: "col" }, t)))),
            tbody,
          ),
        ),
        detail,
      ),
    ),
  );
  const [{ agents }, { grants }] = await Promise.all([api.get("/v1/agents"), api.get("/v1/grants")]);
  const controller = { search, list: null, openOnMove: true };

  async function showAgent(a) {
    const mine = grants.filter((g) => g.fact.args.some((v) => v.type === a.type && v.id === a.id));
    const tasks = [...new Set(mine.map((g) => g.task).filter(Boolean))];
    const taskInfo = await Promise.all(tasks.map((t) => api.get(`/v1/tasks/${encodeURIComponent(t)}`).catch(() => ({ id: t, status: "unknown" }))));
    const suspended = a.status === "suspended";
    const toggle = async () => {
      const answer = await confirmDialog({
        title: suspended ? `Resume ${a.id}?` : `Suspend ${a.id}?`,
        text: suspended ? "Its requests will be evaluated by the policy again." : "Every request of this agent, and every request made on its behalf, will be denied from the next one on.",
        ok: suspended ? "Resume" : "Suspend",
        danger: !suspended,
      });
      if (!answer) return;
      try {
        await api.patch(`/v1/agents/${encodeURIComponent(a.id)}`, { status: suspended ? "active" : "suspended" });
        toast(suspended ? `${a.id} resumed` : `${a.id} suspended`, "ok");
        Object.assign(controller, await render(main, { ...route, id: a.id }));
      } catch (err) {
        detail.prepend(errorBox(err));
      }
    };
    clear(
      detail,
      h("h2", {}, `${a.type}:${a.id}`, " ", badge(a.status)),
      a.description ? h("p", {}, a.description) : null,
      h(
        "table",
        { class: "kv" },
        h(
          "tbody",
          {},
          h("tr", {}, h("th", { scope: "row" }, "Owner"), h("td", {}, a.owner ? valueText(a.owner) : "—")),
          h("tr", {}, h("th", { scope: "row" }, "Registered"), h("td", {}, time(a.created_at))),
          h("tr", {}, h("th", { scope: "row" }, "Updated"), h("td", {}, time(a.updated_at))),
        ),
      ),
      h("div", { class: "buttons" }, h("button", { id: "agent-toggle", class: suspended ? "primary" : "danger", onclick: toggle }, suspended ? "Resume" : "Suspend")),
      h("h3", {}, `Grants in effect (${mine.length})`),
      mine.length
        ? h(
            "table",
            { class: "records" },
            h("thead", {}, h("tr", {}, ["Fact", "Task", "Expires"].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", {}, mine.map((g) => h("tr", {}, h("td", {}, h("code", {}, factText(g.fact))), h("td", {}, g.task || "—"), h("td", {}, g.expires_at ? time(g.expires_at) : "with the task")))),
          )
        : h("p", { class: "muted" }, "No grants."),
      h("h3", {}, `Tasks (${taskInfo.length})`),
      taskInfo.length ? h("ul", {}, taskInfo.map((t) => h("li", {}, h("code", {}, t.id), " ", badge(t.status), t.created_at ? [" started ", time(t.created_at)] : null))) : h("p", { class: "muted" }, "No tasks."),
    );
  }

  let shown = [];
  function paint() {
    const q = search.value.trim().toLowerCase();
    shown = agents.filter((a) => !q || `${a.id} ${valueText(a.owner)} ${a.status} ${a.description}`.toLowerCase().includes(q));
    const rows = shown.map((a) =>
      h("tr", { class: "row", dataset: { id: a.id } }, h("td", {}, a.id), h("td", {}, a.owner ? valueText(a.owner) : "—"), h("td", {}, badge(a.status)), h("td", {}, a.description || "")),
    );
    clear(tbody, rows.length ? rows : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No agents registered (POST /v1/agents).")));
    controller.list = new SelectableList(tbody, rows, (i) => showAgent(shown[i]).catch((err) => clear(detail, errorBox(err))));
    if (rows.length) {
      controller.list.select(Math.max(0, route.id ? shown.findIndex((a) => a.id === route.id) : 0));
      controller.list.open();
    }
  }
  search.addEventListener("input", paint);
  paint();
  return controller;
}
