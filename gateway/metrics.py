"""GET /metrics: what Prometheus scrapes from one gateway process.

Counters and histograms are this process's own (scrape every `paymux serve` and `paymux worker`):
requests by route and status, channel calls by account, operation and outcome with their
latency, callbacks refused by reason. Gauges about shared state are read from the database at
scrape time: the janitor's open work and exceptions (attempts, and every operation kind of the
gateway's registry, by its name), merchant events not delivered, open reconciliation differences;
the full ledger check is run at most every `ledger_check_every` seconds (it reads every payment)
and its last result is reported with its time.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import Connection, and_, func, select

from gateway.models import Attempt, MerchantEvent, Payment, ReconItem

if TYPE_CHECKING:
    from gateway.operations import OperationKind

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, ledger_check_every: float = 300.0) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("paymux_http_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=r)
        self.request_seconds = Histogram("paymux_http_request_seconds", "HTTP request duration", ["route"],
                                         buckets=LATENCY_BUCKETS, registry=r)
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.channel_calls = Counter("paymux_channel_calls", "Calls to channels by account, operation and outcome",
                                     ["account", "operation", "outcome"], registry=r)
        self.channel_seconds = Histogram("paymux_channel_call_seconds", "Channel call latency",
                                         ["account", "operation"], buckets=LATENCY_BUCKETS, registry=r)
        self.callback_rejections = Counter("paymux_callback_rejections", "Channel callbacks refused, by reason",
                                           ["account", "reason"], registry=r)
        self.janitor_open = Gauge("paymux_janitor_open", "Open work the janitor asks channels about, by kind",
                                  ["kind"], registry=r)
        self.janitor_exceptions = Gauge("paymux_janitor_exceptions", "What the janitor gave up on, by kind",
                                        ["kind"], registry=r)
        self.events_undelivered = Gauge("paymux_merchant_events_undelivered",
                                        "Merchant events not delivered, by state (pending, dead)", ["state"],
                                        registry=r)
        self.recon_open = Gauge("paymux_recon_open_differences", "Open reconciliation differences, by class",
                                ["class"], registry=r)
        self.ledger_problems = Gauge("paymux_ledger_check_problems",
                                     "Problems the last full ledger check found (0: the books hold)", registry=r)
        self.ledger_checked = Gauge("paymux_ledger_check_timestamp_seconds", "When the ledger was last checked",
                                    registry=r)
        self.ledger_check_every = ledger_check_every
        self._last_check = 0.0

    # ---- recorded as things happen ----

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        # Every request: each label set's two children are looked up once (labels() takes a lock and
        # checks its arguments each time). The sets are as few as the routes, methods and statuses.
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (self.requests.labels(route, method, str(status)),
                                                      self.request_seconds.labels(route))
        children[0].inc()
        children[1].observe(seconds)

    def channel_call(self, account: str, operation: str, outcome: str, seconds: float) -> None:
        self.channel_calls.labels(account, operation, outcome).inc()
        self.channel_seconds.labels(account, operation).observe(seconds)

    # ---- read at scrape time ----

    def refresh(self, conn: Connection, kinds: Iterable[OperationKind]) -> None:
        """Set the gauges about shared state from the database (one read transaction). `kinds`: the
        gateway's operation kinds (its `operations`), each counted under its name beside the attempts."""
        from gateway.books import full_check

        now = time.time()
        if now - self._last_check >= self.ledger_check_every:   # first, so it reads its snapshot
            self.ledger_problems.set(len(full_check(conn)))
            self.ledger_checked.set(now)
            self._last_check = now
        attempts, payments = Attempt.__table__, Payment.__table__
        open_attempts = select(func.count()).select_from(attempts.join(
            payments, payments.c.id == attempts.c.payment_id)).where(and_(
                payments.c.status == "processing", attempts.c.status.in_(("created", "pending", "unknown"))))
        counted = [("attempt", attempts, open_attempts)]
        counted += [(kind.name, kind.table, select(func.count()).select_from(kind.table)
                     .where(kind.table.c.status == "processing")) for kind in kinds]
        for name, table, base in counted:
            self.janitor_open.labels(name).set(conn.execute(base.where(table.c.exception_at.is_(None))).scalar_one())
            self.janitor_exceptions.labels(name).set(
                conn.execute(base.where(table.c.exception_at.is_not(None))).scalar_one())
        events = MerchantEvent.__table__
        counts = dict(conn.execute(select(events.c.status, func.count()).where(events.c.status.in_(("pending", "dead")))
                                   .group_by(events.c.status)).all())
        for state in ("pending", "dead"):
            self.events_undelivered.labels(state).set(counts.get(state, 0))
        items = ReconItem.__table__
        self.recon_open.clear()
        for klass, count in conn.execute(select(items.c["class"], func.count()).where(items.c.status == "open")
                                         .group_by(items.c["class"])):
            self.recon_open.labels(klass).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_of(scope: dict[str, Any]) -> str:
    """The route template a request matched (never the raw path: ids would explode the labels)."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
