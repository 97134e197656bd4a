"""The Inbox's thread pane: the open conversation's panel with every channel interleaved, read when
opened, "mark unread", and a thread that follows the page's one poll instead of polling itself."""

from __future__ import annotations

import re

from tests import test_inbox as _inbox
from tests.conftest import csrf_from
from tests.test_inbox import conversation_of, say, unread

# The fixtures of tests/test_inbox.py, by name.
world, talking = _inbox.world, _inbox.talking

HX = {"HX-Request": "true"}


def test_opening_a_conversation_shows_its_panel_and_reads_it(client, auth, talking) -> None:
    w = talking
    say(w["lena"], channel="whatsapp", text="On WhatsApp too")
    assert unread(w["recruiter"], w["lena"]) == 2
    auth.login("recruiter@acme.test")
    lena = conversation_of(w["lena"]).id
    pane = client.get(f"/inbox/conversations/{lena}", headers=HX).get_data(as_text=True)
    assert f'id="messaging-panel-{lena}"' in pane and 'role="tablist"' not in pane
    assert "Message 0" in pane and "On WhatsApp too" in pane  # both channels, one thread
    assert 'class="channel-tag channel-whatsapp"' in pane
    assert f'id="composer-{lena}"' in pane and 'name="view" type="hidden" value="all"' in pane
    # The pane's thread follows the page's poll (an event), it does not poll on its own.
    assert "every 2s" not in pane and "conversation-changed from:body" in pane
    assert unread(w["recruiter"], w["lena"]) == 0
    # Someone else's unread count is theirs.
    assert unread(w["manager"], w["lena"]) == 2


def test_the_whole_page_with_a_conversation_open_lists_it_read(client, auth, talking) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    lena = conversation_of(w["lena"]).id
    html = client.get(f"/inbox?c={lena}").get_data(as_text=True)
    row = re.search(rf'<li class="inbox-row([^"]*)" id="inbox-row-{lena}"', html)
    assert row is not None and "is-unread" not in row.group(1)
    assert f'id="messaging-panel-{lena}"' in html


def test_mark_unread_holds_until_the_conversation_is_opened_again(client, auth, talking) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    lena = conversation_of(w["lena"]).id
    pane = client.get(f"/inbox/conversations/{lena}", headers=HX).get_data(as_text=True)
    assert unread(w["recruiter"], w["lena"]) == 0
    version = re.search(r'data-version="([^"]+)"', pane).group(1)
    token = csrf_from(client, "/inbox")
    marked = client.post(f"/conversations/{lena}/unread", data={"csrf_token": token}, headers=HX)
    assert marked.status_code == 200 and "Marked as unread" in marked.get_data(as_text=True)
    assert unread(w["recruiter"], w["lena"]) == 1
    # The pane's thread asking whether anything changed (the page's poll saw the row change) reads
    # nothing: its messages are as they were.
    asked = client.get(
        f"/conversations/{lena}/thread", query_string={"tab": "all", "since": version}, headers=HX
    )
    assert asked.status_code == 204
    assert unread(w["recruiter"], w["lena"]) == 1
    client.get(f"/inbox/conversations/{lena}", headers=HX)
    assert unread(w["recruiter"], w["lena"]) == 0


def test_the_pane_of_another_teams_conversation_is_not_found(client, auth, talking) -> None:
    w = talking
    auth.login("manager@acme.test")
    mia = conversation_of(w["mia"]).id  # Designer: not the manager's job
    assert client.get(f"/inbox/conversations/{mia}", headers=HX).status_code == 404
    assert client.get(f"/conversations/{mia}", headers=HX).status_code == 404
    token = csrf_from(client, "/inbox")
    assert client.post(f"/conversations/{mia}/unread", data={"csrf_token": token}).status_code == 404
