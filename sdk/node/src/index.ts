export { Paymux } from "./client.js";
export type {
  Balance, CreatePaymentParams, CreatePayoutParams, CreateRefundParams, EventList, ListEventsParams, Payment,
  PaymentList, PaymuxOptions, Payout, RawRequest, Refund, RequestOptions, RetryInfo,
} from "./client.js";
export { PaymuxAPIError, PaymuxConnectionError, PaymuxError, PaymuxSignatureError } from "./errors.js";
export type { ErrorType, PaymuxErrorFields, SignatureErrorCode } from "./errors.js";
export { verifyEvent } from "./events.js";
export type { EventObjects, PaymuxEvent, VerifyOptions } from "./events.js";
export { DEFAULT_RETRY, backoffMs, isRetryableStatus, parseRetryAfter } from "./retry.js";
export type { RetryPolicy } from "./retry.js";
export {
  EVENT_SIGNATURE_HEADER, SCHEME, authorizationHeader, canonicalString, newNonce, sign, signEvent,
} from "./signing.js";
export type { AuthorizationInput, Bytes } from "./signing.js";
export type { components, operations, paths } from "./generated/api.js";
