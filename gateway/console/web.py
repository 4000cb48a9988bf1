"""What every console page is built with: the templates (every value escaped and printable), the
session's CSRF token, the page guard (a signed-in operator of at least a role, the checked form of a
POST), the audit of an action, and the gateway serving the request."""
from __future__ import annotations

import functools
import hmac
import json
import secrets
from pathlib import Path
from datetime import date
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import Connection, Row
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.console.i18n import HTML_LANG, LOCALES, choose, money, translations
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


def _environment(locale: str) -> Environment:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True), finalize=printable,
                      extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(translations(locale), newstyle=True)   # type: ignore[attr-defined]
    env.filters.update(money=money, when=when, pretty=pretty, idlink=idlink)
    return env


def when(value: date | str | None) -> str:
    """A time to the second, UTC, whether it came as a datetime or an ISO string."""
    if value is None or value == "":
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text.replace("T", " ").split(".")[0].replace("+00:00", "").rstrip("Z") + " UTC"


def pretty(value: Any) -> str:
    """A JSON value as indented text for a <pre> (no `null` box: nothing is an empty string)."""
    if value is None or value == {} or value == []:
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)        # a JSON body kept as text: indented like the rest
        except ValueError:
            return value
        if not isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True, default=str)


ID_PAGES = {"pay": "/console/payments/{}", "rr": "/console/recon/runs/{}", "run": "/console/recon/runs/{}",
            "evt": "/console/events#{}", "re": "/console/refunds#{}", "po": "/console/refunds#{}",
            "mch": "/console/merchants#{}"}


def idlink(value: Any) -> Markup:
    """An id as a link to the page that shows it (payments, runs, events, refunds, payouts, merchants);
    anything else as plain text."""
    text = "" if value is None else str(printable(value))
    prefix, sep, rest = text.partition("_")
    page = ID_PAGES.get(prefix) if sep and rest and rest.replace("_", "").isalnum() else None
    if page is None:
        return Markup("{}").format(text)
    return Markup('<a class="id" href="{}">{}</a>').format(page.format(quote(text)), text)


TEMPLATES = {locale: _environment(locale) for locale in LOCALES}


def locale_of(request: Request) -> str:
    """The operator's language, else the browser's (sign-in page, or an operator who chose none)."""
    op = request.scope.get("operator")
    return choose(getattr(op, "locale", None) if op is not None else None, request.headers.get("accept-language"))


def tr(request: Request, message: str, **values: Any) -> str:
    """A message of a handler in the request's language, with its %(name)s values filled in."""
    text = translations(locale_of(request)).gettext(message)
    return text % values if values else text


def render(request: Request, template: str, status_code: int = 200, /, **context: Any) -> HTMLResponse:
    operator = request.scope.get("operator")
    locale = locale_of(request)
    html = TEMPLATES[locale].get_template(template).render(
        request=request, operator=operator, csrf=request.session.get("csrf", ""), path=request.url.path,
        locale=locale, locales=LOCALES, html_lang=HTML_LANG[locale], **context)
    return HTMLResponse(html, status_code, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                               "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                                                          "style-src 'self' 'unsafe-inline'; "
                                                                          "form-action 'self'; frame-ancestors 'none'"})


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
    return render(request, "message.html", 403, title=tr(request, "Not allowed"), message=message)


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
                    return forbidden(request, tr(request, "The form was not sent from this session (CSRF token "
                                                          "missing or wrong). Reload the page and try again."))
                if RANK[op.role] < RANK[role]:
                    return forbidden(request, tr(request, "A %(role)s cannot do this; it needs an %(needed)s.",
                                                 role=op.role, needed=role))
                return await handler(request, op, form)
            if RANK[op.role] < RANK[role]:
                return forbidden(request, tr(request, "A %(role)s cannot see this page.", role=op.role))
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


