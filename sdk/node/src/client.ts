/**
 * The paymux merchant API client: every request signed, transient failures retried with the same
 * Idempotency-Key, every error a PaymuxError with a type and a code.
 *
 *   const paymux = new Paymux({ baseUrl: "http://127.0.0.1:8000", merchantId, secret });
 *   const payment = await paymux.createPayment({ merchant_order_no: "o-1", amount: 100, subject: "Coffee" });
 */
import { randomUUID } from "node:crypto";

import { PaymuxAPIError, PaymuxConnectionError, PaymuxError } from "./errors.js";
import type { components, operations } from "./generated/api.js";
import { DEFAULT_RETRY, type RetryPolicy, backoffMs, isRetryableStatus, parseRetryAfter } from "./retry.js";
import { authorizationHeader } from "./signing.js";

type Schemas = components["schemas"];
export type Payment = Schemas["Payment"];
export type PaymentList = Schemas["PaymentList"];
export type Refund = Schemas["Refund"];
export type Payout = Schemas["Payout"];
export type Balance = Schemas["Balance"];
export type EventList = Schemas["EventList"];
export type CreatePaymentParams = Schemas["CreatePaymentBody"];
export type CreateRefundParams = Schemas["CreateRefundBody"];
export type CreatePayoutParams = Schemas["CreatePayoutBody"];
export type ListEventsParams = NonNullable<operations["listEvents"]["parameters"]["query"]>;

export interface PaymuxOptions {
  /** Where the gateway listens, e.g. "https://pay.example.com" (a path prefix is kept). */
  baseUrl: string;
  merchantId: string;
  /** The merchant's secret: it signs requests and verifies events. Keep it out of source code. */
  secret: string;
  /** Per attempt, in ms (default 30000). A timed-out attempt is retried like a network error. */
  timeoutMs?: number;
  /** Retries of transient failures (network errors, timeouts, 5xx, 429). */
  retry?: Partial<RetryPolicy>;
  /** Called before each retry with what failed and how long the SDK waits (for your logs). */
  onRetry?: (info: RetryInfo) => void;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

export interface RetryInfo {
  method: string;
  path: string;
  /** 1 for the first retry. */
  retry: number;
  delayMs: number;
  error: PaymuxError;
  idempotencyKey: string | undefined;
}

export interface RequestOptions {
  /** Sent as Idempotency-Key. A POST without one gets a random key, kept across its retries. */
  idempotencyKey?: string;
  /** Cancels the request and its retries. */
  signal?: AbortSignal;
}

export interface RawRequest extends RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve, reject) => {
  if (signal?.aborted) return reject(signal.reason);
  const timer = setTimeout(() => { signal?.removeEventListener("abort", onAbort); resolve(); }, ms);
  const onAbort = () => { clearTimeout(timer); reject(signal?.reason); };
  signal?.addEventListener("abort", onAbort, { once: true });
});

export class Paymux {
  readonly merchantId: string;
  readonly #secret: string;
  readonly #base: URL;
  readonly #timeoutMs: number;
  readonly #retry: RetryPolicy;
  readonly #onRetry: ((info: RetryInfo) => void) | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: PaymuxOptions) {
    if (!options.baseUrl || !options.merchantId || !options.secret) {
      throw new TypeError("Paymux needs baseUrl, merchantId and secret");
    }
    this.merchantId = options.merchantId;
    this.#secret = options.secret;
    this.#base = new URL(options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`);
    this.#timeoutMs = options.timeoutMs ?? 30000;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#onRetry = options.onRetry;
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  // ---- payments ----

  createPayment(params: CreatePaymentParams, options?: RequestOptions): Promise<Payment> {
    return this.request<Payment>("POST", "/v1/payments", { ...options, body: params });
  }

  /** With sync, the gateway asks the channel first while the payment is processing. */
  getPayment(paymentId: string, params: { sync?: boolean } = {}, options?: RequestOptions): Promise<Payment> {
    return this.request<Payment>("GET", `/v1/payments/${encodeURIComponent(paymentId)}`, { ...options, query: params });
  }

  findPayment(merchantOrderNo: string, options?: RequestOptions): Promise<PaymentList> {
    return this.request<PaymentList>("GET", "/v1/payments", { ...options, query: { merchant_order_no: merchantOrderNo } });
  }

  closePayment(paymentId: string, options?: RequestOptions): Promise<Payment> {
    return this.request<Payment>("POST", `/v1/payments/${encodeURIComponent(paymentId)}/close`, options);
  }

  // ---- refunds ----

  createRefund(paymentId: string, params: CreateRefundParams, options?: RequestOptions): Promise<Refund> {
    return this.request<Refund>("POST", `/v1/payments/${encodeURIComponent(paymentId)}/refunds`, { ...options, body: params });
  }

  getRefund(refundId: string, params: { sync?: boolean } = {}, options?: RequestOptions): Promise<Refund> {
    return this.request<Refund>("GET", `/v1/refunds/${encodeURIComponent(refundId)}`, { ...options, query: params });
  }

  // ---- payouts, balance, events ----

  createPayout(params: CreatePayoutParams, options?: RequestOptions): Promise<Payout> {
    return this.request<Payout>("POST", "/v1/payouts", { ...options, body: params });
  }

  getPayout(payoutId: string, options?: RequestOptions): Promise<Payout> {
    return this.request<Payout>("GET", `/v1/payouts/${encodeURIComponent(payoutId)}`, options);
  }

  getBalance(options?: RequestOptions): Promise<Balance> {
    return this.request<Balance>("GET", "/v1/balance", options);
  }

  /** Your events, newest first: what was (or will be) delivered to your notify_url, to poll or catch up. */
  listEvents(params: ListEventsParams = {}, options?: RequestOptions): Promise<EventList> {
    return this.request<EventList>("GET", "/v1/events", { ...options, query: params });
  }

  // ---- any route ----

  /** A signed request to any merchant route; resolves with the decoded 2xx answer, throws PaymuxError. */
  async request<T = unknown>(method: string, path: string, options: RawRequest = {}): Promise<T> {
    method = method.toUpperCase();
    const url = new URL(path.replace(/^\/+/, ""), this.#base);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body), "utf8");
    const idempotencyKey = options.idempotencyKey ?? (method === "POST" ? randomUUID() : undefined);
    for (let retry = 0; ; retry++) {
      let error: PaymuxError;
      let delayMs = backoffMs(retry + 1, this.#retry);
      try {
        const response = await this.#attempt(method, url, body, idempotencyKey, options.signal);
        if (response.ok) return await decoded<T>(response);
        error = await apiError(response);
        if (!isRetryableStatus(response.status)) throw error;
        const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
        if (retryAfter !== undefined) {
          if (retryAfter > this.#retry.maxRetryAfterMs) throw error;
          delayMs = retryAfter;
        }
      } catch (caught) {
        if (caught instanceof PaymuxError) throw caught;
        if (options.signal?.aborted) throw caught;   // cancelled by the caller: never retried
        const timeout = caught instanceof Error && caught.name === "TimeoutError";
        error = new PaymuxConnectionError(timeout ? "timeout" : "network_error",
          timeout ? `${method} ${url.pathname}: no answer within ${this.#timeoutMs} ms`
            : `${method} ${url.pathname}: ${describe(caught)}`, caught);
      }
      if (retry >= this.#retry.maxRetries) throw error;
      this.#onRetry?.({ method, path: url.pathname, retry: retry + 1, delayMs, error, idempotencyKey });
      await sleep(delayMs, options.signal);
    }
  }

  /** One attempt: signed afresh (new timestamp and nonce), same body and key. */
  #attempt(method: string, url: URL, body: Buffer | undefined, idempotencyKey: string | undefined,
           signal: AbortSignal | undefined): Promise<Response> {
    const pathAndQuery = url.pathname + url.search;
    const headers: Record<string, string> = {
      Authorization: authorizationHeader({ merchantId: this.merchantId, secret: this.#secret, method, pathAndQuery, body }),
      Accept: "application/json",
      "User-Agent": "paymux-node/0.1.0",
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey !== undefined) headers["Idempotency-Key"] = idempotencyKey;
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    return this.#fetch(url, {
      method, headers, body, redirect: "manual",
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  }
}

async function decoded<T>(response: Response): Promise<T> {
  const text = await response.text();
  try {
    return (text ? JSON.parse(text) : undefined) as T;
  } catch {
    throw new PaymuxAPIError({
      status: response.status, requestId: response.headers.get("x-request-id") ?? undefined, body: text,
      type: "api_error", code: "unexpected_response", message: `HTTP ${response.status} with a body that is not JSON`,
    });
  }
}

async function apiError(response: Response): Promise<PaymuxAPIError> {
  const requestId = response.headers.get("x-request-id") ?? undefined;
  const text = await response.text().catch(() => "");
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* not JSON: a proxy's page, say */ }
  const error = (body as { error?: Partial<Schemas["Error"]["error"]> } | null)?.error;
  if (error && typeof error === "object" && typeof error.code === "string") {
    return new PaymuxAPIError({
      status: response.status, requestId, body, param: error.param,
      type: error.type ?? "api_error", code: error.code, message: error.message ?? error.code,
    });
  }
  const rateLimited = response.status === 429;
  return new PaymuxAPIError({
    status: response.status, requestId, body,
    type: rateLimited ? "rate_limit_error" : "api_error",
    code: rateLimited ? "rate_limited" : "unexpected_response",
    message: `HTTP ${response.status} without a paymux error: ${text.slice(0, 200)}`,
  });
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
}
