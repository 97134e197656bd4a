"""Security headers on every response (pages, static files, errors, webhook JSON), and templates that
need nothing the Content-Security-Policy forbids."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests import factories as f
from tests.conftest import Auth
from tests.webhook_support import post
from webapp.extensions import db

ROOT = Path(__file__).resolve().parent.parent
POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"PROPAGATE_EXCEPTIONS": False}


def policy(header: str) -> dict[str, list[str]]:
    directives = [d.split() for d in header.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def every_kind_of_response(app: Flask, client: FlaskClient) -> dict[str, object]:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    f.user(f.org(), email="riley@acme.test")
    db.session.commit()
    responses = {
        "login page": client.get("/login"),
        "redirect": client.get("/"),
        "static css": client.get("/static/css/app.css"),
        "static js": client.get("/static/js/app.js"),
        "404": client.get("/no/such/page"),
        "404 for an id": client.get("/applications/99999999999999999999"),
        "405": client.delete("/login"),
        "400 csrf": client.post("/login", data={"email": "a@b.test", "password": "x"}),
        "500": client.get("/boom"),
        "401 htmx": client.get("/jobs", headers={"HX-Request": "true"}),
        "webhook 401 json": post(client, "/webhooks/vonage/inbound", {}, auth=""),
        "webhook 400 json": post(client, "/webhooks/vonage/inbound", {"channel": "sms"}),
        "webhook 204": post(client, "/webhooks/vonage/status", {"message_uuid": "x", "status": "read"}),
        "healthz": client.get("/healthz"),
    }
    responses["sign-in"] = Auth(client).login("riley@acme.test")
    responses["signed-in page"] = client.get("/jobs")
    responses["sign-out"] = Auth(client).logout()
    return responses


def test_every_response_carries_the_headers(app, client) -> None:
    responses = every_kind_of_response(app, client)
    assert responses["500"].status_code == 500 and responses["webhook 401 json"].is_json
    assert responses["webhook 204"].status_code == 204
    for name, response in responses.items():
        headers = response.headers
        assert policy(headers.get("Content-Security-Policy", "")) == POLICY, name
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("Referrer-Policy") == "same-origin", name
        assert headers.get("X-Frame-Options") == "DENY", name
        assert "Strict-Transport-Security" not in headers, name  # development is plain http
        response.close()


def test_pages_are_not_stored_but_static_files_may_be(app, client) -> None:
    responses = every_kind_of_response(app, client)
    for name, response in responses.items():
        if name.startswith("static"):
            assert "no-store" not in response.headers.get("Cache-Control", ""), name
        else:
            assert response.headers.get("Cache-Control") == "no-store", name
        response.close()


class TestProduction:
    @pytest.fixture
    def app_config(self) -> dict[str, object]:
        return {
            "PROPAGATE_EXCEPTIONS": False,
            "RELAY_ENV": "production",
            "ALLOW_SIMULATOR_IN_PRODUCTION": True,
        }

    def test_hsts_on_every_response(self, app, client) -> None:
        for name, response in every_kind_of_response(app, client).items():
            assert (
                response.headers.get("Strict-Transport-Security") == "max-age=63072000; includeSubDomains"
            ), name
            assert policy(response.headers["Content-Security-Policy"]) == POLICY, name
            response.close()


# --- What the policy asks of the templates and of htmx ---------------------------------------------

# The app's own (base.html, shared partials) and each web package's templates/ folder.
TEMPLATES = sorted(
    [*(ROOT / "templates").rglob("*.html"), *(ROOT / "webapp" / "web").glob("*/templates/**/*.html")]
)
FORBIDDEN = {
    "a style attribute": re.compile(r"\sstyle\s*=", re.I),
    "a <style> element": re.compile(r"<style[\s>]", re.I),
    "an inline <script>": re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I),
    "an event-handler attribute": re.compile(r"\son[a-z]+\s*=", re.I),
    "a javascript: URL": re.compile(r"javascript:", re.I),
    "hx-on (inline script run by htmx)": re.compile(r"\shx-on", re.I),
    "a js: expression for htmx": re.compile(r"(hx-vals|hx-headers)\s*=\s*['\"]\s*(js|javascript):", re.I),
    "an htmx trigger filter, which needs eval": re.compile(r"hx-trigger\s*=\s*['\"][^'\"]*\[", re.I),
}


def test_there_are_templates_to_check() -> None:
    assert len(TEMPLATES) > 10


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_need_nothing_the_policy_forbids(template: Path) -> None:
    text = re.sub(r"\{#.*?#\}", "", template.read_text(), flags=re.S)  # Jinja comments never reach the page
    found = [what for what, pattern in FORBIDDEN.items() if pattern.search(text)]
    assert found == [], f"{template.name} has {', '.join(found)}"


def test_htmx_neither_evals_nor_injects_styles(client) -> None:
    html = client.get("/login").get_data(as_text=True)
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", html)
    assert meta, "no htmx-config meta tag"
    config = json.loads(meta.group(1))
    assert config["allowEval"] is False and config["includeIndicatorStyles"] is False
    # What htmx's injected <style> did, our stylesheet does.
    css = (ROOT / "static" / "css" / "app.css").read_text()
    assert re.search(r"\.htmx-indicator\s*\{[^}]*opacity:\s*0", css)
    assert re.search(
        r"\.htmx-request \.htmx-indicator,\s*\.htmx-request\.htmx-indicator\s*\{[^}]*opacity:\s*1", css
    )
