"""The reply channel in headless Chromium against the demo data, at 1366 and 375 px: the Inbox pane and
the application page preselect where the person is (and say why under *Send as*), the page opens on that
channel's tab, and picking a tab picks its channel in the composer (the live server, console watch and
axe of tests/test_browser.py). Nothing is sent: the demo's threads stay as other tests expect them."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Page, expect

from tests import test_browser as _browser
from tests.browser_support import axe_problems
from tests.test_browser import DESKTOP, PHONE, application_path, shot, sign_in
from webapp.extensions import db
from webapp.models import Conversation

pytestmark = pytest.mark.browser
browser_type_launch_args = _browser.browser_type_launch_args
live_app, live_server, base_url = _browser.live_app, _browser.live_server, _browser.base_url
axe_source, page = _browser.axe_source, _browser.page

GRACE = ("Grace Murphy", "Customer Success Manager")  # WhatsApp only
OLIVER = ("Oliver Smith", "Sales Development Representative")  # email only
FELIX = ("Felix Fischer", "Data Analyst")  # texted STOP


def conversation_id(app: Flask, path: str) -> int:
    application_id = int(path.rsplit("/", 1)[1])
    with app.app_context():
        query = sa.select(Conversation.id).where(Conversation.application_id == application_id)
        found = db.session.scalar(query)
        db.session.remove()
    assert found is not None, path
    return found


def composer_of(page: Page, uid: int):
    return page.locator(f"#composer-{uid}")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_the_inbox_pane_preselects_where_the_person_is(
    page: Page, live_app: Flask, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    sign_in(page, "recruiter@acme.example")
    for person, channel, reason in [
        (GRACE, "WhatsApp", "Replying by WhatsApp, where Grace wrote last."),
        (OLIVER, "Email", "Replying by email, the channel of the last message."),
        (FELIX, "Email", "By email: Felix opted out of texts."),
    ]:
        uid = conversation_id(live_app, application_path(live_app, *person))
        page.goto(f"/inbox?c={uid}")
        composer = composer_of(page, uid)
        expect(composer.get_by_role("radio", name=channel, exact=True)).to_be_checked()
        said = composer.locator(f"#reply-reason-{uid}")
        expect(said).to_be_visible()
        expect(said).to_have_text(reason)
        if person is GRACE:
            shot(page, f"reply-channel-inbox-grace-{width}")
            assert not axe_problems(page, axe_source)
            # Another channel chosen: the reason, which speaks of WhatsApp, steps aside.
            composer.get_by_role("radio", name="Email", exact=True).check()
            expect(said).to_be_hidden()
            composer.get_by_role("radio", name="WhatsApp", exact=True).check()
            expect(said).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_the_application_page_opens_on_the_reply_channel_and_its_tabs_pick_theirs(
    page: Page, live_app: Flask, axe_source: str, size: dict
) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    sign_in(page, "recruiter@acme.example")

    # Oliver has only had email: the page opens on the Email tab, Send as on Email, and says why.
    path = application_path(live_app, *OLIVER)
    uid = conversation_id(live_app, path)
    page.goto(path)
    composer = composer_of(page, uid)
    expect(page.get_by_role("tab", name="Email")).to_have_attribute("aria-selected", "true")
    expect(composer.get_by_role("radio", name="Email", exact=True)).to_be_checked()
    said = composer.locator(f"#reply-reason-{uid}")
    expect(said).to_have_text("Replying by email, the channel of the last message.")
    expect(composer.get_by_label("Subject")).to_be_visible()
    shot(page, f"reply-channel-application-oliver-{width}")
    assert not axe_problems(page, axe_source)

    # Picking the SMS tab picks SMS in the composer (and the counter speaks of SMS).
    page.get_by_role("tab", name=re.compile(r"^SMS")).click()
    expect(page.get_by_role("tab", name=re.compile(r"^SMS"))).to_have_attribute("aria-selected", "true")
    expect(composer.get_by_role("radio", name="SMS", exact=True)).to_be_checked()
    expect(said).to_be_hidden()
    expect(page.locator(f"#counter-{uid} [data-counter=units]")).to_have_text("0 of 160 GSM-7 units")
    expect(page).to_have_url(re.compile(r"\?tab=sms$"))
    # And back: Email again, with its reason.
    page.get_by_role("tab", name=re.compile(r"^Email")).click()
    expect(composer.get_by_role("radio", name="Email", exact=True)).to_be_checked()
    expect(said).to_be_visible()

    # Grace wrote on WhatsApp: that tab; unless the address names another.
    path = application_path(live_app, *GRACE)
    uid = conversation_id(live_app, path)
    page.goto(path)
    expect(page.get_by_role("tab", name=re.compile(r"^WhatsApp"))).to_have_attribute("aria-selected", "true")
    expect(composer_of(page, uid).get_by_role("radio", name="WhatsApp", exact=True)).to_be_checked()
    expect(page.locator(f"#reply-reason-{uid}")).to_have_text("Replying by WhatsApp, where Grace wrote last.")
    shot(page, f"reply-channel-application-grace-{width}")
    page.goto(path + "?tab=sms")
    expect(page.get_by_role("tab", name=re.compile(r"^SMS"))).to_have_attribute("aria-selected", "true")
    expect(composer_of(page, uid).get_by_role("radio", name="SMS", exact=True)).to_be_checked()
    expect(page.locator(f"#reply-reason-{uid}")).to_be_hidden()

    # Felix opted out: email, said so; his SMS tab picks SMS, and the counter then says why it cannot go.
    path = application_path(live_app, *FELIX)
    uid = conversation_id(live_app, path)
    page.goto(path)
    expect(page.get_by_role("tab", name=re.compile(r"^Email"))).to_have_attribute("aria-selected", "true")
    expect(page.locator(f"#reply-reason-{uid}")).to_have_text("By email: Felix opted out of texts.")
    page.get_by_role("tab", name=re.compile(r"^SMS")).click()
    expect(composer_of(page, uid).get_by_role("radio", name="SMS", exact=True)).to_be_checked()
    expect(page.locator(f"#counter-{uid} [data-counter=blocked]")).to_contain_text("opted out")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
