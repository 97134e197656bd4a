"""A conversation is about an application or a community membership: the way of a message, the team
rules and the conversation's routes work the same for a prospect as for a candidate."""

from __future__ import annotations

import re

import pytest

from tests import factories as f
from tests.conftest import csrf_from
from tests.webhook_support import inbound, post
from webapp.accounts import access, permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.messaging import checks, compose, conversations, subjects, unmatched
from webapp.models import Conversation, Message

OUR, GRACE = "+4915123456700", "+4915123456788"


@pytest.fixture
def crm(app):
    org = f.messaging_org("Acme", sender_name="Acme Careers", has_crm=True)
    sourcer = f.user(org, "sourcer@acme.test", codes=[permissions.SOURCING_MESSAGING], name="Sam Sourcer")
    other_sourcer = f.user(org, "other@acme.test", codes=[permissions.SOURCING_MESSAGING])
    recruiter = f.user(org, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS])
    admin = f.user(org, "admin@acme.test", admin=True)
    f.number(org, OUR)
    nordic = f.community(org, "Nordic engineers", team=[sourcer, recruiter])
    f.community(org, "Designers", team=[other_sourcer])
    grace = f.prospect(org, "Grace", "Hopper", mobile=GRACE, email="grace@example.test")
    membership = f.membership(nordic, grace)
    f.credits(org, 10)
    db.session.commit()
    return {
        "org": org,
        "sourcer": sourcer,
        "other": other_sourcer,
        "recruiter": recruiter,
        "admin": admin,
        "membership": membership,
        "about": subjects.of_membership(membership),
    }


def test_a_prospect_is_texted_about_the_community(crm) -> None:
    about = crm["about"]
    message = compose.compose(db.session, crm["sourcer"], about, "sms", "Hi %FIRSTNAME%, about %JOBTITLE%")
    db.session.commit()
    assert message.body == "Hi Grace, about Nordic engineers"
    assert (message.from_addr, message.to_addr, message.credits) == (OUR, GRACE, 1)
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.community_membership_id == crm["membership"].id
    assert conversation.application_id is None
    assert credits.balance(db.session, crm["org"]) == 9


def test_writing_to_a_prospect_needs_the_sourcing_right_the_team_and_crm(crm) -> None:
    about = crm["about"]
    # The recruiter is on the team but holds the candidates' right, not the prospects'.
    with pytest.raises(checks.SendRefused, match="Sourcing – messaging"):
        compose.compose(db.session, crm["recruiter"], about, "sms", "Hi")
    assert checks.allowed_channels(crm["recruiter"], about) == ["email"]
    assert checks.allowed_channels(crm["sourcer"], about) == ["email", "sms", "whatsapp"]
    # Email goes, by any member of the team.
    compose.compose(db.session, crm["recruiter"], about, "email", "Hello", subject="Hi")
    with pytest.raises(
        checks.SendRefused, match="Only the sourcing team of this community can write to the prospect"
    ):
        compose.compose(db.session, crm["other"], about, "email", "Hi", subject="Hi")
    crm["org"].has_crm = False
    with pytest.raises(checks.SendRefused, match="does not have CRM"):
        compose.compose(db.session, crm["sourcer"], about, "sms", "Hi")
    assert checks.allowed_channels(crm["sourcer"], about) == ["email"]


def test_the_team_rules_in_sql(crm) -> None:
    conversation = conversations.for_subject(db.session, crm["about"], create=True)
    db.session.commit()
    assert access.get_conversation(db.session, crm["sourcer"], conversation.id) is conversation
    assert access.get_conversation(db.session, crm["admin"], conversation.id) is conversation
    assert access.get_conversation(db.session, crm["other"], conversation.id) is None
    elsewhere = f.user(f.org("Globex"), "boss@globex.test", admin=True)
    db.session.commit()
    assert access.get_conversation(db.session, elsewhere, conversation.id) is None
    assert access.may_write(db.session, crm["sourcer"], crm["about"])
    assert not access.may_write(db.session, crm["other"], crm["about"])


def test_a_prospect_conversation_through_its_routes(client, auth, crm) -> None:
    conversation = conversations.for_subject(db.session, crm["about"], create=True)
    db.session.commit()
    url = f"/conversations/{conversation.id}"
    auth.login("sourcer@acme.test")
    token = csrf_from(client, "/jobs")
    sent = client.post(
        f"{url}/messages",
        data={"channel": "sms", "body": "Hi %FIRSTNAME%", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert sent.status_code == 200
    html = sent.get_data(as_text=True)
    assert "Hi Grace" in html and f'id="thread-{conversation.id}"' in html
    # Its address is the prospect-community page, on the tab written on.
    assert sent.headers["HX-Push-Url"] == f"/memberships/{crm['membership'].id}?tab=sms"
    preview = client.post(
        f"{url}/preview", data={"channel": "sms", "body": "%JOBTITLE%", "csrf_token": token}
    ).get_data(as_text=True)
    assert re.search(r"\b16 of 160 GSM-7 units", preview)  # %JOBTITLE% is the community: "Nordic engineers"
    auth.logout()
    auth.login("other@acme.test")
    assert client.get(f"{url}/thread?tab=sms", headers={"HX-Request": "true"}).status_code == 404


def test_a_prospect_replies_asks_for_help_and_opts_out(client, crm) -> None:
    compose.compose(db.session, crm["sourcer"], crm["about"], "sms", "Hi Grace")
    db.session.commit()
    post(client, "/webhooks/vonage/inbound", inbound(OUR, GRACE, "Sounds interesting"))
    reply = db.session.query(Message).filter_by(body="Sounds interesting").one()
    conversation = db.session.get(Conversation, reply.conversation_id)
    assert conversation.community_membership_id == crm["membership"].id
    post(client, "/webhooks/vonage/inbound", inbound(OUR, GRACE, "HELP"))
    answer = (
        db.session.query(Message).filter(Message.author_id.is_(None), Message.direction == "outbound").one()
    )
    assert answer.conversation_id == conversation.id and "Acme Careers" in answer.body
    assert "application" not in answer.body  # a prospect has none
    post(client, "/webhooks/vonage/inbound", inbound(OUR, GRACE, "STOP"))
    db.session.expire_all()
    with pytest.raises(checks.SendRefused, match="opted out"):
        compose.compose(db.session, crm["sourcer"], crm["about"], "sms", "Still there?")


def test_an_unmatched_reply_can_join_a_prospect_conversation(crm) -> None:
    stray = Message(
        channel="sms",
        direction="inbound",
        body="Is this about the community?",
        status="received",
        provider_id="stray-1",
        organization_id=crm["org"].id,
        from_addr=GRACE,
        to_addr=OUR,
    )
    db.session.add(stray)
    db.session.commit()
    message = unmatched.assign(db.session, crm["admin"], stray.id, crm["about"])
    db.session.commit()
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.community_membership_id == crm["membership"].id
    elsewhere = f.messaging_org("Globex", has_crm=True)
    theirs = subjects.of_membership(f.membership(f.community(elsewhere), f.prospect(elsewhere)))
    stray2 = Message(
        channel="sms",
        direction="inbound",
        body="?",
        status="received",
        provider_id="stray-2",
        organization_id=crm["org"].id,
    )
    db.session.add(stray2)
    db.session.commit()
    with pytest.raises(unmatched.CannotAssign):
        unmatched.assign(db.session, crm["admin"], stray2.id, theirs)
