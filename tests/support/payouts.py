"""Payouts in tests: a funded merchant, a position, a payout."""
from __future__ import annotations

import httpx

from gateway.config import ChannelAccountConfig, Settings
from tests.conftest import SANDBOX_SECRET, SECRET_KEY, checkout, free_port, wait_for

FAST = dict(query_schedule_seconds=(0.3, 0.3, 0.3), janitor_poll_seconds=0.1, query_give_up_seconds=3600)


BANK = {"name": "张三", "number": "6216261000000000018", "bank_code": "ICBC"}


def settings(db_url: str, *, accounts: tuple = (), timeout: float = 10.0, **sandbox) -> Settings:  # noqa: ANN003
    accounts = accounts or (ChannelAccountConfig("sandbox", "mock", True, {"secret": SANDBOX_SECRET, **sandbox}),)
    return Settings(public_url=f"http://127.0.0.1:{free_port()}", database_url=db_url, secret_key=SECRET_KEY,
                    channel_accounts=accounts, channel_timeout_seconds=timeout, **FAST)


def book(gw, event_type: str, reference: str, amount: int, merchant_id: str = "", account: str = "sandbox") -> None:  # noqa: ANN001
    """Money arriving the way settlement and a top-up book it (their own commands are tested elsewhere)."""
    with gw.gateway.db.transaction() as conn:
        gw.gateway.payments.booker.book(conn, event_type, reference, merchant_id=merchant_id, channel_account=account,
                                        currency="CNY", variables={"amount": amount}, now=gw.gateway.clock.now())


def funded(gw, available: int = 100000, position: int = 50000, account: str = "sandbox"):  # noqa: ANN001, ANN201
    """A merchant with `available` to pay out (a real payment, settled) and a prefunded account."""
    creds = gw.merchant()
    client = gw.client(creds)
    payment = client.create_payment(merchant_order_no="sale", amount=available * 2, channel=account)
    checkout(payment)
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    book(gw, "settlement.merchant", f"test-settle:{creds.merchant_id}", available, merchant_id=creds.merchant_id)
    if position:
        book(gw, "position.topup", f"position:{account}:test", position, account=account)
    return creds, client


def balance(client) -> dict:  # noqa: ANN001
    return client.request("GET", "/v1/balance").json()["balances"][0]


def position(gw, account: str = "sandbox") -> tuple[int, int]:  # noqa: ANN001
    from ledger.core import AccountRef

    with gw.gateway.db.transaction() as conn:
        return tuple(gw.gateway.ledger.balance(conn, AccountRef(code, account, "CNY"))
                     for code in ("channel_position", "channel_position_committed"))


def sandbox(gw, account: str = "sandbox"):  # noqa: ANN001, ANN201
    """The sandbox simulator the gateway mounts (its paid_count tells how often money really left)."""
    return gw.gateway.host.account(account).channel._sim


def payout(client, number: str = "po-1", amount: int = 30000, **fields) -> httpx.Response:  # noqa: ANN001, ANN003
    return client.request("POST", "/v1/payouts", {"merchant_payout_no": number, "amount": amount,
                                                  "bank_account": BANK, **fields})
