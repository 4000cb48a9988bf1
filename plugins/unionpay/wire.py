"""UnionPay ACP 5.1.0 on the wire: form fields signed with the merchant's certificate key, answers and
notifications verified with the certificate they carry (signPubKeyCert), itself checked the way
UnionPay's SDK checks it (`com.unionpay.acp.sdk.CertUtil.verifyCertificate`): current, issued through
UnionPay's intermediate by UnionPay's root (PKIX), and owned by UnionPay.

Sensitive fields (a payout's card number, accNo) travel encrypted with UnionPay's encryption
certificate: RSA PKCS#1 v1.5, Base64, and `encryptCertId` names that certificate.

Signing (SDKUtil.sign after AcpService.sign's filterBlank): fields whose value is blank are dropped
and the others trimmed; every field except `signature`, sorted by name, joined `k=v&k=v`; the
lowercase hex SHA-256 of that string is signed with SHA256withRSA (PKCS#1 v1.5) and Base64-encoded;
`certId` names the signing certificate (its serial number, in decimal), `signMethod=01`. Verifying
drops the empty fields first too, as the SDK's demos read a notification (getAllRequestParam).
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
UNIONPAY_NAME = "中国银联股份有限公司"   # SDKConstants.UNIONPAY_CNNAME: the third '@'-part of a genuine CN
TEST_ENVIRONMENT_NAME = "00040000:SIGN"  # what UnionPay's test environment certificates carry there instead
# Certificate signature hashes a UnionPay chain may use: its published root and intermediates (and the
# encryption certificates they issued) are sha1WithRSA, which PKIX in the SDK accepts. Every issuer in a
# path is one of the merchant's configured certificates, so a SHA-1 hop is a hop UnionPay signed itself.
CHAIN_HASHES = (hashes.SHA1, hashes.SHA256, hashes.SHA384, hashes.SHA512)


class WireError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def signable(fields: Mapping[str, str]) -> dict[str, str]:
    """SDKUtil.filterBlank: blank values go, the others are trimmed (what is signed is what is sent)."""
    return {k: v.strip() for k, v in fields.items() if v is not None and v.strip()}


def signing_string(fields: Mapping[str, str]) -> str:
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "signature")


def parse_answer(text: str) -> dict[str, str]:
    """A synchronous ACP answer as SDKUtil.parseQString reads it: a key ends at its first '=', a value
    at the next '&' outside `{…}` or `[…]` (customerInfo, reserved and the like carry '&' and '=');
    values are taken as they are (not URL-decoded: the PEM of signPubKeyCert keeps '+', '/', breaks)."""
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    fields: dict[str, str] = {}
    key: str | None = None
    current: list[str] = []
    closing = ""
    for char in text:
        if key is None:
            if char == "=":
                key, current = "".join(current), []
            else:
                current.append(char)
            continue
        if closing:
            if char == closing:
                closing = ""
        elif char in "{[":
            closing = "}" if char == "{" else "]"
        if char == "&" and not closing:
            _put(fields, key, current)
            key, current = None, []
        else:
            current.append(char)
    if key is None:
        if current:
            _put(fields, "".join(current), [])
    else:
        _put(fields, key, current)
    return fields


def _put(fields: dict[str, str], key: str, value: list[str]) -> None:
    if not key:
        raise WireError("malformed_answer", "the answer has a field without a name")
    fields[key] = "".join(value)


def digest(fields: Mapping[str, str]) -> bytes:
    return hashlib.sha256(signing_string(fields).encode("utf-8")).hexdigest().encode()


def sign(fields: Mapping[str, str], key: rsa.RSAPrivateKey, cert_id: str) -> dict[str, str]:
    signed = {**signable(fields), "certId": cert_id, "signMethod": "01"}
    signed["signature"] = rsa_sign(key, digest(signed))
    return signed


def verify_with_key(fields: Mapping[str, str], public_key: rsa.RSAPublicKey) -> bool:
    present = {k: v for k, v in fields.items() if v != ""}
    return rsa_verify(public_key, digest(present), fields.get("signature", ""))


def load_certs(pem: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise ValueError(f"not PEM certificates: {exc}") from None


# ---- certificates: the SDK's verifyCertificate, with cryptography doing every signature check ----

def owner(cert: x509.Certificate) -> str:
    """CertUtil.getIdentitiesFromCertficate: the third '@'-separated part of the subject's CN."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    parts = str(names[0].value).split("@") if names else []
    return parts[2] if len(parts) > 2 else ""


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """The certificate's signature, checked with the issuer's public key and the hash the certificate
    names (verify_directly_issued_by refuses sha1WithRSA, which UnionPay's own chain uses)."""
    key = issuer.public_key()
    algorithm = cert.signature_hash_algorithm
    if not isinstance(key, rsa.RSAPublicKey) or not isinstance(algorithm, CHAIN_HASHES):
        raise WireError("untrusted_certificate", f"{cert.subject.rfc4514_string()} is signed with an algorithm "
                                                 "UnionPay's chain does not use")
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise WireError("untrusted_certificate", "the certificate chain does not verify") from None


def _current(cert: x509.Certificate, now: datetime, what: str) -> None:
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise WireError("certificate_expired", f"the {what} certificate is not valid now")


def _extension(cert: x509.Certificate, kind: type) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _no_unknown_critical(cert: x509.Certificate) -> None:
    for extension in cert.extensions:
        if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            raise WireError("untrusted_certificate", f"{cert.subject.rfc4514_string()} has a critical extension "
                                                     f"({extension.oid.dotted_string}) nobody can check")


def _may_issue(ca: x509.Certificate, below: int) -> None:
    """A CA in the path: basic constraints say CA (and allow `below` CAs under it), key usage allows certSign."""
    constraints = _extension(ca, x509.BasicConstraints)
    if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
        raise WireError("untrusted_certificate", f"{ca.subject.rfc4514_string()} is not a CA")
    if constraints.path_length is not None and below > constraints.path_length:
        raise WireError("untrusted_certificate", f"{ca.subject.rfc4514_string()} may not issue that deep a chain")
    usage = _extension(ca, x509.KeyUsage)
    if isinstance(usage, x509.KeyUsage) and not usage.key_cert_sign:
        raise WireError("untrusted_certificate", f"{ca.subject.rfc4514_string()} may not sign certificates")
    _no_unknown_critical(ca)


def check_chain(cert: x509.Certificate, trusted: list[x509.Certificate], now: datetime, *,
                purpose: str = "sign", test_environment: bool = False) -> None:
    """CertUtil.verifyCertificate: `cert` is current, is an end-entity certificate for `purpose` (sign:
    UnionPay's signing certificate, owned by UnionPay; encrypt: its encryption certificate), and chains
    through the configured intermediate(s) to a configured self-signed root (the SDK's PKIX trust
    anchor), every CA on the way current and allowed to issue. test_environment also accepts the owner
    UnionPay's test environment certificates carry (the SDK's acpsdk.ifValidateCNName=false)."""
    if purpose == "sign":
        allowed = {UNIONPAY_NAME, TEST_ENVIRONMENT_NAME} if test_environment else {UNIONPAY_NAME}
        if owner(cert) not in allowed:
            raise WireError("wrong_owner", "the signing certificate is not UnionPay's (its CN's owner part is "
                                           f"{owner(cert)!r})")
    _current(cert, now, "signing" if purpose == "sign" else "encryption")
    constraints = _extension(cert, x509.BasicConstraints)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        raise WireError("untrusted_certificate", "a CA certificate does not sign or encrypt messages")
    usage = _extension(cert, x509.KeyUsage)
    if isinstance(usage, x509.KeyUsage) and not (usage.digital_signature if purpose == "sign"
                                                 else usage.key_encipherment):
        raise WireError("untrusted_certificate", f"the certificate's key usage does not allow {purpose}ing")
    _no_unknown_critical(cert)
    current, cas = cert, 0
    while cas < 4:
        issuer = next((c for c in trusted if c.subject == current.issuer and c is not current), None)
        if issuer is None:
            raise WireError("untrusted_certificate", "the certificate does not chain to UnionPay's root")
        _issued_by(current, issuer)
        _current(issuer, now, "issuing")
        _may_issue(issuer, cas)
        if issuer.subject == issuer.issuer:
            return
        current, cas = issuer, cas + 1
    raise WireError("untrusted_certificate", "the certificate chain is too long")


def verify(fields: Mapping[str, str], trusted: list[x509.Certificate], now: datetime, *,
           test_environment: bool = False) -> None:
    """An answer or notification from UnionPay (SDKUtil.validate, 5.1.0): its own certificate checked,
    then its signature over the fields that are not empty."""
    pem = fields.get("signPubKeyCert")
    if not pem or not fields.get("signature"):
        raise WireError("unsigned", "no signature or signPubKeyCert")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise WireError("bad_certificate", "signPubKeyCert is not a certificate") from None
    check_chain(cert, trusted, now, test_environment=test_environment)
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
    """customerInfo (AcpService.getCustomerInfo): Base64 of `{k=v&k=v}` (here the holder's name, customerNm)."""
    return base64.b64encode(("{" + "&".join(f"{k}={v}" for k, v in fields.items()) + "}").encode("utf-8")).decode()


def read_customer_info(value: str) -> dict[str, str]:
    text = base64.b64decode(value).decode("utf-8").strip("{}")
    return dict(part.split("=", 1) for part in text.split("&") if "=" in part)


# ---- certificates shaped like UnionPay's, for simulators and tests ----

UNIONPAY_KEY_USAGE = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True,
                                   data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                                   encipher_only=False, decipher_only=False)
CA_KEY_USAGE = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                             encipher_only=False, decipher_only=False)


def issue(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Certificate | None,
          issuer_key: rsa.RSAPrivateKey, *, ca: bool, serial: int | None = None, days: int = 3650,
          algorithm: hashes.HashAlgorithm | None = None, usage: x509.KeyUsage | None = None,
          not_before: datetime | None = None) -> x509.Certificate:
    """A certificate as CFCA issues UnionPay's (the shape of the published ACP SDK certificates): CAs
    with basic constraints CA and keyCertSign/cRLSign, end entities with no basic constraints and
    UnionPay's key usage (signature, non-repudiation, key encipherment, key agreement); sha1WithRSA
    unless `algorithm` says otherwise, as the published roots, intermediates and encryption
    certificates are."""
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.subject if issuer else subject).public_key(key.public_key())
               .serial_number(serial or x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + timedelta(days=days)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
    builder = builder.add_extension(usage or (CA_KEY_USAGE if ca else UNIONPAY_KEY_USAGE), critical=False)
    if algorithm is not None:
        return builder.sign(issuer_key, algorithm)
    return _resigned_sha1(builder.sign(issuer_key, hashes.SHA256()), issuer_key)


# DER AlgorithmIdentifier of sha256WithRSAEncryption and sha1WithRSAEncryption (both with NULL
# parameters): the same length, so one can stand for the other without re-encoding any length.
_SHA256_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")


def _resigned_sha1(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """The certificate signed sha1WithRSA, as UnionPay's published CAs sign. cryptography rightly issues
    no new SHA-1 certificates, so the simulator takes a SHA-256 one, names SHA-1 in its body and outer
    algorithm (same DER length), and has cryptography sign the new body with SHA-1 (same length too)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    tbs = cert.tbs_certificate_bytes
    new_tbs = tbs.replace(_SHA256_RSA, _SHA1_RSA, 1)
    signature = issuer_key.sign(new_tbs, padding.PKCS1v15(), hashes.SHA1())
    if len(signature) != len(cert.signature) or der.count(tbs) != 1 or not der.endswith(cert.signature):
        raise ValueError("cannot re-sign this certificate under SHA-1")
    head, tail = der.split(tbs)
    tail = tail.replace(_SHA256_RSA, _SHA1_RSA, 1)
    resigned = x509.load_der_x509_certificate(head + new_tbs + tail[:-len(signature)] + signature)
    if not isinstance(resigned.signature_hash_algorithm, hashes.SHA1):
        raise ValueError("the re-signed certificate does not name SHA-1")
    return resigned


def cfca_name(common_name: str, organization: str = "China Financial Certification Authority") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def entity_name(common_name: str, organization: str) -> x509.Name:
    """An end entity as CFCA names UnionPay's: C=cn, O=<the issuing CA>, OU=…, OU=Enterprises, CN=041@Z…@owner@…"""
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "cn"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Local RA"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Enterprises"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def bank_time(at: datetime) -> str:
    """ACP times: Beijing, YYYYMMDDhhmmss."""
    return at.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def read_bank_time(text: str | None) -> datetime | None:
    try:
        return datetime.strptime(text or "", "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


def settlement_day(at: datetime) -> datetime:
    """UnionPay's settlement (清算) day of a moment: its day turns at 23:00 Beijing, so what happens after
    23:00 belongs to the next day's settlement and statement."""
    return (at.astimezone(BEIJING) + timedelta(hours=1)).replace(hour=0, minute=0, second=0, microsecond=0)
