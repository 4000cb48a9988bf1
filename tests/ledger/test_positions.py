"""Channel positions (头寸): prefunding a channel account for payouts is a booked entry, once per
transfer, and `paymux positions` shows what each account can still pay out."""
from __future__ import annotations

import json

from tests.support.operator import Operator, balances, sandbox_settings


def test_a_top_up_is_booked_once_and_shown(db_url, tmp_path) -> None:
    op = Operator(sandbox_settings(db_url), tmp_path)
    op.add_operator("fin", "approver")
    op.add_operator("otto", "operator")
    refused = op.signed_in("otto", "positions", "topup", "sandbox", "1", "--reference", "w-0", ok=False)
    assert refused.returncode == 1 and "not_allowed" in refused.stderr     # an approver answers for cash moved
    assert op.signed_in("fin", "positions", "topup", "sandbox", "1", "--reference", "w-0", password="nope",
                        ok=False).returncode == 1
    op.signed_in("fin", "positions", "topup", "sandbox", "500000", "--reference", "wire-1", "--reason", "prefund")
    op.signed_in("fin", "positions", "topup", "sandbox", "500000", "--reference", "wire-1")   # the same transfer again
    op.signed_in("fin", "positions", "topup", "sandbox", "250000", "--reference", "wire-2")
    listed = json.loads(op.run("positions", "list", "--json").stdout)
    assert listed == [{"channel_account": "sandbox", "currency": "CNY", "position": 750000, "held": 0}]
    assert "750,000" in op.run("positions").stdout
    assert balances(op, "platform")["reserve_bank"] == -750000      # the cash left the reserve bank
    refused = op.signed_in("fin", "positions", "topup", "nowhere", "1", "--reference", "x", ok=False)
    assert refused.returncode == 2 and "no channel account" in refused.stderr
    assert op.signed_in("fin", "positions", "topup", "sandbox", "0", "--reference", "y", ok=False).returncode == 2
    assert op.run("positions", "topup", "sandbox", "1", "--reference", "z", ok=False).returncode == 2   # nobody named
    assert op.run("ledger", "check").returncode == 0
