/** Bytes as a signature sees them: text is UTF-8. (A Buffer is a Uint8Array.) */
export type Bytes = string | Uint8Array;

/** @internal */
export function toBuffer(body: Bytes | null | undefined): Buffer {
  if (body === null || body === undefined) return Buffer.alloc(0);
  return typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
