// Server-sent events through the MCP gateway: what an upstream sends while a request runs
// (progress, log messages, elicitation requests) reaches the client that made the request, over
// stdio (server-everything) and Streamable HTTP (fixtures/http-server.mjs) upstreams; the
// standalone GET stream carries tools/list_changed, re-filtered per caller; a broken stream is
// resumed with Last-Event-ID, towards the client and towards an HTTP upstream.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import {
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

import { connect, freePort, here, initialize, modules, post, repo, startFixture, startMandate, tempDir, webUpstreamToml, claudeKeysToml } from "./lib.js";

const EVERYTHING = path.join(modules, "@modelcontextprotocol/server-everything/dist/index.js");
let mandate, base, work, fixture;

before(async () => {
  work = tempDir("mandate-mcp-sse-");
  fixture = await startFixture(["gw", "s3cret"]);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = path.join(work, "mandate.toml");
  fs.writeFileSync(
    config,
    `
[[mcp.upstreams]]
name = "everything"
command = ["${process.execPath}", "${EVERYTHING}", "stdio"]

[[mcp.upstreams]]
name = "flaky"
command = ["${process.execPath}", "${path.join(here, "fixtures/flaky-server.mjs")}"]

${webUpstreamToml(fixture)}${claudeKeysToml()}
`,
  );
  mandate = await startMandate({
    config,
    port,
    dataDir: path.join(work, "data"),
    policy: path.join(repo, "examples/mcp/policy.polar"),
    facts: [path.join(repo, "examples/mcp/facts.polar")],
  });
});

after(async () => {
  await mandate?.stop();
  fixture?.child.kill("SIGTERM");
  if (!process.env.MANDATE_E2E_KEEP) fs.rmSync(work, { recursive: true, force: true });
});

async function connectWith(url, token, capabilities) {
  const c = await connect(url, token, { name: "e2e", version: "1" }, capabilities);
  return c;
}

describe("request streams", () => {
  for (const [upstream, tool, args] of [
    ["everything", "trigger-long-running-operation", { duration: 0.2, steps: 4 }],
    ["web", "progress", { steps: 4 }],
  ]) {
    test(`progress of ${upstream} (${upstream === "web" ? "HTTP" : "stdio"}) reaches the caller with its own token`, async () => {
      const alice = await connectWith(`${base}/mcp/${upstream}`, "k-claude-alice");
      const seen = [];
      const r = await alice.client.callTool({ name: tool, arguments: args }, undefined, {
        onprogress: (p) => seen.push(p.progress),
      });
      assert.ok(!r.isError, JSON.stringify(r));
      assert.deepEqual(seen, [1, 2, 3, 4]);
      await alice.client.close();
    });
  }

  test("an HTTP upstream that closes a call's stream mid-call is resumed with Last-Event-ID", async () => {
    const alice = await connectWith(`${base}/mcp/web`, "k-claude-alice");
    const seen = [];
    const r = await alice.client.callTool({ name: "drop", arguments: {} }, undefined, {
      onprogress: (p) => seen.push(p.progress),
    });
    assert.deepEqual(r.content, [{ type: "text", text: "survived the drop" }]);
    assert.deepEqual(seen, [1, 2], "progress from before and after the drop");
    await alice.client.close();
  });

  test("log messages tied to a request reach its caller, filtered by the session's level", async () => {
    const alice = await connectWith(`${base}/mcp/web`, "k-claude-alice");
    const logs = [];
    alice.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n.params.data));
    await alice.client.callTool({ name: "progress", arguments: { steps: 1 } });
    assert.deepEqual(logs, ["starting", "details"]);
    await alice.client.setLoggingLevel("info");
    logs.length = 0;
    await alice.client.callTool({ name: "progress", arguments: { steps: 1 } });
    assert.deepEqual(logs, ["starting"]);
    await alice.client.close();
  });

  for (const [upstream, tool] of [
    ["web", "ask"],
    ["everything", "trigger-elicitation-request"],
  ]) {
    test(`an elicitation request of ${upstream} goes to the client that declared elicitation`, async () => {
      const alice = await connectWith(`${base}/mcp/${upstream}`, "k-claude-alice", { elicitation: {} });
      let asked;
      alice.client.setRequestHandler(ElicitRequestSchema, async (req) => {
        asked = req.params.message;
        return { action: "accept", content: { name: "Ada Lovelace", check: true } };
      });
      const r = await alice.client.callTool({ name: tool, arguments: {} });
      assert.ok(asked, "the client was asked");
      assert.match(JSON.stringify(r.content), /Ada Lovelace/);
      await alice.client.close();
    });
  }

  test("a client without elicitation gets the upstream's failure, not a question", async () => {
    const bob = await connectWith(`${base}/mcp/web`, "k-claude-alice");
    const r = await bob.client.callTool({ name: "ask", arguments: {} }).catch((e) => ({ error: e.message }));
    assert.match(JSON.stringify(r), /did not declare the capability for elicitation\/create/);
    await bob.client.close();
  });

  test("a client that accepts only JSON gets JSON (notifications are dropped)", async () => {
    const auth = { Authorization: "Bearer k-claude-alice" };
    const init = await post(`${base}/mcp/web`, initialize(1, "2025-11-25"), auth);
    const sid = init.headers.get("mcp-session-id");
    const r = await post(
      `${base}/mcp/web`,
      { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "progress", arguments: { steps: 2 }, _meta: { progressToken: 7 } } },
      { ...auth, "Mcp-Session-Id": sid, Accept: "application/json" },
    );
    assert.equal(r.headers.get("content-type"), "application/json");
    assert.match(r.json.result.content[0].text, /done in 2 steps/);
  });
});

// Reads SSE events from a fetch response until `stop(event)` is true or the stream ends.
async function readEvents(res, stop) {
  const events = [];
  const decoder = new TextDecoder();
  let buf = "";
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const raw = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const e = {};
      for (const line of raw.split("\n")) {
        const i = line.indexOf(":");
        if (i <= 0) continue;
        e[line.slice(0, i)] = line.slice(i + 1).trimStart();
      }
      if (e.data) e.message = JSON.parse(e.data);
      if (e.id !== undefined || e.data !== undefined) events.push(e);
      if (stop(e)) {
        await reader.cancel();
        return events;
      }
    }
  }
  return events;
}

describe("standalone stream and resumption", () => {
  test("tools/list_changed is re-filtered: only callers whose view changed are told", async () => {
    const alice = await connectWith(`${base}/mcp/flaky`, "k-claude-alice");
    const bob = await connectWith(`${base}/mcp/flaky`, "k-claude-bob");
    const told = { alice: 0, bob: 0 };
    alice.client.setNotificationHandler(ToolListChangedNotificationSchema, () => told.alice++);
    bob.client.setNotificationHandler(ToolListChangedNotificationSchema, () => told.bob++);
    const before = (await bob.client.listTools()).tools.map((t) => t.name);
    await alice.client.listTools();
    await new Promise((r) => setTimeout(r, 300));  // the SDK opens its GET stream after initialize
    await alice.client.callTool({ name: "add-tool", arguments: {} });
    for (let i = 0; i < 50 && told.alice === 0; ++i) await new Promise((r) => setTimeout(r, 100));
    assert.equal(told.alice, 1, "alice (a writer) now sees the destructive tool 'extra'");
    assert.ok((await alice.client.listTools()).tools.some((t) => t.name === "extra"));
    assert.equal(told.bob, 0, "bob's filtered list did not change");
    assert.deepEqual((await bob.client.listTools()).tools.map((t) => t.name), before);
    await alice.client.close();
    await bob.client.close();
  });

  test("a request stream whose connection broke is resumed with Last-Event-ID", async () => {
    const auth = { Authorization: "Bearer k-claude-alice" };
    const init = await post(`${base}/mcp/everything`, initialize(1, "2025-11-25"), auth);
    const sid = init.headers.get("mcp-session-id");
    const headers = {
      ...auth,
      "Mcp-Session-Id": sid,
      "MCP-Protocol-Version": "2025-11-25",
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
    };
    const ctl = new AbortController();
    const res = await fetch(`${base}/mcp/everything`, {
      method: "POST",
      headers,
      signal: ctl.signal,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 9,
        method: "tools/call",
        params: { name: "trigger-long-running-operation", arguments: { duration: 1.2, steps: 6 }, _meta: { progressToken: "p" } },
      }),
    });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const first = await readEvents(res, (e) => e.message?.params?.progress === 2);
    ctl.abort();
    assert.equal(first[0].data, "", "a priming event (2025-11-25) comes first");
    const last = first.at(-1).id;
    const again = await fetch(`${base}/mcp/everything`, { headers: { ...headers, "Last-Event-ID": last } });
    assert.equal(again.status, 200);
    const rest = await readEvents(again, (e) => e.message?.id === 9);
    const progress = rest.filter((e) => e.message?.method === "notifications/progress").map((e) => e.message.params.progress);
    assert.deepEqual(progress, [3, 4, 5, 6]);
    assert.match(rest.at(-1).message.result.content[0].text, /Long running operation completed/);
    const bad = await fetch(`${base}/mcp/everything`, { headers: { ...headers, "Last-Event-ID": "999-1" } });
    assert.equal(bad.status, 400);
  });

  test("GET needs a session of the caller", async () => {
    const r = await fetch(`${base}/mcp/everything`, { headers: { Authorization: "Bearer k-claude-alice", Accept: "text/event-stream" } });
    assert.equal(r.status, 400);
    const anon = await fetch(`${base}/mcp/everything`, { headers: { Accept: "text/event-stream" } });
    assert.equal(anon.status, 401);
  });
});
