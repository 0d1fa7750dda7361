// Shared by the e2e test files: the GitHub-like policy (orgs, repos with a parent relation, public repos),
// its variants for the rejection tests, and small helpers for comparing unordered results and
// recording the HTTP exchanges a client makes.
"use strict";

const assert = require("node:assert/strict");

const POLICY = `actor User {}

resource Org {
  roles = ["member", "admin"];
  permissions = ["read", "create_repo"];

  "member" if "admin";
  "read" if "member";
  "create_repo" if "admin";
}

resource Repo {
  roles = ["reader", "writer", "maintainer"];
  permissions = ["read", "write", "delete"];
  relations = { parent: Org };

  "writer" if "maintainer";
  "reader" if "writer";
  "read" if "reader";
  "write" if "writer";
  "delete" if "maintainer";

  "reader" if "member" on "parent";
  "maintainer" if "admin" on "parent";
}

has_permission(_: User, "read", repo: Repo) if is_public(repo, true);

declare stars(Repo, Integer);

test "org members read the org's repos" {
  setup {
    has_role(User{"alice"}, "member", Org{"acme"});
    has_relation(Repo{"anvil"}, "parent", Org{"acme"});
    is_public(Repo{"open"}, true);
  }
  assert allow(User{"alice"}, "read", Repo{"anvil"});
  assert_not allow(User{"alice"}, "write", Repo{"anvil"});
  assert allow(User{"nobody"}, "read", Repo{"open"});
}
`;

// A valid, different policy (upload answers 200, not 202): writing needs "maintainer", not "writer".
const POLICY_STRICT_WRITE = POLICY.replace(`"write" if "writer";`, `"write" if "maintainer";`);

const FAILING_TEST_NAME = "members may delete (deliberately wrong)";
// Valid Polar whose test block fails: members are readers, not maintainers.
const POLICY_FAILING_TEST = `${POLICY}
test "${FAILING_TEST_NAME}" {
  setup {
    has_role(User{"alice"}, "member", Org{"acme"});
    has_relation(Repo{"anvil"}, "parent", Org{"acme"});
  }
  assert allow(User{"alice"}, "delete", Repo{"anvil"});
}
`;

// A syntax error on line 4 (unterminated list).
const POLICY_SYNTAX_ERROR = `actor User {}

resource Repo {
  roles = ["reader", "writer";
  permissions = ["read"];
}
`;

const user = (id) => ({ type: "User", id });
const org = (id) => ({ type: "Org", id });
const repo = (id) => ({ type: "Repo", id });

// Sorted copy, for comparing results whose order the API does not define.
function sorted(xs) {
  return [...xs].sort();
}

// Sorted by JSON text, for comparing lists of facts or tuples regardless of order.
function sortedJson(xs) {
  return [...xs].sort((a, b) => {
    const ja = JSON.stringify(a);
    const jb = JSON.stringify(b);
    return ja < jb ? -1 : ja > jb ? 1 : 0;
  });
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// ClientOptions.fetchBuilder for oso-cloud 2.x that records every exchange. (A fetchBuilder replaces
// the client's built-in retries, so only the probing clients use it.)
function recorder() {
  const exchanges = [];
  const fetchBuilder = (fetch) => async (url, init) => {
    const res = await fetch(url, init);
    exchanges.push({
      method: init.method,
      path: new URL(url).pathname,
      url,
      requestHeaders: init.headers,
      requestBody: init.body,
      status: res.status,
      headers: res.headers,
    });
    return res;
  };
  return { exchanges, fetchBuilder, last: () => exchanges[exchanges.length - 1] };
}

// Plain HTTP call to the Oso API with the given key; returns {status, headers, body (parsed JSON or text)}.
async function rawRequest(baseUrl, key, method, path, body) {
  const res = await fetch(`${baseUrl}/api${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", Accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed };
}

// Asserts `promise` rejects with the 2.x client's OsoError carrying the given status (or one of a list
// of statuses), whose message is
// "Oso Cloud error: <server message> (Request ID: <uuid>)" and whose server message matches `pattern`.
async function assertOsoError(promise, OsoError, status, pattern) {
  const statuses = [status].flat();
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected an OsoError with status ${status}, but the call succeeded`);
  assert.ok(err instanceof OsoError, `expected OsoError, got ${err && err.constructor.name}: ${err && err.message}`);
  assert.ok(statuses.includes(err.statusCode), `status ${err.statusCode}, expected ${statuses}: ${err.message}`);
  const m = /^Oso Cloud error: ([\s\S]*) \(Request ID: (.*)\)$/.exec(err.message);
  assert.ok(m, `unexpected OsoError message shape: ${err.message}`);
  assert.match(m[2], UUID_RE, `request id in: ${err.message}`);
  assert.ok(m[1].length > 0, `empty server message: ${err.message}`);
  if (pattern) assert.match(m[1], pattern);
  return { message: m[1], requestId: m[2] };
}

module.exports = {
  POLICY,
  POLICY_STRICT_WRITE,
  POLICY_FAILING_TEST,
  POLICY_SYNTAX_ERROR,
  FAILING_TEST_NAME,
  user,
  org,
  repo,
  sorted,
  sortedJson,
  UUID_RE,
  recorder,
  rawRequest,
  assertOsoError,
};
