"""What must never be kept or shown in the clear, judged by what a field means, not by one spelling.

A field's name is cut into words (camelCase, snake_case, dashes, dots: `accNo`, `account_no`,
`accountNumber`, `bank-account` all say "account number") and classed:

- a secret: keys, signatures, tokens, passwords, cookies, nonces, ciphertexts, certificates, card
  security codes (`sign`, `paySign`, `app_private_key`, `apiv3_key`, `Authorization`, `cvn2`);
- an account number: a bank account, card, IBAN (`accNo`, `bank_account`, `cardNumber`), shown
  masked (6216********0018) so an operator can still tell two apart;
- a person's identity: names of payers and payees (`account_name`, `customerNm`, `receiver_name`),
  identity documents (`certifId`, `id_card`), phones and e-mails, the payer's or receiver's id at a
  channel (`openid`, `buyer_id`, `trans_in`, `customerInfo`).

Inside an object that stands for a person or an account (`payer`, `receivers`, `bank_account`,
`receiver_list`), the plain `name`, `account`, `number` and `id` are theirs, so they are classed too.
The same rules serve every shape a body comes in (JSON, a form `k=v&…`, XML, `k="v"` header-like
text, JSON inside a form field), the channel exchanges, the callbacks kept, and the logs.
"""
from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

REDACTED = "[redacted]"
MAX_BODY = 4000
MAX_PLAIN_TEXT = 200


class Kind(enum.Enum):
    SECRET = "secret"
    ACCOUNT = "account"
    IDENTITY = "identity"


_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
# Names written as one word, cut where the words meet.
_COMPOUNDS = {
    "apikey": ("api", "key"), "privatekey": ("private", "key"), "secretkey": ("secret", "key"),
    "accesstoken": ("access", "token"), "paysign": ("pay", "sign"), "accno": ("acc", "no"),
    "acctno": ("acct", "no"), "accountno": ("account", "no"), "accountnumber": ("account", "number"),
    "cardno": ("card", "no"), "cardnumber": ("card", "number"), "bankcard": ("bank", "card"),
    "bankaccount": ("bank", "account"), "idcard": ("id", "card"), "idno": ("id", "no"),
    "certno": ("cert", "no"), "phoneno": ("phone", "no"), "mobileno": ("mobile", "no"),
    "realname": ("real", "name"), "username": ("user", "name"), "passwd": ("password",),
    "subopenid": ("sub", "openid"), "spopenid": ("sp", "openid"),
}
_SECRET_LAST = {"sign", "signature", "secret", "password", "pwd", "passphrase", "token", "key", "cookie",
                "authorization", "nonce", "cipher", "ciphertext", "cert", "certificate", "credential",
                "credentials", "cvn", "cvv", "cvc", "pin", "otp", "csrf"}
_SECRET_ANY = {"private", "secret", "password", "authorization", "apiv", "credential", "cookie", "sealed"}
_ACCOUNT = {"acc", "acct", "account", "card", "iban", "pan"}
_NUMBER = {"no", "num", "number", "nbr", "id"}
_PARTY = {"payer", "payee", "receiver", "recipient", "beneficiary", "buyer", "holder", "cardholder", "customer",
          "consumer"}
_PARTY_IDS = {"id", "no", "num", "number", "account", "acct", "openid", "unionid", "login", "logon", "uid", "info",
              "mchid", "name", "nm", "email", "phone", "mobile"}
_NAME = {"name", "nm", "names"}
_NAME_OWNER = _PARTY | _ACCOUNT | {"real", "true", "legal", "user", "contact", "person"}
_DOCUMENT = {"certif", "passport", "identity", "ssn"}
_CONTACT = {"phone", "mobile", "tel", "telephone", "email", "mail"}
_ALWAYS_IDENTITY = {"openid", "unionid"}
_EXACT = {("trans", "in"): Kind.ACCOUNT, ("return", "mchid"): Kind.ACCOUNT}
# paymux's own names that merely look like the above: its receiver ids, the channel account serving a call.
_OURS = {("receiver", "id"), ("receiver", "type")}
# Inside a person or an account, these plain names are theirs.
_IN_PERSON = {"name": Kind.IDENTITY, "nm": Kind.IDENTITY, "id": Kind.IDENTITY, "openid": Kind.IDENTITY,
              "login": Kind.IDENTITY, "logon": Kind.IDENTITY, "phone": Kind.IDENTITY, "mobile": Kind.IDENTITY,
              "email": Kind.IDENTITY, "account": Kind.ACCOUNT, "acct": Kind.ACCOUNT, "no": Kind.ACCOUNT,
              "number": Kind.ACCOUNT, "num": Kind.ACCOUNT}


def words(name: str) -> tuple[str, ...]:
    """`accountNumber` -> ("account", "number"); `Wechatpay-Signature` -> ("wechatpay", "signature")."""
    out: list[str] = []
    for word in _WORD.findall(str(name)):
        word = word.lower()
        out.extend(_COMPOUNDS.get(word, (word,)))
    return tuple(out)


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


@functools.lru_cache(maxsize=4096)
def classify(name: str, in_person: bool = False) -> Kind | None:
    """What a field of this name holds, if it must not be kept in the clear."""
    w = words(name)
    if not w or w in _OURS or "channel" in w:
        return None
    last, found = w[-1], set(w)
    if last in _SECRET_LAST or found & _SECRET_ANY:
        return Kind.SECRET
    if w in _EXACT:
        return _EXACT[w]
    if found & _ALWAYS_IDENTITY:
        return Kind.IDENTITY
    if found & _DOCUMENT and (last in _NUMBER or last in _DOCUMENT):
        return Kind.IDENTITY
    if w[0] in ("id", "cert") and last in _NUMBER - {"id"}:
        return Kind.IDENTITY
    if found & _CONTACT and (last in _CONTACT or last in _NUMBER or last in ("address", "addr")):
        return Kind.IDENTITY
    if last in _NAME and len(w) > 1 and _singular(w[-2]) in _NAME_OWNER:
        return Kind.IDENTITY
    if {_singular(x) for x in w} & _PARTY and last in _PARTY_IDS and len(w) > 1:
        return Kind.IDENTITY if last not in ("account", "acct", "no", "number", "num") else Kind.ACCOUNT
    if found & _ACCOUNT and (last in _ACCOUNT or last in _NUMBER) or "bank" in found and last in _NUMBER - {"id"}:
        return Kind.ACCOUNT
    if in_person and len(w) == 1 and w[0] in _IN_PERSON:
        return _IN_PERSON[w[0]]
    return None


@functools.lru_cache(maxsize=4096)
def _verdict(name: str, in_person: bool) -> tuple[Kind | None, bool, bool]:
    """All redact asks of a field's name, in one look-up: classify, _party_alone, _holds_a_person."""
    return classify(name, in_person), _party_alone(name), _holds_a_person(name)


@functools.lru_cache(maxsize=4096)
def _party_alone(name: str) -> bool:
    """`payer`, `receiver`, `payee` on their own: a person, or (holding a plain value) their account."""
    w = words(name)
    return len(w) == 1 and _singular(w[0]) in _PARTY


@functools.lru_cache(maxsize=4096)
def _holds_a_person(name: str) -> bool:
    """An object under this name stands for a person or an account (`payer`, `receivers`, `bank_account`)."""
    return bool({_singular(x) for x in words(name)} & (_PARTY | _ACCOUNT))


def masked(number: str) -> str:
    """An account number (or any account reference) as shown back: its first 4 and last 4 characters
    when it is long (a card number), else no more than its last 4 and never more than half."""
    if len(number) >= 12:
        return f"{number[:4]}{'*' * (len(number) - 8)}{number[-4:]}"
    keep = min(4, len(number) // 2)
    return "*" * (len(number) - keep) + number[len(number) - keep:]


def masked_name(name: str) -> str:
    """A person's name as shown back: its first and last characters (张三 -> 张*, Supplier Ltd -> S**********d)."""
    if len(name) <= 2:
        return name[:len(name) - 1] + "*" if name else name
    return f"{name[0]}{'*' * (len(name) - 2)}{name[-1]}"


def _replacement(kind: Kind, value: Any) -> Any:
    if value is None or value == "":
        return value
    if kind is Kind.ACCOUNT and isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).replace(" ", "")
        if text.isdigit() and len(text) >= 12:
            return masked(text)
    return REDACTED


_LEAVES = frozenset({str, int, float, bool, type(None)})   # what JSON gives that holds no field


def redact(value: Any, in_person: bool = False) -> Any:
    """A JSON-like value with whatever its field names say is sensitive replaced, at any depth.
    A string holding JSON (Alipay's biz_content) is redacted inside."""
    if type(value) in _LEAVES and (type(value) is not str or value[:1] not in ("{", "[")):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            kind, alone, person = _verdict(str(key), in_person)
            nested = type(item) not in _LEAVES and isinstance(item, (Mapping, list))
            if kind is None and alone and not nested:
                kind = Kind.ACCOUNT
            if kind is not None and not (nested and kind is not Kind.SECRET and person):
                out[key] = _replacement(kind, item)
            else:
                out[key] = redact(item, in_person or person)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(v, in_person) for v in value]
    if isinstance(value, str) and value[:1] in ("{", "[") and len(value) < 100_000:
        try:
            inner = json.loads(value)
        except ValueError:
            return value
        return json.dumps(redact(inner, in_person), ensure_ascii=False, separators=(",", ":"))
    return value


_XML_ELEMENT = re.compile(r"<([A-Za-z_][\w.\-]*)(\s[^>]*)?>(<!\[CDATA\[.*?\]\]>|[^<]*)</\1>", re.DOTALL)
_PAIR = re.compile(r"""([A-Za-z_][\w.\-]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|(?:(?:Bearer|Basic|Token)\s+)?[^\s,;&"']+)""",
                   re.IGNORECASE)


def _redact_xml(text: str) -> str:
    def element(match: re.Match) -> str:
        tag, attrs, inner = match.group(1), match.group(2) or "", match.group(3)
        kind = classify(tag)
        if kind is None or not inner:
            return match.group(0)
        raw = inner[9:-3] if inner.startswith("<![CDATA[") else inner
        return f"<{tag}{attrs}>{_replacement(kind, raw.strip())}</{tag}>"

    return _XML_ELEMENT.sub(element, text)


def redact_pairs(text: str) -> str:
    """Header-like text (`Authorization: WECHATPAY2 mchid="1",signature="…"`, `sign=…`): each `k=v`
    or `k: v` whose key is sensitive has its value replaced."""
    def pair(match: re.Match) -> str:
        kind = classify(match.group(1))
        if kind is None:
            return match.group(0)
        value = match.group(3)
        quote = value[0] if value[:1] in ('"', "'") else ""
        inner = value[1:-1] if quote else value
        return f"{match.group(1)}{match.group(2)}{quote}{_replacement(kind, inner)}{quote}"

    return _PAIR.sub(pair, text)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """HTTP headers with the sensitive ones (Authorization, Cookie, *-Signature, X-Api-Key) replaced."""
    return {k: (_replacement(kind, v) if (kind := classify(k)) else redact_pairs(v)) for k, v in headers.items()}


def redacted_body(body: bytes | str | None, limit: int = MAX_BODY) -> str:
    """A body as sent or received, in whatever shape (JSON, XML, a form, k="v" text), with its
    sensitive fields replaced; anything else longer than a line is not kept."""
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.dumps(redact(json.loads(stripped)), ensure_ascii=False)[:limit]
        except ValueError:
            pass
    if stripped.startswith("<"):
        return _redact_xml(stripped)[:limit]
    if "=" in stripped and not any(c.isspace() for c in stripped):
        pairs = parse_qsl(stripped, keep_blank_values=True)
        if pairs:
            return json.dumps(redact(dict(pairs)), ensure_ascii=False)[:limit]
    if len(text) > MAX_PLAIN_TEXT:
        return "[not JSON, XML or a form: not kept]"
    return redact_pairs(text)
