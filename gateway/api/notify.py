"""/v1/notify/{channel_account}: channel callbacks, verified by the plugin on the raw body."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import gateway_of
from gateway.channel import InboundNotification
from gateway.errors import PaymuxError


async def notify(request: Request) -> Response:
    gw = gateway_of(request)
    account_id = request.path_params["channel_account"]
    account = gw.host.accounts.get(account_id)
    if account is None:
        raise PaymuxError(404, "invalid_request_error", "unknown_channel", f"No channel account {account_id!r}")
    inbound = InboundNotification(
        method=request.method, path=request.url.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params), body=await request.body())
    ack = await gw.handle_notification(account, inbound)
    return Response(ack.body, status_code=ack.status, media_type=ack.content_type)
