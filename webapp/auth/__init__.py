"""Signing in and out."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, request, url_for
from flask_login import LoginManager

from webapp import ids
from webapp.extensions import db
from webapp.pages import wants_fragment

bp = Blueprint("auth", __name__)


def init_login(manager: LoginManager) -> None:
    from webapp.models import User

    manager.login_view = "auth.login"
    manager.login_message = "Sign in to continue."
    manager.login_message_category = "info"

    @manager.user_loader
    def load_user(user_id: str) -> User | None:
        number = ids.parse(user_id)
        return db.session.get(User, number) if number is not None else None

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


from webapp.auth import routes  # noqa: E402,F401  (routes attach themselves to bp)
