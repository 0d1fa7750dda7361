#!/usr/bin/env node
// Latency the MCP gateway adds to a tools/call round trip (issue 9's target: p50 <= 0.3 ms,
// p99 <= 2 ms, audit log on). One Streamable HTTP upstream (the MCP SDK's example server, from
// tests/e2e/mcp/node_modules) is called three ways, alternating in blocks so that all see the same
// machine load: directly; through `mandate serve` (/mcp/web, API key, the example policy, audit log
// in sync mode unless MCP_BENCH_AUDIT says otherwise); and through bench/tcp_relay, a bare TCP relay
// that parses nothing (the hop that any proxy adds on this machine, against which the gateway's own
// part is read). Each call is one keep-alive POST of tools/call "greet", timed until the whole
// answer is read.
//   [MCP_BENCH_AUDIT=sync|async|off] [MCP_BENCH_THREADS=N] [MCP_BENCH_RELAY=path/to/tcp_relay]
//   node bench/mcp_gateway.mjs [MANDATE_BIN] [CALLS=2000]
// Prints p50/p90/p99 of each path and what the gateway and the relay add to the direct path, and
// the CPU time per call of the gateway's and the relay's processes (from /proc/<pid>/task/*/schedstat),
// and the gateway's own time per call as its /metrics reports it (mandate_mcp_gateway_seconds).
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const modules = path.join(repo, "tests/e2e/mcp/node_modules");
const bin = process.argv[2] || process.env.MANDATE_BIN || path.join(repo, "build/release/src/cli/mandate");
// bench/tcp_relay of the same build tree as the binary, else of build/release.
const relayBin = process.env.MCP_BENCH_RELAY ||
  [path.join(path.dirname(bin), "../../bench/tcp_relay"), path.join(repo, "build/release/bench/tcp_relay")].find((f) => fs.existsSync(f));
if (!relayBin || !fs.existsSync(relayBin)) throw new Error("bench/tcp_relay is missing: build the bench target tcp_relay, or set MCP_BENCH_RELAY");
const calls = Number(process.argv[3] || 2000);
const example = path.join(modules, "@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js");
if (!fs.existsSync(example)) throw new Error("run tests/e2e/mcp/run.sh --install-only first");

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function request(url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", agent, headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream", ...headers } }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}
async function waitFor(child, text) {
  let out = "";
  await new Promise((resolve, reject) => {
    const on = (d) => ((out += d), d.toString().includes(text) && resolve());
    child.stdout.on("data", on);
    child.stderr.on("data", on);
    child.on("exit", (c) => reject(new Error(`exited with ${c}:\n${out}`)));
  });
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), "mandate-mcp-bench-"));
const upPort = await freePort();
const up = spawn(process.execPath, [example], { env: { ...process.env, MCP_PORT: String(upPort) }, stdio: ["ignore", "pipe", "pipe"] });
await waitFor(up, "listening");
const gwPort = await freePort();
// MCP_BENCH_AUDIT=sync (default, the server's default) | async | off: the gateway's [audit] setting.
const auditMode = process.env.MCP_BENCH_AUDIT || "sync";
const auditToml = auditMode === "off" ? "[audit]\nenabled = false\n" : `[audit]\ndurability = "${auditMode}"\n`;
fs.writeFileSync(path.join(work, "mandate.toml"), `[[mcp.upstreams]]\nname = "web"\nurl = "http://127.0.0.1:${upPort}/mcp"\n\n[[mcp.api_keys]]\nkey = "k"\nagent = "claude"\nuser = "alice"\n\n${auditToml}`);
const gw = spawn(bin, ["serve", "--config", path.join(work, "mandate.toml"), "--data-dir", path.join(work, "data"), "--listen", `127.0.0.1:${gwPort}`,
  "--policy", path.join(repo, "examples/mcp/policy.polar"), "--facts", path.join(repo, "examples/mcp/facts.polar"),
  ...(process.env.MCP_BENCH_THREADS ? ["--threads", process.env.MCP_BENCH_THREADS] : [])],
  { env: { ...process.env, MANDATE_API_KEY: "bench-admin" }, stdio: ["ignore", "pipe", "pipe"] });
await waitFor(gw, "Mandate listening on");

async function session(url, headers) {
  const init = await request(url, headers, { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "bench", version: "1" } } });
  const h = { ...headers, "Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25" };
  await request(url, h, { jsonrpc: "2.0", method: "notifications/initialized" });
  let id = 1;
  return async () => {
    const t = process.hrtime.bigint();
    const r = await request(url, h, { jsonrpc: "2.0", id: id++, method: "tools/call", params: { name: "greet", arguments: { name: "bench" } } });
    const us = Number(process.hrtime.bigint() - t) / 1000;
    if (r.status !== 200 || !r.text.includes("Hello, bench")) throw new Error(`bad answer ${r.status}: ${r.text}`);
    return us;
  };
}
const relayPort = await freePort();
const relay = spawn(relayBin, [String(relayPort), String(upPort)], { stdio: ["ignore", "pipe", "pipe"] });
await waitFor(relay, "listening");

const direct = await session(`http://127.0.0.1:${upPort}/mcp`, {});
const relayed = await session(`http://127.0.0.1:${relayPort}/mcp`, {});
let gateway;
for (let i = 0; i < 50 && !gateway; ++i) {  // the gateway connects to the upstream in the background
  gateway = await session(`http://127.0.0.1:${gwPort}/mcp/web`, { Authorization: "Bearer k" }).then(async (f) => (await f(), f)).catch(() => undefined);
  if (!gateway) await new Promise((r) => setTimeout(r, 100));
}
// CPU time of a process (all its threads) in ns, from the scheduler's own accounting.
const cpuNs = (pid) =>
  fs.readdirSync(`/proc/${pid}/task`).reduce((ns, t) => {
    try {
      return ns + Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      return ns;  // a thread that ended meanwhile
    }
  }, 0);
const paths = { direct, gateway, relay: relayed };
const times = { direct: [], gateway: [], relay: [] };
const cpu = { gateway: [gw.pid, 0], relay: [relay.pid, 0] };
for (let i = 0; i < 200; ++i) for (const f of Object.values(paths)) await f();  // warm-up
for (let done = 0; done < calls; done += 100) {
  for (const [name, f] of Object.entries(paths)) {
    const before = cpu[name] ? cpuNs(cpu[name][0]) : 0;
    for (let i = 0; i < 100; ++i) times[name].push(await f());
    if (cpu[name]) cpu[name][1] += cpuNs(cpu[name][0]) - before;
  }
}
const q = (a, p) => a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];
const ms = (us) => (us / 1000).toFixed(3);
console.log(`MCP tools/call round trip, ${calls} calls per path, audit ${auditMode}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}, ${os.cpus().length} CPUs`);
for (const p of [0.5, 0.9, 0.99]) {
  const d = q(times.direct, p), g = q(times.gateway, p), r = q(times.relay, p);
  console.log(`p${p * 100}: direct ${ms(d)} ms  through gateway ${ms(g)} ms  added ${ms(g - d)} ms  |  through tcp_relay ${ms(r)} ms  added ${ms(r - d)} ms`);
}
console.log(`CPU per call: gateway ${(cpu.gateway[1] / calls / 1000).toFixed(1)} us, tcp_relay ${(cpu.relay[1] / calls / 1000).toFixed(1)} us`);
// The gateway's own account of its time (docs/mcp-gateway.md, "Metrics"): warm-up calls included.
const metrics = await (await fetch(`http://127.0.0.1:${gwPort}/metrics`)).text();
const series = (name) => Number((metrics.split("\n").find((l) => l.startsWith(`${name}{upstream="web"} `)) ?? " NaN").split(" ").pop());
const own = series("mandate_mcp_gateway_seconds_sum") / series("mandate_mcp_gateway_seconds_count");
const half = series("mandate_mcp_gateway_seconds_count") / 2;
const median = metrics.split("\n").map((l) => l.match(/^mandate_mcp_gateway_seconds_bucket\{upstream="web",le="([^"]+)"\} (\d+)$/)).find((m) => m && Number(m[2]) >= half);
console.log(`gateway's own time per call (mandate_mcp_gateway_seconds): mean ${(own * 1e6).toFixed(1)} us, median at most ${median ? (Number(median[1]) * 1e6).toFixed(0) : "?"} us`);
gw.kill("SIGTERM");
up.kill("SIGTERM");
relay.kill("SIGTERM");
agent.destroy();
await new Promise((r) => gw.on("exit", r));
fs.rmSync(work, { recursive: true, force: true });
