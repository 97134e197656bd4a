"""Flask-Login wired to Relay's server-side sessions: who the request's user is, and what an unsigned-in
request gets (the sign-in page, or for a fragment a redirect of the whole window)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, Response, current_app, redirect, request, session, url_for
from flask_login import LoginManager

from webapp import ids
from webapp.accounts import sessions
from webapp.extensions import db
from webapp.web.pages import wants_fragment

# The key of the server-side session's token in the signed cookie (webapp.accounts.sessions).
SESSION_TOKEN = "sid"


def lifetime(config: Mapping[str, Any]) -> sessions.Lifetime:
    """SESSION_LIFETIME_SECONDS (absolute) and SESSION_IDLE_SECONDS (0: none) as a Lifetime."""
    idle = config["SESSION_IDLE_SECONDS"]
    return sessions.Lifetime(
        absolute=timedelta(seconds=config["SESSION_LIFETIME_SECONDS"]),
        idle=timedelta(seconds=idle) if idle else None,
    )


def current_token() -> str | None:
    """The token of this request's server-side session, e.g. to keep it in sessions.end_sessions."""
    token = session.get(SESSION_TOKEN)
    return token if isinstance(token, str) else None


def init_login(app: Flask, manager: LoginManager) -> None:
    from webapp.models import User

    # The signed cookie's own expiry, behind the server-side one.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=app.config["SESSION_LIFETIME_SECONDS"])
    manager.login_view = "auth.login"
    manager.login_message = "Sign in to continue."
    manager.login_message_category = "info"

    @manager.user_loader
    def load_user(user_id: str) -> User | None:
        # Also the only way in for Flask-Login's remember-me cookie, which we never set: without this
        # request's live server-side session it loads no one.
        user_id_number = ids.parse(user_id)
        if user_id_number is None:
            return None
        record = sessions.live(db.session, current_token(), user_id_number, lifetime(current_app.config))
        if record is None or not record.user.is_active:
            return None
        sessions.touch(db.engine, record)
        return record.user

    @manager.unauthorized_handler
    def unauthorized() -> Response:
        target = url_for("auth.login", next=_current_path())
        if wants_fragment() or request.headers.get("HX-Request"):
            # A fragment must not become a login form inside the page: send the whole window there.
            response = Response(status=401)
            response.headers["HX-Redirect"] = target
            return response
        return redirect(target)


def _current_path() -> str:
    return request.full_path.rstrip("?") if request.query_string else request.path
