"""Relay in headless Chromium, as a recruiter and a hiring manager use it, against the demo data."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser_support import serve
from tests.conftest import need, test_config
from webapp import create_app, demo
from webapp.extensions import db

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-results" / "screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        need("Chromium (apt-get install -y chromium)")
    return {**browser_type_launch_args, "executable_path": path, "args": CHROMIUM_FLAGS}


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("live") / "relay.db"
    app = create_app(test_config(f"sqlite:///{database}", TESTING=False, SIMULATOR_DELIVERY_SECONDS=1))
    with app.app_context():
        db.create_all()
        demo.seed(db.session)
        db.session.commit()
    with serve(app) as url:
        yield url


@pytest.fixture(scope="session")
def base_url(live_server: str) -> str:
    return live_server


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(demo.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_wrong_password_is_told_on_the_form(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill("recruiter@acme.example")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Email")).to_have_value("recruiter@acme.example")
    shot(page, "login-error")


def test_recruiter_filters_applications_and_opens_a_candidate(page: Page) -> None:
    sign_in(page, "recruiter@acme.example")
    shot(page, "jobs")
    page.get_by_role("link", name="Backend Engineer").click()
    expect(page.get_by_role("heading", name="Backend Engineer")).to_be_visible()
    rows = page.locator("#applications tbody tr")
    total = rows.count()
    assert total > 3

    first_name = rows.first.locator("td").first.inner_text().split()[0]
    page.get_by_label("Search by name").fill(first_name.lower())
    expect(page).to_have_url(re.compile(rf"[?&]q={first_name.lower()}"))
    expect(rows).not_to_have_count(total)
    for name in rows.locator("td:first-child").all_inner_texts():
        assert first_name.lower() in name.lower()

    page.get_by_label("Search by name").fill("")
    expect(rows).to_have_count(total)
    page.get_by_label("Stage").select_option("interview")
    expect(page).to_have_url(re.compile(r"stage=interview"))
    stages = rows.locator(".stage").all_inner_texts()
    assert stages and set(stages) == {"Interview"}
    shot(page, "job-filtered")

    # The URL keeps the filter: a reload shows the same list.
    page.reload()
    expect(page.get_by_label("Stage")).to_have_value("interview")
    assert set(rows.locator(".stage").all_inner_texts()) == {"Interview"}

    rows.first.get_by_role("link").click()
    expect(page.locator("#candidate-country")).to_contain_text("(")
    expect(page.locator("#candidate-mobile")).to_contain_text("+")
    expect(page.locator("#messaging-panel")).to_be_visible()
    shot(page, "application")


def test_manager_sees_only_their_jobs_and_globex_sees_none_of_acme(page: Page) -> None:
    sign_in(page, "manager@acme.example")
    titles = page.locator("#jobs tbody tr td:first-child").all_inner_texts()
    assert sorted(titles) == ["Backend Engineer", "Data Analyst"]
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()

    sign_in(page, "recruiter@globex.example")
    titles = page.locator("#jobs tbody tr td:first-child").all_inner_texts()
    assert titles and not {"Backend Engineer", "Data Analyst", "Product Designer"} & set(titles)
    response = page.goto("/jobs/1")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    shot(page, "not-found")


def test_recruiter_texts_a_candidate_and_sees_it_delivered(page: Page) -> None:
    sign_in(page, "recruiter@acme.example")
    page.get_by_role("link", name="Backend Engineer").click()
    page.locator("#applications tbody tr").first.get_by_role("link").click()
    expect(page.locator("#messaging-panel")).to_be_visible()
    expect(page.get_by_role("tab", name="SMS")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("radio", name="SMS")).to_be_checked()

    message = page.get_by_label("Message")
    message.fill("Hi %FIRSTNAME%, great news about your application 🎉")
    counter = page.locator("#counter")
    expect(counter.locator("[data-counter=encoding]")).to_have_text("UCS-2")
    expect(counter.locator("[data-counter=ucs2]")).to_contain_text("🎉")
    expect(counter.locator("[data-counter=credits]")).to_have_text("1 credit")
    shot(page, "composer-ucs2")

    page.get_by_role("button", name="Send").click()
    sent = page.locator(".thread .msg-outbound").last
    expect(sent).to_contain_text("great news about your application 🎉")
    expect(sent).not_to_contain_text("%FIRSTNAME%")
    expect(message).to_have_value("")  # a fresh composer after sending
    expect(sent.locator(".status")).to_have_text("Delivered", timeout=8000)
    shot(page, "thread-delivered")


def test_a_refused_send_keeps_what_was_typed(page: Page) -> None:
    sign_in(page, "recruiter@acme.example")
    page.get_by_role("link", name="Backend Engineer").click()
    page.locator("#applications tbody tr").first.get_by_role("link").click()
    typed = "Long text. " * 160
    page.get_by_label("Message").fill(typed)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#body-error")).to_contain_text("the limit is 10")
    expect(page.get_by_label("Message")).to_have_value(typed)


def test_an_inbound_reply_appears_on_the_open_page_within_3_seconds(page: Page, live_server: str) -> None:
    import json
    import urllib.request

    from tests.conftest import WEBHOOK_SECRET
    from webapp.webhooks.signature import sign

    sign_in(page, "recruiter@acme.example")
    page.get_by_role("link", name="Backend Engineer").click()
    page.locator("#applications tbody tr").nth(1).get_by_role("link").click()
    page.get_by_label("Message").fill("Could you do a call on Tuesday?")
    page.get_by_role("button", name="Send").click()
    sent = page.locator(".thread .msg-outbound").last
    expect(sent).to_contain_text("Could you do a call on Tuesday?")
    origin = (
        sent.locator(".msg-foot")
        .inner_text()
        .split("From ")[1]
        .split(" ·")[0]
        .replace(" ", "")
        .replace("-", "")
    )
    mobile = page.locator("#candidate-mobile").inner_text().replace(" ", "").replace("-", "")

    text = "Tuesday at 10 works for me!"
    body = json.dumps(
        {
            "channel": "sms",
            "message_type": "text",
            "message_uuid": "4b2c6a6e-8a0f-4f0e-9d7e-3b1c2a9e7f10",
            "to": origin.lstrip("+"),
            "from": mobile.lstrip("+"),
            "timestamp": "2026-11-23T10:00:00Z",
            "text": text,
        }
    ).encode()
    request = urllib.request.Request(
        f"{live_server}/webhooks/vonage/inbound",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {sign(body, WEBHOOK_SECRET)}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    # No reload: the poll brings it.
    expect(page.locator(".thread .msg-inbound").last).to_contain_text(text, timeout=3000)
    shot(page, "inbound-live")
