"""The risk hook: plugins may deny or hold a payment before it exists, within a latency budget."""
from __future__ import annotations

import time

import pytest

from gateway.client import Client, PaymuxAPIError
from gateway.hookspecs import hookimpl
from gateway.merchants import create_merchant
from gateway.risk import RiskDecision
from tests.conftest import free_port, make_settings, start_gateway


def serve(db_url: str, risk: dict, plugins=()):  # noqa: ANN001, ANN201
    settings = make_settings(db_url, free_port()).with_changes(extra={"risk": risk})
    return start_gateway(settings, extra_plugins=plugins)


def client_for(app, server) -> Client:  # noqa: ANN001
    gw = app.state.gateway
    with gw.db.transaction() as conn:
        creds = create_merchant(conn, gw.box, gw.clock, "risky")
    return Client(server.url, creds.merchant_id, creds.secret)


def test_the_velocity_rule_limits_a_merchant_and_a_payer(db_url) -> None:
    app, server = serve(db_url, {"velocity": {"merchant_max_count_per_hour": 3, "payer_max_amount_per_day": 500}})
    with server:
        client = client_for(app, server)
        first = client.request("POST", "/v1/payments", {"merchant_order_no": "a", "amount": 400,
                                                        "metadata": {"payer_id": "u1"}}, idempotency_key="k-a")
        assert first.status_code == 201
        with pytest.raises(PaymuxAPIError) as err:  # the same payer would pass 500 a day
            client.create_payment(merchant_order_no="b", amount=101, metadata={"payer_id": "u1"})
        assert err.value.status == 403 and err.value.error["code"] == "payment_denied"
        assert "payer" in err.value.error["message"]
        client.create_payment(merchant_order_no="c", amount=101, metadata={"payer_id": "u2"})
        client.create_payment(merchant_order_no="d", amount=1)
        with pytest.raises(PaymuxAPIError) as err:  # a fourth in the hour for the merchant
            client.create_payment(merchant_order_no="e", amount=1)
        assert err.value.error["code"] == "payment_denied" and "merchant" in err.value.error["message"]
        replay = client.request("POST", "/v1/payments", {"merchant_order_no": "a", "amount": 400,
                                                         "metadata": {"payer_id": "u1"}}, idempotency_key="k-a")
        assert replay.status_code == 201 and replay.content == first.content  # a retry is not judged again
        assert app.state.gateway.payments is not None
    from sqlalchemy import text

    with app.state.gateway.db.transaction() as conn:
        assert conn.execute(text("SELECT count(*) FROM payments")).scalar_one() == 3


class Reviewer:
    @hookimpl
    def assess_payment(self, request):  # noqa: ANN001, ANN201
        if request.amount >= 100_000:
            return RiskDecision.review("large payments are looked at by a person first")
        return None


class Slow:
    @hookimpl
    def assess_payment(self, request):  # noqa: ANN001, ANN201
        time.sleep(0.5)
        return RiskDecision.deny("too late to matter")


def test_a_plugin_can_hold_a_payment_for_review(db_url) -> None:
    app, server = serve(db_url, {}, plugins=[Reviewer()])
    with server:
        client = client_for(app, server)
        with pytest.raises(PaymuxAPIError) as err:
            client.create_payment(merchant_order_no="big", amount=100_000)
        assert err.value.status == 403 and err.value.error["code"] == "payment_review"
        assert client.create_payment(merchant_order_no="small", amount=99_999)["status"] == "processing"


@pytest.mark.parametrize("policy,status", [("allow", 201), ("deny", 403)])
def test_a_plugin_over_its_latency_budget_follows_the_policy(db_url, policy: str, status: int) -> None:
    app, server = serve(db_url, {"budget_ms": 50, "on_timeout": policy}, plugins=[Slow()])
    with server:
        client = client_for(app, server)
        response = client.request("POST", "/v1/payments", {"merchant_order_no": "x", "amount": 100})
        assert response.status_code == status, response.text
