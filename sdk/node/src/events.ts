/**
 * Checking what paymux POSTs to your notify_url: the Paymux-Signature header over the RAW body
 * (the bytes received, before any JSON parsing), and the signature's age.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

import { PaymuxSignatureError } from "./errors.js";
import type { components } from "./generated/api.js";
import { type Bytes, toBuffer } from "./bytes.js";
import { EVENT_SIGNATURE_HEADER } from "./signing.js";

export { EVENT_SIGNATURE_HEADER };

type Schemas = components["schemas"];

/** What an event carries in data.object, by the first part of its type: a payment.* event a Payment, … */
export interface EventObjects {
  payment: Schemas["Payment"];
  refund: Schemas["Refund"];
  payout: Schemas["Payout"];
  split: Schemas["Split"];
  split_release: Schemas["SplitRelease"];
}

/**
 * An event as delivered (payment.succeeded, refund.succeeded, …); deduplicate on `id`, delivery is
 * at least once. Comparing `type` narrows `data.object`: after `event.type === "refund.succeeded"`,
 * it is a Refund.
 */
export type PaymuxEvent = {
  [K in keyof EventObjects]: {
    id: string;
    object: "event";
    type: `${K}.${string}`;
    created_at: string;
    data: { object: EventObjects[K] };
  };
}[keyof EventObjects];

export interface VerifyOptions {
  /** How far the signature's timestamp may be from now, in seconds (default 300). */
  toleranceSeconds?: number;
  /** Now, in Unix seconds (for tests). */
  now?: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Verify a delivered event and return it parsed. Throws PaymuxSignatureError (code
 * missing_signature, malformed_signature, timestamp_out_of_tolerance, signature_mismatch or
 * invalid_payload) when it must not be trusted.
 *
 * @param rawBody the request body exactly as received (a Buffer, or a string of it); never a
 *                re-serialised object: a different byte breaks the signature.
 * @param header  the Paymux-Signature header (Node gives it as req.headers["paymux-signature"]).
 */
export function verifyEvent(rawBody: Bytes, header: string | string[] | null | undefined, secret: string,
                            options: VerifyOptions = {}): PaymuxEvent {
  if (typeof rawBody !== "string" && !(rawBody instanceof Uint8Array)) {
    throw new TypeError("verifyEvent needs the raw body (a Buffer or string), not a parsed object");
  }
  if (header === undefined || header === null || header === "" || (Array.isArray(header) && header.length === 0)) {
    throw new PaymuxSignatureError("missing_signature", `The ${EVENT_SIGNATURE_HEADER} header is missing`);
  }
  if (Array.isArray(header)) {
    if (header.length > 1) {
      throw new PaymuxSignatureError("malformed_signature", `More than one ${EVENT_SIGNATURE_HEADER} header`);
    }
    header = header[0] as string;
  }
  const parts = new Map<string, string>();
  for (const part of header.split(",")) {
    const at = part.indexOf("=");
    if (at > 0) parts.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const t = parts.get("t");
  const v1 = parts.get("v1");
  if (t === undefined || v1 === undefined || !/^[0-9]{1,12}$/.test(t)) {
    throw new PaymuxSignatureError("malformed_signature", `${EVENT_SIGNATURE_HEADER} must be t=<unix seconds>,v1=<hex>`);
  }
  const tolerance = options.toleranceSeconds ?? 300;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(t)) > tolerance) {
    throw new PaymuxSignatureError("timestamp_out_of_tolerance",
      `The event was signed ${now - Number(t)} s from now, more than ${tolerance} s: stale or replayed`);
  }
  const body = toBuffer(rawBody);
  const expected = createHmac("sha256", secret).update(Buffer.concat([Buffer.from(`${t}.`), body])).digest();
  const given = HEX64.test(v1) ? Buffer.from(v1, "hex") : null;
  if (given === null || !timingSafeEqual(expected, given)) {
    throw new PaymuxSignatureError("signature_mismatch", "The signature does not match the body");
  }
  try {
    return JSON.parse(body.toString("utf8")) as PaymuxEvent;
  } catch {
    throw new PaymuxSignatureError("invalid_payload", "The signed body is not JSON");
  }
}
