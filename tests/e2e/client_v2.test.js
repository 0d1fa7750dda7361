// The official oso-cloud@2.6.0 Node client against a live `mandate serve --dev`: its whole API surface
// (policy, facts, batch, get, authorize, list, actions, buildQuery, metadata, clear), the error shapes it
// surfaces, and that every fact and the policy survive a restart on the same data directory.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { Oso, typedVar } = require("oso-cloud");
const { OsoError } = require("oso-cloud/dist/src/api");
const { MandateServer, DEV_KEY } = require("./lib/server");
const {
  POLICY,
  POLICY_STRICT_WRITE,
  POLICY_FAILING_TEST,
  POLICY_SYNTAX_ERROR,
  FAILING_TEST_NAME,
  user,
  sorted,
  sortedJson,
  recorder,
  rawRequest,
  assertOsoError,
} = require("./lib/common");
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
  bigRepoIds,
  BASE_FACTS,
  PREDICATES,
  AUTH_CASES,
  DAVE_READS,
  factV2,
} = require("./lib/github");

// Oso documents the SavePolicyError bodies but not their status; any client-error status of these is fine.
const POLICY_REJECTED = [400, 422];

async function allFacts(client) {
  const out = {};
  for (const p of PREDICATES) out[p] = sortedJson(await client.get([p]));
  return out;
}

async function decisions(client) {
  return Promise.all(AUTH_CASES.map(([a, act, r]) => client.authorize(a, act, r)));
}

describe("oso-cloud 2.6.0 against mandate serve", () => {
  let server;
  let oso; // a client as applications use it (built-in retries)
  let probe; // a client whose HTTP exchanges are recorded
  let rec;

  before(async () => {
    server = new MandateServer();
    await server.start();
    oso = new Oso(server.url, DEV_KEY);
    rec = recorder();
    probe = new Oso(server.url, DEV_KEY, { fetchBuilder: rec.fetchBuilder });
  });

  after(async () => {
    if (server) {
      await server.stop();
      server.cleanup();
    }
  });

  describe("policy", () => {
    it("uploads a policy (200) and GET /policy returns its source", async () => {
      await probe.policy(POLICY);
      assert.equal(rec.last().status, 200, "POST /api/policy of a new policy");
      assert.ok(rec.last().headers.get("OsoOffset"), "POST /api/policy answers with an OsoOffset header");
      const got = await oso.api.getPolicy();
      assert.equal(got.policy && got.policy.src, POLICY);
    });

    it("re-uploading the unchanged policy is no error (202)", async () => {
      await probe.policy(POLICY);
      assert.equal(rec.last().status, 202, "POST /api/policy of the unchanged policy");
    });

    it("a changed valid policy replaces the active one (200)", async () => {
      const ctx = [["has_role", bob, "writer", anvil]];
      assert.equal(await oso.authorize(bob, "write", anvil, ctx), true);
      await probe.policy(POLICY_STRICT_WRITE);
      assert.equal(rec.last().status, 200);
      assert.equal(await oso.authorize(bob, "write", anvil, ctx), false, "writers may not write under the new policy");
      await oso.policy(POLICY);
      assert.equal(await oso.authorize(bob, "write", anvil, ctx), true, "the original policy is active again");
    });

    it("a policy whose test block fails is rejected with TestsFailed and changes nothing", async () => {
      const { message } = await assertOsoError(oso.policy(POLICY_FAILING_TEST), OsoError, POLICY_REJECTED);
      assert.ok(message.includes(FAILING_TEST_NAME), `the message names the failing test: ${message}`);
      const raw = await rawRequest(server.url, DEV_KEY, "POST", "/policy", { src: POLICY_FAILING_TEST, filename: "" });
      assert.ok(POLICY_REJECTED.includes(raw.status), `status ${raw.status}`);
      assert.equal(raw.body.error_type, "TestsFailed", `SavePolicyError body: ${JSON.stringify(raw.body)}`);
      assert.equal(typeof raw.body.message, "string");
      assert.equal(raw.body.test_results.success, false);
      const failing = raw.body.test_results.tests.find((t) => t.name === FAILING_TEST_NAME);
      assert.ok(failing, `test_results.tests lists "${FAILING_TEST_NAME}": ${JSON.stringify(raw.body.test_results)}`);
      assert.ok(failing.passed < failing.total, `the failing test reports passed < total: ${JSON.stringify(failing)}`);
      assert.equal((await oso.api.getPolicy()).policy.src, POLICY, "the active policy is unchanged");
    });

    it("a policy with a syntax error is rejected, naming the place, and changes nothing", async () => {
      await assertOsoError(oso.policy(POLICY_SYNTAX_ERROR), OsoError, POLICY_REJECTED, /\b4:\d+|line 4/);
      const raw = await rawRequest(server.url, DEV_KEY, "POST", "/policy", { src: POLICY_SYNTAX_ERROR, filename: "" });
      assert.ok(POLICY_REJECTED.includes(raw.status), `status ${raw.status}`);
      assert.ok(["Generic", "Validation"].includes(raw.body.error_type), `SavePolicyError body: ${JSON.stringify(raw.body)}`);
      assert.equal((await oso.api.getPolicy()).policy.src, POLICY, "the active policy is unchanged");
    });

    it("getPolicyMetadata describes roles, permissions and relations", async () => {
      const md = await oso.getPolicyMetadata();
      const { Org, Repo } = md.resources;
      assert.ok(Org && Repo, `metadata: ${JSON.stringify(md)}`);
      assert.deepEqual(sorted(Repo.roles), ["maintainer", "reader", "writer"]);
      assert.deepEqual(sorted(Repo.permissions), ["delete", "read", "write"]);
      assert.deepEqual(Repo.relations, { parent: "Org" });
      assert.deepEqual(sorted(Org.roles), ["admin", "member"]);
      assert.deepEqual(sorted(Org.permissions), ["create_repo", "read"]);
      assert.deepEqual(Org.relations ?? {}, {});
    });
  });

  describe("facts: insert, get, delete, batch", () => {
    it("inserts facts one by one and in a batch", async () => {
      for (const f of BASE_FACTS.slice(0, 3)) await oso.insert(f);
      await oso.batch((tx) => {
        for (const f of BASE_FACTS.slice(3)) tx.insert(f);
      });
      assert.equal((await oso.get(["has_relation"])).length, 27);
    });

    it("get with patterns", async () => {
      assert.deepEqual(
        sortedJson(await oso.get(["has_role"])),
        sortedJson(BASE_FACTS.filter((f) => f[0] === "has_role").map((f) => factV2(...f))),
      );
      assert.deepEqual(await oso.get(["has_role", alice]), [factV2("has_role", alice, "member", acme)]);
      assert.deepEqual(
        sortedJson(await oso.get(["has_role", null, "member", { type: "Org" }])),
        sortedJson([factV2("has_role", alice, "member", acme), factV2("has_role", dave, "member", bigco)]),
      );
      assert.deepEqual(
        sortedJson(await oso.get(["has_role", null, null, acme])),
        sortedJson([factV2("has_role", alice, "member", acme), factV2("has_role", carol, "admin", acme)]),
      );
      assert.deepEqual(
        sorted((await oso.get(["has_relation", { type: "Repo" }, "parent", bigco])).map((f) => f[1].id)),
        bigRepoIds,
      );
      assert.deepEqual(await oso.get(["is_public", open, true]), [factV2("is_public", open, true)]);
      assert.deepEqual(await oso.get(["stars", anvil]), [factV2("stars", anvil, 42)]);
      assert.deepEqual(await oso.get(["has_role", user("nobody")]), []);
    });

    it("inserting an existing fact again does not duplicate it", async () => {
      await oso.insert(["has_role", alice, "member", acme]);
      assert.equal((await oso.get(["has_role", alice])).length, 1);
    });

    it("deletes a concrete fact; deleting a missing fact is no error", async () => {
      await oso.insert(["has_role", erin, "reader", rocket]);
      assert.equal((await oso.get(["has_role", erin])).length, 1);
      await oso.delete(["has_role", erin, "reader", rocket]);
      assert.deepEqual(await oso.get(["has_role", erin]), []);
      await oso.delete(["has_role", erin, "reader", rocket]);
    });

    it("delete with null wildcards", async () => {
      await oso.batch((tx) => {
        tx.insert(["has_role", frank, "reader", anvil]);
        tx.insert(["has_role", frank, "writer", rocket]);
        tx.insert(["has_role", frank, "member", acme]);
      });
      assert.equal((await oso.get(["has_role", frank])).length, 3);
      await oso.delete(["has_role", frank, null, null]);
      assert.deepEqual(await oso.get(["has_role", frank]), []);
      assert.equal((await oso.get(["has_role"])).length, 4, "other users' roles are untouched");
    });

    it("delete with a type-only wildcard ({type: \"Org\"})", async () => {
      await oso.batch((tx) => {
        tx.insert(["has_role", gina, "member", acme]);
        tx.insert(["has_role", gina, "member", bigco]);
        tx.insert(["has_role", gina, "reader", anvil]);
      });
      await oso.delete(["has_role", gina, "member", { type: "Org" }]);
      assert.deepEqual(await oso.get(["has_role", gina]), [factV2("has_role", gina, "reader", anvil)]);
      await oso.delete(["has_role", gina, null, null]);
    });

    it("delete with a wildcard on an Integer argument", async () => {
      await oso.insert(["stars", rocket, 7]);
      await oso.delete(["stars", rocket, null]);
      assert.deepEqual(await oso.get(["stars"]), [factV2("stars", anvil, 42)]);
    });

    it("batch changesets apply in order", async () => {
      const x = ["has_role", frank, "reader", anvil];
      const y = ["has_role", frank, "reader", rocket];
      await oso.batch((tx) => {
        tx.insert(x);
        tx.insert(y);
        tx.delete(x);
      });
      assert.deepEqual(await oso.get(["has_role", frank]), [factV2(...y)], "insert then delete in one batch");
      await oso.batch((tx) => {
        tx.delete(y);
        tx.insert(y);
      });
      assert.deepEqual(await oso.get(["has_role", frank]), [factV2(...y)], "delete then insert in one batch");
      await oso.batch((tx) => tx.delete(["has_role", frank, null, null]));
      assert.deepEqual(await oso.get(["has_role", frank]), []);
    });

    it("a batch with one bad fact is rejected as a whole", async () => {
      const p = oso.batch((tx) => {
        tx.insert(["has_role", frank, "member", bigco]);
        tx.delete(["has_role", alice, null, null]);
        tx.insert(["no_such_predicate", frank]);
      });
      await assertOsoError(p, OsoError, 400, /no_such_predicate/);
      assert.deepEqual(await oso.get(["has_role", frank]), [], "the insert before the bad fact was not applied");
      assert.equal((await oso.get(["has_role", alice])).length, 1, "the delete before the bad fact was not applied");
    });
  });

  describe("errors", () => {
    it("an unknown predicate is a 400 OsoError naming it", async () => {
      await assertOsoError(oso.insert(["no_such_predicate", alice, acme]), OsoError, 400, /no_such_predicate/);
    });

    it("a fact with the wrong arity is a 400 OsoError naming it", async () => {
      await assertOsoError(oso.insert(["has_relation", anvil, "parent"]), OsoError, 400, /has_relation/);
    });

    it("a fact with the wrong argument type is a 400 OsoError naming it", async () => {
      const bad = ["has_relation", anvil, "parent", alice]; // the parent of a Repo is an Org
      try {
        await assertOsoError(oso.insert(bad), OsoError, 400, /has_relation/);
      } finally {
        await oso.delete(bad); // keeps later tests meaningful if the server wrongly stored it
      }
    });

    it("a wrong API key is a 401 OsoError", async () => {
      const intruder = new Oso(server.url, "e_not_the_right_key");
      await assertOsoError(intruder.authorize(alice, "read", anvil), OsoError, 401);
      await assertOsoError(intruder.insert(["has_role", erin, "admin", acme]), OsoError, 401);
      assert.deepEqual(await oso.get(["has_role", erin]), []);
    });

    it("the error carries the request id the client sent, echoed by the server", async () => {
      const { requestId } = await assertOsoError(probe.insert(["no_such_predicate", alice]), OsoError, 400);
      const ex = rec.last();
      assert.equal(ex.requestHeaders["X-Request-ID"], requestId);
      assert.equal(ex.headers.get("X-Request-ID"), requestId);
    });

    it("responses echo X-Request-ID and carry Server-Timing: oso;dur=", async () => {
      await probe.authorize(alice, "read", anvil);
      const ex = rec.last();
      assert.equal(ex.headers.get("X-Request-ID"), ex.requestHeaders["X-Request-ID"]);
      assert.match(ex.headers.get("Server-Timing") || "", /(^|,\s*)oso;dur=\d/);
    });

    it("a request without X-Request-ID gets a generated one", async () => {
      const res = await rawRequest(server.url, DEV_KEY, "POST", "/authorize", {
        actor_type: "User",
        actor_id: "alice",
        action: "read",
        resource_type: "Repo",
        resource_id: "anvil",
        context_facts: [],
      });
      assert.equal(res.status, 200);
      assert.ok(res.headers.get("X-Request-ID"), "X-Request-ID header present");
    });
  });

  describe("authorize, list, actions", () => {
    for (const [a, act, r, expected] of AUTH_CASES) {
      it(`authorize(${a.id}, ${act}, ${r.type}:${r.id}) is ${expected}`, async () => {
        assert.equal(await oso.authorize(a, act, r), expected);
      });
    }

    it("list", async () => {
      assert.deepEqual(sorted(await oso.list(alice, "read", "Repo")), ["anvil", "open", "rocket"]);
      assert.deepEqual(sorted(await oso.list(carol, "delete", "Repo")), ["anvil", "rocket"]);
      assert.deepEqual(await oso.list(erin, "read", "Repo"), ["open"]);
      assert.deepEqual(await oso.list(erin, "write", "Repo"), []);
      assert.deepEqual(await oso.list(alice, "read", "Org"), ["acme"]);
      assert.deepEqual(sorted(await oso.list(dave, "read", "Repo")), DAVE_READS);
    });

    it("listPaginated walks several pages of a small page size", async () => {
      const seen = [];
      let token;
      let pages = 0;
      do {
        const page = await oso.listPaginated(dave, "read", "Repo", 10, token);
        pages += 1;
        assert.ok(page.results.length <= 10, `page ${pages} has ${page.results.length} > 10 results`);
        assert.ok(page.nextPageToken === null || typeof page.nextPageToken === "string");
        if (page.nextPageToken) assert.ok(page.results.length > 0, `non-final page ${pages} is empty`);
        seen.push(...page.results);
        token = page.nextPageToken ?? undefined;
        assert.ok(pages <= 10, "pagination does not terminate");
      } while (token);
      assert.ok(pages >= 3, `26 results in pages of 10 took ${pages} page(s)`);
      assert.equal(new Set(seen).size, seen.length, `no id repeats across pages: ${seen}`);
      assert.deepEqual(sorted(seen), DAVE_READS);
    });

    it("listPaginated: one page when everything fits", async () => {
      const page = await oso.listPaginated(alice, "read", "Repo", 10);
      assert.deepEqual(sorted(page.results), ["anvil", "open", "rocket"]);
      assert.equal(page.nextPageToken, null);
    });

    it("actions", async () => {
      assert.deepEqual(await oso.actions(alice, anvil), ["read"]);
      assert.deepEqual(sorted(await oso.actions(bob, anvil)), ["read", "write"]);
      assert.deepEqual(sorted(await oso.actions(carol, anvil)), ["delete", "read", "write"]);
      assert.deepEqual(sorted(await oso.actions(carol, acme)), ["create_repo", "read"]);
      assert.deepEqual(await oso.actions(erin, anvil), []);
      assert.deepEqual(await oso.actions(erin, open), ["read"]);
    });
  });

  describe("context facts", () => {
    it("on authorize (array and options forms)", async () => {
      assert.equal(await oso.authorize(erin, "read", secret), false);
      assert.equal(await oso.authorize(erin, "read", secret, [["is_public", secret, true]]), true);
      assert.equal(await oso.authorize(erin, "read", secret, { contextFacts: [["is_public", secret, true]] }), true);
      assert.equal(await oso.authorize(erin, "delete", rocket, [["has_role", erin, "admin", acme]]), true);
    });

    it("on list and listPaginated", async () => {
      assert.deepEqual(sorted(await oso.list(erin, "read", "Repo", [["has_role", erin, "member", acme]])), [
        "anvil",
        "open",
        "rocket",
      ]);
      const ctx = [["has_role", erin, "member", bigco]];
      const seen = [];
      let token;
      do {
        const page = await oso.listPaginated(erin, "read", "Repo", 10, token, ctx);
        seen.push(...page.results);
        token = page.nextPageToken ?? undefined;
      } while (token && seen.length < 100);
      assert.deepEqual(sorted(seen), DAVE_READS);
    });

    it("on actions", async () => {
      assert.deepEqual(sorted(await oso.actions(erin, anvil, [["has_role", erin, "maintainer", anvil]])), [
        "delete",
        "read",
        "write",
      ]);
    });

    it("are not stored", async () => {
      assert.deepEqual(await oso.get(["has_role", erin]), []);
      assert.deepEqual(await oso.get(["is_public", secret]), []);
      assert.equal(await oso.authorize(erin, "read", secret), false);
    });
  });

  describe("buildQuery (evaluate_query)", () => {
    it("evaluate() gives a boolean", async () => {
      assert.equal(await oso.buildQuery(["allow", alice, "read", anvil]).evaluate(), true);
      assert.equal(await oso.buildQuery(["allow", alice, "write", anvil]).evaluate(), false);
    });

    it("evaluate(var) gives a list", async () => {
      const r = typedVar("Repo");
      assert.deepEqual(sorted(await oso.buildQuery(["allow", alice, "read", r]).evaluate(r)), ["anvil", "open", "rocket"]);
    });

    it(".and narrows with another call", async () => {
      const r = typedVar("Repo");
      const q = oso.buildQuery(["allow", alice, "read", r]).and(["has_relation", r, "parent", acme]);
      assert.deepEqual(sorted(await q.evaluate(r)), ["anvil", "rocket"]);
    });

    it(".in constrains a variable to a set of ids", async () => {
      const r = typedVar("Repo");
      const q = oso.buildQuery(["allow", alice, "read", r]).in(r, ["anvil", "secret", "open"]);
      assert.deepEqual(sorted(await q.evaluate(r)), ["anvil", "open"]);
    });

    it("evaluate([a, b]) gives tuples", async () => {
      const action = typedVar("String");
      const r = typedVar("Repo");
      const q = oso.buildQuery(["allow", carol, action, r]).and(["has_relation", r, "parent", acme]);
      const expected = [];
      for (const id of ["anvil", "rocket"]) for (const a of ["delete", "read", "write"]) expected.push([a, id]);
      assert.deepEqual(sortedJson(await q.evaluate([action, r])), sortedJson(expected));
    });

    it("evaluate(Map) groups values by key", async () => {
      const action = typedVar("String");
      const r = typedVar("Repo");
      const m = await oso.buildQuery(["allow", bob, action, r]).evaluate(new Map([[r, action]]));
      assert.ok(m instanceof Map);
      assert.deepEqual(sorted([...m.keys()]), ["anvil", "open"]);
      assert.deepEqual(sorted(m.get("anvil")), ["read", "write"]);
      assert.deepEqual(m.get("open"), ["read"]);
    });

    it(".withContextFacts adds request-only facts", async () => {
      const r = typedVar("Repo");
      const q = oso.buildQuery(["allow", erin, "read", r]).withContextFacts([["is_public", secret, true]]);
      assert.deepEqual(sorted(await q.evaluate(r)), ["open", "secret"]);
      assert.deepEqual(await oso.buildQuery(["allow", erin, "read", r]).evaluate(r), ["open"]);
    });

    it(".and + .in + .withContextFacts together, over stored facts", async () => {
      const action = typedVar("String");
      const r = typedVar("Repo");
      const q = oso
        .buildQuery(["allow", erin, action, r])
        .and(["has_relation", r, "parent", acme])
        .in(r, ["anvil", "secret"])
        .withContextFacts([["has_role", erin, "writer", anvil]]);
      assert.deepEqual(sortedJson(await q.evaluate([action, r])), [
        ["read", "anvil"],
        ["write", "anvil"],
      ]);
    });

    it("a query on has_role returns stored and derived roles", async () => {
      const u = typedVar("User");
      const role = typedVar("String");
      // carol's "member" role is derived from the shorthand rule "member" if "admin".
      assert.deepEqual(sortedJson(await oso.buildQuery(["has_role", u, role, acme]).evaluate([u, role])), [
        ["alice", "member"],
        ["carol", "admin"],
        ["carol", "member"],
      ]);
    });

    it("an unconstrained result is a wildcard (\"*\")", async () => {
      const u = typedVar("User");
      assert.deepEqual(await oso.buildQuery(["allow", u, "read", open]).evaluate(u), ["*"]);
    });
  });

  describe("restart", () => {
    it("every fact and the policy survive a SIGTERM restart on the same data directory", async () => {
      const factsBefore = await allFacts(oso);
      const decisionsBefore = await decisions(oso);
      assert.deepEqual(
        decisionsBefore,
        AUTH_CASES.map((c) => c[3]),
        "decisions before the restart",
      );
      const offsetBefore = oso.api.lastOffset;
      await server.restart();
      // The same client object (holding a pre-restart OsoOffset) keeps working against the restarted server.
      assert.deepEqual(await allFacts(oso), factsBefore);
      assert.equal((await oso.api.getPolicy()).policy.src, POLICY);
      assert.deepEqual(await decisions(oso), decisionsBefore);
      assert.deepEqual(sorted(await oso.list(dave, "read", "Repo")), DAVE_READS);
      // Writes continue after the restart, with an offset that moved forward.
      await probe.insert(["has_role", erin, "reader", rocket]);
      const offsetAfter = rec.last().headers.get("OsoOffset");
      assert.ok(offsetAfter, "OsoOffset after a write");
      if (/^\d+$/.test(offsetBefore || "") && /^\d+$/.test(offsetAfter)) {
        assert.ok(BigInt(offsetAfter) > BigInt(offsetBefore), `offset ${offsetAfter} after restart > ${offsetBefore}`);
      }
      assert.equal(await oso.authorize(erin, "read", rocket), true);
      await oso.delete(["has_role", erin, "reader", rocket]);
    });
  });

  describe("clear data", () => {
    it("api.clearData removes every fact, durably", async () => {
      const res = await oso.api.clearData();
      assert.equal(typeof res.message, "string");
      for (const p of PREDICATES) assert.deepEqual(await oso.get([p]), [], `${p} facts after clear_data`);
      assert.equal(await oso.authorize(alice, "read", anvil), false);
      await server.restart();
      for (const p of PREDICATES) assert.deepEqual(await oso.get([p]), [], `${p} facts after clear_data + restart`);
    });
  });
});
