// Small DOM helpers: element construction (text only, never HTML strings, so nothing from the
// server is ever parsed as markup), time formatting, toasts and selectable lists.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function relativeTime(iso) {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((t - Date.now()) / 1000);
  const a = Math.abs(s);
  if (a < 5) return "just now";
  const [n, unit] = a < 60 ? [a, "s"] : a < 3600 ? [Math.round(a / 60), "min"] : a < 86400 ? [Math.round(a / 3600), "h"] : [Math.round(a / 86400), "d"];
  return s >= 0 ? `in ${n} ${unit}` : `${n} ${unit} ago`;
}

export function time(iso) {
  return h("time", { datetime: iso, title: iso }, relativeTime(iso));
}

export function badge(text, kind = text) {
  return h("span", { class: `badge badge-${String(kind).replace(/[^a-z_]/gi, "")}` }, text);
}

let toastTimer = null;
export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  el.className = `show ${kind}`;
  el.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.className = ""), 5000);
}

// An error box that says what went wrong; a 403 says plainly that the server refused.
export function errorBox(err) {
  const title = err.status === 403 ? "Refused (403)" : err.status === 401 ? "Not signed in (401)" : err.status ? `Error ${err.status}` : "Error";
  return h("div", { class: "error", role: "alert" }, h("strong", {}, title), " ", err.message);
}

// A list whose rows can be selected with j/k and opened with Enter (app.js routes the keys here).
export class SelectableList {
  constructor(container, rows, onOpen) {
    this.container = container;
    this.rows = rows;
    this.onOpen = onOpen;
    this.index = rows.length ? 0 : -1;
    rows.forEach((row, i) => {
      row.tabIndex = -1;
      row.addEventListener("click", () => {
        this.select(i);
        this.open();
      });
    });
    this.paint();
  }
  select(i) {
    if (!this.rows.length) return;
    this.index = Math.max(0, Math.min(this.rows.length - 1, i));
    this.paint();
    this.rows[this.index].scrollIntoView({ block: "nearest" });
  }
  move(delta) {
    this.select(this.index + delta);
  }
  open() {
    if (this.index >= 0) this.onOpen(this.index, this.rows[this.index]);
  }
  paint() {
    this.rows.forEach((row, i) => {
      row.classList.toggle("selected", i === this.index);
      row.setAttribute("aria-selected", i === this.index ? "true" : "false");
    });
  }
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", {}, hint) : null);
}

// Pretty JSON, for record details.
export function jsonBlock(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// Asks for confirmation in the shared <dialog>; resolves to {note, approver} or null when cancelled.
// `askApprover` shows the approver field (API-key sign-in: the key does not say who decides).
export function confirmDialog({ title, text, ok, danger = false, askApprover = false }) {
  const dialog = document.getElementById("confirm");
  const note = document.getElementById("confirm-note");
  const approver = document.getElementById("confirm-approver");
  const okButton = document.getElementById("confirm-ok");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-approver-field").hidden = !askApprover;
  approver.required = askApprover;
  okButton.textContent = ok;
  okButton.classList.toggle("danger", danger);
  note.value = "";
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "ok" ? { note: note.value.trim(), approver: approver.value.trim() } : null),
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
    (askApprover && !approver.value ? approver : note).focus();
  });
}
