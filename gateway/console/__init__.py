"""The operator console, served by the gateway under /console: server-rendered pages (Jinja2, every
value escaped), no build step, no script or asset from outside the package.

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

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware

from gateway.console import views
from gateway.console.identity import SESSION

if TYPE_CHECKING:
    from gateway.service import Gateway


def console_app(gateway: Gateway) -> Starlette:
    secure = gateway.settings.public_url.startswith("https://")
    app = Starlette(routes=views.routes(), middleware=[Middleware(
        SessionMiddleware, secret_key=gateway.box.subkey(b"paymux console session v1").hex(),
        session_cookie="paymux_console", max_age=int(SESSION.total_seconds()), path="/console", same_site="strict",
        https_only=secure)])
    app.state.gateway = gateway
    return app
