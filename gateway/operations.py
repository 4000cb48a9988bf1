"""What payouts, splits and split returns share: a row that is `processing` until the channel says
it succeeded or failed, and ends exactly once (a conditional UPDATE, like payments and refunds)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, update

from gateway.channel import Outcome


def record_answer(conn: Connection, table: Any, row_id: str, outcome: Outcome, now: datetime, *, what: str,
                  channel_id_column: str, channel_id: str | None, error_code: str | None,
                  error_message: str | None, sent: bool = False, **on_end: Any) -> Any | None:
    """Write a channel's answer on a processing row. PENDING or UNKNOWN only notes what came back;
    SUCCEEDED or FAILED ends it, with `on_end` values. Returns the row if it ended now, else None."""
    values: dict[str, Any] = {"updated_at": now}
    if sent:
        values["submitted"] = True
    if channel_id:
        values[channel_id_column] = channel_id
    still_open = and_(table.c.id == row_id, table.c.status == "processing")
    if outcome not in (Outcome.SUCCEEDED, Outcome.FAILED):
        conn.execute(update(table).where(still_open).values(**values))
        return None
    values.update(status=outcome.value, **on_end)
    if outcome is Outcome.FAILED:
        values.update(failure_code=error_code or "channel_declined",
                      failure_message=(error_message or f"The channel declined the {what}")[:500])
    if not conn.execute(update(table).where(still_open).values(**values)).rowcount:
        return None
    return conn.execute(select(table).where(table.c.id == row_id)).first()
