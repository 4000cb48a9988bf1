// What a TypeScript merchant writes, type-checked against the built package (`@paymux/node` is this
// package, by its exports) without @types/node: the public types must stand on their own, and
// request parameters the gateway defaults must be optional. `npm test` and tests/sdk compile it.
import {
  type CreatePaymentParams, type CreateRefundParams, type Payment, type PaymuxEvent, Paymux, PaymuxAPIError,
  PaymuxConnectionError, PaymuxError, PaymuxSignatureError, type Refund, verifyEvent,
} from "@paymux/node";

const paymux = new Paymux({ baseUrl: "http://127.0.0.1:8000", merchantId: "mch_x", secret: "s", retry: { maxRetries: 1 } });

const minimal: CreatePaymentParams = { merchant_order_no: "o-1", amount: 100 };
const full: CreatePaymentParams = {
  merchant_order_no: "o-2", amount: 100, currency: "CNY", subject: "Tea", notify_url: "https://shop.example/hook",
  metadata: { cart: "42" }, expires_in: 900,
};
const refund: CreateRefundParams = { merchant_refund_no: "r-1", amount: 1 };
// @ts-expect-error amount is required
const noAmount: CreatePaymentParams = { merchant_order_no: "o-3" };
// @ts-expect-error an unknown parameter is refused by the gateway, and by the types
const extra: CreatePaymentParams = { merchant_order_no: "o-4", amount: 1, colour: "red" };

export async function flow(body: Uint8Array, header: string | undefined): Promise<string> {
  const payment: Payment = await paymux.createPayment(minimal, { idempotencyKey: "o-1" });
  const checkout: string | undefined = payment.action?.url;
  const status: "processing" | "succeeded" | "failed" | "closed" | string = payment.status;
  const made: Refund = await paymux.createRefund(payment.id, refund);
  const event: PaymuxEvent = verifyEvent(body, header, "s");
  // @ts-expect-error before its type is compared, data.object may be a payment, a payout, …
  const unnarrowed: Refund = event.data.object;
  if (event.type === "refund.succeeded") {
    const refunded: Refund = event.data.object;   // narrowed by the type
    return refunded.payment_id ?? "";
  }
  if (event.type.startsWith("payment.") && event.data.object.object === "payment") {
    const paid: number | undefined = event.data.object.amount;
    return String(paid);
  }
  try {
    await paymux.createPayment(full);
  } catch (err) {
    if (err instanceof PaymuxAPIError) return `${err.status} ${err.type} ${err.code} ${err.requestId ?? ""} ${err.param ?? ""}`;
    if (err instanceof PaymuxConnectionError) return err.code;
    if (err instanceof PaymuxSignatureError) return err.code;
    if (err instanceof PaymuxError) return err.message;
  }
  return [checkout, status, made.status, event.id, event.type, noAmount, extra, unnarrowed].join();
}
