// Resource subscriptions through the MCP gateway to a Streamable HTTP upstream
// (fixtures/http-server.mjs): resources/subscribe is checked like resources/read, the upstream is
// subscribed once per URI however many sessions hold it and unsubscribed when the last one lets
// go (unsubscribe or session end), and notifications/resources/updated, which the upstream sends on
// its standalone GET stream, reaches only the sessions subscribed to the URI that may still read it.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

import { claudeKeysToml, connect, freePort, startFixture, startMandate, tempDir, webUpstreamToml } from "./lib.js";

const POLICY = `
actor User {}
actor Agent {}
resource Tool {
  permissions = ["call"];
}
resource McpResource {
  permissions = ["read"];
  roles = ["reader"];
  "read" if "reader";
}
has_permission(_actor: Actor, "call", _tool: Tool);
has_permission(_agent: Agent, "read", _resource: McpResource);
`;
const reader = (user, uri) => ({
  predicate: "has_role",
  args: [
    { type: "User", id: user },
    { type: "String", id: "reader" },
    { type: "McpResource", id: `web/${uri}` },
  ],
});

let mandate, work, fixture, url;

before(async () => {
  work = tempDir("mandate-mcp-subscriptions-");
  fixture = await startFixture(["gw", "s3cret"]);
  const port = await freePort();
  const config = path.join(work, "mandate.toml");
  fs.writeFileSync(config, `${webUpstreamToml(fixture)}${claudeKeysToml()}`);
  const policy = path.join(work, "policy.polar");
  fs.writeFileSync(policy, POLICY);
  mandate = await startMandate({ config, port, dataDir: path.join(work, "data"), policy });
  for (const fact of [reader("alice", "mem://a"), reader("alice", "mem://b"), reader("bob", "mem://a")]) {
    await facts("POST", fact);
  }
  url = `${mandate.url}/mcp/web`;
});

after(async () => {
  await mandate?.stop();
  fixture?.child.kill("SIGTERM");
  if (!process.env.MANDATE_E2E_KEEP) fs.rmSync(work, { recursive: true, force: true });
});

async function facts(method, fact) {
  const r = await fetch(`${mandate.url}/api/facts`, {
    method,
    headers: { Authorization: "Bearer admin-key", "Content-Type": "application/json" },
    body: JSON.stringify(fact),
  });
  assert.equal(r.status, 200, await r.text());
}

// A client of `user` that records the URIs it is told changed.
async function subscriber(user) {
  const c = await connect(url, `k-claude-${user}`);
  c.updated = [];
  c.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => c.updated.push(n.params.uri));
  return c;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(check, what) {
  for (let i = 0; i < 100 && !check(); ++i) await sleep(50);
  assert.ok(check(), what);
}
const upstreamLog = async ({ client }) =>
  JSON.parse((await client.callTool({ name: "stats", arguments: {} })).content[0].text).subscriptions;
// The gateway unsubscribes upstream without waiting for the answer: the log catches up shortly.
async function logBecomes(client, want) {
  let log;
  for (let i = 0; i < 50; ++i) {
    log = await upstreamLog(client);
    if (log.length >= want.length) break;
    await sleep(50);
  }
  assert.deepEqual(log, want);
}
const touch = async ({ client }, uri) => (await client.callTool({ name: "touch", arguments: { uri } })).content[0].text;

test("subscriptions are checked, shared upstream, relayed only to subscribed and permitted sessions", async () => {
  const alice = await subscriber("alice");
  const bob = await subscriber("bob");
  await sleep(300); // the SDK opens its standalone GET stream after initialize

  // Both hold mem://a; the upstream is asked once.
  await alice.client.subscribeResource({ uri: "mem://a" });
  await bob.client.subscribeResource({ uri: "mem://a" });
  await alice.client.subscribeResource({ uri: "mem://a" }); // again: nothing new
  assert.deepEqual(await upstreamLog(alice), ["subscribe mem://a"]);

  // bob may not read mem://b: refused before the upstream sees it.
  await assert.rejects(bob.client.subscribeResource({ uri: "mem://b" }), /Mandate denied resources\/subscribe of "web\/mem:\/\/b"/);
  await alice.client.subscribeResource({ uri: "mem://b" });
  assert.deepEqual(await upstreamLog(alice), ["subscribe mem://a", "subscribe mem://b"]);

  assert.equal(await touch(alice, "mem://a"), "told 1"); // one upstream session: the gateway's
  await until(() => alice.updated.length === 1 && bob.updated.length === 1, "both subscribers of mem://a are told");
  assert.equal(await touch(alice, "mem://b"), "told 1");
  await until(() => alice.updated.length === 2, "alice is told about mem://b");
  await sleep(300);
  assert.deepEqual(alice.updated, ["mem://a", "mem://b"]);
  assert.deepEqual(bob.updated, ["mem://a"], "bob is not subscribed to mem://b");

  // alice lets go of mem://a; bob still holds it, so the upstream keeps it.
  await alice.client.unsubscribeResource({ uri: "mem://a" });
  assert.deepEqual(await upstreamLog(alice), ["subscribe mem://a", "subscribe mem://b"]);
  await touch(alice, "mem://a");
  await until(() => bob.updated.length === 2, "bob is still told about mem://a");
  await sleep(300);
  assert.deepEqual(alice.updated, ["mem://a", "mem://b"], "alice unsubscribed from mem://a");

  // alice loses the right to read mem://b: its updates no longer reach her.
  await facts("DELETE", reader("alice", "mem://b"));
  assert.equal(await touch(alice, "mem://b"), "told 1");
  await sleep(500);
  assert.deepEqual(alice.updated, ["mem://a", "mem://b"], "a subscriber who may no longer read it is not told");

  // The last holder of mem://a ends its session: the upstream is unsubscribed.
  await bob.transport.terminateSession();
  await bob.client.close();
  await logBecomes(alice, ["subscribe mem://a", "subscribe mem://b", "unsubscribe mem://a"]);
  await alice.client.unsubscribeResource({ uri: "mem://b" });
  await logBecomes(alice, ["subscribe mem://a", "subscribe mem://b", "unsubscribe mem://a", "unsubscribe mem://b"]);
  await alice.client.close();
});
