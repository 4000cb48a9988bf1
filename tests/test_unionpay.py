"""UnionPay ACP 5.1.0: the signature as ACP specifies it, the certificate chain a notification must carry,
and a gateway payment from form to refund to reconciled statement against the simulator."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gateway.channel import SettingsError
from gateway.config import AccountLimits, ChannelAccountConfig, CircuitConfig, Settings
from plugins.unionpay import wire
from plugins.unionpay.channel import UnionPayChannel
from tests.conftest import SECRET_KEY, ServerThread, free_port, wait_for
from tests.test_reconcile import Operator, books_clean, today
from tests.unionpay_world import MER_ID, UnionPayMerchant


def test_the_signature_is_over_the_sha256_hex_of_the_sorted_fields() -> None:
    key = wire.new_key()
    fields = {"txnAmt": "100", "merId": MER_ID, "orderId": "o1", "version": "5.1.0", "empty": ""}
    signed = wire.sign(fields, key, "69629715588")
    assert wire.signing_string(signed) == ("certId=69629715588&empty=&merId=777290058110048&orderId=o1&"
                                           "signMethod=01&txnAmt=100&version=5.1.0")
    assert wire.digest(signed) == hashlib.sha256(wire.signing_string(signed).encode()).hexdigest().encode()
    assert wire.verify_with_key(signed, key.public_key())
    assert not wire.verify_with_key({**signed, "txnAmt": "101"}, key.public_key())


def test_only_unionpays_current_certificate_under_the_trusted_root_is_believed() -> None:
    merchant = UnionPayMerchant()
    sim, trusted = merchant.sim, wire.load_certs(merchant.sim.trust_pem)
    now = datetime.now(UTC)
    wire.verify(sim.signed({"respCode": "00"}), trusted, now)          # genuine
    impostor_key = wire.new_key()
    impostor = wire.issue(f"{wire.UNIONPAY_NAME}:SIGN", impostor_key, None, impostor_key, ca=False)
    someone = wire.issue("someone else", sim.sign_key, sim.middle, sim.mid_key, ca=False)
    cases = {"untrusted_certificate": sim.signed({"respCode": "00"}, impostor_key, impostor),
             "wrong_owner": sim.signed({"respCode": "00"}, sim.sign_key, someone),
             "bad_signature": {**sim.signed({"respCode": "00"}), "respCode": "01"}}
    for reason, fields in cases.items():
        with pytest.raises(wire.WireError) as caught:
            wire.verify(fields, trusted, now)
        assert caught.value.reason == reason
    with pytest.raises(wire.WireError, match="not valid now"):
        wire.verify(sim.signed({"respCode": "00"}), trusted, now + timedelta(days=4000))


@pytest.mark.parametrize("change,message", [
    ({"mer_id": "12"}, "mer_id"), ({"sign_cert": "x"}, "sign_cert"), ({"verify_cert": "nonsense"}, "verify_cert"),
    ({"secret": "x"}, "unknown setting"),
])
def test_bad_settings_name_the_key(change: dict, message: str) -> None:
    merchant = UnionPayMerchant()
    with pytest.raises(SettingsError, match=message):
        UnionPayChannel.parse_settings({**merchant.settings("http://x"), **change})


def test_a_gateway_payment_from_form_to_refund_to_reconciled_statement(gateway_factory, db_url, tmp_path) -> None:
    merchant = UnionPayMerchant()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ServerThread(merchant.sim.app, port):
        account = ChannelAccountConfig("up", "unionpay", True, merchant.settings(url), 100, 1, AccountLimits(),
                                       CircuitConfig(), fee_bps=60)
        settings = Settings(public_url=f"http://127.0.0.1:{free_port()}", database_url=db_url, secret_key=SECRET_KEY,
                            channel_accounts=(account,), query_schedule_seconds=(3600,))
        gw = gateway_factory(settings)
        client = gw.client(gw.merchant())
        payment = client.create_payment(merchant_order_no="up-1", amount=12345, subject="银联", channel="up")
        fields = payment["action"]["fields"]
        assert fields["txnAmt"] == "12345" and fields["merId"] == MER_ID and fields["orderId"] == payment["out_trade_no"]
        assert fields["backUrl"] == f"{settings.public_url}/v1/notify/up"
        merchant.pay(url, payment)
        assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
        refund = client.create_refund(payment["id"], merchant_refund_no="up-r1", amount=2345)
        assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
        assert client.get_payment(payment["id"])["amount_refunded"] == 2345
        forged, headers = merchant.notification(payment, forge=True)
        assert httpx.post(f"{settings.public_url}/v1/notify/up", content=forged, headers=headers).status_code == 400
        report = Operator(settings, tmp_path).reconcile("up", today())
        assert report["status"] == "completed", report
        assert report["counts"]["matched"] == 2 and report["open"] == 0, report
        assert books_clean(gw)
