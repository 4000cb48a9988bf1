"""WeChat Pay APIv3 on the wire: SHA256withRSA signatures, AEAD_AES_256_GCM resources, PEM keys.

Request signature: Base64(SHA256withRSA(merchant key, "METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n")) in
  Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"
Response and callback signature: over "TIMESTAMP\\nNONCE\\nBODY\\n" with WeChat Pay's key named by
  Wechatpay-Serial, in Wechatpay-Timestamp, Wechatpay-Nonce, Wechatpay-Signature.
Sensitive request fields (a profit-sharing receiver's name): RSA-OAEP (SHA-1, MGF1) under WeChat
  Pay's public key, Base64, with that key's serial in the request's Wechatpay-Serial header.
"""
from __future__ import annotations

import base64
import re
import secrets
from typing import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from plugins.crypto import (load_private_key, load_public_key, new_key, private_pem, public_pem,  # noqa: F401
                            rsa_sign, rsa_verify)

SCHEME = "WECHATPAY2-SHA256-RSA2048"
WINDOW_SECONDS = 300
_PARAM = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')


class WireError(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def message(*parts: str | bytes) -> bytes:
    """Lines joined by \\n, each ending in \\n: the shape of every APIv3 signing string."""
    return b"".join((p if isinstance(p, bytes) else p.encode()) + b"\n" for p in parts)


def authorization(mchid: str, serial_no: str, key: rsa.RSAPrivateKey, method: str, path_and_query: str,
                  body: bytes, timestamp: int, nonce: str | None = None) -> str:
    nonce = nonce or secrets.token_hex(16)
    signature = rsa_sign(key, message(method.upper(), path_and_query, str(timestamp), nonce, body))
    return (f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{serial_no}"')


def parse_authorization(header: str | None) -> dict[str, str]:
    if not header or not header.startswith(SCHEME + " "):
        raise WireError("missing_authorization", f"Authorization must use {SCHEME}")
    fields = {}
    for part in header[len(SCHEME) + 1:].split(","):
        m = _PARAM.fullmatch(part)
        if not m:
            raise WireError("malformed_authorization", "Authorization parameters must be name=\"value\"")
        fields[m.group(1)] = m.group(2)
    if {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} - fields.keys():
        raise WireError("malformed_authorization", "Authorization lacks a parameter")
    return fields


def signed_headers(key: rsa.RSAPrivateKey, serial: str, body: bytes, timestamp: int) -> dict[str, str]:
    """What WeChat Pay puts on a response or callback."""
    nonce = secrets.token_hex(16)
    return {"Wechatpay-Timestamp": str(timestamp), "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": rsa_sign(key, message(str(timestamp), nonce, body)),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}


def verify_headers(keys: Mapping[str, rsa.RSAPublicKey], headers: Mapping[str, str], body: bytes, now: int) -> None:
    """Check a response or callback: the key named by Wechatpay-Serial, a fresh timestamp, the signature
    over the raw body. Raises WireError naming what failed."""
    lower = {k.lower(): v for k, v in headers.items()}
    serial, timestamp = lower.get("wechatpay-serial"), lower.get("wechatpay-timestamp")
    nonce, signature = lower.get("wechatpay-nonce"), lower.get("wechatpay-signature")
    if not (serial and timestamp and nonce and signature):
        raise WireError("missing_signature", "Wechatpay-Serial/Timestamp/Nonce/Signature headers are required")
    key = keys.get(serial)
    if key is None:
        raise WireError("unknown_serial", f"no WeChat Pay key with serial {serial!r} is configured")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12 or \
            abs(now - int(timestamp)) > WINDOW_SECONDS:
        raise WireError("stale_timestamp", "Wechatpay-Timestamp is more than 5 minutes off")
    if not rsa_verify(key, message(timestamp, nonce, body), signature):
        raise WireError("bad_signature", "Wechatpay-Signature does not verify over the body")


def decrypt_resource(apiv3_key: bytes, resource: Mapping[str, str]) -> bytes:
    """AEAD_AES_256_GCM: key = the APIv3 key, nonce and associated data from the resource,
    ciphertext Base64 with the 16-byte tag appended."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise WireError("bad_algorithm", "resource.algorithm must be AEAD_AES_256_GCM")
    try:
        return AESGCM(apiv3_key).decrypt(resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]),
                                         (resource.get("associated_data") or "").encode())
    except (InvalidTag, KeyError, ValueError, TypeError) as exc:
        raise WireError("bad_ciphertext", f"the resource does not decrypt: {type(exc).__name__}") from None


def encrypt_resource(apiv3_key: bytes, plaintext: bytes, associated_data: str, original_type: str) -> dict[str, str]:
    nonce = secrets.token_urlsafe(9)[:12]
    ciphertext = AESGCM(apiv3_key).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(ciphertext).decode(), "nonce": nonce,
            "associated_data": associated_data, "original_type": original_type}


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def encrypt_sensitive(public_key: rsa.RSAPublicKey, text: str) -> str:
    return base64.b64encode(public_key.encrypt(text.encode("utf-8"), _oaep())).decode()


def decrypt_sensitive(private_key: rsa.RSAPrivateKey, value: str) -> str:
    return private_key.decrypt(base64.b64decode(value), _oaep()).decode("utf-8")
