#!/usr/bin/env node
// Plays the OpenID AuthZEN interop suites (../shared/conformance/authzen, or $AUTHZEN_SUITE) against
// a live `mandate serve --policy examples/authzen/<scenario>/policy.polar --facts .../facts.jsonl`,
// one server per scenario on a free loopback port with a fresh data directory. Every decision case
// (POST /access/v1/evaluation, and /access/v1/evaluations for the boxcar cases) and every search case
// (POST /access/v1/search/{subject,resource,action}, compared ignoring order, once in one page and
// once again page by page with page.limit = 2) must give the expected answer; a failing case prints
// its request, the expected and the actual answer. A few protocol checks follow (400 on missing
// fields, unknown fields ignored, X-Request-ID, evaluations semantics, explain, the metadata).
// Exits 1 on any mismatch.
//
//   MANDATE_BIN=build/x/src/cli/mandate node tests/e2e/authzen/run_authzen.js
// Needs only Node.js 20 (no npm packages). MANDATE_E2E_KEEP=1 keeps the servers' data and logs.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { MandateServer, DEV_KEY } = require("../lib/server.js");

const REPO = path.resolve(__dirname, "../../..");
const SUITE = process.env.AUTHZEN_SUITE || path.resolve(REPO, "../shared/conformance/authzen");

// Which example serves which case files. The IdP cases (idp/results.json) run against the search
// example: the IdP's records are the search demo's records.
const SCENARIOS = [
  {
    example: "todo",
    decisions: [
      "todo/decisions-authorization-api-1_0-00.json",
      "todo/decisions-authorization-api-1_0-01.json",
      "todo/decisions-authorization-api-1_0-02.json",
    ],
    // The same 40 cases as 1_0-00 under the older top-level key "decisions"; played, not counted
    // among the suite's 151 decisions.
    duplicates: ["todo/decisions.json"],
  },
  { example: "api-gateway", decisions: ["api-gateway/decisions.json"] },
  {
    example: "search",
    searches: ["search/subject-results.json", "search/resource-results.json", "search/action-results.json", "idp/results.json"],
  },
];

const failures = [];
const counts = { decision: [0, 0], duplicate: [0, 0], search: [0, 0], paged: [0, 0], protocol: [0, 0] };

function record(kind, ok, what) {
  counts[kind][1] += 1;
  if (ok) {
    counts[kind][0] += 1;
  } else {
    failures.push(what);
    console.log(`FAIL [${kind}] ${what.split("\n")[0]}`);
    console.log(what.split("\n").slice(1).map((l) => `    ${l}`).join("\n"));
  }
}

async function post(server, route, body, headers = {}) {
  const res = await fetch(`${server.url}${route}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${DEV_KEY}`, "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, json, text };
}

function describe(file, index, route, request, expected, got) {
  return `${file} #${index}: POST ${route}\nrequest:  ${JSON.stringify(request)}\nexpected: ${JSON.stringify(expected)}\ngot:      ${got}`;
}

function readCases(file) {
  const data = JSON.parse(fs.readFileSync(path.join(SUITE, file), "utf8"));
  return data;
}

async function playDecisions(server, file, kind) {
  const data = readCases(file);
  const single = data.evaluation || data.decisions || [];
  for (const [i, c] of single.entries()) {
    const r = await post(server, "/access/v1/evaluation", c.request);
    // The upstream runner's comparison: expected === (response.decision || false).
    const ok = r.status === 200 && r.json !== null && (r.json.decision || false) === c.expected;
    record(kind, ok, describe(file, i, "/access/v1/evaluation", c.request, c.expected, `${r.status} ${r.text}`));
  }
  for (const [i, c] of (data.evaluations || []).entries()) {
    const r = await post(server, "/access/v1/evaluations", c.request);
    const got = r.json && Array.isArray(r.json.evaluations) ? r.json.evaluations : [];
    // Each item of the batch is one case; the upstream runner compares the whole array exactly.
    for (const [k, want] of c.expected.entries()) {
      const ok = r.status === 200 && JSON.stringify(got[k]) === JSON.stringify(want) && got.length === c.expected.length;
      record(kind, ok, describe(file, `evaluations ${i} item ${k}`, "/access/v1/evaluations", c.request, c.expected, `${r.status} ${r.text}`));
    }
  }
}

function searchRoute(request) {
  if (!request.action) return "/access/v1/search/action";
  if (request.subject && request.subject.id === undefined) return "/access/v1/search/subject";
  return "/access/v1/search/resource";
}

const canonical = (results) => JSON.stringify(results.map((x) => JSON.stringify(x)).sort());

async function playSearches(server, file) {
  const data = readCases(file);
  const cases = data.evaluation || data.search || [];
  for (const [i, c] of cases.entries()) {
    const route = searchRoute(c.request);
    const r = await post(server, route, c.request);
    const ok =
      r.status === 200 && r.json && Array.isArray(r.json.results) && canonical(r.json.results) === canonical(c.expected.results) &&
      r.json.page && r.json.page.next_token === "";
    record("search", ok, describe(file, i, route, c.request, c.expected, `${r.status} ${r.text}`));

    // The same search, two results per page, following page.next_token to the end.
    const collected = [];
    let token;
    let pages = 0;
    let error = "";
    do {
      const request = { ...c.request, page: token === undefined ? { limit: 2 } : { limit: 2, token } };
      const p = await post(server, route, request);
      if (p.status !== 200 || !p.json || !Array.isArray(p.json.results) || !p.json.page) {
        error = `${p.status} ${p.text}`;
        break;
      }
      if (p.json.results.length > 2) error = `page of ${p.json.results.length} results with limit 2`;
      collected.push(...p.json.results);
      token = p.json.page.next_token;
      pages += 1;
    } while (token && pages <= 100 && !error);
    record(
      "paged",
      !error && canonical(collected) === canonical(c.expected.results) && collected.length === c.expected.results.length,
      describe(file, i, `${route} (page.limit 2)`, c.request, c.expected, error || `${pages} page(s): ${JSON.stringify(collected)}`),
    );
  }
}

// Protocol behaviour, against the todo example.
async function protocolChecks(server) {
  const rick = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs";
  const beth = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs";
  const base = { subject: { type: "user", id: rick }, action: { name: "can_read_todos" }, resource: { type: "todo", id: "t" } };
  const check = (ok, what) => record("protocol", ok, what);

  for (const field of ["subject", "action", "resource"]) {
    const body = { ...base };
    delete body[field];
    const r = await post(server, "/access/v1/evaluation", body);
    check(r.status === 400 && r.json && r.json.message.includes(`/${field}`), `missing ${field} gives 400 naming it\ngot: ${r.status} ${r.text}`);
  }
  for (const [what, body] of [
    ["subject without id", { ...base, subject: { type: "user" } }],
    ["numeric resource id", { ...base, resource: { type: "todo", id: 7 } }],
    ["action without name", { ...base, action: {} }],
    ["properties not an object", { ...base, subject: { ...base.subject, properties: [1] } }],
    ["context not an object", { ...base, context: "x" }],
    ["not JSON", "{"],
  ]) {
    const r = await post(server, "/access/v1/evaluation", body);
    check(r.status === 400, `${what} gives 400\ngot: ${r.status} ${r.text}`);
  }
  {
    const body = { ...base, extra: 1, subject: { ...base.subject, _note: "x", properties: { a: [1, "b"] } }, context: { time: "now" } };
    const r = await post(server, "/access/v1/evaluation", body);
    check(r.status === 200 && r.json.decision === true, `unknown fields are ignored\ngot: ${r.status} ${r.text}`);
  }
  {
    const r = await post(server, "/access/v1/evaluation", base, { "X-Request-ID": "bfe9eb29-ab87-4ca3-be83-a1d5d8305716" });
    check(r.headers.get("x-request-id") === "bfe9eb29-ab87-4ca3-be83-a1d5d8305716", `X-Request-ID is echoed\ngot: ${r.headers.get("x-request-id")}`);
  }
  {
    const res = await fetch(`${server.url}/access/v1/evaluation`, { method: "POST", body: JSON.stringify(base) });
    check(res.status === 401, `a request without a key gets 401\ngot: ${res.status}`);
  }
  const items = [
    { action: { name: "can_read_todos" } },
    { action: { name: "can_create_todo" } },
    { action: { name: "can_read_user" }, resource: { type: "user", id: rick } },
  ];
  const batch = { subject: { type: "user", id: beth }, resource: { type: "todo", id: "t" }, evaluations: items };
  for (const [semantic, want] of [
    [undefined, [true, false, true]],
    ["execute_all", [true, false, true]],
    ["deny_on_first_deny", [true, false]],
    ["permit_on_first_permit", [true]],
  ]) {
    const body = semantic ? { ...batch, options: { evaluations_semantic: semantic } } : batch;
    const r = await post(server, "/access/v1/evaluations", body);
    const got = r.json && r.json.evaluations ? r.json.evaluations.map((e) => e.decision) : null;
    check(JSON.stringify(got) === JSON.stringify(want), `evaluations ${semantic || "(default)"} gives ${JSON.stringify(want)}\ngot: ${r.status} ${r.text}`);
  }
  {
    const r = await post(server, "/access/v1/evaluations", { ...batch, evaluations: [{ action: { name: "x" }, resource: null }], resource: undefined });
    check(r.status === 400 && r.json.message.includes("/evaluations/0/resource"), `an item without resource (and no default) gives 400\ngot: ${r.status} ${r.text}`);
  }
  {
    const r = await post(server, "/access/v1/evaluations", { ...batch, options: { evaluations_semantic: "sometimes" } });
    check(r.status === 400, `an unknown evaluations_semantic gives 400\ngot: ${r.status} ${r.text}`);
  }
  {
    const r = await post(server, "/access/v1/evaluation?explain", { ...base, subject: { type: "user", id: beth }, action: { name: "can_create_todo" } });
    const ctx = r.json && r.json.context;
    check(
      r.status === 200 && r.json.decision === false && ctx && ctx.reason_admin && ctx.explanation && ctx.explanation.text.includes("can_create_todo"),
      `?explain adds the reason and the explanation\ngot: ${r.status} ${r.text}`,
    );
  }
  {
    const r = await post(server, "/access/v1/evaluation", { ...base, subject: { type: "robot", id: "r2" } });
    check(r.status === 200 && r.json.decision === false && r.json.context.id === "unknown_type", `an unknown type is a deny with a reason\ngot: ${r.status} ${r.text}`);
  }
  {
    const morty = "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs";
    const search = { subject: { type: "user", id: morty }, action: { name: "can_update_todo" }, resource: { type: "todo" } };
    const ok = await post(server, "/access/v1/search/resource", search);
    check(
      ok.status === 200 && JSON.stringify(ok.json.results) === JSON.stringify([{ type: "todo", id: "7240d0db-8ff0-41ec-98b2-34a096273b91" }]),
      `a resource search on the todo example\ngot: ${ok.status} ${ok.text}`,
    );
    const r = await post(server, "/access/v1/search/resource", { ...search, page: { token: "bogus" } });
    check(r.status === 400, `a page token the server did not issue gives 400\ngot: ${r.status} ${r.text}`);
  }
  {
    const res = await fetch(`${server.url}/.well-known/authzen-configuration`);
    const meta = await res.json();
    check(
      res.status === 200 && meta.policy_decision_point === server.url && meta.access_evaluation_endpoint === `${server.url}/access/v1/evaluation` &&
        meta.search_action_endpoint === `${server.url}/access/v1/search/action`,
      `GET /.well-known/authzen-configuration (no key needed)\ngot: ${res.status} ${JSON.stringify(meta)}`,
    );
  }
}

async function main() {
  if (!fs.existsSync(SUITE)) throw new Error(`the AuthZEN suite is not at ${SUITE}; set AUTHZEN_SUITE`);
  for (const s of SCENARIOS) {
    const dir = path.join(REPO, "examples/authzen", s.example);
    const server = new MandateServer(["--policy", path.join(dir, "policy.polar"), "--facts", path.join(dir, "facts.jsonl")]);
    await server.start();
    try {
      for (const f of s.decisions || []) await playDecisions(server, f, "decision");
      for (const f of s.duplicates || []) await playDecisions(server, f, "duplicate");
      for (const f of s.searches || []) await playSearches(server, f);
      if (s.example === "todo") await protocolChecks(server);
    } finally {
      await server.stop();
      server.cleanup();
    }
  }
  const line = (k, label) => `${label}: ${counts[k][0]}/${counts[k][1]}`;
  console.log(
    [
      line("decision", "decision cases"),
      line("duplicate", "decisions.json (duplicate of 1.0-00)"),
      line("search", "search cases"),
      line("paged", "search cases, paged"),
      line("protocol", "protocol checks"),
    ].join("\n"),
  );
  if (failures.length > 0) {
    console.log(`${failures.length} failure(s)`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
