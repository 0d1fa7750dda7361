// The gateway's OAuth sides and its HTTP upstream limits: JWT keys fetched from an issuer's
// jwks_url (and rotated), 403 insufficient_scope for step-up, the client_credentials grant towards a
// Streamable HTTP upstream (token cached, the caller's token never forwarded), max_concurrency
// honored, and a tool call that needs a person's approval (docs/approvals.md).
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import * as jose from "jose";

import { connect, freePort, initialize, post, repo, startFixture, startMandate, tempDir, webUpstreamToml, claudeKeysToml } from "./lib.js";

const ISSUER = "https://issuer.test";
let mandate, base, work, fixture, jwksServer, jwks, keyA, keyB;

async function mint({ key = keyA, kid = "a", scope } = {}) {
  const claims = { client_id: "claude" };
  if (scope) claims.scope = scope;
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: "RS256", kid })
    .setIssuer(ISSUER)
    .setAudience(`${base}/mcp/web`)
    .setSubject("alice")
    .setExpirationTime("5m")
    .sign(key.privateKey);
}

before(async () => {
  work = tempDir("mandate-mcp-oauth-");
  keyA = await jose.generateKeyPair("RS256", { extractable: true });
  keyB = await jose.generateKeyPair("RS256", { extractable: true });
  jwks = { keys: [{ ...(await jose.exportJWK(keyA.publicKey)), kid: "a", alg: "RS256", use: "sig" }] };
  jwksServer = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(jwks));
  });
  await new Promise((r) => jwksServer.listen(0, "127.0.0.1", r));
  fixture = await startFixture(["gw", "s3cret"]);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = path.join(work, "mandate.toml");
  fs.writeFileSync(
    config,
    `
${webUpstreamToml(fixture, 'max_concurrency = 2\nrequired_scopes = ["mcp:tools"]\n')}
${claudeKeysToml(["alice"])}
[[auth.jwt_issuers]]
issuer = "${ISSUER}"
jwks_url = "http://127.0.0.1:${jwksServer.address().port}/jwks.json"
jwks_refresh_seconds = 1
audience = "${base}/mcp/web"
`,
  );
  // The example policy, plus: slow calls of 7 ms need the approval of a tool writer.
  const policy = path.join(work, "policy.polar");
  fs.writeFileSync(
    policy,
    `${fs.readFileSync(path.join(repo, "examples/mcp/policy.polar"), "utf8")}
requires_approval(_: Agent, "call", Tool{"web/slow"}) if context("ms", 7);
can_approve(approver: User, _: Agent, "call", _: Tool) if has_role(approver, "tool_writer");
`,
  );
  const facts = path.join(work, "facts.polar");
  fs.writeFileSync(facts, `${fs.readFileSync(path.join(repo, "examples/mcp/facts.polar"), "utf8")}\nhas_role(User{"carol"}, "tool_writer");\n`);
  mandate = await startMandate({ config, port, dataDir: path.join(work, "data"), policy, facts: [facts] });
});

after(async () => {
  await mandate?.stop();
  fixture?.child.kill("SIGTERM");
  jwksServer?.close();
  if (!process.env.MANDATE_E2E_KEEP) fs.rmSync(work, { recursive: true, force: true });
});

const stats = async (client) => JSON.parse((await client.callTool({ name: "stats", arguments: {} })).content[0].text);

describe("resource server", () => {
  test("keys come from the issuer's jwks_url, and rotate", async () => {
    const ok = await connect(`${base}/mcp/web`, await mint({ scope: "mcp:tools" }));
    assert.ok((await ok.client.listTools()).tools.some((t) => t.name === "slow"));
    await ok.client.close();
    // A token signed with a key the issuer has not published yet is refused...
    const rotated = await mint({ key: keyB, kid: "b", scope: "mcp:tools" });
    assert.equal((await post(`${base}/mcp/web`, initialize(), { Authorization: `Bearer ${rotated}` })).status, 401);
    // ...and accepted once the JWKS publishes it (refetched every jwks_refresh_seconds).
    jwks.keys.push({ ...(await jose.exportJWK(keyB.publicKey)), kid: "b", alg: "RS256", use: "sig" });
    let status;
    for (let i = 0; i < 40 && status !== 200; ++i) {
      await new Promise((r) => setTimeout(r, 250));
      status = (await post(`${base}/mcp/web`, initialize(), { Authorization: `Bearer ${rotated}` })).status;
    }
    assert.equal(status, 200);
  });

  test("a valid token without the required scope gets 403 insufficient_scope", async () => {
    const r = await post(`${base}/mcp/web`, initialize(), { Authorization: `Bearer ${await mint({ scope: "other" })}` });
    assert.equal(r.status, 403);
    const challenge = r.headers.get("www-authenticate");
    assert.match(challenge, /^Bearer resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp\/web"/);
    assert.match(challenge, /error="insufficient_scope"/);
    assert.match(challenge, /scope="mcp:tools"/);
    assert.equal(r.json.error, "insufficient_scope");
    // No token at all: 401 naming the scope to ask for; the metadata lists it.
    const none = await post(`${base}/mcp/web`, initialize());
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate"), /scope="mcp:tools"/);
    const prm = await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp/web`)).json();
    assert.deepEqual(prm.scopes_supported, ["mcp:tools"]);
    // API keys are not OAuth tokens and carry no scopes.
    assert.equal((await post(`${base}/mcp/web`, initialize(), { Authorization: "Bearer k-claude-alice" })).status, 200);
  });
});

describe("HTTP upstream", () => {
  test("client_credentials: one token request, reused; the caller's token never reaches the upstream", async () => {
    const token = await mint({ scope: "mcp:tools" });
    const a = await connect(`${base}/mcp/web`, token);
    const b = await connect(`${base}/mcp/web`, "k-claude-alice");
    await a.client.callTool({ name: "slow", arguments: { ms: 1 } });
    await b.client.callTool({ name: "slow", arguments: { ms: 1 } });
    const s = await stats(b.client);
    assert.equal(s.tokenRequests, 1);
    assert.ok(s.authorizations.every((h) => /^Bearer [0-9a-f-]{36}$/.test(h)), JSON.stringify(s.authorizations));
    assert.ok(!s.authorizations.some((h) => h.includes(token) || h.includes("k-claude-alice")));
    await a.client.close();
    await b.client.close();
  });

  test("max_concurrency bounds the calls in flight to the upstream", async () => {
    const alice = await connect(`${base}/mcp/web`, "k-claude-alice");
    const results = await Promise.all(
      Array.from({ length: 6 }, () => alice.client.callTool({ name: "slow", arguments: { ms: 300 } })),
    );
    assert.ok(results.every((r) => !r.isError));
    assert.equal((await stats(alice.client)).maxConcurrent, 2);
    await alice.client.close();
  });
});

describe("approvals", () => {
  test("a call that needs approval tells the agent where to ask; once approved, the same call goes through", async () => {
    const alice = await connect(`${base}/mcp/web`, "k-claude-alice");
    const call = () => alice.client.callTool({ name: "slow", arguments: { ms: 7 } });
    const first = await call();
    assert.equal(first.isError, true);
    assert.match(first.content[0].text, /needs a person's approval/);
    const approval = first._meta["mandate/approval"];
    assert.equal(approval.status, "pending");
    assert.equal(approval.url, `${base}/ui/#/approvals/${approval.id}`);
    assert.match(first.content[0].text, new RegExp(approval.id));
    assert.equal((await stats(alice.client)).maxConcurrent <= 2, true);
    const res = await fetch(`${base}/v1/approvals/${approval.id}/approve`, {
      method: "POST",
      headers: { Authorization: "Bearer admin-key", "Content-Type": "application/json" },
      body: JSON.stringify({ approver: { type: "User", id: "carol" } }),
    });
    assert.equal(res.status, 200, await res.text());
    const second = await call();
    assert.ok(!second.isError, JSON.stringify(second));
    assert.equal(second.content[0].text, "slept");
    // The approval was for one use: the next identical call needs a new one.
    const third = await call();
    assert.equal(third.isError, true);
    assert.notEqual(third._meta["mandate/approval"].id, approval.id);
    await alice.client.close();
  });
});
