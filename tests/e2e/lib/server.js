// Starts and stops a real `mandate serve --dev` for one test file: a free loopback port, a fresh data
// directory, readiness by polling GET /api/healthcheck, shutdown by SIGTERM to the child's PID.
// The binary comes from $MANDATE_BIN (run.sh and CTest set it).
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

// The Oso Dev Server's fixed key; `--dev` accepts it as an admin key.
const DEV_KEY = "e_0123456789_12345_osotesttoken01xiIn";

const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 15000;

function mandateBinary() {
  const bin = process.env.MANDATE_BIN;
  if (!bin) throw new Error("MANDATE_BIN is not set: point it at the built `mandate` binary (run.sh does this)");
  if (!fs.existsSync(bin)) throw new Error(`MANDATE_BIN=${bin} does not exist`);
  return bin;
}

// Asks the kernel for a free port. Another process could take it before the server binds it; on
// loopback in a test run that window is small enough, and start() reports the bind error if it happens.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Children still running when the test process exits are killed, so a failed test never leaks a server.
const live = new Set();
process.on("exit", () => {
  for (const child of live) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {}
  }
});

class MandateServer {
  // `extraArgs` are appended to `mandate serve`, e.g. ["--policy", file, "--facts", file].
  constructor(extraArgs = []) {
    this.extraArgs = extraArgs;
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), "mandate-e2e-"));
    this.dataDir = path.join(this.root, "data");
    this.logPath = path.join(this.root, "server.log");
    this.child = null;
    this.port = null;
    this.starts = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  // Starts the server (a free port on the first start, then the same port and data directory, so
  // clients built with the old URL keep working across restarts) and waits until it
  // answers GET /api/healthcheck with 200. Rejects with the tail of the server log if it exits or
  // does not become healthy in time.
  async start() {
    if (this.child) throw new Error("server already running");
    if (this.port === null) this.port = await freePort();
    this.starts += 1;
    const log = fs.openSync(this.logPath, "a");
    fs.writeSync(log, `\n=== start #${this.starts} on port ${this.port} ===\n`);
    const args = ["serve", "--dev", "--listen", `127.0.0.1:${this.port}`, "--data-dir", this.dataDir, ...this.extraArgs];
    const child = spawn(mandateBinary(), args, { stdio: ["ignore", log, log] });
    fs.closeSync(log);
    this.child = child;
    live.add(child);
    this.exited = new Promise((resolve) =>
      child.on("exit", (code, signal) => {
        live.delete(child);
        resolve({ code, signal });
      }),
    );
    let exitInfo = null;
    this.exited.then((info) => (exitInfo = info));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exitInfo) {
        this.child = null;
        throw new Error(`mandate ${args.join(" ")} exited early (${JSON.stringify(exitInfo)})\n${this.logTail()}`);
      }
      try {
        const res = await fetch(`${this.url}/api/healthcheck`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) return this;
      } catch {}
      await sleep(50);
    }
    await this.stop().catch(() => {});
    throw new Error(`mandate serve did not answer GET /api/healthcheck with 200 within ${START_TIMEOUT_MS} ms\n${this.logTail()}`);
  }

  // Sends SIGTERM to the server's PID and waits for it to exit. A graceful shutdown exits 0 (or by the
  // SIGTERM itself); anything else, or a hang past the timeout (then SIGKILL), is an error.
  async stop() {
    const child = this.child;
    if (!child) return;
    this.child = null;
    process.kill(child.pid, "SIGTERM");
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(null), STOP_TIMEOUT_MS)));
    const info = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (info === null) {
      process.kill(child.pid, "SIGKILL");
      await this.exited;
      throw new Error(`mandate serve (pid ${child.pid}) did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM\n${this.logTail()}`);
    }
    if (!(info.code === 0 || info.signal === "SIGTERM")) {
      throw new Error(`mandate serve (pid ${child.pid}) exited with ${JSON.stringify(info)} after SIGTERM\n${this.logTail()}`);
    }
  }

  async restart() {
    await this.stop();
    return this.start();
  }

  logTail(lines = 40) {
    try {
      const text = fs.readFileSync(this.logPath, "utf8").trimEnd().split("\n");
      return `--- ${this.logPath} (last ${lines} lines) ---\n${text.slice(-lines).join("\n")}`;
    } catch {
      return `(no server log at ${this.logPath})`;
    }
  }

  // Removes the temporary directory unless MANDATE_E2E_KEEP is set (then its path is printed).
  cleanup() {
    if (process.env.MANDATE_E2E_KEEP) {
      console.log(`# kept server data and log in ${this.root}`);
      return;
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

module.exports = { MandateServer, DEV_KEY };
