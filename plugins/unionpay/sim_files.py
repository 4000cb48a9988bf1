"""The simulator's statement files and certificates, shaped like UnionPay's published artefacts.

Statement: the ZM record layout of 《全渠道平台接入接口规范 第3部分 文件接口》 (the widths the SDK demo's
DemoBase.parseZMFile uses: 42 fields, one separator byte after each), GBK, CRLF after each record;
zipped as `INN{yymmdd}88ZM_{merId}` beside an (empty) ZME file, as in UnionPay's sample
802310048993424_20150905.zip; fileContent is Base64 of that zip deflated with zlib (the inverse of
AcpService.deCodeFileContent).

Certificates: the shape of the SDK's acp_*_root.cer, acp_*_middle.cer and acp_*_enc.cer: a
self-signed root and an intermediate, both sha1WithRSA with basic constraints CA and
keyCertSign/cRLSign; end-entity certificates without basic constraints, key usage signature,
non-repudiation, key encipherment and key agreement, CN `041@Z…@<owner>@0000000n` whose third part is
UnionPay's name in production and `00040000:SIGN` in the test environment.
"""
from __future__ import annotations

import base64
import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from plugins.unionpay import wire

ZM_WIDTHS = (3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2, 6, 2, 4, 32, 1, 21, 15, 1, 15,
             32, 13, 13, 8, 32, 13, 13, 12, 2, 1, 32, 98)
# the fields the simulator fills, by their 1-based position in the record
TXN_CODE, ACQ_INS, FWD_INS, TRACE_NO, TRACE_TIME, ACC_NO, TXN_AMT, MCC, TERM_TYPE, QUERY_ID = range(1, 11)
ORDER_ID, FEE, SETTLE_AMT, TXN_TYPE, TXN_SUB_TYPE, BIZ_TYPE, ACC_TYPE, ORIG_QRY_ID, MER_ID = 12, 16, 17, 20, 21, 22, 23, 27, 28
ORIG_ORDER_ID = 41


def signed_amount(fen: int) -> str:
    """X+n12: C (credit to the merchant) or D (debit) and 12 digits of fen."""
    return ("C" if fen >= 0 else "D") + f"{abs(fen):012d}"


def zm_record(values: dict[int, str]) -> bytes:
    """One record: every field padded to its byte width (GBK), numbers as given, one space after each."""
    out = bytearray()
    for position, width in enumerate(ZM_WIDTHS, start=1):
        cell = values.get(position, "").encode("gbk")
        if len(cell) > width:
            raise ValueError(f"field {position} ({cell!r}) is wider than {width} bytes")
        out += cell.ljust(width, b" ") + b" "
    return bytes(out)


def zm_zip(records: list[bytes], mer_id: str, yymmdd: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"INN{yymmdd}88ZM_{mer_id}", b"".join(r + b"\r\n" for r in records))
        archive.writestr(f"INN{yymmdd}88ZME_{mer_id}", b"")
    return out.getvalue()


def file_content(archive: bytes) -> str:
    return base64.b64encode(zlib.compress(archive)).decode()


# ---- certificates ----

def ca_name(organization: str, common_name: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)]
    if common_name:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


@dataclass
class Material:
    """UnionPay's keys and certificates, as one simulator (or a standalone workdir) holds them."""
    root_key: rsa.RSAPrivateKey
    mid_key: rsa.RSAPrivateKey
    sign_key: rsa.RSAPrivateKey
    enc_key: rsa.RSAPrivateKey
    root: x509.Certificate
    middle: x509.Certificate
    sign_cert: x509.Certificate
    enc_cert: x509.Certificate

    @classmethod
    def new(cls, test_environment: bool = False) -> "Material":
        root_key, mid_key, sign_key, enc_key = (wire.new_key() for _ in range(4))
        if test_environment:   # UnionPay's test environment: CFCA TEST CS CA / CFCA TEST OCA1, owner 00040000:SIGN
            root_name = ca_name("China Financial Certification Authority", "CFCA TEST CS CA")
            mid_name = ca_name("China Financial Certification Authority", "CFCA TEST OCA1")
            owner, org = wire.TEST_ENVIRONMENT_NAME, "CFCA TEST OCA1"
        else:
            root_name, mid_name, owner, org = ca_name("CFCA CS CA"), ca_name("CFCA OCA1"), wire.UNIONPAY_NAME, "CFCA OCA1"
        root = wire.issue(root_name, root_key, None, root_key, ca=True, days=7300)
        middle = wire.issue(mid_name, mid_key, root, root_key, ca=True, days=5000)
        sign_cert = cls.leaf(f"041@Z12@{owner}@00000001", org, sign_key, middle, mid_key)
        enc_cert = cls.leaf(f"041@Z12@{wire.TEST_ENVIRONMENT_NAME}@00000002", org, enc_key, middle, mid_key)
        return cls(root_key, mid_key, sign_key, enc_key, root, middle, sign_cert, enc_cert)

    @staticmethod
    def leaf(common_name: str, organization: str, key: rsa.RSAPrivateKey, middle: x509.Certificate,
             mid_key: rsa.RSAPrivateKey, **kwargs: Any) -> x509.Certificate:
        return wire.issue(wire.entity_name(common_name, organization), key, middle, mid_key, ca=False,
                          days=kwargs.pop("days", 1825), **kwargs)
