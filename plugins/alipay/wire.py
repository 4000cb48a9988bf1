"""Alipay OpenAPI (RSA2) on the wire.

Request: every parameter but `sign` (sign_type included, empty values skipped, biz_content a JSON
string), sorted by key, joined raw as k=v&k=v, SHA256withRSA with the app's key, Base64.
Synchronous answers: the signature covers the exact text of the "<method>_response" value.
Async notifies: drop sign and sign_type, sort, join, verify with Alipay's public key.
"""
from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Mapping

from cryptography.hazmat.primitives.asymmetric import rsa

from plugins.crypto import load_private_key, load_public_key, new_key, private_pem, public_pem, rsa_sign, rsa_verify

__all__ = ["sign_params", "verify_params", "response_text", "yuan", "fen", "load_private_key", "load_public_key",
           "new_key", "private_pem", "public_pem", "rsa_sign", "rsa_verify", "WireError"]


class WireError(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def signing_string(params: Mapping[str, str], exclude: tuple[str, ...]) -> bytes:
    return "&".join(f"{k}={params[k]}" for k in sorted(params)
                    if k not in exclude and params[k] not in (None, "")).encode()


def sign_params(key: rsa.RSAPrivateKey, params: Mapping[str, str]) -> str:
    """A request's signature (sign_type is signed)."""
    return rsa_sign(key, signing_string(params, ("sign",)))


def verify_request(key: rsa.RSAPublicKey, params: Mapping[str, str]) -> bool:
    return "sign" in params and rsa_verify(key, signing_string(params, ("sign",)), params["sign"])


def verify_params(key: rsa.RSAPublicKey, params: Mapping[str, str]) -> bool:
    """An async notify's signature (sign_type is not signed)."""
    return "sign" in params and rsa_verify(key, signing_string(params, ("sign", "sign_type")), params["sign"])


def response_text(raw: str, method: str) -> tuple[str, str | None]:
    """The exact JSON text of the "<method>_response" value, and the sign beside it. Verifying the
    re-encoded object would fail on any difference in spacing, order or escaping."""
    node = method.replace(".", "_") + "_response"
    start = raw.find(f'"{node}"')
    if start < 0:
        node, start = "error_response", raw.find('"error_response"')
        if start < 0:
            raise WireError("malformed_response", f"no {method} response in the answer")
    begin = raw.index(":", start + len(node) + 2) + 1
    while raw[begin] in " \t\r\n":
        begin += 1
    end = _matching_brace(raw, begin)
    sign = re.search(r'"sign"\s*:\s*"([^"]*)"', raw[end:])
    return raw[begin:end], sign.group(1) if sign else None


def _matching_brace(text: str, begin: int) -> int:
    depth, in_string, escaped = 0, False, False
    for i in range(begin, len(text)):
        c = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    raise WireError("malformed_response", "unbalanced JSON in the answer")


def signed_response(key: rsa.RSAPrivateKey, method: str, payload: Mapping) -> bytes:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    node = method.replace(".", "_") + "_response"
    return f'{{"{node}":{text},"sign":"{rsa_sign(key, text.encode())}"}}'.encode()


def yuan(amount_fen: int) -> str:
    """Integer fen to Alipay's yuan string: 1 -> "0.01"."""
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def fen(amount_yuan: str) -> int:
    """Alipay's yuan string to integer fen, exactly; anything but a plain two-decimal amount is an error."""
    if not isinstance(amount_yuan, str) or not re.fullmatch(r"\d{1,12}(\.\d{1,2})?", amount_yuan):
        raise WireError("bad_amount", f"{amount_yuan!r} is not an amount in yuan")
    return int(Decimal(amount_yuan) * 100)  # exact: the pattern allows at most two decimals
