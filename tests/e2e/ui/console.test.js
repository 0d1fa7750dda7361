// The web console in a real browser: Debian's chromium, headless, driven by playwright-core, against
// a live `mandate serve` on examples/approvals (pay-bot pays invoices for clara; avi approves up to
// 10,000; clara may not approve what is paid on her behalf). Flows: sign in with a password, see the
// approval an agent's /v1/check created, approve it, the agent's retry is allowed, both are in the
// audit log; deny; an approver for whom can_approve does not hold is refused (403 on screen); sign in
// with an API key; CSRF and security headers at the HTTP level. A screenshot of each page goes to
// $MANDATE_UI_ARTIFACTS (CTest: <build dir>/ui-artifacts).
"use strict";

const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { after, before, describe, test } = require("node:test");
const { chromium } = require("playwright-core");

const { MandateServer, DEV_KEY } = require("../lib/server.js");

const REPO = path.resolve(__dirname, "../../..");
const EXAMPLE = path.join(REPO, "examples/approvals");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = process.env.MANDATE_UI_ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), "mandate-ui-artifacts-"));
const PASSWORD = { avi: "avi-approves", clara: "clara-clerk", sec: "security-admin" };

let server;
let browser;

// Console users: avi and clara decide approvals (the policy says for whom), sec is an admin.
function writeConfig(dir) {
  const hash = (pw) =>
    execFileSync(process.env.MANDATE_BIN, ["console", "hash-password", "--iterations", "10000"], { input: `${pw}\n` })
      .toString()
      .trim();
  const file = path.join(dir, "mandate.toml");
  fs.writeFileSync(
    file,
    [
      ["avi", "approver"],
      ["clara", "approver"],
      ["sec", "admin"],
    ]
      .map(([id, role]) => `[[console.users]]\nid = "${id}"\npassword_hash = "${hash(PASSWORD[id])}"\nrole = "${role}"\n`)
      .join("\n"),
  );
  return file;
}

async function agentCheck(invoice) {
  const res = await fetch(`${server.url}/v1/check`, {
    method: "POST",
    headers: { Authorization: `Bearer ${DEV_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      actor: { type: "Agent", id: "pay-bot" },
      on_behalf_of: [{ type: "User", id: "clara" }],
      action: "pay",
      resource: { type: "Invoice", id: invoice },
      context: { channel: "erp" },
    }),
  });
  assert.equal(res.status, 200);
  return res.json();
}

// An invoice of acme for `amount` (avi approves up to 10,000).
async function addInvoice(id, amount) {
  const invoice = { type: "Invoice", id };
  const res = await fetch(`${server.url}/api/batch`, {
    method: "POST",
    headers: { Authorization: `Bearer ${DEV_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify([
      {
        inserts: [
          { predicate: "has_relation", args: [invoice, { type: "String", id: "company" }, { type: "Company", id: "acme" }] },
          { predicate: "amount", args: [invoice, { type: "Integer", id: String(amount) }] },
        ],
      },
    ]),
  });
  assert.equal(res.status, 200, await res.text());
}

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // A refused request (403), or a policy that fails validation (400), shows in the console as a failed
    // resource load; the tests expect those.
    if (m.type() === "error" && !/status of 40[013]/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  page.problems = problems;
  return page;
}

async function signIn(page, user) {
  await page.goto(`${server.url}/ui/`);
  await page.getByLabel("User", { exact: true }).fill(user);
  await page.getByLabel("Password").fill(PASSWORD[user]);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#who").filter({ hasText: `User:${user}` }).waitFor();
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mandate-ui-config-"));
  server = new MandateServer([
    "--config",
    writeConfig(dir),
    "--policy",
    path.join(EXAMPLE, "policy.polar"),
    "--facts",
    path.join(EXAMPLE, "facts.jsonl"),
  ]);
  await server.start();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

describe("approvals in the console", () => {
  test("an approver approves a pending payment; the agent's retry is allowed and both are audited", async () => {
    const first = await agentCheck("inv-1");
    assert.equal(first.decision, "approval_required");
    assert.equal(first.approval.status, "pending");
    assert.match(first.approval.url, /\/ui\/#\/approvals\//);

    const page = await newPage();
    await signIn(page, "avi");
    const row = page.locator(`li[data-id="${first.approval.id}"]`);
    await row.waitFor();
    assert.equal(await row.locator(".row-main").textContent(), "Agent:pay-bot acting for User:clara wants to pay on Invoice:inv-1");
    const detail = page.locator("section.detail");
    await detail.getByText("channel").waitFor();  // the request's context
    await shot(page, "approvals-inbox");

    // Keyboard: "a" asks for confirmation, with a note.
    await page.locator("body").press("a");
    const dialog = page.locator("dialog#confirm");
    await dialog.waitFor();
    await page.locator("#confirm-note").fill("invoice checked against the PO");
    await shot(page, "approvals-confirm");
    await page.locator("#confirm-ok").click();
    await page.locator("#toast").filter({ hasText: "Approved" }).waitFor();

    const retry = await agentCheck("inv-1");
    assert.equal(retry.decision, "allow", JSON.stringify(retry));

    // The decided approval, with the approver and the note.
    await page.goto(`${server.url}/ui/#/approvals/${first.approval.id}?status=all`);
    await page.locator("section.detail .decided").filter({ hasText: "User:avi" }).waitFor();
    assert.match(await page.locator("section.detail .decided").textContent(), /invoice checked against the PO/);

    // Both decisions of the agent are in the audit log.
    await page.goto(`${server.url}/ui/#/audit?actor=Agent%3Apay-bot`);
    const rows = page.locator("table.records tbody tr.row");
    await rows.first().waitFor();
    const texts = await rows.allTextContents();
    assert.ok(texts.some((t) => /pay.*Invoice:inv-1.*approval_required/.test(t)), texts.join("\n"));
    assert.ok(texts.some((t) => /pay.*Invoice:inv-1.*allow/.test(t)), texts.join("\n"));
    await page.locator(".verify.intact").waitFor();  // the chain verifies
    await shot(page, "audit-log");
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test("an approver denies; the agent's retry is denied", async () => {
    await addInvoice("inv-3", 700);
    const page = await newPage();
    await signIn(page, "avi");
    const third = await agentCheck("inv-3");
    assert.equal(third.decision, "approval_required", JSON.stringify(third));
    await page.goto(`${server.url}/ui/#/approvals/${third.approval.id}`);
    await page.locator(`li[data-id="${third.approval.id}"].selected`).waitFor();
    await page.locator("#deny").click();
    await page.locator("#confirm-note").fill("not ours");
    await page.locator("#confirm-ok").click();
    await page.locator("#toast").filter({ hasText: "Denied" }).waitFor();
    const retry = await agentCheck("inv-3");
    assert.equal(retry.decision, "deny");
    assert.ok(retry.reasons.some((r) => r.code === "approval_denied"), JSON.stringify(retry));
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test("an approver for whom can_approve does not hold is refused with a clear 403", async () => {
    const pending = await agentCheck("inv-2");
    assert.equal(pending.decision, "approval_required");
    const page = await newPage();
    await signIn(page, "clara");  // pay-bot acts for clara: she may not approve her own payment
    await page.goto(`${server.url}/ui/#/approvals/${pending.approval.id}`);
    await page.locator(`li[data-id="${pending.approval.id}"].selected`).waitFor();
    await page.locator("#approve").click();
    await page.locator("#confirm-ok").click();
    const error = page.locator("section.detail .error");
    await error.waitFor();
    assert.match(await error.textContent(), /^Refused \(403\)/);
    await shot(page, "approvals-refused");
    const still = await agentCheck("inv-2");
    assert.equal(still.decision, "approval_required");
    await page.context().close();
  });
});

describe("other pages", () => {
  test("sign in with an API key; explorer, agents and policy pages render", async () => {
    const page = await newPage();
    await page.goto(`${server.url}/ui/`);
    await page.getByLabel("API key", { exact: true }).fill(DEV_KEY);
    await page.getByRole("button", { name: "Continue with key" }).click();
    await page.locator("#who").filter({ hasText: "API key" }).waitFor();
    // The key lives in sessionStorage only, never in a cookie.
    assert.equal(await page.evaluate(() => sessionStorage.getItem("mandate.apiKey")), DEV_KEY);
    assert.deepEqual(await page.context().cookies(), []);

    // Decision explorer: a proof tree for the agent's payment.
    await page.goto(`${server.url}/ui/#/explorer`);
    await page.getByLabel("Actor", { exact: true }).fill("Agent:pay-bot");
    await page.getByLabel("On behalf of", { exact: true }).fill("User:clara");
    await page.getByLabel("Action", { exact: true }).fill("read");
    await page.getByLabel("Resource", { exact: true }).fill("Invoice:inv-1");
    await page.getByRole("button", { name: "Check" }).click();
    await page.locator(".decision-allow").waitFor();
    await page.locator(".proof ul.tree").first().waitFor();
    await shot(page, "decision-explorer");

    // Agents: register pay-bot with an admin call, then suspend and resume it in the page.
    const res = await fetch(`${server.url}/v1/agents`, {
      method: "POST",
      headers: { Authorization: `Bearer ${DEV_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ id: "pay-bot", owner: { type: "User", id: "clara" }, description: "pays invoices" }),
    });
    assert.equal(res.status, 201);
    await page.goto(`${server.url}/ui/#/agents`);
    await page.locator("section.detail h2").filter({ hasText: "Agent:pay-bot" }).waitFor();
    await page.locator("#agent-toggle").click();
    await page.locator("#confirm-ok").click();
    await page.locator("section.detail .badge-suspended").waitFor();
    assert.equal((await agentCheck("inv-1")).reasons[0].code, "agent_suspended");
    await shot(page, "agents");
    await page.locator("#agent-toggle").click();
    await page.locator("#confirm-ok").click();
    await page.locator("section.detail .badge-active").waitFor();

    // Policy: the active version, validation of an edit that breaks a test.
    await page.goto(`${server.url}/ui/#/policy`);
    await page.locator("pre.numbered").waitFor();
    await page.locator("#run-tests").click();
    await page.locator(".ok-box").waitFor();
    const editor = page.locator("#policy-editor");
    await editor.fill((await editor.inputValue()).replace('"pay" if "clerk" on "company";', ""));
    await page.locator("#run-tests").click();
    await page.locator("[role=alert].error").filter({ hasText: "Tests fail" }).waitFor();
    await shot(page, "policy");

    // With a key, the approver is asked for.
    await addInvoice("inv-5", 300);
    const pending = await agentCheck("inv-5");
    await page.goto(`${server.url}/ui/#/approvals/${pending.approval.id}`);
    await page.locator(`li[data-id="${pending.approval.id}"].selected`).waitFor();
    await page.locator("#approve").first().click();
    assert.equal(await page.locator("#confirm-approver-field").isVisible(), true);
    await page.locator("#confirm form button[value=cancel]").click();
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
});

describe("HTTP-level security", () => {
  async function login(user) {
    const res = await fetch(`${server.url}/ui/api/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user, password: PASSWORD[user] }),
    });
    assert.equal(res.status, 200);
    const cookie = res.headers.get("set-cookie");
    assert.match(cookie, /^mandate_session=[0-9a-f]{64}; Path=\/; HttpOnly; SameSite=Strict/);
    return { cookie: cookie.split(";")[0], session: await res.json() };
  }

  test("a state change with the session cookie needs the CSRF token", async () => {
    await addInvoice("inv-4", 900);
    const pending = await agentCheck("inv-4");
    const { cookie, session } = await login("avi");
    const approve = (headers) =>
      fetch(`${server.url}/v1/approvals/${pending.approval.id}/approve`, {
        method: "POST",
        headers: { Cookie: cookie, "Content-Type": "application/json", ...headers },
        body: JSON.stringify({ note: "csrf test" }),
      });
    let res = await approve({});
    assert.equal(res.status, 403);
    assert.match((await res.json()).message, /X-CSRF-Token/);
    res = await approve({ "X-CSRF-Token": "0".repeat(64) });
    assert.equal(res.status, 403);
    res = await approve({ "X-CSRF-Token": session.csrf_token, Origin: "https://evil.example" });
    assert.equal(res.status, 403);
    assert.equal((await agentCheck("inv-4")).decision, "approval_required");  // nothing was decided
    res = await approve({ "X-CSRF-Token": session.csrf_token });
    assert.equal(res.status, 200, await res.text());
    // Reads need no token; after logout the cookie is worthless.
    res = await fetch(`${server.url}/v1/approvals?status=approved`, { headers: { Cookie: cookie } });
    assert.equal(res.status, 200);
    res = await fetch(`${server.url}/ui/api/logout`, { method: "POST", headers: { Cookie: cookie, "X-CSRF-Token": session.csrf_token } });
    assert.equal(res.status, 200);
    res = await fetch(`${server.url}/v1/approvals`, { headers: { Cookie: cookie } });
    assert.equal(res.status, 401);
  });

  test("wrong passwords are refused and rate-limited; assets carry a strict CSP", async () => {
    const attempt = (password) =>
      fetch(`${server.url}/ui/api/login`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: "sec", password }),
      });
    for (let i = 0; i < 5; i++) assert.equal((await attempt("wrong")).status, 401);
    const limited = await attempt(PASSWORD.sec);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) > 0);

    const res = await fetch(`${server.url}/ui/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-security-policy"), /default-src 'self'; script-src 'self'/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.match(await res.text(), /<script type="module" src="app.js"><\/script>/);
    const js = await fetch(`${server.url}/ui/app.js`);
    assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    const etag = js.headers.get("etag");
    assert.equal((await fetch(`${server.url}/ui/app.js`, { headers: { "If-None-Match": etag } })).status, 304);
  });
});
