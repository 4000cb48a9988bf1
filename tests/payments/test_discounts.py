"""Money enters the books only from verified sources: nothing a merchant sends but the amount it asks
for moves money; a discount is booked as the channel's verified answer says, to whoever funded it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.books import full_check
from gateway.channel import Discount, Outcome, PaymentResult
from gateway.client import PaymuxAPIError
from gateway.discounts import problem
from ledger.chart import DEFAULT_LEDGER_CONFIG, fee_for
from tests.conftest import checkout, free_port, make_settings, wait_for

BPS = 60  # conf/ledger.toml default

# Every spelling of "give me money" a merchant might try in metadata.
GREEDY_METADATA = [
    {"coupon_amount": "5000000", "coupon_funded_by": "platform"},
    {"coupon_amount": "5000000", "coupon_funded_by": "merchant"},
    {"discount": "5000000", "platform_coupon": "5000000", "fee": "0", "fee_bps": "0"},
    {"promotion_detail": '[{"amount":5000000,"other_contribute":5000000,"type":"NOCASH","stock_id":"spring"}]'},
    {"voucher_detail_list": '[{"amount":"50000.00","other_contribute":"50000.00","template_id":"spring"}]'},
    {"settled_amount": "5000000", "payer_amount": "0", "receipt_amount": "50000.00", "campaign": "spring"},
    {"amount": "5000000", "total_amount": "50000.00", "currency": "USD"},
]
GREEDY_FIELDS = [{"coupon_amount": 5000000}, {"discount": 5000000}, {"fee": 0}, {"settled_amount": 5000000},
                 {"promotions": [{"amount": 5000000, "other_contribute": 5000000, "kept": True}]},
                 {"campaign": "spring"}, {"platform_coupon": 5000000}]


def campaign_config(tmp_path: Path, budget: int) -> str:
    path = tmp_path / "ledger.toml"
    path.write_text(DEFAULT_LEDGER_CONFIG.read_text() + f"""
[campaigns.spring]
channel_ids = ["stock-spring"]
channel_accounts = ["sandbox"]
budget = {budget}
""")
    return str(path)


def gateway_with(gateway_factory, db_url: str, ledger_config: str | None = None):  # noqa: ANN001, ANN201
    base = make_settings(db_url, free_port())
    return gateway_factory(dataclasses.replace(base, ledger_config=ledger_config) if ledger_config else base)


def pay(payment: dict, **coupon: str) -> dict:
    """The payer pays at the sandbox checkout, using a coupon the sandbox then reports."""
    url = payment["action"].get("url") or payment["action"].get("code")
    response = httpx.post(url, data={"outcome": "success", **coupon}, headers={"Accept": "application/json"},
                          timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def entries(gw) -> list[tuple[str, list[int]]]:  # noqa: ANN001
    from sqlalchemy import text

    with gw.gateway.db.transaction() as conn:
        rows = conn.execute(text("SELECT e.event_type, p.amount FROM ledger_entries e "
                                 "JOIN ledger_postings p ON p.entry_id = e.id ORDER BY e.id")).all()
    grouped: dict[str, list[int]] = {}
    for event_type, amount in rows:
        grouped.setdefault(event_type, []).append(int(amount))
    return list(grouped.items())


def books_clean(gw) -> bool:  # noqa: ANN001
    with gw.gateway.db.transaction() as conn:
        return full_check(conn) == []


def test_a_one_fen_payment_with_any_metadata_raises_nobodys_balance_by_more_than_one_fen(
        gateway_factory, db_url, tmp_path) -> None:
    # A campaign is configured, so a merchant naming it would be the way in if there were one.
    gw = gateway_with(gateway_factory, db_url, campaign_config(tmp_path, 10**9))
    creds = gw.merchant()
    client = gw.client(creds)
    for i, fields in enumerate(GREEDY_FIELDS):  # money-looking parameters are not parameters: 400, nothing written
        with pytest.raises(PaymuxAPIError) as err:
            client.create_payment(merchant_order_no=f"extra-{i}", amount=1, **fields)
        assert err.value.status == 400 and err.value.error["code"] == "parameter_unknown"
    assert gw.count("payments") == 0
    paid = 0

    def one_fen(metadata: dict[str, str]) -> None:
        nonlocal paid
        payment = client.create_payment(merchant_order_no=f"o-{paid}", amount=1, metadata=metadata)
        checkout(payment)
        paid += 1
        assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")

    for metadata in GREEDY_METADATA:
        one_fen(metadata)

    text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)

    @settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.one_of(st.sampled_from(["coupon_amount", "coupon_funded_by", "discount", "campaign",
                                                      "fee", "amount", "settled_amount"]), text.filter(bool)),
                           st.one_of(st.sampled_from(["platform", "merchant", "spring", "stock-spring", "5000000"]),
                                     text), max_size=20))
    def any_metadata(metadata: dict[str, str]) -> None:
        one_fen(metadata)

    any_metadata()
    assert {event for event, _ in entries(gw)} == {"payment.succeeded"}
    assert all(abs(amount) <= 1 for _, amounts in entries(gw) for amount in amounts)
    assert all(abs(balance) <= paid for balance in gw.balances().values())
    assert gw.balances()[("merchant_in_transit", creds.merchant_id)] == paid   # 1 fen each, no fee on 1 fen
    assert books_clean(gw)


def test_a_channel_reported_discount_is_booked_to_the_funder_it_names(gateway_factory, db_url, tmp_path) -> None:
    gw = gateway_with(gateway_factory, db_url, campaign_config(tmp_path, budget=150))
    creds = gw.merchant()
    client = gw.client(creds)
    m = creds.merchant_id

    def paid(order: str, **coupon: str) -> dict:
        payment = client.create_payment(merchant_order_no=order, amount=1000)
        pay(payment, **coupon)
        assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
        return client.get_payment(payment["id"])

    # The merchant's own coupon, kept out of the settlement: the merchant gives it up.
    own = paid("own", coupon_amount="100", coupon_funded_by="merchant")
    assert own["fee"] == fee_for(900, BPS)
    assert own["discount"]["kept_by_channel"] == 100 and own["discount"]["lines"][0]["funded_by"]["merchant"] == 100
    # The channel's own coupon: it pays us the whole order, the merchant gets all of it.
    channel = paid("channel", coupon_amount="100", coupon_funded_by="channel")
    assert channel["fee"] == fee_for(1000, BPS) and channel["discount"]["kept_by_channel"] == 0
    # The platform's campaign, named by the channel: paid back to the merchant, within its budget.
    spring = paid("spring", coupon_amount="100", coupon_funded_by="other", coupon_kept="true", coupon_id="stock-spring")
    assert spring["discount"]["paid_back_by_platform"] == 100
    over = paid("over", coupon_amount="100", coupon_funded_by="other", coupon_kept="true", coupon_id="stock-spring")
    assert over["discount"]["paid_back_by_platform"] == 50    # 150 budget: 50 left
    # The campaign's id on a coupon the channel says the merchant funded: the merchant's, not the campaign's.
    claimed = paid("claimed", coupon_amount="100", coupon_funded_by="merchant", coupon_id="stock-spring")
    assert claimed["discount"]["paid_back_by_platform"] == 0
    # Someone else's coupon of a stock the platform never configured: nobody pays it back.
    stranger = paid("stranger", coupon_amount="100", coupon_funded_by="other", coupon_kept="true",
                    coupon_id="stock-unknown")
    assert stranger["discount"]["paid_back_by_platform"] == 0

    b = gw.balances()
    assert b[("channel_clearing", "sandbox")] == 900 + 1000 + 900 + 900 + 900 + 900
    assert b[("coupon_expense", "spring")] == 150
    assert b[("merchant_in_transit", m)] == ((900 - fee_for(900, BPS)) + (1000 - fee_for(1000, BPS))
                                             + (900 - fee_for(900, BPS) + 100) + (900 - fee_for(900, BPS) + 50)
                                             + 2 * (900 - fee_for(900, BPS)))
    assert books_clean(gw)

    # Refunds take back the discount's share: the channel returns what it kept back to the coupon,
    # a campaign gets its payback back, and a full refund leaves nothing behind for anyone.
    for payment in (own, spring):
        first = client.create_refund(payment["id"], merchant_refund_no=f"{payment['merchant_order_no']}-1", amount=333)
        assert first["discount_refund"] == 33
        client.create_refund(payment["id"], merchant_refund_no=f"{payment['merchant_order_no']}-2", amount=667)
        assert wait_for(lambda p=payment: client.get_payment(p["id"])["amount_refunded"] == 1000)
    b = gw.balances()
    assert b[("channel_clearing", "sandbox")] == 1000 + 900 + 900 + 900
    assert b[("coupon_expense", "spring")] == 50
    assert b[("refunds_payable", m)] == 0
    assert b[("merchant_in_transit", m)] == ((1000 - fee_for(1000, BPS)) + (900 - fee_for(900, BPS) + 50)
                                             + 2 * (900 - fee_for(900, BPS)))
    assert books_clean(gw)


@pytest.mark.parametrize("result, why", [
    (PaymentResult(Outcome.SUCCEEDED, discounts=(Discount(1001, merchant_funded=1001, unsettled=1001),)),
     "discounts of 1001 on an order of 1000"),
    (PaymentResult(Outcome.SUCCEEDED, discounts=(Discount(100, merchant_funded=60, other_funded=30),)),
     "discount of 100 funded 60+0+30"),
    (PaymentResult(Outcome.SUCCEEDED, discounts=(Discount(100, merchant_funded=100, unsettled=101),)),
     "discount of 100 cannot keep 101 from the settlement"),
    (PaymentResult(Outcome.SUCCEEDED, discounts=(Discount(-5, merchant_funded=-5),)),
     "discount figures must be non-negative integers"),
    (PaymentResult(Outcome.SUCCEEDED, discounts=(Discount(100, channel_funded=100),), payer_amount=1000),
     "the payer paid 1000 of 1000 with discounts of 100"),
    (PaymentResult(Outcome.SUCCEEDED, discounts=(Discount(100, merchant_funded=100, unsettled=100),),
                   settled_amount=1000), "the channel pays 1000 of 1000 while keeping 100"),
])
def test_discount_figures_that_cannot_be_true_are_not_believed(result: PaymentResult, why: str) -> None:
    assert problem(1000, result) == why


def test_discount_figures_that_add_up_are_believed() -> None:
    result = PaymentResult(Outcome.SUCCEEDED, discounts=(Discount(100, merchant_funded=100, unsettled=100),
                                                         Discount(50, channel_funded=20, other_funded=30)),
                           payer_amount=850, settled_amount=900)
    assert problem(1000, result) is None


def test_a_campaign_names_where_its_coupons_are() -> None:
    import tomllib

    from ledger.chart import ChartError, chart_from_mapping, load_chart

    raw = tomllib.loads(DEFAULT_LEDGER_CONFIG.read_text())
    raw["campaigns"] = {"spring": {"channel_ids": ["9856000"], "budget": 100}}
    with pytest.raises(ChartError, match="channel_accounts"):
        chart_from_mapping(raw)
    raw["campaigns"]["spring"]["channel_accounts"] = ["wx"]
    campaign = chart_from_mapping(raw).campaign_for("9856000", "mch_any", "wx", "CNY")
    assert campaign is not None and chart_from_mapping(raw).campaign_for("9856000", "mch_any", "ali", "CNY") is None
    assert load_chart().campaigns == {}
