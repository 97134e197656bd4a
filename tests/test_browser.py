"""Relay in headless Chromium, as a recruiter and a hiring manager use it, against the demo data.

Every test's page is watched: a Content-Security-Policy violation, an htmx error, an uncaught exception
or a failed script/style/icon fails the test (see ConsoleWatch).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests import factories as f
from tests.browser_support import AXE_PATH, ConsoleWatch, axe_problems, serve
from tests.conftest import WEBHOOK_SECRET, need, test_config
from webapp import create_app, demo
from webapp.accounts import permissions
from webapp.billing import credits, ledger
from webapp.extensions import db
from webapp.models import Application, Candidate, Job, Organization, User
from webapp.providers.vonage.signature import sign

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
PHONE, DESKTOP = {"width": 375, "height": 740}, {"width": 1366, "height": 900}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        need("Chromium (apt-get install -y chromium)")
    return {**browser_type_launch_args, "executable_path": path, "args": CHROMIUM_FLAGS}


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    database = tmp_path_factory.mktemp("live") / "relay.db"
    # Sends go through the thread pool, as in `make run`: the page and the dispatcher race as they do there.
    uploads = tmp_path_factory.mktemp("uploads")
    config = test_config(
        f"sqlite:///{database}",
        TESTING=False,
        SIMULATOR_DELIVERY_SECONDS=1,
        UPLOAD_DIR=str(uploads),
        # Every test's candidate browses from 127.0.0.1: the booking page's per-address limit is tested
        # on its own (tests/test_interviews.py).
        BOOKING_MAX_REQUESTS_PER_ADDRESS=10_000,
    )
    app = create_app({**config, "DISPATCH_MODE": "thread"})
    with app.app_context():
        db.create_all()
        demo.seed(db.session)
        db.session.commit()
    return app


@pytest.fixture(scope="session")
def live_server(live_app: Flask) -> Iterator[str]:
    with serve(live_app) as url:
        yield url


@pytest.fixture(scope="session")
def base_url(live_server: str) -> str:
    return live_server


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_PATH.exists():
        need("axe-core (npm ci)")
    return AXE_PATH.read_text()


@pytest.fixture
def page(page: Page) -> Iterator[Page]:
    """pytest-playwright's page, watched (see ConsoleWatch)."""
    watch = ConsoleWatch().attach(page)
    yield page
    if watch.problems:
        pytest.fail("the browser reported:\n" + "\n".join(watch.problems), pytrace=False)


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(demo.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Each lands where their work is (webapp.accounts.landing): the Inbox, their Communities or Jobs; Relay's
    # staff on the staff area.
    start = re.compile(r"^(Inbox|Communities|Jobs|Customer success)$")
    expect(page.get_by_role("heading", name=start, level=1)).to_be_visible()


def to_jobs(page: Page) -> None:
    """Through the main navigation to the jobs list."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs", level=1)).to_be_visible()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # caret="initial": hiding the caret leaves style="" on inputs, which htmx's settling then copies
    # onto the swapped-in ones: a CSP violation of the test's own making.
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, caret="initial")


def application_path(app: Flask, name: str, job: str) -> str:
    """The demo application of the candidate called `name` to `job`."""
    first, last = name.split(" ", 1)
    with app.app_context():
        found = db.session.scalar(
            sa.select(Application.id)
            .join(Application.job)
            .join(Application.candidate)
            .where(Job.title == job, Candidate.first_name == first, Candidate.last_name == last)
        )
        db.session.remove()
    assert found is not None, (name, job)
    return f"/applications/{found}"


def job_path(app: Flask, title: str) -> str:
    with app.app_context():
        found = db.session.scalar(sa.select(Job.id).where(Job.title == title))
        db.session.remove()
    return f"/jobs/{found}"


def staff_path(app: Flask, org_name: str, country: str | None = None) -> str:
    """A staff page of the demo: an organisation, or its submission for a country."""
    from webapp.models import ComplianceSubmission, Organization

    with app.app_context():
        org_id = db.session.scalar(sa.select(Organization.id).where(Organization.name == org_name))
        submission_id = db.session.scalar(
            sa.select(ComplianceSubmission.id).where(
                ComplianceSubmission.organization_id == org_id, ComplianceSubmission.country == country
            )
        )
        db.session.remove()
    return f"/staff/submissions/{submission_id}" if country else f"/staff/organizations/{org_id}"


def person_path(app: Flask, email: str) -> str:
    from webapp.models import User

    with app.app_context():
        found = db.session.scalar(sa.select(User.id).where(User.email == email))
        db.session.remove()
    return f"/admin/people/{found}"


def template_path(app: Flask, name: str) -> str:
    from webapp.models import MessageTemplate

    with app.app_context():
        found = db.session.scalar(sa.select(MessageTemplate.id).where(MessageTemplate.name == name))
        db.session.remove()
    return f"/admin/templates/{found}"


def set_password_path(app: Flask, email: str) -> str:
    """A fresh one-time link for the user (as an admin would make it)."""
    from webapp.accounts import password_links
    from webapp.models import User

    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        token = password_links.issue(db.session, user, None)
        db.session.commit()
        db.session.remove()
    return f"/set-password/{token}"


def booking_path(app: Flask, state: str) -> str:
    """The booking link of the demo's invitation in that state, as its message carries it."""
    from webapp.models import Invitation, Message

    with app.app_context():
        body = db.session.scalar(
            sa.select(Message.body)
            .join(Invitation, Invitation.message_id == Message.id)
            .where(Invitation.state == state)
        )
        db.session.remove()
    found = re.search(r"(/book/[A-Za-z0-9_-]+)", body or "")
    assert found, body
    return found.group(1)


def invite_path(app: Flask, job: str, count: int) -> str:
    """The invitation form for the first `count` applications to `job` (one: the application's own)."""
    with app.app_context():
        found = db.session.scalars(
            sa.select(Application.id)
            .join(Application.job)
            .where(Job.title == job)
            .order_by(Application.id)
            .limit(count)
        ).all()
        job_id = db.session.scalar(sa.select(Job.id).where(Job.title == job))
        db.session.remove()
    if count == 1:
        return f"/applications/{found[0]}/invite"
    return f"/jobs/{job_id}/invite?" + "&".join(f"application={i}" for i in found)


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def reply(live_server: str, ours: str, mobile: str, text: str, channel: str = "sms") -> None:
    """The candidate answers: a signed inbound webhook, as Vonage posts it."""
    payload = {
        "channel": channel,
        "message_type": "text",
        "message_uuid": str(uuid.uuid4()),
        "to": digits(ours),
        "from": digits(mobile),
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "text": text,
    }
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{live_server}/webhooks/vonage/inbound",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {sign(body, WEBHOOK_SECRET)}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def our_number(page: Page) -> str:
    """The number this conversation texts from, as the newest outbound message says."""
    return page.locator(".msg-outbound .msg-foot").last.inner_text().split("From ")[1].split(" ·")[0]


AT_BOTTOM = "el => el.scrollHeight - el.scrollTop - el.clientHeight <= 2"


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
    to_jobs(page)
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
    # Accents and case aside: "vaino" finds Väinö.
    page.get_by_label("Search by name").fill("vaino")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Väinö Nieminen")

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
    expect(page.locator(".panel")).to_be_visible()
    shot(page, "application")


def test_manager_sees_only_their_jobs_and_globex_sees_none_of_acme(page: Page) -> None:
    sign_in(page, "manager@acme.example")
    to_jobs(page)
    titles = page.locator("#jobs tbody tr td:first-child a").all_inner_texts()
    assert sorted(titles) == ["Backend Engineer", "Data Analyst"]
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()

    sign_in(page, "recruiter@globex.example")
    titles = page.locator("#jobs tbody tr td:first-child a").all_inner_texts()
    assert titles and not {"Backend Engineer", "Data Analyst", "Product Designer"} & set(titles)
    response = page.goto("/jobs/1")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    shot(page, "not-found")


def test_recruiter_texts_a_candidate_and_sees_it_delivered(page: Page) -> None:
    sign_in(page, "recruiter@acme.example")
    to_jobs(page)
    page.get_by_role("link", name="Backend Engineer").click()
    page.locator("#applications tbody tr").first.get_by_role("link").click()
    expect(page.locator(".panel")).to_be_visible()
    expect(page.get_by_role("tab", name="SMS")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("radio", name="SMS")).to_be_checked()

    message = page.get_by_label("Message")
    message.fill("Hi %FIRSTNAME%, great news about your application 🎉")
    counter = page.locator(".counter")
    # In the units that decide the segments: 🎉 counts 2 UTF-16 units, and says so.
    expect(counter.locator("[data-counter=units]")).to_have_text(re.compile(r"^\d+ of 70 UCS-2 units$"))
    expect(counter.locator("[data-counter=ucs2]")).to_contain_text("🎉")
    expect(counter.locator("[data-counter=doubled]")).to_have_text("🎉 counts 2 units.")
    expect(counter.locator("[data-counter=credits]")).to_have_text("1 credit")
    shot(page, "composer-ucs2")

    page.get_by_role("button", name="Send").click()
    sent = page.locator(".messages .msg-outbound").last
    expect(sent).to_contain_text("great news about your application 🎉")
    expect(sent).not_to_contain_text("%FIRSTNAME%")
    expect(message).to_have_value("")  # a fresh composer after sending
    expect(sent.locator(".status")).to_have_text("Delivered", timeout=8000)
    shot(page, "thread-delivered")

    # An email is out at once (the log provider): the screen says Sent without waiting for a later poll.
    page.get_by_role("radio", name="Email").check()
    page.get_by_label("Subject").fill("Your application")
    message.fill("Dear %FIRSTNAME%, see you on Monday.")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"[?&]tab=email"))
    email = page.locator(".messages .msg-outbound").last
    expect(email).to_contain_text("see you on Monday")
    expect(email.locator(".status")).to_have_text("Sent", timeout=2500)


def test_a_refused_send_keeps_what_was_typed(page: Page) -> None:
    sign_in(page, "recruiter@acme.example")
    to_jobs(page)
    page.get_by_role("link", name="Backend Engineer").click()
    page.locator("#applications tbody tr").first.get_by_role("link").click()
    # SMS chosen: an earlier test may have left this candidate's conversation on email.
    page.get_by_role("radio", name="SMS").check()
    typed = "Long text. " * 160
    page.get_by_label("Message").fill(typed)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".body-field .field-error")).to_contain_text("the limit is 10")
    expect(page.get_by_label("Message")).to_have_value(typed)


def test_an_inbound_reply_appears_on_the_open_page_within_3_seconds(page: Page, live_server: str) -> None:
    sign_in(page, "recruiter@acme.example")
    to_jobs(page)
    page.get_by_role("link", name="Backend Engineer").click()
    page.locator("#applications tbody tr").nth(1).get_by_role("link").click()
    page.get_by_role("radio", name="SMS").check()  # whatever channel the conversation was last on
    page.get_by_label("Message").fill("Could you do a call on Tuesday?")
    page.get_by_role("button", name="Send").click()
    sent = page.locator(".messages .msg-outbound").last
    expect(sent).to_contain_text("Could you do a call on Tuesday?")
    text = "Tuesday at 10 works for me!"
    reply(live_server, our_number(page), page.locator("#candidate-mobile").inner_text(), text)
    # No reload: the poll brings it.
    expect(page.locator(".messages .msg-inbound").last).to_contain_text(text, timeout=3000)
    shot(page, "inbound-live")


HIDE_TAB = """(hidden) => {
  Object.defineProperty(document, "hidden", {value: hidden, configurable: true});
  const state = hidden ? "hidden" : "visible";
  Object.defineProperty(document, "visibilityState", {value: state, configurable: true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def unread_of(app: Flask, email: str, conversation_id: int) -> int:
    from webapp.models import ConversationState, User

    with app.app_context():
        found = db.session.scalar(
            sa.select(ConversationState.unread)
            .join(User, User.id == ConversationState.user_id)
            .where(User.email == email, ConversationState.conversation_id == conversation_id)
        )
        db.session.remove()
    return found or 0


def test_a_hidden_tab_asks_nothing_and_marks_nothing_read(
    page: Page, live_app: Flask, live_server: str
) -> None:
    sign_in(page, "recruiter@acme.example")
    to_jobs(page)
    page.get_by_role("link", name="Backend Engineer").click()
    page.locator("#applications tbody tr").nth(2).get_by_role("link").click()
    page.get_by_label("Message").fill("Are you free on Friday?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".messages .msg-outbound").last).to_contain_text("Are you free on Friday?")
    conversation_id = int(page.locator(".thread-wrap").get_attribute("id").removeprefix("thread-"))
    asked: list[str] = []
    mine = f"/conversations/{conversation_id}/thread"
    page.on("request", lambda r: asked.append(r.url) if mine in r.url else None)
    page.evaluate(HIDE_TAB, True)
    page.wait_for_timeout(500)  # a poll already on its way when the tab was hidden comes back
    asked.clear()
    text = "Friday is fine, after lunch."
    ours, mobile = our_number(page), page.locator("#candidate-mobile").inner_text()
    reply(live_server, ours, mobile, text)
    page.wait_for_timeout(4500)  # two polls' worth
    assert asked == []
    expect(page.locator(".messages")).not_to_contain_text(text)
    assert unread_of(live_app, "recruiter@acme.example", conversation_id) == 1
    # Shown again: it asks at once, and what it draws is read.
    page.evaluate(HIDE_TAB, False)
    expect(page.locator(".messages .msg-inbound").last).to_contain_text(text, timeout=1500)
    assert unread_of(live_app, "recruiter@acme.example", conversation_id) == 0

    # The Inbox's one poll rests too, and neither list nor pane marks anything read meanwhile.
    page.goto("/inbox")
    expect(page.locator("#inbox-rows li.inbox-row").first).to_be_visible()
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/inbox" in r.url else None)
    page.evaluate(HIDE_TAB, True)
    page.wait_for_timeout(500)
    polls.clear()
    reply(live_server, ours, mobile, "One more thing")
    page.wait_for_timeout(4500)
    assert polls == []
    assert unread_of(live_app, "recruiter@acme.example", conversation_id) == 1
    page.evaluate(HIDE_TAB, False)
    row = page.locator(f"#inbox-row-{conversation_id}")
    expect(row.locator("[data-unread]")).to_have_attribute("data-unread", "1", timeout=1500)


def test_the_thread_opens_at_the_newest_and_keeps_the_readers_place(
    page: Page, live_app: Flask, live_server: str
) -> None:
    sign_in(page, "recruiter@acme.example")
    page.goto(application_path(live_app, "Amelia Jones", "Backend Engineer") + "?tab=sms")
    thread = page.locator("[data-thread-scroll]")
    assert thread.evaluate("el => el.scrollHeight > el.clientHeight + 100"), "the demo thread should scroll"
    page.wait_for_function(f"() => ({AT_BOTTOM})(document.querySelector('[data-thread-scroll]'))")
    ours, mobile = our_number(page), page.locator("#candidate-mobile").inner_text()

    # Reading older messages: a reply arrives, and the reader stays where they were.
    thread.evaluate("el => { el.scrollTop = 0; }")
    reply(live_server, ours, mobile, "A question while you read")
    expect(page.locator(".msg-inbound").last).to_contain_text("A question while you read", timeout=4000)
    page.wait_for_timeout(100)  # past htmx's settle, when the place is put back
    assert thread.evaluate("el => el.scrollTop") == 0

    # At the newest: the next reply is followed.
    thread.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    reply(live_server, ours, mobile, "And one more")
    expect(page.locator(".msg-inbound").last).to_contain_text("And one more", timeout=4000)
    page.wait_for_function(f"() => ({AT_BOTTOM})(document.querySelector('[data-thread-scroll]'))")

    # Scrolled up, the user sends: the message just sent is in sight.
    thread.evaluate("el => { el.scrollTop = 0; }")
    page.get_by_label("Message").fill("Yes, there is a short task; I will send it today.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg-outbound").last).to_contain_text("short task")
    page.wait_for_function(f"() => ({AT_BOTTOM})(document.querySelector('[data-thread-scroll]'))")
    expect(page.locator(".msg-outbound").last).to_be_in_viewport()
    # Keyboard users can scroll it: it takes the focus.
    thread.focus()
    assert page.evaluate("() => document.activeElement.hasAttribute('data-thread-scroll')")


def test_a_tab_is_in_the_address_and_history_lands_on_it(page: Page, live_app: Flask) -> None:
    sign_in(page, "recruiter@acme.example")
    path = application_path(live_app, "Lena Müller", "Product Designer")
    page.goto(path)
    # Without a tab in the address, the reply channel's: Lena last wrote on WhatsApp.
    expect(page.get_by_role("tab", name="WhatsApp")).to_have_attribute("aria-selected", "true")
    page.get_by_role("tab", name="SMS").click()
    expect(page).to_have_url(re.compile(rf"{path}\?tab=sms$"))
    expect(page.get_by_role("tab", name="SMS")).to_have_attribute("aria-selected", "true")
    page.get_by_role("tab", name="WhatsApp").click()
    expect(page).to_have_url(re.compile(rf"{path}\?tab=whatsapp$"))
    expect(page.get_by_role("tab", name="WhatsApp")).to_have_attribute("aria-selected", "true")
    page.get_by_role("tab", name="Email").click()
    expect(page).to_have_url(re.compile(r"\?tab=email$"))
    expect(page.get_by_role("tab", name="Email")).to_have_attribute("aria-selected", "true")

    page.go_back()
    expect(page).to_have_url(re.compile(r"\?tab=whatsapp$"))
    expect(page.get_by_role("tab", name="WhatsApp")).to_have_attribute("aria-selected", "true")
    page.reload()
    expect(page.get_by_role("tab", name="WhatsApp")).to_have_attribute("aria-selected", "true")
    page.go_forward()
    expect(page).to_have_url(re.compile(r"\?tab=email$"))
    expect(page.get_by_role("tab", name="Email")).to_have_attribute("aria-selected", "true")


def test_a_whatsapp_reply_opens_the_window_in_the_composer_without_a_reload(
    page: Page, live_app: Flask, live_server: str
) -> None:
    sign_in(page, "recruiter@acme.example")
    page.goto(application_path(live_app, "Ida Nielsen", "Backend Engineer") + "?tab=whatsapp")
    expect(page.get_by_role("radio", name="WhatsApp")).to_be_checked()
    note = page.locator("[data-wa-window]")
    expect(note).to_contain_text("outside the 24-hour window")
    expect(page.get_by_label("Message")).to_be_hidden()
    # An approved template shows what the candidate will read before it goes.
    page.get_by_label("Approved WhatsApp template").select_option(label="interview_invitation (en_GB)")
    preview = page.locator("[data-counter=template-preview]")
    expect(preview).to_contain_text("Hi Ida, this is Acme. We would like to invite you to an interview")
    expect(page.locator("[data-counter=credits]")).to_have_text("1 credit")
    shot(page, "whatsapp-template-preview")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg-outbound").last).to_contain_text("Hi Ida, this is Acme")

    reply(live_server, our_number(page), page.locator("#candidate-mobile").inner_text(), "Hej!", "whatsapp")
    expect(page.locator(".msg-inbound").last).to_contain_text("Hej!", timeout=4000)
    # With the reply, or (if the reply raced the page's read of the window) with the next poll.
    expect(note).to_contain_text("free text allowed", timeout=4000)
    expect(page.get_by_label("Message")).to_be_visible()
    expect(page.get_by_label("Approved WhatsApp template")).to_be_hidden()
    page.get_by_label("Message").fill("Hi Ida")
    expect(page.locator("[data-counter=characters]")).to_have_text("6 characters")
    shot(page, "whatsapp-window-open")


def test_an_older_count_answering_between_does_not_hide_the_newer_one(page: Page, live_app: Flask) -> None:
    """The page's first count (asked on load, for SMS) answering after Email was chosen, but before Email's
    count answered: the counter ends showing Email's.

    Both requests aim at the counter as it was when they left; the older one's answer replaced it, and the
    newer one's then went to a counter no longer on the page. That once left "Choose an approved template"
    under a chosen WhatsApp template."""
    held: list = []
    page.route(re.compile(r"/conversations/\d+/preview$"), lambda route: held.append(route))

    sign_in(page, "recruiter@acme.example")
    page.goto(application_path(live_app, "Ida Nielsen", "Backend Engineer") + "?tab=sms")
    expect(page.get_by_role("radio", name="SMS")).to_be_checked()
    page.wait_for_function("() => document.querySelector('.htmx-request') !== null")
    assert len(held) == 1 and "channel=sms" in (held[0].request.post_data or "")
    page.get_by_role("radio", name="Email").check()
    for _ in range(50):  # the route's handler runs while the page waits
        if len(held) == 2:
            break
        page.wait_for_timeout(100)
    assert "channel=email" in (held[1].request.post_data or "")
    for route in held:
        with contextlib.suppress(PlaywrightError):  # the page gave the older request up: nothing to answer
            route.continue_()
        page.wait_for_timeout(300)  # the older answer is in, and swapped, before the newer one comes
    expect(page.locator(".htmx-request")).to_have_count(0)
    counter = page.locator(".counter")
    expect(counter).to_contain_text("email is free")
    expect(counter.locator("[data-counter=units]")).to_have_count(0)


def test_the_credit_history_shows_the_filter_chosen_after_a_page_whatever_order_the_answers_come_in(
    page: Page, live_app: Flask
) -> None:
    """The next page asked for, then a filter chosen before the page came: the history ends showing the
    filter's rows, whichever answer arrives first (the same race as the composer's counter: the page's
    answer replaced #ledger, and the filter's then went to a ledger no longer on the page)."""
    with live_app.app_context():
        if db.session.scalar(sa.select(User).where(User.email == "admin@ledger.test")) is None:
            org = f.messaging_org("Ledger & Co")
            f.user(org, email="admin@ledger.test", codes=[permissions.ADMIN_CREDITS])
            for n in range(ledger.PER_PAGE + 5):  # two pages
                credits.top_up(db.session, org, 10, f"order {n}")
            db.session.commit()
    held: list = []
    page.route(re.compile(r"/admin/credits\?"), lambda route: held.append(route))
    page.goto("/login")
    page.get_by_label("Email").fill("admin@ledger.test")
    page.get_by_label("Password").fill(f.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/admin/credits")
    page.locator("#ledger").get_by_role("link", name="Older").click()
    page.wait_for_function("() => document.querySelector('.htmx-request') !== null")
    page.get_by_label("Type").select_option("debit")
    for _ in range(50):  # the route's handler runs while the page waits
        if len(held) == 2:
            break
        page.wait_for_timeout(100)
    assert "page=2" in held[0].request.url and "kind=debit" in held[1].request.url
    for route in held:
        with contextlib.suppress(PlaywrightError):  # the page gave the older request up: nothing to answer
            route.continue_()
        page.wait_for_timeout(300)
    expect(page.locator(".htmx-request")).to_have_count(0)
    # The filter's answer: no message was sent, so no row (page 2 of the refills would show five).
    expect(page.locator("#ledger-count")).to_have_text("0")
    expect(page.locator("#ledger-table tbody tr.kind-top_up")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"kind=debit"))


def test_simulate_a_reply_says_why_not_in_place_and_keeps_what_is_typed(page: Page, live_app: Flask) -> None:
    sign_in(page, "recruiter@acme.example")
    path = application_path(live_app, "Noah Miller", "Backend Engineer")
    page.goto(path + "?tab=sms")
    form = page.locator("form.simulate")
    form.get_by_role("button", name="Simulate a reply").click()
    expect(form.get_by_role("alert")).to_have_text("Send an SMS first: a reply needs our number.")
    expect(page).to_have_url(re.compile(rf"{path}\?tab=sms$"))

    page.get_by_label("Message").fill("Are you free on Monday?")
    page.get_by_role("button", name="Send").click()
    sent = page.locator(".msg-outbound").last
    expect(sent).to_contain_text("Are you free on Monday?")
    box = page.get_by_label("Simulated reply")
    box.fill("Monday is fine, after")
    # The simulator reports the SMS delivered: the thread is refreshed, the box keeps what is typed.
    expect(sent.locator(".status")).to_have_text("Delivered", timeout=6000)
    expect(box).to_have_value("Monday is fine, after")
    expect(form.get_by_role("alert")).to_have_count(1)  # until the next try
    box.fill("Monday is fine, after 10.")
    form.get_by_role("button", name="Simulate a reply").click()
    expect(page.locator(".msg-inbound").last).to_contain_text("Monday is fine, after 10.", timeout=3000)
    expect(form.get_by_role("alert")).to_have_count(0)


def test_the_console_watch_catches_a_csp_violation_and_axe_runs_under_csp(
    browser: Browser, live_server: str, axe_source: str
) -> None:
    """The watch itself can fail a test; axe, evaluated through the DevTools protocol, runs under a CSP."""
    strict = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"
    other = browser.new_page()
    try:
        watch = ConsoleWatch().attach(other)
        other.route(
            f"{live_server}/csp-probe",
            lambda route: route.fulfill(
                status=200,
                headers={"Content-Type": "text/html", "Content-Security-Policy": strict},
                body='<!doctype html><html lang="en"><head><title>Probe</title></head>'
                "<body><main><h1>Probe</h1><script>document.title = 'ran';</script></main></body></html>",
            ),
        )
        other.goto(f"{live_server}/csp-probe")
        assert other.title() == "Probe"
        assert any("Content Security Policy" in p for p in watch.problems), watch.problems
        assert axe_problems(other, axe_source) == []
    finally:
        other.close()


# Every page at 375 and 1366 px: nothing wider than the window, and no serious or critical axe finding.
# (who, [(name, path or a function of the live app giving it)]); "!" before a path: a 4xx is expected.
def on(name: str, job: str, tab: str = "") -> Callable[[Flask], str]:
    return lambda app: application_path(app, name, job) + (f"?tab={tab}" if tab else "")


AMELIA = ("Amelia Jones", "Backend Engineer")  # a long SMS thread, an email
LENA = ("Lena Müller", "Product Designer")  # WhatsApp inside its window
FELIX = ("Felix Fischer", "Data Analyst")  # texted STOP
EVERY_PAGE: dict[str, list[tuple[str, str | Callable[[Flask], str]]]] = {
    "anonymous": [
        ("login", "/login"),
        ("404-anonymous", "!/no-such-page"),
        ("set-password", lambda app: set_password_path(app, "jordan.blake@acme.example")),
        ("set-password-used", "!/set-password/not-a-live-link"),
        ("booking", lambda app: booking_path(app, "sent")),
        ("booking-booked", lambda app: booking_path(app, "booked")),
        ("booking-unknown", "!/book/not-a-live-booking-link"),
    ],
    "recruiter@acme.example": [
        ("jobs", "/jobs"),
        ("job", lambda app: job_path(app, "Backend Engineer")),
        ("job-slots", lambda app: job_path(app, "Backend Engineer") + "/slots"),
        ("invite", lambda app: invite_path(app, "Backend Engineer", 1)),
        ("invite-bulk", lambda app: invite_path(app, "Backend Engineer", 3)),
        *((f"application-{tab}", on(*AMELIA, tab)) for tab in ("sms", "email", "whatsapp")),
        ("application-whatsapp-open", on(*LENA, "whatsapp")),
        ("application-opted-out", on(*FELIX)),
        ("inbox", "/inbox"),
        ("403", "!/admin/"),
        ("403-admin-credits", "!/admin/credits"),
        ("404", "!/jobs/999999"),
    ],
    "manager@acme.example": [
        *((f"manager-application-{tab}", on(*AMELIA, tab)) for tab in ("sms", "email", "whatsapp")),
        ("manager-application-opted-out", on(*FELIX)),
    ],
    "admin@acme.example": [
        ("admin", "/admin/"),
        ("unmatched", "/admin/unmatched"),
        ("admin-numbers", "/admin/numbers"),
        ("admin-compliance", "/admin/compliance"),
        ("admin-compliance-de", "/admin/compliance/DE"),
        ("admin-compliance-fr", "/admin/compliance/FR"),
        ("admin-settings", "/admin/settings"),
        ("admin-people", "/admin/people"),
        ("admin-person-invited", lambda app: person_path(app, "jordan.blake@acme.example")),
        ("admin-roles", "/admin/roles"),
        ("admin-credits", "/admin/credits"),
        ("admin-credits-filtered", "/admin/credits?kind=debit"),
        ("admin-templates", "/admin/templates"),
        ("admin-template-new", "/admin/templates/new"),
        ("admin-template-invitation", lambda app: template_path(app, "Invitation to interview (SMS)")),
        ("admin-whatsapp-template-new", "/admin/templates/whatsapp/new"),
        ("403-staff", "!/staff/"),
    ],
    "csm@relay.example": [
        ("staff", "/staff/"),
        ("staff-organization", lambda app: staff_path(app, "Acme")),
        ("staff-submission-de", lambda app: staff_path(app, "Acme", "DE")),
        ("staff-number-health", "/staff/numbers/health"),
        (
            "staff-number-health-acme",
            lambda app: staff_path(app, "Acme").replace("organizations/", "numbers/health?org="),
        ),
        ("403-admin-numbers", "!/admin/numbers"),
    ],
    "recruiter@globex.example": [("globex-jobs", "/jobs")],
    # An email-only organisation: no texting tabs, sections or pages (issue 17).
    "admin@globex.example": [
        ("globex-admin", "/admin/"),
        ("globex-admin-settings", "/admin/settings"),
        ("globex-admin-templates", "/admin/templates"),
        ("globex-admin-template-new", "/admin/templates/new"),
        ("404-globex-admin-numbers", "!/admin/numbers"),
    ],
}


@pytest.mark.parametrize("who", list(EVERY_PAGE))
def test_every_page_fits_a_phone_and_passes_axe(
    page: Page, live_app: Flask, live_server: str, axe_source: str, who: str
) -> None:
    if who != "anonymous":
        sign_in(page, who)
    if who == "admin@acme.example":  # something to assign on Unmatched messages
        reply(live_server, "+447400123400", "+447700900123", "Is the job still open?")
    found: list[str] = []
    for name, where in EVERY_PAGE[who]:
        path = where(live_app) if callable(where) else where
        expected_error = path.startswith("!")
        path = path.lstrip("!")
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            response = page.goto(path)
            assert response is not None
            assert (response.status >= 400) == expected_error, (path, response.status)
            width = f"{size['width']}px"
            scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                found.append(f"{name} at {width}: {scroll} px wide in a window of {inner}")
            found += [f"{name} at {width}: {problem}" for problem in axe_problems(page, axe_source)]
            shot(page, f"page-{name}-{size['width']}")
    assert not found, "\n".join(found)


# --- Sending numbers and compliance documents (issue #11) ---------------------------------------------


def customer_with_a_french_number(app: Flask, name: str, e164: str) -> str:
    """A new customer with an admin and a French number (pending documents); returns the admin's email."""
    from tests import factories as f
    from webapp.models import User
    from webapp.numbers import pool

    email = f"admin@{name.lower()}.example"
    with app.app_context():
        org = f.messaging_org(name)
        admin = f.user(org, email, admin=True, name=f"{name} Admin")
        admin.set_password(demo.PASSWORD)
        staff = db.session.scalar(sa.select(User).where(User.email == "csm@relay.example"))
        assert pool.add(db.session, staff, org, e164, sms=True, whatsapp=False).status == "pending_documents"
        db.session.commit()
        db.session.remove()
    return email


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_an_admin_uploads_the_french_documents_and_staff_approve_them(
    page: Page, live_app: Flask, tmp_path: Path, size: dict
) -> None:
    page.set_viewport_size(size)
    width = size["width"]
    name, e164 = f"Initech{width}", f"+336123456{width % 100:02d}"
    email = customer_with_a_french_number(live_app, name, e164)
    scan = tmp_path / "extrait-kbis.pdf"
    scan.write_bytes(demo._demo_pdf(f"{name} SAS, RCS Paris 552 100 554"))
    bill = tmp_path / "facture-electricite.png"
    bill.write_bytes(Path(__file__).resolve().parent.parent.joinpath("static", "favicon.svg").read_bytes())

    sign_in(page, email)
    page.get_by_role("link", name="Admin").click()
    page.get_by_role("link", name="Compliance documents").click()
    page.get_by_role("link", name="France").click()
    expect(page.get_by_role("heading", name="France: proof of business")).to_be_visible()
    values = {
        "Business name": f"{name} SAS",
        "Business address": "1 rue de Rivoli, 75001 Paris",
        "Business registration number": "552 100 554",
        "Name of authorized representative": "Jeanne Dupont",
    }
    # A file that is not what its name says is refused next to the field, and the value typed stays.
    card = page.locator(".requirement", has=page.get_by_role("heading", name="Business address"))
    card.get_by_label("Business address in France").fill(values["Business address"])
    card.get_by_label("File (PDF, PNG or JPEG, at most 10 MB)").set_input_files(str(bill))
    card.get_by_role("button", name="Upload").click()
    card = page.locator(".requirement", has=page.get_by_role("heading", name="Business address"))
    expect(card.locator(".field-error")).to_contain_text("Only PDF, PNG or JPEG files are accepted")
    shot(page, f"compliance-refused-{width}")

    for requirement, value in values.items():
        card = page.locator(".requirement", has=page.get_by_role("heading", name=requirement, exact=True))
        card.locator("input[type=text]").fill(value)
        card.get_by_label("File (PDF, PNG or JPEG, at most 10 MB)").set_input_files(str(scan))
        card.get_by_role("button", name="Upload").click()
        expect(page.locator(".flash-success")).to_contain_text(f"{requirement}: extrait-kbis.pdf uploaded.")
    shot(page, f"compliance-uploaded-{width}")
    page.get_by_role("button", name="Submit documents").click()
    expect(page.locator(".flash-success")).to_contain_text("Submitted")
    expect(page.locator(".page-head .status")).to_have_text("Waiting for review")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, "csm@relay.example")
    page.get_by_role("link", name=f"{name} · France").click()
    expect(page.get_by_role("heading", name=f"{name}: France documents")).to_be_visible()
    shot(page, f"staff-review-{width}")
    for requirement in values:
        page.get_by_role("button", name=f"Approve {requirement.lower()}").click()
        expect(page.locator(".flash-success")).to_contain_text(f"{requirement}: approved.")
    expect(page.locator(".page-head .status")).to_have_text("Approved")
    expect(page.locator("#history")).to_contain_text("Number activated")
    shot(page, f"staff-approved-{width}")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, email)
    page.goto("/admin/numbers")
    row = page.locator("#pool tbody tr").first
    expect(row).to_contain_text("Active")
    shot(page, f"admin-numbers-active-{width}")


# --- Administration (issue #12) ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_an_admin_creates_an_sms_template_and_uses_it_from_the_composer(page: Page, size: dict) -> None:
    page.set_viewport_size(size)
    width = size["width"]
    name = f"Quick call ({width})"
    sign_in(page, "admin@acme.example")
    page.get_by_role("link", name="Admin").click()
    page.get_by_role("link", name="Candidate contact").click()
    page.get_by_role("link", name="New template").click()
    expect(page.get_by_role("heading", name="New template")).to_be_visible()

    page.get_by_label("Name").fill(name)
    page.get_by_role("radio", name="SMS").check()
    body = page.get_by_label("Text")
    # Placeholders go in at the cursor.
    body.fill("Hi , are you free for a call about ?")
    body.evaluate("el => el.setSelectionRange(3, 3)")
    page.get_by_role("button", name="%FIRSTNAME%").click()
    body.evaluate("el => el.setSelectionRange(el.value.length - 1, el.value.length - 1)")
    page.get_by_role("button", name="%JOBTITLE%").click()
    expect(body).to_have_value("Hi %FIRSTNAME%, are you free for a call about %JOBTITLE%?")
    preview = page.locator("#template-preview")
    expect(preview.locator("[data-preview=text]")).to_have_text(
        "Hi Alex, are you free for a call about Backend Engineer?"
    )
    expect(preview.locator("[data-counter=segments]")).to_have_text("1 segment")
    expect(preview.locator("[data-counter=credits]")).to_have_text("1 credit")

    # An interview invitation by SMS needs the booking link: said while typing, and refused next to the text.
    page.get_by_label("Kind").select_option(label="Interview invitation")
    expect(preview.locator("[data-preview=problem]")).to_contain_text("must contain %INVITELINK%")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".field-error#body-error")).to_contain_text("must contain %INVITELINK%")
    expect(page.get_by_label("Name")).to_have_value(name)
    shot(page, f"template-refused-{width}")
    page.get_by_label("Kind").select_option(label="General")
    body.press("End")
    body.type(" %NAME%")
    expect(preview.locator("[data-preview=unknown]")).to_contain_text("%NAME%")
    body.fill("Hi %FIRSTNAME%, are you free for a call about %JOBTITLE%?")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Template “{name}” saved.")
    expect(page.locator("#templates-sms")).to_contain_text(name)
    shot(page, f"templates-{width}")

    # A recruiter-to-be: the admin sees every job and writes from the composer with it.
    page.get_by_role("link", name="Jobs").click()
    page.get_by_role("link", name="Customer Success Manager").click()
    page.locator("#applications tbody tr").nth(1 if width == 375 else 0).get_by_role("link").click()
    expect(page.locator(".panel")).to_be_visible()
    first_name = page.locator("h1").inner_text().split()[0]
    page.get_by_label("Template", exact=True).select_option(label=f"SMS · {name}")
    expect(page.get_by_role("radio", name="SMS")).to_be_checked()
    expect(page.get_by_label("Message")).to_have_value(
        "Hi %FIRSTNAME%, are you free for a call about %JOBTITLE%?"
    )
    expect(page.locator("[data-counter=credits]")).to_have_text("1 credit")
    shot(page, f"composer-with-template-{width}")
    page.get_by_role("button", name="Send").click()
    sent = page.locator(".messages .msg-outbound").last
    expect(sent).to_contain_text(f"Hi {first_name}, are you free for a call about Customer Success Manager?")


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["375", "1366"])
def test_an_admin_invites_a_colleague_who_sets_a_password_and_is_signed_in(
    page: Page, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, "admin@acme.example")
    page.goto("/admin/people")
    invite = page.locator("#invite")
    invite.get_by_label("Name").fill("Robin Invited")
    invite.get_by_label("Email").fill("recruiter@acme.example")
    invite.get_by_role("button", name="Invite").click()
    expect(page.locator("#invite .field-error")).to_contain_text("already has a Relay account")
    page.locator("#invite").get_by_label("Email").fill(f"robin.invited.{width}@acme.example")
    page.locator("#invite").get_by_label("Recruiter").check()
    page.locator("#invite").get_by_role("button", name="Invite").click()
    # The live server has no SMTP_URL: the page says the link was not emailed.
    expect(page.locator("#new-link-sent")).to_contain_text("no mail server is set up")
    link = page.locator("#new-link-url").input_value()
    # The link is made for PUBLIC_BASE_URL (where candidates and colleagues reach Relay); here, its path.
    assert link.startswith("http://127.0.0.1:5000/set-password/")
    copy = page.locator("#new-link button[data-copy]")
    expect(copy).to_have_text("Copy link")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == link
    scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner
    assert axe_problems(page, axe_source) == []
    shot(page, f"people-invited-{width}")
    link = link.removeprefix("http://127.0.0.1:5000")

    # The admin tries the link in their own browser: they are signed out, and Robin is signed in.
    page.goto(link)
    page.get_by_label("New password").fill("a-long-enough-secret")
    page.get_by_label("The same again").fill("a-long-enough-secret")
    page.get_by_role("button", name="Set password").click()
    expect(page.locator(".flash-success")).to_contain_text("Your password is set, Robin Invited")
    expect(page.get_by_role("heading", name="Jobs", level=1)).to_be_visible()  # on no team yet
    expect(page.locator(".whoami .who")).to_contain_text("Robin Invited")
    shot(page, f"invited-signed-in-{width}")
    # The link worked once.
    response = page.goto(link)
    assert response is not None and response.status == 404


# --- Send later and quiet hours (issue #20) ------------------------------------------------------------
# Here, not in a module of its own: the test changes the served app's settings and data, and a browser
# module of its own would get a live app of its own while its pages went to this module's server (the
# browser context's base URL is made once per session).

DAAN = ("Daan Jansen", "Sales Development Representative")  # a Dutch mobile


@pytest.fixture
def closed_hours(live_app: Flask) -> Iterator[None]:
    """Acme's texts go on one day only, neither yesterday, today nor tomorrow anywhere on earth."""
    other_day = str((datetime.now(UTC).isoweekday() + 2) % 7 + 1)
    with live_app.app_context():
        acme = db.session.scalar(sa.select(Organization).where(Organization.name == "Acme"))
        saved, acme.send_days = acme.send_days, other_day
        db.session.commit()
        db.session.remove()
    live_app.config["QUIET_HOURS"] = True
    try:
        yield
    finally:
        live_app.config["QUIET_HOURS"] = False
        with live_app.app_context():
            acme = db.session.scalar(sa.select(Organization).where(Organization.name == "Acme"))
            acme.send_days = saved
            db.session.commit()
            db.session.remove()


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_a_texan_candidates_hours_are_said_on_both_clocks_before_send(
    page: Page, live_app: Flask, axe_source: str, size: dict, closed_hours: None
) -> None:
    """Reads only: the counter for the demo's Texan candidate (a 512 number), in Berlin's organisation."""
    width = size["width"]
    page.set_viewport_size(size)
    sign_in(page, "admin@acme.example")
    page.goto(application_path(live_app, "Emma Johnson", "Data Analyst") + "?tab=sms")
    form = page.locator("form.composer")
    form.get_by_label("Message").fill("Hi Emma, are you free for a call?")
    said = form.locator("[data-counter=hours]")
    expect(said).to_have_attribute("data-hours", "moved")
    expect(said).to_contain_text(
        re.compile(r"^It is \d\d:\d\d in Texas\. Sends .* their time · .* your time\.")
    )
    # The law's hours, by name, or the organisation's (which a reason sets aside): whichever holds it now.
    expect(said).to_contain_text(
        re.compile(r"Texas law allows texts|To send now, give a reason under Send later")
    )
    assert axe_problems(page, axe_source) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, f"send-later-texas-{width}")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_a_text_outside_their_hours_waits_for_their_morning_and_can_be_edited_and_cancelled(
    page: Page, live_app: Flask, axe_source: str, size: dict, closed_hours: None
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    sign_in(page, "recruiter@acme.example")
    page.goto(application_path(live_app, *DAAN) + "?tab=sms")
    form = page.locator("form.composer")
    form.get_by_label("Message").fill("Hi Daan, are you free for a call?")
    said = form.locator("[data-counter=hours]")
    expect(said).to_have_attribute("data-hours", "moved")
    expect(said).to_contain_text("Sends ")
    expect(said).to_contain_text("their time. To send now, give a reason under Send later.")
    form.locator("summary", has_text="Send later").click()
    expect(form.get_by_role("button", name="In 1 hour")).to_be_visible()
    # The quick choices come again with each count (out of band): still there, and they still work.
    expect(form.locator(".quick-times")).to_have_count(1)
    form.get_by_role("button", name="In 1 hour").click()
    expect(said).to_have_attribute("data-hours", "refused")  # an hour on, it is still night for Daan
    form.get_by_role("button", name="Now").click()
    expect(said).to_have_attribute("data-hours", "moved")
    assert axe_problems(page, axe_source) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, f"send-later-said-{width}")

    form.get_by_role("button", name="Send").click()
    scheduled = page.locator("li.msg", has=page.locator(".status-scheduled"))
    expect(scheduled).to_have_count(1)
    expect(scheduled).to_contain_text("Hi Daan, are you free for a call?")
    expect(scheduled.locator(".status-scheduled")).to_contain_text("Scheduled for")

    scheduled.locator("summary", has_text="Edit").click()
    scheduled.get_by_label("Message").fill("Hi Daan, are you free for a call on Friday?")
    scheduled.get_by_role("button", name="Save").click()
    expect(scheduled).to_contain_text("on Friday?")
    expect(scheduled).to_have_count(1)
    assert axe_problems(page, axe_source) == []
    shot(page, f"send-later-scheduled-{width}")

    scheduled.get_by_role("button", name="Cancel it").click()
    expect(scheduled).to_have_count(0)
    expect(page.locator("[data-cancelled]").last).to_contain_text("Cancelled: not sent.")


def a_scheduled_text_of_our_own(app: Flask) -> str:
    """A Texan candidate new to this test, on one of the recruiter's jobs (never a conversation another
    browser test reads: the live app is the session's), with an SMS scheduled for tomorrow: the path of
    their application."""
    from datetime import timedelta

    from webapp.messaging import compose, subjects
    from webapp.models import HiringTeamMember

    with app.app_context():
        recruiter = db.session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
        job = db.session.scalars(
            sa.select(Job)
            .join(HiringTeamMember, HiringTeamMember.job_id == Job.id)
            .where(HiringTeamMember.user_id == recruiter.id)
            .order_by(Job.id.desc())
        ).first()
        assert job is not None
        n = db.session.scalar(sa.select(sa.func.count(Candidate.id)))
        candidate = Candidate(
            organization_id=job.organization_id,
            first_name="Tess",
            last_name="Ortega",
            email=f"tess.ortega{n}@example.test",
            mobile=f"+151255501{n % 100:02d}",  # Austin, Texas
        )
        application = Application(job=job, candidate=candidate)
        db.session.add_all([candidate, application])
        db.session.flush()
        compose.compose(
            db.session,
            recruiter,
            subjects.of_application(application),
            "sms",
            "Hi %FIRSTNAME%, are you free for a call on Thursday?",
            send_at=datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1),
        )
        db.session.commit()
        path = f"/applications/{application.id}"
        db.session.remove()
    return path


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_the_edit_form_of_a_scheduled_text_is_the_composers_with_both_clocks_and_quick_choices(
    page: Page, live_app: Flask, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    sign_in(page, "recruiter@acme.example")
    page.goto(a_scheduled_text_of_our_own(live_app) + "?tab=sms")
    scheduled = page.locator("li.msg", has=page.locator(".status-scheduled"))
    expect(scheduled).to_have_count(1)
    scheduled.locator("summary", has_text="Edit").click()
    # Its time on both clocks: Tess's in Texas, and the writer's (Acme's, Berlin).
    when = scheduled.locator("[data-scheduled-when]")
    expect(when).to_have_text(re.compile(r"^Sends \w{3} \d\d:\d\d in Texas · \w{3} \d\d:\d\d your time\.$"))
    expect(
        scheduled.get_by_role("button", name=re.compile(r"^Their morning \(\w{3} 09:00 in Texas\)$"))
    ).to_be_visible()
    # Styled as the composer's fields: the text in the page's font, not the browser's monospace.
    text = scheduled.get_by_label("Message")
    body_font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert text.evaluate("e => getComputedStyle(e).fontFamily") == body_font
    assert text.evaluate("e => getComputedStyle(e).borderRadius") == "6px"
    assert axe_problems(page, axe_source) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, f"scheduled-edit-{width}")

    # A quick choice fills Send at, and the line says when that is on both clocks before Save.
    before, status = when.inner_text(), scheduled.locator(".status-scheduled").inner_text()
    scheduled.get_by_role("button", name="In 1 hour").click()
    expect(when).not_to_have_text(before)
    expect(when).to_have_text(re.compile(r"^Sends \w{3} \d\d:\d\d in Texas · \w{3} \d\d:\d\d your time\.$"))
    field = scheduled.get_by_label(re.compile("^Send at"))
    assert field.input_value() == scheduled.get_by_role("button", name="In 1 hour").get_attribute(
        "data-send-at"
    )
    scheduled.get_by_role("button", name="Save").click()
    expect(scheduled.locator(".status-scheduled")).not_to_have_text(status, timeout=5_000)
    assert axe_problems(page, axe_source) == []
    shot(page, f"scheduled-edit-saved-{width}")


# --- Follow up if no reply (issue 20 §3) ------------------------------------------------------------------
# The composer's follow-up part (a template fills its text), Send puts the pending follow-up in the
# thread, and the candidate's reply (a signed inbound webhook) cancels it. QUIET_HOURS is off here.


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_a_follow_up_waits_in_the_thread_until_their_reply_cancels_it(
    page: Page, live_app: Flask, live_server: str, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    sign_in(page, "recruiter@acme.example")
    page.goto(application_path(live_app, *DAAN) + "?tab=sms")
    form = page.locator("form.composer")
    form.get_by_label("Message").fill("Hi Daan, are you free for a call this week?")
    form.locator("summary", has_text="Follow up if no reply").click()
    form.get_by_label("If no reply in").fill("2")
    picker = form.locator("select[data-follow-up-template-for]")
    nudge = picker.locator("option[data-channel=sms]").first
    picker.select_option(nudge.get_attribute("value"))
    follow = form.get_by_label("Then send")
    expect(follow).to_have_value(nudge.get_attribute("data-body") or "")
    follow.fill("Hi %FIRSTNAME%, just checking you saw my message?")
    assert axe_problems(page, axe_source) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, f"follow-up-form-{width}")

    form.get_by_role("button", name="Send").click()
    pending = page.locator("li.msg", has=page.locator(".status-scheduled"))
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("Hi Daan, just checking you saw my message?")
    expect(pending.locator(".status-scheduled")).to_contain_text("Follow-up if no reply · Scheduled for")
    expect(page.locator("form.composer").get_by_label("Then send")).to_have_value("")
    assert axe_problems(page, axe_source) == []
    shot(page, f"follow-up-pending-{width}")

    reply(
        live_server, our_number(page), page.locator("#candidate-mobile").inner_text(), "Yes, Thursday works"
    )
    expect(pending).to_have_count(0, timeout=10_000)
    expect(page.locator("[data-cancelled=replied]").last).to_contain_text(
        "Follow-up not sent: they replied on"
    )
    assert axe_problems(page, axe_source) == []
    shot(page, f"follow-up-replied-{width}")


# --- Smart encoding (issue 22 §2) -------------------------------------------------------------------------
# One curly apostrophe makes the SMS UCS-2: the counter offers plain quotes and dashes as a button, whose
# click changes the text in the box (then counted again, as if typed); the template editor offers the same.

CURLY_TEXT = (
    "Hi %FIRSTNAME%, we’d love to talk about the role this week. Are you free for a quick call on "
    "Thursday afternoon?"
)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_one_click_turns_a_curly_apostrophe_into_a_plain_one_and_one_segment(
    page: Page, live_app: Flask, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    sign_in(page, "recruiter@acme.example")
    page.goto(application_path(live_app, *DAAN) + "?tab=sms")
    form = page.locator("form.composer")
    form.get_by_role("radio", name="SMS").check()
    message = form.get_by_label("Message")
    typed = CURLY_TEXT + "\n\nRiley"  # lines too: the field's text must match what the offer was made for
    message.fill(typed)
    counter = form.locator(".counter")
    expect(counter.locator("[data-counter=segments]")).to_have_text("2 segments")
    offer = counter.get_by_role("button", name="Use plain quotes and dashes: 2 segments → 1, saves 1 credit")
    expect(offer).to_be_visible()
    expect(counter.locator("[data-counter=plain-changes]")).to_have_text("’ becomes '.")
    assert axe_problems(page, axe_source) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, f"plain-offer-{width}")

    offer.click()
    expect(message).to_have_value(typed.replace("’", "'"))
    expect(message).to_be_focused()  # the button is gone with the old count: the writer is back in the text
    expect(counter.locator("[data-counter=segments]")).to_have_text("1 segment")
    expect(counter.locator("[data-counter=units]")).to_have_text(re.compile(r"^\d+ of 160 GSM-7 units$"))
    expect(counter.locator("[data-counter=credits]")).to_have_text("1 credit")
    expect(counter.locator("[data-counter=plain]")).to_have_count(0)
    assert axe_problems(page, axe_source) == []
    shot(page, f"plain-offer-taken-{width}")

    # An emoji is named as ever, and no offer stands beside it.
    message.fill(typed + " 🙂")
    expect(counter.locator("[data-counter=ucs2]")).to_contain_text("🙂")
    expect(counter.locator("[data-counter=plain]")).to_have_count(0)

    # The follow-up's text gets an offer of its own, which changes that text only.
    message.fill("Hi Daan, are you free this week?")
    form.locator("summary", has_text="Follow up if no reply").click()
    follow = form.get_by_label("Then send")
    follow.fill("Hi %FIRSTNAME%, just checking you saw my message – we’d love to hear back from you soon!")
    counter.get_by_role(
        "button", name=re.compile(r"^Use plain quotes and dashes in the follow-up: 2 segments → 1")
    ).click()
    expect(follow).to_have_value(
        "Hi %FIRSTNAME%, just checking you saw my message - we'd love to hear back from you soon!"
    )
    expect(message).to_have_value("Hi Daan, are you free this week?")
    expect(counter.locator("[data-counter=follow-up]")).to_contain_text("1 segment")
    expect(counter.locator("[data-counter^=plain]")).to_have_count(0)
    follow.fill("")
    message.fill("")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_a_template_saved_with_curly_quotes_is_offered_plain_ones(
    page: Page, axe_source: str, size: dict
) -> None:
    width = size["width"]
    name = f"Call this week ({width})"
    curly = CURLY_TEXT.replace("we’d", "we’d “really”")
    page.set_viewport_size(size)
    sign_in(page, "admin@acme.example")
    page.goto("/admin/templates/new?channel=sms")
    page.get_by_label("Name").fill(name)
    body = page.get_by_label("Text")
    body.fill(curly)
    preview = page.locator("#template-preview")
    offer = preview.get_by_role("button", name="Use plain quotes and dashes: 2 segments → 1, saves 1 credit")
    expect(offer).to_be_visible()
    # Saving as it is stays allowed; the list then says what its look-alikes cost, with the way back.
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Template “{name}” saved.")
    row = page.locator("#templates-sms li", has_text=name)
    expect(row.locator(".plain-note")).to_contain_text(
        "UCS-2 only because of ’, “ and ”: 2 segments, 1 with plain quotes and dashes."
    )
    assert axe_problems(page, axe_source) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, f"plain-offer-template-list-{width}")

    row.get_by_role("link", name=f"Change it ({name})").click()
    expect(offer).to_be_visible()
    assert axe_problems(page, axe_source) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, f"plain-offer-template-{width}")
    offer.click()
    expect(body).to_have_value(CURLY_TEXT.replace("we’d", 'we\'d "really"').replace("’", "'"))
    expect(preview.locator("[data-counter=segments]")).to_have_text("1 segment")
    expect(preview.locator("[data-counter=plain]")).to_have_count(0)
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Template “{name}” saved.")
    expect(page.locator("#templates-sms li", has_text=name).locator(".plain-note")).to_have_count(0)


# --- Assignment, internal notes and @mentions (issue 21) -------------------------------------------------

# Data Analyst's team is the recruiter's and the manager's: one conversation per size, nobody's yet.
TEAM_THREADS = {"1366": ("Giulia Ferrari", "Data Analyst"), "375": ("Jakob Johansen", "Data Analyst")}


def conversation_id_of(app: Flask, name: str, job: str) -> int:
    from webapp.models import Conversation

    application_id = int(application_path(app, name, job).rsplit("/", 1)[1])
    with app.app_context():
        found = db.session.scalar(
            sa.select(Conversation.id).where(Conversation.application_id == application_id)
        )
        assert found is not None
        return found


def unread_for(app: Flask, email: str, conversation_id: int) -> int:
    from webapp.models import ConversationState

    with app.app_context():
        user_id = db.session.scalar(sa.select(User.id).where(User.email == email))
        state = db.session.get(ConversationState, (user_id, conversation_id))
        return state.unread if state else 0


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_assign_from_the_pane_and_mention_a_colleague_in_a_note_by_keyboard(
    page: Page, live_app: Flask, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    cid = conversation_id_of(live_app, *TEAM_THREADS[str(width)])
    sign_in(page, "recruiter@acme.example")
    page.goto(f"/inbox?c={cid}")
    pane = page.locator("#inbox-thread")

    def looks_right(name: str) -> None:
        assert axe_problems(page, axe_source) == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
        shot(page, f"{name}-{width}")

    # Assign it to a colleague: the form says so, the thread has the line, the row the assignee.
    chooser = pane.get_by_label("Assigned to")
    expect(chooser).to_have_value("")
    chooser.select_option(label="Morgan Patel")
    pane.get_by_role("button", name="Assign").click()
    expect(pane.locator(f"#assign-done-{cid}")).to_have_text("Assigned to Morgan Patel.")
    expect(pane.locator("[data-assignment=assigned]").last).to_contain_text(
        "Riley Chen assigned this to Morgan Patel"
    )
    expect(page.locator(f"#inbox-row-{cid} [data-assignee]")).to_have_text("Assigned to Morgan Patel")
    looks_right("assigned")
    # Take it back.
    pane.get_by_label("Assigned to").select_option(label="Riley Chen (you)")
    pane.get_by_role("button", name="Assign").click()
    expect(pane.locator("[data-assignment=assigned]").last).to_contain_text("Riley Chen took this")
    expect(page.locator(f"#inbox-row-{cid} [data-assignee]")).to_have_text("Assigned to you")

    # A note with a mention, by keyboard: @ and the start of a name offers the people who may see it. The
    # field says so, and is a textbox with a listbox popup (a textarea may have no combobox role).
    note = pane.get_by_label("Internal note")
    expect(note).to_have_accessible_description(
        "Only your team sees notes; they are never sent. "
        "Type @ and a name to mention a colleague: they are told in Relay, and by email if they chose to be."
    )
    expect(note).to_have_attribute("aria-autocomplete", "list")
    expect(note).to_have_attribute("aria-haspopup", "listbox")
    expect(note).to_have_attribute("aria-controls", f"mention-list-{cid}")
    note.click()
    note.press_sequentially("Please check her SQL test, @mor")
    people = pane.get_by_role("listbox", name="People to mention")
    expect(people).to_be_visible()
    morgan = people.get_by_role("option", name="Morgan Patel")
    expect(morgan).to_have_attribute("aria-selected", "true")
    expect(note).to_have_attribute("aria-activedescendant", re.compile(rf"^mention-{cid}-\d+$"))
    expect(people.get_by_role("option", name="Riley Chen")).to_be_hidden()
    looks_right("note-mention-list")
    note.press("Enter")
    expect(people).to_be_hidden()
    expect(note).to_have_value("Please check her SQL test, @Morgan Patel ")
    # Escape closes the list without choosing; arrows move through it.
    note.press_sequentially("@")
    expect(people).to_be_visible()
    note.press("ArrowDown")
    note.press("Escape")
    expect(people).to_be_hidden()
    note.press("Backspace")
    note.press_sequentially("thanks https://example.com/sql")
    pane.get_by_role("button", name="Add note").click()
    box = pane.locator("li.thread-note").last
    expect(box).to_contain_text("Please check her SQL test, @Morgan Patel thanks")
    expect(box).to_contain_text("Internal note")
    expect(box.get_by_role("link", name="https://example.com/sql")).to_have_attribute(
        "href", "https://example.com/sql"
    )
    expect(pane.get_by_label("Internal note")).to_have_value("")
    assert unread_for(live_app, "manager@acme.example", cid) > 0
    looks_right("note-added")

    # Someone who cannot see the conversation (the sourcer): refused beside the field, the text kept.
    typed = "@Sam Okafor could you source more like her?"
    pane.get_by_label("Internal note").fill(typed)
    pane.get_by_role("button", name="Add note").click()
    expect(pane.locator(f"#note-error-{cid}")).to_contain_text("Sam Okafor cannot see this conversation")
    expect(pane.get_by_label("Internal note")).to_have_value(typed)
    looks_right("note-refused")


# --- Notifications (issue 21 §1) ------------------------------------------------------------------------
# The top bar's count of what waits for me lives on the poll the page already has: on an application page
# the thread's poll, on the jobs list (no poll of its own) the light one in base.html. The requests the
# page makes over a few poll periods are counted: one poll, never two. With desktop alerts turned on (a
# click, never on load), each new reply shows one alert, in a conversation already unread too (the count
# stays); nothing is asked of anyone but Relay.

RECORD_ALERTS = """(() => {
  window.__alerts = [];
  window.__asked = 0;
  if (!("Notification" in window)) return;
  const Real = window.Notification;
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__alerts.push([title, options && options.body]);
    }
  }
  Recorded.requestPermission = (...args) => { window.__asked += 1; return Real.requestPermission(...args); };
  window.Notification = Recorded;
})();"""


def a_reply_for_the_recruiter(app: Flask, not_in: int | None = None, into: int | None = None) -> int:
    """An inbound message lands (as a webhook would store it) in a new conversation of one of the
    recruiter's jobs (never one another browser test reads: the live app is the session's): their count
    goes up by one. `not_in`: the conversation open on the page, which this never is. `into`: a
    conversation this made before, unread still: another reply there, the count unchanged. Returns the
    conversation's id."""
    from webapp.inbox import changes as activity
    from webapp.models import Application, Candidate, Conversation, HiringTeamMember, Job, Message

    if into is not None:
        with app.app_context():
            conversation = db.session.get(Conversation, into)
            message = Message(conversation_id=into, channel="sms", direction="inbound", body="And?")
            message.status = "received"
            db.session.add(message)
            db.session.flush()
            activity.record(db.session, conversation, message)
            db.session.commit()
            db.session.remove()
        return into
    with app.app_context():
        recruiter = db.session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
        job = db.session.scalars(
            sa.select(Job)
            .join(HiringTeamMember, HiringTeamMember.job_id == Job.id)
            .where(HiringTeamMember.user_id == recruiter.id)
            .order_by(Job.id.desc())
        ).first()
        assert job is not None
        # Reachable like the demo's candidates, should another test tick them on the job's list.
        n = db.session.scalar(sa.select(sa.func.count(Candidate.id)))
        candidate = Candidate(
            organization_id=job.organization_id,
            first_name="Noor",
            last_name="Haddad",
            email=f"noor.haddad{n}@example.test",
        )
        application = Application(job=job, candidate=candidate)
        db.session.add_all([candidate, application])
        db.session.flush()
        conversation = Conversation(organization_id=job.organization_id, application_id=application.id)
        db.session.add(conversation)
        db.session.flush()
        assert conversation.id != not_in
        message = Message(conversation_id=conversation.id, channel="sms", direction="inbound", body="News?")
        message.status = "received"
        db.session.add(message)
        db.session.flush()
        activity.record(db.session, conversation, message)
        db.session.commit()
        found = conversation.id
        db.session.remove()
    return found


def polls_of(asked: list[str]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for url in asked:
        path = re.sub(r"\?.*", "", url.split("//", 1)[1].split("/", 1)[1])
        path = re.sub(r"\d+", "<id>", path)
        counted[path] = counted.get(path, 0) + 1
    return counted


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_the_top_bar_count_is_live_on_the_pages_one_poll_and_alerts_on_a_click(
    page: Page, live_app: Flask, live_server: str, axe_source: str, size: dict
) -> None:
    width = size["width"]
    live_app.config["WAITING_POLL_SECONDS"] = 1  # the light poll, quicker than its 10 s for the test
    try:
        page.context.add_init_script(RECORD_ALERTS)
        page.set_viewport_size(size)
        sign_in(page, "recruiter@acme.example")
        page.goto(application_path(live_app, "Noah Miller", "Backend Engineer"))
        badge = page.locator("#waiting")
        expect(badge).to_be_visible()
        before = int(badge.get_attribute("data-count"))
        assert page.evaluate("window.__asked") == 0  # never asked on load
        alerts = page.get_by_role("banner").get_by_role("button", name="Turn on desktop alerts")
        if width > 600:
            alerts.click()  # the visible control asks the browser
            assert page.evaluate("window.__asked") == 1
        else:
            expect(alerts).to_be_hidden()  # on a phone the control is on the settings page (below)
        page.context.grant_permissions(["notifications"], origin=live_server)
        assert axe_problems(page, axe_source) == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        # Over three poll periods of the thread (2 s): the reply elsewhere shows in the top bar, and the
        # page asked nothing but its thread's poll.
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if r.resource_type in ("xhr", "fetch") else None)
        open_id = int(page.locator(".thread-wrap").get_attribute("id").removeprefix("thread-"))
        noor = a_reply_for_the_recruiter(live_app, not_in=open_id)
        expect(page.locator("#waiting-count")).to_have_text(str(before + 1), timeout=4000)
        page.wait_for_timeout(4000)
        counted = polls_of(asked)
        assert set(counted) == {"conversations/<id>/thread"}, counted
        assert 3 <= counted["conversations/<id>/thread"] <= 5, counted
        alerted = ["Relay: a new reply", f"{before + 1} conversations waiting for you"]
        assert page.evaluate("window.__alerts") == [alerted]
        # A second reply in that conversation, unread already: the count stays, and it is news all the same.
        a_reply_for_the_recruiter(live_app, into=noor)
        for _ in range(40):  # the thread's poll is every 2 s (wait_for_function would need eval: the CSP)
            if len(page.evaluate("window.__alerts")) > 1:
                break
            page.wait_for_timeout(100)
        assert page.evaluate("window.__alerts") == [alerted, alerted]
        expect(page.locator("#waiting-count")).to_have_text(str(before + 1))
        shot(page, f"waiting-application-{width}")

        # The jobs list has no poll of its own: the top bar's light one, and only it.
        to_jobs(page)
        asked.clear()
        a_reply_for_the_recruiter(live_app)
        expect(page.locator("#waiting-count")).to_have_text(str(before + 2), timeout=4000)
        page.wait_for_timeout(3000)
        counted = polls_of(asked)
        assert set(counted) == {"notifications/waiting"}, counted
        assert 3 <= counted["notifications/waiting"] <= 6, counted
        assert axe_problems(page, axe_source) == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot(page, f"waiting-jobs-{width}")

        # The person's own settings: the email choice, their hours, and the browser's alerts.
        # From the foot of any page.
        page.get_by_role("contentinfo").get_by_role("link", name="Your notifications").click()
        expect(page.get_by_role("heading", name="Your notifications", level=1)).to_be_visible()
        expect(page.locator("[data-alerts-state]")).to_have_text("Desktop alerts are on in this browser.")
        page.get_by_label("An hourly digest").check()
        page.get_by_label("Until").fill("17:00")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
        expect(page.get_by_label("An hourly digest")).to_be_checked()
        assert axe_problems(page, axe_source) == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot(page, f"notification-settings-{width}")
    finally:
        live_app.config["WAITING_POLL_SECONDS"] = 10
        with live_app.app_context():
            recruiter = db.session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
            recruiter.notify_email, recruiter.work_until = "now", datetime(2000, 1, 1, 18).time()
            db.session.commit()
            db.session.remove()


# Chrome on Android: the API is there and permission can be granted, but a page may not make a
# notification (only a service worker may): its constructor throws.
PAGE_CANNOT_NOTIFY = """(() => {
  if (!("Notification" in window)) return;
  const Real = window.Notification;
  function Refusing() { throw new TypeError("Failed to construct 'Notification': Illegal constructor."); }
  Object.defineProperty(Refusing, "permission", { get: () => Real.permission });
  Refusing.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Refusing;
})();"""


def test_a_browser_that_cannot_notify_from_a_page_is_told_so_not_broken(
    page: Page, live_app: Flask, live_server: str
) -> None:
    live_app.config["WAITING_POLL_SECONDS"] = 1
    try:
        page.context.add_init_script(PAGE_CANNOT_NOTIFY)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.context.grant_permissions(["notifications"], origin=live_server)
        sign_in(page, "recruiter@acme.example")
        to_jobs(page)
        before = int(page.locator("#waiting").get_attribute("data-count"))
        a_reply_for_the_recruiter(live_app)
        expect(page.locator("#waiting-count")).to_have_text(str(before + 1), timeout=4000)
        page.wait_for_timeout(500)
        assert errors == []  # the alert that could not be made is no error on the page
        page.get_by_role("contentinfo").get_by_role("link", name="Your notifications").click()
        expect(page.locator("[data-alerts-state]")).to_have_text("This browser cannot show desktop alerts.")
    finally:
        live_app.config["WAITING_POLL_SECONDS"] = 10


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_desktop_alerts_say_what_a_click_does_and_when_the_browser_blocks_them(
    page: Page, live_server: str, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.context.add_init_script(RECORD_ALERTS)
    page.set_viewport_size(size)
    sign_in(page, "recruiter@acme.example")
    to_jobs(page)
    top = page.get_by_role("banner")
    turn_on = top.get_by_role("button", name="Turn on desktop alerts", exact=True)
    blocked = top.get_by_role("link", name="Desktop alerts blocked by the browser", exact=True)
    state = page.locator("[data-alerts-state]")

    def looks_right(name: str) -> None:
        assert axe_problems(page, axe_source) == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
        shot(page, f"{name}-{width}")

    if width > 600:
        expect(turn_on).to_be_visible()
        looks_right("alerts-off-top-bar")
        turn_on.click()  # headless Chromium refuses, as a person answering "Block" would
        assert page.evaluate("window.__asked") == 1
        expect(turn_on).to_be_hidden()
        expect(blocked).to_be_visible()
        looks_right("alerts-blocked-top-bar")
        blocked.click()  # to the settings page, which says how to allow them
        expect(page.get_by_role("heading", name="In this browser")).to_be_visible()
    else:
        # No room on a phone's top bar: the notification settings (at the foot of every page) offer it.
        expect(turn_on).to_be_hidden()
        page.get_by_role("contentinfo").get_by_role("link", name="Your notifications").click()
        offered = page.get_by_role("main").get_by_role("button", name="Turn on desktop alerts", exact=True)
        expect(offered).to_be_visible()
        expect(state).to_have_text("Desktop alerts are off in this browser.")
        looks_right("alerts-off-settings")
        offered.click()
        assert page.evaluate("window.__asked") == 1
        expect(offered).to_be_hidden()
    expect(state).to_contain_text("Desktop alerts are blocked by this browser. To allow them")
    looks_right("alerts-blocked-settings")

    # Allowed in the browser's own site settings: the page follows without a reload, and the top bar has
    # nothing more to offer.
    page.context.grant_permissions(["notifications"], origin=live_server)
    expect(state).to_have_text("Desktop alerts are on in this browser.")
    expect(blocked).to_be_hidden()
    expect(turn_on).to_be_hidden()
    expect(page.get_by_role("button", name="Turn on desktop alerts")).to_have_count(0)  # none, anywhere
    looks_right("alerts-on-settings")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_notification_settings_say_every_wrong_field_at_once_in_the_forms_own_look(
    page: Page, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    sign_in(page, "manager@acme.example")  # nothing is saved: every field below is refused
    page.get_by_role("contentinfo").get_by_role("link", name="Your notifications").click()
    hours = page.get_by_role("group", name="My working hours")
    # No browser's grey frame round the working hours: a group like the others of the form.
    assert hours.evaluate("e => getComputedStyle(e).borderTopStyle") == "none"
    page.get_by_label("My time zone").fill("Mars/Olympus")
    page.get_by_label("From").fill("18:00")
    page.get_by_label("Until").fill("08:00")
    for day in ("Mon", "Tue", "Wed", "Thu", "Fri"):
        hours.get_by_label(day).uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#time_zone-error")).to_have_text(
        "Choose a time zone from the list, like Europe/Berlin."
    )
    expect(page.locator("#work_until-error")).to_have_text("Your working day must end after it starts.")
    expect(page.locator("#work_days-error")).to_have_text("Tick at least one working day.")
    expect(page.get_by_label("My time zone")).to_have_value("Mars/Olympus")
    assert axe_problems(page, axe_source) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, f"notification-settings-errors-{width}")


# --- Bulk messages (issue 22 §1) ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_bulk_message_preview_then_progress_bar_fits_and_passes_axe(
    page: Page, live_app: Flask, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    sign_in(page, "recruiter@acme.example")
    page.goto(job_path(live_app, "Backend Engineer"))
    boxes = page.locator("#invite-selection input.select-box")
    ticked = min(boxes.count(), 3)
    assert ticked >= 2
    for i in range(ticked):
        boxes.nth(i).check()
    page.locator("#message-selected").click()
    expect(page.get_by_role("heading", name=f"Message {ticked} people", level=1)).to_be_visible()
    page.get_by_role("radio", name="Email").check()
    page.get_by_label("Subject").fill("News about %JOBTITLE%")
    page.get_by_label("Message").fill("Hello %FIRSTNAME%, a quick note about %JOBTITLE%.")
    page.get_by_role("button", name=f"Preview {ticked} messages").click()
    expect(page.get_by_role("heading", name=re.compile(rf"^Preview: {ticked} messages"))).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_problems(page, axe_source) == []
    shot(page, f"bulk-preview-{width}")
    page.locator("#bulk-send button").click()
    bar = page.locator("progress.batch-progress, .batch-progress progress")
    expect(bar).to_be_visible()
    # The background run finishes; the page's poll (or its first render) shows it without a reload.
    expect(page.get_by_role("heading", name="Done", level=2)).to_be_visible(timeout=10_000)
    assert bar.get_attribute("value") == bar.get_attribute("max") == str(ticked)
    expect(page.get_by_role("link", name="Download the report (CSV)")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_problems(page, axe_source) == []
    shot(page, f"bulk-progress-{width}")
    page.reload()  # it survives a reload
    expect(page.get_by_role("heading", name="Done", level=2)).to_be_visible()


# --- Bulk messages to all matching a filter (issue 22 §1) ---------------------------------------------


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_message_all_matching_a_filter_names_the_number_in_the_composer(
    page: Page, live_app: Flask, axe_source: str, size: dict
) -> None:
    """Only reads: the composer is opened, nothing is sent."""
    from webapp.jobs import queries

    width = size["width"]
    page.set_viewport_size(size)
    sign_in(page, "recruiter@acme.example")
    path = job_path(live_app, "Warehouse Associate")
    with live_app.app_context():
        recruiter = db.session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
        job_id = int(path.rsplit("/", 1)[1])
        expected = queries.count_matching(db.session, recruiter, job_id, "a", "screening")
        everyone = queries.count_matching(db.session, recruiter, job_id)
        db.session.remove()
    assert 2 <= expected < everyone
    page.goto(path)
    expect(page.get_by_role("link", name=f"Message all {everyone}", exact=True)).to_be_visible()
    page.get_by_label("Stage").select_option("screening")
    page.get_by_label("Search by name").fill("a")
    expect(page).to_have_url(re.compile(r"[?&]q=a(&|$)"))
    button = page.get_by_role("link", name=f"Message all {expected} matching", exact=True)
    expect(button).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_problems(page, axe_source) == []
    shot(page, f"bulk-all-list-{width}")
    button.click()
    heading = f"Message {expected} people matching “a” in Screening"
    expect(page.get_by_role("heading", name=heading, level=1, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=f"Preview {expected} messages")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_problems(page, axe_source) == []
    shot(page, f"bulk-all-compose-{width}")


# --- Requests for sending numbers (issue 23 §1) ---------------------------------------------------------


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_an_admin_requests_a_number_and_staff_find_and_buy_one(
    page: Page, live_app: Flask, axe_source: str, size: dict
) -> None:
    """A customer of its own (the demo's are only read); the simulator's numbers account sells."""
    width = size["width"]
    page.set_viewport_size(size)
    name = f"Hooli{width}"
    email = f"admin@{name.lower()}.example"
    with live_app.app_context():
        org = f.messaging_org(name)
        f.user(org, email, admin=True, name=f"{name} Admin").set_password(demo.PASSWORD)
        db.session.commit()
        db.session.remove()

    def fits_and_passes(what: str) -> None:
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), what
        assert axe_problems(page, axe_source) == [], what
        shot(page, f"number-request-{what}-{width}")

    sign_in(page, email)
    page.goto("/admin/numbers")
    form = page.locator("#request-number")
    form.get_by_label("Country", exact=True).select_option("DE")
    form.get_by_label("Starts with (optional)").fill("+49 151")
    form.get_by_label("Region or city (optional)").fill("Berlin")
    form.get_by_role("button", name="Request the number").click()
    # No reason chosen: said beside the choice, and what was typed stays.
    expect(page.locator("#reason-error")).to_have_text("Say why you need the number.")
    expect(page.get_by_label("Starts with (optional)")).to_have_value("+49 151")
    fits_and_passes("refused")
    page.get_by_label("A new country").check()
    page.get_by_role("button", name="Request the number").click()
    expect(page.locator(".flash-success")).to_contain_text("Requested.")
    expect(page.locator("#my-number-requests")).to_contain_text("Open")
    fits_and_passes("admin")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, "csm@relay.example")
    page.get_by_role("link", name=f"{name} · Germany · SMS").click()
    expect(page.get_by_role("heading", name=f"Germany number for {name}", level=1)).to_be_visible()
    expect(page.get_by_label("Starts with (digits, country code first)")).to_have_value("49151")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#offers tbody tr").first).to_contain_text("starts with +49 151 — Berlin")
    expect(page.locator("#request-state")).to_have_text("Numbers found")
    fits_and_passes("staff-search")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#offers tbody tr").first.get_by_role("button", name=re.compile("^Buy")).click()
    expect(page.locator(".flash-success")).to_contain_text(f"added to {name}'s pool (pending documents)")
    expect(page.locator("#request-state")).to_have_text("Done")
    expect(page.locator("#request-history")).to_contain_text("Number linked")
    fits_and_passes("staff-done")
