"""UnionPay ACP 5.1.0 on the wire: form fields signed with the merchant's certificate key, answers and
notifications verified with the certificate they carry (signPubKeyCert), itself checked against
UnionPay's root and intermediate certificates and its owner's name.

Sensitive fields (a payout's card number, accNo) travel encrypted with UnionPay's encryption
certificate: RSA PKCS#1 v1.5, Base64, and `encryptCertId` names that certificate.

Signing: every field except `signature`, sorted by name, joined `k=v&k=v`; the lowercase hex SHA-256
of that string is signed with SHA256withRSA (PKCS#1 v1.5) and Base64-encoded; `certId` names the
signing certificate (its serial number, in decimal), `signMethod=01`.
"""
from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Mapping
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from plugins.crypto import load_private_key, new_key, private_pem, rsa_sign, rsa_verify  # noqa: F401

BEIJING = ZoneInfo("Asia/Shanghai")
UNIONPAY_NAME = "中国银联股份有限公司"   # the owner name a genuine UnionPay signing certificate carries


class WireError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def signing_string(fields: Mapping[str, str]) -> str:
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "signature")


def parse_answer(text: str) -> dict[str, str]:
    """A synchronous ACP answer: `k=v&k=v` with the values as they are (not URL-encoded; the PEM of
    signPubKeyCert keeps its '+', '/' and line breaks)."""
    fields = {}
    for part in text.split("&"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key] = value
    return fields


def digest(fields: Mapping[str, str]) -> bytes:
    return hashlib.sha256(signing_string(fields).encode("utf-8")).hexdigest().encode()


def sign(fields: Mapping[str, str], key: rsa.RSAPrivateKey, cert_id: str) -> dict[str, str]:
    signed = {**fields, "certId": cert_id, "signMethod": "01"}
    signed["signature"] = rsa_sign(key, digest(signed))
    return signed


def verify_with_key(fields: Mapping[str, str], public_key: rsa.RSAPublicKey) -> bool:
    return rsa_verify(public_key, digest(fields), fields.get("signature", ""))


def load_certs(pem: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise ValueError(f"not PEM certificates: {exc}") from None


def check_chain(cert: x509.Certificate, trusted: list[x509.Certificate], now: datetime) -> None:
    """The certificate must be UnionPay's, current, and issued (through an intermediate) by a trusted root."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or UNIONPAY_NAME not in str(names[0].value):
        raise WireError("wrong_owner", "the signing certificate is not UnionPay's")
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise WireError("certificate_expired", "the signing certificate is not valid now")
    current, hops = cert, 0
    while hops < 4:
        issuer = next((c for c in trusted if c.subject == current.issuer), None)
        if issuer is None:
            raise WireError("untrusted_certificate", "the signing certificate does not chain to UnionPay's root")
        try:
            current.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise WireError("untrusted_certificate", "the certificate chain does not verify") from None
        if issuer.subject == issuer.issuer:
            return
        current, hops = issuer, hops + 1
    raise WireError("untrusted_certificate", "the certificate chain is too long")


def verify(fields: Mapping[str, str], trusted: list[x509.Certificate], now: datetime) -> None:
    """An answer or notification from UnionPay: its own certificate checked, then its signature."""
    pem = fields.get("signPubKeyCert")
    if not pem or not fields.get("signature"):
        raise WireError("unsigned", "no signature or signPubKeyCert")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise WireError("bad_certificate", "signPubKeyCert is not a certificate") from None
    check_chain(cert, trusted, now)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or not verify_with_key(fields, key):
        raise WireError("bad_signature", "the signature does not verify")


def encrypt(value: str, cert: x509.Certificate) -> str:
    """A sensitive field as ACP sends it: RSA PKCS#1 v1.5 under UnionPay's encryption certificate, Base64."""
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the encryption certificate does not hold an RSA key")
    return base64.b64encode(key.encrypt(value.encode("utf-8"), padding.PKCS1v15())).decode()


def decrypt(value: str, key: rsa.RSAPrivateKey) -> str:
    return key.decrypt(base64.b64decode(value), padding.PKCS1v15()).decode("utf-8")


def customer_info(**fields: str) -> str:
    """customerInfo: Base64 of `{k=v&k=v}` (here only the account holder's name, customerNm)."""
    return base64.b64encode(("{" + "&".join(f"{k}={v}" for k, v in fields.items()) + "}").encode("utf-8")).decode()


def read_customer_info(value: str) -> dict[str, str]:
    text = base64.b64decode(value).decode("utf-8").strip("{}")
    return dict(part.split("=", 1) for part in text.split("&") if "=" in part)


# ---- certificates, for simulators and tests ----

def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "China UnionPay"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(subject: str, key: rsa.RSAPrivateKey, issuer: x509.Certificate | None, issuer_key: rsa.RSAPrivateKey,
          ca: bool, serial: int | None = None, days: int = 3650) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject))
               .issuer_name(issuer.subject if issuer else _name(subject)).public_key(key.public_key())
               .serial_number(serial or x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return builder.sign(issuer_key, hashes.SHA256())


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def bank_time(at: datetime) -> str:
    """ACP times: Beijing, YYYYMMDDhhmmss."""
    return at.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


