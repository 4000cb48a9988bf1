// Retries against a local HTTP server that answers from a script: transient failures are retried,
// bounded, with the same Idempotency-Key and a fresh signature each time; a 4xx never is.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { after, before, beforeEach, test } from "node:test";

import {
  DEFAULT_RETRY, Paymux, PaymuxAPIError, PaymuxConnectionError, PaymuxError, backoffMs, parseRetryAfter, sign,
} from "../../dist/index.js";

const SECRET = "sk_test_retry";
let server;
let baseUrl;
let script = [];        // what to do with each request, in turn: a function (req, res, body) => void
let seen = [];          // every request received: { method, url, headers, body }

before(async () => {
  server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method, url: req.url, headers: req.headers, body });
    const step = script.shift() ?? json(500, { error: { type: "api_error", code: "script_ended", message: "no step" } });
    step(req, res, body);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});

after(() => { server.closeAllConnections(); server.close(); });
beforeEach(() => { script = []; seen = []; });

function json(status, data, headers = {}) {
  return (req, res) => {
    res.writeHead(status, { "Content-Type": "application/json", "X-Request-Id": `req_${seen.length}`, ...headers });
    res.end(JSON.stringify(data));
  };
}
const ok = (data = { id: "pay_1", object: "payment", status: "processing" }) => json(201, data);
const unavailable = json(503, { error: { type: "api_error", code: "unavailable", message: "try later" } });
const dropConnection = (req) => req.socket.destroy();
const neverAnswer = () => {};

function client(options = {}) {
  return new Paymux({
    baseUrl, merchantId: "mch_retry", secret: SECRET, timeoutMs: 2000,
    retry: { baseDelayMs: 1, maxDelayMs: 5 }, ...options,
  });
}

function signed(request) {
  const params = Object.fromEntries([...request.headers.authorization.matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  assert.equal(sign(SECRET, request.method, request.url, params.timestamp, params.nonce, request.body), params.signature,
    "each attempt carries a valid signature over what was sent");
  return params;
}

async function rejected(promise) {
  try { await promise; } catch (err) { return err; }
  assert.fail("the request should have failed");
}

test("5xx answers are retried with the same body and idempotency key and a fresh nonce each time", async () => {
  script = [unavailable, json(500, { error: { type: "api_error", code: "internal", message: "boom" } }), ok()];
  const retries = [];
  const payment = await client({ onRetry: (info) => retries.push(info) })
    .createPayment({ merchant_order_no: "o-1", amount: 100 });
  assert.equal(payment.id, "pay_1");
  assert.equal(seen.length, 3);
  const keys = new Set(seen.map((r) => r.headers["idempotency-key"]));
  assert.equal(keys.size, 1);
  assert.match([...keys][0], /^[0-9a-f-]{36}$/);   // a POST without a key got one
  assert.equal(new Set(seen.map((r) => r.body.toString())).size, 1);
  assert.deepEqual(JSON.parse(seen[0].body), { merchant_order_no: "o-1", amount: 100 });
  assert.equal(new Set(seen.map((r) => signed(r).nonce)).size, 3);
  assert.deepEqual(retries.map((r) => [r.retry, r.error.code, r.error.status]), [[1, "unavailable", 503], [2, "internal", 500]]);
  assert.equal(retries[0].idempotencyKey, [...keys][0]);
});

test("the caller's idempotency key is the one sent, on every attempt", async () => {
  script = [unavailable, ok()];
  await client().createRefund("pay_1", { merchant_refund_no: "r-1", amount: 5 }, { idempotencyKey: "refund-r-1" });
  assert.deepEqual(seen.map((r) => [r.method, r.url, r.headers["idempotency-key"]]),
    [["POST", "/v1/payments/pay_1/refunds", "refund-r-1"], ["POST", "/v1/payments/pay_1/refunds", "refund-r-1"]]);
});

test("retries are bounded: after maxRetries the last error is thrown, typed", async () => {
  script = [unavailable, unavailable, unavailable, unavailable, ok()];
  const err = await rejected(client({ retry: { maxRetries: 2, baseDelayMs: 1 } }).getPayment("pay_1"));
  assert.equal(seen.length, 3);
  assert.ok(err instanceof PaymuxAPIError && err instanceof PaymuxError);
  assert.deepEqual([err.status, err.type, err.code, err.message, err.requestId], [503, "api_error", "unavailable", "try later", "req_3"]);
});

test("maxRetries 0 makes one attempt", async () => {
  script = [unavailable, ok()];
  await rejected(client({ retry: { maxRetries: 0 } }).getBalance());
  assert.equal(seen.length, 1);
});

test("a 4xx is never retried, and its error carries code, type, message, param, status and request id", async () => {
  for (const [status, type, code] of [[400, "invalid_request_error", "parameter_missing"],
                                      [401, "authentication_error", "invalid_signature"],
                                      [404, "invalid_request_error", "resource_missing"],
                                      [409, "idempotency_error", "idempotency_key_reused"]]) {
    script = [json(status, { error: { type, code, message: `m-${code}`, param: "amount" } }), ok()];
    seen = [];
    const err = await rejected(client().createPayment({ merchant_order_no: "o-2", amount: 1 }));
    assert.equal(seen.length, 1, `${status} is not retried`);
    assert.ok(err instanceof PaymuxAPIError);
    assert.deepEqual([err.status, err.type, err.code, err.message, err.param, err.requestId],
      [status, type, code, `m-${code}`, "amount", "req_1"]);
    assert.deepEqual(err.body.error.code, code);
  }
});

test("a 429 is retried after the Retry-After it gives", async () => {
  const rateLimited = json(429, { error: { type: "api_error", code: "rate_limited", message: "slow down" } }, { "Retry-After": "1" });
  script = [rateLimited, ok()];
  const retries = [];
  await client({ onRetry: (info) => retries.push(info) }).createPayment({ merchant_order_no: "o-3", amount: 1 });
  assert.equal(seen.length, 2);
  assert.equal(retries[0].delayMs, 1000);
  assert.equal(seen[0].headers["idempotency-key"], seen[1].headers["idempotency-key"]);
});

test("a Retry-After longer than maxRetryAfterMs is not waited for", async () => {
  script = [json(429, { error: { type: "api_error", code: "rate_limited", message: "later" } }, { "Retry-After": "3600" }), ok()];
  const err = await rejected(client().getBalance());
  assert.equal(seen.length, 1);
  assert.equal(err.status, 429);
});

test("a 429 or 5xx without a paymux error body is still typed", async () => {
  script = [(req, res) => { res.writeHead(502, { "Content-Type": "text/html" }); res.end("<h1>Bad Gateway</h1>"); },
            (req, res) => { res.writeHead(429); res.end(); }];
  const err = await rejected(client({ retry: { maxRetries: 1, baseDelayMs: 1 } }).getBalance());
  assert.equal(seen.length, 2);
  assert.deepEqual([err.status, err.type, err.code], [429, "rate_limit_error", "rate_limited"]);
  script = [(req, res) => { res.writeHead(502, { "Content-Type": "text/html" }); res.end("<h1>Bad Gateway</h1>"); }];
  const proxy = await rejected(client({ retry: { maxRetries: 0 } }).getBalance());
  assert.deepEqual([proxy.status, proxy.type, proxy.code], [502, "api_error", "unexpected_response"]);
  assert.match(proxy.message, /Bad Gateway/);
});

test("a 2xx whose body is not JSON is a typed error, not a SyntaxError", async () => {
  script = [(req, res) => { res.writeHead(200, { "Content-Type": "text/html", "X-Request-Id": "req_html" }); res.end("<html>"); }];
  const err = await rejected(client().getBalance());
  assert.ok(err instanceof PaymuxAPIError);
  assert.deepEqual([err.status, err.type, err.code, err.requestId, err.body], [200, "api_error", "unexpected_response", "req_html", "<html>"]);
});

test("a dropped connection is retried with the same key, and after the last retry is a PaymuxConnectionError", async () => {
  script = [dropConnection, ok()];
  await client().createPayment({ merchant_order_no: "o-4", amount: 1 });
  assert.equal(seen.length, 2);
  assert.equal(seen[0].headers["idempotency-key"], seen[1].headers["idempotency-key"]);

  script = [dropConnection, dropConnection, dropConnection];
  seen = [];
  const err = await rejected(client().getBalance());
  assert.equal(seen.length, 3);
  assert.ok(err instanceof PaymuxConnectionError && err instanceof PaymuxError);
  assert.deepEqual([err.type, err.code, err.status, err.requestId], ["connection_error", "network_error", undefined, undefined]);
});

test("a refused connection is a network_error after the retries", async () => {
  const closed = createServer();
  closed.listen(0, "127.0.0.1");
  await once(closed, "listening");
  const port = closed.address().port;
  closed.close();
  await once(closed, "close");
  const retries = [];
  const err = await rejected(new Paymux({ baseUrl: `http://127.0.0.1:${port}`, merchantId: "m", secret: "s",
    retry: { baseDelayMs: 1 }, onRetry: (info) => retries.push(info) }).getBalance());
  assert.equal(err.code, "network_error");
  assert.equal(retries.length, DEFAULT_RETRY.maxRetries);
});

test("an attempt without an answer in timeoutMs is retried, then a timeout error", async () => {
  script = [neverAnswer, ok()];
  await client({ timeoutMs: 300 }).createPayment({ merchant_order_no: "o-5", amount: 1 });
  assert.equal(seen.length, 2);
  assert.equal(seen[0].headers["idempotency-key"], seen[1].headers["idempotency-key"]);

  script = [neverAnswer, neverAnswer];
  seen = [];
  const err = await rejected(client({ timeoutMs: 300, retry: { maxRetries: 1, baseDelayMs: 1 } }).getBalance());
  assert.equal(seen.length, 2);
  assert.deepEqual([err.type, err.code], ["connection_error", "timeout"]);
});

test("a request the caller aborts is not retried", async () => {
  script = [neverAnswer, ok()];
  const controller = new AbortController();
  const pending = client().getBalance({ signal: controller.signal });
  while (seen.length === 0) await new Promise((resolve) => setImmediate(resolve));
  controller.abort();
  const err = await rejected(pending);
  assert.equal(err.name, "AbortError");
  assert.equal(seen.length, 1);
});

test("a GET sends no idempotency key; queries are signed as sent", async () => {
  script = [json(200, { id: "pay_1" })];
  await client().getPayment("pay_1", { sync: true });
  assert.equal(seen[0].headers["idempotency-key"], undefined);
  assert.equal(seen[0].url, "/v1/payments/pay_1?sync=true");
  signed(seen[0]);
});

test("a base URL with a path keeps it, and the signature covers it", async () => {
  script = [json(200, { data: [] })];
  await new Paymux({ baseUrl: `${baseUrl}/paymux`, merchantId: "m", secret: SECRET }).listEvents({ limit: 5 });
  assert.equal(seen[0].url, "/paymux/v1/events?limit=5");
  signed(seen[0]);
});

test("Retry-After reads seconds and HTTP dates; backoff doubles, is jittered and capped", () => {
  assert.equal(parseRetryAfter("7"), 7000);
  assert.equal(parseRetryAfter(new Date(10_000 + 5000).toUTCString(), 10_000), 5000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const policy = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffMs(n, policy, () => 1)), [100, 200, 400, 800, 1000]);
  assert.deepEqual([1, 2, 3].map((n) => backoffMs(n, policy, () => 0)), [50, 100, 200]);
});
