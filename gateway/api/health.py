"""/healthz: the process is up and the database answers."""
from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import gateway_of, json_response


async def healthz(request: Request) -> Response:
    gw = gateway_of(request)
    try:
        await gw.db.tx(lambda conn: conn.execute(text("SELECT 1")))
    except Exception:  # noqa: BLE001  health must answer, not raise
        return json_response({"status": "degraded", "database": "unreachable"}, 503)
    return json_response({"status": "ok", "database": "ok", "channel_accounts": len(gw.host.accounts)})
