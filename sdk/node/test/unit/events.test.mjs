// verifyEvent: genuine events pass; forged, stale, future, malformed or unsigned ones are refused
// with a PaymuxSignatureError naming why.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { PaymuxError, PaymuxSignatureError, signEvent, verifyEvent } from "../../dist/index.js";

const vectors = JSON.parse(readFileSync(new URL("../vectors/signing.json", import.meta.url), "utf8"));
const [delivered, unicode] = vectors.events;
const at = { now: delivered.timestamp };

function refused(fn, code) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof PaymuxSignatureError && err instanceof PaymuxError);
    assert.equal(err.type, "signature_verification_error");
    assert.equal(err.code, code);
    return true;
  });
}

test("an event signed by the gateway's code verifies, as a Buffer or as text, and comes back parsed", () => {
  for (const body of [Buffer.from(delivered.body), delivered.body]) {
    const event = verifyEvent(body, delivered.header, delivered.secret, at);
    assert.equal(event.id, "evt_1");
    assert.equal(event.type, "payment.succeeded");
    assert.equal(event.data.object.id, "pay_1");
  }
  assert.equal(verifyEvent(Buffer.from(unicode.body), unicode.header, unicode.secret, { now: unicode.timestamp })
    .data.object.subject, "咖啡 ☕");
});

test("Node's header array with one value is accepted", () => {
  assert.equal(verifyEvent(delivered.body, [delivered.header], delivered.secret, at).id, "evt_1");
});

test("a changed body is refused", () => {
  refused(() => verifyEvent(delivered.body.replace('"amount":100', '"amount":900'), delivered.header, delivered.secret, at),
    "signature_mismatch");
  refused(() => verifyEvent(`${delivered.body} `, delivered.header, delivered.secret, at), "signature_mismatch");
});

test("another secret's signature is refused", () => {
  refused(() => verifyEvent(delivered.body, delivered.header, "not-the-secret", at), "signature_mismatch");
  const forged = signEvent("attacker", delivered.body, delivered.timestamp);
  refused(() => verifyEvent(delivered.body, forged, delivered.secret, at), "signature_mismatch");
});

test("a signature moved to another timestamp is refused", () => {
  const moved = delivered.header.replace(`t=${delivered.timestamp}`, `t=${delivered.timestamp + 1}`);
  refused(() => verifyEvent(delivered.body, moved, delivered.secret, at), "signature_mismatch");
});

test("a stale or future event is refused even with a good signature; the tolerance is an option", () => {
  refused(() => verifyEvent(delivered.body, delivered.header, delivered.secret, { now: delivered.timestamp + 301 }),
    "timestamp_out_of_tolerance");
  refused(() => verifyEvent(delivered.body, delivered.header, delivered.secret, { now: delivered.timestamp - 301 }),
    "timestamp_out_of_tolerance");
  assert.equal(verifyEvent(delivered.body, delivered.header, delivered.secret, { now: delivered.timestamp + 300 }).id, "evt_1");
  refused(() => verifyEvent(delivered.body, delivered.header, delivered.secret,
    { now: delivered.timestamp + 60, toleranceSeconds: 30 }), "timestamp_out_of_tolerance");
  // without `now`, the clock decides: the vector is long past
  refused(() => verifyEvent(delivered.body, delivered.header, delivered.secret), "timestamp_out_of_tolerance");
  const fresh = Math.floor(Date.now() / 1000);
  assert.equal(verifyEvent(delivered.body, signEvent(delivered.secret, delivered.body, fresh), delivered.secret).id, "evt_1");
});

test("a missing or malformed header is refused", () => {
  for (const header of [undefined, null, "", []]) {
    refused(() => verifyEvent(delivered.body, header, delivered.secret, at), "missing_signature");
  }
  const v1 = delivered.header.split("v1=")[1];
  for (const header of [`v1=${v1}`, `t=${delivered.timestamp}`, `t=abc,v1=${v1}`, `t=-1,v1=${v1}`,
                        `t=1234567890123,v1=${v1}`, "garbage"]) {
    refused(() => verifyEvent(delivered.body, header, delivered.secret, at), "malformed_signature");
  }
  refused(() => verifyEvent(delivered.body, [delivered.header, delivered.header], delivered.secret, at), "malformed_signature");
  for (const bad of [v1.toUpperCase(), v1.slice(2), `${v1}00`, "zz"]) {
    refused(() => verifyEvent(delivered.body, `t=${delivered.timestamp},v1=${bad}`, delivered.secret, at), "signature_mismatch");
  }
});

test("a signed body that is not JSON is refused", () => {
  const header = signEvent("s", "not json", 100);
  refused(() => verifyEvent("not json", header, "s", { now: 100 }), "invalid_payload");
});

test("a parsed object instead of the raw body is a programming error, said so", () => {
  assert.throws(() => verifyEvent(JSON.parse(delivered.body), delivered.header, delivered.secret, at), TypeError);
});
