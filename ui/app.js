// The console's shell: sign-in, the hash router (#/approvals, #/audit, #/explorer, #/agents,
// #/policy, with an optional /<id> and ?query), the header, and the keyboard shortcuts that every
// page shares. Pages are modules exporting render(main, route) -> controller, where the controller
// may offer {list: SelectableList, search: <input>, onKey(key) -> handled?, dispose()}.
import { api, identity, restore, signInWithKey, signInWithPassword, signOut } from "./api.js";
import { clear, errorBox, field, h, toast } from "./dom.js";

const PAGES = {
  approvals: () => import("./approvals.js"),
  audit: () => import("./audit.js"),
  explorer: () => import("./explorer.js"),
  agents: () => import("./agents.js"),
  policy: () => import("./policy.js"),
};

const main = document.getElementById("main");
const header = document.querySelector("header.top");
let controller = null;
let renderSeq = 0;

export function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const [page, ...rest] = path.split("/");
  return { page: PAGES[page] ? page : "approvals", id: rest.length ? decodeURIComponent(rest.join("/")) : null, query: new URLSearchParams(query) };
}

export function navigate(page, id = null, query = null) {
  const q = query && [...query].length ? `?${query}` : "";
  location.hash = `#/${page}${id !== null ? `/${encodeURIComponent(id)}` : ""}${q}`;
}

async function route() {
  if (!identity()) return showSignIn();
  const r = parseRoute();
  const seq = ++renderSeq;
  for (const a of header.querySelectorAll("nav a")) {
    if (a.dataset.page === r.page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (controller && controller.dispose) controller.dispose();
  controller = null;
  try {
    const mod = await PAGES[r.page]();
    if (seq !== renderSeq) return;
    controller = (await mod.render(main, r)) || {};
  } catch (err) {
    if (err.status === 401) {
      await signOut();
      return showSignIn("Your sign-in is no longer valid; sign in again.");
    }
    clear(main, errorBox(err));
  }
  refreshPendingCount();
}

export async function refreshPendingCount() {
  const el = document.getElementById("pending-count");
  try {
    const r = await api.get("/v1/approvals?status=pending");
    const n = (r.approvals || []).length;
    el.textContent = n ? String(n) : "";
  } catch {
    el.textContent = "";
  }
}

function showHeader() {
  header.hidden = false;
  const who = identity();
  document.getElementById("who").textContent = who ? who.label : "";
}

function showSignIn(message) {
  header.hidden = true;
  const user = h("input", { name: "user", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const key = h("input", { name: "key", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const status = h("div", { role: "alert", class: "signin-status" }, message ? h("p", {}, message) : null);
  const done = () => {
    showHeader();
    route();
  };
  const fail = (err) =>
    clear(status, errorBox(err.status === 401 ? Object.assign(err, { message: err.message || "wrong credentials" }) : err));
  const passwordForm = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "signin-user-title",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          await signInWithPassword(user.value, password.value);
          password.value = "";
          done();
        } catch (err) {
          fail(err);
        }
      },
    },
    h("h2", { id: "signin-user-title" }, "Sign in"),
    field("User", user),
    field("Password", password),
    h("button", { class: "primary", type: "submit" }, "Sign in"),
  );
  const keyForm = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "signin-key-title",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          await signInWithKey(key.value.trim());
          key.value = "";
          done();
        } catch (err) {
          fail(err);
        }
      },
    },
    h("h2", { id: "signin-key-title" }, "Use an API key"),
    field("API key", key, "Kept in this tab only (sessionStorage) and sent as a Bearer token."),
    h("button", { type: "submit" }, "Continue with key"),
  );
  clear(main, h("div", { class: "signin" }, h("h1", {}, "Mandate console"), status, h("div", { class: "signin-forms" }, passwordForm, keyForm)));
  user.focus();
}

// --- Keyboard.
let pendingG = 0;
const GO = { i: "approvals", l: "audit", e: "explorer", g: "agents", p: "policy" };

function typing(target) {
  return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || !identity()) return;
  if (document.querySelector("dialog[open]")) return;
  if (typing(e.target)) {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  const c = controller || {};
  if (pendingG && Date.now() - pendingG < 1500 && GO[e.key]) {
    pendingG = 0;
    e.preventDefault();
    return navigate(GO[e.key]);
  }
  pendingG = 0;
  switch (e.key) {
    case "/":
      if (c.search) {
        e.preventDefault();
        c.search.focus();
        c.search.select && c.search.select();
      }
      return;
    case "j":
    case "k":
      if (c.list) {
        e.preventDefault();
        c.list.move(e.key === "j" ? 1 : -1);
        if (c.openOnMove) c.list.open();
      }
      return;
    case "Enter":
      if (c.list && !["BUTTON", "A", "SUMMARY"].includes(e.target.tagName)) {
        e.preventDefault();
        c.list.open();
      }
      return;
    case "?":
      e.preventDefault();
      document.getElementById("shortcuts").showModal();
      return;
    case "g":
      pendingG = Date.now();
      return;
    default:
      if (c.onKey && c.onKey(e.key)) e.preventDefault();
  }
});

document.getElementById("shortcuts-button").addEventListener("click", () => document.getElementById("shortcuts").showModal());
document.getElementById("sign-out").addEventListener("click", async () => {
  await signOut();
  toast("Signed out");
  showSignIn();
});
window.addEventListener("hashchange", route);

(async () => {
  if (await restore()) {
    showHeader();
    route();
  } else {
    showSignIn();
  }
})();
