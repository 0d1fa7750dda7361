// The gateway and the audit log's durability (docs/mcp-gateway.md, "Audit"): an allowed tools/call
// reaches the upstream only once the log keeps its record, so when the log cannot keep records (here:
// the disk refuses to grow the segment file) the call is refused and the upstream never sees it: the
// gateway fails closed, like the HTTP API's 503. Both durability modes; before the log fills, the
// record of an allowed call is checked too (in async mode it is written after the call went out).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";

import { claudeKeysToml, connect, freePort, fsUpstreamToml, repo, startMandate, tempDir } from "./lib.js";

// The segment file is zero-filled 1 MiB ahead of its records and refilled once they pass 512 KiB:
// with files limited to 1.1 MB that refill fails, after about 512 KiB of records. SIGXFSZ is
// ignored (an ignored signal stays ignored across exec), so the write fails with EFBIG instead of
// killing the process.
const FILE_LIMIT = 1_100_000;
const wrap = ["bash", "-c", `trap '' XFSZ; exec prlimit --fsize=${FILE_LIMIT} -- "$@"`, "mandate-under-a-file-size-limit"];

const cleanups = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function start(durability) {
  const work = tempDir(`mandate-mcp-audit-${durability}-`);
  const files = path.join(work, "files");
  fs.mkdirSync(files);
  const port = await freePort();
  const config = path.join(work, "mandate.toml");
  fs.writeFileSync(config, `${fsUpstreamToml(files)}${claudeKeysToml(["alice"])}\n[audit]\ndurability = "${durability}"\n`);
  const mandate = await startMandate({
    config,
    port,
    dataDir: path.join(work, "data"),
    policy: path.join(repo, "examples/mcp/policy.polar"),
    facts: [path.join(repo, "examples/mcp/facts.polar")],
    wrap,
  });
  cleanups.push(async () => {
    await mandate.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });
  return { mandate, files, base: mandate.url, dataDir: path.join(work, "data") };
}

// The MCP decision records in the log, waiting (bounded) until `want` finds one.
async function mcpRecords(dataDir, want) {
  let records = [];
  for (let i = 0; i < 50; ++i) {
    const out = execFileSync(process.env.MANDATE_BIN, ["audit", "query", "--data-dir", dataDir, "--kind", "decision"], { encoding: "utf8" });
    records = out.split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((r) => String(r.api).startsWith("MCP "));
    if (records.some(want)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return records;
}

// Sends decisions until the log refuses one (503); returns how many were answered before.
async function fillTheLog(base) {
  const check = () =>
    fetch(`${base}/api/authorize`, {
      method: "POST",
      headers: { Authorization: "Bearer admin-key", "Content-Type": "application/json" },
      body: JSON.stringify({ actor_type: "User", actor_id: "alice", action: "call", resource_type: "Tool", resource_id: "fs/x" }),
    });
  for (let answered = 0; answered < 20_000; answered += 32) {
    const statuses = await Promise.all(Array.from({ length: 32 }, async () => (await check()).status));
    if (statuses.includes(503)) {
      assert.ok(statuses.every((s) => s === 200 || s === 503), statuses.join(","));
      return answered;
    }
    assert.deepEqual([...new Set(statuses)], [200]);
  }
  assert.fail("the audit log never refused a record");
}

for (const durability of ["sync", "async"]) {
  describe(`audit ${durability}`, () => {
    test("a tools/call whose record the log cannot keep is refused and never reaches the upstream", async () => {
      const { mandate, files, base, dataDir } = await start(durability);
      const alice = await connect(`${base}/mcp/fs`, "k-claude-alice");
      const before = path.join(files, "before.txt");
      await alice.client.callTool({ name: "write_file", arguments: { path: before, content: "kept" } });
      assert.equal(fs.readFileSync(before, "utf8"), "kept");
      const isAllowedWrite = (r) => r.api === "MCP tools/call" && r.resource === "Tool:fs/write_file" && r.decision === "allow";
      const allowed = (await mcpRecords(dataDir, isAllowedWrite)).filter(isAllowedWrite);
      assert.equal(allowed.length, 1, JSON.stringify(allowed));
      assert.equal(allowed[0].actor, "Agent:claude");
      assert.deepEqual(allowed[0].chain, ["User:alice"]);
      assert.equal(allowed[0].action, "call");
      assert.equal(allowed[0].detail.upstream, "fs");
      assert.match(allowed[0].detail.args_sha256, /^[0-9a-f]{64}$/);
      assert.ok(Number.isInteger(allowed[0].latency_us) && allowed[0].latency_us >= 0, String(allowed[0].latency_us));

      assert.ok((await fillTheLog(base)) > 0);
      const target = path.join(files, "after.txt");
      await assert.rejects(alice.client.callTool({ name: "write_file", arguments: { path: target, content: "lost" } }), (e) => {
        assert.match(e.message, /the audit log cannot record this tools\/call, so it was not sent/);
        return true;
      });
      assert.ok(!fs.existsSync(target), "the refused call must not reach the upstream");
      // The server's log line reaches this process through a pipe, maybe after the answer: wait for it (bounded).
      const logged = () => mandate.lines.some((l) => /tools\/call of session \w+ not sent upstream: audit log: .*File too large/.test(l));
      for (let i = 0; i < 50 && !logged(); ++i) await new Promise((r) => setTimeout(r, 100));
      assert.ok(logged(), mandate.lines.join("\n"));
      await alice.client.close();
    });
  });
}
