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
