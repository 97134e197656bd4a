"""Errors answer with pages that fit the app, and a crash rolls the session back."""

from __future__ import annotations

import pytest
from flask import Flask

from tests import factories as f
from tests.conftest import csrf_from
from webapp.extensions import db


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"PROPAGATE_EXCEPTIONS": False}


def test_404_page_is_ours(client) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Not found" in html and "Back to Relay" in html and "css/app.css" in html


def test_405_keeps_allow(client) -> None:
    response = client.delete("/login")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


def test_500_page_and_rollback(app: Flask, client) -> None:
    @app.get("/boom")
    def boom() -> str:
        f.org("Half-made")
        raise RuntimeError("boom")

    response = client.get("/boom")
    assert response.status_code == 500
    assert "Something went wrong" in response.get_data(as_text=True)
    assert "RuntimeError" not in response.get_data(as_text=True)
    from webapp.models import Organization

    assert db.session.query(Organization).filter_by(name="Half-made").count() == 0


@pytest.mark.parametrize("where", ["args", "form"])
def test_nul_characters_are_a_400_not_a_database_error(client, where) -> None:
    if where == "args":
        response = client.get("/login", query_string={"next": "/jobs\x00"})
    else:
        token = csrf_from(client)
        response = client.post("/login", data={"email": "a\x00@x.test", "password": "p", "csrf_token": token})
    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)


def test_an_htmx_request_that_fails_gets_no_page_to_swap_but_a_message(client, auth) -> None:
    # A 400 is swapped by our htmx config (forms with errors); an error page must not be swapped in.
    org = f.org("Acme")
    f.user(org, email="ada@example.test")
    db.session.commit()
    auth.login("ada@example.test")
    response = client.post("/logout", headers={"HX-Request": "true"}, data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert response.headers["HX-Reswap"] == "none"
    assert "form had expired" in response.headers["HX-Trigger"]
    assert "<html" not in response.get_data(as_text=True)

    missing = client.get("/jobs/999999", headers={"HX-Request": "true"})
    assert missing.status_code == 404 and "relay-error" in missing.headers["HX-Trigger"]
    # Without htmx (or on boosted navigation) it is the whole page, as before.
    page = client.get("/jobs/999999", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in page.get_data(as_text=True)


def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after(app: Flask, client, auth) -> None:
    import sqlalchemy as sa

    @app.get("/gone")
    def gone() -> str:
        raise sa.exc.OperationalError("SELECT 1", {}, OSError("server closed the connection unexpectedly"))

    @app.get("/bug")
    def bug() -> str:
        raise sa.exc.ProgrammingError("SELECT nonsense", {}, Exception("syntax error"))

    org = f.org("Acme")
    f.user(org, email="ada@example.test")
    db.session.commit()
    auth.login("ada@example.test")
    response = client.get("/gone")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    page = response.get_data(as_text=True)
    # The page's header does not ask the database who is signed in: it shows no one.
    assert "Unavailable for a moment" in page and "Back to Relay" in page and "Test User" not in page
    fragment = client.get("/gone", headers={"HX-Request": "true"})
    assert fragment.status_code == 503 and fragment.headers["HX-Reswap"] == "none"
    # Any other database error is a bug: a 500, as before.
    assert client.get("/bug").status_code == 500
