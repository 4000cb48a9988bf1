"""What the commands share: the settings, the backend they work on, a gateway for the commands that
talk to channels, and an operator signed in for the commands one answers for."""
from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from contextlib import nullcontext
from datetime import datetime
from typing import Awaitable, Callable, Protocol, TypeVar

from sqlalchemy import Connection

from gateway.cli import Refused, Usage
from gateway.clock import OFFSET_FILE_VARIABLE, OffsetFileClock, clock_of
from gateway.compose import Backend
from gateway.config import Settings, load_settings
from gateway.console.actions import NEEDS
from gateway.console.identity import RANK, SignInLimit, SignInRefused, authenticate
from gateway.errors import PaymuxError
from gateway.logs import configure_logging, get_logger
from gateway.service import Gateway
from ledger.errors import LedgerError

T = TypeVar("T")


class Operator(Protocol):
    """An operator signed in (their row), as the audit log records them."""

    id: str
    name: str
    role: str


def settings_of(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def in_transaction(args: argparse.Namespace, work: Callable[[Connection], T]) -> T:
    """work(conn) in one transaction on the configured database, for commands that do not serve."""
    with Backend(settings_of(args)) as backend:
        return backend.in_transaction(work)


def with_gateway(settings: Settings, role: str, work: Callable[[Gateway], Awaitable[T]]) -> T:
    """Run `await work(gateway)` with a gateway built for a command (no HTTP server)."""
    configure_logging(settings.log_json)

    async def run() -> T:
        log = get_logger(role=role)
        clock = clock_of()
        if isinstance(clock, OffsetFileClock):   # a testing aid (gateway/clock.py): say so, loudly
            log.warning("clock.shifted", variable=OFFSET_FILE_VARIABLE, file=str(clock.path), now=clock.now().isoformat())
        gateway = Gateway.build(settings, log, clock)
        try:
            return await work(gateway)
        finally:
            await gateway.aclose()

    return asyncio.run(run())


def read_password(args: argparse.Namespace, prompt_for: str, environment: str | None = None) -> str:
    """The next line of standard input with --password-stdin; else $`environment` when the command
    reads one; else asked for on the terminal. With no terminal to ask on, one line that says so."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if environment and os.environ.get(environment):
        return os.environ[environment]
    if not sys.stdin.isatty():
        also = f", or set {environment}" if environment else ""
        raise Usage(f"the password for {prompt_for} is asked for on a terminal, and there is none: give "
                    f"--password-stdin and pipe it in{also}")
    try:
        return getpass.getpass(f"password for {prompt_for}: ")
    except EOFError:
        raise Usage(f"no password for {prompt_for} was given") from None


def as_operator(args: argparse.Namespace, action: str, work: Callable[[Connection, Operator, datetime], T],
                backend: Backend | None = None) -> T:
    """work(conn, operator, now) in one transaction, as the operator `--by` names, once they have signed
    in with their password (`--password-stdin`, or asked for) by the console's rules — the same tries
    and lockout, audited — and only if they hold the role the console needs for `action`. On `backend`
    when the command has one (its books built before the password is asked for)."""
    password = read_password(args, args.by)
    settings = settings_of(args)
    with (nullcontext(backend) if backend else Backend(settings)) as backend:
        try:
            op = authenticate(backend.db, args.by, password, backend.clock.now(), "cli", None,
                              SignInLimit.of(settings))
            needs = NEEDS[action]
            if RANK[op.role] < RANK[needs]:
                raise Refused(f"not_allowed: {op.name} is a {op.role}; this needs an {needs}")
            return backend.db.run_tx(lambda conn: work(conn, op, backend.clock.now()))
        except SignInRefused as exc:
            raise Refused(f"{exc.code}: {exc}") from None
        except (PaymuxError, LedgerError) as exc:
            raise Refused(f"{exc.code}: {exc.message}") from None
