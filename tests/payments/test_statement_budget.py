"""What a payment's success and a refund's cost the database, counted (never timed): the statements one
verified callback sends, from the request to its answer, with the janitor and notifier not running; and
where in a payment's transaction the ledger's rows are locked (as late as can be: the entry is its last
write)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import event, text

from tests.conftest import Running, checkout, free_port, make_settings, start_gateway
from tests.support.sandbox import callback, paid_event

# Measured 2026-11-30: SQLite 16 (BEGIN IMMEDIATE included), PostgreSQL 15 at first. Now: one read (attempt,
# payment, merchant's URL), the attempt's and the payment's conditional UPDATEs (the fee written with the
# state change, the payment returned for its event; on PostgreSQL one statement), the event, the entry (on
# PostgreSQL one statement, ledger.one_statement; on SQLite four), the callback's record.
BUDGET = {"sqlite": 10, "postgresql": 5}
LEDGER_FIRST = {"sqlite": "INSERT INTO ledger_entries", "postgresql": "WITH e AS ("}


@contextmanager
def counted(gw: Running) -> Iterator[list[str]]:
    """The first line of each statement the gateway's engine sends meanwhile."""
    sent: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        sent.append(statement.split("\n")[0][:120])

    event.listen(gw.gateway.db.engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(gw.gateway.db.engine, "before_cursor_execute", count)


def test_a_payment_success_costs_no_more_statements_than_its_budget(db_url: str) -> None:
    settings = make_settings(db_url, free_port())
    app, server = start_gateway(settings, run_workers=False)
    with server:
        gw = Running(settings.public_url, settings, app)
        client = gw.client(gw.merchant())
        warm = client.create_payment(merchant_order_no="warm", amount=100)   # the accounts exist, caches filled
        assert callback(gw, paid_event(warm)).status_code == 200
        payment = client.create_payment(merchant_order_no="counted", amount=100)
        with counted(gw) as sent:
            assert callback(gw, paid_event(payment)).status_code == 200
        assert client.get_payment(payment["id"])["status"] == "succeeded"
        dialect = gw.gateway.db.dialect
    assert len(sent) <= BUDGET[dialect], "\n".join(sent)
    # Nothing of the payment's own is written after the entry: only the callback's record follows it.
    first_ledger = next(i for i, statement in enumerate(sent) if statement.startswith(LEDGER_FIRST[dialect]))
    assert [s.split(" (")[0] for s in sent[first_ledger:]
            if not s.startswith(("INSERT INTO ledger", "UPDATE ledger", "WITH e"))] == ["INSERT INTO channel_callbacks"]
    assert len(sent) >= 5, sent      # the listener saw the callback's work (the state change, entry, event…)


# Measured 2026-12-01: SQLite 14, then 12 once the refund's row, read by its number, was not read again by
# id nor rendered from a third read (its UPDATE returns it). The attempt, the refund, the refund's move, its
# payment's amounts (one UPDATE returning the payment), the entry (one statement on PostgreSQL), the
# merchant's URL (the payment names none), the event, the callback's record.
REFUND_BUDGET = {"sqlite": 12, "postgresql": 8}


def test_a_refund_success_by_callback_costs_no_more_statements_than_its_budget(db_url: str) -> None:
    """The refund's callback: the attempt and the refund found, the refund moved, its payment's amounts
    moved and returned in one UPDATE, the entry, the event, the callback's record."""
    settings = make_settings(db_url, free_port(), callback_mode="drop")
    app, server = start_gateway(settings, run_workers=False)
    with server:
        gw = Running(settings.public_url, settings, app)
        client = gw.client(gw.merchant())
        payment = client.create_payment(merchant_order_no="refunded", amount=1000)
        checkout(payment)   # paid at the sandbox, whose callbacks are dropped: the test sends them
        assert callback(gw, paid_event(payment)).status_code == 200
        refund = client.create_refund(payment["id"], amount=300, merchant_refund_no="r-1")
        assert refund["status"] == "processing"
        with gw.gateway.db.transaction() as conn:   # the number the channel knows it by
            out_refund_no = conn.execute(text("SELECT out_refund_no FROM refunds WHERE id = :id"),
                                         {"id": refund["id"]}).scalar_one()
        with counted(gw) as sent:
            assert callback(gw, {"event": "refund", "out_trade_no": payment["out_trade_no"], "refund_status": "SUCCESS",
                                 "amount": 300, "out_refund_no": out_refund_no}).status_code == 200
        assert client.get_refund(refund["id"])["status"] == "succeeded"
        assert client.get_payment(payment["id"])["amount_refunded"] == 300
        dialect = gw.gateway.db.dialect
    assert 5 <= len(sent) <= REFUND_BUDGET[dialect], "\n".join(sent)


def test_a_row_read_on_the_drivers_cursor_is_the_row_sqlalchemy_reads(db_url: str) -> None:
    """ledger.driver.first (the callback's lookup and state change, on PostgreSQL on the driver's cursor)
    gives what SQLAlchemy's own execution gives for the same statement: every column, converted by its
    type (the timestamps aware, the JSON parsed), the statement's own values (its states, its LIMIT) bound."""
    from gateway.payment_rows import CALLBACK_LOOKUP, OPEN_OR_ENDED, move_attempt_and_payment
    from ledger import driver

    settings = make_settings(db_url, free_port())
    app, server = start_gateway(settings, run_workers=False)
    with server:
        gw = Running(settings.public_url, settings, app)
        client = gw.client(gw.merchant())
        made = client.create_payment(merchant_order_no="read-twice", amount=100, metadata={"k": "v"})
        params = {"b_out_trade_no": made["out_trade_no"], "b_account": made["channel"]}
        with gw.gateway.db.transaction() as conn:
            ours = driver.first(conn, CALLBACK_LOOKUP, params)
            theirs = conn.execute(CALLBACK_LOOKUP, params).first()
            assert driver.first(conn, CALLBACK_LOOKUP, {**params, "b_out_trade_no": "none"}) is None
        assert ours is not None and tuple(ours) == tuple(theirs) and ours._fields == tuple(theirs._fields)
        assert ours.created_at.tzinfo is not None and ours.metadata == {"k": "v"}
        if gw.gateway.db.dialect == "postgresql":   # the state change, moved by one and undone
            move = move_attempt_and_payment(("status",), OPEN_OR_ENDED, ("status",), ("processing",))
            with gw.gateway.db.transaction() as conn:
                moved = driver.first(conn, move, {"b_attempt_id": ours.attempt_id, "a_status": "unknown",
                                                  "p_status": "processing"})
                assert (moved.a_payment_id, moved.id, moved.status) == (made["id"], made["id"], "processing")
                assert moved.created_at == ours.created_at
