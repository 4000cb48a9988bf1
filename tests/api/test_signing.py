"""The two signatures on the wire, pinned by known answers: a merchant request's Authorization header
and an event's Paymux-Signature. gateway/signing.py makes both; the server, the notifier and the
merchant client all use it."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from gateway import auth, client, signing
from gateway.errors import PaymuxError


def test_a_request_signature_is_hmac_sha256_of_the_canonical_lines() -> None:
    header = signing.authorization_header("mch_1", "sk", "post", "/v1/payments?a=1", b'{"x":1}', 1700000000,
                                          "nonce-123")
    expected = hmac.new(b"sk", b'POST\n/v1/payments?a=1\n1700000000\nnonce-123\n{"x":1}\n', hashlib.sha256).hexdigest()
    assert header == (f'PAYMUX-HMAC-SHA256 merchant_id="mch_1",timestamp="1700000000",nonce="nonce-123",'
                      f'signature="{expected}"')
    assert signing.parse_authorization(header) == signing.SignedRequest("mch_1", 1700000000, "nonce-123", expected)


def test_an_event_signature_is_hmac_sha256_of_time_dot_body() -> None:
    expected = hmac.new(b"sk", b'1700000000.{"id":"evt_1"}', hashlib.sha256).hexdigest()
    assert signing.sign_event("sk", b'{"id":"evt_1"}', 1700000000) == f"t=1700000000,v1={expected}"
    header = f"t=1700000000,v1={expected}"
    assert signing.verify_event(b'{"id":"evt_1"}', header, "sk", now=1700000001) == {"id": "evt_1"}


def test_the_server_and_the_client_sign_with_the_signing_module() -> None:
    assert auth.authorization_header is signing.authorization_header
    assert client.sign_event is signing.sign_event and client.verify_event is signing.verify_event


def test_a_malformed_authorization_is_a_401_naming_what_is_wrong() -> None:
    with pytest.raises(signing.MalformedAuthorization) as caught:
        signing.parse_authorization('PAYMUX-HMAC-SHA256 merchant_id="m"')
    assert caught.value.code == "invalid_authorization"
    with pytest.raises(PaymuxError) as refused:
        auth.parse_authorization(None)
    assert (refused.value.status, refused.value.code) == (401, "missing_authorization")


def test_a_signature_compares_with_any_text_without_raising() -> None:
    assert signing.signature_matches("ab", "ab")
    assert not signing.signature_matches("ab", "\udcff")
