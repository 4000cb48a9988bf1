// The README's `js` blocks, run as pasted against a running gateway (the same environment as
// gateway.test.mjs). Blocks marked `<!-- example: NAME -->` are joined in order into NAME.mjs in
// PAYMUX_EXAMPLES_DIR: an app that installed the packed SDK as the README says (tests/sdk makes
// one), or by default .examples/ inside the package, where `import … from "@paymux/node"` resolves
// to the package itself.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

import { Paymux, signEvent } from "../../dist/index.js";

const { PAYMUX_URL, PAYMUX_MERCHANT_ID, PAYMUX_MERCHANT_SECRET } = process.env;
const skip = PAYMUX_URL && PAYMUX_MERCHANT_ID && PAYMUX_MERCHANT_SECRET ? false
  : "needs PAYMUX_URL, PAYMUX_MERCHANT_ID and PAYMUX_MERCHANT_SECRET (a running gateway and one of its merchants)";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const dir = process.env.PAYMUX_EXAMPLES_DIR ? pathToFileURL(`${process.env.PAYMUX_EXAMPLES_DIR}/`)
  : new URL("../../.examples/", import.meta.url);
const examples = {};
for (const [, name, code] of readme.matchAll(/<!-- example: (\w+) -->\s*```js\n([\s\S]*?)```/g)) {
  examples[name] = `${examples[name] ?? ""}${code}\n`;
}

function file(name) {
  assert.ok(examples[name], `README has blocks marked <!-- example: ${name} -->`);
  mkdirSync(dir, { recursive: true });
  const path = new URL(`${name}.mjs`, dir);
  writeFileSync(path, examples[name]);
  return fileURLToPath(path);
}

const run = (name) => promisify(execFile)(process.execPath, [file(name)], { env: process.env, timeout: 60000 });

test("every README js block belongs to an example this file runs", () => {
  const blocks = readme.match(/```js\n/g).length;
  const marked = readme.match(/<!-- example: \w+ -->\s*```js\n/g).length;
  assert.equal(marked, blocks);
  assert.deepEqual(Object.keys(examples).sort(), ["errors", "events", "retries", "tour"]);
});

test("README tour: create, pay in the sandbox, refund", { skip }, async () => {
  const { stdout, stderr } = await run("tour");
  assert.equal(stderr, "");
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 4, stdout);
  assert.match(lines[0], /^pay_\w+ processing$/);
  assert.equal(lines[1], "succeeded");
  assert.match(lines[2], /^re_\w+ processing$/);
  assert.equal(lines[3], "succeeded 500");
});

test("README errors: a typed error with the request id", { skip }, async () => {
  const { stdout } = await run("errors");
  assert.match(stdout, /^400 invalid_request_error amount_too_small amount req_\w+\n$/);
});

test("README retries: the configured client makes a call", { skip }, async () => {
  const { stdout, stderr } = await run("retries");
  assert.equal(stdout, "balance\n");
  assert.equal(stderr, "");
});

test("README events: the endpoint takes the gateway's event and refuses forged ones", { skip }, async () => {
  const probe = createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  const port = probe.address().port;
  probe.close();
  await once(probe, "close");
  const endpoint = spawn(process.execPath, [file("events")], { env: { ...process.env, PORT: String(port) } });
  let stdout = "";
  endpoint.stdout.on("data", (chunk) => { stdout += chunk; });
  try {
    const url = `http://127.0.0.1:${port}/paymux/events`;
    for (let i = 0; ; i++) {   // until it listens
      try { await fetch(url, { method: "POST" }); break; } catch (err) { if (i > 100) throw err; }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const paymux = new Paymux({ baseUrl: PAYMUX_URL, merchantId: PAYMUX_MERCHANT_ID, secret: PAYMUX_MERCHANT_SECRET });
    const payment = await paymux.createPayment({ merchant_order_no: `readme-${Date.now()}`, amount: 300, notify_url: url });
    await fetch(payment.action.url, { method: "POST", body: new URLSearchParams({ outcome: "success" }) });
    for (let i = 0; !stdout.includes(`payment.succeeded ${payment.id}\n`); i++) {
      assert.ok(i < 200, `no event in 20 s: ${stdout}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const body = JSON.stringify({ id: "evt_forged", type: "payment.succeeded", data: { object: { id: payment.id } } });
    const now = Math.floor(Date.now() / 1000);
    const answers = [];
    for (const headers of [{}, { "Paymux-Signature": signEvent("not-the-secret", body, now) },
                           { "Paymux-Signature": signEvent(PAYMUX_MERCHANT_SECRET, body, now - 3600) }]) {
      const response = await fetch(url, { method: "POST", body, headers });
      answers.push(`${response.status} ${await response.text()}`);
    }
    assert.deepEqual(answers, ["400 missing_signature", "400 signature_mismatch", "400 timestamp_out_of_tolerance"]);
    assert.equal(stdout, `payment.succeeded ${payment.id}\n`);   // nothing refused was handled
  } finally {
    endpoint.kill();
  }
});
