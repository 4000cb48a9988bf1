"""Who an operator is, for the console and the CLI alike: operators and their passwords, sign-in
(its tries counted in the database before a password is checked), server-side console sessions,
and the audit log every operator action is written to.

- A try at a name first takes a slot in `sign_in_guards`, in ONE statement (an insert, or an update
  whose condition is checked on the locked row): at most `tries` passwords are ever checked for a
  name in a `window` (SignInLimit, from the settings), however many tries arrive at once and
  whichever process takes them.
  A failure keeps its slot; a success gives it back.
- A console session is a row in `console_sessions`; the browser's cookie carries a random token of
  which only the SHA-256 is kept. Each request reads the row, so signing out ends that session, and
  disabling an operator or setting their password ends all of theirs, at once, in every process.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, case, delete, insert, or_, select, update

from gateway.console.passwords import DUMMY_HASH, hash_password, verify_password
from gateway.models import AuditEntry, ConsoleSession, Operator, SignInGuard

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.db import Database

operators = Operator.__table__
audit_log = AuditEntry.__table__
sessions = ConsoleSession.__table__
guards = SignInGuard.__table__

ROLES = ("viewer", "operator", "approver")
RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class SignInLimit:
    """How many passwords may be tried at one name in a window (settings: sign_in_max_tries,
    sign_in_window_seconds)."""

    tries: int = 5
    window: timedelta = timedelta(minutes=15)

    @classmethod
    def of(cls, settings: Settings) -> SignInLimit:
        return cls(settings.sign_in_max_tries, timedelta(seconds=settings.sign_in_window_seconds))
SESSION = timedelta(hours=8)
LAST_SEEN_EVERY = timedelta(minutes=1)      # how often a session's last_seen_at is written


class OperatorError(ValueError):
    pass


class SignInRefused(Exception):
    """code: locked_out (no password was checked) or wrong_password (name unknown, disabled, or the
    password wrong: one answer, so a name's existence is not told)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Someone:
    """An audit row's subject that is not (or not known to be) an operator: a failed sign-in."""

    name: str
    role: str = "-"
    id: str | None = None


# ---- operators ----

def create_operator(conn: Connection, name: str, role: str, password: str, now: datetime) -> str:
    """A new console operator; the password is kept only as its scrypt hash."""
    from gateway.ids import public_id

    if role not in ROLES:
        raise OperatorError(f"role must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100:
        raise OperatorError("a name of 1 to 100 characters is required")
    if conn.execute(select(operators.c.id).where(operators.c.name == name)).first():
        raise OperatorError(f"an operator named {name!r} exists")
    operator_id = public_id("op")
    conn.execute(insert(operators).values(id=operator_id, name=name, role=role, password_hash=_hashed(password),
                                          disabled=False, created_at=now))
    return operator_id


def _hashed(password: str) -> str:
    try:
        return hash_password(password)
    except ValueError as exc:
        raise OperatorError(str(exc)) from None


def set_disabled(conn: Connection, name: str, disabled: bool, now: datetime) -> bool:
    """Disable (every session of theirs ends) or enable an operator; False if there is none of that name."""
    row = conn.execute(select(operators.c.id).where(operators.c.name == name)).first()
    if row is None:
        return False
    conn.execute(update(operators).where(operators.c.id == row.id).values(disabled=disabled))
    if disabled:
        end_sessions_of(conn, row.id, now)
    return True


def set_password(conn: Connection, name: str, password: str, now: datetime) -> bool:
    """A new password for an operator; every session of theirs ends. False if there is none of that name."""
    row = conn.execute(select(operators.c.id).where(operators.c.name == name)).first()
    if row is None:
        return False
    conn.execute(update(operators).where(operators.c.id == row.id).values(password_hash=_hashed(password)))
    end_sessions_of(conn, row.id, now)
    return True


# ---- signing in: the console and the CLI ----

def reserve_try(conn: Connection, name: str, now: datetime, limit: SignInLimit = SignInLimit()) -> datetime | None:
    """Take a slot for one password try at `name`: the start of its window, or None when limit.tries
    are taken in the window (locked out). One statement, atomic on SQLite and PostgreSQL: the
    insert, or the update whose condition is evaluated on the conflicting row once it is locked."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    expired = guards.c.window_started_at < now - limit.window
    statement = upsert(guards).values(name=name, window_started_at=now, tries=1).on_conflict_do_update(
        index_elements=[guards.c.name],
        set_={"tries": case((expired, 1), else_=guards.c.tries + 1),
              "window_started_at": case((expired, now), else_=guards.c.window_started_at)},
        where=or_(guards.c.tries < limit.tries, expired)).returning(guards.c.window_started_at)
    row = conn.execute(statement).first()
    return None if row is None else row.window_started_at


def release_try(conn: Connection, name: str, window: datetime) -> None:
    """A try that succeeded gives its slot back (in the window it was taken in)."""
    conn.execute(update(guards).where(guards.c.name == name, guards.c.window_started_at == window,
                                      guards.c.tries > 0).values(tries=guards.c.tries - 1))


def authenticate(db: Database, name: str, password: str, now: datetime, source: str, client_ip: str | None,
                 limit: SignInLimit = SignInLimit()) -> Row:
    """The operator row for `name` if `password` is theirs and they are enabled, else SignInRefused.
    Blocking (scrypt, 32 MiB): the console calls it in a thread. Both outcomes are audited as
    `{source}.sign_in` / `{source}.sign_in_failed`."""
    name = name.strip()[:100]
    window = db.run_tx(lambda conn: reserve_try(conn, name, now, limit))
    if window is None:
        raise SignInRefused("locked_out", f"too many failed sign-ins for this name: wait up to "
                                          f"{int(limit.window.total_seconds() // 60)} minutes")
    op = db.run_tx(lambda conn: conn.execute(select(operators).where(operators.c.name == name)).first())
    # The KDF runs whether or not the name exists, so a wrong name costs as long as a wrong password.
    ok = verify_password(password, op.password_hash if op else DUMMY_HASH)
    if op is None or op.disabled or not ok:
        db.run_tx(lambda conn: record(conn, Someone(name), f"{source}.sign_in_failed", source, now=now,
                                      source=source, client_ip=client_ip))
        raise SignInRefused("wrong_password", "wrong name or password")

    def succeeded(conn: Connection) -> None:
        release_try(conn, name, window)
        # Windows that have passed are of no use; one statement keeps the table small.
        conn.execute(delete(guards).where(guards.c.window_started_at < now - limit.window, guards.c.name != name))
        conn.execute(update(operators).where(operators.c.id == op.id).values(last_sign_in_at=now))
        record(conn, op, f"{source}.sign_in", source, now=now, source=source, client_ip=client_ip)

    db.run_tx(succeeded)
    return op


# ---- console sessions ----

def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def purge(conn: Connection, now: datetime, limit: SignInLimit) -> None:
    """Forget sign-in windows that have passed and sessions that have ended (tries at names nobody
    signs in as would otherwise stay for good)."""
    conn.execute(delete(guards).where(guards.c.window_started_at < now - limit.window))
    conn.execute(delete(sessions).where(sessions.c.expires_at < now))


def start_session(conn: Connection, operator_id: str, now: datetime, client_ip: str | None) -> str:
    """A new session for a signed-in operator: the token for the browser's cookie (kept here only hashed)."""
    token = secrets.token_urlsafe(32)
    conn.execute(insert(sessions).values(token_hash=_digest(token), operator_id=operator_id, created_at=now,
                                         expires_at=now + SESSION, last_seen_at=now, client_ip=client_ip))
    conn.execute(delete(sessions).where(sessions.c.expires_at < now))
    return token


def session_operator(conn: Connection, token: str, now: datetime) -> Row | None:
    """The enabled operator whose live session this token is, or None."""
    digest = _digest(token)
    op = conn.execute(
        select(operators.c.id, operators.c.name, operators.c.role, operators.c.disabled, operators.c.locale)
        .join(sessions, sessions.c.operator_id == operators.c.id)
        .where(sessions.c.token_hash == digest, sessions.c.revoked_at.is_(None), sessions.c.expires_at > now,
               operators.c.disabled.is_(False))).first()
    if op is not None:
        conn.execute(update(sessions).where(sessions.c.token_hash == digest,
                                            sessions.c.last_seen_at < now - LAST_SEEN_EVERY).values(last_seen_at=now))
    return op


def end_session(conn: Connection, token: str, now: datetime) -> None:
    conn.execute(update(sessions).where(sessions.c.token_hash == _digest(token), sessions.c.revoked_at.is_(None))
                 .values(revoked_at=now))


def end_sessions_of(conn: Connection, operator_id: str, now: datetime) -> int:
    return conn.execute(update(sessions).where(sessions.c.operator_id == operator_id, sessions.c.revoked_at.is_(None))
                        .values(revoked_at=now)).rowcount


# ---- the audit log ----

def record(conn: Connection, who: Row | Someone, action: str, target: str, before: Any = None, after: Any = None, *,
           now: datetime, source: str, client_ip: str | None = None) -> None:
    """One operator action in the audit log, in the same transaction as the action itself. `who` is
    an operator row (or a Someone): name and role as they were, and the operator's id."""
    conn.execute(insert(audit_log).values(
        at=now, operator=who.name[:100], operator_id=who.id, role=who.role, action=action, target=target[:120],
        before=before, after=after, client_ip=client_ip, source=source))
