// Policy: the active version and its history, a line diff between any two versions, the policy's
// tests, and an editor that validates a changed policy (compile, tests, stored facts) before upload.
import { api } from "./api.js";
import { badge, clear, confirmDialog, errorBox, field, h, SelectableList, time, toast } from "./dom.js";
import { diffLines, hunks } from "./diff.js";

const sources = new Map();
async function source(version) {
  if (!sources.has(version)) sources.set(version, api.get(`/api/policy?id=${version}`).then((r) => (r.policy ? r.policy.src : "")));
  return sources.get(version);
}

function numbered(text) {
  return h("pre", { class: "code numbered" }, text.split("\n").map((line, i) => h("span", { class: "line" }, h("span", { class: "ln", "aria-hidden": "true" }, String(i + 1)), line, "\n")));
}

function diffView(lines) {
  const shown = hunks(lines);
  if (!shown.some((l) => l.op === "+" || l.op === "-")) return h("p", { class: "muted" }, "The two versions are identical.");
  return h(
    "pre",
    { class: "code diff", "aria-label": "Differences" },
    shown.map((l) =>
      h(
        "span",
        { class: `line op-${{ "+": "add", "-": "del", " ": "same", "…": "skip" }[l.op]}` },
        h("span", { class: "ln", "aria-hidden": "true" }, l.a ? String(l.a) : ""),
        h("span", { class: "ln", "aria-hidden": "true" }, l.b ? String(l.b) : ""),
        h("span", { class: "op", "aria-label": { "+": "added", "-": "removed", " ": "", "…": "" }[l.op] }, l.op === "…" ? "" : l.op),
        l.text,
        "\n",
      ),
    ),
  );
}

function validationResult(r) {
  if (r.valid) {
    return h(
      "div",
      { class: "ok-box", role: "status" },
      h("strong", {}, "✓ Valid. "),
      r.message,
      r.tests && r.tests.length ? h("ul", {}, r.tests.map((t) => h("li", {}, `${t.name}: ${t.passed}/${t.total} assertion(s) pass`))) : null,
    );
  }
  const lines = (r.errors || []).map((e) => e.message);
  const tests = (r.test_results && r.test_results.errors) || [];
  return h(
    "div",
    { class: "error", role: "alert" },
    h("strong", {}, r.error_type === "TestsFailed" ? "✗ Tests fail" : "✗ Invalid"),
    h("ul", {}, [...lines, ...tests.map((e) => e.message)].map((m) => h("li", {}, h("code", {}, m)))),
    !lines.length && !tests.length ? h("p", {}, r.message) : null,
  );
}

export async function render(main) {
  const { versions, active_version: active } = await api.get("/v1/policy/versions");
  const newestFirst = versions.slice().reverse();
  const listEl = h("ul", { class: "list", role: "listbox", "aria-label": "Policy versions" });
  const view = h("section", { class: "detail", "aria-live": "polite" });
  const from = h("select", { id: "diff-from" }, newestFirst.map((v) => h("option", { value: v.version }, `v${v.version}`)));
  const to = h("select", { id: "diff-to" }, newestFirst.map((v) => h("option", { value: v.version }, `v${v.version}`)));
  if (newestFirst.length > 1) from.value = String(newestFirst[1].version);
  const editor = h("textarea", { id: "policy-editor", class: "code", rows: 18, spellcheck: "false", "aria-label": "Policy source" });
  const validation = h("div", { "aria-live": "polite" });
  const filename = h("input", { id: "policy-filename", placeholder: "main.polar" });

  const showVersion = async (v) => {
    const src = await source(v.version);
    clear(
      view,
      h("h2", {}, `Version ${v.version} `, v.active ? badge("active", "allow") : null),
      h("p", { class: "muted" }, `${v.filename || "(no file name)"} · stored `, time(v.created_at), ` · revision ${v.revision} · sha256 ${v.sha256.slice(0, 12)}…`),
      numbered(src),
    );
  };
  const runDiff = async () => {
    const [a, b] = await Promise.all([source(Number(from.value)), source(Number(to.value))]);
    clear(view, h("h2", {}, `Changes from v${from.value} to v${to.value}`), diffView(diffLines(a, b)));
  };
  const validate = async (src) => {
    clear(validation, h("p", { class: "muted" }, "Validating…"));
    try {
      clear(validation, validationResult(await api.post("/v1/policy/validate", { src, filename: filename.value.trim() || undefined })));
    } catch (err) {
      clear(validation, err.body && err.body.error_type ? validationResult(err.body) : errorBox(err));
    }
  };
  const upload = async () => {
    const answer = await confirmDialog({ title: "Upload this policy?", text: "It becomes the active policy for every decision from now on.", ok: "Upload" });
    if (!answer) return;
    try {
      const r = await api.post("/api/policy", { src: editor.value, filename: filename.value.trim() || undefined });
      toast(r.message, "ok");
      sources.clear();
      Object.assign(controller, await render(main));
    } catch (err) {
      clear(validation, err.body && err.body.error_type ? validationResult(err.body) : errorBox(err));
    }
  };

  clear(
    main,
    h(
      "div",
      { class: "page" },
      h("div", { class: "toolbar" }, h("h1", {}, "Policy"), active ? h("span", {}, "active version ", h("strong", {}, `v${active}`)) : h("span", { class: "muted" }, "no policy uploaded yet")),
      h(
        "div",
        { class: "split" },
        h(
          "div",
          {},
          h("h2", { class: "small" }, "History"),
          listEl,
          newestFirst.length > 1
            ? h("form", { class: "diff-form", onsubmit: (e) => (e.preventDefault(), runDiff()) }, field("From", from), field("To", to), h("button", { type: "submit" }, "Diff"))
            : null,
        ),
        view,
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Edit and validate"),
        h("p", { class: "muted" }, "Validation compiles the text, runs its test blocks and checks the stored facts against it; nothing is stored until you upload."),
        field("File name", filename),
        editor,
        h(
          "div",
          { class: "buttons" },
          h("button", { type: "button", id: "run-tests", onclick: () => validate(editor.value) }, "Validate and run tests"),
          h("button", { type: "button", id: "upload", class: "primary", onclick: upload }, "Upload…"),
        ),
        validation,
      ),
    ),
  );
  const controller = { list: null, openOnMove: true };
  const rows = newestFirst.map((v) => h("li", { role: "option", class: "row" }, h("div", { class: "row-main" }, `v${v.version}`, v.active ? [" ", badge("active", "allow")] : null), h("div", { class: "row-meta" }, time(v.created_at))));
  clear(listEl, rows.length ? rows : h("li", { class: "empty" }, "No versions yet."));
  controller.list = new SelectableList(listEl, rows, (i) => showVersion(newestFirst[i]).catch((err) => clear(view, errorBox(err))));
  if (rows.length) {
    controller.list.open();
    const current = newestFirst.find((v) => v.active) || newestFirst[0];
    editor.value = await source(current.version);
    filename.value = current.filename || "";
  }
  return controller;
}
