// The legacy oso-cloud@1.6.1 Node client against a live `mandate serve --dev`: the 1.x endpoints
// (POST/DELETE /facts, /bulk_load, /bulk_delete, /bulk, /authorize_resources, /bulk_actions, /query,
// /stats) and the shared ones as 1.x calls them, then a restart on the same data directory.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { Oso } = require("oso-cloud-1");
const { MandateServer, DEV_KEY } = require("./lib/server");
const { POLICY, repo, sorted, sortedJson } = require("./lib/common");
const {
  alice,
  bob,
  carol,
  dave,
  erin,
  frank,
  gina,
  acme,
  bigco,
  anvil,
  rocket,
  secret,
  open,
  BASE_FACTS,
  PREDICATES,
  AUTH_CASES,
  DAVE_READS,
  toV1,
} = require("./lib/github");

const TRUE = { type: "Boolean", id: "true" };

// The 1.x client throws a plain Error("Oso Cloud error: <server message>").
async function assertV1Error(promise, pattern) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, "expected the call to fail");
  const m = /^Oso Cloud error: ([\s\S]+)$/.exec(err.message);
  assert.ok(m && m[1] !== "undefined", `expected "Oso Cloud error: <server message>", got: ${err.message}`);
  assert.match(m[1], pattern);
}

async function allFacts(client) {
  const out = {};
  for (const p of PREDICATES) out[p] = sortedJson(await client.get(p));
  return out;
}

async function decisions(client) {
  return Promise.all(AUTH_CASES.map(([a, act, r]) => client.authorize(a, act, r)));
}

describe("oso-cloud 1.6.1 against mandate serve", () => {
  let server;
  let oso;

  before(async () => {
    server = new MandateServer();
    await server.start();
    oso = new Oso(server.url, DEV_KEY);
  });

  after(async () => {
    if (server) {
      await server.stop();
      server.cleanup();
    }
  });

  it("policy and getPolicyMetadata", async () => {
    await oso.policy(POLICY);
    await oso.policy(POLICY); // unchanged: still no error
    const md = await oso.getPolicyMetadata();
    assert.deepEqual(md.resources.Repo.relations, { parent: "Org" });
    assert.deepEqual(sorted(md.resources.Org.roles), ["admin", "member"]);
  });

  it("tell returns the stored fact; get finds it", async () => {
    const stored = await oso.tell("has_role", alice, "member", acme);
    assert.deepEqual(stored, ["has_role", alice, "member", acme]);
    assert.deepEqual(await oso.get("has_role", alice, null, null), [["has_role", alice, "member", acme]]);
  });

  it("delete (DELETE /facts) removes a fact; deleting a missing one is no error", async () => {
    await oso.tell("has_role", erin, "reader", rocket);
    await oso.delete("has_role", erin, "reader", rocket);
    assert.deepEqual(await oso.get("has_role", erin), []);
    await oso.delete("has_role", erin, "reader", rocket);
  });

  it("bulkTell loads many facts", async () => {
    await oso.bulkTell(BASE_FACTS.map(toV1));
    assert.deepEqual(sortedJson(await oso.get("has_role")), sortedJson(BASE_FACTS.filter((f) => f[0] === "has_role")));
    assert.equal((await oso.get("has_relation")).length, 27);
    assert.deepEqual(await oso.get("is_public", open), [["is_public", open, TRUE]]);
    assert.deepEqual(await oso.get("stars", anvil), [["stars", anvil, { type: "Integer", id: "42" }]]);
  });

  it("bulkDelete with wildcards (null and {type})", async () => {
    await oso.bulkTell([
      ["has_role", frank, "reader", anvil],
      ["has_role", frank, "member", acme],
      ["has_role", gina, "member", acme],
      ["has_role", gina, "member", bigco],
      ["has_role", gina, "reader", anvil],
    ]);
    await oso.bulkDelete([
      ["has_role", frank, null, null],
      ["has_role", gina, "member", { type: "Org" }],
    ]);
    assert.deepEqual(await oso.get("has_role", frank), []);
    assert.deepEqual(await oso.get("has_role", gina), [["has_role", gina, "reader", anvil]]);
    await oso.bulkDelete([["has_role", gina, null, null]]);
    assert.deepEqual(await oso.get("has_role", gina), []);
    assert.equal((await oso.get("has_role")).length, 4, "other users' roles are untouched");
  });

  it("bulk(delete, tell) runs the deletes first", async () => {
    await oso.bulk([["has_role", bob, null, null]], [["has_role", bob, "maintainer", rocket]]);
    assert.deepEqual(await oso.get("has_role", bob), [["has_role", bob, "maintainer", rocket]]);
    await oso.bulk([["has_role", bob, "maintainer", rocket]], [["has_role", bob, "maintainer", rocket]]);
    assert.deepEqual(await oso.get("has_role", bob), [["has_role", bob, "maintainer", rocket]], "re-told after delete");
    await oso.bulk([["has_role", bob, null, null]], [["has_role", bob, "writer", anvil]]);
    assert.deepEqual(await oso.get("has_role", bob), [["has_role", bob, "writer", anvil]]);
  });

  it("errors carry the server's message", async () => {
    await assertV1Error(oso.tell("no_such_predicate", alice), /no_such_predicate/);
    await assertV1Error(oso.bulkTell([["has_role", frank, "reader", anvil], ["has_relation", anvil, "parent"]]), /has_relation/);
    assert.deepEqual(await oso.get("has_role", frank), [], "a rejected bulk_load applies nothing");
    await assertV1Error(new Oso(server.url, "e_not_the_right_key").authorize(alice, "read", anvil), /\S/);
  });

  it("authorize", async () => {
    assert.deepEqual(await decisions(oso), AUTH_CASES.map((c) => c[3]));
    assert.equal(await oso.authorize(erin, "read", secret, [["is_public", secret, TRUE]]), true);
  });

  it("authorizeResources keeps order and duplicates", async () => {
    const resources = [anvil, secret, anvil, open, rocket, repo("nowhere")];
    const raw = await oso.api.postAuthorizeResources({
      actor_type: "User",
      actor_id: "alice",
      action: "read",
      resources,
      context_facts: [],
    });
    assert.deepEqual(raw.results, [anvil, anvil, open, rocket], "POST /api/authorize_resources results");
    assert.deepEqual(await oso.authorizeResources(alice, "read", resources), [anvil, anvil, open, rocket]);
    assert.deepEqual(await oso.authorizeResources(alice, "read", []), []);
    assert.deepEqual(
      await oso.authorizeResources(erin, "read", [secret, anvil, secret], [["is_public", secret, TRUE]]),
      [secret, secret],
    );
  });

  it("list and actions", async () => {
    assert.deepEqual(sorted(await oso.list(alice, "read", "Repo")), ["anvil", "open", "rocket"]);
    assert.deepEqual(sorted(await oso.list(dave, "read", "Repo")), DAVE_READS);
    assert.deepEqual(sorted(await oso.list(erin, "read", "Repo", [["has_role", erin, "member", acme]])), [
      "anvil",
      "open",
      "rocket",
    ]);
    assert.deepEqual(sorted(await oso.actions(carol, anvil)), ["delete", "read", "write"]);
    assert.deepEqual(await oso.actions(erin, anvil), []);
    assert.deepEqual(sorted(await oso.actions(erin, anvil, [["has_role", erin, "writer", anvil]])), ["read", "write"]);
  });

  it("bulkActions answers per resource, in order", async () => {
    const results = await oso.bulkActions(bob, [rocket, anvil, open, secret]);
    assert.deepEqual(results.map(sorted), [[], ["read", "write"], ["read"], []]);
  });

  it("query (v1) returns the derived facts matching a pattern", async () => {
    const reads = await oso.query("allow", alice, "read", { type: "Repo" });
    for (const f of reads) {
      assert.equal(f[0], "allow");
      assert.deepEqual(f.slice(1, 3), [alice, "read"]);
    }
    assert.deepEqual(sorted(reads.map((f) => f[3].id)), ["anvil", "open", "rocket"]);
    // Stored roles plus carol's "member", derived by the shorthand rule "member" if "admin".
    const roles = await oso.query("has_role", null, null, acme);
    assert.deepEqual(
      sortedJson(roles),
      sortedJson([
        ["has_role", alice, "member", acme],
        ["has_role", carol, "admin", acme],
        ["has_role", carol, "member", acme],
      ]),
    );
    const ctx = await oso.query_with_context(["allow", erin, "read", { type: "Repo" }], {
      contextFacts: [["is_public", secret, TRUE]],
    });
    assert.deepEqual(sorted(ctx.map((f) => f[3].id)), ["open", "secret"]);
  });

  it("getStats (GET /stats) counts the facts", async () => {
    const stats = await oso.api.getStats();
    const total = stats?.facts?.total ?? stats?.num_facts;
    assert.equal(total, BASE_FACTS.length, `GET /api/stats: ${JSON.stringify(stats)}`);
  });

  it("every fact and the policy survive a SIGTERM restart on the same data directory", async () => {
    const factsBefore = await allFacts(oso);
    const decisionsBefore = await decisions(oso);
    await server.restart();
    assert.deepEqual(await allFacts(oso), factsBefore);
    assert.equal((await oso.api.getPolicy()).policy.src, POLICY);
    assert.deepEqual(await decisions(oso), decisionsBefore);
    assert.deepEqual(sorted(await oso.list(dave, "read", "Repo")), DAVE_READS);
    await oso.tell("has_role", erin, "reader", rocket);
    assert.equal(await oso.authorize(erin, "read", rocket), true);
  });
});
