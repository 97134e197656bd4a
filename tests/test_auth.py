"""Signing in and out: credentials, cookies, CSRF, the failed-attempt limit, redirects."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from tests import factories as f
from tests.conftest import Auth, csrf_from
from webapp.extensions import db
from webapp.models import LoginAttempt

PROTECTED = ["/jobs", "/jobs/1", "/applications/1", "/inbox", "/admin/"]


@pytest.fixture
def member(app):
    org = f.org("Acme")
    u = f.user(org, email="riley@acme.test")
    db.session.commit()
    return u


def test_login_page_has_the_contract_fields(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    for name in ('name="email"', 'name="password"', 'name="csrf_token"'):
        assert name in page


def test_sign_in_and_out(client: FlaskClient, auth: Auth, member) -> None:
    response = auth.login("riley@acme.test")
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/jobs").status_code == 200

    assert auth.logout().status_code == 302
    assert client.get("/jobs").status_code == 302


def test_email_is_case_insensitive(client: FlaskClient, auth: Auth, member) -> None:
    assert auth.login("  Riley@ACME.test ").status_code == 302


@pytest.mark.parametrize(
    ("email", "password"), [("riley@acme.test", "wrong"), ("nobody@acme.test", "password")]
)
def test_wrong_credentials_get_one_generic_message(client, auth, member, email, password) -> None:
    response = auth.login(email, password)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Wrong email or password." in text
    assert email in text  # what the user typed is kept
    assert client.get("/jobs").status_code == 302


def test_empty_form_says_what_is_missing(client: FlaskClient) -> None:
    token = csrf_from(client)
    response = client.post("/login", data={"email": "", "password": "", "csrf_token": token})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Enter your email." in text and "Enter your password." in text


def test_inactive_user_cannot_sign_in(client: FlaskClient, auth: Auth, member) -> None:
    member.active = False
    db.session.commit()
    assert "Wrong email or password." in auth.login("riley@acme.test").get_data(as_text=True)


def test_missing_csrf_token_is_refused(client: FlaskClient, member) -> None:
    response = client.post("/login", data={"email": "riley@acme.test", "password": "password"})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
    assert client.get("/jobs").status_code == 302


def test_logout_needs_csrf(client: FlaskClient, auth: Auth, member) -> None:
    auth.login("riley@acme.test")
    assert client.post("/logout").status_code == 400
    assert client.get("/jobs").status_code == 200


@pytest.mark.parametrize("path", PROTECTED)
def test_pages_need_sign_in(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_htmx_request_without_session_redirects_the_whole_window(client: FlaskClient) -> None:
    response = client.get("/jobs/1?q=a", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=")


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/inbox", "/inbox"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_next_only_goes_to_this_site(client, member, next_url, expected) -> None:
    token = csrf_from(client)
    response = client.post(
        "/login",
        query_string={"next": next_url},
        data={"email": "riley@acme.test", "password": "password", "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == expected


class TestBehindAProxy:
    """TRUSTED_PROXIES=1: the address the proxy forwards is the one the sign-in limit counts."""

    @pytest.fixture
    def app_config(self) -> dict[str, object]:
        return {"TRUSTED_PROXIES": 1}

    def test_the_forwarded_address_is_the_clients(self, client, member) -> None:
        # Over https a form must come from our own page (Flask-WTF checks the Referer), as a browser's does.
        forwarded = {
            "X-Forwarded-For": "198.51.100.23",
            "X-Forwarded-Proto": "https",
            "Referer": "https://localhost/login",
        }
        token = csrf_from(client, "/login")
        data = {"email": "riley@acme.test", "password": "wrong", "csrf_token": token}
        assert client.post("/login", data=data, headers=forwarded).status_code == 200
        addresses = db.session.scalars(sa.select(LoginAttempt.remote_addr)).all()
        assert addresses == ["198.51.100.23"]


class TestWithoutAProxy:
    def test_a_forwarded_address_is_not_believed(self, client, member) -> None:
        data = {"email": "riley@acme.test", "password": "wrong", "csrf_token": csrf_from(client, "/login")}
        forged = {"X-Forwarded-For": "198.51.100.23"}
        assert client.post("/login", data=data, headers=forged).status_code == 200
        assert db.session.scalars(sa.select(LoginAttempt.remote_addr)).all() == ["127.0.0.1"]


class TestFailureLimit:
    @pytest.fixture
    def app_config(self) -> dict[str, object]:
        return {"LOGIN_MAX_FAILURES_PER_ACCOUNT": 3, "LOGIN_MAX_FAILURES_PER_ADDRESS": 5}

    def test_account_is_locked_after_too_many_failures(self, client, auth, member) -> None:
        for _ in range(3):
            assert auth.login("riley@acme.test", "wrong").status_code == 200
        response = auth.login("riley@acme.test", "password")  # even the right password waits now
        assert response.status_code == 429
        assert "Too many failed sign-ins. Try again in 15 minutes." in response.get_data(as_text=True)
        assert client.get("/jobs").status_code == 302

    def test_address_is_limited_across_accounts(self, client, auth, member) -> None:
        for i in range(5):
            auth.login(f"guess{i}@acme.test", "wrong")
        assert auth.login("riley@acme.test", "password").status_code == 429

    def test_attempts_turned_away_do_not_extend_the_lock(self, client, auth, member) -> None:
        for _ in range(3):
            auth.login("riley@acme.test", "wrong")
        for _ in range(4):
            assert auth.login("riley@acme.test", "wrong").status_code == 429
        # Only the three checked failures count; the lock ends when the first of them leaves the window.
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt)) == 3

    def test_success_clears_the_account_count(self, client, auth, member) -> None:
        for _ in range(2):
            auth.login("riley@acme.test", "wrong")
        assert auth.login("riley@acme.test").status_code == 302
        auth.logout()
        for _ in range(2):
            auth.login("riley@acme.test", "wrong")
        assert auth.login("riley@acme.test").status_code == 302
