"""The CRM in headless Chromium against the demo data: a sourcer adds a prospect to a community (a bad
number told beside the field), writes to them by SMS and sees their reply, at 1366 and 375 px; every
CRM page fits a phone and passes axe (the live server, console watch and axe of tests/test_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import Page, expect

from tests import test_browser as _browser
from tests.browser_support import axe_problems
from tests.test_browser import DESKTOP, PHONE, shot, sign_in
from webapp.extensions import db
from webapp.models import Community, CommunityMembership, Prospect

pytestmark = pytest.mark.browser
browser_type_launch_args = _browser.browser_type_launch_args
live_app, live_server, base_url = _browser.live_app, _browser.live_server, _browser.base_url
axe_source, page = _browser.axe_source, _browser.page


def community_path(app: Flask, name: str) -> str:
    with app.app_context():
        found = db.session.scalar(sa.select(Community.id).where(Community.name == name))
        db.session.remove()
    return f"/communities/{found}"


def membership_path(app: Flask, first: str, last: str) -> str:
    with app.app_context():
        found = db.session.scalar(
            sa.select(CommunityMembership.id)
            .join(CommunityMembership.prospect)
            .where(Prospect.first_name == first, Prospect.last_name == last)
        )
        db.session.remove()
    return f"/memberships/{found}"


def first_prospect_in_conversation(app: Flask) -> tuple[str, str]:
    """A demo prospect the sourcer has written to (the demo's prospect threads)."""
    from webapp.models import Conversation

    with app.app_context():
        first, last = db.session.execute(
            sa.select(Prospect.first_name, Prospect.last_name)
            .join(CommunityMembership, CommunityMembership.prospect_id == Prospect.id)
            .join(Conversation, Conversation.community_membership_id == CommunityMembership.id)
            .where(Conversation.last_message_id.is_not(None))
            .order_by(Conversation.id)
            .limit(1)
        ).one()
        db.session.remove()
    return first, last


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_a_sourcer_adds_a_prospect_and_texts_them(page: Page, size: dict) -> None:
    width = size["width"]
    page.set_viewport_size(size)
    sign_in(page, "sourcer@acme.example")
    page.get_by_role("link", name="Communities").click()
    expect(page.get_by_role("heading", name="Communities")).to_be_visible()
    page.get_by_role("link", name="Engineering talent pool").click()
    expect(page.get_by_role("heading", name="Engineering talent pool")).to_be_visible()
    members = page.locator("#members tbody tr")
    before = members.count()

    form = page.locator("#add-member")
    first, last = "Zoë", f"Quist{width}"
    form.get_by_label("First name").fill(first)
    form.get_by_label("Last name").fill(last)
    form.get_by_label("Mobile").fill("070 123")
    form.get_by_role("button", name="Add prospect").click()
    error = page.locator("#mobile-error")
    expect(error).to_contain_text("international format")
    expect(page.get_by_label("First name")).to_have_value(first)  # nothing typed is lost
    expect(page.get_by_label("Mobile")).to_have_attribute("aria-invalid", "true")
    shot(page, f"crm-add-refused-{width}")

    page.get_by_label("Mobile").fill(f"+46 70 555 {width:04d}")
    page.get_by_role("button", name="Add prospect").click()
    expect(page.locator("#add-member [role=status]")).to_contain_text(f"{first} {last} added")
    expect(members).to_have_count(before + 1)  # the list refreshed itself
    expect(page.locator("#members")).to_contain_text(f"{first} {last}")
    expect(page.get_by_label("First name")).to_have_value("")
    shot(page, f"crm-community-{width}")

    page.locator("#add-member").get_by_role("link", name="Write to them").click()
    expect(page.get_by_role("heading", name=f"{first} {last}")).to_be_visible()
    expect(page.locator("#prospect-mobile")).to_contain_text(f"+46 70 555 {width // 100:02d}")
    expect(page.get_by_role("tab", name="SMS")).to_have_attribute("aria-selected", "true")
    page.get_by_label("Message").fill("Hi %FIRSTNAME%, welcome to our %JOBTITLE%!")
    page.get_by_role("button", name="Send").click()
    sent = page.locator(".messages .msg-outbound").last
    expect(sent).to_contain_text(f"Hi {first}, welcome to our Engineering talent pool!")
    expect(sent.locator(".status")).to_have_text("Delivered", timeout=8000)

    box = page.get_by_label("Simulated reply")
    box.fill("Thanks, count me in.")
    page.locator("form.simulate").get_by_role("button", name="Simulate a reply").click()
    expect(page.locator(".msg-inbound").last).to_contain_text("Thanks, count me in.", timeout=3000)
    scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, (scroll, inner)
    shot(page, f"crm-prospect-{width}")

    # The Inbox lists the conversation with the community where a job would be, among the prospects.
    page.goto("/inbox?who=prospects")
    row = page.locator("#inbox-rows > li.inbox-row").filter(has_text=f"{first} {last}")
    expect(row).to_contain_text("Engineering talent pool")
    expect(row).to_contain_text("Thanks, count me in.")
    page.goto("/inbox?who=candidates")
    expect(page.locator("#inbox-rows")).not_to_contain_text(f"{first} {last}")


def test_removing_a_member_asks_first_and_keeps_the_conversation(page: Page, live_app: Flask) -> None:
    sign_in(page, "sourcer@acme.example")
    first, last = first_prospect_in_conversation(live_app)
    name = f"{first} {last}"
    membership = membership_path(live_app, first, last)
    page.goto(membership)
    community = page.locator("nav.crumbs a").nth(1)
    community.click()
    row = page.locator("#members tbody tr").filter(has_text=name)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=f"Remove {name}").click()
    expect(page.locator("#members")).to_contain_text(f"{name} was removed")
    page.locator("#members").get_by_role("link", name="Their conversation is kept").click()
    expect(page.locator("#removed-banner")).to_be_visible()
    expect(page.locator(".messages .msg").first).to_be_visible()
    page.get_by_role("button", name=re.compile("^Add to .* again$")).click()
    expect(page.locator("#removed-banner")).to_have_count(0)
    expect(page.locator(".flash-success")).to_contain_text("is a member of")


CRM_PAGES: list[tuple[str, str | Callable[[Flask], str]]] = [
    ("communities", "/communities"),
    ("community", lambda app: community_path(app, "Nordic sales network")),
    ("community-search", lambda app: community_path(app, "Engineering talent pool") + "?q=zzz"),
    ("membership", lambda app: membership_path(app, *first_prospect_in_conversation(app))),
]


def test_every_crm_page_fits_a_phone_and_passes_axe(page: Page, live_app: Flask, axe_source: str) -> None:
    sign_in(page, "sourcer@acme.example")
    found: list[str] = []
    for name, where in CRM_PAGES:
        path = where(live_app) if callable(where) else where
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            response = page.goto(path)
            assert response is not None and response.status == 200, (path, response and response.status)
            width = f"{size['width']}px"
            scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                found.append(f"{name} at {width}: {scroll} px wide in a window of {inner}")
            found += [f"{name} at {width}: {problem}" for problem in axe_problems(page, axe_source)]
            shot(page, f"page-{name}-{size['width']}")
    assert not found, "\n".join(found)


def test_globex_without_crm_has_no_communities(page: Page) -> None:
    sign_in(page, "recruiter@globex.example")
    expect(page.get_by_role("link", name="Communities")).to_have_count(0)
    response = page.goto("/communities")
    assert response is not None and response.status == 404
