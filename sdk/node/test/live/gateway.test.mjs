// Against a running gateway (tests/sdk/test_node_sdk.py starts one and sets the environment):
// create a payment, pay it in the sandbox, refund it, and receive the events the gateway's notifier
// delivers to a Node HTTP server, verified with the merchant's secret.
//
//   PAYMUX_URL=http://127.0.0.1:8000 PAYMUX_MERCHANT_ID=mch_… PAYMUX_MERCHANT_SECRET=… npm run test:live
//
// The gateway must be allowed to deliver to 127.0.0.1 (notify_allow_private_networks = true).
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import { Paymux, PaymuxAPIError, PaymuxSignatureError, verifyEvent } from "../../dist/index.js";

const { PAYMUX_URL, PAYMUX_MERCHANT_ID, PAYMUX_MERCHANT_SECRET } = process.env;
const skip = PAYMUX_URL && PAYMUX_MERCHANT_ID && PAYMUX_MERCHANT_SECRET ? false
  : "needs PAYMUX_URL, PAYMUX_MERCHANT_ID and PAYMUX_MERCHANT_SECRET (a running gateway and one of its merchants)";

const run = randomUUID().slice(0, 8);   // order numbers unique per run, so the test can run again
let paymux;
let hook;                                // the merchant's notify endpoint
const received = [];                     // { event } or { error } for each delivery, in order
const waiters = new Set();

before(async () => {
  if (skip) return;
  paymux = new Paymux({ baseUrl: PAYMUX_URL, merchantId: PAYMUX_MERCHANT_ID, secret: PAYMUX_MERCHANT_SECRET });
  // What a merchant's endpoint does: read the raw body, verify it, answer 2xx only for a genuine event.
  hook = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    try {
      const event = verifyEvent(Buffer.concat(chunks), req.headers["paymux-signature"], PAYMUX_MERCHANT_SECRET);
      received.push({ event, requestId: req.headers["paymux-request-id"] });
      res.writeHead(200).end("ok");
    } catch (error) {
      received.push({ error });
      res.writeHead(400).end(error.code);
    }
    for (const wake of waiters) wake();
  });
  hook.listen(0, "127.0.0.1");
  await once(hook, "listening");
});

after(() => { hook?.closeAllConnections(); hook?.close(); });

/** Resolves with the first delivered event that `match` accepts (waits up to 20 s for the notifier). */
function delivered(match) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = received.find((r) => r.event && match(r.event));
      if (found) { waiters.delete(check); clearTimeout(timer); resolve(found); }
    };
    const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`no matching event in 20 s; received ${JSON.stringify(received)}`)); }, 20000);
    waiters.add(check);
    check();
  });
}

async function until(read, done) {
  for (let i = 0; i < 200; i++) {
    const value = await read();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail("the gateway did not get there in 20 s");
}

/** What the payer's click on "Pay" on the sandbox checkout page does. */
async function payInSandbox(payment) {
  const url = payment.action.url ?? payment.action.code;
  const response = await fetch(url, {
    method: "POST", body: new URLSearchParams({ outcome: "success" }), headers: { Accept: "application/json" },
  });
  assert.equal(response.status, 200, await response.clone().text());
}

test("create, pay in the sandbox, refund, and verify the events the gateway delivers", { skip }, async () => {
  const notifyUrl = `http://127.0.0.1:${hook.address().port}/paymux/events`;
  const payment = await paymux.createPayment({
    merchant_order_no: `node-${run}-1`, amount: 1234, subject: "Coffee", notify_url: notifyUrl,
  });
  assert.match(payment.id, /^pay_/);
  assert.equal(payment.status, "processing");
  assert.equal(payment.amount, 1234);

  await payInSandbox(payment);
  const paid = await until(() => paymux.getPayment(payment.id), (p) => p.status === "succeeded");
  assert.equal(paid.amount, 1234);

  const { event: succeeded } = await delivered((e) => e.type === "payment.succeeded" && e.data.object.id === payment.id);
  assert.match(succeeded.id, /^evt_/);
  assert.equal(succeeded.data.object.status, "succeeded");

  // A refund with a key of our own: sent twice, it is one refund.
  const key = `refund-${run}`;
  const refund = await paymux.createRefund(payment.id, { merchant_refund_no: `node-${run}-r1`, amount: 234 },
    { idempotencyKey: key });
  assert.match(refund.id, /^re_/);
  assert.equal(refund.amount, 234);
  const again = await paymux.createRefund(payment.id, { merchant_refund_no: `node-${run}-r1`, amount: 234 },
    { idempotencyKey: key });
  assert.equal(again.id, refund.id);

  const done = await until(() => paymux.getRefund(refund.id), (r) => r.status === "succeeded");
  assert.equal(done.payment_id, payment.id);
  assert.equal((await paymux.getPayment(payment.id)).amount_refunded, 234);
  const { event: refunded } = await delivered((e) => e.type === "refund.succeeded" && e.data.object.id === refund.id);
  assert.equal(refunded.data.object.amount, 234);

  // Every delivery verified; the same events are listed by the API.
  assert.deepEqual(received.filter((r) => r.error), []);
  const listed = (await paymux.listEvents({ limit: 100 })).data.map((e) => e.id);
  assert.ok(listed.includes(succeeded.id) && listed.includes(refunded.id));
});

test("a delivered event checked with another secret, or altered, is refused", { skip }, async () => {
  const payment = await paymux.createPayment({
    merchant_order_no: `node-${run}-2`, amount: 500, notify_url: `http://127.0.0.1:${hook.address().port}/x`,
  });
  await payInSandbox(payment);
  const { event } = await delivered((e) => e.type === "payment.succeeded" && e.data.object.id === payment.id);
  // A forger has the event's bytes but not the secret: a made-up signature, or a stale one, is refused.
  const body = Buffer.from(JSON.stringify(event));
  assert.throws(() => verifyEvent(body, "t=1,v1=00", PAYMUX_MERCHANT_SECRET), PaymuxSignatureError);
  const now = Math.floor(Date.now() / 1000);
  const forged = await fetch(`http://127.0.0.1:${hook.address().port}/x`, {
    method: "POST", body, headers: { "Paymux-Signature": `t=${now},v1=${"0".repeat(64)}` },
  });
  assert.equal(forged.status, 400);
  assert.equal(await forged.text(), "signature_mismatch");
});

test("the gateway's errors arrive typed, with its request id", { skip }, async () => {
  const order = `node-${run}-3`;
  await paymux.createPayment({ merchant_order_no: order, amount: 100 });
  const duplicate = await paymux.createPayment({ merchant_order_no: order, amount: 100 }).catch((e) => e);
  assert.ok(duplicate instanceof PaymuxAPIError);
  assert.equal(duplicate.status, 409);
  assert.equal(duplicate.type, "invalid_request_error");
  assert.equal(duplicate.code, "duplicate_order");
  assert.match(duplicate.requestId, /^req_/);

  const invalid = await paymux.createPayment({ merchant_order_no: `node-${run}-4`, amount: 0 }).catch((e) => e);
  assert.deepEqual([invalid.status, invalid.type, invalid.code, invalid.param], [400, "invalid_request_error", "amount_too_small", "amount"]);

  const missing = await paymux.getPayment("pay_doesnotexist").catch((e) => e);
  assert.deepEqual([missing.status, missing.code], [404, "resource_missing"]);

  const wrongSecret = new Paymux({ baseUrl: PAYMUX_URL, merchantId: PAYMUX_MERCHANT_ID, secret: "not-the-secret" });
  const unauthenticated = await wrongSecret.getBalance().catch((e) => e);
  assert.deepEqual([unauthenticated.status, unauthenticated.type, unauthenticated.code],
    [401, "authentication_error", "invalid_signature"]);
});

test("a payment never paid can be closed; the same key with another body is refused", { skip }, async () => {
  const payment = await paymux.createPayment({ merchant_order_no: `node-${run}-close`, amount: 100 }, { idempotencyKey: `close-${run}` });
  const closed = await paymux.closePayment(payment.id);
  assert.equal(closed.status, "closed");
  const reused = await paymux.createPayment({ merchant_order_no: `node-${run}-other`, amount: 100 }, { idempotencyKey: `close-${run}` })
    .catch((e) => e);
  assert.deepEqual([reused.status, reused.type, reused.code], [409, "idempotency_error", "idempotency_key_reused"]);
});

test("a query the SDK percent-encodes is signed as the gateway reads it", { skip }, async () => {
  const order = `node-${run}-a.b:c_d`;
  const payment = await paymux.createPayment({ merchant_order_no: order, amount: 100, subject: "咖啡 ☕ & co" });
  const found = await paymux.findPayment(order);
  assert.deepEqual(found.data.map((p) => p.id), [payment.id]);
  assert.equal((await paymux.getPayment(payment.id)).subject, "咖啡 ☕ & co");
});

test("an answer lost on the way is retried with the same key: the gateway makes one payment", { skip }, async () => {
  // Between the SDK and the gateway, a proxy that passes the first request on and then drops the
  // connection instead of answering: the gateway acted, the SDK saw a network error.
  let forwarded = 0;
  const proxy = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const headers = Object.fromEntries(["authorization", "content-type", "idempotency-key"]
      .filter((name) => req.headers[name] !== undefined).map((name) => [name, req.headers[name]]));
    const answer = await fetch(new URL(req.url, PAYMUX_URL), {
      method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined,
    });
    const body = Buffer.from(await answer.arrayBuffer());
    if (++forwarded === 1) { req.socket.destroy(); return; }
    res.writeHead(answer.status, { "Content-Type": "application/json" }).end(body);
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  try {
    const retries = [];
    const viaProxy = new Paymux({
      baseUrl: `http://127.0.0.1:${proxy.address().port}`, merchantId: PAYMUX_MERCHANT_ID,
      secret: PAYMUX_MERCHANT_SECRET, retry: { baseDelayMs: 10 }, onRetry: (info) => retries.push(info.error.code),
    });
    const order = `node-${run}-lost`;
    const payment = await viaProxy.createPayment({ merchant_order_no: order, amount: 700 });
    assert.deepEqual(retries, ["network_error"]);
    assert.equal(forwarded, 2);
    const found = await paymux.findPayment(order);
    assert.deepEqual(found.data.map((p) => p.id), [payment.id]);
  } finally {
    proxy.closeAllConnections();
    proxy.close();
  }
});
