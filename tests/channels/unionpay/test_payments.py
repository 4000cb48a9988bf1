"""UnionPay ACP 5.1.0 against what UnionPay itself publishes: the SDK's signing and answer splitting
(SDKUtil), its certificate check (CertUtil.verifyCertificate) run on UnionPay's real published
chain, the answer table (the SDK demos), the consume's payTimeout, cancel or refund by settlement
day, the encryption certificate's daily refresh; and a gateway payment end to end."""
from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from gateway.channel import ChannelContext, CreatePayment, Outcome, PayoutRequest, RefundRequest, SettingsError
from gateway.config import AccountLimits, ChannelAccountConfig, CircuitConfig, Settings
from gateway.logs import get_logger
from plugins.unionpay import answers, wire
from plugins.unionpay.channel import UnionPayChannel
from plugins.unionpay.sim_files import Material
from tests.conftest import SECRET_KEY, ServerThread, free_port, wait_for
from tests.support.operator import Operator, books_clean
from tests.support.unionpay import MER_ID, ShiftedClock, UnionPayMerchant

PUBLISHED = Path(__file__).parent / "published"
BEIJING = wire.BEIJING


def published(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((PUBLISHED / f"{name}.pem").read_bytes())


# ---- the wire, as the SDK does it ----

def test_signing_drops_blank_fields_and_signs_the_sha256_hex_of_the_sorted_rest() -> None:
    key = wire.new_key()
    fields = {"txnAmt": "100", "merId": MER_ID, "orderId": " o1 ", "version": "5.1.0", "empty": "", "blank": "  "}
    signed = wire.sign(fields, key, "69629715588")
    # AcpService.sign: SDKUtil.filterBlank (blank values dropped, values trimmed), then coverMap2String
    assert "empty" not in signed and "blank" not in signed and signed["orderId"] == "o1"
    expected = "certId=69629715588&merId=777290058110048&orderId=o1&signMethod=01&txnAmt=100&version=5.1.0"
    assert wire.signing_string(signed) == expected
    assert wire.digest(signed) == hashlib.sha256(expected.encode()).hexdigest().encode()
    assert wire.verify_with_key(signed, key.public_key())
    # A notification read as the SDK demos read it (getAllRequestParam drops empty fields) still verifies.
    assert wire.verify_with_key({**signed, "reserved": ""}, key.public_key())
    assert not wire.verify_with_key({**signed, "txnAmt": "101"}, key.public_key())


def test_answers_are_split_as_the_sdk_splits_them() -> None:
    """SDKUtil.parseQString: a key ends at its first '=', and '&' inside {…} or […] splits nothing."""
    text = "respCode=00&customerInfo={customerNm=张三&phoneNo=1380}&reserved=[a&b=c]&respMsg=a=b&accNo="
    assert wire.parse_answer(text) == {"respCode": "00", "customerInfo": "{customerNm=张三&phoneNo=1380}",
                                       "reserved": "[a&b=c]", "respMsg": "a=b", "accNo": ""}
    with pytest.raises(wire.WireError):
        wire.parse_answer("=nameless&a=1")


# ---- certificates: UnionPay's published chain, and the SDK's owner rule ----

@pytest.mark.parametrize("env,at", [("prod", datetime(2016, 6, 1, tzinfo=UTC)), ("test", datetime(2016, 6, 1, tzinfo=UTC))])
def test_unionpays_published_sha1_chain_verifies(env: str, at: datetime) -> None:
    root, middle, leaf = (published(f"acp_{env}_{n}") for n in ("root", "middle", "enc"))
    assert {c.signature_hash_algorithm.name for c in (root, middle, leaf)} == {"sha1"}
    with pytest.raises(ValueError, match="Unsupported signature algorithm"):
        middle.verify_directly_issued_by(root)          # why paymux checks each hop itself
    wire.check_chain(leaf, [root, middle], at, purpose="encrypt")
    # UnionPay's encryption certificates carry the test environment's owner part, even in production:
    assert wire.owner(leaf) == "00040000:SIGN"
    wire.check_chain(leaf, [root, middle], at, test_environment=True)
    with pytest.raises(wire.WireError) as caught:
        wire.check_chain(leaf, [root, middle], at)
    assert caught.value.reason == "wrong_owner"
    with pytest.raises(wire.WireError, match="not valid now"):
        wire.check_chain(leaf, [root, middle], datetime(2030, 1, 1, tzinfo=UTC), purpose="encrypt")
    with pytest.raises(wire.WireError, match="does not chain"):    # the root alone: no path through the middle
        wire.check_chain(leaf, [root], at, purpose="encrypt")


def test_the_simulators_chain_has_the_shape_of_unionpays_published_one() -> None:
    sim = Material.new()
    for ours, theirs in ((sim.root, published("acp_prod_root")), (sim.middle, published("acp_prod_middle")),
                         (sim.enc_cert, published("acp_prod_enc"))):
        assert ours.signature_hash_algorithm.name == theirs.signature_hash_algorithm.name == "sha1"
        for kind in (x509.BasicConstraints, x509.KeyUsage):
            mine = [e for e in ours.extensions if isinstance(e.value, kind)]
            real = [e for e in theirs.extensions if isinstance(e.value, kind)]
            assert [(e.critical, e.value) for e in mine] == [(e.critical, e.value) for e in real]
    cn = sim.sign_cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    real_cn = published("acp_prod_enc").subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn.split("@")[0] == real_cn.split("@")[0] == "041" and len(cn.split("@")) == len(real_cn.split("@")) == 4
    assert wire.owner(sim.sign_cert) == wire.UNIONPAY_NAME


def _signed_by(sim: Material, common_name: str, **kwargs) -> tuple:  # noqa: ANN003
    key = wire.new_key()
    return key, Material.leaf(common_name, "CFCA OCA1", key, sim.middle, sim.mid_key, **kwargs)


def test_the_owner_is_the_third_part_of_the_cn_exactly_and_only_a_current_ca_chain_is_believed() -> None:
    sim = Material.new()
    trusted, now = [sim.root, sim.middle], datetime.now(UTC)
    genuine = {"respCode": "00", "txnAmt": "1"}
    merchant = UnionPayMerchant()
    merchant.sim.material = sim
    wire.verify(merchant.sim.signed(genuine), trusted, now)
    owners = {f"{wire.UNIONPAY_NAME}@041@Z12@0001": "wrong_owner",              # the owner, but elsewhere
              f"041@Z12@{wire.UNIONPAY_NAME}有限@0001": "wrong_owner",            # a longer name containing it
              f"041@Z12@x{wire.UNIONPAY_NAME}@0001": "wrong_owner",
              f"041@Z2014-11-11@{wire.TEST_ENVIRONMENT_NAME}@00000005": "wrong_owner",   # test env, not enabled
              f"041@Z12@{wire.UNIONPAY_NAME}@0001": None}
    for common_name, reason in owners.items():
        key, cert = _signed_by(sim, common_name)
        fields = merchant.sim.signed(genuine, key, cert)
        if reason is None:
            wire.verify(fields, trusted, now)
            continue
        with pytest.raises(wire.WireError) as caught:
            wire.verify(fields, trusted, now)
        assert caught.value.reason == reason, common_name
    key, cert = _signed_by(sim, f"041@Z2014-11-11@{wire.TEST_ENVIRONMENT_NAME}@00000005")
    wire.verify(merchant.sim.signed(genuine, key, cert), trusted, now, test_environment=True)
    # Chains that do not hold: an issuer that is no CA, a leaf that is a CA, a key usage without signing,
    # a look-alike root, an expired leaf, a changed field.
    not_ca_key = wire.new_key()
    not_ca = wire.issue(sim.middle.subject, not_ca_key, sim.root, sim.root_key, ca=False)
    owner_cn = f"041@Z12@{wire.UNIONPAY_NAME}@0001"
    leaf_key = wire.new_key()
    under_not_ca = wire.issue(wire.entity_name(owner_cn, "CFCA OCA1"), leaf_key, not_ca, not_ca_key, ca=False)
    ca_leaf = wire.issue(wire.entity_name(owner_cn, "CFCA OCA1"), leaf_key, sim.middle, sim.mid_key, ca=True)
    no_signing = Material.leaf(owner_cn, "CFCA OCA1", leaf_key, sim.middle, sim.mid_key, usage=x509.KeyUsage(
        False, False, True, False, False, False, False, False, False))
    impostor = Material.new()
    expired = Material.leaf(owner_cn, "CFCA OCA1", leaf_key, sim.middle, sim.mid_key,
                            not_before=now - timedelta(days=30), days=10)
    cases = [(under_not_ca, [sim.root, not_ca], "untrusted_certificate", leaf_key),
             (ca_leaf, trusted, "untrusted_certificate", leaf_key),
             (no_signing, trusted, "untrusted_certificate", leaf_key),
             (impostor.sign_cert, trusted, "untrusted_certificate", impostor.sign_key),
             (expired, trusted, "certificate_expired", leaf_key)]
    for cert, chain, reason, key in cases:
        with pytest.raises(wire.WireError) as caught:
            wire.verify(merchant.sim.signed(genuine, key, cert), chain, now)
        assert caught.value.reason == reason, cert.subject
    with pytest.raises(wire.WireError, match="signature"):
        wire.verify({**merchant.sim.signed(genuine), "txnAmt": "2"}, trusted, now)
    sha256 = Material.leaf(owner_cn, "CFCA OCA1", leaf_key, sim.middle, sim.mid_key, algorithm=hashes.SHA256())
    wire.verify(merchant.sim.signed(genuine, leaf_key, sha256), trusted, now)     # a SHA-256 leaf is fine too


@pytest.mark.parametrize("change,message", [
    ({"mer_id": "12"}, "mer_id"), ({"sign_cert": "x"}, "sign_cert"), ({"verify_cert": "nonsense"}, "verify_cert"),
    ({"secret": "x"}, "unknown setting"), ({"test_environment": "yes"}, "test_environment"),
    ({"pay_timeout_minutes": 0}, "pay_timeout_minutes"),
])
def test_bad_settings_name_the_key(change: dict, message: str) -> None:
    merchant = UnionPayMerchant()
    with pytest.raises(SettingsError, match=message):
        UnionPayChannel.parse_settings({**merchant.settings("http://x"), **change})


def test_the_test_environment_setting_points_at_unionpays_test_hosts() -> None:
    merchant = UnionPayMerchant(test_environment=True)
    settings = {k: v for k, v in merchant.settings("http://x").items() if k not in ("base_url", "file_url")}
    parsed = UnionPayChannel.parse_settings(settings)
    assert (parsed.base_url, parsed.file_url) == ("https://gateway.test.95516.com", "https://filedownload.test.95516.com/")
    production = UnionPayChannel.parse_settings({**settings, "test_environment": False})
    assert (production.base_url, production.file_url) == ("https://gateway.95516.com", "https://filedownload.95516.com/")


# ---- the answer table ----

def test_every_answer_row_names_its_source_and_the_codes_read_as_the_demos_say() -> None:
    assert all(row.source for row in answers.TABLE)
    for code in ("03", "04", "05", "01", "12", "34", "60"):
        assert answers.query("payout_query", {"respCode": "00", "origRespCode": code}) is answers.Meaning.ASK_AGAIN
    for code in ("03", "04", "05", "01", "12", "60", "00", "A6"):
        assert answers.meaning("payout_request", "respCode", code) is answers.Meaning.ASK_AGAIN
    assert answers.query("payout_query", {"respCode": "34"}) is answers.Meaning.ASK_AGAIN
    assert answers.query("payout_query", {"respCode": "00", "origRespCode": "A6"}) is answers.Meaning.SUCCEEDED
    assert answers.query("payout_query", {"respCode": "00", "origRespCode": "61"}) is answers.Meaning.FAILED
    assert answers.query("payout_query", {"respCode": "11"}) is answers.Meaning.UNKNOWN
    assert answers.query("consume_query", {"respCode": "00", "origRespCode": "05"}) is answers.Meaning.OPEN_UNTIL_TIMEOUT


# ---- the plugin against the simulator, in process, on a clock of the test's own ----

def reference(at: datetime) -> str:
    """A number made at `at`, as paymux makes them (its first 12 hex digits: milliseconds)."""
    return f"{int(at.timestamp() * 1000):012x}{secrets.token_hex(10)}"


class Plugin:
    """The plugin and the simulator on one clock, over the simulator's ASGI app (no sockets)."""

    def __init__(self, clock: ShiftedClock, merchant: UnionPayMerchant | None = None, **settings) -> None:  # noqa: ANN003
        self.clock, self.merchant = clock, merchant or UnionPayMerchant(clock)
        self.sim = self.merchant.sim
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.sim.app), base_url="http://up")
        raw = self.merchant.settings("http://up", back_url="http://shop.invalid/notify", **settings)
        self.channel = UnionPayChannel(ChannelContext("up", UnionPayChannel.parse_settings(raw), self.http, clock,
                                                      get_logger(), "http://gateway.invalid"))
        self.sim.faults.drop_notifications = True

    async def paid_consume(self, amount: int = 5000, outcome: str = "success", minutes: int = 15) -> str:
        number = reference(self.clock.now())
        created = await self.channel.create(CreatePayment(number, amount, "CNY", "x", "web",
                                                          self.clock.now() + timedelta(minutes=minutes)))
        assert (await self.http.post("/gateway/api/frontTransReq.do", data=created.action["fields"])).status_code == 200
        assert (await self.http.post(f"/sim/orders/{number}/pay", json={"outcome": outcome})).status_code == 200
        return number


def at_beijing(hour: int, minute: int) -> timedelta:
    """The offset that puts a ShiftedClock at hour:minute Beijing time, today."""
    now = datetime.now(BEIJING)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0) - now


def test_a_consume_answered_05_is_open_until_its_pay_timeout_and_a6_is_paid() -> None:
    async def run() -> None:
        clock = ShiftedClock()
        up = Plugin(clock)
        pending = await up.paid_consume(outcome="processing", minutes=15)     # the bank has not confirmed: 05
        assert up.sim.order(pending).code == "05"
        answer = await up.channel.query(pending)
        assert answer.outcome is Outcome.PENDING and answer.error_code == "05"
        clock.offset = timedelta(minutes=14)
        assert (await up.channel.query(pending)).outcome is Outcome.PENDING        # payTimeout not passed
        clock.offset = timedelta(minutes=15 + 3)
        late = await up.channel.query(pending)
        assert late.outcome is Outcome.FAILED and late.error_code == "05"         # past it: not paid is final
        clock.offset = timedelta()
        defective = await up.paid_consume(outcome="a6")
        paid = await up.channel.query(defective)
        assert (paid.outcome, paid.amount) == (Outcome.SUCCEEDED, 5000)
        declined = await up.paid_consume(outcome="fail")                         # 64: the payer may try again
        assert (await up.channel.query(declined)).outcome is Outcome.PENDING
        await up.http.aclose()

    asyncio.run(run())


def test_a_full_refund_after_23_beijing_of_a_consume_before_is_a_refund_and_a_refused_cancel_becomes_one() -> None:
    async def run() -> None:
        clock = ShiftedClock()
        up = Plugin(clock)

        async def full_refund(consume: str) -> tuple[str, str]:
            number = reference(clock.now())
            result = await up.channel.refund(RefundRequest(consume, number, 5000, 5000, "CNY", None))
            assert result.outcome is Outcome.PENDING, result
            await asyncio.sleep(0.1)                           # UnionPay completes it after answering
            sent = [o for o in up.sim.orders.values() if o.txn_type in ("04", "31") and o.orig_query_id ==
                    up.sim.order(consume).query_id]
            done = await up.channel.query_refund(consume, number)
            assert done.outcome is Outcome.SUCCEEDED, done
            return number, ",".join(o.txn_type for o in sent)

        clock.offset = at_beijing(22, 30)
        same_day = await up.paid_consume()
        clock.offset = at_beijing(22, 50)
        assert (await full_refund(same_day))[1] == "31"                 # same settlement day: a cancel
        clock.offset = at_beijing(22, 30)
        turned = await up.paid_consume()
        clock.offset = at_beijing(23, 10)                               # UnionPay's day turned at 23:00
        assert (await full_refund(turned))[1] == "04"
        # Our clock a little behind UnionPay's at the turn: we ask for a cancel, UnionPay refuses it (39),
        # and the same money goes back as a refund under its own orderId.
        clock.offset = at_beijing(22, 30)
        late = await up.paid_consume()
        ours = ShiftedClock()
        ours.offset = at_beijing(22, 59) + timedelta(seconds=50)
        up.sim.clock = ShiftedClock()
        up.sim.clock.offset = at_beijing(23, 0) + timedelta(seconds=10)
        up.channel.ctx = ChannelContext("up", up.channel.ctx.settings, up.http, ours, get_logger(), "http://x")
        clock.offset = ours.offset
        number, kinds = await full_refund(late)
        assert kinds == "04"
        fallback = up.sim.order("R" + number[1:])
        assert fallback is not None and fallback.txn_type == "04" and fallback.code == "00"
        assert [f["txnType"] for f in up.sim.received
                if f["orderId"] in (number, "R" + number[1:]) and f["txnType"] != "00"] == ["31", "04"]
        await up.http.aclose()

    asyncio.run(run())


def test_refunds_and_cancels_carry_the_currency() -> None:
    async def run() -> None:
        up = Plugin(ShiftedClock())
        consume = await up.paid_consume()
        await up.channel.refund(RefundRequest(consume, reference(datetime.now(UTC)), 100, 5000, "CNY", None))
        other = await up.paid_consume()
        await up.channel.refund(RefundRequest(other, reference(datetime.now(UTC)), 5000, 5000, "CNY", None))
        sent = [(f["txnType"], f.get("currencyCode")) for f in up.sim.received if f["txnType"] in ("04", "31")]
        assert sent == [("04", "156"), ("31", "156")]
        await up.http.aclose()

    asyncio.run(run())


def test_the_encryption_certificate_is_asked_for_daily_and_believed_only_under_the_root() -> None:
    async def run() -> None:
        clock = ShiftedClock()
        up = Plugin(clock)
        first = up.sim.encrypt_cert.serial_number

        async def pay_out() -> str:
            number = reference(clock.now())
            result = await up.channel.payout(PayoutRequest(number, 100, "CNY", "张三", "6216261000000000018", None, None))
            assert result.outcome is Outcome.PENDING, result
            return number

        number = await pay_out()
        assert up.sim.order(number) is not None
        rotated = int((await up.http.post("/sim/encrypt_cert/rotate")).json()["serial"])
        await pay_out()                                   # the same day: the certificate asked for this morning
        clock.offset = timedelta(days=1, minutes=1)
        await pay_out()                                   # a day later: asked again, the new one is used
        sent = [(f["encryptCertId"], f.get("accType")) for f in up.sim.received if f["txnType"] == "12"]
        assert sent == [(str(first), "01"), (str(first), "01"), (str(rotated), "01")]
        assert [f["txnType"] for f in up.sim.received].count("95") == 2
        # A certificate UnionPay's root did not issue is not believed: the one we have stays in use.
        stranger = Material.new()
        up.sim.material.enc_cert = stranger.enc_cert
        clock.offset = timedelta(days=2, minutes=2)
        await pay_out()
        assert up.sim.received[-1]["encryptCertId"] == str(rotated)
        await up.http.aclose()

    asyncio.run(run())


# ---- a gateway payment, end to end ----

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
        assert fields["backUrl"] == f"{settings.public_url}/v1/notify/up" and fields["payTimeout"]   # always sent
        merchant.pay(url, payment)
        assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
        refund = client.create_refund(payment["id"], merchant_refund_no="up-r1", amount=2345)
        assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
        assert client.get_payment(payment["id"])["amount_refunded"] == 2345
        forged, headers = merchant.notification(payment, forge=True)
        assert httpx.post(f"{settings.public_url}/v1/notify/up", content=forged, headers=headers).status_code == 400
        # A declined card is not notified (front transactions are notified only when they succeed).
        declined = client.create_payment(merchant_order_no="up-2", amount=100, channel="up")
        merchant.pay(url, declined, outcome="fail")
        assert client.get_payment(declined["id"], sync=True)["status"] == "processing"
        report = Operator(settings, tmp_path).reconcile("up", wire.settlement_day(datetime.now(UTC)).date())
        assert report["status"] == "completed", report
        assert report["counts"]["matched"] == 2 and report["open"] == 0, report
        assert books_clean(gw)
