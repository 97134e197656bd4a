"""Interview times on the right clock, in headless Chromium against the demo data, at 1366 and 375 px: a
recruiter adds a series of in-person slots on the Newark job (New York's clock, which the form names),
a time the interviewer already holds is refused next to the field; the recruiter invites a candidate with
a European mobile, who, on a phone set to Chicago, sees Newark's time first and their own beside it, and
books."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect

from tests import test_browser as _browser
from tests.browser_support import ConsoleWatch, axe_problems
from tests.test_browser import DESKTOP, PHONE, application_path, job_path, shot, sign_in

pytestmark = pytest.mark.browser
browser_type_launch_args = _browser.browser_type_launch_args
live_app, live_server, base_url = _browser.live_app, _browser.live_server, _browser.base_url
axe_source, page = _browser.axe_source, _browser.page
# Days of their own per width (the demo is shared by the run's browser tests): Tuesdays and a Wednesday
# in June 2031, when New York is on EDT (UTC-4) and Dublin on IST (UTC+1).
DAYS = {1366: ("2031-06-10", "2031-06-11"), 375: ("2031-06-17", "2031-06-18")}
# Applicants to the Newark job in the demo nobody has written to: a Finnish and a British mobile.
CANDIDATES = {
    1366: ("Eino Virtanen", "Europe/Helsinki", "16:00 EEST"),
    375: ("Isla Brown", "Europe/London", "14:00 BST"),
}


@pytest.fixture
def candidate_page(browser: Browser) -> Iterator[Page]:
    """The candidate's browser, set to Chicago; their number says where they are."""
    context = browser.new_context(viewport=PHONE, timezone_id="America/Chicago")
    phone = context.new_page()
    watch = ConsoleWatch().attach(phone)
    yield phone
    context.close()
    if watch.problems:
        pytest.fail("the candidate's browser reported:\n" + "\n".join(watch.problems), pytrace=False)


def origin(page: Page) -> str:
    """Where the recruiter's browser is served from (the page fixture's server is the run's first
    browser module's: the same demo data, not the same history), which the candidate's phone opens."""
    found = re.match(r"https?://[^/]+", page.url)
    assert found, page.url
    return found.group(0)


def invite(page: Page, application: str) -> str:
    """The recruiter invites by SMS from the application page; the path of the booking link sent."""
    page.goto(application)
    page.get_by_role("link", name="Invite to interview").click()
    page.get_by_label("SMS").check()
    page.get_by_label("Message").fill("Hi %FIRSTNAME%, pick a time at the warehouse: %INVITELINK% Thanks!")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".flash-success")).to_contain_text("Invitation sent by SMS")
    body = page.locator(".msg", has=page.locator(".msg-invitation")).last.locator(".msg-body").inner_text()
    found = re.search(r"https?://[^/\s]+(/book/[A-Za-z0-9_-]+)", body)
    assert found, body
    return found.group(1)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_newark_slots_on_newarks_clock(
    page: Page, candidate_page: Page, live_app: Flask, axe_source: str, size: dict
) -> None:
    width = size["width"]
    first, second = DAYS[width]
    page.set_viewport_size(size)
    sign_in(page, "recruiter@acme.example")
    slots_path = job_path(live_app, "Warehouse Associate") + "/slots"
    page.goto(slots_path)
    expect(page.get_by_role("heading", name="Interview slots")).to_be_visible()

    # A series: every 30 minutes from 09:00 to 11:00, Tuesdays and Wednesdays, in the form's zone.
    page.locator("#series-card > summary").click()
    series = page.locator("#new-series")
    expect(series.get_by_label("Time zone")).to_have_value("America/New_York")
    expect(series).to_contain_text("Newark, NJ: America/New_York")
    series.get_by_label("First day").fill(first)
    series.get_by_label("Last day").fill(second)
    series.get_by_label("Mon").uncheck()
    series.get_by_label("Thu").uncheck()
    series.get_by_label("Fri").uncheck()
    series.get_by_label("From").fill("09:00")
    series.get_by_label("Until").fill("11:00")
    series.get_by_label("Place or video link").fill(f"Acme warehouse, dock {width}")
    series.get_by_role("button", name="Add the series").click()
    expect(page.locator(".flash-success")).to_contain_text("8 slots added")
    slot = page.locator(".slot", has_text=f"dock {width}").first
    expect(slot).to_contain_text("09:00 EDT")
    expect(slot.locator(".slot-clock")).to_have_text("Newark")
    expect(slot).to_contain_text("15:00 CEST in Berlin")
    shot(page, f"interview-series-{width}")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert not axe_problems(page, axe_source)

    # One more slot for Riley at a time the series holds: refused next to the time, the input kept.
    single = page.locator("#new-slot")
    single.get_by_label("Day").fill(first)
    single.get_by_label("Starts at").fill("09:15")
    single.get_by_label("Place or video link").fill("Room 1")
    single.get_by_role("button", name="Add slot").click()
    expect(page.locator("#at-error")).to_contain_text("Riley Chen already has a slot then:")
    expect(page.locator("#new-slot").get_by_label("Starts at")).to_have_value("09:15")
    expect(page.locator("#new-slot").get_by_label("Place or video link")).to_have_value("Room 1")
    shot(page, f"interview-slot-overlap-{width}")
    assert not axe_problems(page, axe_source)

    # The candidate's phone: Newark's time first, theirs beside it.
    name, zone, theirs = CANDIDATES[width]
    path = invite(page, application_path(live_app, name, "Warehouse Associate"))
    phone = candidate_page
    phone.set_viewport_size(size)  # the booking page at both widths too
    phone.goto(origin(page) + path)
    expect(phone.get_by_role("heading", name="Your interview for Warehouse Associate")).to_be_visible()
    expect(phone.locator("#zone-note")).to_contain_text(
        f"An interview in person is at the place's local time, shown first; your time ({zone}, "
        "where your phone number is from) is beside it."
    )
    choice = phone.locator(".slot-choice", has_text=f"dock {width}").first
    expect(choice.locator(".slot-time")).to_have_text("09:00 EDT")
    expect(choice.locator(".slot-yours")).to_have_text(f"{theirs} your time")
    assert phone.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert not axe_problems(phone, axe_source)
    shot(phone, f"booking-zones-{width}")
    choice.click()
    phone.get_by_role("button", name=re.compile(r"^(Book this time|Move my interview to this time)$")).click()
    expect(phone.locator("#booked-when")).to_contain_text("09:00 EDT (Newark)")
    expect(phone.locator("#booked-yours")).to_have_text(f"{theirs} your time")
    assert not axe_problems(phone, axe_source)
    shot(phone, f"booking-zones-booked-{width}")
