"""A small Python client for the paymux merchant API: it signs every request.

    client = Client("http://127.0.0.1:8000", merchant_id, secret)
    payment = client.create_payment(merchant_order_no="o-1", amount=100, subject="Coffee")
"""
from __future__ import annotations

import json
import time
from typing import Any

import httpx

from gateway.signing import authorization_header
# What paymux POSTs to your notify_url is checked with verify_event(body, header, secret): offered here too.
from gateway.signing import EVENT_SIGNATURE_HEADER, EventSignatureError, sign_event, verify_event  # noqa: F401


class PaymuxAPIError(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"{status} {error.get('code')}: {error.get('message')}")
        self.status = status
        self.error = error


def signed_headers(merchant_id: str, secret: str, method: str, url: httpx.URL, body: bytes,
                   idempotency_key: str | None = None) -> dict[str, str]:
    path = url.raw_path.decode("latin-1")
    headers = {"Authorization": authorization_header(merchant_id, secret, method, path, body, int(time.time())),
               "Content-Type": "application/json"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def _encode(body: Any) -> bytes:
    if isinstance(body, bytes):   # already encoded, sent as it is
        return body
    return b"" if body is None else json.dumps(body, separators=(",", ":")).encode()


class Client:
    def __init__(self, base_url: str, merchant_id: str, secret: str, timeout: float = 30.0,
                 http: httpx.Client | None = None) -> None:
        self.merchant_id = merchant_id
        self.secret = secret
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, idempotency_key: str | None = None,
                params: dict[str, str] | None = None) -> httpx.Response:
        raw = _encode(body)
        url = self.http.build_request(method, path, params=params).url
        headers = signed_headers(self.merchant_id, self.secret, method, url, raw, idempotency_key)
        return self.http.request(method, url, content=raw, headers=headers)

    def _ok(self, response: httpx.Response) -> dict[str, Any]:
        data = response.json()
        if response.is_error:
            raise PaymuxAPIError(response.status_code, data.get("error", {}))
        return data

    def create_payment(self, idempotency_key: str | None = None, **fields: Any) -> dict[str, Any]:
        return self._ok(self.request("POST", "/v1/payments", fields, idempotency_key))

    def get_payment(self, payment_id: str, sync: bool = False) -> dict[str, Any]:
        return self._ok(self.request("GET", f"/v1/payments/{payment_id}", params={"sync": "true"} if sync else None))

    def close_payment(self, payment_id: str) -> dict[str, Any]:
        return self._ok(self.request("POST", f"/v1/payments/{payment_id}/close"))

    def create_refund(self, payment_id: str, idempotency_key: str | None = None, **fields: Any) -> dict[str, Any]:
        return self._ok(self.request("POST", f"/v1/payments/{payment_id}/refunds", fields, idempotency_key))

    def get_refund(self, refund_id: str, sync: bool = False) -> dict[str, Any]:
        return self._ok(self.request("GET", f"/v1/refunds/{refund_id}", params={"sync": "true"} if sync else None))

    def close(self) -> None:
        self.http.close()


class AsyncClient:
    """The same signing over httpx.AsyncClient, for load tests and async merchants."""

    def __init__(self, base_url: str, merchant_id: str, secret: str, timeout: float = 30.0) -> None:
        self.merchant_id = merchant_id
        self.secret = secret
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def request(self, method: str, path: str, body: Any = None,
                      idempotency_key: str | None = None) -> httpx.Response:
        raw = _encode(body)
        url = self.http.build_request(method, path).url
        headers = signed_headers(self.merchant_id, self.secret, method, url, raw, idempotency_key)
        return await self.http.request(method, url, content=raw, headers=headers)

    async def aclose(self) -> None:
        await self.http.aclose()

