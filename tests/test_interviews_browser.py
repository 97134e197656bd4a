"""Interviews in headless Chromium against the demo data: a recruiter adds a slot and invites a candidate
(refused without %INVITELINK%, the link inserted at the cursor), the candidate books, rebooks and
cancels on their phone while the recruiter's page follows, a bulk invitation's report; at 375 and 1366
px, with axe on the booking page (the live server, console watch and axe of tests/test_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect

from tests import test_browser as _browser
from tests.browser_support import ConsoleWatch, axe_problems
from tests.test_browser import DESKTOP, PHONE, application_path, shot, sign_in
from webapp.messaging.templates import SAMPLE_BOOKING_PATH

pytestmark = pytest.mark.browser
browser_type_launch_args = _browser.browser_type_launch_args
live_app, live_server, base_url = _browser.live_app, _browser.live_server, _browser.base_url
axe_source, page = _browser.axe_source, _browser.page
LINK = re.compile(r"https?://[^/\s]+(/book/[A-Za-z0-9_-]+)")


def origin(page: Page) -> str:
    """Where the recruiter's browser is served from: the candidate's phone opens links there. (The page
    fixture's address is decided once per run, by the first browser module; this module's own live
    server may be another, with the same demo data but not the same history.)"""
    found = re.match(r"https?://[^/]+", page.url)
    assert found, page.url
    return found.group(0)


@pytest.fixture
def candidate_page(browser: Browser) -> Iterator[Page]:
    """The candidate's phone: a browser of its own (no sign-in), 375 px, in another zone than Berlin."""
    context = browser.new_context(viewport=PHONE, timezone_id="America/Chicago")
    phone = context.new_page()
    watch = ConsoleWatch().attach(phone)
    phone.on("dialog", lambda dialog: dialog.accept())
    yield phone
    context.close()
    if watch.problems:
        pytest.fail("the candidate's browser reported:\n" + "\n".join(watch.problems), pytrace=False)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_invite_book_rebook_and_cancel(
    page: Page, candidate_page: Page, live_app: Flask, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    page.on("dialog", lambda dialog: dialog.accept())
    # Candidates nobody has written to in the demo, with a Swedish and a Finnish mobile.
    name = "Maja Karlsson" if width == 1366 else "Aino Korhonen"
    application_id = int(application_path(live_app, name, "Backend Engineer").rsplit("/", 1)[1])
    sign_in(page, "recruiter@acme.example")

    # A slot of its own, on the job's slots page.
    page.goto(f"/applications/{application_id}")
    page.locator("#interview-" + str(application_id)).get_by_role("link", name="Interview slots").click()
    expect(page.get_by_role("heading", name="Interview slots")).to_be_visible()
    form = page.locator("#new-slot")
    form.get_by_label("Day").fill("2031-06-0" + ("2" if width == 375 else "3"))
    form.get_by_label("Starts at").fill("09:15")
    form.get_by_role("button", name="Add slot").click()
    expect(page.locator("#new-slot .field-error")).to_have_text(
        "Say where: an address, a room or a video link."
    )
    page.locator("#new-slot").get_by_label("Place or video link").fill(f"Room {width}")
    page.locator("#new-slot").get_by_role("button", name="Add slot").click()
    expect(page.locator(".flash-success")).to_contain_text("Slot added")
    expect(page.locator("#slots")).to_contain_text(f"Room {width}")
    shot(page, f"interview-slots-{width}")
    assert not axe_problems(page, axe_source)

    # The invitation: refused without the link, which a button puts where the cursor is.
    page.goto(f"/applications/{application_id}")
    page.get_by_role("link", name="Invite to interview").click()
    expect(page.get_by_role("heading", name="Invite to interview")).to_be_visible()
    page.get_by_label("SMS").check()
    body = page.get_by_label("Message")
    body.fill("Hi %FIRSTNAME%, pick a time for your interview:  Thanks!")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#body-error")).to_contain_text("would get no booking link")
    expect(page.get_by_label("Message")).to_have_value(
        "Hi %FIRSTNAME%, pick a time for your interview:  Thanks!"
    )
    shot(page, f"interview-invite-refused-{width}")
    body = page.get_by_label("Message")
    body.click()
    body.evaluate("(el) => el.setSelectionRange(48, 48)")  # between the two spaces
    page.get_by_role("button", name="Insert booking link").click()
    expect(body).to_have_value("Hi %FIRSTNAME%, pick a time for your interview: %INVITELINK% Thanks!")
    expect(page.locator("#invite-counter [data-counter=link]")).to_contain_text(
        "Counted with the booking link"
    )
    expect(page.locator("#invite-counter [data-counter=missing-link]")).to_have_count(0)
    shot(page, f"interview-invite-{width}")
    assert not axe_problems(page, axe_source)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".flash-success")).to_contain_text("Invitation sent by SMS")
    card = page.locator(f"#interview-{application_id}")
    expect(card).to_contain_text("Sent, not booked yet")
    sent = page.locator(".msg-invitation").last
    expect(sent).to_contain_text("Interview invitation · Sent, not booked yet")
    text = page.locator(".msg", has=page.locator(".msg-invitation")).last.locator(".msg-body").inner_text()
    link = LINK.search(text)
    assert link, text
    path = link.group(1)

    # The candidate books on their phone, in their number's zone (a Finnish or Swedish mobile), not in the
    # phone's own (Chicago).
    phone = candidate_page
    phone.goto(origin(page) + path)
    expect(phone.get_by_role("heading", name="Your interview for Backend Engineer")).to_be_visible()
    expect(phone.locator("#zone-note")).to_contain_text(
        re.compile(r"Europe/(Helsinki|Stockholm)( time)?, where your phone")
    )
    expect(phone.locator(".booking-bar")).to_contain_text("Acme")
    assert phone.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert not axe_problems(phone, axe_source)
    shot(phone, f"booking-{width}")
    choices = phone.locator(".slot-choice")
    first_time = choices.first.locator(".slot-time").inner_text()
    choices.first.click()
    phone.get_by_role("button", name="Book this time").click()
    expect(phone.locator(".flash-success")).to_contain_text("Your interview is booked")
    expect(phone.locator("#booked-when")).to_contain_text(first_time)
    assert not axe_problems(phone, axe_source)
    shot(phone, f"booking-booked-{width}")

    # The recruiter's page follows without a reload.
    expect(card).to_contain_text("Booked for", timeout=15_000)
    expect(page.locator(".msg-invitation").first).to_be_visible()

    # Another time, then cancelled.
    second_time = phone.locator(".slot-choice").nth(1).locator(".slot-time").inner_text()
    phone.locator(".slot-choice").nth(1).click()
    phone.get_by_role("button", name="Move my interview to this time").click()
    expect(phone.locator("#booked-when")).to_contain_text(second_time)
    phone.get_by_role("button", name="Cancel the interview").click()
    expect(phone.locator("#cancelled-note")).to_be_visible()
    expect(phone.locator("#booked")).to_have_count(0)
    expect(card).to_contain_text("Cancelled by the candidate", timeout=15_000)
    expect(page.locator(".msg-invitation").first).to_contain_text("Cancelled by the candidate")
    shot(page, f"interview-cancelled-{width}")


def test_a_bulk_invitation_reports_each_candidate(page: Page, live_app: Flask, axe_source: str) -> None:
    page.set_viewport_size(PHONE)
    chosen = ["Louise Martin", "Zoe Gagnon"]  # nobody has written to them in the demo
    sign_in(page, "recruiter@acme.example")
    page.goto("/jobs")
    page.get_by_role("link", name="Backend Engineer").first.click()
    for name in chosen:
        page.get_by_label(f"Select {name}").check()
    page.get_by_role("button", name="Invite selected to interview").click()
    expect(page.get_by_role("heading", name="Invite to interview")).to_be_visible()
    expect(page.locator("#invitees li")).to_have_count(2)
    page.get_by_label("WhatsApp").check()  # outside every window: free text is refused per candidate
    page.get_by_label("Message").fill("Hi %FIRSTNAME%, book your interview: %INVITELINK%")
    page.get_by_role("button", name="Send 2 invitations").click()
    expect(page.get_by_role("heading", name="Invitations by WhatsApp")).to_be_visible()
    expect(page.locator("#invite-summary")).to_have_text("0 of 2 sent, 2 refused.")
    expect(page.locator(".report-reason").first).to_contain_text("24-hour window")
    page.go_back()
    page.get_by_label("SMS").check()
    page.get_by_label("Message").fill("Hi %FIRSTNAME%, book your interview: %INVITELINK%")
    page.get_by_role("button", name="Send 2 invitations").click()
    expect(page.locator("#invite-summary")).to_have_text("2 of 2 sent.")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert not axe_problems(page, axe_source)
    shot(page, "interview-report-375")


# --- The booking link as a word of its own (issue 17) --------------------------------------------------


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_the_booking_link_goes_in_as_a_word_and_a_glued_one_is_fixed_in_one_click(
    page: Page, live_app: Flask, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    real_link = live_app.config["PUBLIC_BASE_URL"].rstrip("/") + SAMPLE_BOOKING_PATH

    # The template editor: an SMS interview invitation.
    sign_in(page, "admin@acme.example")
    page.goto("/admin/templates/new")
    page.get_by_label("Name").fill(f"Book a time ({width})")
    page.get_by_role("radio", name="SMS").check()
    expect(page.get_by_role("radio", name="Candidates and prospects")).to_be_checked()
    page.get_by_label("Kind").select_option(label="Interview invitation")
    # An invitation is for candidates: the editor says so as the kind is chosen.
    expect(page.get_by_role("radio", name="Candidates", exact=True)).to_be_checked()
    body = page.get_by_label("Text")
    link_button = page.get_by_role("button", name="%INVITELINK%")
    # Empty: the link alone.
    link_button.click()
    expect(body).to_have_value("%INVITELINK%")
    # Text the admin has not clicked into yet: at its end, after a space (not at position 0).
    body.evaluate("(el) => { el.value = 'Hi %FIRSTNAME%, pick a time:'; }")
    link_button.click()
    expect(body).to_have_value("Hi %FIRSTNAME%, pick a time: %INVITELINK%")
    # At the cursor in the middle of a word: a space on each side.
    body.fill("Hi %FIRSTNAME%, pick a time:here")
    body.evaluate("(el) => el.setSelectionRange(28, 28)")
    link_button.click()
    expect(body).to_have_value("Hi %FIRSTNAME%, pick a time: %INVITELINK% here")
    # What the candidate will read is open, with the real link.
    preview = page.locator("#template-preview")
    expect(preview.get_by_text("What Alex will read")).to_be_visible()
    expect(preview.locator("[data-preview=text]")).to_be_visible()
    expect(preview.locator("[data-preview=text]")).to_have_text(f"Hi Alex, pick a time: {real_link} here")

    # Glued to the next word: said while typing, refused on save next to the text, fixed in one click.
    body.fill("%INVITELINK%Hi %FIRSTNAME%")
    expect(preview.locator("[data-preview=problem]")).to_contain_text("touches the text beside it")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator("#body-error")).to_contain_text("touches the text beside it")
    expect(page.get_by_label("Text")).to_have_value("%INVITELINK%Hi %FIRSTNAME%")
    shot(page, f"template-glued-link-{width}")
    assert not axe_problems(page, axe_source)
    page.locator("[data-fix-for=body]").get_by_role("button", name="Put a space around the link").click()
    expect(page.get_by_label("Text")).to_have_value("%INVITELINK% Hi %FIRSTNAME%")
    expect(page.locator("[data-fix-for=body]")).to_be_hidden()
    expect(page.locator("#template-preview [data-preview=problem]")).to_have_count(0)
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Book a time ({width})")

    # The invite form opens with the first SMS invitation template's text, not clicked into yet.
    page.goto(application_path(live_app, "Maja Karlsson", "Backend Engineer") + "/invite")
    expect(page.get_by_role("heading", name="Invite to interview")).to_be_visible()
    page.get_by_label("SMS").check()
    body = page.get_by_label("Message")
    counter = page.locator("#invite-counter")
    start = body.input_value()
    assert start.strip(), "the demo's SMS invitation template opens the form"
    insert = page.get_by_role("button", name="Insert booking link")
    insert.click()
    expect(body).to_have_value(start + ("" if start[-1].isspace() else " ") + "%INVITELINK%")
    # Empty.
    body.fill("")
    insert.click()
    expect(body).to_have_value("%INVITELINK%")
    # Typed straight after it: the counter says so at once, and its button fixes it.
    body.press("End")
    body.press_sequentially("Thanks")
    expect(counter.locator("[data-counter=glued-link]")).to_contain_text("touches the text beside it")
    shot(page, f"invite-glued-link-{width}")
    assert not axe_problems(page, axe_source)
    counter.get_by_role("button", name="Put a space around the link").click()
    expect(body).to_have_value("%INVITELINK% Thanks")
    expect(counter.locator("[data-counter=glued-link]")).to_have_count(0)
    # What Maja will read: open, the real link, a space after it.
    shown = counter.locator("[data-counter=preview]")
    expect(counter.get_by_text("What Maja will read")).to_be_visible()
    expect(shown).to_be_visible()
    expect(shown).to_have_text(f"{real_link} Thanks")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, f"invite-link-fixed-{width}")
