"""The Inbox's poll with changes on a list longer than a page: only the rows the page has loaded are read
and sent, the rows land where a fresh list would show them however many changed, and the statements of
a poll do not grow with the number of changes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests import factories as f
from tests import test_inbox as _inbox
from tests.test_inbox import HX, Statements, conversation_of, poll_url, put_in, say, taken_out
from webapp.extensions import db
from webapp.inbox import queries
from webapp.messaging import reads
from webapp.models import utcnow

# The fixtures of tests/test_inbox.py, by name.
world = _inbox.world

LONG = 36  # conversations: a first page of queries.PAGE_SIZE and some below it


@pytest.fixture
def long_list(world):
    """The recruiter's list: LONG conversations, one message each, oldest first (the "people" in order)."""
    w = world
    start = utcnow() - timedelta(hours=2)
    people = []
    for i in range(LONG):
        application = f.application(w["backend"], f.candidate(w["acme"], f"Person{i:02d}", "Long"))
        say(application, text=f"Message {i}", at=start + timedelta(minutes=i))
        people.append(application)
    return {**w, "people": people}


def ids_in(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="inbox-row[^"]*" id="inbox-row-(\d+)"', html)]


def until_of(html: str) -> str | None:
    found = re.search(r'id="inbox-until" name="until" value="([^"]+)"', html)
    return found.group(1) if found else None


def swapped(rows: list[int], answer: str, sentinel: bool) -> list[int]:
    """The page's rows after the poll's answer, swapped as htmx swaps it (in the order of the answer):
    the changed rows out, then each row in before its target, at the end, or before the sentinel."""
    out = {
        int(part.removeprefix("#inbox-row-")) for part in taken_out(answer) if part.startswith("#inbox-row-")
    }
    page: list[int | str] = [r for r in rows if r not in out] + (["more"] if sentinel else [])
    for where, conversation in put_in(answer):
        row = int(conversation)
        if where.startswith("beforebegin:#inbox-row-"):
            page.insert(page.index(int(where.removeprefix("beforebegin:#inbox-row-"))), row)
        elif where == "beforeend:#inbox-rows":
            page.append(row)
        else:
            assert where == "beforebegin:#inbox-rows > .inbox-more", where
            page.insert(page.index("more"), row)
    return [r for r in page if r != "more"]


def list_now(client) -> list[int]:
    """The whole list as it is now, newest first (a fresh page, and the pages after it)."""
    html = client.get("/inbox").get_data(as_text=True)
    found = ids_in(html)
    while until_of(html):
        html = client.get(f"/inbox/more?after={until_of(html)}", headers=HX).get_data(as_text=True)
        found += ids_in(html)
    return found


@pytest.mark.parametrize("scan", [queries.PLACES_SCAN, 3, 1])
def test_a_poll_after_many_changes_puts_every_row_where_a_fresh_list_shows_it(
    client, auth, long_list, monkeypatch, scan
) -> None:
    # scan: how many unchanged rows one ordered range reads before the rest are placed one by one.
    monkeypatch.setattr(queries, "PLACES_SCAN", scan)
    w = long_list
    auth.login("recruiter@acme.test")
    html = client.get("/inbox").get_data(as_text=True)
    rows, until = ids_in(html), until_of(html)
    assert len(rows) == queries.PAGE_SIZE and until is not None
    url = f"{poll_url(html)}&until={until}"
    people = w["people"]  # oldest first: people[-1] is the top row, people[:6] are not loaded
    # Replies from below the loaded rows (they move to the top), from the middle and from the last
    # loaded row; rows read where they are (the top, the middle, the last loaded, one below).
    for i in (0, 3, 20, 6, 11):
        say(people[i], text=f"Reply {i}")
    for i in (35, 17, 7, 2):
        reads.mark_conversation_read(db.session, w["recruiter"].id, conversation_of(people[i]))
        db.session.commit()
    answer = client.get(url, headers=HX).get_data(as_text=True)
    now = list_now(client)
    # The page holds what it loaded (down to `until`) and the replies that came to the top.
    loaded = now[: now.index(conversation_of(people[7]).id) + 1]
    assert swapped(rows, answer, sentinel=True) == loaded
    below = conversation_of(people[2]).id  # read, below the loaded rows: out of the page, not sent
    assert f"#inbox-row-{below}" in taken_out(answer) and below not in ids_in(answer)
    # The next poll, from this answer's marker, is unchanged; a reply then goes to the top again.
    assert client.get(f"{poll_url(answer)}&until={until}", headers=HX).status_code == 204
    say(people[12], text="Once more")
    again = client.get(f"{poll_url(answer)}&until={until}", headers=HX).get_data(as_text=True)
    assert swapped(loaded, again, sentinel=True) == list_now(client)[: len(loaded)]


def test_a_change_below_the_loaded_rows_is_not_read_or_sent(client, auth, long_list) -> None:
    w = long_list
    auth.login("recruiter@acme.test")
    html = client.get("/inbox").get_data(as_text=True)
    url = f"{poll_url(html)}&until={until_of(html)}"
    lowest = conversation_of(w["people"][0])
    assert lowest.id not in ids_in(html)
    reads.mark_conversation_read(db.session, w["recruiter"].id, lowest)
    db.session.commit()
    db.session.remove()
    with Statements() as counted:
        answer = client.get(url, headers=HX).get_data(as_text=True)
    # Taken out (the page may have loaded it since), never put in, and its row never read.
    assert taken_out(answer) == ["#inbox-poll", f"#inbox-row-{lowest.id}"] and put_in(answer) == []
    assert not any("opt_out" in s for s in counted.seen), "the row statement was sent"


def test_the_statements_of_a_poll_do_not_grow_with_its_changes(client, auth, long_list) -> None:
    w = long_list
    auth.login("recruiter@acme.test")
    seen = {}
    for changed, people in ((2, w["people"][-2:]), (20, w["people"][-22:-2])):
        html = client.get("/inbox").get_data(as_text=True)
        url = f"{poll_url(html)}&until={until_of(html)}"
        for person in people:
            reads.mark_conversation_read(db.session, w["recruiter"].id, conversation_of(person))
        db.session.commit()
        db.session.remove()
        with Statements() as counted:
            answer = client.get(url, headers=HX).get_data(as_text=True)
        assert len(put_in(answer)) == changed
        seen[changed] = counted.seen
    # As many statements, each with as many SELECTs (no subquery per row), and no list of jobs read
    # for a form the poll does not show.
    assert len(seen[2]) == len(seen[20])
    assert [s.count("SELECT") for s in seen[2]] == [s.count("SELECT") for s in seen[20]]
    assert not any("FROM job" in s for s in seen[20])
