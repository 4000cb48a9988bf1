"""Schemathesis against a live gateway, on SQLite and PostgreSQL: every operation of /openapi.json,
signed with the merchant scheme, with real resource ids to reach past the 404s, valid and invalid
data. Whatever it sends, the answer is no server error, and a status, content type and body the
document declares.

Bounded, not a soak: EXAMPLES cases per operation and kind of data, derandomized (the same cases every
run), no shrinking (the report names the request), each request given at most REQUEST_TIMEOUT seconds.
The cases are drawn from each operation's strategy (schemathesis's documented Hypothesis API):
`schemathesis.pytest.from_fixture` cannot run under pytest 9.2 (it writes the removed Item._nodeid)."""
from __future__ import annotations

import time
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from gateway.app import routes
from gateway.auth import authorization_header
from tests.conftest import checkout, free_port, make_settings, wait_for
from tests.support.payouts import book

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BANK = {"name": "Zhang San", "number": "6216261000000000018", "bank_code": "ICBC"}
EXAMPLES = 15
REQUEST_TIMEOUT = 30


class MerchantSignature(requests.auth.AuthBase):
    """Signs the request as finally prepared: method, path and query as sent, body as sent."""

    def __init__(self, merchant_id: str, secret: str) -> None:
        self.merchant_id, self.secret = merchant_id, secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        request.headers["Authorization"] = authorization_header(self.merchant_id, self.secret, request.method,
                                                                request.path_url, body, int(time.time()))
        return request


def _resources(gw: Any, client: Any) -> dict[str, list[str]]:
    """Real ids of every kind (a paid payment with a refund and a split, an open one, a receiver, a
    payout from a funded balance), and values the gateway knows, for the generator to draw from."""
    merchant_id = client.merchant_id
    payment = client.create_payment(merchant_order_no="st-paid", amount=200000, splittable=True)
    checkout(payment)
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    unpaid = client.create_payment(merchant_order_no="st-open", amount=500)
    refund = client.create_refund(payment["id"], merchant_refund_no="st-refund", amount=100)
    receiver = client.request("POST", "/v1/receivers", {"type": "merchant", "name": "Supplier", "account": "st-rcv",
                                                        "bindings": {"sandbox": "sbx-42"}}).json()
    split = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                           {"merchant_split_no": "st-split", "receiver": receiver["id"], "amount": 1000}).json()
    book(gw, "settlement.merchant", f"st-settle:{merchant_id}", 100000, merchant_id=merchant_id)
    book(gw, "position.topup", "position:sandbox:st", 100000, account="sandbox")
    payout = client.request("POST", "/v1/payouts", {"merchant_payout_no": "st-payout", "amount": 1000,
                                                    "bank_account": BANK}).json()
    return {"payment": [payment["id"], unpaid["id"]], "refund": [refund["id"]], "receiver": [receiver["id"]],
            "split": [split["id"]], "payout": [payout["id"]], "order": ["st-paid", "st-open"],
            "payout_no": ["st-payout"], "account": ["sandbox", "sandbox-off"], "method": ["redirect", "qr"],
            "currency": ["CNY", "USD"]}


@pytest.fixture
def live(gateway_factory, db_url) -> tuple[Any, MerchantSignature]:  # noqa: ANN001
    """A gateway with one of each resource, and the schema it serves, told which ids are real."""
    gw = gateway_factory(make_settings(db_url, free_port()))
    creds = gw.merchant()
    ids = _resources(gw, gw.client(creds))
    real = {"path.payment_id": "payment", "path.refund_id": "refund", "path.receiver_id": "receiver",
            "path.split_id": "split", "path.payout_id": "payout", "query.merchant_order_no": "order",
            "query.merchant_payout_no": "payout_no", "path.channel_account": "account", "body.channel": "account",
            "body.method": "method", "body.currency": "currency", "body.receiver": "receiver",
            "body.splits[*].receiver": "receiver"}
    config = schemathesis.Config.from_dict({
        "base-url": gw.url,
        "dictionaries": {name: {"values": values} for name, values in ids.items()},
        "parameters": {key: {"dictionary": name, "probability": 0.7} for key, name in real.items()},
    })
    return schemathesis.openapi.from_url(f"{gw.url}/openapi.json", config=config), \
        MerchantSignature(creds.merchant_id, creds.secret)


def test_every_operation_answers_as_documented(live) -> None:  # noqa: ANN001
    schema, signer = live
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    every_route = {f"{m} {r.path}" for r in routes() for m in r.methods if m != "HEAD"}
    assert {op.label for op in operations} == every_route - {"GET /openapi.json"}   # it skips the document itself
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case) -> None:  # noqa: ANN001
                case.call_and_validate(checks=CHECKS, auth=signer, timeout=REQUEST_TIMEOUT)

            try:
                run()
            except Unsatisfiable:
                pass   # nothing about this operation can be made invalid
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001  every operation's failures, all reported
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
