"""Fees by rule (gateway/fees.py, docs/fees.md): the page's rule set charges what its table says; the
most specific rule wins; a rule set that leaves a combination uncovered or overlaps ambiguously stops
start-up naming it; a booked fee records its rule; a refund gives back what the rule says; tiers read
the merchant's month volume before today; the margin report adds up to the ledger."""
from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from sqlalchemy import insert, select

from gateway.clock import Clock
from gateway.config import settings_from_mapping
from gateway.db import Database
from gateway.errors import ConfigError
from gateway.fees import FeeRule, FeeRules, MonthVolumes, fee_rules, parse_fee_config
from gateway.logs import get_logger
from gateway.merchants import create_merchant
from gateway.models import Payment, Payout
from gateway.reconciliation.match import CostTable, CostTerms, classify
from gateway.reports import margin_report
from gateway.secretbox import SecretBox
from gateway.service import Gateway
from ledger.booking import Booker, PaymentFacts
from ledger.chart import load_chart
from ledger.core import Ledger
from ledger.days import BusinessDay
from ledger.reads import total_balance
from tests.conftest import SECRET_KEY, Running, checkout, free_port, make_settings, wait_for
from tests.docs.blocks import blocks
from tests.recon.test_matching import D, lines, local_payments, local_refunds
from tests.support import REPO, payouts
from tests.support.console import Browser, add_operator

PAGE = REPO / "docs" / "fees.md"
CHART = load_chart()

# merchant, account, method, amount, month volume -> fee, rule: the page's table, row for row.
CASES = [
    ("demo", "sandbox", "redirect", 10000, 0, 60, "standard"),
    ("demo", "sandbox", "redirect", 125, 0, 1, "standard"),            # 0.75 rounds half up
    ("demo", "sandbox", "redirect", 83, 0, 0, "standard"),             # 0.498 rounds down
    ("demo", "sandbox", "qr", 100000, 0, 390, "qr-floor"),             # 380 + 10 fixed
    ("demo", "sandbox", "qr", 10000, 0, 50, "qr-floor"),               # 48: the minimum
    ("demo", "sandbox", "qr", 20, 0, 20, "qr-floor"),                  # never more than the amount
    ("demo", "sandbox", "qr", 1000000, 0, 2000, "qr-floor"),           # 3810: the maximum
    ("mch_bigshop", "sandbox", "qr", 10000, 0, 55, "big-shop"),        # the merchant beats account × method
    ("mch_bigshop", "sandbox", "qr", 10000, 10000000, 45, "big-shop"),
    ("mch_bigshop", "sandbox", "redirect", 10000, 60000000, 35, "big-shop"),
]


def page_config() -> dict[str, Any]:
    """The page's rule set: the config it writes to fees.toml."""
    return tomllib.loads(next(b for b in blocks(PAGE) if b.file == "fees.toml").code)


def page_table() -> list[tuple]:
    rows = re.findall(r"^\| (\S+) \| (\S+) \| (\S+) \| (\d+) \| (\d+) \| (\d+) \| (\S+) \|$", PAGE.read_text(), re.M)
    return [(m, a, x, int(n), int(v), int(f), r) for m, a, x, n, v, f, r in rows]


def rules_of(raw: dict[str, Any], volume: int = 0) -> FeeRules:
    settings = settings_from_mapping(raw, {})
    return FeeRules.from_settings(settings, CHART.fees, volume=lambda merchant, at, conn=None: volume)


def test_the_page_shows_the_table_this_test_checks() -> None:
    assert page_table() == CASES


@pytest.mark.parametrize("merchant, account, method, amount, volume, fee, rule", CASES)
def test_the_pages_rule_set_charges_what_its_table_says(merchant: str, account: str, method: str, amount: int,
                                                        volume: int, fee: int, rule: str) -> None:
    quote = rules_of(page_config(), volume).quote("payment", merchant, account, method, amount)
    assert quote is not None and (quote.fee, quote.rule.name) == (fee, rule)


def test_the_most_specific_rule_wins_merchant_over_account_over_method() -> None:
    rules = FeeRules([FeeRule("any", "payment", bps=1), FeeRule("method", "payment", method="qr", bps=2),
                      FeeRule("account", "payment", account="a", bps=3),
                      FeeRule("account-method", "payment", account="a", method="qr", bps=4),
                      FeeRule("merchant", "payment", merchant="m", bps=5)])
    chosen = {combo: rules.rule("payment", *combo).name for combo in
              [("x", "b", "card"), ("x", "b", "qr"), ("x", "a", "card"), ("x", "a", "qr"), ("m", "a", "qr")]}
    assert chosen == {("x", "b", "card"): "any", ("x", "b", "qr"): "method", ("x", "a", "card"): "account",
                      ("x", "a", "qr"): "account-method", ("m", "a", "qr"): "merchant"}


@pytest.mark.parametrize("fees, message", [
    ({"rules": [{"name": "a", "account": "s", "bps": 1}, {"name": "b", "account": "s", "bps": 2}]},
     "fee rules 'a' and 'b' overlap ambiguously"),
    ({"rules": [{"name": "t", "tiers": [{"from": 0, "bps": 5}, {"from": 0, "bps": 4}]}]}, "tiers overlap"),
    ({"rules": [{"name": "t", "tiers": [{"from": 10, "bps": 5}]}]}, "tiers must start from 0"),
    ({"rules": [{"name": "t", "bps": 3, "tiers": [{"from": 0, "bps": 5}]}]}, "tiers replace bps"),
    ({"rules": [{"name": "f", "bps": 10.5}]}, "fees.rules[0] (f).bps must be a whole number"),
    ({"rules": [{"name": "m", "min": 10, "max": 5}]}, "max is below min"),
    ({"rules": [{"bps": 5}]}, "name is required"),
    ({"rules": [{"name": "r", "refund": "half"}]}, "refund must be one of all, pro_rata, none"),
    ({"payout_rules": [{"name": "p", "method": "qr"}]}, "a payout rule has no method"),
    ({"cost_rules": [{"name": "c", "tiers": [{"from": 0, "bps": 5}]}]}, "only merchant fee rules"),
])
def test_a_malformed_or_ambiguous_rule_set_is_refused_naming_it(fees: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_mapping({"fees": fees}, {})


def test_start_up_stops_when_a_method_of_an_account_is_uncovered(sqlite_url: str) -> None:
    only_qr = parse_fee_config({"rules": [{"name": "qr-only", "method": "qr", "bps": 30}]})
    settings = replace(make_settings(sqlite_url, free_port()), fees=only_qr)
    with pytest.raises(ConfigError) as refused:
        Gateway.build(settings, get_logger())
    assert "payment: merchant * × account sandbox × method redirect" in str(refused.value)
    assert "method qr" not in str(refused.value)


def test_without_rules_the_single_rates_of_the_chart_are_the_rules(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, free_port())
    settings = replace(settings, channel_accounts=(replace(settings.channel_accounts[0], fee_bps=25),))
    rules = fee_rules(settings, CHART)
    assert rules.quote("payment", "m", "sandbox", "qr", 10000).rule.name == "default"
    assert rules.payment_fee(PaymentFacts("p", "m", "sandbox", 10001, "CNY", "qr"), 10001) == (60, "default")
    assert rules.payout_fee("m", "sandbox", 50000) == (CHART.fees.payout_fee, "payout_fee")
    assert rules.cost("m", "sandbox", "qr", 10000) == 25
    assert rules.refund_policy(None) == "pro_rata"


@pytest.mark.parametrize("policy, given_back", [("all", [60, 0]), ("pro_rata", [18, 42]), ("none", [0, 0])])
def test_a_refund_gives_back_the_fee_as_its_rule_says(policy: str, given_back: list[int]) -> None:
    booker = Booker(Ledger(CHART), FeeRules([FeeRule("r", "payment", bps=60, refund=policy)]))
    first = booker.fee_refund(10000, 60, 3000, 0, completes=False, refunded_before=0, rule="r")
    rest = booker.fee_refund(10000, 60, 7000, first, completes=True, refunded_before=3000, rule="r")
    assert [first, rest] == given_back


def test_a_tier_reads_the_merchants_succeeded_volume_this_month_before_today(db_url: str) -> None:
    db, day = Database(db_url), BusinessDay.of("Asia/Shanghai")
    at = datetime(2031, 3, 15, 4, 0, tzinfo=UTC)          # 12:00 on 15 March in Shanghai
    with db.transaction() as conn:
        shop = create_merchant(conn, SecretBox(SECRET_KEY), Clock(), "shop").merchant_id
        other = create_merchant(conn, SecretBox(SECRET_KEY), Clock(), "other").merchant_id
        for n, (merchant, paid, status, amount) in enumerate([
                (shop, datetime(2031, 2, 28, 16, 30, tzinfo=UTC), "succeeded", 1),      # 00:30 on 1 March there
                (shop, datetime(2031, 2, 28, 15, 59, tzinfo=UTC), "succeeded", 20),     # still February there
                (shop, datetime(2031, 3, 14, 15, 59, tzinfo=UTC), "succeeded", 300),    # 23:59 on the 14th
                (shop, datetime(2031, 3, 14, 16, 0, tzinfo=UTC), "succeeded", 4000),    # today: not yet
                (shop, datetime(2031, 3, 10, 4, 0, tzinfo=UTC), "failed", 50000),
                (other, datetime(2031, 3, 10, 4, 0, tzinfo=UTC), "succeeded", 600000)]):
            conn.execute(insert(Payment.__table__).values(
                id=f"pay_vol{n}", merchant_id=merchant, merchant_order_no=f"v{n}", amount=amount, currency="CNY",
                subject="s", channel_account="sandbox", method="qr", status=status, metadata={}, paid_at=paid,
                created_at=paid, updated_at=paid))
    try:
        volumes = MonthVolumes(db, day)
        assert volumes(shop, at) == 301
        assert volumes(other, at) == 600000
        assert volumes(shop, at + timedelta(days=1)) == 4301      # the next day counts today's
    finally:
        db.dispose()


@pytest.fixture
def fee_gateway(gateway_factory: Any, db_url: str) -> tuple[Running, dict[str, Any], dict[str, Any]]:
    """A gateway on the page's rule set, with "big-shop" for a merchant made before it starts."""
    db = Database(db_url)
    with db.transaction() as conn:
        shop = create_merchant(conn, SecretBox(SECRET_KEY), Clock(), "shop")
        big = create_merchant(conn, SecretBox(SECRET_KEY), Clock(), "big")
    db.dispose()
    fees = page_config()["fees"]
    fees["rules"] = [{**r, "merchant": big.merchant_id} if r["name"] == "big-shop" else r for r in fees["rules"]]
    settings = replace(make_settings(db_url, free_port()), fees=parse_fee_config(fees))
    gw = gateway_factory(settings)
    return gw, gw.client(shop), gw.client(big)


def paid(client: Any, order: str, amount: int, method: str) -> dict[str, Any]:
    payment = client.create_payment(merchant_order_no=order, amount=amount, method=method, subject="cup")
    checkout(payment)
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    return client.get_payment(payment["id"])


def test_a_booked_fee_records_its_rule_its_refund_follows_it_and_the_margin_adds_up(fee_gateway: Any) -> None:
    gw, shop, big = fee_gateway
    a = paid(shop, "a", 10000, "qr")          # qr-floor: 48, the minimum 50
    b = paid(shop, "b", 10000, "redirect")    # standard: 60
    c = paid(big, "c", 10000, "qr")           # big-shop, no volume yet: 55
    assert [p["fee"] for p in (a, b, c)] == [50, 60, 55]
    with gw.gateway.db.transaction() as conn:
        rules = dict(conn.execute(select(Payment.__table__.c.id, Payment.__table__.c.fee_rule)).all())
        memo = gw.gateway.ledger.entry(conn, f"payment:{a['id']}:payment.succeeded").memo
    assert (rules[a["id"]], rules[b["id"]], rules[c["id"]]) == ("qr-floor", "standard", "big-shop")
    assert memo == "fee rule qr-floor"
    add_operator(gw, "vera", "viewer")
    browser = Browser(gw.url)
    browser.sign_in("vera")
    assert "fee rule qr-floor" in browser.http.get(f"/console/payments/{a['id']}").text   # its page says it too

    # pro_rata gives back 3000/10000 of 60; big-shop's "none" gives back nothing.
    refunds = [(shop, shop.create_refund(b["id"], merchant_refund_no="rb", amount=3000)),
               (big, big.create_refund(c["id"], merchant_refund_no="rc", amount=3000))]
    assert [r["fee_refund"] for _, r in refunds] == [18, 0]
    assert all(wait_for(lambda: client.get_refund(r["id"])["status"] == "succeeded") for client, r in refunds)

    today = gw.gateway.ledger.day.date_of(gw.gateway.clock.now())
    with gw.gateway.db.transaction() as conn:
        report = margin_report(conn, gw.settings, gw.gateway.booker.fees, today, today)
        ledger_income = total_balance(conn, "fee_income")
    assert report["totals"]["fee_income"] == ledger_income == 50 + 60 + 55 - 18
    by_merchant = {r["merchant_id"]: r for r in report["merchants"]}
    assert by_merchant[shop.merchant_id]["fee_income"] == 50 + 60 - 18
    assert by_merchant[big.merchant_id]["fee_income"] == 55
    # sandbox-cost: 25 bps of each payment's 10000
    assert by_merchant[shop.merchant_id]["cost_by_rules"] == 50 and by_merchant[big.merchant_id]["margin"] == 30
    sandbox = next(r for r in report["channel_accounts"] if r["channel_account"] == "sandbox")
    assert (sandbox["fee_income"], sandbox["channel_cost"], sandbox["cost_by_rules"]) == (50 + 60 + 55 - 18, 0, 75)
    # The console's overview counts revenue the same way: fee income less what the channels charged.
    assert report["totals"]["margin"] == 147 and "CNY 1.47" in browser.http.get("/console/").text


def test_a_statement_fee_is_checked_against_the_accounts_cost_rule() -> None:
    """sandbox-cost of the page, with a fixed part and a floor: 25 bps + 0.05, at least 0.20 (refunds
    give back the basis points)."""
    cost = FeeRules([FeeRule("cost", "cost", account="sandbox", bps=25, fixed=5, min=20),
                     FeeRule("by-method", "cost", account="sandbox", method="qr", bps=99)]).account_cost("sandbox")
    assert cost is not None and cost.name == "cost"      # for any method: what a statement line is checked against
    statement = lines(
        (2, "payment", "c1", "T-big", None, 100000, 255000, "succeeded", "t"),     # 250 + 5
        (3, "payment", "c2", "T-small", None, 1000, 20000, "succeeded", "t"),      # 2.5 + 5: the floor of 20
        (4, "payment", "c3", "T-rate", None, 100000, 250000, "succeeded", "t"),    # the fixed part left out
        (5, "refund", "c1", "T-big", "R-1", 40000, -100000, "succeeded", "t"))     # 25 bps of 40000 back
    ours = local_payments(("T-big", "succeeded", 100000, D), ("T-small", "succeeded", 1000, D),
                          ("T-rate", "succeeded", 100000, D))
    result = classify(statement, ours, local_refunds(("R-1", "T-big", "succeeded", 40000, D)), business_date=D,
                      today=D, carry_days=3, fee_bps=CostTerms(cost.bps, cost.fixed, cost.min, cost.max))
    assert (result.counts["matched"], result.counts["fee_mismatch"]) == (3, 1)
    item = result.items.to_dicts()[0]
    assert (item["reference"], item["expected_fee_millis"]) == ("T-rate", 255000)


# Cost rules at one account: the account's, a merchant's and a method's; the most specific wins
# (merchant over method), as fees.quote resolves payment fees.
COSTS = FeeRules([FeeRule("sandbox-cost", "cost", account="sandbox", bps=60),
                  FeeRule("big-cost", "cost", merchant="m-big", account="sandbox", bps=30),
                  FeeRule("qr-cost", "cost", account="sandbox", method="qr", bps=45, min=100)])


@pytest.mark.parametrize(("merchant", "method", "fee_millis", "rule", "by_payment", "by_account"), [
    # a merchant's own rule: only it makes the line match
    ("m-big", "web", 30000, "big-cost", "matched", "fee_mismatch"),
    # a method's own rule (with its floor of 1.00): only it makes the line match
    ("m-shop", "qr", 100000, "qr-cost", "matched", "fee_mismatch"),
    ("m-shop", "qr", 45000, "qr-cost", "fee_mismatch", "fee_mismatch"),   # 45 bps, under the floor
    # merchant and method both named by a rule: the merchant's wins
    ("m-big", "qr", 30000, "big-cost", "matched", "fee_mismatch"),
    # neither: the account's rule, either way
    ("m-shop", "web", 60000, "sandbox-cost", "matched", "matched"),
    ("m-big", "web", 60000, "big-cost", "fee_mismatch", "matched"),       # the account's rate is not big's
])
def test_a_statement_fee_is_checked_against_the_cost_rule_of_its_payment(
        merchant: str, method: str, fee_millis: int, rule: str, by_payment: str, by_account: str) -> None:
    """fee_mismatch with cost rules by merchant × account × method: each line against the rule of its
    payment's merchant and method (CostTable), not only the account's rule."""
    assert COSTS.cost_varies("sandbox") and COSTS.cost_rule(merchant, "sandbox", method).name == rule
    statement = lines((2, "payment", "c1", "T-1", None, 10000, fee_millis, "succeeded", "t"))   # 100.00
    ours = local_payments(("T-1", "succeeded", 10000, D)).with_columns(merchant_id=pl.lit(merchant),
                                                                        method=pl.lit(method))
    refunds = local_refunds().with_columns(merchant_id=pl.lit(None, pl.String), method=pl.lit(None, pl.String))

    def terms(m: str, x: str) -> CostTerms | None:
        found = COSTS.cost_rule(m, "sandbox", x)
        return None if found is None else CostTerms(found.bps, found.fixed, found.min, found.max)

    def classed(fee_bps: Any) -> str:
        result = classify(statement, ours, refunds, business_date=D, today=D, carry_days=3, fee_bps=fee_bps)
        [(name, n)] = [(k, v) for k, v in result.counts.items() if v]
        assert n == 1
        return name

    account = COSTS.account_cost("sandbox")
    assert classed(CostTable(terms)) == by_payment
    assert classed(CostTerms(account.bps, account.fixed, account.min, account.max)) == by_account


def test_a_refund_gives_back_the_basis_points_of_its_payments_cost_rule() -> None:
    statement = lines((2, "payment", "c1", "T-1", None, 10000, 30000, "succeeded", "t"),
                      (3, "refund", "c1", "T-1", "R-1", 4000, -12000, "succeeded", "t"))   # 30 bps of 40.00
    payer = {"merchant_id": pl.lit("m-big"), "method": pl.lit("web")}
    ours = local_payments(("T-1", "succeeded", 10000, D)).with_columns(**payer)
    refunds = local_refunds(("R-1", "T-1", "succeeded", 4000, D)).with_columns(**payer)
    table = CostTable(lambda m, x: CostTerms(COSTS.cost_rule(m, "sandbox", x).bps))
    result = classify(statement, ours, refunds, business_date=D, today=D, carry_days=3, fee_bps=table)
    assert (result.counts["matched"], result.counts["fee_mismatch"]) == (2, 0)


def test_a_reconciliation_checks_each_fee_by_its_merchants_cost_rule(gateway_factory: Any, db_url: str,
                                                                     tmp_path: Any) -> None:
    """End to end on the database: the sandbox charges 60 bps; the account's cost rule says 25, the
    merchant's own rule 60, so only with the merchant's rule is the day's line a match."""
    from tests.support.unionpay import reconcile_days

    clock = Clock()
    counts = {}
    for rules in ([{"name": "sandbox-cost", "account": "sandbox", "bps": 25}],
                  [{"name": "sandbox-cost", "account": "sandbox", "bps": 25},
                   {"name": "shop-cost", "merchant": "SHOP", "account": "sandbox", "bps": 60}]):
        folder = tmp_path / str(len(rules))
        settings = make_settings(db_url, free_port()).with_changes(statement_dir=str(folder))
        gw = gateway_factory(settings)
        shop = gw.merchant()
        rules = [{**r, "merchant": shop.merchant_id} if r.get("merchant") == "SHOP" else r for r in rules]
        settings = settings.with_changes(fees=parse_fee_config({"cost_rules": rules}))
        client = gw.client(shop)
        payment = client.create_payment(merchant_order_no="o-1", amount=10000)
        checkout(payment)
        assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
        day = gw.gateway.ledger.day.date_of(clock.now())
        [report] = reconcile_days(settings, clock, [(timedelta(), day)], account="sandbox")
        assert report["status"] == "completed", report
        counts[len(rules)] = (report["counts"]["matched"], report["counts"]["fee_mismatch"])
        client.close()
    assert counts == {1: (0, 1), 2: (1, 0)}


def test_a_payout_pays_its_rules_fee_and_records_the_rule(gateway_factory: Any, db_url: str) -> None:
    fees = {**page_config()["fees"], "payout_rules": [
        {"name": "payout", "fixed": 200},
        {"name": "payout-sandbox", "account": "sandbox", "bps": 10, "fixed": 100, "max": 150}]}
    gw = gateway_factory(replace(payouts.settings(db_url), fees=parse_fee_config(fees)))
    creds, client = payouts.funded(gw)
    before = payouts.balance(client)
    made = payouts.payout(client, amount=30000)          # 30 + 100 by payout-sandbox, within its max
    assert made.status_code == 201, made.text
    assert wait_for(lambda: client.request("GET", f"/v1/payouts/{made.json()['id']}").json()["status"] == "succeeded")
    assert payouts.balance(client)["available"] == before["available"] - 30000 - 130
    with gw.gateway.db.transaction() as conn:
        row = conn.execute(select(Payout.__table__)).one()
        paid = gw.gateway.ledger.entry(conn, f"payout:{row.id}:payout.succeeded")
        income = total_balance(conn, "fee_income")
    assert (row.fee, row.fee_rule, paid.memo) == (130, "payout-sandbox", "fee rule payout-sandbox")
    assert income == 130 + 1200             # and the funding payment's 0.6 % of 200000 by "standard"
