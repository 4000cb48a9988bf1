"""The other side of the sandbox wire: a hosted checkout page, the channel's API, and its callbacks.

Mounted by the gateway at /hosted/{account}. It keeps its orders in memory, like a fresh sandbox:
a restart forgets them. Fault settings (callback_mode, callback_delay_ms) shape its callbacks;
payout_return_days makes the receiving bank send every paid payout back (退票) that many days (of the
simulator's clock) after it was paid: from then on a query answers RETURNED, the day's statement lists
a RETURNED line, and a callback is sent (when a query or `send_returns` finds it due).
"""
from __future__ import annotations

import asyncio
import csv
import html
import io
import random
import secrets
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gateway.channel import Clock
from plugins.mock import wire
from plugins.simulation import CallbackSender


@dataclass
class Order:
    out_trade_no: str
    amount: int | None = None
    currency: str | None = None
    subject: str = ""
    status: str = "NOTPAY"          # NOTPAY | SUCCESS | FAIL | CLOSED
    transaction_id: str | None = None
    paid_at: str | None = None      # Beijing time, "YYYY-MM-DD HH:MM:SS", when it was paid
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Coupons the payer used, as the sandbox reports them (WeChat Pay's promotion_detail in spirit):
    # amount, who funded it (merchant/channel/other_contribute), kept: not paid to the merchant (NOCASH).
    promotions: list[dict[str, Any]] = field(default_factory=list)

    def refunded(self) -> int:
        return sum(r["amount"] for r in self.refunds.values() if r["refund_status"] != "FAIL")

    def split_total(self) -> int:
        """What receivers hold of the order: splits that did not fail, less what came back."""
        return sum(s["amount"] - sum(r["amount"] for r in s["returns"].values() if r["status"] == "SUCCESS")
                   for s in self.splits.values() if s["status"] != "FAIL")

    def view(self) -> dict[str, Any]:
        view = {"out_trade_no": self.out_trade_no, "trade_status": self.status, "amount": self.amount,
                "currency": self.currency, "transaction_id": self.transaction_id}
        if self.status == "SUCCESS" and self.amount is not None:
            view.update(promotions=self.promotions,
                        payer_amount=self.amount - sum(p["amount"] for p in self.promotions),
                        settled_amount=self.amount - sum(p["amount"] for p in self.promotions if p["kept"]))
        return view


class SandboxSimulator:
    def __init__(self, settings: Any, notify_url: str, clock: Clock) -> None:
        self.settings = settings
        self.notify_url = notify_url
        self.clock = clock
        self.orders: dict[str, Order] = {}
        # Payouts by out_payout_no; paid_count counts money actually sent per number (must stay <= 1).
        self.payouts: dict[str, dict[str, Any]] = {}
        self.paid_count: dict[str, int] = {}
        self.returns_at: dict[str, int] = {}    # out_payout_no -> when the receiving bank sends it back
        self.sender = CallbackSender()
        self.app = Starlette(routes=[
            Route("/checkout", self.checkout_page, methods=["GET"]),
            Route("/checkout", self.checkout_submit, methods=["POST"]),
            Route("/api/query", self.api_query, methods=["POST"]),
            Route("/api/close", self.api_close, methods=["POST"]),
            Route("/api/refund", self.api_refund, methods=["POST"]),
            Route("/api/refund/query", self.api_refund_query, methods=["POST"]),
            Route("/api/statement", self.api_statement, methods=["POST"]),
            Route("/api/split/statement", self.api_split_statement, methods=["POST"]),
            Route("/api/payout", self.api_payout, methods=["POST"]),
            Route("/api/payout/query", self.api_payout_query, methods=["POST"]),
            Route("/api/split", self.api_split, methods=["POST"]),
            Route("/api/split/query", self.api_split_query, methods=["POST"]),
            Route("/api/split/return", self.api_split_return, methods=["POST"]),
            Route("/api/split/return/query", self.api_split_return_query, methods=["POST"]),
        ])

    # ---- hosted checkout ----

    def _order_from_token(self, request: Request) -> Order | None:
        try:
            data = wire.read_token(self.settings.secret, request.query_params.get("t", ""))
        except (wire.WireError, ValueError):
            return None
        order = self.orders.setdefault(data["out_trade_no"], Order(data["out_trade_no"]))
        if order.amount is None:  # first sight of the order (a close may have come first)
            order.amount, order.currency, order.subject = data["amount"], data["currency"], data.get("subject", "")
        expires_at = data.get("expires_at")
        if order.status == "NOTPAY" and expires_at and self.clock.timestamp() > expires_at:
            order.status = "CLOSED"
        return order

    async def checkout_page(self, request: Request) -> Response:
        order = self._order_from_token(request)
        if order is None:
            return HTMLResponse(_page("Invalid link", "<p>This checkout link is not genuine.</p>"), 400)
        amount = f"{order.amount / 100:.2f} {html.escape(order.currency or '')}"
        if order.status != "NOTPAY":
            body = f"<p>Order <code>{order.out_trade_no}</code> is <b>{order.status}</b>.</p>"
            return HTMLResponse(_page("Sandbox checkout", body))
        body = (f"<p>{html.escape(order.subject)}</p><p class=amount>{amount}</p>"
                f"<p><small>order <code>{order.out_trade_no}</code></small></p>"
                '<form method=post><button name=outcome value=success>Pay</button> '
                '<button name=outcome value=fail class=fail>Fail</button></form>')
        return HTMLResponse(_page("Sandbox checkout", body))

    async def checkout_submit(self, request: Request) -> Response:
        order = self._order_from_token(request)
        wants_json = "application/json" in request.headers.get("accept", "")
        if order is None:
            return self._answer(wants_json, 400, {"error": "BAD_TOKEN", "message": "checkout link is not genuine"})
        form = await request.form()
        outcome = form.get("outcome")
        if outcome not in ("success", "fail"):
            return self._answer(wants_json, 400, {"error": "BAD_OUTCOME", "message": "outcome must be success or fail"})
        if order.status != "NOTPAY":
            return self._answer(wants_json, 409, {"error": "ORDER_FINAL", "message": f"order is {order.status}",
                                                  **order.view()})
        promotion = _promotion(form, order.amount or 0) if form.get("coupon_amount") else None
        if isinstance(promotion, str):
            return self._answer(wants_json, 400, {"error": "BAD_COUPON", "message": promotion})
        order.promotions = [promotion] if promotion and outcome == "success" else []
        order.status = "SUCCESS" if outcome == "success" else "FAIL"
        order.transaction_id = "sbx" + secrets.token_hex(12)
        order.paid_at = self._beijing()
        await self._send_callback({"event": "payment", **order.view()})
        return self._answer(wants_json, 200, order.view())

    def _answer(self, wants_json: bool, status: int, data: dict[str, Any]) -> Response:
        if wants_json:
            return JSONResponse(data, status)
        text = data.get("message") or f"Order {data.get('out_trade_no')} is {data.get('trade_status')}."
        return HTMLResponse(_page("Sandbox checkout", f"<p>{html.escape(text)}</p>"), status)

    # ---- callbacks, shaped by the account's fault settings ----

    async def _send_callback(self, event: dict[str, Any]) -> None:
        mode = self.settings.callback_mode
        if mode == "mixed":
            mode = random.choice(("normal", "drop", "duplicate", "delay"))
        if mode == "drop":
            return
        if mode == "delay":
            self.sender.background(self._deliver(event, delay=self.settings.callback_delay_ms / 1000))
            return
        await self._deliver(event)
        if mode == "duplicate":
            await self._deliver(event)

    async def _deliver(self, event: dict[str, Any], delay: float = 0.0) -> None:
        body = wire.encode({"id": "evt_" + secrets.token_hex(8), **event})
        await self.sender.deliver(self.notify_url, body,
                                  lambda: wire.signed_headers(self.settings.secret, body, self.clock.timestamp()),
                                  lambda response: response.status_code == 200, delay)

    # ---- channel API (signed both ways) ----

    async def _read(self, request: Request) -> dict[str, Any] | Response:
        try:
            return wire.verify(self.settings.secret, request.headers, await request.body(), self.clock.timestamp())
        except wire.WireError as exc:
            return self._signed({"error": "SIGN_ERROR", "message": str(exc)}, 401)

    def _signed(self, data: dict[str, Any], status: int = 200) -> Response:
        body = wire.encode(data)
        return Response(body, status, headers=wire.signed_headers(self.settings.secret, body, self.clock.timestamp()))

    async def api_query(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        order = self.orders.get(str(data.get("out_trade_no")))
        return self._signed(order.view() if order else {"out_trade_no": data.get("out_trade_no"),
                                                        "trade_status": "NOTPAY"})

    async def api_close(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        order = self.orders.setdefault(str(data.get("out_trade_no")), Order(str(data.get("out_trade_no"))))
        if order.status == "NOTPAY":
            order.status = "CLOSED"
        return self._signed(order.view())

    async def api_refund(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        order = self.orders.get(str(data.get("out_trade_no")))
        if order is None or order.status != "SUCCESS":
            return self._signed({"error": "ORDER_NOT_PAID", "message": "the order is not paid"})
        out_refund_no, amount = str(data.get("out_refund_no")), data.get("amount")
        if out_refund_no in order.refunds:  # a retried refund request is the same refund
            return self._signed(order.refunds[out_refund_no])
        if not isinstance(amount, int) or amount <= 0 or \
                order.refunded() + order.split_total() + amount > (order.amount or 0):
            return self._signed({"error": "REFUND_EXCEEDS", "message": "refund exceeds what is left (receivers "
                                                                       "hold what was split)"})
        refund = {"out_trade_no": order.out_trade_no, "out_refund_no": out_refund_no, "amount": amount,
                  "refund_id": "sbr" + secrets.token_hex(12), "refund_status": "PROCESSING"}
        order.refunds[out_refund_no] = refund
        self.sender.background(self._complete_refund(refund))
        return self._signed(refund)

    async def _complete_refund(self, refund: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)  # the money moves after the request is acknowledged
        refund["refund_status"] = "SUCCESS"
        refund["succeeded_at"] = self._beijing()
        await self._send_callback({"event": "refund", **refund})

    async def api_refund_query(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        order = self.orders.get(str(data.get("out_trade_no")))
        refund = order.refunds.get(str(data.get("out_refund_no"))) if order else None
        return self._signed(refund or {"error": "REFUND_NOT_EXIST", "message": "no such refund"})

    # ---- payouts: an account number ending in 0000 is declined; the same out_payout_no is one payout ----

    async def api_payout(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        number, amount = str(data.get("out_payout_no")), data.get("amount")
        payout = self.payouts.get(number)
        if payout is None:
            if not isinstance(amount, int) or amount <= 0:
                return self._signed({"error": "AMOUNT_INVALID", "message": "amount must be positive fen"})
            declined = str(data.get("account_no", "")).endswith("0000")
            payout = self.payouts[number] = {
                "out_payout_no": number, "amount": amount, "payout_id": "sbp" + secrets.token_hex(12),
                "status": "FAIL" if declined else "PROCESSING",
                **({"fail_code": "ACCOUNT_INVALID", "fail_message": "the bank account does not exist"}
                   if declined else {})}
            if not declined:
                self.sender.background(self._complete_payout(payout))
        if self.settings.payout_latency_ms:   # the request was taken; the answer is slow (a client timeout)
            await asyncio.sleep(self.settings.payout_latency_ms / 1000)
        return self._signed(payout)

    async def _complete_payout(self, payout: dict[str, Any]) -> None:
        await asyncio.sleep(self.settings.payout_settle_ms / 1000)
        self.paid_count[payout["out_payout_no"]] = self.paid_count.get(payout["out_payout_no"], 0) + 1
        payout["status"] = "SUCCESS"
        payout["succeeded_at"] = self._beijing()
        if self.settings.payout_return_days is not None:
            self.returns_at[payout["out_payout_no"]] = self.clock.timestamp() + self.settings.payout_return_days * 86400
        await self._send_callback({"event": "payout", **payout})

    def _beijing(self) -> str:
        return datetime.fromtimestamp(self.clock.timestamp(), timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")

    def _due_returns(self) -> list[dict[str, Any]]:
        """The receiving bank's returns that are due by the clock: those payouts become RETURNED now."""
        now, due = self.clock.timestamp(), []
        for number, at in list(self.returns_at.items()):
            payout = self.payouts[number]
            if at <= now and payout["status"] == "SUCCESS":
                payout.update(status="RETURNED", returned_at=self._beijing(), return_code="ACCOUNT_CLOSED",
                              return_message="returned by the receiving bank: the account is closed")
                del self.returns_at[number]
                due.append(payout)
        return due

    async def send_returns(self) -> int:
        """The bank's returns that are due, made and notified (as time passing does); returns how many."""
        due = self._due_returns()
        for payout in due:
            await self._send_callback({"event": "payout", **payout})
        return len(due)

    async def api_payout_query(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        for returned in self._due_returns():   # found by the question; the callback follows
            self.sender.background(self._send_callback({"event": "payout", **returned}))
        payout = self.payouts.get(str(data.get("out_payout_no")))
        return self._signed(payout or {"error": "PAYOUT_NOT_EXIST", "message": "no such payout"})

    # ---- splits of a paid order ----

    async def api_split(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        order = self.orders.get(str(data.get("out_trade_no")))
        if order is None or order.status != "SUCCESS":
            return self._signed({"error": "ORDER_NOT_PAID", "message": "the order is not paid"})
        number, amount = str(data.get("out_split_no")), data.get("amount")
        if number in order.splits:
            return self._signed(order.splits[number])
        if not isinstance(amount, int) or amount <= 0 or \
                order.split_total() + order.refunded() + amount > (order.amount or 0):
            return self._signed({"error": "SPLIT_EXCEEDS", "message": "split exceeds what is left of the order"})
        split = order.splits[number] = {"out_trade_no": order.out_trade_no, "out_split_no": number, "amount": amount,
                                        "receiver": data.get("receiver"), "split_id": "sbs" + secrets.token_hex(12),
                                        "status": "PROCESSING", "returns": {}}
        self.sender.background(self._complete_split(split))
        return self._signed(split)

    async def _complete_split(self, split: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)
        split["status"], split["succeeded_at"] = "SUCCESS", self._beijing()
        await self._send_callback({"event": "split", **split})

    async def api_split_query(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        order = self.orders.get(str(data.get("out_trade_no")))
        split = order.splits.get(str(data.get("out_split_no"))) if order else None
        return self._signed(split or {"error": "SPLIT_NOT_EXIST", "message": "no such split"})

    # ---- returns: a split taken back from its receiver, at once (a receiver ending in 0000 has nothing) ----

    def _split_of(self, data: dict[str, Any]) -> dict[str, Any] | None:
        order = self.orders.get(str(data.get("out_trade_no")))
        return order.splits.get(str(data.get("out_split_no"))) if order else None

    async def api_split_return(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        split, number, amount = self._split_of(data), str(data.get("out_return_no")), data.get("amount")
        if split is None or split["status"] != "SUCCESS":
            return self._signed({"error": "SPLIT_NOT_FINISHED", "message": "no finished split to take back from"})
        if number in split["returns"]:
            return self._signed(split["returns"][number])
        back = sum(r["amount"] for r in split["returns"].values() if r["status"] == "SUCCESS")
        if not isinstance(amount, int) or amount <= 0 or back + amount > split["amount"]:
            return self._signed({"error": "RETURN_EXCEEDS", "message": "more than the split"})
        broke = str(split.get("receiver", "")).endswith("0000")
        split["returns"][number] = {"out_return_no": number, "out_split_no": split["out_split_no"], "amount": amount,
                                    "return_id": "sbt" + secrets.token_hex(12), "status": "FAIL" if broke else "SUCCESS",
                                    "succeeded_at": "" if broke else self._beijing(),
                                    **({"fail_code": "BALANCE_NOT_ENOUGH", "fail_message": "the receiver has spent it"}
                                       if broke else {})}
        return self._signed(split["returns"][number])

    async def api_split_return_query(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        split = self._split_of(data)
        found = split["returns"].get(str(data.get("out_return_no"))) if split else None
        return self._signed(found or {"error": "RETURN_NOT_EXIST", "message": "no such return"})

    # ---- the daily statement ----

    def statement(self, day: str) -> str | None:
        """The sandbox's statement of one day (Beijing time): CSV, amounts in fen, fees in 1/1000 fen."""
        fee = lambda fen: (fen * self.settings.fee_bps + 5) // 10  # noqa: E731  (1/1000 fen, half up)
        rows, paid, refunded = [], [0, 0], [0, 0]
        for order in self.orders.values():
            if order.status == "SUCCESS" and order.paid_at and order.paid_at.startswith(day):
                rows.append([order.paid_at, order.transaction_id, order.out_trade_no, "", "payment", "SUCCESS",
                             order.amount, fee(order.amount)])
                paid = [paid[0] + 1, paid[1] + order.amount]
            for refund in order.refunds.values():
                if refund["refund_status"] == "SUCCESS" and refund.get("succeeded_at", "").startswith(day):
                    rows.append([refund["succeeded_at"], order.transaction_id, order.out_trade_no,
                                 refund["out_refund_no"], "refund", "SUCCESS", refund["amount"], -fee(refund["amount"])])
                    refunded = [refunded[0] + 1, refunded[1] + refund["amount"]]
        self._due_returns()
        for payout in self.payouts.values():   # the money paid out of the position, fee-free in the sandbox
            if payout["status"] in ("SUCCESS", "RETURNED") and payout.get("succeeded_at", "").startswith(day):
                rows.append([payout["succeeded_at"], payout["payout_id"], payout["out_payout_no"], "", "payout",
                             "SUCCESS", payout["amount"], 0])
            if payout["status"] == "RETURNED" and payout["returned_at"].startswith(day):   # back in the position
                rows.append([payout["returned_at"], payout["payout_id"], payout["out_payout_no"], "", "payout",
                             "RETURNED", payout["amount"], 0])
        if not rows:
            return None
        out = io.StringIO()
        out.write(f"# paymux sandbox statement {day}\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["time", "transaction_id", "out_trade_no", "out_refund_no", "kind", "status", "amount",
                         "fee_millis"])
        writer.writerows(rows)
        out.write(f"# total rows={len(rows)} payments={paid[0]} payment_amount={paid[1]} refunds={refunded[0]} "
                  f"refund_amount={refunded[1]}\n")
        return out.getvalue()

    async def api_statement(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        content = self.statement(str(data.get("date")))
        if content is not None and self.settings.statement_delay_seconds and not self._published(str(data["date"])):
            return self._signed({"error": "NO_STATEMENT", "message": "the statement of that day is not generated yet"})
        if content is None:
            return self._signed({"error": "NO_STATEMENT", "message": "no statement for that day"})
        return self._signed({"date": data.get("date"), "content": content})

    def split_statement(self, day: str) -> str:
        """The sandbox's statement of one day's splits (Beijing time): what it paid receivers out of the
        merchant's orders, and took back from them. `# paymux sandbox splits DAY`, a CSV header, one row
        per split or return (amounts in fen), `# total splits=… split_amount=… returns=… return_amount=…`;
        a day without any has a statement with no rows."""
        rows, out_, back = [], [0, 0], [0, 0]
        for order in self.orders.values():
            for split in order.splits.values():
                if split["status"] == "SUCCESS" and split.get("succeeded_at", "").startswith(day):
                    rows.append([split["succeeded_at"], "split", split["split_id"], split["out_split_no"],
                                 split["amount"]])
                    out_ = [out_[0] + 1, out_[1] + split["amount"]]
                for ret in split["returns"].values():
                    if ret["status"] == "SUCCESS" and ret["succeeded_at"].startswith(day):
                        rows.append([ret["succeeded_at"], "return", ret["return_id"], ret["out_return_no"],
                                     ret["amount"]])
                        back = [back[0] + 1, back[1] + ret["amount"]]
        text = io.StringIO()
        text.write(f"# paymux sandbox splits {day}\n")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["time", "kind", "channel_id", "out_no", "amount"])
        writer.writerows(rows)
        text.write(f"# total splits={out_[0]} split_amount={out_[1]} returns={back[0]} return_amount={back[1]}\n")
        return text.getvalue()

    async def api_split_statement(self, request: Request) -> Response:
        data = await self._read(request)
        if isinstance(data, Response):
            return data
        return self._signed({"date": data.get("date"), "content": self.split_statement(str(data.get("date")))})

    def _published(self, day: str) -> bool:
        beijing = timezone(timedelta(hours=8))
        try:
            ends = datetime.combine(datetime.strptime(day, "%Y-%m-%d").date() + timedelta(days=1), time(), beijing)
        except ValueError:
            return False
        return self.clock.now() >= ends + timedelta(seconds=self.settings.statement_delay_seconds)


def _promotion(form: Any, order_amount: int) -> dict[str, Any] | str:
    """A coupon the payer uses at checkout: coupon_amount (fen), coupon_funded_by (merchant, channel
    or other), coupon_kept (true: the sandbox does not pay that part to the merchant; by default only
    a merchant-funded coupon is kept), coupon_id (the stock it came from)."""
    raw, funder = str(form.get("coupon_amount")), form.get("coupon_funded_by", "merchant")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 13 or not 0 < int(raw) <= order_amount:
        return "coupon_amount must be whole fen, more than 0 and at most the order"
    if funder not in ("merchant", "channel", "other"):
        return "coupon_funded_by must be merchant, channel or other"
    amount = int(raw)
    kept = form.get("coupon_kept", "true" if funder == "merchant" else "false") == "true"
    return {"amount": amount, "merchant_contribute": amount if funder == "merchant" else 0,
            "channel_contribute": amount if funder == "channel" else 0,
            "other_contribute": amount if funder == "other" else 0, "kept": kept,
            "coupon_id": str(form.get("coupon_id", ""))[:32] or None, "name": "sandbox coupon"}


def _page(title: str, body: str) -> str:
    return f"""<!doctype html><html><head><meta charset=utf-8><title>{title}</title>
<style>body{{font-family:system-ui;max-width:28rem;margin:4rem auto;text-align:center}}
.amount{{font-size:2rem}}button{{font-size:1.2rem;padding:.5rem 2rem;margin:.5rem}}.fail{{background:#fdd}}</style>
</head><body><h1>{title}</h1><p><small>paymux sandbox: no real money moves</small></p>{body}</body></html>"""
