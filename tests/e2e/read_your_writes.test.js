// Read-your-writes through the official oso-cloud@2.6.0 client: every write answers with an OsoOffset,
// the client echoes the latest one on every later request, and a read issued right after a write
// (same client) always sees it, in a tight loop and with several clients writing at once.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { Oso } = require("oso-cloud");
const { MandateServer, DEV_KEY } = require("./lib/server");
const { POLICY, user, sorted, recorder } = require("./lib/common");
const { acme, anvil } = require("./lib/github");

const LOOP = 100;
const WRITERS = 8;
const WRITES_PER_WRITER = 15;

describe("read-your-writes (OsoOffset)", () => {
  let server;
  let oso;

  before(async () => {
    server = new MandateServer();
    await server.start();
    oso = new Oso(server.url, DEV_KEY);
    await oso.policy(POLICY);
  });

  after(async () => {
    if (server) {
      await server.stop();
      server.cleanup();
    }
  });

  it("each write returns a new OsoOffset and the client echoes it on the next request", async () => {
    const rec = recorder();
    const probe = new Oso(server.url, DEV_KEY, { fetchBuilder: rec.fetchBuilder });
    const offsets = [];
    for (let i = 0; i < 5; i++) {
      await probe.insert(["has_role", user(`probe-${i}`), "member", acme]);
      const write = rec.last();
      const offset = write.headers.get("OsoOffset");
      assert.ok(offset, `POST ${write.path} answered without an OsoOffset header`);
      offsets.push(offset);
      assert.equal(await probe.authorize(user(`probe-${i}`), "read", acme), true, `read after write ${i}`);
      assert.equal(rec.last().requestHeaders.OsoOffset, offset, "the client sends the last write's offset");
      assert.equal(rec.last().status, 200);
    }
    assert.equal(new Set(offsets).size, offsets.length, `offsets repeat: ${offsets}`);
    if (offsets.every((o) => /^\d+$/.test(o))) {
      for (let i = 1; i < offsets.length; i++) {
        assert.ok(BigInt(offsets[i]) > BigInt(offsets[i - 1]), `offsets increase: ${offsets}`);
      }
    }
    await probe.delete(["has_role", { type: "User" }, "member", acme]);
    assert.deepEqual(await probe.get(["has_role"]), []);
  });

  it(`a read right after a write sees it (${LOOP} rounds)`, async () => {
    for (let i = 0; i < LOOP; i++) {
      const u = user(`loop-${i}`);
      await oso.insert(["has_role", u, "member", acme]);
      assert.equal(await oso.authorize(u, "read", acme), true, `round ${i}: authorize after insert`);
      assert.deepEqual(await oso.list(u, "read", "Org"), ["acme"], `round ${i}: list after insert`);
      await oso.batch((tx) => {
        tx.delete(["has_role", u, null, null]);
        tx.insert(["has_role", u, "maintainer", anvil]);
      });
      assert.equal(await oso.authorize(u, "read", acme), false, `round ${i}: authorize after delete`);
      assert.deepEqual(sorted(await oso.actions(u, anvil)), ["delete", "read", "write"], `round ${i}: actions`);
      await oso.delete(["has_role", u, null, null]);
      assert.deepEqual(await oso.get(["has_role", u]), [], `round ${i}: get after delete`);
    }
  });

  it(`${WRITERS} clients writing at once each read their own writes`, async () => {
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const client = new Oso(server.url, DEV_KEY);
        for (let i = 0; i < WRITES_PER_WRITER; i++) {
          const u = user(`w${w}-${i}`);
          await client.insert(["has_role", u, "admin", acme]);
          assert.equal(await client.authorize(u, "create_repo", acme), true, `writer ${w}, write ${i}`);
        }
      }),
    );
    const all = await oso.get(["has_role", null, "admin", acme]);
    assert.equal(all.length, WRITERS * WRITES_PER_WRITER);
  });
});
