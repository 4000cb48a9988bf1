"""No account number, payee name or receiver identity is kept in the clear: after payments, refunds,
payouts, receivers and splits, every text, JSON and binary column of every table and every log line
is read for the full values used, which may appear only sealed or masked. Database and key files are
the owner's alone."""
from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import MetaData, Table, inspect, select

from gateway.logs import configure_logging
from gateway.redact import Kind, classify, redacted_body
from tests.conftest import ServerThread, checkout, free_port, make_settings, wait_for
from tests.support.payouts import FAST, funded
from tests.support.unionpay import UnionPayMerchant, fund, up_settings

ACCOUNT_NO = "6217009931045872216"
PAYEE = "Wentworth Quillfeather"
RECEIVER_NAME = "Ottoline Brackenridge"
RECEIVER_ACCOUNT = "rcv-7734219958"
RECEIVER_BINDING = "sbx-openid-4Q9ZK2M7"
CARD_NO = "6212269933017745501"
HOLDER = "欧阳锋"


def kept_text(engine: Any) -> Iterator[tuple[str, str, str]]:
    """(table, column, value as text) for every value of every table the database has."""
    metadata = MetaData()
    for name in inspect(engine).get_table_names():
        table = Table(name, metadata, autoload_with=engine)
        with engine.connect() as conn:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    if isinstance(value, (bytes, memoryview)):
                        value = bytes(value).decode("utf-8", "replace")
                    elif isinstance(value, (dict, list)):
                        value = json.dumps(value, ensure_ascii=False)
                    if isinstance(value, str):
                        yield name, column, value


def found(needles: tuple[str, ...], engine: Any, logs: str) -> list[str]:
    """Where any needle (as written, or as JSON escapes it) is kept."""
    forms = {n: {n, json.dumps(n)[1:-1]} for n in needles}
    hits = [f"{table}.{column}: {needle}" for table, column, value in kept_text(engine)
            for needle, spellings in forms.items() if any(s in value for s in spellings)]
    return hits + [f"log: {needle}" for needle, spellings in forms.items() if any(s in logs for s in spellings)]


def exchanges(gw: Any, operation: str) -> list[Any]:
    from gateway.models import ChannelExchange

    table = ChannelExchange.__table__
    with gw.gateway.db.transaction() as conn:
        gw.gateway.exchanges.flush(conn)
        return conn.execute(select(table).where(table.c.operation == operation)).all()


@pytest.fixture
def log_sink() -> Iterator[io.StringIO]:
    sink = io.StringIO()
    configure_logging(json_lines=True, stream=sink)
    yield sink
    configure_logging(json_lines=True)


def test_no_account_number_payee_or_receiver_is_kept_in_the_clear(gateway_factory, db_url, log_sink) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(**FAST))
    creds, client = funded(gw)
    sale = client.create_payment(merchant_order_no="sale-2", amount=20000)
    checkout(sale)
    assert wait_for(lambda: client.get_payment(sale["id"])["status"] == "succeeded")
    refund = client.create_refund(sale["id"], merchant_refund_no="r-1", amount=500)
    made = client.request("POST", "/v1/payouts", {"merchant_payout_no": "po-1", "amount": 30000,
                                                  "bank_account": {"name": PAYEE, "number": ACCOUNT_NO}})
    assert made.status_code == 201, made.text
    payout = made.json()
    assert payout["bank_account"]["number"] == "6217***********2216" and PAYEE not in made.text
    rcv = client.request("POST", "/v1/receivers", {"type": "personal", "name": RECEIVER_NAME,
                                                   "account": RECEIVER_ACCOUNT, "bindings": {"sandbox": RECEIVER_BINDING}})
    assert rcv.status_code == 201, rcv.text
    assert (rcv.json()["name"], rcv.json()["account"]) == ("O*******************e", "rcv-******9958")
    duplicate = client.request("POST", "/v1/receivers", {"type": "personal", "name": "x", "account": RECEIVER_ACCOUNT})
    assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "duplicate_receiver")
    split = client.request("POST", f"/v1/payments/{sale['id']}/splits", {
        "merchant_split_no": "s-1", "receiver": rcv.json()["id"], "amount": 3000}).json()
    declared = client.create_payment(merchant_order_no="with-split", amount=10000,
                                     splits=[{"receiver": rcv.json()["id"], "amount": 2000}])
    checkout(declared)
    assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
    assert wait_for(lambda: client.request("GET", f"/v1/payouts/{payout['id']}").json()["status"] == "succeeded")
    assert wait_for(lambda: client.request("GET", f"/v1/splits/{split['id']}").json()["status"] == "succeeded")
    assert wait_for(lambda: [s["status"] for s in client.request(
        "GET", f"/v1/payments/{declared['id']}/splits").json()["data"]] == ["succeeded"])
    # The channel was told the real number, name and binding (the sandbox checks them) …
    sim = gw.gateway.host.account("sandbox").channel._sim
    assert {s["receiver"] for o in sim.orders.values() for s in o.splits.values()} == {RECEIVER_BINDING}
    # … and what was said is kept, masked.
    [sent] = exchanges(gw, "payout")
    assert '"account_no": "6217***********2216"' in sent.request_body and '"account_name": "[redacted]"' in sent.request_body
    assert len(exchanges(gw, "split")) >= 2

    hits = found((ACCOUNT_NO, PAYEE, RECEIVER_NAME, RECEIVER_ACCOUNT, RECEIVER_BINDING), gw.gateway.db.engine,
                 log_sink.getvalue())
    assert hits == []


def test_a_unionpay_payout_keeps_neither_the_card_number_nor_the_holder(gateway_factory, db_url, log_sink) -> None:
    merchant = UnionPayMerchant()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ServerThread(merchant.sim.app, port):
        settings = up_settings(db_url, url, merchant, query_schedule_seconds=(3600,))
        gw = gateway_factory(settings)
        creds = gw.merchant()
        client = gw.client(creds)
        fund(settings, creds.merchant_id, available=50000, position=40000)
        made = client.request("POST", "/v1/payouts", {"merchant_payout_no": "po-up", "amount": 20000,
                                                      "bank_account": {"name": HOLDER, "number": CARD_NO}})
        assert made.status_code == 201, made.text
        assert wait_for(lambda: client.request("GET", f"/v1/payouts/{made.json()['id']}").json()["status"]
                        == "succeeded")
        assert wait_for(lambda: gw.count("channel_callbacks") >= 1)
        # (the payout call asks for UnionPay's encryption certificate first: txnType 95)
        [sent] = [e for e in exchanges(gw, "payout") if json.loads(e.request_body)["txnType"] == "12"]
        assert json.loads(sent.request_body)["accNo"] == "[redacted]"          # encrypted, and still not kept
        assert json.loads(sent.request_body)["customerInfo"] == "[redacted]"   # Base64 of the holder's name
        hits = found((CARD_NO, HOLDER), gw.gateway.db.engine, log_sink.getvalue())
    assert hits == []


@pytest.mark.parametrize("field, kind", [
    ("accNo", Kind.ACCOUNT), ("acc_no", Kind.ACCOUNT), ("account_no", Kind.ACCOUNT), ("accountNumber", Kind.ACCOUNT),
    ("card_no", Kind.ACCOUNT), ("cardNumber", Kind.ACCOUNT), ("bank_account", Kind.ACCOUNT), ("bankNo", Kind.ACCOUNT),
    ("trans_in", Kind.ACCOUNT), ("payee_account", Kind.ACCOUNT),
    ("account_name", Kind.IDENTITY), ("payee_name", Kind.IDENTITY), ("receiverName", Kind.IDENTITY),
    ("customerNm", Kind.IDENTITY), ("customerInfo", Kind.IDENTITY), ("certifId", Kind.IDENTITY),
    ("id_card_no", Kind.IDENTITY), ("phoneNo", Kind.IDENTITY), ("openid", Kind.IDENTITY),
    ("buyer_logon_id", Kind.IDENTITY), ("real_name", Kind.IDENTITY),
    ("sign", Kind.SECRET), ("signature", Kind.SECRET), ("paySign", Kind.SECRET), ("Wechatpay-Signature", Kind.SECRET),
    ("app_private_key", Kind.SECRET), ("apiv3_key", Kind.SECRET), ("token", Kind.SECRET),
    ("app_auth_token", Kind.SECRET), ("access_token", Kind.SECRET), ("X-Api-Key", Kind.SECRET),
    ("Authorization", Kind.SECRET), ("password", Kind.SECRET), ("cvn2", Kind.SECRET),
    ("amount", None), ("out_trade_no", None), ("channel_account", None), ("merchant_id", None), ("name", None),
    ("receiver_id", None), ("sign_type", None), ("bank_code", None), ("certId", None), ("account_no_masked", None),
])
def test_fields_are_classed_by_what_their_name_means(field: str, kind: Kind | None) -> None:
    assert classify(field) is kind


def test_bodies_of_every_shape_are_redacted_alike() -> None:
    number, name, openid = "6216261000000000018", "张三", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    bodies = [
        json.dumps({"out_payout_no": "p1", "bank_account": {"name": name, "number": number}}).encode(),
        json.dumps({"payer": {"openid": openid}, "receivers": [{"account": number, "name": name, "amount": 5}]}).encode(),
        f"app_id=1&biz_content=%7B%22receiver_list%22%3A%5B%7B%22account%22%3A%22{number}%22%2C%22name%22%3A%22"
        f"{name}%22%7D%5D%7D".encode(),
        f"<xml><openid><![CDATA[{openid}]]></openid><bank_no>{number}</bank_no><true_name>{name}</true_name></xml>"
        .encode(),
        f'WECHATPAY2-SHA256-RSA2048 mchid="1900",signature="{openid}",acc_no="{number}"'.encode(),
    ]
    for body in bodies:
        shown = redacted_body(body)
        assert number not in shown and name not in shown and openid not in shown, shown
        assert "6216***********0018" in shown or "[redacted]" in shown


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_database_and_its_companions_are_the_owners_alone(tmp_path) -> None:
    from gateway import db as dbmod

    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.db"
        dbmod.upgrade(f"sqlite:///{fresh}")            # what `paymux init` and `paymux db upgrade` do first
        database = dbmod.Database(f"sqlite:///{fresh}")
        with database.transaction() as conn:         # WAL mode: -wal and -shm appear
            conn.exec_driver_sql("SELECT count(*) FROM merchants")
        companions = [fresh.with_name(fresh.name + s) for s in ("-wal", "-shm") if fresh.with_name(fresh.name + s).exists()]
        assert companions and all(_mode(p) == 0o600 for p in [fresh, *companions])
        database.dispose()
        older = tmp_path / "older.db"                  # made by an earlier paymux, readable by everyone
        dbmod.upgrade(f"sqlite:///{older}")
        for p in [older, *older.parent.glob("older.db-*")]:
            p.chmod(0o644)
        database = dbmod.Database(f"sqlite:///{older}")
        with database.transaction() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM merchants")
        assert all(_mode(p) == 0o600 for p in [older, *older.parent.glob("older.db-*")])
        database.dispose()
    finally:
        os.umask(old)


def test_paymux_init_writes_its_key_and_credentials_for_the_owner_only(tmp_path, monkeypatch) -> None:
    from gateway import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PAYMUX_SECRET_KEY", raising=False)
    monkeypatch.delenv("PAYMUX_DATABASE_URL", raising=False)
    monkeypatch.delenv("PAYMUX_CONFIG", raising=False)
    config = tmp_path / "paymux.toml"
    config.write_text('secret_key = "file:.paymux/secret.key"\n[database]\nurl = "sqlite:///paymux.db"\n')
    old = os.umask(0o022)
    try:
        assert cli.main(["--config", str(config), "init"]) == 0
        made = [tmp_path / ".paymux/secret.key", tmp_path / ".paymux/merchant.json", tmp_path / "paymux.db"]
        assert all(_mode(p) == 0o600 for p in made), [oct(_mode(p)) for p in made]
        for p in made:                                 # an earlier version left them readable: a second init tightens
            p.chmod(0o644)
        assert cli.main(["--config", str(config), "init"]) == 0
        assert all(_mode(p) == 0o600 for p in made), [oct(_mode(p)) for p in made]
    finally:
        os.umask(old)


@pytest.mark.parametrize("plugin", ["wechatpay", "alipay", "unionpay"])
def test_a_simulators_kept_keys_are_the_owners_alone(plugin: str, tmp_path) -> None:
    from gateway.plugins import discover_channel_types, make_plugin_manager

    channel_type = discover_channel_types(make_plugin_manager())[plugin]
    workdir = tmp_path / plugin
    old = os.umask(0o022)
    try:
        channel_type.standalone_simulator(workdir, "http://127.0.0.1:9")
        files = list(workdir.iterdir())
        assert files and all(_mode(p) == 0o600 for p in files) and _mode(workdir) == 0o700
        for p in files:                                # left readable by an earlier version: tightened on the next start
            p.chmod(0o644)
        channel_type.standalone_simulator(workdir, "http://127.0.0.1:9")
        assert all(_mode(p) == 0o600 for p in workdir.iterdir())
    finally:
        os.umask(old)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def empty_url(request, tmp_path) -> Iterator[str]:
    """A database with nothing in it yet (the migrations are run by the test)."""
    import secrets as random

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from gateway.db import normalize_url
    from tests.conftest import NO_PG, PG_URL

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not PG_URL:
        pytest.skip(NO_PG)
    server = make_url(normalize_url(PG_URL))
    name = "paymux_mig_" + random.token_hex(4)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _insert(conn: Any, table_name: str, **values: Any) -> None:
    """A row as the schema of the moment takes it: required columns not given get a plain value."""
    from datetime import UTC, datetime

    from sqlalchemy import JSON, Boolean, DateTime, Integer, Numeric

    table = Table(table_name, MetaData(), autoload_with=conn)
    for column in table.columns:
        if column.name in values or column.nullable or column.server_default is not None or column.primary_key:
            continue
        kind = column.type
        values[column.name] = (datetime.now(UTC) if isinstance(kind, DateTime) else False if isinstance(kind, Boolean)
                               else 0 if isinstance(kind, (Integer, Numeric)) else {} if isinstance(kind, JSON)
                               else f"x-{column.name}"[:10])
    conn.execute(table.insert().values(**values))


def test_the_migration_seals_and_redacts_what_earlier_versions_kept(empty_url) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from gateway.db import alembic_config, normalize_url, upgrade
    from gateway.secretbox import SecretBox
    from gateway.receivers import receiver_identity
    from tests.conftest import SECRET_KEY

    before = ScriptDirectory.from_config(alembic_config(empty_url)).get_revision("0014").down_revision
    command.upgrade(alembic_config(empty_url), before)
    engine = create_engine(normalize_url(empty_url))
    with engine.begin() as conn:
        _insert(conn, "merchants", id="mch_1", name="shop", secret_sealed="v1.x", status="active")
        _insert(conn, "payouts", id="po_1", merchant_id="mch_1", merchant_payout_no="p1", account_name=PAYEE,
                account_no_sealed="v1.x", account_no_masked="6217***********2216", out_payout_no="op1",
                channel_account="sandbox", status="succeeded", currency="CNY")
        _insert(conn, "receivers", id="rcv_1", merchant_id="mch_1", type="personal", name=RECEIVER_NAME,
                account=RECEIVER_ACCOUNT, bindings={"sandbox": RECEIVER_BINDING}, status="active")
        _insert(conn, "channel_callbacks", channel_account="sandbox", verified=True, outcome="applied",
                body=json.dumps({"event": "payout", "account_no": ACCOUNT_NO, "account_name": PAYEE}).encode())
        _insert(conn, "channel_exchanges", channel_account="sandbox", operation="payout", duration_ms=1,
                request_body=json.dumps({"account_no": ACCOUNT_NO, "receiver": RECEIVER_ACCOUNT}),
                response_body="")
    # Rows to seal and no key: the migration says what it needs, and changes nothing.
    with pytest.raises(RuntimeError, match="needs the secret key"):
        upgrade(empty_url)
    upgrade(empty_url, SECRET_KEY)
    box = SecretBox(SECRET_KEY)
    with engine.connect() as conn:
        payout = conn.execute(select(Table("payouts", MetaData(), autoload_with=conn))).one()
        receiver = conn.execute(select(Table("receivers", MetaData(), autoload_with=conn))).one()
    assert box.open(payout.account_name_sealed, "po_1:name") == PAYEE and payout.account_name_masked == "W********************r"
    assert receiver_identity(box, receiver) == (RECEIVER_NAME, RECEIVER_ACCOUNT, {"sandbox": RECEIVER_BINDING})
    assert receiver.account_digest == box.fingerprint(RECEIVER_ACCOUNT) and receiver.bindings == {"sandbox": "sbx-***********K2M7"}
    assert found((ACCOUNT_NO, PAYEE, RECEIVER_NAME, RECEIVER_ACCOUNT, RECEIVER_BINDING), engine, "") == []
    engine.dispose()
