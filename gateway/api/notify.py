"""/v1/notify/{channel_account}: channel callbacks, verified by the plugin on the raw body."""
from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.common import gateway_of
from gateway.api.text import check_json
from gateway.channel import InboundNotification
from gateway.errors import PaymuxError


async def notify(request: Request) -> Response:
    gw = gateway_of(request)
    account_id = request.path_params["channel_account"]
    account = gw.host.accounts.get(account_id)
    if account is None:
        raise PaymuxError(404, "invalid_request_error", "unknown_channel", f"No channel account {account_id!r}")
    body = await request.body()
    if _unstorable(body):   # forms were checked before routing; the plugin never sees this
        gw.log.warning("callback.rejected", channel_account=account.id, reason="invalid_string")
        gw.metrics.callback_rejections.labels(account.id, "invalid_string").inc()
        ack = account.channel.acknowledge(False, "the callback holds a NUL character or a lone surrogate")
        return Response(ack.body, status_code=ack.status, media_type=ack.content_type)
    # Read from the ASGI scope as Starlette's Request would (its URL and Headers objects cost more than
    # the reading: this is every callback's path).
    scope = request.scope
    inbound = InboundNotification(
        method=scope["method"], path=scope["path"],
        headers={name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]},
        query=dict(request.query_params) if scope.get("query_string") else {}, body=body)
    ack = await gw.handle_notification(account, inbound)
    return Response(ack.body, status_code=ack.status, media_type=ack.content_type)


def _unstorable(body: bytes) -> bool:
    """A NUL byte, or a JSON body with NUL or a lone surrogate in a string: no channel sends either,
    and no column could hold what the plugin would read out of it."""
    if b"\x00" in body:
        return True
    if body.lstrip()[:1] not in (b"{", b"["):
        return False
    if b"\\u" not in body:   # no escapes: a string holds only what the bytes spell, and UTF-8 spells no surrogate
        try:
            body.decode("utf-8")
            return False
        except UnicodeDecodeError:   # json.loads would take these bytes as surrogates
            pass
    try:
        check_json(json.loads(body))
    except PaymuxError:
        return True
    except (ValueError, RecursionError):   # not JSON after all: the plugin judges it
        return False
    return False
