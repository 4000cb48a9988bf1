/**
 * Every failure the SDK reports is a PaymuxError with a `type` and a `code` to act on:
 *
 * - PaymuxAPIError: the gateway answered with an error ({"error": {type, code, message, param}}),
 *   with the HTTP `status` and the `requestId` (the X-Request-Id header, in paymux's logs too).
 * - PaymuxConnectionError: no answer (connection refused or reset, DNS, timeout) after the retries.
 * - PaymuxSignatureError: an event whose Paymux-Signature is missing, malformed, stale or forged.
 */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "idempotency_error"
  | "channel_error"
  | "rate_limit_error"
  | "api_error"
  | "connection_error"
  | "signature_verification_error"
  // any other type a newer gateway may send
  | (string & {});

export interface PaymuxErrorFields {
  type: ErrorType;
  code: string;
  message: string;
  status?: number | undefined;
  requestId?: string | undefined;
  param?: string | null | undefined;
  cause?: unknown;
}

export class PaymuxError extends Error {
  readonly type: ErrorType;
  readonly code: string;
  /** The HTTP status, when the gateway answered. */
  readonly status: number | undefined;
  /** The gateway's X-Request-Id for the (last) attempt, when it answered. */
  readonly requestId: string | undefined;
  /** The request parameter at fault, when the gateway names one. */
  readonly param: string | null | undefined;

  constructor(fields: PaymuxErrorFields) {
    super(fields.message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = new.target.name;
    this.type = fields.type;
    this.code = fields.code;
    this.status = fields.status;
    this.requestId = fields.requestId;
    this.param = fields.param;
  }
}

/** The gateway answered with a non-2xx status. */
export class PaymuxAPIError extends PaymuxError {
  /** The decoded answer body (the JSON object, or the text when it was not JSON). */
  readonly body: unknown;

  constructor(fields: PaymuxErrorFields & { status: number; body?: unknown }) {
    super(fields);
    this.body = fields.body;
  }
}

/** No answer from the gateway: network error or timeout, after every retry. */
export class PaymuxConnectionError extends PaymuxError {
  constructor(code: "network_error" | "timeout", message: string, cause?: unknown) {
    super({ type: "connection_error", code, message, cause });
  }
}

export type SignatureErrorCode =
  | "missing_signature"
  | "malformed_signature"
  | "timestamp_out_of_tolerance"
  | "signature_mismatch"
  | "invalid_payload";

/** An event that must not be trusted. Answer its sender 400 and do nothing with it. */
export class PaymuxSignatureError extends PaymuxError {
  declare readonly code: SignatureErrorCode;

  constructor(code: SignatureErrorCode, message: string) {
    super({ type: "signature_verification_error", code, message });
  }
}
