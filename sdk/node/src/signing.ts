/**
 * The two signatures of paymux, both HMAC-SHA256 keyed by the merchant's secret (the same as
 * gateway/signing.py on the server).
 *
 * A merchant request (scheme PAYMUX-HMAC-SHA256):
 *   signature = hex(HMAC-SHA256(secret, "METHOD\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\nBODY\n"))
 *   Authorization: PAYMUX-HMAC-SHA256 merchant_id="…",timestamp="…",nonce="…",signature="…"
 *
 * An event paymux POSTs to a merchant's notify_url:
 *   Paymux-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 */
import { createHmac, randomBytes } from "node:crypto";


export const SCHEME = "PAYMUX-HMAC-SHA256";
export const EVENT_SIGNATURE_HEADER = "Paymux-Signature";

import { type Bytes, toBuffer } from "./bytes.js";

export type { Bytes };

/** The bytes a request signature covers. `pathAndQuery` is exactly what goes on the request line. */
export function canonicalString(method: string, pathAndQuery: string, timestamp: string, nonce: string,
                                body: Bytes | null | undefined): Uint8Array {
  const head = `${method.toUpperCase()}\n${pathAndQuery}\n${timestamp}\n${nonce}\n`;
  return Buffer.concat([Buffer.from(head, "utf8"), toBuffer(body), Buffer.from("\n")]);
}

/** hex HMAC-SHA256 of the canonical string with the merchant's secret. */
export function sign(secret: string, method: string, pathAndQuery: string, timestamp: string, nonce: string,
                     body: Bytes | null | undefined): string {
  return createHmac("sha256", secret).update(canonicalString(method, pathAndQuery, timestamp, nonce, body)).digest("hex");
}

/** A fresh nonce: 32 hex characters (the gateway takes 8 to 128, each once per merchant). */
export function newNonce(): string {
  return randomBytes(16).toString("hex");
}

export interface AuthorizationInput {
  merchantId: string;
  secret: string;
  method: string;
  pathAndQuery: string;
  body?: Bytes | null;
  /** Unix seconds; now when left out. The gateway refuses a timestamp far from its clock. */
  timestamp?: number;
  /** Never reuse one: the gateway refuses a replayed nonce. */
  nonce?: string;
}

/** The Authorization header value for one request. */
export function authorizationHeader(input: AuthorizationInput): string {
  const timestamp = String(input.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = input.nonce ?? newNonce();
  const signature = sign(input.secret, input.method, input.pathAndQuery, timestamp, nonce, input.body);
  return `${SCHEME} merchant_id="${input.merchantId}",timestamp="${timestamp}",nonce="${nonce}",signature="${signature}"`;
}

/** The Paymux-Signature header paymux sends with an event (for testing your own endpoint). */
export function signEvent(secret: string, body: Bytes, timestamp: number): string {
  const mac = createHmac("sha256", secret).update(Buffer.concat([Buffer.from(`${timestamp}.`), toBuffer(body)])).digest("hex");
  return `t=${timestamp},v1=${mac}`;
}
