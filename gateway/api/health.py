"""/healthz: the process is up and the database answers. /metrics: what Prometheus scrapes."""
from __future__ import annotations

import hmac
import os

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import gateway_of, json_response
from gateway.metrics import CONTENT_TYPE


async def healthz(request: Request) -> Response:
    gw = gateway_of(request)
    try:
        await gw.db.tx(lambda conn: conn.execute(text("SELECT 1")))
    except Exception:  # noqa: BLE001  health must answer, not raise
        return json_response({"status": "degraded", "database": "unreachable"}, 503)
    # process: which of `paymux serve --workers N`'s processes answered
    return json_response({"status": "ok", "database": "ok", "channel_accounts": len(gw.host.accounts),
                          "process": os.getpid()})


async def metrics(request: Request) -> Response:
    """Prometheus text format. With `metrics_token` set, only `Authorization: Bearer <token>` may read."""
    gw = gateway_of(request)
    token = gw.settings.metrics_token
    if token and not hmac.compare_digest(request.headers.get("authorization", "").encode("utf-8", "surrogatepass"),
                                         f"Bearer {token}".encode()):
        return json_response({"error": {"type": "authentication_error", "code": "metrics_token_required",
                                        "message": "GET /metrics needs Authorization: Bearer <metrics_token>",
                                        "param": None}}, 401)
    await gw.db.tx(lambda conn: gw.metrics.refresh(conn, gw.operations))
    return Response(gw.metrics.render(), media_type=CONTENT_TYPE)
