"""What every console page is built with: the templates (every value escaped and printable), the
session's CSRF token, the page guard (a signed-in operator of at least a role, the checked form of a
POST), the audit of an action, and the gateway serving the request."""
from __future__ import annotations

import functools
import hmac
import secrets
from pathlib import Path
from datetime import date
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection, Row
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.console.identity import RANK, record, session_operator

if TYPE_CHECKING:
    from gateway.service import Gateway


def printable(value: Any) -> Any:
    """Every value a page prints. A stored string no page can encode (a lone surrogate, kept in a JSON
    column) is shown escaped, \\ud800, so the record stays readable instead of its page failing."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return type(value)(value.encode("utf-8", "backslashreplace").decode("utf-8"))   # Markup stays Markup
    return value


TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True), finalize=printable)


def money(amount: int | None, currency: str = "CNY") -> str:
    """Minor units as people read them: 500000 CNY fen -> 5,000.00."""
    from decimal import Decimal

    from babel.numbers import get_currency_precision

    if amount is None:
        return "-"
    digits = get_currency_precision(currency or "CNY")
    return f"{Decimal(int(amount)).scaleb(-digits):,.{digits}f}"


def when(value: date | str | None) -> str:
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


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def checked_form(request: Request) -> FormData | None:
    """The POSTed form if it carries this session's CSRF token; None otherwise."""
    form = await request.form()
    sent, expected = str(form.get("csrf", "")), request.session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), expected.encode()):
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
            token = request.session.get("token")
            op = await gw.db.tx(lambda conn: session_operator(conn, token, gw.clock.now())) if token else None
            if op is None:
                request.session.pop("token", None)
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


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def audit(conn: Connection, op: Row, request: Request, action: str, target: str, before: Any = None,
          after: Any = None) -> None:
    """Record one console action in the same transaction as the action itself."""
    record(conn, op, action, target, before, after, now=gateway_of(request).clock.now(), source="console",
           client_ip=client_ip(request))


