"""Running paymux: serve, worker, init, db upgrade."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tomllib

import uvicorn
from starlette.applications import Starlette

from gateway import db
from gateway.app import create_app
from gateway.cli import DEMO_MERCHANT, config_identity, credentials_file, processes, read_credentials
from gateway.cli.common import settings_of, with_gateway
from gateway.compose import Backend
from gateway.config import Settings, database_threads_for, load_settings
from gateway.logs import configure_logging
from gateway.merchants import create_merchant, first_merchant
from gateway.secretbox import ensure_key_file
from gateway.service import Gateway


def db_upgrade(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    db.upgrade(settings.database_url, settings.secret_key)
    print(f"database at {db.make_url_safe(settings.database_url)} is up to date")
    return 0


def init(args: argparse.Namespace) -> int:
    """Everything `make run` needs on a fresh machine; safe to run again."""
    settings = settings_of(args)
    if (created := ensure_key_file(_key_file(settings) or settings.secret_key)) is not None:
        print(f"created secret key file {created}")
        settings = settings_of(args)
    db.upgrade(settings.database_url, settings.secret_key)
    saved_to = credentials_file(args.config)
    read_credentials(args.config)   # another config's demo merchant in that file: say so, overwrite nothing
    with Backend(settings) as backend, backend.transaction() as conn:
        creds = (first_merchant(conn, backend.box, DEMO_MERCHANT)
                 or create_merchant(conn, backend.box, backend.clock, DEMO_MERCHANT))
    saved_to.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(saved_to, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)   # a file left by an earlier version may be readable by others
    with os.fdopen(fd, "w") as f:
        json.dump({"merchant_id": creds.merchant_id, "secret": creds.secret, "url": settings.public_url,
                   "config": config_identity(args.config)}, f)
    print(f"demo merchant (saved to {saved_to}, which `paymux pay` reads with this config):")
    print(f"  merchant_id = {creds.merchant_id}")
    print(f"  secret      = {creds.secret}")
    return 0


def _key_file(settings: Settings) -> str | None:
    """The `file:` reference the config gives secret_key (once the file exists, settings hold its
    value), so that init can make an existing key file private too."""
    if os.environ.get("PAYMUX_SECRET_KEY") or settings.config_path is None:
        return None
    reference = tomllib.loads(settings.config_path.read_text()).get("secret_key")
    return reference if isinstance(reference, str) and reference.startswith("file:") else None


def serve(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    with Backend(settings) as backend:
        current, head = db.schema_state(backend.db.engine)
    if current != head:
        print(f"paymux: the database schema is at {current or 'nothing'}, this code needs {head}: "
              f"run `paymux db upgrade`", file=sys.stderr)
        return 2
    configure_logging(settings.log_json)
    workers = args.workers
    base = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::', '') else args.host}:{args.port}"
    print(f"paymux: serving on http://{args.host}:{args.port} ({workers} process{'es' if workers > 1 else ''}, "
          f"database {db.make_url_safe(settings.database_url)}); console at {base}/console/; Ctrl-C stops",
          flush=True)
    if workers == 1:
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning", access_log=False)
        return 0
    if settings.config_path is not None:   # each worker process reads the same settings again
        os.environ["PAYMUX_CONFIG"] = str(settings.config_path.resolve())
    os.environ[SERVE_PROCESSES] = str(workers)
    if not processes.SPREADS_CONNECTIONS:   # one socket shared: whichever process wakes first accepts
        uvicorn.run("gateway.cli.server:worker_app", factory=True, workers=workers, host=args.host, port=args.port,
                    log_level="warning", access_log=False)
        return 0
    try:
        supervisor = processes.Supervisor(args.host, args.port, workers)
    except OSError as exc:
        print(f"paymux: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return supervisor.run()


SERVE_PROCESSES = "PAYMUX_SERVE_PROCESSES"   # set by `serve --workers N` for the processes it starts


def worker_app() -> Starlette:
    """The app of one `paymux serve --workers N` process (uvicorn imports this in each one, on the socket
    gateway/cli/processes.py bound for it). Each process runs its own background loops: the janitor and
    the notifier share rows by leases, circuits and daily limits through the database (gateway/health.py,
    routing.py)."""
    settings = load_settings()
    configure_logging(settings.log_json)
    processes = int(os.environ.get(SERVE_PROCESSES, "1"))   # this host's serving processes share its threads
    return create_app(settings.with_changes(database_threads=database_threads_for(settings, processes)))


def worker(args: argparse.Namespace) -> int:
    """The background work without HTTP: deliver merchant events, query open payments, close expired ones,
    run the reconciliations requested from the console, close each day on the `[close]` schedule."""
    async def work(gateway: Gateway) -> None:
        from gateway.close import runner as close   # the daily close ([close] in the configuration)
        from gateway.console import recon_requests   # console: runs started from the console (worker only)

        await asyncio.gather(gateway.notifier.run(), gateway.janitor.run(), gateway.health_loop(),
                             recon_requests.loop(gateway), close.loop(gateway))

    try:
        with_gateway(settings_of(args), "worker", work)
    except KeyboardInterrupt:
        pass
    return 0
