"""The operator console, served by the gateway under /console: server-rendered pages (Jinja2, every
value escaped), in English or Simplified Chinese (console/i18n.py), no build step, no script or asset
from outside the package (ECharts is shipped in console/static/).

Security, enforced here on the server:
- Sign-in with a name and password (scrypt), at most 5 tries for a name in 15 minutes, counted in
  the database before a password is checked (console/identity.py; the CLI signs in the same way).
- The session lives in the database (`console_sessions`); the browser's cookie, signed with
  itsdangerous (a key derived from the gateway's secret key), carries only a random token for it.
  Every request reads the session and its operator again: signing out ends the session; disabling
  an operator or setting their password ends all of theirs; a role change takes effect at once.
- Every page without a session redirects to sign-in. Every POST carries the session's CSRF token
  (compared in constant time) or is refused with 403, sign-in included.
- Roles: viewer reads; operator also acts (redelivers events, proposes resolutions); approver also
  approves a proposal — the exact one they saw, never one of their own (compared by operator id).
- Every action is a row in the audit log: who, what, when, before and after (console/actions.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import FileResponse
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from gateway.console import views
from gateway.console.identity import SESSION

if TYPE_CHECKING:
    from gateway.service import Gateway

# ECharts (pinned, with its licence), the script that draws the charts, the icon: served as files.
STATIC = Path(__file__).parent / "static"


def console_app(gateway: Gateway) -> Starlette:
    secure = gateway.settings.public_url.startswith("https://")
    static = Mount("/static", app=StaticFiles(directory=STATIC), name="static")
    app = Starlette(routes=[*views.routes(), static], middleware=[Middleware(
        SessionMiddleware, secret_key=gateway.box.subkey(b"paymux console session v1").hex(),
        session_cookie="paymux_console", max_age=int(SESSION.total_seconds()), path="/console", same_site="strict",
        https_only=secure)])
    app.state.gateway = gateway
    return app


async def console_favicon(request: object) -> FileResponse:
    """/favicon.ico: the console's icon (an SVG; browsers take it whatever the name says)."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})
