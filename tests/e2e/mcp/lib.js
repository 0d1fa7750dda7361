// Helpers of the MCP gateway e2e tests: a `mandate serve` with [[mcp.upstreams]] on a free
// loopback port, SDK clients that authenticate with an API key or a JWT, and JWT minting with jose.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../../..");
export const modules = path.join(here, "node_modules");

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// Starts `mandate serve` and resolves once it listens. `lines` collects its output. `wrap`: a
// command line to run it under (its arguments follow), e.g. a resource limit.
export async function startMandate({ config, port, dataDir, policy, facts, wrap = [] }) {
  const bin = process.env.MANDATE_BIN;
  if (!bin) throw new Error("MANDATE_BIN is not set");
  const args = ["serve", "--config", config, "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`];
  if (policy) args.push("--policy", policy);
  for (const f of facts ?? []) args.push("--facts", f);
  const [cmd, ...pre] = [...wrap, bin];
  const child = spawn(cmd, [...pre, ...args], { env: { ...process.env, MANDATE_API_KEY: "admin-key" }, stdio: ["ignore", "pipe", "pipe"] });
  const lines = [];
  const ready = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      for (const l of chunk.toString().split("\n")) {
        lines.push(l);
        if (l.startsWith("Mandate listening on")) resolve();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`mandate serve exited with ${code}:\n${lines.join("\n")}`)));
  });
  await ready;
  return {
    child,
    lines,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.on("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

// An SDK client connected to /mcp/<name> with `Authorization: Bearer <token>`.
export async function connect(url, token, info = { name: "e2e", version: "1.0.0" }, capabilities = {}) {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client(info, { capabilities });
  await client.connect(transport);
  return { client, transport };
}

// A raw JSON-RPC POST (for the protocol and token edge cases the SDK would never send).
export async function post(url, body, headers = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export const initialize = (id = 1, protocolVersion = "2025-06-18") => ({
  jsonrpc: "2.0",
  id,
  method: "initialize",
  params: { protocolVersion, capabilities: {}, clientInfo: { name: "raw", version: "1" } },
});

// Starts fixtures/http-server.mjs (a Streamable HTTP upstream with a token endpoint) on a free port.
export async function startFixture(args) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(here, "fixtures/http-server.mjs"), String(port), ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise((resolve, reject) => {
    child.stdout.on("data", (d) => d.toString().includes("listening") && resolve());
    child.on("exit", (code) => reject(new Error(`fixture exited with ${code}`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

// mandate.toml text shared by the gateway tests: the HTTP upstream "web" (the SDK fixture started by
// startFixture(["gw", "s3cret"]), reached with a client-credentials token), and MCP API keys for the
// agent "claude" acting for each of `users`.
export const webUpstreamToml = (fixture, extra = "") => `
[[mcp.upstreams]]
name = "web"
url = "${fixture.url}/mcp"
auth = "client_credentials"
token_url = "${fixture.url}/token"
client_id = "gw"
client_secret = "s3cret"
${extra}`;

// mandate.toml text: the reference filesystem server (stdio) as the upstream "fs", serving `files`.
export const FS_SERVER = path.join(modules, "@modelcontextprotocol/server-filesystem/dist/index.js");
export const fsUpstreamToml = (files) => `
[[mcp.upstreams]]
name = "fs"
command = ["${process.execPath}", "${FS_SERVER}", "${files}"]
`;

export const claudeKeysToml = (users = ["alice", "bob"]) =>
  users.map((u) => `
[[mcp.api_keys]]
key = "k-claude-${u}"
agent = "claude"
user = "${u}"
`).join("");
