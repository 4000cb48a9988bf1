"""What `paymux close status` and the console show of a business day's close: each (account, day), its
steps' states, times and counts, and what holds it up."""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from gateway.close.steps import STEPS
from gateway.models import CloseDay, CloseStep

days = CloseDay.__table__
steps = CloseStep.__table__


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def day_status(conn: Connection, business_date: date) -> list[dict[str, Any]]:
    rows = conn.execute(select(days).where(days.c.business_date == business_date).order_by(days.c.account)).all()
    by_day: dict[int, dict[str, Any]] = {r.id: {} for r in rows}
    if rows:
        for s in conn.execute(select(steps).where(steps.c.close_day_id.in_(list(by_day)))):
            by_day[s.close_day_id][s.step] = s
    out = []
    for r in rows:
        done = by_day[r.id]
        listed = []
        for step in [s for s in STEPS if r.kind in s.kinds]:
            s = done.get(step.name)
            listed.append({"step": step.name, "status": s.status if s else "pending", "runs": s.runs if s else 0,
                           "started_at": _time(s.started_at) if s else None,
                           "finished_at": _time(s.finished_at) if s else None,
                           "counts": {k: v for k, v in (s.counts or {}).items() if k != "file"} if s else {},
                           "message": s.message if s else None})
        out.append({"account": r.account, "kind": r.kind, "business_date": r.business_date.isoformat(),
                    "status": r.status, "tries": r.tries, "next_at": _time(r.next_at),
                    "leased_by": r.leased_by if r.status == "running" else None, "lease_until": _time(r.lease_until),
                    "alerted_at": _time(r.alerted_at), "started_at": _time(r.started_at),
                    "finished_at": _time(r.finished_at), "held_by": r.message if r.status != "done" else None,
                    "steps": listed})
    return out
