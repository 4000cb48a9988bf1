"""The chart of accounts, fee rates and booking templates, read from configuration (conf/ledger.toml)."""
from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

DEFAULT_LEDGER_CONFIG = Path(__file__).resolve().parent.parent / "conf" / "ledger.toml"
OWNER_TYPES = ("platform", "merchant", "channel_account", "receiver", "campaign")


class ChartError(ValueError):
    """The ledger configuration is unusable; the message names the key."""


@dataclass(frozen=True)
class AccountType:
    code: str
    owner: str
    normal: str           # debit | credit
    no_negative: bool
    description: str = ""


@dataclass(frozen=True)
class Amount:
    """A tiny expression over event variables: names, integers, + and -."""

    source: str
    _tree: ast.Expression

    @classmethod
    def parse(cls, source: str, where: str) -> "Amount":
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise ChartError(f"{where}: {source!r} is not an expression") from exc
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Expression, ast.BinOp, ast.Name, ast.Load, ast.Add, ast.Sub,
                                     ast.Constant, ast.UnaryOp, ast.USub)):
                raise ChartError(f"{where}: {source!r} may use only names, integers, + and -")
            if isinstance(node, ast.Constant) and not isinstance(node.value, int):
                raise ChartError(f"{where}: {source!r} may use only integer constants")
        return cls(source, tree)

    def evaluate(self, variables: Mapping[str, int]) -> int:
        return _eval(self._tree.body, variables, self.source)


def _eval(node: ast.AST, variables: Mapping[str, int], source: str) -> int:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in variables:
            raise KeyError(f"{source!r} needs {node.id!r}, which this event does not provide")
        return variables[node.id]
    if isinstance(node, ast.UnaryOp):
        return -_eval(node.operand, variables, source)
    left, right = _eval(node.left, variables, source), _eval(node.right, variables, source)
    return left + right if isinstance(node.op, ast.Add) else left - right


@dataclass(frozen=True)
class TemplateLine:
    account: str
    owner: str
    side: str            # debit | credit
    amount: Amount


@dataclass(frozen=True)
class Template:
    event_type: str
    lines: tuple[TemplateLine, ...] = ()
    reverses: str | None = None


@dataclass(frozen=True)
class FeeSchedule:
    default_bps: int = 0
    channel_accounts: Mapping[str, int] = field(default_factory=dict)
    merchants: Mapping[str, int] = field(default_factory=dict)
    refund_policy: str = "pro_rata"
    payout_fee: int = 0     # flat, minor units, charged on top of each payout

    def bps(self, merchant_id: str, channel_account: str) -> int:
        if merchant_id in self.merchants:
            return self.merchants[merchant_id]
        return self.channel_accounts.get(channel_account, self.default_bps)


def fee_for(amount: int, bps: int) -> int:
    """Basis points, rounded half up to the minor unit: 0.5 fen and above goes up."""
    return (amount * bps + 5000) // 10000


@dataclass(frozen=True)
class Campaign:
    """A discount the platform funds: the channel's ids of its coupons (a WeChat Pay stock, an Alipay
    voucher template), the budget an operator set, and optionally whom it is for. Only a channel's
    verified report of one of these coupons on a paid order makes the platform pay for it."""

    id: str
    channel_ids: frozenset[str]
    budget: int                      # minor units, in currency; never paid beyond
    currency: str = "CNY"
    channel_accounts: frozenset[str] = frozenset()  # where its coupons are (a coupon id means nothing elsewhere)
    merchants: frozenset[str] | None = None         # None: every merchant

    def covers(self, channel_id: str | None, merchant_id: str, channel_account: str, currency: str) -> bool:
        return (channel_id is not None and channel_id in self.channel_ids and currency == self.currency
                and channel_account in self.channel_accounts
                and (self.merchants is None or merchant_id in self.merchants))


@dataclass(frozen=True)
class Chart:
    accounts: Mapping[str, AccountType]
    templates: Mapping[str, Template]
    fees: FeeSchedule
    campaigns: Mapping[str, Campaign] = field(default_factory=dict)

    def campaign_for(self, channel_id: str | None, merchant_id: str, channel_account: str,
                     currency: str) -> Campaign | None:
        return next((c for c in self.campaigns.values()
                     if c.covers(channel_id, merchant_id, channel_account, currency)), None)

    def account_type(self, code: str) -> AccountType:
        if code not in self.accounts:
            raise ChartError(f"account {code!r} is not in the chart of accounts")
        return self.accounts[code]

    def template(self, event_type: str) -> Template:
        if event_type not in self.templates:
            raise ChartError(f"no booking template for event type {event_type!r}")
        return self.templates[event_type]


def load_chart(path: str | Path | None = None) -> Chart:
    path = Path(path) if path else DEFAULT_LEDGER_CONFIG
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ChartError(f"ledger config {path} cannot be read: {exc}") from exc
    return chart_from_mapping(raw)


def chart_from_mapping(raw: Mapping[str, Any]) -> Chart:
    accounts = {}
    for code, spec in (raw.get("chart") or {}).items():
        owner, normal = spec.get("owner"), spec.get("normal")
        if owner not in OWNER_TYPES:
            raise ChartError(f"chart.{code}.owner must be one of {', '.join(OWNER_TYPES)}")
        if normal not in ("debit", "credit"):
            raise ChartError(f"chart.{code}.normal must be debit or credit")
        accounts[code] = AccountType(code, owner, normal, bool(spec.get("no_negative", False)),
                                     spec.get("description", ""))
    templates = {}
    for event_type, spec in (raw.get("templates") or {}).items():
        lines = []
        for i, line in enumerate(spec.get("postings", [])):
            where = f"templates.{event_type}.postings[{i}]"
            if line.get("account") not in accounts:
                raise ChartError(f"{where}.account {line.get('account')!r} is not in the chart")
            if line.get("owner") != accounts[line["account"]].owner:
                raise ChartError(f"{where}.owner must be {accounts[line['account']].owner!r} for {line['account']}")
            sides = [s for s in ("debit", "credit") if s in line]
            if len(sides) != 1:
                raise ChartError(f"{where} needs exactly one of debit or credit")
            lines.append(TemplateLine(line["account"], line["owner"], sides[0], Amount.parse(line[sides[0]], where)))
        reverses = spec.get("reverses")
        if reverses is not None and lines:
            raise ChartError(f"templates.{event_type} has both postings and reverses")
        if reverses is None and len(lines) < 2:
            raise ChartError(f"templates.{event_type} needs at least two postings")
        templates[event_type] = Template(event_type, tuple(lines), reverses)
    for event_type, template in templates.items():
        if template.reverses is not None and template.reverses not in templates:
            raise ChartError(f"templates.{event_type}.reverses names unknown template {template.reverses!r}")
    fees_raw = raw.get("fees") or {}
    policy = fees_raw.get("refund_policy", "pro_rata")
    if policy not in ("pro_rata", "keep"):
        raise ChartError("fees.refund_policy must be pro_rata or keep")
    fees = FeeSchedule(int(fees_raw.get("default_bps", 0)), dict(fees_raw.get("channel_accounts") or {}),
                       dict(fees_raw.get("merchants") or {}), policy, fees_raw.get("payout_fee", 0))
    if not isinstance(fees.payout_fee, int) or not 0 <= fees.payout_fee <= 10**9:
        raise ChartError("fees.payout_fee must be a whole, non-negative number of minor units")
    for name, bps in [("default_bps", fees.default_bps), *fees.channel_accounts.items(), *fees.merchants.items()]:
        if not isinstance(bps, int) or not 0 <= bps <= 10000:
            raise ChartError(f"fees: {name} must be whole basis points from 0 to 10000")
    return Chart(accounts, templates, fees, _campaigns(raw.get("campaigns") or {}))


def _campaigns(raw: Mapping[str, Any]) -> dict[str, Campaign]:
    campaigns: dict[str, Campaign] = {}
    claimed: dict[str, str] = {}
    for campaign_id, spec in raw.items():
        where = f"campaigns.{campaign_id}"
        unknown = set(spec) - {"channel_ids", "budget", "currency", "merchants", "channel_accounts", "description"}
        if unknown:
            raise ChartError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        ids = spec.get("channel_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise ChartError(f"{where}.channel_ids must list the channel's ids of the campaign's coupons")
        for channel_id in ids:
            if channel_id in claimed:
                raise ChartError(f"{where}.channel_ids: {channel_id!r} is already campaign {claimed[channel_id]!r}'s")
            claimed[channel_id] = campaign_id
        budget = spec.get("budget")
        if not isinstance(budget, int) or isinstance(budget, bool) or not 0 <= budget <= 10**15:
            raise ChartError(f"{where}.budget must be a whole, non-negative number of minor units")
        scopes = {}
        for key in ("merchants", "channel_accounts"):
            value = spec.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ChartError(f"{where}.{key} must be a list of ids")
            scopes[key] = frozenset(value) if value is not None else None
        if not scopes["channel_accounts"]:
            raise ChartError(f"{where}.channel_accounts must name the channel accounts its coupons are at")
        campaigns[campaign_id] = Campaign(campaign_id, frozenset(ids), budget, str(spec.get("currency", "CNY")),
                                          scopes["channel_accounts"], scopes["merchants"])
    return campaigns
