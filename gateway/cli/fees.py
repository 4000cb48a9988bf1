"""Fee rules at the command line: what a payment, payout or channel would charge and by which rule
(`fees quote`), and the margin, fee income less channel cost (`report margin`)."""
from __future__ import annotations

import argparse
import json
from datetime import date

from gateway.cli import Refused, Usage
from gateway.cli.common import settings_of
from gateway.compose import Backend
from gateway.fees import FeeRules, fee_rules
from gateway.reports import margin_report


def quote(args: argparse.Namespace) -> int:
    """The fee and the rule that produced it; the month volume a tier is chosen by is read from the
    database as booking reads it, unless --volume gives it."""
    settings = settings_of(args)
    if settings.account(args.account) is None:
        raise Usage(f"no channel account {args.account!r}")
    if args.amount <= 0:
        raise Usage("the amount must be a positive number of minor units")
    with Backend(settings) as backend:
        rules: FeeRules = fee_rules(settings, backend.ledger.chart, None if args.volume is not None else backend.db,
                                    backend.clock.now)
        if args.volume is not None:
            rules = FeeRules(rules.rules, volume=lambda merchant, at, conn=None: args.volume)
        found = rules.quote(args.kind, args.merchant, args.account, args.method, args.amount)
    if found is None:
        raise Refused(f"no {args.kind} fee rule covers merchant {args.merchant} × account {args.account} × "
                      f"method {args.method}")
    answer = {"fee": found.fee, "amount": args.amount, "kind": args.kind, "rule": found.rule.name,
              "rule_text": found.rule.describe(), "bps": found.tier.bps, "fixed": found.tier.fixed,
              "month_volume": found.volume}
    if args.json:
        print(json.dumps(answer, ensure_ascii=False))
        return 0
    print(f"fee {found.fee} on {args.amount} (minor units) by rule {found.rule.name}: {found.rule.describe()}")
    if found.rule.tiers:
        print(f"tier: {found.tier.bps} bps + {found.tier.fixed}, from a month volume of {found.tier.volume_from} "
              f"(the merchant's: {found.volume})")
    return 0


def margin(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    until: date = args.until or args.since
    with Backend(settings) as backend:
        rules = fee_rules(settings, backend.ledger.chart)
        report = backend.in_transaction(lambda conn: margin_report(conn, settings, rules, args.since, until,
                                                                   args.currency))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"margin {report['since']} to {report['until']}  ({report['currency']}, minor units)")
    print(f"\n{'channel account':<20}{'fee income':>14}{'channel cost':>14}{'margin':>14}{'cost by rules':>15}")
    for r in report["channel_accounts"]:
        print(f"{r['channel_account']:<20}{r['fee_income']:>14,}{r['channel_cost']:>14,}{r['margin']:>14,}"
              f"{r['cost_by_rules']:>15,}")
    print(f"\n{'merchant':<34}{'fee income':>14}{'cost by rules':>15}{'margin':>14}")
    for r in report["merchants"]:
        print(f"{r['merchant_id']:<34}{r['fee_income']:>14,}{r['cost_by_rules']:>15,}{r['margin']:>14,}")
    t = report["totals"]
    print(f"\ntotal: fee income {t['fee_income']:,}, channel cost {t['channel_cost']:,}, margin {t['margin']:,}")
    return 0
