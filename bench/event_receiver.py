"""A merchant endpoint that takes every event: 204 to any POST, nothing else (bench/notify_delivery.py)."""
from __future__ import annotations


async def app(scope, receive, send) -> None:  # noqa: ANN001
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
