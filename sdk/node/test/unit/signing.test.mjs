// Request and event signatures against vectors computed by the gateway's own gateway/signing.py
// (tests/sdk/test_signing_vectors.py recomputes the same file in Python).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { authorizationHeader, canonicalString, newNonce, sign, signEvent } from "../../dist/index.js";

const vectors = JSON.parse(readFileSync(new URL("../vectors/signing.json", import.meta.url), "utf8"));

for (const v of vectors.requests) {
  test(`request signature: ${v.name}`, () => {
    assert.equal(sign(v.secret, v.method, v.path_and_query, String(v.timestamp), v.nonce, v.body), v.signature);
    // bytes and text sign alike
    assert.equal(sign(v.secret, v.method, v.path_and_query, String(v.timestamp), v.nonce, Buffer.from(v.body)), v.signature);
    assert.equal(authorizationHeader({
      merchantId: v.merchant_id, secret: v.secret, method: v.method, pathAndQuery: v.path_and_query,
      body: v.body, timestamp: v.timestamp, nonce: v.nonce,
    }), v.authorization);
  });
}

for (const v of vectors.events) {
  test(`event signature: ${v.name}`, () => {
    assert.equal(signEvent(v.secret, v.body, v.timestamp), v.header);
  });
}

test("the canonical string is METHOD, path and query, timestamp, nonce and body, each ended by a newline", () => {
  assert.equal(canonicalString("get", "/v1/x?a=1", "5", "nonce123", "{}").toString(), "GET\n/v1/x?a=1\n5\nnonce123\n{}\n");
  assert.equal(canonicalString("POST", "/v1/x", "5", "nonce123", undefined).toString(), "POST\n/v1/x\n5\nnonce123\n\n");
});

test("any change to the signed parts changes the signature", () => {
  const base = ["secret", "POST", "/v1/payments", "100", "nonce123", "{}"];
  const signature = sign(...base);
  for (let i = 0; i < base.length; i++) {
    const changed = [...base];
    changed[i] = `${changed[i]}x`;
    assert.notEqual(sign(...changed), signature, `changing argument ${i}`);
  }
});

test("a header without a nonce gets a fresh one each time, within the gateway's 8 to 128 characters", () => {
  const input = { merchantId: "mch_1", secret: "s", method: "GET", pathAndQuery: "/v1/balance", timestamp: 1 };
  const nonces = new Set([1, 2, 3].map(() => /nonce="([^"]+)"/.exec(authorizationHeader(input))[1]));
  assert.equal(nonces.size, 3);
  for (const nonce of nonces) assert.match(nonce, /^[0-9a-f]{32}$/);
  assert.match(newNonce(), /^[0-9a-f]{32}$/);
});
