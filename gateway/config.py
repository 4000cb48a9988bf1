"""Settings from conf/*.toml plus the environment. One settings object, passed in."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from gateway.errors import ConfigError
from gateway.fees import parse_fee_config

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "conf" / "paymux.toml"
# What a refund of a split payment does ([splits] refund_policy): refuse it, or take the splits back first.
REFUND_POLICIES = ("refuse", "return")


@dataclass(frozen=True)
class CircuitConfig:
    """When a channel account's circuit opens (see gateway/health.py)."""

    error_rate: float = 0.5          # share of failed calls in the window that opens it
    min_calls: int = 10              # ... once at least this many calls were made in the window
    window_seconds: float = 60.0
    cooldown_seconds: float = 30.0   # open this long, then one probe payment may go through

    @classmethod
    def parse(cls, raw: Any, where: str) -> "CircuitConfig":
        raw = _table(raw, where, cls)
        config = cls(**raw)
        if not (_number(config.error_rate) and 0 < config.error_rate <= 1):
            raise ConfigError(f"{where}.error_rate must be a share above 0 and at most 1")
        if not (_whole(config.min_calls) and config.min_calls >= 1):
            raise ConfigError(f"{where}.min_calls must be a whole number of at least 1")
        for key in ("window_seconds", "cooldown_seconds"):
            if not (_number(getattr(config, key)) and getattr(config, key) > 0):
                raise ConfigError(f"{where}.{key} must be a number of seconds above 0")
        return config


@dataclass(frozen=True)
class AccountLimits:
    """What one channel account may take. Amounts in minor units; daily = the business day."""

    min_amount: int | None = None
    max_amount: int | None = None
    daily_amount: int | None = None
    daily_count: int | None = None
    methods: tuple[str, ...] | None = None
    currencies: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, raw: Any, where: str) -> "AccountLimits":
        raw = _table(raw, where, cls)
        for key in ("min_amount", "max_amount", "daily_amount", "daily_count"):
            if key in raw and not (_whole(raw[key]) and raw[key] >= 0):
                raise ConfigError(f"{where}.{key} must be a whole number of at least 0")
        for key in ("methods", "currencies"):
            if key in raw:
                if not (isinstance(raw[key], list) and raw[key] and all(isinstance(v, str) for v in raw[key])):
                    raise ConfigError(f"{where}.{key} must be a list of strings")
                raw[key] = tuple(raw[key])
        limits = cls(**raw)
        if limits.min_amount is not None and limits.max_amount is not None and limits.min_amount > limits.max_amount:
            raise ConfigError(f"{where}.min_amount is above max_amount")
        return limits

    @property
    def daily(self) -> bool:
        return self.daily_amount is not None or self.daily_count is not None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _table(raw: Any, where: str, kind: type) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = set(raw) - set(kind.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return dict(raw)


@dataclass(frozen=True)
class ChannelAccountConfig:
    """One channel account: which plugin serves it, whether it takes new payments, its settings,
    and how the router treats it (priority: lower is tried first; weight: share among equals)."""

    id: str
    plugin: str
    enabled: bool
    settings: Mapping[str, Any]
    priority: int = 100
    weight: int = 1
    limits: AccountLimits = AccountLimits()
    circuit: CircuitConfig = CircuitConfig()
    query_schedule_seconds: tuple[float, ...] | None = None   # the janitor's waits for this account
    queries_per_second: float | None = None                    # its query rate limit
    fee_bps: int | None = None          # what the channel charges (basis points): reconciliation checks it
    settlement_days: int = 1            # the channel pays a day's net this many days later (T+n)
    # a payment frozen for splitting is released this many days after it was paid, whatever its splits
    # (None: the channel's own freeze less a safety margin, gateway/split_releases.py)
    split_release_days: int | None = None


DATABASE_THREADS = 8


def database_threads_for(settings: "Settings", processes: int = 1) -> int:
    """The database threads of one of `processes` serving processes on a host: as configured, else
    DATABASE_THREADS shared among them (at least 2 each). Two processes of 8 threads each ran ~10% fewer
    callbacks a second on this 2-core machine than two of 4: twice the connections and GIL hand-offs,
    for no more work the database can do at once (docs/design-notes.md, "One machine")."""
    if settings.database_threads is not None:
        return settings.database_threads
    return max(2, DATABASE_THREADS // max(1, processes))


@dataclass(frozen=True)
class Settings:
    public_url: str = "http://127.0.0.1:8000"
    database_url: str = "sqlite:///paymux.db"
    # PostgreSQL: the threads (each with its connection) a process runs database work in. More let more
    # transactions wait on the database at once and cost more to hand the GIL round (docs/design-notes.md,
    # "Where a callback's time goes"); SQLite, with one writer, always uses one. None (not configured):
    # DATABASE_THREADS for the host, shared by the processes of `serve --workers N` (database_threads_for).
    database_threads: int | None = None
    secret_key: str | None = None
    channel_accounts: tuple[ChannelAccountConfig, ...] = ()
    max_body_bytes: int = 64 * 1024
    auth_window_seconds: int = 300
    idempotency_ttl_seconds: int = 24 * 3600
    channel_timeout_seconds: float = 10.0
    business_timezone: str = "Asia/Shanghai"
    day_cut_hour: int = 0                 # the accounting day starts this many hours after local midnight
    ledger_config: str | None = None      # chart of accounts, fees, templates (default: conf/ledger.toml)
    # Merchant notifications: the waits before each retry (about 24 h in all), then the event is dead.
    notify_schedule_seconds: tuple[float, ...] = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800,
                                                  10800, 10800, 21600, 21600)
    notify_timeout_seconds: float = 10.0
    notify_poll_seconds: float = 1.0
    # Let notify_url reach loopback and private networks (a receiver on this machine, in development);
    # cloud metadata addresses stay refused. Off in production (gateway/netguard.py).
    notify_allow_private_networks: bool = False
    # The janitor asks the channel about open attempts and refunds this long after they began
    # (cumulative waits), then hourly until query_give_up_seconds, then lists them as exceptions.
    query_schedule_seconds: tuple[float, ...] = (10, 20, 30, 60, 120, 300, 600, 1800, 3600)
    query_give_up_seconds: float = 24 * 3600
    janitor_poll_seconds: float = 1.0
    channel_queries_per_second: float = 10.0
    health_flush_seconds: float = 5.0
    ledger_check_every_seconds: float = 300.0   # /metrics runs the full ledger check at most this often
    metrics_token: str | None = None            # if set, GET /metrics needs Authorization: Bearer <token>
    # Console and CLI sign-in: at most this many passwords are checked for one name in the window.
    sign_in_max_tries: int = 5
    sign_in_window_seconds: int = 900
    # Reconciliation: where statement files are kept, how long a success of ours may be absent from
    # the channel's statements before it is missing (the channel's day-cut), how far back to look.
    statement_dir: str = ".paymux/statements"
    recon_carry_days: int = 3
    recon_lookback_days: int = 7
    # [settlement] merchant_days: merchants are paid T+n (their own in [settlement.merchants])
    merchant_settlement_days: int = 1
    merchant_settlement_overrides: Mapping[str, int] = field(default_factory=dict)
    # A worker that claims a job (a query, a delivery) holds it this long; if the worker dies, another
    # takes the job after it. Keep it above the slowest channel call or delivery.
    lease_seconds: float = 120.0
    # [routing] merchant_preferences: merchant id -> channel account ids to try first, in order
    merchant_preferences: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # [splits] refund_policy: what a refund of a split payment may take ("refuse": only what was not split)
    split_refund_policy: str = "refuse"
    log_json: bool = True
    fees: Any = None    # fee rules (docs/fees.md; gateway/fees.py FeeConfig); none: the ledger chart's single rates
    config_path: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Payouts returned by the receiving bank (退票, docs/payouts.md): the janitor asks about a succeeded
    # payout every payout_return_query_seconds for payout_return_watch_days; a return's amount goes back
    # to the merchant's "available" or "frozen" balance (payout_return_to), and its fee is given back
    # ("refund") or kept ("keep") by payout_return_fee.
    payout_return_watch_days: int = 7
    payout_return_query_seconds: float = 6 * 3600
    payout_return_to: str = "available"
    payout_return_fee: str = "refund"

    def account(self, account_id: str) -> ChannelAccountConfig | None:
        return next((a for a in self.channel_accounts if a.id == account_id), None)

    def with_changes(self, **changes: Any) -> "Settings":
        return replace(self, **changes)


def resolve_reference(value: Any, env: Mapping[str, str], where: str) -> Any:
    """Turn `env:NAME` and `file:PATH` references into their values, recursively."""
    if isinstance(value, dict):
        return {k: resolve_reference(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_reference(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    if value.startswith("env:"):
        name = value[4:]
        if name not in env:
            raise ConfigError(f"{where} refers to environment variable {name}, which is not set")
        return env[name]
    if value.startswith("file:"):
        path = Path(value[5:]).expanduser()
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{where} refers to file {path}, which cannot be read: {exc.strerror}") from exc
    return value


def find_config_path(explicit: str | os.PathLike | None, env: Mapping[str, str]) -> Path:
    for candidate in (explicit, env.get("PAYMUX_CONFIG")):
        if candidate:
            path = Path(candidate)
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist")
            return path
    local = Path("conf/paymux.toml")
    return local if local.is_file() else DEFAULT_CONFIG


def load_settings(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML config, resolve references, apply environment overrides."""
    env = os.environ if env is None else env
    config_path = find_config_path(path, env)
    try:
        raw = tomllib.loads(config_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path} is not valid TOML: {exc}") from exc
    return settings_from_mapping(raw, env, config_path)


def settings_from_mapping(raw: Mapping[str, Any], env: Mapping[str, str], config_path: Path | None = None) -> Settings:
    raw = dict(raw)
    database = raw.pop("database", {}) or {}
    accounts_raw = raw.pop("channel_accounts", []) or []
    accounts = []
    seen: set[str] = set()
    for i, item in enumerate(accounts_raw):
        where = f"channel_accounts[{i}]"
        for key in ("id", "plugin"):
            if not isinstance(item.get(key), str) or not item.get(key):
                raise ConfigError(f"{where}.{key} is required and must be a string")
        account_id = item["id"]
        if account_id in seen:
            raise ConfigError(f"{where}.id {account_id!r} is used twice")
        if not account_id.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{where}.id {account_id!r} may hold only letters, digits, '-' and '_'")
        seen.add(account_id)
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where}.enabled must be true or false")
        unknown = set(item) - {"id", "plugin", "enabled", "settings", "priority", "weight", "limits", "circuit",
                               "query_schedule_seconds", "queries_per_second", "fee_bps", "settlement_days",
                               "split_release_days"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        for key, default, least in (("priority", 100, 0), ("weight", 1, 1)):
            if not (_whole(item.get(key, default)) and item.get(key, default) >= least):
                raise ConfigError(f"{where}.{key} must be a whole number of at least {least}")
        # Disabled accounts still verify callbacks and answer queries for earlier payments.
        settings = resolve_reference(item.get("settings", {}) or {}, env, f"{where}.settings")
        accounts.append(ChannelAccountConfig(
            account_id, item["plugin"], enabled, settings, item.get("priority", 100), item.get("weight", 1),
            AccountLimits.parse(item.get("limits"), f"{where}.limits"),
            CircuitConfig.parse(item.get("circuit"), f"{where}.circuit"),
            *_query_policy(item, where), _fee_bps(item, where), _days(item.get("settlement_days", 1),
                                                                      f"{where}.settlement_days"),
            _release_days(item.get("split_release_days"), f"{where}.split_release_days")))
    preferences = _merchant_preferences(raw.pop("routing", None), seen)
    merchant_days, merchant_overrides = _settlement(raw.pop("settlement", None))
    split_policy = _split_policy(raw.pop("splits", None))
    fees = parse_fee_config(raw.pop("fees", None))

    database_url = env.get("PAYMUX_DATABASE_URL") or database.get("url") or Settings.database_url
    if unknown := set(database) - {"url", "threads"}:
        raise ConfigError(f"[database]: unknown key(s) {', '.join(sorted(unknown))}")
    database_threads = database.get("threads")
    if database_threads is not None and not (_whole(database_threads) and 1 <= database_threads <= 256):
        raise ConfigError("[database] threads must be a whole number from 1 to 256")
    secret_key = env.get("PAYMUX_SECRET_KEY") or raw.pop("secret_key", None)
    raw.pop("secret_key", None)
    if secret_key is not None and not env.get("PAYMUX_SECRET_KEY"):
        secret_key = _optional_file_reference(secret_key, env)

    if env.get("PAYMUX_PUBLIC_URL"):
        raw["public_url"] = env["PAYMUX_PUBLIC_URL"]
    known = {f for f in Settings.__dataclass_fields__} - {"channel_accounts", "database_url", "database_threads",
                                                    "secret_key", "config_path", "extra",
                                                    "merchant_preferences", "merchant_settlement_days",
                                                    "merchant_settlement_overrides", "split_refund_policy", "fees"}
    direct = {k: raw.pop(k) for k in list(raw) if k in known}
    if not isinstance(direct.get("notify_allow_private_networks", False), bool):
        raise ConfigError("notify_allow_private_networks must be true or false")
    for key, least in (("sign_in_max_tries", 1), ("sign_in_window_seconds", 1)):
        if key in direct and not (_whole(direct[key]) and direct[key] >= least):
            raise ConfigError(f"{key} must be a whole number of at least {least}")
    _check_payout_returns(direct)
    for key in ("notify_schedule_seconds", "query_schedule_seconds"):
        if key in direct:
            direct[key] = tuple(direct[key])
    return Settings(
        database_url=database_url,
        database_threads=database_threads,
        secret_key=secret_key,
        channel_accounts=tuple(accounts),
        merchant_preferences=preferences,
        merchant_settlement_days=merchant_days,
        merchant_settlement_overrides=merchant_overrides,
        split_refund_policy=split_policy,
        fees=fees,
        config_path=config_path,
        extra=raw,
        **direct,
    )


def _split_policy(raw: Any) -> str:
    raw = raw or {}
    if not isinstance(raw, Mapping) or set(raw) - {"refund_policy"}:
        raise ConfigError("[splits] may hold only refund_policy")
    policy = raw.get("refund_policy", "refuse")
    if policy not in REFUND_POLICIES:
        raise ConfigError(f"[splits] refund_policy must be one of {', '.join(REFUND_POLICIES)}")
    return policy


def _days(value: Any, where: str) -> int:
    if not (_whole(value) and 0 <= value <= 30):
        raise ConfigError(f"{where} must be a whole number of days, 0 to 30")
    return value


def _release_days(value: Any, where: str) -> int | None:
    if value is not None and not (_whole(value) and 0 <= value <= 365):
        raise ConfigError(f"{where} must be a whole number of days, 0 to 365")
    return value


def _settlement(raw: Any) -> tuple[int, dict[str, int]]:
    raw = raw or {}
    if not isinstance(raw, Mapping) or set(raw) - {"merchant_days", "merchants"}:
        raise ConfigError("[settlement] may hold merchant_days and [settlement.merchants]")
    merchants = raw.get("merchants") or {}
    if not isinstance(merchants, Mapping):
        raise ConfigError("[settlement.merchants] must be a table of merchant id = days")
    return (_days(raw.get("merchant_days", 1), "settlement.merchant_days"),
            {m: _days(d, f"settlement.merchants.{m}") for m, d in merchants.items()})


def _fee_bps(item: Mapping[str, Any], where: str) -> int | None:
    fee = item.get("fee_bps")
    if fee is not None and not (_whole(fee) and 0 <= fee <= 10000):
        raise ConfigError(f"{where}.fee_bps must be a whole number of basis points, 0 to 10000")
    return fee


def _query_policy(item: Mapping[str, Any], where: str) -> tuple[tuple[float, ...] | None, float | None]:
    schedule = item.get("query_schedule_seconds")
    if schedule is not None:
        if not (isinstance(schedule, list) and schedule and all(_number(w) and w > 0 for w in schedule)):
            raise ConfigError(f"{where}.query_schedule_seconds must be a list of waits in seconds, each above 0")
        schedule = tuple(float(w) for w in schedule)
    rate = item.get("queries_per_second")
    if rate is not None and not (_number(rate) and rate > 0):
        raise ConfigError(f"{where}.queries_per_second must be a number above 0")
    return schedule, rate


def _merchant_preferences(routing: Any, accounts: set[str]) -> dict[str, tuple[str, ...]]:
    routing = routing or {}
    if not isinstance(routing, Mapping) or set(routing) - {"merchant_preferences"}:
        raise ConfigError("[routing] may hold only merchant_preferences")
    prefs = routing.get("merchant_preferences") or {}
    if not isinstance(prefs, Mapping):
        raise ConfigError("routing.merchant_preferences must be a table of merchant id = [account ids]")
    found = {}
    for merchant_id, ids in prefs.items():
        where = f"routing.merchant_preferences.{merchant_id}"
        if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            raise ConfigError(f"{where} must be a list of channel account ids")
        for account_id in ids:
            if account_id not in accounts:
                raise ConfigError(f"{where} names channel account {account_id!r}, which is not configured")
        found[merchant_id] = tuple(ids)
    return found


def _optional_file_reference(value: str, env: Mapping[str, str]) -> str | None:
    """A secret key file that does not exist yet is not an error here: `paymux init` makes it."""
    if value.startswith("file:") and not Path(value[5:]).expanduser().exists():
        return value
    return resolve_reference(value, env, "secret_key")


def _check_payout_returns(direct: Mapping[str, Any]) -> None:
    """The payout_return_* keys: a watch of 0 to 90 days, a positive query interval, and named policies."""
    if "payout_return_watch_days" in direct and not (_whole(direct["payout_return_watch_days"])
                                                     and 0 <= direct["payout_return_watch_days"] <= 90):
        raise ConfigError("payout_return_watch_days must be a whole number of days, 0 to 90")
    seconds = direct.get("payout_return_query_seconds", 1)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ConfigError("payout_return_query_seconds must be a number of seconds above 0")
    for key, allowed in (("payout_return_to", ("available", "frozen")), ("payout_return_fee", ("refund", "keep"))):
        if direct.get(key, allowed[0]) not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}")
