"""Follow up if no reply in headless Chromium against the demo data, at 1366 and 375 px (issue 20 §3):
the composer's follow-up part (a template fills its text), Send puts the message and, in the thread, the
pending follow-up; the candidate's reply (a signed inbound webhook) cancels it, and the thread says so.
The live server, console watch and axe of tests/test_browser.py; QUIET_HOURS is off there, so the run
does not depend on the hour."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests import test_browser as _browser
from tests.browser_support import axe_problems
from tests.test_browser import DESKTOP, PHONE, application_path, our_number, reply, shot, sign_in

pytestmark = pytest.mark.browser
browser_type_launch_args = _browser.browser_type_launch_args
live_app, live_server, base_url = _browser.live_app, _browser.live_server, _browser.base_url
axe_source, page = _browser.axe_source, _browser.page

DAAN = ("Daan Jansen", "Sales Development Representative")  # a Dutch mobile


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
