"""The operator console, served by the gateway under /console: server-rendered pages (Jinja2, every
value escaped), no build step, no script or asset from outside the package.

Security, enforced here on the server:
- Sign-in with a name and password (scrypt); the session is a signed cookie (itsdangerous, a key
  derived from the gateway's secret key) that holds the operator's id, read again from the
  database on every request, so disabling an operator or changing a role takes effect at once.
- Every page without a session redirects to sign-in. Every POST carries the session's CSRF token
  (compared in constant time) or is refused with 403, sign-in included.
- Roles: viewer reads; operator also acts (redelivers events, proposes resolutions); approver also
  approves a proposal — never one of their own (the maker-checker of `paymux recon`).
- Every action is a row in the audit log: who, what, when, before and after.
"""
from __future__ import annotations

import functools
import hmac
import secrets
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection, insert, select, update
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.models import AuditEntry, Operator

operators = Operator.__table__
audit_log = AuditEntry.__table__
ROLES = ("viewer", "operator", "approver")
RANK = {role: rank for rank, role in enumerate(ROLES)}
SESSION_SECONDS = 8 * 3600
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True))


def money(amount: int | None, currency: str = "CNY") -> str:
    """Minor units as people read them: 500000 CNY fen -> 5,000.00."""
    from decimal import Decimal

    from babel.numbers import get_currency_precision

    if amount is None:
        return "-"
    digits = get_currency_precision(currency or "CNY")
    return f"{Decimal(int(amount)).scaleb(-digits):,.{digits}f}"


def when(value: Any) -> str:
    """A time to the second, UTC, whether it came as a datetime or an ISO string."""
    if value is None or value == "":
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text.replace("T", " ").split(".")[0].replace("+00:00", "").rstrip("Z") + " UTC"


TEMPLATES.filters.update(money=money, when=when)


def render(request: Request, template: str, status_code: int = 200, /, **context: Any) -> HTMLResponse:
    operator = request.scope.get("operator")
    html = TEMPLATES.get_template(template).render(
        request=request, operator=operator, csrf=request.session.get("csrf", ""), nav=NAV, path=request.url.path,
        **context)
    return HTMLResponse(html, status_code, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                               "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                                                          "style-src 'self' 'unsafe-inline'; "
                                                                          "form-action 'self'; frame-ancestors 'none'"})


NAV = (("/console/", "Overview"), ("/console/payments", "Payments"), ("/console/refunds", "Refunds"),
       ("/console/exceptions", "Exceptions"), ("/console/recon", "Reconciliation"),
       ("/console/merchants", "Merchants"), ("/console/channels", "Channels"), ("/console/events", "Events"),
       ("/console/audit", "Audit log"))


def gateway_of(request: Request) -> Any:
    return request.app.state.gateway


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def checked_form(request: Request) -> Any | None:
    """The POSTed form if it carries this session's CSRF token; None otherwise."""
    form = await request.form()
    sent, expected = str(form.get("csrf", "")), request.session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent, expected):
        return None
    return form


def forbidden(request: Request, message: str) -> HTMLResponse:
    return render(request, "message.html", 403, title="Not allowed", message=message)


Handler = Callable[..., Awaitable[Response]]


def page(role: str = "viewer") -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A console route for operators of at least `role`. A POST must carry the CSRF token; its
    handler gets the checked form."""
    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            gw = gateway_of(request)
            operator_id = request.session.get("operator")
            op = await gw.db.tx(lambda conn: conn.execute(select(operators).where(
                operators.c.id == operator_id)).first()) if operator_id else None
            if op is None or op.disabled:
                request.session.pop("operator", None)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/console/login?next={quote(target)}", 303)
            request.scope["operator"] = op
            csrf_token(request)
            if request.method == "POST":
                form = await checked_form(request)
                if form is None:
                    return forbidden(request, "The form was not sent from this session (CSRF token missing or "
                                              "wrong). Reload the page and try again.")
                if RANK[op.role] < RANK[role]:
                    return forbidden(request, f"A {op.role} cannot do this; it needs an {role}.")
                return await handler(request, op, form)
            if RANK[op.role] < RANK[role]:
                return forbidden(request, f"A {op.role} cannot see this page.")
            return await handler(request, op)
        return endpoint
    return wrap


def audit(conn: Connection, op: Any, request: Request, action: str, target: str, before: Any = None,
          after: Any = None) -> None:
    """Record one console action in the same transaction as the action itself."""
    conn.execute(insert(audit_log).values(
        at=gateway_of(request).clock.now(), operator=op.name, role=op.role, action=action, target=target[:120],
        before=before, after=after, client_ip=request.client.host if request.client else None))


def console_app(gateway: Any) -> Starlette:
    from gateway.console import views

    secure = gateway.settings.public_url.startswith("https://")
    app = Starlette(routes=views.routes(), middleware=[Middleware(
        SessionMiddleware, secret_key=gateway.box.subkey(b"paymux console session v1").hex(),
        session_cookie="paymux_console", max_age=SESSION_SECONDS, path="/console", same_site="strict",
        https_only=secure)])
    app.state.gateway = gateway
    return app


def mark_signed_in(conn: Connection, operator_id: str, now: Any) -> None:
    conn.execute(update(operators).where(operators.c.id == operator_id).values(last_sign_in_at=now))


class OperatorError(ValueError):
    pass


def create_operator(conn: Connection, name: str, role: str, password: str, now: Any) -> str:
    """A new console operator; the password is kept only as its scrypt hash."""
    from gateway.console.passwords import hash_password
    from gateway.ids import public_id

    if role not in ROLES:
        raise OperatorError(f"role must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100:
        raise OperatorError("a name of 1 to 100 characters is required")
    if conn.execute(select(operators.c.id).where(operators.c.name == name)).first():
        raise OperatorError(f"an operator named {name!r} exists")
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        raise OperatorError(str(exc)) from None
    operator_id = public_id("op")
    conn.execute(insert(operators).values(id=operator_id, name=name, role=role, password_hash=hashed, disabled=False,
                                          created_at=now))
    return operator_id


def set_disabled(conn: Connection, name: str, disabled: bool) -> bool:
    return bool(conn.execute(update(operators).where(operators.c.name == name).values(disabled=disabled)).rowcount)
