"""htmx is ours: installed from npm at set-up, served from /static/vendor/, never from a CDN."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests import factories as f
from webapp.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def test_htmx_2_0_is_pinned_in_the_lockfile() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert re.fullmatch(r"2\.0\.\d+", lock["packages"]["node_modules/htmx.org"]["version"])


def test_htmx_is_served_by_us(client) -> None:
    response = client.get("/static/vendor/htmx.min.js")
    assert response.status_code == 200
    assert b"htmx" in response.data[:2000]
    response.close()


def test_pages_load_scripts_only_from_us_and_carry_the_csrf_token(client, auth) -> None:
    org = f.org()
    f.user(org, email="u@x.test")
    db.session.commit()
    auth.login("u@x.test")
    html = client.get("/jobs").get_data(as_text=True)
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/static/") for s in sources)
    assert re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"[^\"]+\"\}'>", html)


def test_csrf_header_is_accepted_for_htmx_posts(client, auth) -> None:
    org = f.org()
    f.user(org, email="u@x.test")
    db.session.commit()
    auth.login("u@x.test")
    html = client.get("/jobs").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)
    assert client.post("/logout", headers={"X-CSRFToken": token, "HX-Request": "true"}).status_code == 302


def test_the_icon_is_served_where_browsers_look_for_it(client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert b"<svg" in response.data
    response.close()


def test_staff_see_no_customer_navigation(client, auth) -> None:
    f.user(None, email="csm@x.test", is_staff=True)
    db.session.commit()
    auth.login("csm@x.test")
    html = client.get("/staff/").get_data(as_text=True)
    assert ">Staff</a>" in html and ">Jobs</a>" not in html and ">Inbox</a>" not in html
