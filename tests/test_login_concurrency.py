"""On PostgreSQL, 60 wrong guesses at once check at most as many passwords as the limit allows.

Each guess is a real POST /login through the app, from a client of its own in a thread of its own (so
each has its own application context and database session); the password checks are counted where
they happen, in werkzeug's check_password_hash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask

from tests import factories as f
from tests.conftest import CSRF_RE
from webapp.extensions import db
from webapp.models import LoginAttempt

GUESSES = 60


@pytest.fixture
def backend() -> str:
    return "postgresql"  # SQLite serialises writers; the race only exists on a real server


@pytest.fixture
def app_config() -> dict[str, object]:
    # Thirty connections meet at the database at once (the server is shared with other test runs).
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 20, "max_overflow": 10, "pool_timeout": 30}}


@pytest.fixture
def password_checks(monkeypatch) -> list[str]:
    """Every password hash checked, for a known user (models.user) or an unknown email (auth.service)."""
    import webapp.accounts.sign_in
    import webapp.models.user

    checked: list[str] = []
    lock = threading.Lock()

    def counting(where: str, real: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
        def check(pwhash: str, password: str) -> bool:
            with lock:
                checked.append(where)
            return real(pwhash, password)

        return check

    for module in (webapp.models.user, webapp.accounts.sign_in):
        monkeypatch.setattr(
            module, "check_password_hash", counting(module.__name__, module.check_password_hash)
        )
    return checked


def guess_at_once(app: Flask, emails: list[str]) -> list[tuple[int, str]]:
    """POST /login with a wrong password for each email, all released at the same moment."""
    start = threading.Barrier(len(emails))
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def guess(email: str) -> None:
        client = app.test_client()
        token = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
        start.wait(timeout=60)
        response = client.post("/login", data={"email": email, "password": "wrong", "csrf_token": token})
        with lock:
            results.append((response.status_code, response.get_data(as_text=True)))

    threads = [threading.Thread(target=guess, args=(email,)) for email in emails]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == len(emails)
    return results


def outcome(status: int, html: str) -> str:
    if status == 200 and "Wrong email or password." in html:
        return "checked"
    if status == 429 and "Too many failed sign-ins. Try again in" in html:
        return "locked"
    raise AssertionError(f"unexpected answer {status}")


def test_sixty_parallel_guesses_at_one_account_check_at_most_five(app, password_checks) -> None:
    f.user(f.org("Acme"), email="riley@acme.test")
    db.session.commit()
    db.session.remove()

    results = guess_at_once(app, ["riley@acme.test"] * GUESSES)

    outcomes = [outcome(status, html) for status, html in results]
    assert len(password_checks) == outcomes.count("checked") <= 5, outcomes
    assert outcomes.count("locked") >= GUESSES - 5
    # The turned-away attempts left nothing behind; what the burst checked counts, and the account
    # gets exactly the rest of its five, one after another.
    client = app.test_client()
    for _ in range(5 - len(password_checks)):
        token = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
        response = client.post(
            "/login", data={"email": "riley@acme.test", "password": "x", "csrf_token": token}
        )
        assert outcome(response.status_code, response.get_data(as_text=True)) == "checked"
    token = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
    right = client.post(
        "/login", data={"email": "riley@acme.test", "password": "password", "csrf_token": token}
    )
    assert right.status_code == 429  # even the right password waits now
    assert len(password_checks) == 5
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt)) == 5


def test_sixty_parallel_guesses_from_one_address_check_at_most_twenty(app, password_checks) -> None:
    # Sixty different accounts, none of them real: only the per-address limit (20) stands in the way.
    results = guess_at_once(app, [f"guess{i}@acme.test" for i in range(GUESSES)])

    outcomes = [outcome(status, html) for status, html in results]
    assert len(password_checks) == outcomes.count("checked") <= 20, outcomes
    assert set(password_checks) <= {"webapp.accounts.sign_in"}  # the equalising check for unknown emails
