/**
 * When to try a request again, and how long to wait first. A retried request is the same request:
 * same method, path, body and Idempotency-Key, so the gateway does what it asks at most once; only
 * its signature (timestamp, nonce) is new, since the gateway refuses a nonce it has seen.
 */

export interface RetryPolicy {
  /** Retries after the first attempt (default 2; 0 turns retrying off). */
  maxRetries: number;
  /** The first backoff, in ms, doubled per retry (default 300). */
  baseDelayMs: number;
  /** No backoff waits longer than this, in ms (default 8000). */
  maxDelayMs: number;
  /** A Retry-After longer than this (ms) is not waited for: the error is thrown instead (default 30000). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 2, baseDelayMs: 300, maxDelayMs: 8000, maxRetryAfterMs: 30000 };

/** Transient: the gateway or something in front of it may answer differently next time. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** Retry-After as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * The wait before retry number `retry` (1-based): exponential backoff with "equal jitter" (half
 * fixed, half random), so clients that failed together do not all come back together.
 */
export function backoffMs(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}
