"""The reply channel on the pages, with the demo's people: the application page opens on its tab with
*Send as* on it and says why; the Inbox pane and the prospect page preselect it too; a tab in the
address wins. (The rule itself: tests/test_reply_channel.py.)"""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.conftest import Auth
from webapp import demo
from webapp.extensions import db
from webapp.models import Application, Candidate, CommunityMembership, Conversation, Prospect

# Who, their job, the channel preselected and the reason said under "Send as".
CANDIDATES = [
    ("Oliver Smith", "email", "Replying by email, the channel of the last message."),
    ("Nora Hansen", "email", "Replying by email, the channel of the last message."),
    ("Grace Murphy", "whatsapp", "Replying by WhatsApp, where Grace wrote last."),
    ("Felix Fischer", "email", "By email: Felix opted out of texts."),
    ("Lena Müller", "whatsapp", "Replying by WhatsApp, where Lena wrote last."),
    ("Amelia Jones", "sms", "Replying by SMS, where Amelia wrote last."),
]


def seeded(client) -> Auth:
    demo.seed(db.session)
    db.session.commit()
    return Auth(client)


def application_of(name: str) -> Application:
    """The demo candidate's application that has a conversation."""
    first, last = name.split(" ", 1)
    found = db.session.scalars(
        sa.select(Application)
        .join(Application.candidate)
        .join(Conversation, Conversation.application_id == Application.id)
        .where(Candidate.first_name == first, Candidate.last_name == last)
        .order_by(Application.id)
    ).first()
    assert found is not None, name
    return found


def conversation_of(application: Application) -> int:
    found = db.session.scalar(sa.select(Conversation.id).where(Conversation.application_id == application.id))
    assert found is not None
    return found


def chosen(html: str, uid: int) -> tuple[str | None, str, str]:
    """The selected tab (None without tabs), the checked channel, and the reason's channel and text."""
    tab = re.search(rf'id="tab-{uid}-(\w+)"[^>]*aria-selected="true"', html)
    checked = re.findall(r'name="channel" value="(\w+)" checked', html)
    assert len(checked) == 1, checked
    reason = re.search(rf'id="reply-reason-{uid}" data-reply-channel="(\w+)">([^<]+)<', html)
    assert reason, "no reason under Send as"
    return (tab.group(1) if tab else None), checked[0], f"{reason.group(1)}: {reason.group(2)}"


def counter_of(html: str) -> str:
    block = html[html.index('<div id="counter-') :]
    return block[: block.index("</div>")]


def test_the_demo_candidates_are_answered_where_they_are(client) -> None:
    """One seeded demo for every case (seeding is the slow part)."""
    seeded(client).login("recruiter@acme.example", demo.PASSWORD)
    for name, channel, reason in CANDIDATES:
        application = application_of(name)
        uid = conversation_of(application)
        # The application page opens on the channel's tab, Send as on it, and says why.
        html = client.get(f"/applications/{application.id}").get_data(as_text=True)
        assert chosen(html, uid) == (channel, channel, f"{channel}: {reason}"), name
        # The Inbox's pane: every channel interleaved, the composer on the same channel.
        pane = client.get(f"/inbox/conversations/{uid}", headers={"HX-Request": "true"})
        assert chosen(pane.get_data(as_text=True), uid) == (None, channel, f"{channel}: {reason}"), name

    # Felix opted out: email reaches him, and the counter speaks of email, not of the opt-out.
    felix = application_of("Felix Fischer")
    counter = counter_of(client.get(f"/applications/{felix.id}").get_data(as_text=True))
    assert "email is free" in counter and "opted out" not in counter

    # A tab in the address wins: it opens, and Send as follows it; the reason stays the WhatsApp one,
    # which the page's css shows only while WhatsApp is chosen.
    grace = application_of("Grace Murphy")
    uid = conversation_of(grace)
    tab, checked, reason = chosen(client.get(f"/applications/{grace.id}?tab=sms").get_data(as_text=True), uid)
    assert (tab, checked) == ("sms", "sms") and reason.startswith("whatsapp: ")

    # Addresses without a tab lead to the page on the reply channel's tab.
    oliver = application_of("Oliver Smith")
    uid = conversation_of(oliver)
    assert client.get(f"/conversations/{uid}").headers["Location"] == f"/applications/{oliver.id}"
    assert client.get(f"/conversations/{uid}/thread").headers["Location"] == (
        f"/applications/{oliver.id}?tab=email"
    )


def test_the_demo_prospects_too(client) -> None:
    seeded(client).login("sourcer@acme.example", demo.PASSWORD)
    for name, channel, reason in [
        ("Paul Becker", "whatsapp", "Replying by WhatsApp, where Paul wrote last."),
        ("Emil Berg", "email", "Replying by email, the channel of the last message."),
    ]:
        first, last = name.split(" ", 1)
        membership, uid = db.session.execute(
            sa.select(CommunityMembership, Conversation.id)
            .join(CommunityMembership.prospect)
            .join(Conversation, Conversation.community_membership_id == CommunityMembership.id)
            .where(Prospect.first_name == first, Prospect.last_name == last)
        ).one()
        html = client.get(f"/memberships/{membership.id}").get_data(as_text=True)
        assert chosen(html, uid) == (channel, channel, f"{channel}: {reason}"), name
