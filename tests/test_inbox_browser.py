"""The inbox in headless Chromium against the demo data: search, filters, the keyboard, history, and a
reply arriving while the user types (the live server, console watch and axe of tests/test_browser.py,
whose other tests may have run first: nothing here depends on the order they left)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests import test_browser as _browser
from tests.browser_support import axe_problems
from tests.test_browser import DESKTOP, PHONE, our_number, reply, shot, sign_in

pytestmark = pytest.mark.browser
# The fixtures of tests/test_browser.py, by name (this module gets its own live server from them).
browser_type_launch_args = _browser.browser_type_launch_args
live_app, live_server, base_url = _browser.live_app, _browser.live_server, _browser.base_url
axe_source, page = _browser.axe_source, _browser.page
ROWS = "#inbox-rows > li.inbox-row"


def open_inbox(page: Page, email: str = "recruiter@acme.example") -> None:
    sign_in(page, email)
    page.get_by_role("link", name="Inbox").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.locator(ROWS).first).to_be_visible()


def a_read_sms_conversation(page: Page, alone: bool = False) -> tuple[str, str, str]:
    """From the open inbox: a read conversation with a candidate, texted by SMS, some way down the list,
    whose name the search "e" keeps (and, alone, who has no other conversation in the list); its name,
    the candidate's mobile and our number (from its page)."""
    rows = page.locator(ROWS)
    names = rows.locator(".inbox-name").all_inner_texts()
    for row in rows.all()[3:]:
        name = row.locator(".inbox-name").inner_text()
        if "e" not in name.lower() or row.locator(".ch-sms").count() == 0:
            continue
        if alone and names.count(name) > 1:
            continue
        if row.locator(".inbox-unread").count() or row.locator(".marker-optout").count():
            continue
        href = row.locator("a").get_attribute("href")
        row.locator("a").click()
        link = page.locator("#inbox-thread").get_by_role("link", name="Application", exact=True)
        expect(page.locator("#inbox-thread").get_by_role("heading")).to_have_text(name)
        if link.count() == 0:
            continue
        page.goto(link.get_attribute("href") + "?tab=sms")
        mobile, ours = page.locator("#candidate-mobile").inner_text(), our_number(page)
        page.goto(href)
        return name, mobile, ours
    raise AssertionError("no conversation to reply to")


def test_search_filters_keyboard_and_history(page: Page) -> None:
    open_inbox(page)
    rows = page.locator(ROWS)
    expect(page).to_have_title(re.compile(r"^Inbox \(\d+\) · Relay$"))
    total = rows.count()
    assert total >= 20
    shot(page, "inbox")

    search = page.get_by_label("Search")
    search.fill("muller")  # accents aside
    expect(page).to_have_url(re.compile(r"[?&]q=muller"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Lena Müller")
    search.fill("take-home task")  # words of a message
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Amelia Jones")
    search.fill("")
    expect(rows).to_have_count(total)

    page.get_by_label("Unread").check()
    expect(page).to_have_url(re.compile(r"[?&]unread=1"))
    unread = rows.count()
    assert 0 < unread < total
    assert rows.locator(".inbox-unread").count() == unread
    page.get_by_label("Channel").select_option("whatsapp")
    expect(page).to_have_url(re.compile(r"channel=whatsapp"))
    for row in rows.all():
        expect(row.locator(".ch-whatsapp")).to_be_visible()
    shot(page, "inbox-filtered")
    page.get_by_label("Unread").uncheck()
    page.get_by_label("Channel").select_option("")
    expect(rows).to_have_count(total)

    # The keyboard: / to the search, j and k through the rows, Enter opens one.
    page.locator("h1").click()
    page.keyboard.press("/")
    expect(search).to_be_focused()
    page.locator("h1").click()
    page.keyboard.press("j")
    expect(rows.nth(0).locator("a")).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    second = rows.nth(1)
    expect(second.locator("a")).to_be_focused()
    name = second.locator(".inbox-name").inner_text()
    page.keyboard.press("Enter")
    pane = page.locator("#inbox-thread")
    expect(pane.get_by_role("heading")).to_have_text(name)
    expect(page).to_have_url(re.compile(r"[?&]c=\d+"))
    expect(second.locator("a")).to_have_attribute("aria-current", "true")
    shot(page, "inbox-open")

    # The address holds the state: reload, back and forward land on it.
    page.reload()
    expect(pane.get_by_role("heading")).to_have_text(name)
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"[?&]c="))
    page.go_forward()
    expect(page.locator("#inbox-thread").get_by_role("heading")).to_have_text(name)


def test_a_reply_moves_its_row_to_the_top_while_the_user_types(page: Page) -> None:
    open_inbox(page)
    # The server this page talks to (the browser's base URL), whichever test module started it.
    origin = re.match(r"https?://[^/]+", page.url)[0]
    # Alone: a person with two conversations (another test module may have written to them for a second
    # job) would have two rows with the name, and the reply moves only one.
    name, mobile, ours = a_read_sms_conversation(page, alone=True)
    rows = page.locator(ROWS)
    first_name = name.split()[0]
    assert rows.first.locator(".inbox-name").inner_text() != name
    title = page.title()
    # The user is typing a search that the row matches, and has scrolled the list a little.
    search = page.get_by_label("Search")
    search.click()
    search.press_sequentially("e", delay=50)
    expect(page).to_have_url(re.compile(r"[?&]q=e"))
    page.set_viewport_size({"width": 1366, "height": 500})
    page.evaluate("() => window.scrollTo(0, 260)")
    search.focus()
    # Where the reader is: the lowest row in view that the reply does not move (by its id: positions
    # change), the row inbox.js holds still. Which rows are in view depends on the conversation picked.
    anchor_id = page.evaluate(
        """(name) => [...document.querySelectorAll('#inbox-rows > li.inbox-row')].filter((row) => {
               const box = row.getBoundingClientRect();
               return box.bottom > 0 && box.top < window.innerHeight
                 && row.querySelector('.inbox-name').textContent.trim() !== name;
           }).pop().id""",
        name,
    )
    anchor = page.locator(f"#{anchor_id}")
    before = anchor.evaluate("el => el.getBoundingClientRect().top")
    reply(origin, ours, mobile, f"Hello from {first_name}, one question")

    expect(rows.first.locator(".inbox-name")).to_have_text(name, timeout=3000)
    expect(rows.first.locator(".inbox-unread")).to_have_text(re.compile(r"^1"))
    expect(rows.first).to_contain_text("one question")
    # Moved, not copied: no conversation's row is in the list twice (by its id: the name may have two).
    ids = page.evaluate("() => [...document.querySelectorAll('#inbox-rows > li.inbox-row')].map((r) => r.id)")
    assert len(ids) == len(set(ids)), ids
    expect(page).not_to_have_title(title)
    # What was being typed and where the user was reading did not move.
    expect(search).to_be_focused()
    expect(search).to_have_value("e")
    after = anchor.evaluate("el => el.getBoundingClientRect().top")
    assert abs(after - before) <= 2, (before, after)
    search.press_sequentially("r", delay=50)
    expect(search).to_have_value("er")


# A small phone's first screen (375 × 667).
SMALL_PHONE = {"width": 375, "height": 667}


def test_the_filters_fold_behind_one_control_that_counts_them(page: Page) -> None:
    """On a phone the filters besides the search fold behind "Filters · n", so that the conversations
    come first; where the list has a column of its own they are open; the address holds them."""
    sign_in(page, "recruiter@acme.example")
    page.set_viewport_size(SMALL_PHONE)
    page.goto("/inbox?channel=sms&mine=1")  # filters that other tests' reading does not change
    control = page.locator("#inbox-more-filters > summary")
    expect(control).to_have_text("Filters · 2")
    expect(page.get_by_label("Channel")).to_be_hidden()
    expect(page.locator(ROWS).first).to_be_in_viewport(ratio=1)  # the whole first conversation
    shot(page, "inbox-filters-folded-375")

    # Opened: the filters the address holds; a change is counted at once, and goes into the address.
    control.click()
    expect(page.get_by_label("Channel")).to_have_value("sms")
    expect(page.get_by_label("Mine")).to_be_checked()
    page.get_by_label("Needs a reply").check()
    expect(page).to_have_url(re.compile(r"[?&]reply=1"))
    expect(control).to_have_text("Filters · 3")
    shot(page, "inbox-filters-open-375")
    page.get_by_label("Channel").select_option("")
    page.get_by_label("Mine").uncheck()
    page.get_by_label("Needs a reply").uncheck()
    expect(control).to_have_text("Filters")
    expect(page).not_to_have_url(re.compile(r"reply=|mine=|channel=sms"))

    # Wide: open as the page loads, with the count all the same.
    page.set_viewport_size(DESKTOP)
    page.goto("/inbox?mine=1")
    expect(page.locator("#inbox-more-filters")).to_have_attribute("open", "")
    expect(control).to_have_text("Filters · 1")
    expect(page.get_by_label("Mine")).to_be_visible()
    expect(page.get_by_label("Mine")).to_be_checked()
    shot(page, "inbox-filters-1366")


@pytest.mark.parametrize(
    "who", ["recruiter@acme.example", "recruiter@globex.example", "sourcer@acme.example"]
)
def test_the_inbox_fits_a_phone_and_passes_axe(page: Page, axe_source: str, who: str) -> None:
    sign_in(page, who)
    found: list[str] = []
    page.goto("/inbox")
    first = page.locator(ROWS + " a").first
    paths = ["/inbox"]
    if first.count():
        paths.append(first.get_attribute("href"))
    for path in paths:
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            page.goto(path)
            scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                found.append(f"{path} at {size['width']}px: {scroll} px wide")
            found += [f"{path} at {size['width']}px: {p}" for p in axe_problems(page, axe_source)]
            shot(page, f"inbox-{who.split('@')[0]}-{who.split('@')[1].split('.')[0]}-{size['width']}")
    if who == "recruiter@globex.example":
        assert page.locator("#inbox-channel").count() == 0 and page.locator(".ch").count() == 0
    assert not found, "\n".join(found)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1366", "375"])
def test_reply_from_the_pane_and_see_the_answer_come_in(page: Page, size: dict) -> None:
    page.set_viewport_size(size)
    open_inbox(page)
    rows = page.locator(ROWS)
    # A conversation texted by SMS, not opted out, with someone who has no other conversation (a reply
    # goes to the conversation last written in: this test must not pull another test's conversation
    # away), from the bottom of the list: open it with the keyboard.
    names = rows.locator(".inbox-name").all_inner_texts()
    target = None
    for row in reversed(rows.all()):
        name = row.locator(".inbox-name").inner_text()
        if (
            names.count(name) == 1
            and row.locator(".ch-sms").count()
            and not row.locator(".marker-optout").count()
        ):
            target = row
            break
    assert target is not None
    name = target.locator(".inbox-name").inner_text()
    target.locator("a").focus()
    page.keyboard.press("Enter")
    pane = page.locator("#inbox-thread")
    expect(pane.get_by_role("heading", name=name)).to_be_visible()
    expect(pane.locator("[data-thread-scroll]")).to_be_visible()
    expect(pane.get_by_role("tablist")).to_have_count(0)  # every channel in one thread

    # r: to the reply box; the SMS goes from the pane and shows in its thread, the pane staying put.
    page.locator("body").click(position={"x": 2, "y": 2})
    page.keyboard.press("r")
    box = pane.get_by_role("textbox", name="Message", exact=True)
    expect(box).to_be_focused()
    pane.get_by_role("radio", name="SMS").check()
    text = f"Can you come in on Friday? ({size['width']})"
    box.fill(text)
    pane.get_by_role("button", name="Send").click()
    sent = pane.locator(".msg-outbound").last
    expect(sent).to_contain_text(text)
    expect(sent.locator(".channel-tag")).to_have_text("SMS")
    expect(box).to_have_value("")
    expect(page).to_have_url(re.compile(r"/inbox\?.*c=\d+|/inbox\?c=\d+"))
    # The candidate answers (the simulator posts a signed webhook to the app itself): the pane shows it
    # within 3 s, and its row is at the top of the list.
    pane.get_by_label("Simulated reply").fill("Friday is perfect")
    pane.get_by_role("button", name="Simulate a reply").click()
    # Meanwhile the recruiter starts the next message: the live update leaves it as typed.
    draft = "And bring your portfolio"
    box.click()
    box.press_sequentially(draft, delay=20)
    expect(pane.locator(".msg-inbound").last).to_contain_text("Friday is perfect", timeout=3000)
    expect(rows.first.locator(".inbox-name")).to_have_text(name, timeout=3000)
    expect(rows.first.locator(".inbox-preview")).to_contain_text("Friday is perfect", timeout=3000)
    expect(box).to_have_value(draft)
    expect(box).to_be_focused()
    shot(page, f"inbox-pane-reply-{size['width']}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_changed_row_comes_with_the_htmx_poll_and_keeps_the_focus(page: Page) -> None:
    """A reply moves its row to the top through the poll, the reader still on it. (The poll resting in
    a hidden tab: tests/test_browser.py.)"""
    open_inbox(page)
    origin = re.match(r"https?://[^/]+", page.url)[0]
    name, mobile, ours = a_read_sms_conversation(page, alone=True)  # open in the pane
    rows = page.locator(ROWS)
    conversation = re.search(r"[?&]c=(\d+)", page.url)[1]
    assert rows.first.get_attribute("id") != f"inbox-row-{conversation}"
    polls: list = []
    page.on("request", lambda request: polls.append(request) if "/inbox/changes" in request.url else None)
    # The reader is on the conversation's row when its reply comes in.
    link = page.locator(f"#inbox-link-{conversation}")
    link.focus()
    reply(origin, ours, mobile, "A question about the contract")
    expect(rows.first).to_have_id(f"inbox-row-{conversation}", timeout=3000)
    expect(rows.first).to_contain_text("A question about the contract")
    expect(rows.filter(has_text=name)).to_have_count(1)
    # The new row keeps the focus and the open conversation's mark.
    expect(link).to_be_focused()
    expect(link).to_have_attribute("aria-current", "true")
    expect(page.locator("#inbox-rows [aria-current]")).to_have_count(1)
    # It came through htmx: every poll names its element and the list it answers into.
    assert polls
    for request in polls:
        assert request.headers.get("hx-trigger") == "inbox-poll", request.headers
        assert request.headers.get("hx-target") == "inbox-list", request.headers
