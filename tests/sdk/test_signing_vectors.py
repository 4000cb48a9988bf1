"""The Node SDK's signing vectors (sdk/node/test/vectors/signing.json) are what gateway/signing.py
computes: the Node tests check the SDK against the same file, so both sides sign alike."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.signing import authorization_header, parse_authorization, sign, sign_event, verify_event

VECTORS = json.loads((Path(__file__).parents[2] / "sdk/node/test/vectors/signing.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("v", VECTORS["requests"], ids=lambda v: v["name"])
def test_request_vectors_are_the_gateways_signatures(v: dict) -> None:
    body = v["body"].encode()
    assert sign(v["secret"], v["method"], v["path_and_query"], str(v["timestamp"]), v["nonce"], body) == v["signature"]
    assert authorization_header(v["merchant_id"], v["secret"], v["method"], v["path_and_query"], body,
                                v["timestamp"], v["nonce"]) == v["authorization"]
    parsed = parse_authorization(v["authorization"])   # the header the SDK builds is one the gateway reads
    assert (parsed.merchant_id, parsed.timestamp, parsed.nonce) == (v["merchant_id"], v["timestamp"], v["nonce"])


@pytest.mark.parametrize("v", VECTORS["events"], ids=lambda v: v["name"])
def test_event_vectors_are_the_notifiers_signatures(v: dict) -> None:
    body = v["body"].encode()
    assert sign_event(v["secret"], body, v["timestamp"]) == v["header"]
    assert verify_event(body, v["header"], v["secret"], now=v["timestamp"]) == json.loads(v["body"])
