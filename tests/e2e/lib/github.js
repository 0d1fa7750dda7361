// The GitHub-like world the client tests share: users, orgs, repos (25 of them in "bigco" so that list
// pagination spans several pages), the facts that describe it, and the decisions they imply under
// POLICY (lib/common.js). Facts are written in the 2.x client's form (JS booleans and numbers);
// toV1 converts them for the 1.x client, which only understands strings and {type, id}.
"use strict";

const { user, org, repo } = require("./common");

const [alice, bob, carol, dave, erin, frank, gina] = ["alice", "bob", "carol", "dave", "erin", "frank", "gina"].map(user);
const [acme, bigco] = ["acme", "bigco"].map(org);
const [anvil, rocket, secret, open] = ["anvil", "rocket", "secret", "open"].map(repo);
const bigRepos = Array.from({ length: 25 }, (_, i) => repo(`big-${String(i).padStart(2, "0")}`));
const bigRepoIds = bigRepos.map((r) => r.id);

const BASE_FACTS = [
  ["has_role", alice, "member", acme],
  ["has_role", carol, "admin", acme],
  ["has_role", bob, "writer", anvil],
  ["has_role", dave, "member", bigco],
  ["has_relation", anvil, "parent", acme],
  ["has_relation", rocket, "parent", acme],
  ["is_public", open, true],
  ["stars", anvil, 42],
  ...bigRepos.map((r) => ["has_relation", r, "parent", bigco]),
];
const PREDICATES = ["has_role", "has_relation", "is_public", "stars"];

// [actor, action, resource, expected] over BASE_FACTS.
const AUTH_CASES = [
  [alice, "read", anvil, true],
  [alice, "read", rocket, true],
  [alice, "read", open, true],
  [alice, "read", acme, true],
  [bob, "write", anvil, true],
  [carol, "delete", anvil, true],
  [carol, "create_repo", acme, true],
  [dave, "read", bigRepos[7], true],
  [erin, "read", open, true],
  [alice, "write", anvil, false],
  [alice, "read", secret, false],
  [alice, "create_repo", acme, false],
  [bob, "delete", anvil, false],
  [bob, "read", rocket, false],
  [dave, "read", anvil, false],
  [erin, "read", anvil, false],
  [user("nobody"), "read", repo("nowhere"), false],
];

// What `dave` (member of bigco) may read: every bigco repo plus the public one.
const DAVE_READS = [...bigRepoIds, "open"].sort();

// A 2.x-form argument as the 1.x client must be given it (and as the 1.x client returns it: String
// values are plain strings, everything else {type, id}).
function argToV1(a) {
  if (typeof a === "boolean") return { type: "Boolean", id: String(a) };
  if (typeof a === "number") return { type: "Integer", id: String(a) };
  return a;
}
const toV1 = ([p, ...args]) => [p, ...args.map(argToV1)];

// A fact in the form the 2.x client's `get` returns it: every argument a {type, id} Value.
function factV2(predicate, ...args) {
  return [predicate, ...args.map((a) => (typeof a === "string" ? { type: "String", id: a } : argToV1(a)))];
}

module.exports = {
  alice,
  bob,
  carol,
  dave,
  erin,
  frank,
  gina,
  acme,
  bigco,
  anvil,
  rocket,
  secret,
  open,
  bigRepos,
  bigRepoIds,
  BASE_FACTS,
  PREDICATES,
  AUTH_CASES,
  DAVE_READS,
  toV1,
  factV2,
};
