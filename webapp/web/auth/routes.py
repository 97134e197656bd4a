"""Signing in and out."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from webapp.accounts import password_links, sessions, sign_in
from webapp.extensions import db
from webapp.models import User, utcnow
from webapp.refusals import Refused
from webapp.web import refusals
from webapp.web.auth.forms import LoginForm, SetPasswordForm
from webapp.web.auth.login import SESSION_TOKEN, current_token, lifetime

bp = Blueprint("auth", __name__, template_folder="templates")


def _limits() -> sign_in.Limits:
    cfg = current_app.config
    return sign_in.Limits(
        per_account=cfg["LOGIN_MAX_FAILURES_PER_ACCOUNT"],
        per_address=cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"],
        window=timedelta(seconds=cfg["LOGIN_FAILURE_WINDOW_SECONDS"]),
    )


def _safe_next(target: str | None) -> str:
    """Only a path on this site; anything else (another host, a scheme, //host) goes home."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return url_for("home")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in target):
        # Control characters (a CR LF, say) have no place in a path, nor in a Location header.
        return url_for("home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return url_for("home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    page = partial(render_template, "auth/login.html", form=form)
    if request.method != "POST":
        return page()
    user = refusals.submit(form, lambda: _attempt(form), page, status=_refused_status)
    _sign_in(user, utcnow())
    return redirect(_safe_next(request.args.get("next")))


def _attempt(form: LoginForm) -> User:
    address = request.remote_addr or "unknown"
    return sign_in.attempt(
        db.session, form.email.data or "", form.password.data or "", address, _limits(), utcnow()
    )


def _refused_status(refusal: Refused) -> int:
    """Too many attempts: 429. A wrong password is an answer like any other page."""
    return 429 if isinstance(refusal, sign_in.TooManyAttempts) else 200


@bp.post("/logout")
def logout() -> Response:
    sessions.end(db.session, current_token())
    db.session.commit()
    _new_session()
    logout_user()  # after the clear: it marks a remember-me cookie, if any, for deletion
    flash("You are signed out.", "info")
    response = redirect(url_for("auth.login"))
    # What the browser keeps for this site (htmx's history of pages seen) goes with the session.
    response.headers["Clear-Site-Data"] = '"storage"'
    return response


def _sign_in(user: User, now: datetime) -> None:
    """A new server-side session for the user, committed, and a fresh cookie for it."""
    token = sessions.start(db.session, user, lifetime(current_app.config), now)
    sessions.purge(db.session, now)
    db.session.commit()
    _new_session()
    session[SESSION_TOKEN] = token
    login_user(user)


def _new_session() -> None:
    """Nothing from before sign-in or sign-out carries over: no planted values, a new CSRF token."""
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)  # Flask-WTF's cache of it


@bp.route(password_links.PATH + "<token>", methods=["GET", "POST"])
def set_password(token: str) -> Response | tuple[str, int]:
    """The one-time link of an invitation (or a new link): choose a password, and be signed in with it."""
    link = password_links.find(db.session, token)
    if link is None:
        return render_template("auth/set_password.html", form=None, user=None), 404
    form = SetPasswordForm()
    page = partial(render_template, "auth/set_password.html", form=form, user=link.user)
    if request.method != "POST":
        return page(), 200
    user = refusals.submit(form, lambda: _redeem(token, form), page)
    flash(f"Your password is set, {user.name}. Welcome to Relay.", "success")
    return redirect(url_for("home"), 303)


def _redeem(token: str, form: SetPasswordForm) -> User:
    """The password set and the user signed in here. Every session of theirs ends, and whoever was
    signed in in this browser (an admin trying the link) is signed out first."""
    user = password_links.redeem(db.session, token, form.password.data or "", form.repeated.data or "")
    sessions.end(db.session, current_token())
    _sign_in(user, utcnow())
    return user
