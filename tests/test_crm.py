"""The CRM's pages: communities, their members (adding and removing prospects), the prospect-community
page, the entitlement and sourcing-team rules, the Inbox's prospects, and a person who is both a
candidate and a prospect."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.conftest import csrf_from
from tests.webhook_support import inbound, post
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import checks, compose, conversations, subjects
from webapp.models import (
    CommunityMembership,
    Conversation,
    Message,
    MessageTemplate,
    Prospect,
    SendingNumber,
    WhatsappTemplate,
)

OUR, SECOND, GRACE = "+4915123456700", "+4915123456701", "+4915123456788"


@pytest.fixture
def crm(app):
    org = f.messaging_org("Acme", sender_name="Acme Careers", has_crm=True)
    sourcer = f.user(org, "sourcer@acme.test", codes=[permissions.SOURCING_MESSAGING], name="Sam Sourcer")
    other = f.user(org, "other@acme.test", codes=[permissions.SOURCING_MESSAGING], name="Olga Other")
    admin = f.user(org, "admin@acme.test", admin=True)
    f.number(org, OUR)
    nordic = f.community(org, "Nordic engineers", team=[sourcer])
    designers = f.community(org, "Designers", team=[other])
    grace = f.prospect(org, "Grace", "Hopper", mobile=GRACE, email="grace@example.test")
    membership = f.membership(nordic, grace)
    f.credits(org, 20)
    db.session.commit()
    return {
        "org": org,
        "sourcer": sourcer,
        "other": other,
        "admin": admin,
        "nordic": nordic,
        "designers": designers,
        "grace": grace,
        "membership": membership,
    }


def _add(client, community_id: int, token: str, htmx: bool = True, **fields: str):
    data = {"first_name": "", "last_name": "", "mobile": "", "email": "", "csrf_token": token, **fields}
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(f"/communities/{community_id}/members", data=data, headers=headers)


# --- Entitlement and scoping ---------------------------------------------------------------------


def test_without_crm_there_are_no_communities(client, auth, crm) -> None:
    auth.login("sourcer@acme.test")
    assert 'href="/communities"' in client.get("/jobs").get_data(as_text=True)
    conversation = conversations.for_subject(
        db.session, subjects.of_membership(crm["membership"]), create=True
    )
    db.session.commit()
    crm["org"].has_crm = False
    db.session.commit()
    assert 'href="/communities"' not in client.get("/jobs").get_data(as_text=True)
    for url in (
        "/communities",
        f"/communities/{crm['nordic'].id}",
        f"/memberships/{crm['membership'].id}",
        f"/conversations/{conversation.id}",
    ):
        assert client.get(url).status_code == 404, url
    token = csrf_from(client, "/jobs")
    assert (
        _add(client, crm["nordic"].id, token, first_name="A", last_name="B", mobile=SECOND).status_code == 404
    )
    # Nor in the Inbox, for the team or an administrator.
    assert "Grace Hopper" not in client.get("/inbox").get_data(as_text=True)
    auth.logout()
    auth.login("admin@acme.test")
    assert "Grace Hopper" not in client.get("/inbox").get_data(as_text=True)
    assert client.get(f"/conversations/{conversation.id}").status_code == 404


def test_the_sourcing_team_sees_its_communities_and_nobody_elses(client, auth, crm) -> None:
    auth.login("sourcer@acme.test")
    page = client.get("/communities").get_data(as_text=True)
    assert "Nordic engineers" in page and "Designers" not in page
    assert client.get(f"/communities/{crm['designers'].id}").status_code == 404
    assert client.get(f"/memberships/{crm['membership'].id}").status_code == 200
    auth.logout()
    auth.login("other@acme.test")
    assert client.get(f"/communities/{crm['nordic'].id}").status_code == 404
    assert client.get(f"/memberships/{crm['membership'].id}").status_code == 404
    token = csrf_from(client, "/communities")
    assert (
        client.post(f"/memberships/{crm['membership'].id}/remove", data={"csrf_token": token}).status_code
        == 404
    )
    auth.logout()
    auth.login("admin@acme.test")
    page = client.get("/communities").get_data(as_text=True)
    assert "Nordic engineers" in page and "Designers" in page
    # Another customer's, never.
    globex = f.org("Globex", has_crm=True)
    f.user(globex, "boss@globex.test", admin=True)
    db.session.commit()
    auth.logout()
    auth.login("boss@globex.test")
    assert client.get(f"/communities/{crm['nordic'].id}").status_code == 404
    assert client.get(f"/memberships/{crm['membership'].id}").status_code == 404
    assert "Nordic" not in client.get("/communities").get_data(as_text=True)


def test_the_community_page_lists_its_sourcing_team(client, auth, crm) -> None:
    auth.login("admin@acme.test")
    html = client.get(f"/communities/{crm['nordic'].id}").get_data(as_text=True)
    panel = re.search(r'<div class="card" id="sourcing-team">(.*?)</div>', html, re.S)
    assert panel, html
    assert re.findall(r"<li>([^<]*)</li>", panel[1]) == ["Sam Sourcer"]
    # Olga is on another community's team (and the admin on none): not listed here.
    html = client.get(f"/communities/{crm['designers'].id}").get_data(as_text=True)
    panel = re.search(r'<div class="card" id="sourcing-team">(.*?)</div>', html, re.S)
    assert re.findall(r"<li>([^<]*)</li>", panel[1]) == ["Olga Other"]
    empty = f.community(crm["org"], "Empty")
    db.session.commit()
    html = client.get(f"/communities/{empty.id}").get_data(as_text=True)
    panel = re.search(r'<div class="card" id="sourcing-team">(.*?)</div>', html, re.S)
    assert "<li>" not in panel[1] and "Nobody yet" in panel[1]


def test_the_admin_person_page_offers_sourcing_teams_only_with_the_crm(client, auth, crm) -> None:
    f.user(crm["org"], "people@acme.test", codes=[permissions.ADMIN_USERS])
    db.session.commit()
    auth.login("people@acme.test")
    url = f"/admin/people/{crm['sourcer'].id}"
    html = client.get(url).get_data(as_text=True)
    assert "Sourcing team of" in html
    assert re.search(rf'name="communities" value="{crm["nordic"].id}" checked', html)
    crm["org"].has_crm = False
    db.session.commit()
    html = client.get(url).get_data(as_text=True)
    assert "Sourcing team of" not in html and 'name="communities"' not in html
    assert "Nordic engineers" not in html and "Hiring team of" in html
    # Saving the teams the page shows keeps the sourcing teams it does not show (nor lets them be set).
    job = f.job(crm["org"], title="Backend engineer")
    db.session.commit()
    token = csrf_from(client, url)
    saved = client.post(
        f"{url}/teams", data={"jobs": [job.id], "communities": [crm["designers"].id], "csrf_token": token}
    )
    assert saved.status_code == 303
    from webapp.accounts import people

    db.session.expire_all()
    assert people.team_ids(db.session, crm["sourcer"]) == ({job.id}, {crm["nordic"].id})


# --- Members ---------------------------------------------------------------------------------------


def test_adding_a_prospect_parses_the_number_into_e164(client, auth, crm) -> None:
    auth.login("sourcer@acme.test")
    url = f"/communities/{crm['nordic'].id}"
    token = csrf_from(client, url)
    added = _add(
        client, crm["nordic"].id, token, first_name="Ada", last_name="Lovelace", mobile="+46 (70) 123-45 67"
    )
    assert added.status_code == 200
    assert added.headers["HX-Trigger-After-Settle"] == "members-changed"
    html = added.get_data(as_text=True)
    assert "Ada Lovelace added" in html
    assert 'value="Ada"' not in html  # a fresh form for the next one
    ada = db.session.scalar(sa.select(Prospect).where(Prospect.last_name == "Lovelace"))
    assert (ada.mobile, ada.country, ada.organization_id) == ("+46701234567", "SE", crm["org"].id)
    listing = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Ada Lovelace" in listing and "Grace Hopper" in listing and "2 members" in listing


@pytest.mark.parametrize(
    ("fields", "error", "field"),
    [
        ({"mobile": "070 123 45 67"}, "international format", "mobile"),
        ({"mobile": "+46 70 12"}, "is not a valid phone number", "mobile"),
        ({"mobile": ""}, "Enter a mobile number or an email address", "mobile"),
        ({"last_name": "", "mobile": "+46701234567"}, "last name", "last_name"),
        ({"email": "not-an-address", "mobile": ""}, "Enter an email address like", "email"),
    ],
)
def test_a_bad_prospect_is_refused_beside_its_field_and_keeps_what_was_typed(
    client, auth, crm, fields, error, field
) -> None:
    auth.login("sourcer@acme.test")
    token = csrf_from(client, f"/communities/{crm['nordic'].id}")
    typed = {"first_name": "Ada", "last_name": "Lovelace", **fields}
    answer = _add(client, crm["nordic"].id, token, **typed)
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert re.search(rf'id="{field}-error">[^<]*{re.escape(error)}', html), html
    assert 'value="Ada"' in html
    assert "HX-Trigger-After-Settle" not in answer.headers
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Prospect)) == 1


def test_a_duplicate_is_refused_and_a_known_prospect_is_added_not_copied(client, auth, crm) -> None:
    crm["grace"].email = "grace@example.com"  # the form's Email check refuses the reserved .test
    db.session.commit()
    auth.login("admin@acme.test")
    token = csrf_from(client, "/communities")
    nordic, designers = crm["nordic"].id, crm["designers"].id
    # Already a member: said beside the number, in any format it is typed.
    answer = _add(client, nordic, token, first_name="Grace", last_name="Hopper", mobile="+49 151 23456788")
    assert answer.status_code == 422
    assert re.search(
        r'id="mobile-error">Grace Hopper is already a member of Nordic engineers',
        answer.get_data(as_text=True),
    )
    # Someone else's number.
    answer = _add(client, designers, token, first_name="Alan", last_name="Turing", mobile=GRACE)
    assert answer.status_code == 422
    assert re.search(
        r'id="mobile-error">[^<]*already the number of Grace Hopper', answer.get_data(as_text=True)
    )
    # Someone else's address (no number typed): beside the email.
    answer = _add(client, designers, token, first_name="Alan", last_name="Turing", email="GRACE@example.com")
    assert answer.status_code == 422
    assert re.search(
        r'id="email-error">[^<]*already the address of Grace Hopper', answer.get_data(as_text=True)
    )
    # Already a member, found by the email: beside the email.
    answer = _add(client, nordic, token, first_name="Grace", last_name="Hopper", email="grace@example.com")
    assert answer.status_code == 422
    assert re.search(r'id="email-error">Grace Hopper is already a member', answer.get_data(as_text=True))
    # The same person (accents and case aside) in a second community: the same prospect, a new membership.
    answer = _add(client, designers, token, first_name="grace", last_name="HOPPER", mobile=GRACE)
    assert answer.status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Prospect)) == 1
    memberships = db.session.scalars(
        sa.select(CommunityMembership).where(CommunityMembership.prospect_id == crm["grace"].id)
    ).all()
    assert {m.community_id for m in memberships} == {nordic, designers}
    # Without htmx: the page again with the reason, or a redirect with a message.
    answer = _add(client, nordic, token, htmx=False, first_name="Grace", last_name="Hopper", mobile=GRACE)
    assert answer.status_code == 422
    assert re.search(r'id="mobile-error">[^<]*already a member', answer.get_data(as_text=True))
    answer = _add(
        client, nordic, token, htmx=False, first_name="Linus", last_name="T", email="linus@example.com"
    )
    assert answer.status_code == 303


def test_removing_a_member_keeps_the_conversation_and_stops_writing(client, auth, crm) -> None:
    about = subjects.of_membership(crm["membership"])
    compose.compose(db.session, crm["sourcer"], about, "sms", "Hi Grace")
    db.session.commit()
    auth.login("sourcer@acme.test")
    url = f"/communities/{crm['nordic'].id}"
    token = csrf_from(client, url)
    removed = client.post(
        f"/memberships/{crm['membership'].id}/remove",
        data={"csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert removed.status_code == 200 and "was removed" in removed.get_data(as_text=True)
    listing = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Grace Hopper" not in listing and "0 members" in listing
    page = client.get(f"/memberships/{crm['membership'].id}").get_data(as_text=True)
    assert "Hi Grace" in page and 'id="removed-banner"' in page
    db.session.expire_all()
    with pytest.raises(checks.SendRefused, match="was removed from Nordic engineers"):
        compose.compose(db.session, crm["sourcer"], subjects.of_membership(crm["membership"]), "sms", "Hi")
    # Her reply still lands in the conversation.
    post(client, "/webhooks/vonage/inbound", inbound(OUR, GRACE, "Why did I stop hearing from you?"))
    reply = db.session.scalar(sa.select(Message).where(Message.direction == "inbound"))
    assert reply.conversation_id is not None
    # Added again (by the form, or the page's button): the same membership and its conversation.
    again = _add(client, crm["nordic"].id, token, first_name="Grace", last_name="Hopper", mobile=GRACE)
    assert again.status_code == 200
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CommunityMembership)) == 1
    assert crm["membership"].removed_at is None
    compose.compose(
        db.session, crm["sourcer"], subjects.of_membership(crm["membership"]), "sms", "Welcome back"
    )


def test_member_search_by_name_and_number(client, auth, crm) -> None:
    f.membership(crm["nordic"], f.prospect(crm["org"], "Åsa", "Müller", mobile="+46701112233"))
    db.session.commit()
    auth.login("sourcer@acme.test")
    url = f"/communities/{crm['nordic'].id}"

    def names(q: str) -> set[str]:
        html = client.get(url, query_string={"q": q}, headers={"HX-Request": "true"}).get_data(as_text=True)
        return {n for n in ("Grace Hopper", "Åsa Müller") if n in html}

    assert names("asa muller") == {"Åsa Müller"}
    assert names("HOPPER") == {"Grace Hopper"}
    assert names("111") == {"Åsa Müller"}
    assert names("") == {"Grace Hopper", "Åsa Müller"}
    assert client.get(url, query_string={"q": "x" * 101}, headers={"HX-Request": "true"}).status_code == 400


# --- The prospect-community page ---------------------------------------------------------------------


def test_the_prospect_page_is_the_conversation_panel(client, auth, crm) -> None:
    auth.login("sourcer@acme.test")
    page = client.get(f"/memberships/{crm['membership'].id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    conversation = db.session.scalar(
        sa.select(Conversation).where(Conversation.community_membership_id == crm["membership"].id)
    )
    assert f'id="composer-{conversation.id}"' in html and f'id="thread-{conversation.id}"' in html
    assert "Prospect in Nordic engineers" in html
    # Without htmx, a refused send comes back as the page with the text as typed.
    token = csrf_from(client, f"/memberships/{crm['membership'].id}")
    refused = client.post(
        f"/conversations/{conversation.id}/messages",
        data={"channel": "sms", "body": "", "csrf_token": token},
    )
    assert refused.status_code == 422 and "Write a message." in refused.get_data(as_text=True)
    assert "Prospect in Nordic engineers" in refused.get_data(as_text=True)
    sent = client.post(
        f"/conversations/{conversation.id}/messages",
        data={"channel": "sms", "body": "Hi %FIRSTNAME%", "csrf_token": token},
    )
    assert sent.status_code == 303
    assert sent.headers["Location"] == f"/memberships/{crm['membership'].id}?tab=sms"


def test_a_prospect_conversation_end_to_end_in_the_inbox(client, auth, crm) -> None:
    candidate_org_job = f.job(crm["org"], team=[crm["sourcer"]], title="Backend engineer")
    f.application(candidate_org_job, f.candidate(crm["org"], "Linus", "Torvalds", mobile="+4915123450000"))
    db.session.commit()
    auth.login("sourcer@acme.test")
    page = client.get(f"/memberships/{crm['membership'].id}")
    conversation = db.session.scalar(
        sa.select(Conversation).where(Conversation.community_membership_id == crm["membership"].id)
    )
    token = csrf_from(client, f"/memberships/{crm['membership'].id}")
    assert page.status_code == 200
    sent = client.post(
        f"/conversations/{conversation.id}/messages",
        data={"channel": "sms", "body": "Hi %FIRSTNAME%, about %JOBTITLE%", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert sent.status_code == 200
    post(client, "/webhooks/vonage/inbound", inbound(OUR, GRACE, "Tell me more"))
    inbox = client.get("/inbox").get_data(as_text=True)
    row = re.search(rf'<li[^>]*id="inbox-row-{conversation.id}".*?</li>', inbox, re.S)
    assert row, inbox
    assert "Grace Hopper" in row[0] and "Nordic engineers" in row[0] and "Tell me more" in row[0]
    assert 'id="inbox-who"' in inbox
    prospects_only = client.get("/inbox", query_string={"who": "prospects"}).get_data(as_text=True)
    candidates_only = client.get("/inbox", query_string={"who": "candidates"}).get_data(as_text=True)
    assert "Grace Hopper" in prospects_only and "Grace Hopper" not in candidates_only


def test_the_inbox_who_filter_returns_only_its_kind(client, auth, crm) -> None:
    job = f.job(crm["org"], team=[crm["sourcer"]], title="Backend engineer")
    linus = f.application(job, f.candidate(crm["org"], "Linus", "Torvalds", mobile="+4915123450000"))
    crm["sourcer"].roles[0].permissions.append(db.session.get(f.Permission, permissions.RECRUITMENT_SMS))
    db.session.commit()
    for about in (subjects.of_application(linus), subjects.of_membership(crm["membership"])):
        compose.compose(db.session, crm["sourcer"], about, "sms", "Hello")
        db.session.commit()
    auth.login("sourcer@acme.test")

    def names(who: str) -> set[str]:
        html = client.get("/inbox", query_string={"who": who}).get_data(as_text=True)
        rows = re.findall(r'<li[^>]*id="inbox-row-\d+".*?</li>', html, re.S)
        return {n for n in ("Linus Torvalds", "Grace Hopper") for row in rows if n in row}

    assert names("") == {"Linus Torvalds", "Grace Hopper"}
    assert names("candidates") == {"Linus Torvalds"}
    assert names("prospects") == {"Grace Hopper"}
    assert client.get("/inbox", query_string={"who": "everyone"}).status_code == 400


def test_the_crm_product_switched_on_shows_prospects_in_the_inbox_at_once(client, auth, crm) -> None:
    """The Inbox's statements are built once and kept: what they are built from includes the CRM
    product, so a customer given it by staff sees its prospects' conversations on the next page."""
    job = f.job(crm["org"], team=[crm["sourcer"]], title="Backend engineer")
    linus = f.application(job, f.candidate(crm["org"], "Linus", "Torvalds", mobile="+4915123450000"))
    crm["sourcer"].roles[0].permissions.append(db.session.get(f.Permission, permissions.RECRUITMENT_SMS))
    for about in (subjects.of_application(linus), subjects.of_membership(crm["membership"])):
        compose.compose(db.session, crm["sourcer"], about, "sms", "Hello")
    crm["org"].has_crm = False
    db.session.commit()
    auth.login("sourcer@acme.test")
    without = client.get("/inbox").get_data(as_text=True)
    assert "Linus Torvalds" in without and "Grace Hopper" not in without
    crm["org"].has_crm = True
    db.session.commit()
    with_crm = client.get("/inbox").get_data(as_text=True)
    assert "Linus Torvalds" in with_crm and "Grace Hopper" in with_crm


def test_a_customer_without_crm_has_no_prospect_filter(client, auth) -> None:
    org = f.messaging_org("Initech")
    f.user(org, "r@initech.test", codes=[permissions.RECRUITMENT_SMS])
    db.session.commit()
    auth.login("r@initech.test")
    assert 'id="inbox-who"' not in client.get("/inbox").get_data(as_text=True)


# --- One person, a candidate and a prospect ------------------------------------------------------------


def test_a_candidate_who_is_also_a_prospect_gets_a_second_number_and_replies_thread(client, crm) -> None:
    f.number(crm["org"], SECOND)
    job = f.job(crm["org"], team=[crm["sourcer"]], title="Backend engineer")
    application = f.application(job, f.candidate(crm["org"], "Grace", "Hopper", mobile=GRACE))
    crm["sourcer"].roles[0].permissions.append(db.session.get(f.Permission, permissions.RECRUITMENT_SMS))
    db.session.commit()
    as_candidate, as_prospect = (
        subjects.of_application(application),
        subjects.of_membership(crm["membership"]),
    )
    first = compose.compose(db.session, crm["sourcer"], as_candidate, "sms", "About the job")
    db.session.commit()
    second = compose.compose(db.session, crm["sourcer"], as_prospect, "sms", "About the community")
    db.session.commit()
    assert first.from_addr != second.from_addr
    assert {first.from_addr, second.from_addr} == {OUR, SECOND}
    # Each number's reply goes to its own conversation.
    post(client, "/webhooks/vonage/inbound", inbound(first.from_addr, GRACE, "Job reply"))
    post(client, "/webhooks/vonage/inbound", inbound(second.from_addr, GRACE, "Community reply"))
    replies = {
        m.body: m.conversation_id
        for m in db.session.scalars(sa.select(Message).where(Message.direction == "inbound"))
    }
    assert replies == {"Job reply": first.conversation_id, "Community reply": second.conversation_id}
    # STOP on either number: one opt-out list per organisation, whoever the number belongs to.
    post(client, "/webhooks/vonage/inbound", inbound(second.from_addr, GRACE, "STOP"))
    db.session.expire_all()
    for about in (as_candidate, as_prospect):
        with pytest.raises(checks.SendRefused, match="opted out"):
            compose.compose(db.session, crm["sourcer"], about, "sms", "Still there?")


US = "+12025550143"


@pytest.mark.parametrize("second_de", [False, True])
def test_the_second_conversation_keeps_to_the_persons_country(client, crm, second_de) -> None:
    """A pool of DE and US numbers: the second conversation with a German number is sent from a German
    number too, the other one when there are two, the same one rather than the US one when there is not."""
    f.number(crm["org"], US)
    if second_de:
        f.number(crm["org"], SECOND)
    job = f.job(crm["org"], team=[crm["sourcer"]], title="Backend engineer")
    application = f.application(job, f.candidate(crm["org"], "Grace", "Hopper", mobile=GRACE))
    crm["sourcer"].roles[0].permissions.append(db.session.get(f.Permission, permissions.RECRUITMENT_SMS))
    db.session.commit()
    first = compose.compose(db.session, crm["sourcer"], subjects.of_application(application), "sms", "Job")
    db.session.commit()
    assert first.from_addr in (OUR, SECOND)
    if second_de:
        # The other German number was used more recently: least-recently-used alone would pick the first's.
        other = SECOND if first.from_addr == OUR else OUR
        numbers = {n.e164: n for n in db.session.scalars(sa.select(SendingNumber))}
        numbers[other].last_used_at = numbers[first.from_addr].last_used_at + timedelta(hours=1)
        db.session.commit()
    second = compose.compose(
        db.session, crm["sourcer"], subjects.of_membership(crm["membership"]), "sms", "Hi"
    )
    db.session.commit()
    assert second.from_addr != US
    if second_de:
        assert second.from_addr == other
    else:
        assert second.from_addr == first.from_addr == OUR
    # The number is the conversation's from now on.
    again = compose.compose(
        db.session, crm["sourcer"], subjects.of_membership(crm["membership"]), "sms", "And"
    )
    assert again.from_addr == second.from_addr


@pytest.mark.parametrize("last", ["prospect", "candidate"])
def test_with_one_number_a_reply_goes_to_the_conversation_last_written_in(client, crm, last) -> None:
    job = f.job(crm["org"], team=[crm["sourcer"]], title="Backend engineer")
    application = f.application(job, f.candidate(crm["org"], "Grace", "Hopper", mobile=GRACE))
    crm["sourcer"].roles[0].permissions.append(db.session.get(f.Permission, permissions.RECRUITMENT_SMS))
    db.session.commit()
    about = {
        "candidate": subjects.of_application(application),
        "prospect": subjects.of_membership(crm["membership"]),
    }
    other = "candidate" if last == "prospect" else "prospect"
    # Written in the one, then the other, then the first again: the first is the last written in, though
    # the other was written in after its first message.
    sent = []
    for who in (last, other, last):
        sent.append(compose.compose(db.session, crm["sourcer"], about[who], "sms", f"To the {who}"))
        db.session.commit()
    assert {m.from_addr for m in sent} == {OUR}
    assert sent[0].conversation_id == sent[2].conversation_id != sent[1].conversation_id
    post(client, "/webhooks/vonage/inbound", inbound(OUR, GRACE, "Which one?"))
    reply = db.session.scalar(sa.select(Message).where(Message.direction == "inbound"))
    conversation = db.session.get(Conversation, reply.conversation_id)
    assert conversation.id == sent[2].conversation_id
    if last == "prospect":
        assert conversation.community_membership_id == crm["membership"].id
    else:
        assert conversation.application_id == application.id


# --- Texting a prospect: opting out and back in, and a CRM without Messaging --------------------------


def test_a_prospect_who_texts_stop_has_the_banner_and_the_composer_says_texts_cannot_go(
    client, auth, crm
) -> None:
    compose.compose(db.session, crm["sourcer"], subjects.of_membership(crm["membership"]), "sms", "Hi Grace")
    db.session.commit()
    auth.login("sourcer@acme.test")
    url = f"/memberships/{crm['membership'].id}"
    assert 'id="opt-out-banner-' not in client.get(url).get_data(as_text=True)
    assert post(client, "/webhooks/vonage/inbound", inbound(OUR, GRACE, "Stop.")).status_code == 200
    for tab in ("sms", "whatsapp"):
        html = client.get(url, query_string={"tab": tab}).get_data(as_text=True)
        banner = re.search(
            r'<p class="banner banner-danger" id="opt-out-banner-\d+"[^>]*>(.*?)</p>', html, re.S
        )
        assert banner, html
        assert "“Stop.”" in banner[1] and "until the prospect texts START" in banner[1]
        blocked = re.search(r'data-counter="blocked">([^<]*)<', html)
        assert blocked and "cannot receive SMS or WhatsApp until it opts in again" in blocked[1], html
    # Email still goes, and its counter says nothing of the opt-out.
    conversation = db.session.scalar(
        sa.select(Conversation).where(Conversation.community_membership_id == crm["membership"].id)
    )
    preview = client.post(
        f"/conversations/{conversation.id}/preview",
        data={"channel": "email", "body": "Hi", "csrf_token": csrf_from(client, url)},
    ).get_data(as_text=True)
    assert 'data-counter="blocked"' not in preview


def test_a_prospect_who_texts_start_after_stop_can_be_texted_again(client, auth, crm) -> None:
    compose.compose(db.session, crm["sourcer"], subjects.of_membership(crm["membership"]), "sms", "Hi Grace")
    db.session.commit()
    auth.login("sourcer@acme.test")
    url = f"/memberships/{crm['membership'].id}"
    conversation = db.session.scalar(
        sa.select(Conversation).where(Conversation.community_membership_id == crm["membership"].id)
    )
    token = csrf_from(client, url)

    def send(body: str):
        return client.post(
            f"/conversations/{conversation.id}/messages",
            data={"channel": "sms", "body": body, "csrf_token": token},
            headers={"HX-Request": "true"},
        )

    post(client, "/webhooks/vonage/inbound", inbound(OUR, GRACE, "STOP"))
    refused = send("Are you sure?")
    assert refused.status_code == 422
    assert re.search(rf'id="channel-error-{conversation.id}">[^<]*opted out', refused.get_data(as_text=True))
    post(client, "/webhooks/vonage/inbound", inbound(OUR, GRACE, "Start"))
    html = client.get(url, query_string={"tab": "sms"}).get_data(as_text=True)
    assert 'id="opt-out-banner-' not in html and 'data-counter="blocked"' not in html
    assert send("Welcome back").status_code == 200
    sent = db.session.scalar(sa.select(Message).where(Message.body == "Welcome back"))
    assert sent is not None and (sent.direction, sent.channel, sent.to_addr) == ("outbound", "sms", GRACE)
    assert sent.conversation_id == conversation.id


def test_crm_without_messaging_writes_to_prospects_by_email_only(client, auth) -> None:
    org = f.org("Solo", has_crm=True)
    assert not org.has_messaging
    sourcer = f.user(org, "sourcer@solo.test", codes=[permissions.SOURCING_MESSAGING])
    community = f.community(org, "Nordic engineers", team=[sourcer])
    membership = f.membership(community, f.prospect(org, mobile=GRACE, email="grace@example.test"))
    db.session.commit()
    auth.login("sourcer@solo.test")
    assert client.get(f"/communities/{community.id}").status_code == 200
    page = client.get(f"/memberships/{membership.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.findall(r'name="channel" value="([^"]+)"', html) == ["email"]
    assert re.findall(r'data-tab-channel="([^"]+)"', html) == ["email"]
    conversation = db.session.scalar(
        sa.select(Conversation).where(Conversation.community_membership_id == membership.id)
    )
    token = csrf_from(client, f"/memberships/{membership.id}")
    refused = client.post(
        f"/conversations/{conversation.id}/messages",
        data={"channel": "sms", "body": "Hi", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 422
    reason = "Your organisation does not have Messaging, so SMS is not available"
    html = refused.get_data(as_text=True)
    assert re.search(rf'id="channel-error-{conversation.id}">{reason}', html), html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
    sent = client.post(
        f"/conversations/{conversation.id}/messages",
        data={"channel": "email", "subject": "Hello", "body": "Hi Grace", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert sent.status_code == 200
    assert db.session.scalar(sa.select(Message.channel)) == "email"


# --- Templates have an audience (issue 17) ---------------------------------------------------------


def options_of(html: str, name: str) -> set[str]:
    """The labels of a composer select's options (the template pickers)."""
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    return (
        {o.strip() for o in re.findall(r"<option[^>]*>([^<]*)</option>", select.group(1))}
        if select
        else set()
    )


def test_each_composer_offers_the_templates_written_for_its_person(client, auth, crm) -> None:
    org = crm["org"]
    both_hats = f.user(
        org,
        "both@acme.test",
        codes=[permissions.RECRUITMENT_SMS, permissions.SOURCING_MESSAGING],
        name="Bo Both",
    )
    f.membership(f.community(org, "Sales", team=[both_hats]), grace := crm["grace"])
    membership = db.session.scalar(
        sa.select(CommunityMembership).where(
            CommunityMembership.prospect_id == grace.id, CommunityMembership.community_id != crm["nordic"].id
        )
    )
    application = f.application(f.job(org, team=[both_hats], title="Engineer"), f.candidate(org, "Lena", "M"))
    for name, audience in (
        ("Thank you for applying", "candidates"),
        ("Open to a chat", "prospects"),
        ("Thanks", "both"),
    ):
        db.session.add(
            MessageTemplate(organization_id=org.id, channel="sms", name=name, body="Hi", audience=audience)
        )
    for name, audience in (
        ("application_update", "candidates"),
        ("new_roles", "prospects"),
        ("hello", "both"),
    ):
        db.session.add(
            WhatsappTemplate(
                organization_id=org.id,
                name=name,
                locale="en",
                body="Hi {{1}}",
                parameters="%FIRSTNAME%",
                audience=audience,
            )
        )
    db.session.commit()
    auth.login("both@acme.test")

    prospect_page = client.get(f"/memberships/{membership.id}").get_data(as_text=True)
    assert options_of(prospect_page, "template_id") == {"No template", "SMS · Open to a chat", "SMS · Thanks"}
    assert options_of(prospect_page, "whatsapp_template_id") == {
        "Choose an approved template",
        "hello (en)",
        "new_roles (en)",
    }
    candidate_page = client.get(f"/applications/{application.id}").get_data(as_text=True)
    assert options_of(candidate_page, "template_id") == {
        "No template",
        "SMS · Thank you for applying",
        "SMS · Thanks",
    }
    assert options_of(candidate_page, "whatsapp_template_id") == {
        "Choose an approved template",
        "application_update (en)",
        "hello (en)",
    }


def test_the_editor_asks_who_a_template_is_for_where_there_are_prospects(client, auth, crm) -> None:
    f.user(crm["org"], "templates@acme.test", codes=[permissions.ADMIN_TEMPLATES])
    db.session.commit()
    auth.login("templates@acme.test")
    response = client.get("/admin/templates/new")
    assert response.status_code == 200
    editor = response.get_data(as_text=True)
    assert "<legend>Written for</legend>" in editor
    assert re.search(r'<input[^>]*checked[^>]*value="both"|<input[^>]*value="both"[^>]*checked', editor)
    token = csrf_from(client, "/admin/templates/new")
    data = {"csrf_token": token, "name": "Open to a chat", "channel": "sms", "kind": "general", "body": "Hi"}
    assert client.post("/admin/templates/new", data={**data, "audience": "prospects"}).status_code == 303
    saved = db.session.scalar(sa.select(MessageTemplate).where(MessageTemplate.name == "Open to a chat"))
    assert saved.audience == "prospects"
    listing = client.get("/admin/templates").get_data(as_text=True)
    assert f'id="template-{saved.id}"' in listing and 'data-audience="prospects">For prospects<' in listing
    # An invitation is for candidates: "prospects" is refused next to the field, "both" kept as candidates.
    invitation = {**data, "name": "Book", "kind": "interview_invitation", "body": "Book: %INVITELINK%"}
    refused = client.post("/admin/templates/new", data={**invitation, "audience": "prospects"})
    assert refused.status_code == 422
    assert re.search(
        r'id="audience-error">An interview invitation goes to candidates', refused.get_data(as_text=True)
    )
    assert client.post("/admin/templates/new", data={**invitation, "audience": "both"}).status_code == 303
    assert (
        db.session.scalar(sa.select(MessageTemplate.audience).where(MessageTemplate.name == "Book"))
        == "candidates"
    )
    unknown = client.post("/admin/templates/new", data={**data, "name": "X", "audience": "everyone"})
    assert unknown.status_code == 422 and "Choose who it is for" in unknown.get_data(as_text=True)
    # Approved WhatsApp templates too.
    approved = {
        "csrf_token": token,
        "name": "new_roles",
        "locale": "en",
        "body": "Hi {{1}}",
        "parameters": "%FIRSTNAME%",
        "approved": "y",
        "audience": "prospects",
    }
    assert "<legend>Written for</legend>" in client.get("/admin/templates/whatsapp/new").get_data(
        as_text=True
    )
    assert client.post("/admin/templates/whatsapp/new", data=approved).status_code == 303
    assert db.session.scalar(
        sa.select(WhatsappTemplate.audience).where(WhatsappTemplate.name == "new_roles")
    ) == ("prospects")


def test_without_the_crm_the_editor_does_not_ask_and_a_template_keeps_its_audience(client, auth) -> None:
    org = f.messaging_org("Solo")
    f.user(org, "admin@solo.test", codes=[permissions.ADMIN_TEMPLATES])
    kept = MessageTemplate(
        organization_id=org.id, channel="sms", name="Thanks", body="Hi", audience="candidates"
    )
    db.session.add(kept)
    db.session.commit()
    auth.login("admin@solo.test")
    editor, listing = client.get("/admin/templates/new"), client.get("/admin/templates")
    assert editor.status_code == listing.status_code == 200
    assert "Written for" not in editor.get_data(as_text=True)
    assert f'id="template-{kept.id}"' in listing.get_data(as_text=True)
    assert "For candidates" not in listing.get_data(as_text=True)
    token = csrf_from(client, "/admin/templates/new")
    data = {"csrf_token": token, "channel": "sms", "kind": "general", "body": "Hello"}
    assert client.post(f"/admin/templates/{kept.id}", data={**data, "name": "Thanks"}).status_code == 303
    assert client.post("/admin/templates/new", data={**data, "name": "New"}).status_code == 303
    db.session.expire_all()
    audiences = dict(db.session.execute(sa.select(MessageTemplate.name, MessageTemplate.audience)).all())
    assert audiences == {"Thanks": "candidates", "New": "both"}
