// Approvals through elicitation (docs/mcp-gateway.md, "Approvals"): a tools/call (or resources/read,
// prompts/get) that needs a person's approval is put to the person behind the session with
// elicitation/create when the client declared elicitation. Their answer decides the approval as
// that person (can_approve must hold); an approved call reaches the upstream once, a refused
// approver or a declined request never does. Clients without elicitation get the tool error result
// (for a resource read, the JSON-RPC error) with the approval's URL.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

import { connect, freePort, repo, startFixture, startMandate, tempDir, webUpstreamToml, claudeKeysToml } from "./lib.js";

let mandate, base, work, fixture;
const admin = { Authorization: "Bearer admin-key", "Content-Type": "application/json" };

before(async () => {
  work = tempDir("mandate-mcp-approvals-");
  fixture = await startFixture(["gw", "s3cret"]);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = path.join(work, "mandate.toml");
  fs.writeFileSync(
    config,
    `
${webUpstreamToml(fixture)}${claudeKeysToml()}
`,
  );
  // Every slow call an agent makes, its reads of mem://b and its prompt "summary" need the approval
  // of a tool writer; writers may approve what their own agents do (alice is a writer, bob only a
  // tool user).
  const needsWriter = (action, resource) => {
    const type = resource.split("{")[0];
    return `requires_approval(_: Agent, "${action}", ${resource});
can_approve(approver: User, _: Agent, "${action}", _: ${type}) if has_role(approver, "tool_writer");
can_approve_in_chain(approver: User, _: Agent, "${action}", _: ${type}) if has_role(approver, "tool_writer");
`;
  };
  const policy = path.join(work, "policy.polar");
  fs.writeFileSync(
    policy,
    `${fs.readFileSync(path.join(repo, "examples/mcp/policy.polar"), "utf8")}
resource McpResource {
  permissions = ["read"];
}
resource Prompt {
  permissions = ["get"];
}
has_permission(_: Actor, "read", _: McpResource);
has_permission(_: Actor, "get", _: Prompt);
${needsWriter("call", 'Tool{"web/slow"}')}${needsWriter("read", 'McpResource{"web/mem://b"}')}${needsWriter("get", 'Prompt{"web/summary"}')}`,
  );
  mandate = await startMandate({
    config,
    port,
    dataDir: path.join(work, "data"),
    policy,
    facts: [path.join(repo, "examples/mcp/facts.polar")],
  });
});

after(async () => {
  await mandate?.stop();
  fixture?.child.kill("SIGTERM");
  if (!process.env.MANDATE_E2E_KEEP) fs.rmSync(work, { recursive: true, force: true });
});

// A client that declared elicitation and answers every elicitation/create with `answer(request)`.
async function eliciting(key, answer) {
  const c = await connect(`${base}/mcp/web`, key, { name: "e2e", version: "1" }, { elicitation: {} });
  const asked = [];
  c.client.setRequestHandler(ElicitRequestSchema, async (request) => {
    asked.push(request.params);
    return answer(request.params);
  });
  return { ...c, asked };
}

const slowCalls = async (client) =>
  JSON.parse((await client.callTool({ name: "stats", arguments: {} })).content[0].text).slowCalls;
const approval = async (id) => (await fetch(`${base}/v1/approvals/${id}`, { headers: admin })).json();

describe("approvals through elicitation", () => {
  test("an approver's accept lets the call through once; the identical retry needs a new approval", async () => {
    const alice = await eliciting("k-claude-alice", () => ({ action: "accept", content: { decision: "approve", note: "ok" } }));
    const before = await slowCalls(alice.client);
    const result = await alice.client.callTool({ name: "slow", arguments: { ms: 1 } });
    assert.ok(!result.isError, JSON.stringify(result));
    assert.equal(result.content[0].text, "slept");
    assert.equal(await slowCalls(alice.client), before + 1);
    assert.equal(alice.asked.length, 1);
    const asked = alice.asked[0];
    assert.match(asked.message, /Agent:claude.*alice.*"web\/slow".*\{"ms":1\}/s);
    assert.match(asked.message, new RegExp(`${base}/ui/#/approvals/apr_`));
    assert.deepEqual(asked.requestedSchema.properties.decision.enum, ["approve", "deny"]);
    // Single use: the same call asks again, for a new approval.
    alice.asked.length = 0;
    alice.client.setRequestHandler(ElicitRequestSchema, async (request) => {
      alice.asked.push(request.params);
      return { action: "decline" };
    });
    const again = await alice.client.callTool({ name: "slow", arguments: { ms: 1 } });
    assert.equal(again.isError, true);
    assert.equal(alice.asked.length, 1);
    assert.equal(await slowCalls(alice.client), before + 1);
    await alice.client.close();
  });

  test("a person without can_approve is refused; the upstream is not called and the approval stays pending", async () => {
    const bob = await eliciting("k-claude-bob", () => ({ action: "accept", content: { decision: "approve" } }));
    const before = await slowCalls(bob.client);
    const result = await bob.client.callTool({ name: "slow", arguments: { ms: 2 } });
    assert.equal(result.isError, true);
    assert.match(result.content[0].text, /approver was refused/);
    const meta = result._meta["mandate/approval"];
    assert.equal((await approval(meta.id)).status, "pending");
    assert.equal(bob.asked.length, 1);
    assert.equal(await slowCalls(bob.client), before);
    await bob.client.close();
  });

  test("a declined request is a tool error and never reaches the upstream", async () => {
    const alice = await eliciting("k-claude-alice", () => ({ action: "decline" }));
    const before = await slowCalls(alice.client);
    const result = await alice.client.callTool({ name: "slow", arguments: { ms: 3 } });
    assert.equal(result.isError, true);
    assert.match(result.content[0].text, /did not approve/);
    assert.equal((await approval(result._meta["mandate/approval"].id)).status, "pending");
    // Answering "deny" denies the approval: the identical retry is refused without asking.
    const denier = await eliciting("k-claude-alice", () => ({ action: "accept", content: { decision: "deny" } }));
    const denied = await denier.client.callTool({ name: "slow", arguments: { ms: 4 } });
    assert.equal(denied.isError, true);
    assert.match(denied.content[0].text, /User:alice denied the call/);
    assert.equal((await approval(denied._meta["mandate/approval"].id)).status, "denied");
    await assert.rejects(denier.client.callTool({ name: "slow", arguments: { ms: 4 } }), /approval_denied|denied approval/);
    assert.equal(denier.asked.length, 1);
    assert.equal(await slowCalls(alice.client), before);
    await alice.client.close();
    await denier.client.close();
  });

  test("a decision in the console while the person is asked ends the wait", async () => {
    const alice = await eliciting("k-claude-alice", async ({ message }) => {
      const id = message.match(/approvals\/(apr_[0-9a-f]+)/)[1];
      const res = await fetch(`${base}/v1/approvals/${id}/approve`, {
        method: "POST",
        headers: admin,
        body: JSON.stringify({ approver: { type: "User", id: "alice" } }),
      });
      assert.equal(res.status, 200, await res.text());
      return { action: "cancel" };
    });
    const result = await alice.client.callTool({ name: "slow", arguments: { ms: 5 } });
    assert.ok(!result.isError, JSON.stringify(result));
    assert.equal(result.content[0].text, "slept");
    await alice.client.close();
  });

  test("a resource read is asked the same way; a refusal is a JSON-RPC error with the approval", async () => {
    const alice = await eliciting("k-claude-alice", () => ({ action: "accept", content: { decision: "approve" } }));
    const read = await alice.client.readResource({ uri: "mem://b" });
    assert.equal(read.contents[0].text, "resource b");
    assert.equal(alice.asked.length, 1);
    assert.match(alice.asked[0].message, /Agent:claude.*alice.*wants to read the resource "web\/mem:\/\/b"/s);
    // A resource that needs no approval is read without asking.
    assert.equal((await alice.client.readResource({ uri: "mem://a" })).contents[0].text, "resource a");
    assert.equal(alice.asked.length, 1);
    // Without elicitation: the JSON-RPC error names the pending approval (the first one was used).
    const plain = await connect(`${base}/mcp/web`, "k-claude-alice");
    await assert.rejects(plain.client.readResource({ uri: "mem://b" }), (e) => {
      assert.equal(e.code, -32001);
      assert.match(e.message, /needs a person's approval/);
      assert.equal(e.data.decision, "approval_required");
      assert.match(e.data.approval.url, new RegExp(`${base}/ui/#/approvals/apr_`));
      return true;
    });
    await plain.client.close();
    // Her next read is put to her again, and she denies it: refused, with her note.
    alice.client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { decision: "deny", note: "not now" } }));
    await assert.rejects(alice.client.readResource({ uri: "mem://b" }), (e) => {
      assert.equal(e.code, -32001);
      assert.match(e.message, /User:alice denied the read of "web\/mem:\/\/b" \(not now\)/);
      assert.equal(e.data.decision, "deny");
      assert.match(e.data.approval.id, /^apr_/);
      return true;
    });
    await alice.client.close();
  });

  test("a prompt is asked the same way, with its arguments", async () => {
    const alice = await eliciting("k-claude-alice", () => ({ action: "accept", content: { decision: "approve" } }));
    const got = await alice.client.getPrompt({ name: "summary", arguments: { topic: "audits" } });
    assert.equal(got.messages[0].content.text, "Summarize audits.");
    assert.equal(alice.asked.length, 1);
    assert.match(alice.asked[0].message, /wants to get the prompt "web\/summary" with the arguments \{"topic":"audits"\}/);
    alice.client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "decline" }));
    await assert.rejects(alice.client.getPrompt({ name: "summary", arguments: { topic: "audits" } }), (e) => {
      assert.equal(e.code, -32001);
      assert.match(e.message, /did not approve the prompts\/get of "web\/summary" \(decline\)/);
      assert.equal(e.data.decision, "approval_required");
      return true;
    });
    await alice.client.close();
  });

  test("a client without elicitation gets the tool error with the approval's URL", async () => {
    const plain = await connect(`${base}/mcp/web`, "k-claude-alice");
    const before = await slowCalls(plain.client);
    const result = await plain.client.callTool({ name: "slow", arguments: { ms: 6 } });
    assert.equal(result.isError, true);
    assert.match(result.content[0].text, /needs a person's approval/);
    assert.equal(result._meta["mandate/approval"].url, `${base}/ui/#/approvals/${result._meta["mandate/approval"].id}`);
    assert.equal(await slowCalls(plain.client), before);
    await plain.client.close();
  });
});
