"""Server-side sessions, over real HTTP: sign-out ends every copy of the cookie, sessions expire (absolute
and idle), a sign-in or sign-out starts a clean session, and a remember-me cookie lets no one in.

The app is served by werkzeug on 127.0.0.1 so that each request has its own application context, as in
production (the test client shares the test's context, where Flask-Login would keep the user loaded).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask_login.utils import encode_cookie
from werkzeug.serving import make_server

from tests import factories as f
from webapp.accounts import permissions, sessions
from webapp.extensions import db
from webapp.models import User, UserSession, utcnow

CSRF_RE = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


@pytest.fixture
def riley(app) -> User:
    u = f.user(f.org("Acme"), email="riley@acme.test")
    db.session.commit()
    return u


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll interval: shutting down waits for it, once per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


class Visitor:
    """A browser of its own: cookies, and the CSRF token of the last page."""

    def __init__(self, app: Flask, served: str) -> None:
        self.app = app
        self.base = served
        self.http = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=10)

    def token(self, path: str = "/login") -> str:
        match = CSRF_RE.search(self.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, email: str = "riley@acme.test", password: str = "password") -> requests.Response:
        data = {"email": email, "password": password, "csrf_token": self.token()}
        return self.http.post(self.base + "/login", data=data, allow_redirects=False, timeout=10)

    def logout(self) -> requests.Response:
        data = {"csrf_token": self.token("/jobs")}
        return self.http.post(self.base + "/logout", data=data, allow_redirects=False, timeout=10)

    @property
    def cookie(self) -> str:
        return self.http.cookies["session"]

    def session_data(self) -> dict:
        """What the signed cookie holds (we have the key: this is the test's own app)."""
        serializer = self.app.session_interface.get_signing_serializer(self.app)
        return serializer.loads(self.cookie)

    def signed_in(self) -> bool:
        response = self.get("/jobs")
        assert response.status_code in (200, 302), response.status_code
        return response.status_code == 200


@pytest.fixture
def visitor(app, served) -> Visitor:
    return Visitor(app, served)


def with_cookies(app: Flask, served: str, **cookies: str) -> Visitor:
    other = Visitor(app, served)
    for name, value in cookies.items():
        other.http.cookies.set(name, value)
    return other


def the_session(visitor: Visitor) -> UserSession:
    db.session.expire_all()
    return db.session.get(UserSession, hashlib.sha256(visitor.session_data()["sid"].encode()).hexdigest())


def test_sign_out_ends_every_copy_of_the_cookie(app, served, visitor, riley) -> None:
    assert visitor.login().status_code == 302
    copied = visitor.cookie
    assert with_cookies(app, served, session=copied).signed_in()

    response = visitor.logout()
    assert response.status_code == 302 and response.headers["Clear-Site-Data"] == '"storage"'
    assert not visitor.signed_in()
    assert not with_cookies(app, served, session=copied).signed_in()
    db.session.expire_all()
    ended = db.session.scalars(sa.select(UserSession)).one()
    assert ended.revoked_at is not None


def test_the_table_alone_lets_no_one_in(app, visitor, riley) -> None:
    visitor.login()
    token = visitor.session_data()["sid"]
    db.session.expire_all()
    stored = db.session.scalars(sa.select(UserSession.id)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()] and token not in stored


def test_sign_in_and_sign_out_start_a_clean_session(app, visitor, riley) -> None:
    visitor.token()  # the login page makes the anonymous session's CSRF token
    before = visitor.session_data()["csrf_token"]
    visitor.login()
    after_login = visitor.session_data()
    assert set(after_login) == {"sid", "_user_id", "_fresh", "_id"}  # nothing carried over
    visitor.token("/jobs")
    during = visitor.session_data()["csrf_token"]
    visitor.logout()
    visitor.token()
    after_logout = visitor.session_data()["csrf_token"]
    assert len({before, during, after_logout}) == 3


def test_a_session_ends_at_its_absolute_lifetime(app, visitor, riley) -> None:
    visitor.login()
    record = the_session(visitor)
    assert record.expires_at - record.created_at == timedelta(hours=12)  # SESSION_LIFETIME_SECONDS
    assert app.permanent_session_lifetime == timedelta(hours=12)  # the cookie's own signature, too
    record.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert not visitor.signed_in()


def test_an_idle_session_ends_and_a_busy_one_is_noted_once_a_minute(app, visitor, riley) -> None:
    visitor.login()
    record = the_session(visitor)

    # Seen 30 s ago: in use, and not written again (at most one write a minute).
    seen = utcnow() - timedelta(seconds=30)
    record.last_seen_at = seen
    db.session.commit()
    assert visitor.signed_in() and visitor.signed_in()
    assert the_session(visitor).last_seen_at == seen

    # Seen 29 minutes ago: still in use, and now noted.
    record = the_session(visitor)
    record.last_seen_at = utcnow() - timedelta(minutes=29)
    db.session.commit()
    assert visitor.signed_in()
    assert utcnow() - the_session(visitor).last_seen_at < timedelta(seconds=10)

    # Idle for 30 minutes (SESSION_IDLE_SECONDS): over.
    record = the_session(visitor)
    record.last_seen_at = utcnow() - timedelta(minutes=30, seconds=1)
    db.session.commit()
    assert not visitor.signed_in()


class TestWithoutIdleLimit:
    @pytest.fixture
    def app_config(self) -> dict[str, object]:
        return {"SESSION_IDLE_SECONDS": 0, "SESSION_LIFETIME_SECONDS": 3600}

    def test_only_the_absolute_lifetime_counts(self, app, visitor, riley) -> None:
        visitor.login()
        record = the_session(visitor)
        assert record.expires_at - record.created_at == timedelta(hours=1)
        record.last_seen_at = utcnow() - timedelta(minutes=59)
        db.session.commit()
        assert visitor.signed_in()


def test_end_sessions_ends_the_others_but_keeps_the_current_one(app, served, visitor, riley) -> None:
    laptop, phone = visitor, Visitor(app, served)
    laptop.login()
    phone.login()
    assert laptop.signed_in() and phone.signed_in()
    # As a password change will: keep the session that made it.
    assert sessions.end_sessions(db.session, riley, except_current=laptop.session_data()["sid"]) == 1
    db.session.commit()
    assert laptop.signed_in() and not phone.signed_in()
    # As deactivation will: all of them.
    assert sessions.end_sessions(db.session, riley) == 1
    db.session.commit()
    assert not laptop.signed_in()


def test_a_deactivated_user_is_signed_out_at_once(app, visitor, riley) -> None:
    visitor.login()
    riley.active = False
    db.session.commit()
    assert not visitor.signed_in()


def test_a_remember_me_cookie_lets_no_one_in(app, served, visitor, riley) -> None:
    with app.test_request_context():
        remember = encode_cookie(str(riley.id))  # as Flask-Login would make it, signed with our key
    # On its own…
    assert not with_cookies(app, served, remember_token=remember).signed_in()
    # …or next to a session cookie that was signed out.
    visitor.login()
    copied = visitor.cookie
    visitor.logout()
    assert not with_cookies(app, served, session=copied, remember_token=remember).signed_in()


def test_expired_sessions_are_forgotten_at_the_next_sign_in(app, served, visitor, riley) -> None:
    visitor.login()
    old = the_session(visitor)
    old.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    old_id = old.id
    Visitor(app, served).login()
    db.session.expire_all()
    assert db.session.get(UserSession, old_id) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserSession)) == 1


def test_the_session_brings_its_user_with_organisation_and_rights_in_one_statement(app, served) -> None:
    acme = f.org("Acme")
    f.user(acme, email="ada@acme.test", codes=[permissions.RECRUITMENT_SMS, permissions.ADMIN_USERS])
    db.session.commit()
    ada = Visitor(app, served)
    assert ada.login("ada@acme.test").status_code == 302
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert ada.get("/inbox").status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    rights = [s for s in seen if "role_permission" in s or "user_role" in s]
    # The rights come with the session's own lookup, not one lazy load after another.
    assert rights and all("user_session" in s for s in rights), rights
    assert not [s for s in seen if s.lstrip().startswith("SELECT organization.")], seen


def test_a_role_taken_away_counts_at_the_next_request(app, served) -> None:
    acme = f.org("Acme")
    ada = f.user(acme, email="ada@acme.test", codes=[permissions.ADMIN_USERS])
    db.session.commit()
    visitor = Visitor(app, served)
    assert visitor.login("ada@acme.test").status_code == 302
    assert visitor.get("/admin/people").status_code == 200
    db.session.get(User, ada.id).roles = []
    db.session.commit()
    assert visitor.get("/admin/people").status_code in (403, 404)
