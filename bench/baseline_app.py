"""The baseline: a bare Starlette endpoint that parses JSON and does one INSERT of a payment-sized row
into the same database, with the same driver and the same thread-pool approach as the gateway."""
from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, insert
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.db import Database

metadata = MetaData()
rows = Table("bench_baseline", metadata,
             Column("id", String(40), primary_key=True), Column("merchant_order_no", String(64), unique=True),
             Column("amount", BigInteger), Column("currency", String(3)), Column("subject", String(256)),
             Column("status", String(20)), Column("created_at", DateTime(timezone=True)))


def create_app(url: str) -> Starlette:
    db = Database(url)
    metadata.create_all(db.engine)

    async def create(request: Request) -> Response:
        data = json.loads(await request.body())
        row = {"id": "b_" + secrets.token_hex(10), "merchant_order_no": data["merchant_order_no"],
               "amount": data["amount"], "currency": data.get("currency", "CNY"), "subject": data.get("subject", ""),
               "status": "processing", "created_at": datetime.now(UTC)}
        await db.tx(lambda conn: conn.execute(insert(rows).values(**row)))
        return Response(json.dumps(row, default=str), 201, media_type="application/json")

    return Starlette(routes=[Route("/v1/payments", create, methods=["POST"])])


app = create_app(os.environ["BENCH_DATABASE_URL"]) if "BENCH_DATABASE_URL" in os.environ else None
