// Talking to the server: one fetch wrapper that authenticates every call either with the API key the
// user typed (kept in sessionStorage only, sent as Bearer) or with the session cookie (then the CSRF
// token goes with every state-changing request).
const KEY_STORAGE = "mandate.apiKey";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

const state = { session: null, key: sessionStorage.getItem(KEY_STORAGE) };

export function auth() {
  return state;
}

async function call(method, path, body, { bearer = state.key } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  else if (state.session && method !== "GET") headers["X-CSRF-Token"] = state.session.csrf_token;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (!res.ok) {
    const message = (parsed && parsed.message) || `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, message, parsed);
  }
  return parsed;
}

export const api = {
  get: (path) => call("GET", path),
  post: (path, body = {}) => call("POST", path, body),
  patch: (path, body) => call("PATCH", path, body),
};

// Restores a sign-in made earlier in this tab: the API key, else the session cookie.
export async function restore() {
  if (state.key) return true;
  try {
    state.session = await call("GET", "/ui/api/session", undefined, { bearer: null });
    return true;
  } catch {
    return false;
  }
}

export async function signInWithPassword(user, password) {
  state.session = await call("POST", "/ui/api/login", { user, password }, { bearer: null });
  state.key = null;
  sessionStorage.removeItem(KEY_STORAGE);
}

// A key is accepted when a read call with it succeeds.
export async function signInWithKey(key) {
  await call("GET", "/v1/policy/versions", undefined, { bearer: key });
  state.key = key;
  state.session = null;
  sessionStorage.setItem(KEY_STORAGE, key);
}

export async function signOut() {
  sessionStorage.removeItem(KEY_STORAGE);
  if (state.session) {
    try {
      await call("POST", "/ui/api/logout", {}, { bearer: null });
    } catch {
      // The session may already be over; the cookie is cleared by the server either way.
    }
  }
  state.key = null;
  state.session = null;
}

// Who is signed in, for the header and for deciding approvals.
export function identity() {
  if (state.session) return { label: `${state.session.user.type}:${state.session.user.id} (${state.session.role})`, user: state.session.user, role: state.session.role };
  if (state.key) return { label: "API key", user: null, role: null };
  return null;
}

// "Type:id" <-> {type, id}. The id may itself contain colons.
export function parseValue(text) {
  const s = String(text || "").trim();
  const i = s.indexOf(":");
  if (i <= 0 || i === s.length - 1) return null;
  return { type: s.slice(0, i), id: s.slice(i + 1) };
}

export function valueText(v) {
  if (!v) return "";
  if (typeof v === "string") return v;
  return `${v.type}:${v.id}`;
}
