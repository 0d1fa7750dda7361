#!/usr/bin/env node
// Bodies and a correctness check for Mandate's batch endpoint POST /api/authorize_resources, which the
// shared harness (../shared/bench) does not know.
//   node authorize_resources.js gen SCENARIO_DIR OUT_DIR
//       writes OUT_DIR/authorize_resources.jsonl: one user, one action, 150 repos per body (the repos of
//       three consecutive authzen_batch.jsonl lines, the user of the first), the action cycling
//       read/write/delete; and OUT_DIR/authorize_resources_expected.jsonl: the allowed ids per body,
//       decided by the harness's reference decider (peers/scenario.js).
//   node authorize_resources.js check BASE_URL BODIES EXPECTED N [HEADER ...]
//       POSTs the first N bodies and compares each {"results":[{type,id}...]} with the expected ids.
//       Prints `check mandate authorize_resources-batch150 checked=<decisions> mismatches=<n> errors=<n>`
//       (the harness's format); exit 1 unless both are 0.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const HARNESS = process.env.HARNESS_DIR || path.join(__dirname, '..', '..', 'shared', 'bench');
const lines = (f) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.length);

function gen(dir, out) {
  const { loadScenario, referenceDecider } = require(path.join(HARNESS, 'peers', 'scenario.js'));
  const decide = referenceDecider(loadScenario(dir, false));
  const batches = lines(path.join(dir, 'authzen_batch.jsonl')).map((l) => JSON.parse(l));
  const actions = ['read', 'write', 'delete'];
  const bodies = [], expected = [];
  for (let k = 0; k + 2 < batches.length; k++) {
    const user = batches[k].subject.id, action = actions[k % 3];
    const repos = [];
    for (const b of batches.slice(k, k + 3)) {
      for (const e of b.evaluations) if (e.action.name === 'read') repos.push(e.resource.id);
    }
    bodies.push(JSON.stringify({ actor_type: 'User', actor_id: user, action,
      resources: repos.map((id) => ({ type: 'Repo', id })), context_facts: [] }));
    expected.push(JSON.stringify(repos.filter((id) => decide(user, action, id))));
  }
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'authorize_resources.jsonl'), bodies.join('\n') + '\n');
  fs.writeFileSync(path.join(out, 'authorize_resources_expected.jsonl'), expected.join('\n') + '\n');
}

async function check(base, bodiesFile, expectedFile, n, headerArgs) {
  const headers = { 'content-type': 'application/json' };
  for (const h of headerArgs) {
    const k = h.indexOf(':');
    headers[h.slice(0, k).trim().toLowerCase()] = h.slice(k + 1).trim();
  }
  const bodies = lines(bodiesFile).slice(0, n), expected = lines(expectedFile).slice(0, n).map((l) => JSON.parse(l));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const post = (body) => new Promise((resolve) => {
    const rq = http.request(new URL('/api/authorize_resources', base),
      { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (rs) => {
        let s = '';
        rs.setEncoding('utf8');
        rs.on('data', (c) => { s += c; });
        rs.on('end', () => resolve([rs.statusCode, s]));
      });
    rq.setTimeout(10000, () => rq.destroy(new Error('timeout')));
    rq.on('error', (e) => resolve([0, String(e.message)]));
    rq.end(body);
  });
  let checked = 0, mismatches = 0, errors = 0;
  for (let i = 0; i < bodies.length; i++) {
    const [status, text] = await post(bodies[i]);
    let got = null;
    try { got = status === 200 ? JSON.parse(text).results.map((r) => r.id) : null; } catch (e) { got = null; }
    if (!got) {
      if (++errors <= 3) console.log(`# request ${i + 1}: HTTP ${status} ${text.slice(0, 200)}`);
      continue;
    }
    const allowed = new Set(got), want = new Set(expected[i]);
    for (const r of JSON.parse(bodies[i]).resources) {
      checked++;
      if (allowed.has(r.id) !== want.has(r.id)) mismatches++;
    }
    if (got.length !== expected[i].length) mismatches++;  // order and duplicates are kept by the server
  }
  agent.destroy();
  console.log(`check mandate authorize_resources-batch150 checked=${checked} mismatches=${mismatches} errors=${errors}`);
  process.exitCode = mismatches || errors ? 1 : 0;
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'gen' && args.length === 2) gen(args[0], args[1]);
else if (mode === 'check' && args.length >= 4) check(args[0], args[1], args[2], Number(args[3]), args.slice(4));
else {
  console.error('usage: authorize_resources.js gen SCENARIO_DIR OUT_DIR | check BASE_URL BODIES EXPECTED N [HEADER ...]');
  process.exit(2);
}
