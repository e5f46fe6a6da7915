// The official JavaScript Service Bus SDK (@azure/service-bus, on rhea) against devbus.
//
// Run by jsclient_test.go, which starts devbus and passes its connection string in
// DEVBUS_CONNECTION_STRING. Every check prints one JSON line on stdout,
// {"check": name, "ok": true} or {"check": name, "ok": false, "error": "..."}, and the Go
// test fails on a failed check and on a check that never reported. Each check uses its own
// queue (devbus creates queues on first use with the Service Bus defaults), so one check's
// leftovers cannot satisfy or break another.
"use strict";

const assert = require("node:assert/strict");
const { ServiceBusClient } = require("@azure/service-bus");

const connectionString = process.env.DEVBUS_CONNECTION_STRING;
if (!connectionString) {
  console.error("DEVBUS_CONNECTION_STRING is not set");
  process.exit(2);
}

// A check that takes longer than this is reported failed; the Go test bounds the whole run.
const checkTimeoutMs = 30000;
// How long a receive waits for a message that must arrive, and for one that must not.
const arriveMs = 5000;
const absentMs = 1500;

// Fast retries: a refused operation should fail the check now, not after the SDK's
// default minute of retrying.
const clientOptions = { retryOptions: { maxRetries: 1, retryDelayInMs: 100, timeoutInMs: 10000 } };

const clients = [];
function newClient() {
  const c = new ServiceBusClient(connectionString, clientOptions);
  clients.push(c);
  return c;
}

// The Go test reads devbus's statistics of some of these queues after the run.
const queueFor = (check) => `js-${check}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// receiveOne receives exactly one message within arriveMs.
async function receiveOne(receiver) {
  const msgs = await receiver.receiveMessages(1, { maxWaitTimeInMs: arriveMs });
  assert.equal(msgs.length, 1, "expected one message, got " + msgs.length);
  return msgs[0];
}

// receiveNone checks that nothing arrives within absentMs.
async function receiveNone(receiver, why) {
  const msgs = await receiver.receiveMessages(1, { maxWaitTimeInMs: absentMs });
  assert.equal(msgs.length, 0, `${why}: got ${msgs.length} message(s), bodies ${JSON.stringify(msgs.map((m) => m.body))}`);
}

// expectRefused checks that an operation fails with an error whose message matches re.
async function expectRefused(fn, re, what) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${what} succeeded; devbus should refuse it`);
  assert.match(String(err && err.message), re, `${what} failed, but not with a clear reason`);
  return `${what} refused: ${err.message}`;
}

const checks = {
  // Send one message and a batch; receive them all in peek-lock and complete them.
  async "send-single-and-batch"(c, q) {
    const sender = c.createSender(q);
    await sender.sendMessages({ body: "single" });
    const batch = await sender.createMessageBatch();
    for (let i = 0; i < 3; i++) {
      assert.ok(batch.tryAddMessage({ body: `batch-${i}` }), `batch refused message ${i}`);
    }
    await sender.sendMessages(batch);
    await sender.sendMessages([{ body: "array-0" }, { body: "array-1" }]);
    const receiver = c.createReceiver(q);
    const got = [];
    while (got.length < 6) {
      const msgs = await receiver.receiveMessages(6 - got.length, { maxWaitTimeInMs: arriveMs });
      assert.ok(msgs.length > 0, `received ${got.length} of 6 messages, then nothing`);
      for (const m of msgs) {
        got.push(m.body);
        await receiver.completeMessage(m);
      }
    }
    assert.deepEqual(got, ["single", "batch-0", "batch-1", "batch-2", "array-0", "array-1"]);
    await receiveNone(receiver, "after completing every message");
  },

  // receiveAndDelete: the message is gone once received, with no lock to settle.
  async "receive-and-delete"(c, q) {
    await c.createSender(q).sendMessages({ body: "once" });
    const receiver = c.createReceiver(q, { receiveMode: "receiveAndDelete" });
    const m = await receiveOne(receiver);
    assert.equal(m.body, "once");
    assert.equal(m.lockToken, undefined, "a receive-and-delete message has no lock token");
    await receiveNone(receiver, "a received-and-deleted message came back");
  },

  // Peek-lock: the message carries a lock, its sequence number and enqueued time; it is
  // invisible while locked and gone once completed.
  async "peek-lock-complete"(c, q) {
    await c.createSender(q).sendMessages({ body: "locked" });
    const receiver = c.createReceiver(q);
    const m = await receiveOne(receiver);
    assert.match(m.lockToken || "", /^[0-9a-f-]{36}$/, "lock token");
    assert.ok(m.lockedUntilUtc instanceof Date && m.lockedUntilUtc > new Date(), "lockedUntilUtc in the future");
    assert.ok(m.sequenceNumber && m.sequenceNumber.toNumber() > 0, "sequence number");
    assert.ok(m.enqueuedTimeUtc instanceof Date, "enqueued time");
    assert.equal(m.deliveryCount, 0, "delivery count of a first delivery");
    await receiveNone(receiver, "a locked message was delivered twice");
    await receiver.completeMessage(m);
    const other = c.createReceiver(q);
    await receiveNone(other, "a completed message came back");
  },

  // Abandon: the message comes back at once with its delivery count + 1.
  async abandon(c, q) {
    await c.createSender(q).sendMessages({ body: "again" });
    const receiver = c.createReceiver(q);
    const first = await receiveOne(receiver);
    assert.equal(first.deliveryCount, 0);
    await receiver.abandonMessage(first, { reason: "try later" });
    const second = await receiveOne(receiver);
    assert.equal(second.body, "again");
    assert.equal(second.deliveryCount, 1, "delivery count after one abandon");
    assert.equal(second.applicationProperties && second.applicationProperties.reason, "try later",
      "properties to modify given with abandon");
    await receiver.completeMessage(second);
  },

  // Dead-letter with a reason and a description, read back from the dead-letter queue.
  async "dead-letter"(c, q) {
    await c.createSender(q).sendMessages({ body: "poison", messageId: "poison-1" });
    const receiver = c.createReceiver(q);
    const m = await receiveOne(receiver);
    await receiver.deadLetterMessage(m, { deadLetterReason: "BadInput", deadLetterErrorDescription: "the body is not JSON" });
    await receiveNone(receiver, "a dead-lettered message stayed in the queue");
    const dlq = c.createReceiver(q, { subQueueType: "deadLetter" });
    const d = await receiveOne(dlq);
    assert.equal(d.body, "poison");
    assert.equal(d.messageId, "poison-1");
    assert.equal(d.deadLetterReason, "BadInput");
    assert.equal(d.deadLetterErrorDescription, "the body is not JSON");
    assert.equal(d.deadLetterSource, undefined, "a queue's own dead letters name no source entity");
    await dlq.completeMessage(d);
    await receiveNone(dlq, "a completed dead letter came back");
  },

  // Duplicate detection: a second message with the same messageId inside the window is
  // accepted by the broker but dropped.
  async "duplicate-detection"(c, q) {
    const sender = c.createSender(q);
    await sender.sendMessages({ body: "first", messageId: "same-id" });
    await sender.sendMessages({ body: "second", messageId: "same-id" });
    await sender.sendMessages({ body: "other", messageId: "other-id" });
    const receiver = c.createReceiver(q, { receiveMode: "receiveAndDelete" });
    const a = await receiveOne(receiver);
    const b = await receiveOne(receiver);
    assert.deepEqual([a.body, b.body], ["first", "other"]);
    await receiveNone(receiver, "the duplicate was delivered");
  },

  // Schedule two messages, cancel one: only the other arrives, and not before its time.
  async "schedule-and-cancel"(c, q) {
    const sender = c.createSender(q);
    const at = new Date(Date.now() + 2000);
    const seqs = await sender.scheduleMessages([{ body: "kept" }, { body: "cancelled" }], at);
    assert.equal(seqs.length, 2, "sequence numbers of scheduled messages");
    const peeked = await c.createReceiver(q).peekMessages(10);
    assert.equal(peeked.length, 2, "scheduled messages are visible to peek");
    for (const p of peeked) {
      assert.equal(p.state, "scheduled");
      assert.equal(p.scheduledEnqueueTimeUtc && p.scheduledEnqueueTimeUtc.getTime(), at.getTime(), "scheduled time read back");
    }
    await sender.cancelScheduledMessages([seqs[1]]);
    const receiver = c.createReceiver(q, { receiveMode: "receiveAndDelete" });
    await receiveNone(receiver, "a scheduled message arrived before its time");
    await sleep(Math.max(0, at.getTime() - Date.now()));
    const m = await receiveOne(receiver);
    assert.equal(m.body, "kept");
    assert.ok(Date.now() >= at.getTime(), "delivered before the scheduled time");
    await receiveNone(receiver, "the cancelled message arrived");
  },

  // Renew lock: the lock's expiry moves forward and the message can still be completed.
  async "renew-lock"(c, q) {
    await c.createSender(q).sendMessages({ body: "long job" });
    const receiver = c.createReceiver(q);
    const m = await receiveOne(receiver);
    const before = m.lockedUntilUtc.getTime();
    await sleep(1100);
    const renewed = await receiver.renewMessageLock(m);
    assert.ok(renewed instanceof Date, "renewMessageLock returns the new expiry");
    assert.ok(renewed.getTime() >= before + 1000, `lock not extended: ${new Date(before).toISOString()} -> ${renewed.toISOString()}`);
    assert.equal(m.lockedUntilUtc.getTime(), renewed.getTime(), "the message's lockedUntilUtc follows the renewal");
    await receiver.completeMessage(m);
  },

  // Peek: messages are read without being locked or removed, from a sequence number on.
  async peek(c, q) {
    await c.createSender(q).sendMessages([{ body: "p0" }, { body: "p1" }, { body: "p2" }]);
    const receiver = c.createReceiver(q);
    const all = await receiver.peekMessages(10);
    assert.deepEqual(all.map((m) => m.body), ["p0", "p1", "p2"]);
    for (const m of all) {
      assert.equal(m.lockToken, undefined, "a peeked message has no lock");
      assert.equal(m.state, "active");
    }
    const rest = await receiver.peekMessages(10, { fromSequenceNumber: all[1].sequenceNumber });
    assert.deepEqual(rest.map((m) => m.body), ["p1", "p2"]);
    const msgs = await receiver.receiveMessages(3, { maxWaitTimeInMs: arriveMs });
    assert.equal(msgs.length, 3, "peeked messages are still there to receive");
    for (const m of msgs) await receiver.completeMessage(m);
  },

  // Deferral: a deferred message is out of the queue's flow and comes back only by its
  // sequence number, locked, to be completed.
  async deferral(c, q) {
    await c.createSender(q).sendMessages({ body: "later" });
    const receiver = c.createReceiver(q);
    const m = await receiveOne(receiver);
    const seq = m.sequenceNumber;
    await receiver.deferMessage(m);
    await receiveNone(receiver, "a deferred message was received normally");
    const [d] = await receiver.receiveDeferredMessages([seq]);
    assert.ok(d, "receiveDeferredMessages returned nothing");
    assert.equal(d.body, "later");
    assert.equal(d.state, "deferred");
    assert.ok(d.lockToken, "a deferred message received in peek-lock has a lock token");
    await receiver.completeMessage(d);
    const again = await receiver.receiveDeferredMessages([seq]).then(
      (ms) => ms.length,
      (e) => e,
    );
    assert.ok(again instanceof Error, "a completed deferred message could be received again");
    assert.match(String(again.message), /not found|MessageNotFound/i);
  },

  // Competing receivers on two connections: every message delivered exactly once.
  async "competing-receivers"(c, q) {
    const total = 100;
    const sender = c.createSender(q);
    const batch = await sender.createMessageBatch();
    for (let i = 0; i < total; i++) {
      assert.ok(batch.tryAddMessage({ body: i, messageId: `m-${i}` }), `batch refused message ${i}`);
    }
    await sender.sendMessages(batch);
    const seen = new Map();
    const counts = [0, 0];
    const worker = async (idx) => {
      const receiver = newClient().createReceiver(q);
      for (;;) {
        const msgs = await receiver.receiveMessages(7, { maxWaitTimeInMs: absentMs });
        if (msgs.length === 0) return;
        for (const m of msgs) {
          seen.set(m.body, (seen.get(m.body) || 0) + 1);
          counts[idx]++;
          await receiver.completeMessage(m);
        }
      }
    };
    await Promise.all([worker(0), worker(1)]);
    const twice = [...seen].filter(([, n]) => n > 1).map(([b]) => b);
    const lost = [];
    for (let i = 0; i < total; i++) if (!seen.has(i)) lost.push(i);
    assert.deepEqual(twice, [], "received twice");
    assert.deepEqual(lost, [], "never received");
    assert.ok(counts[0] > 0 && counts[1] > 0, `one receiver got everything: ${counts}`);
  },

  // The message properties and application properties dimirror sets and reads.
  async properties(c, q) {
    const sent = {
      body: { kind: "copy", sourceId: "model-1" },
      messageId: "copy-model-1-westus2-1",
      contentType: "application/json",
      subject: "dimirror.copy",
      correlationId: "corr-42",
      applicationProperties: { kind: "copy", sourceId: "model-1", target: "westus2", attempt: 3, check: 0, flag: true },
    };
    await c.createSender(q).sendMessages(sent);
    const receiver = c.createReceiver(q);
    const m = await receiveOne(receiver);
    assert.deepEqual(m.body, sent.body);
    for (const k of ["messageId", "contentType", "subject", "correlationId"]) {
      assert.equal(m[k], sent[k], k);
    }
    assert.deepEqual(m.applicationProperties, sent.applicationProperties);
    await receiver.completeMessage(m);
  },

  // Sessions and topics are not in devbus: both are refused with an error that says so.
  async "sessions-refused"(c, q) {
    // acceptNextSession reports the broker's own error. acceptSession does not: the SDK
    // sees the refused attach (no source) before the detach that says why, and reports
    // the session as locked by another receiver, as it would with Service Bus.
    const next = await expectRefused(() => c.acceptNextSession(q), /does not support sessions/, "acceptNextSession");
    const named = await expectRefused(() => c.acceptSession(q, "session-1"), /session/i, "acceptSession");
    return `${next}; ${named}`;
  },
  async "topics-refused"(c, q) {
    const receiver = c.createReceiver(q, "subscription-1");
    return expectRefused(() => receiver.receiveMessages(1, { maxWaitTimeInMs: arriveMs }), /queues only|subscription/i,
      "receiving from a topic subscription");
  },
};

async function main() {
  const shared = newClient();
  let failed = 0;
  for (const [name, fn] of Object.entries(checks)) {
    const started = Date.now();
    try {
      const note = await withTimeout(fn(shared, queueFor(name)), checkTimeoutMs, name);
      console.log(JSON.stringify({ check: name, ok: true, ms: Date.now() - started, note }));
    } catch (e) {
      failed++;
      console.log(JSON.stringify({ check: name, ok: false, ms: Date.now() - started, error: String((e && e.stack) || e) }));
    }
  }
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  console.log(JSON.stringify({ done: true, failed }));
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
