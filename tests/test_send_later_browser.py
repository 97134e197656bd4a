"""Send later and quiet hours in headless Chromium against the demo data, at 1366 and 375 px (issue #20):
a text written while the recipient's hours are closed is said, before Send, to wait for their morning;
Send puts it in the thread as scheduled; Edit changes its text and Cancel takes it back. The quiet hours
are switched on for this test only, with the organisation's days set to exclude today, so that the run
does not depend on the hour (the live server of tests/test_browser.py, its console watch and axe)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Page, expect

from tests import test_browser as _browser
from tests.browser_support import axe_problems
from tests.test_browser import DESKTOP, PHONE, application_path, shot, sign_in
from webapp.extensions import db
from webapp.models import Organization

pytestmark = pytest.mark.browser
browser_type_launch_args = _browser.browser_type_launch_args
live_app, live_server, base_url = _browser.live_app, _browser.live_server, _browser.base_url
axe_source, page = _browser.axe_source, _browser.page

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
