"""A long thread opens at its newest page and loads earlier ones as the reader scrolls up; every channel
can be shown interleaved (the Inbox's thread); a refresh keeps what the reader had loaded."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests import factories as f
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import conversations, reads, subjects
from webapp.models import ConversationRead, Message, utcnow


@pytest.fixture
def long_thread(app, auth):
    org = f.messaging_org("Acme")
    recruiter = f.user(org, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS])
    lena = f.application(
        f.job(org, team=[recruiter]), f.candidate(org, "Lena", "Müller", mobile="+4915123456789")
    )
    conversation = conversations.for_subject(db.session, subjects.of_application(lena), create=True)
    start = utcnow() - timedelta(days=3)
    for n in range(120):
        channel = "whatsapp" if n % 4 == 3 else "sms"
        db.session.add(
            Message(
                conversation_id=conversation.id,
                channel=channel,
                direction="inbound" if n % 2 else "outbound",
                author_id=None if n % 2 else recruiter.id,
                body=f"Message number {n}",
                status="received" if n % 2 else "delivered",
                created_at=start + timedelta(minutes=n),
                updated_at=start + timedelta(minutes=n),
            )
        )
    db.session.commit()
    auth.login("recruiter@acme.test")
    return {"c": f"/conversations/{conversation.id}", "id": conversation.id, "user": recruiter, "lena": lena}


def numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"Message number (\d+)", html)]


def older_link(html: str) -> str | None:
    match = re.search(r'data-older hx-get="([^"]+)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def test_a_long_thread_opens_at_the_newest_page_and_loads_earlier_ones(client, long_thread) -> None:
    html = client.get(f"{long_thread['c']}/thread?tab=all", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert numbers(html) == list(range(70, 120))
    link = older_link(html)
    assert link is not None and "before=" in link
    page2 = client.get(link, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert numbers(page2) == list(range(20, 70))
    page3 = client.get(older_link(page2), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert numbers(page3) == list(range(20))
    assert older_link(page3) is None  # the beginning of the conversation


def test_one_channel_pages_through_its_own_messages(client, long_thread) -> None:
    html = client.get(f"{long_thread['c']}/thread?tab=whatsapp", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert numbers(html) == [n for n in range(120) if n % 4 == 3]  # 30: one page
    assert older_link(html) is None
    sms = client.get(f"{long_thread['c']}/thread?tab=sms", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert numbers(sms) == [n for n in range(120) if n % 4 != 3][-50:]
    assert "tab=sms" in older_link(sms)


def test_all_channels_interleaved_are_marked_with_their_channel_and_read(client, long_thread) -> None:
    html = client.get(f"{long_thread['c']}/thread?tab=all", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert 'role="tablist"' not in html  # no tabs: every channel in one thread
    assert html.count('class="channel-tag channel-whatsapp"') == len(
        [n for n in range(70, 120) if n % 4 == 3]
    )
    assert reads.unread_by_channel(db.session, long_thread["user"].id, long_thread["id"]) == {}
    markers = db.session.query(ConversationRead).filter_by(user_id=long_thread["user"].id).all()
    assert {m.channel for m in markers} >= {"sms", "whatsapp"}


def test_loading_earlier_messages_reads_nothing(client, long_thread) -> None:
    first = db.session.query(Message).order_by(Message.id).first()
    client.get(f"{long_thread['c']}/older?tab=all&before={first.id + 60}", headers={"HX-Request": "true"})
    assert db.session.query(ConversationRead).count() == 0


def test_a_refresh_keeps_what_the_reader_scrolled_up_to(client, long_thread) -> None:
    oldest_shown = db.session.query(Message).filter_by(body="Message number 10").one().id
    html = client.get(
        f"{long_thread['c']}/thread",
        query_string={"tab": "all", "from": oldest_shown},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert numbers(html) == list(range(10, 120))
    assert "before=" in older_link(html)


def test_the_panel_with_every_channel_and_a_send_that_keeps_it(client, long_thread) -> None:
    from tests.conftest import csrf_from

    f.credits(long_thread["lena"].job.organization, 5)
    f.number(long_thread["lena"].job.organization, "+4915123456700")
    db.session.commit()
    panel = client.get(long_thread["c"], headers={"HX-Request": "true"})
    html = panel.get_data(as_text=True)
    assert f'id="messaging-panel-{long_thread["id"]}"' in html and 'role="tablist"' not in html
    assert 'name="view" type="hidden" value="all"' in html
    # Without htmx the panel's address is the application's page.
    assert "/applications/" in client.get(long_thread["c"]).headers["Location"]
    token = csrf_from(client, "/jobs")
    sent = client.post(
        f"{long_thread['c']}/messages",
        data={"channel": "sms", "body": "Newest of all", "view": "all", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert sent.status_code == 200 and "HX-Push-Url" not in sent.headers
    html = sent.get_data(as_text=True)
    assert 'role="tablist"' not in html and numbers(html)[-1] == 119 and "Newest of all" in html
    assert 'name="view" type="hidden" value="all"' in html  # the fresh composer stays in this view
