"""Errors are values with a type and a code a merchant or operator can act on."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PaymuxError(Exception):
    """An error the merchant API renders as {"error": {type, code, message, param}}."""

    status: int
    type: str
    code: str
    message: str
    param: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict:
        return {"error": {"type": self.type, "code": self.code, "message": self.message, "param": self.param}}


def invalid_request(code: str, message: str, param: str | None = None, status: int = 400) -> PaymuxError:
    return PaymuxError(status, "invalid_request_error", code, message, param)


def not_found(what: str, ident: str) -> PaymuxError:
    return PaymuxError(404, "invalid_request_error", "resource_missing", f"No such {what}: {ident!r}", None)


def authentication_error(code: str, message: str) -> PaymuxError:
    return PaymuxError(401, "authentication_error", code, message)


def idempotency_error(code: str, message: str) -> PaymuxError:
    return PaymuxError(409, "idempotency_error", code, message)


def conflict(code: str, message: str, param: str | None = None) -> PaymuxError:
    return PaymuxError(409, "invalid_request_error", code, message, param)


def channel_error(code: str, message: str) -> PaymuxError:
    return PaymuxError(502, "channel_error", code, message)


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""
