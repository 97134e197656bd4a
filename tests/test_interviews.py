"""Interview invitations (issue #13): slots, the %INVITELINK% rules per channel, the rendered link and
what it costs, invitations as normal messages, the booking page (book, rebook, cancel, confirmations,
closed links, noindex, the rate limit), bulk invitations with mixed results, and the state shown live."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.conftest import csrf_from
from webapp import zones
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.interviews import booking, invitations, slots
from webapp.messaging import conversations, inbound, subjects, templates
from webapp.messaging.checks import SendRefused
from webapp.models import (
    Conversation,
    CreditAccount,
    InterviewSlot,
    Invitation,
    Message,
    MessageTemplate,
    OptOut,
    utcnow,
)

SMS = [permissions.RECRUITMENT_SMS]
BASE = "https://relay.example"
TOKEN_RE = re.compile(r"https://relay\.example/book/([A-Za-z0-9_-]+)")


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"PUBLIC_BASE_URL": BASE}


def opt_out(org, e164: str) -> None:
    """As if the number had texted STOP."""
    db.session.add(OptOut(organization_id=org.id, e164=e164))
    db.session.flush()


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", sender_name="Acme", time_zone="Europe/Berlin")
    recruiter = f.user(org, "recruiter@acme.test", codes=SMS, name="Riley Chen")
    manager = f.user(org, "manager@acme.test", name="Morgan Patel")
    job = f.job(org, team=[recruiter, manager], title="Backend Engineer")
    other_job = f.job(org, team=[recruiter], title="Designer")
    for e164 in ("+12015550100", "+4915123456700"):
        f.number(org, e164)
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
    astrid = f.application(job, f.candidate(org, "Astrid", "Lund", mobile="+46701234567"))
    noel = f.application(job, f.candidate(org, "Noel", "Nomobile", mobile=None))
    oscar = f.application(job, f.candidate(org, "Oscar", "Out", mobile="+4915123456788"))
    elsewhere = f.application(other_job, f.candidate(org, "Eve", "Else", mobile="+4915123456787"))
    opt_out(org, "+4915123456788")
    f.credits(org, 50)
    soon = utcnow().replace(microsecond=0) + timedelta(days=2)
    slot_list = [
        InterviewSlot(job_id=job.id, starts_at=soon + timedelta(hours=h), minutes=30, place=place)
        for h, place in ((0, "Room 3, Hauptstr. 1"), (1, "https://meet.example/abc"), (2, "Room 4"))
    ]
    db.session.add_all(slot_list)
    db.session.commit()
    return {
        "org": org,
        "recruiter": recruiter,
        "manager": manager,
        "job": job,
        "other_job": other_job,
        "lena": lena,
        "astrid": astrid,
        "noel": noel,
        "oscar": oscar,
        "elsewhere": elsewhere,
        "slots": slot_list,
    }


def invite(w, who="lena", channel="sms", body="Hi %FIRSTNAME%, book here: %INVITELINK%", subject=None):
    invitation = invitations.invite(
        db.session, w["recruiter"], w[who], channel, body, subject, BASE, utcnow()
    )
    db.session.commit()
    return invitation


def token_of(invitation: Invitation) -> str:
    match = TOKEN_RE.search(invitation.message.body)
    assert match, invitation.message.body
    return match.group(1)


def text(response) -> str:
    return response.get_data(as_text=True)


# --- The %INVITELINK% rules per channel ----------------------------------------------------------------


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_sms_and_whatsapp_invitations_must_carry_the_link(channel: str) -> None:
    problem = invitations.missing_link(channel, "Hi, come to an interview")
    assert problem and "%INVITELINK%" in problem and "no booking link" in problem
    with pytest.raises(SendRefused) as refused:
        invitations.with_link(channel, "Hi, come to an interview")
    assert refused.value.field == "body"
    assert invitations.missing_link(channel, "Book: %INVITELINK%") is None
    assert invitations.with_link(channel, "Book: %INVITELINK%") == "Book: %INVITELINK%"


def test_an_email_without_the_link_gets_it_added() -> None:
    assert invitations.missing_link("email", "Dear Lena, come and see us.") is None
    body = invitations.with_link("email", "Dear Lena, come and see us.\n")
    assert body.startswith("Dear Lena, come and see us.") and body.endswith("%INVITELINK%")
    # Once only: a text that has it is left as it is.
    assert invitations.with_link("email", "Pick: %INVITELINK%") == "Pick: %INVITELINK%"


GLUED = [
    "%INVITELINK%Hi %FIRSTNAME%",  # the editor's button put it at position 0
    "Book here:%INVITELINK%/",
    "Hi %FIRSTNAME%%INVITELINK%",
    "Book 9%INVITELINK% today",
    "Buchen Sie hierü%INVITELINK% bitte",
    "Book/%INVITELINK% ",
]


@pytest.mark.parametrize("body", GLUED)
@pytest.mark.parametrize("channel", ["sms", "whatsapp", "email"])
def test_a_link_glued_to_the_text_beside_it_is_refused_with_its_fix(channel: str, body: str) -> None:
    """One rule, the templates': %INVITELINK% touching a letter, digit, "/" or placeholder is refused, and
    the fix puts a space there and changes nothing else."""
    assert templates.glued_invitelink(body)
    with pytest.raises(SendRefused) as refused:
        invitations.with_link(channel, body)
    assert refused.value.message == templates.GLUED and refused.value.field == "body"
    fixed = templates.space_invitelink(body)
    assert not templates.glued_invitelink(fixed)
    assert fixed.replace(" ", "") == body.replace(" ", "")
    assert invitations.link_problem(channel, fixed) is None
    assert [(f.field, f.text, f.fixed) for f in templates.link_fixes(body)] == [("body", body, fixed)]


@pytest.mark.parametrize(
    ("body", "fixed"),
    [
        ("%INVITELINK%Hi %FIRSTNAME%", "%INVITELINK% Hi %FIRSTNAME%"),
        ("Book here:%INVITELINK%/", "Book here:%INVITELINK% /"),
        ("a%INVITELINK%%INVITELINK%b", "a %INVITELINK% %INVITELINK% b"),
    ],
)
def test_the_fix_puts_a_space_where_the_link_was_glued(body: str, fixed: str) -> None:
    assert templates.space_invitelink(body) == fixed


@pytest.mark.parametrize(
    "body",
    ["Book: %INVITELINK%", "%INVITELINK%", "(%INVITELINK%)", "Book:%INVITELINK%.", "%INVITELINK%\nBye"],
)
def test_a_link_beside_a_space_or_punctuation_is_its_own_word(body: str) -> None:
    assert not templates.glued_invitelink(body) and templates.space_invitelink(body) == body
    assert invitations.with_link("sms", body) == body


def test_an_emails_subject_may_not_glue_the_link_either() -> None:
    problem = invitations.link_problem("email", "Dear Lena", "Interview%INVITELINK%")
    assert problem is not None and problem.field == "subject" and problem.message == templates.GLUED
    # Another channel has no subject: what a hidden field holds does not matter.
    assert invitations.link_problem("sms", "Book: %INVITELINK%", "Interview%INVITELINK%") is None


def test_a_sent_link_is_followed_by_whitespace_or_the_end(world) -> None:
    sms = invite(world, body="Hi %FIRSTNAME%, book here: %INVITELINK%. Thanks!")
    assert sms.message.body == f"Hi Lena, book here: {BASE}/book/{token_of(sms)} . Thanks!"
    email = invite(world, "astrid", channel="email", body="Dear %FIRSTNAME%, come and see us.", subject="Hi")
    assert email.message.body.endswith(f"{BASE}/book/{token_of(email)}")  # the appended link ends it


def test_the_link_renders_to_the_public_base_url_and_an_unguessable_token(world) -> None:
    first, second = invite(world), invite(world, "astrid")
    token = token_of(first)
    assert first.message.body == f"Hi Lena, book here: {BASE}/book/{token}"
    assert len(token) == 22 and token != token_of(second)
    # Only the token's hash is kept.
    assert first.token_hash == invitations.token_hash(token) and token not in first.token_hash
    assert first.expires_at - first.created_at == invitations.VALID_FOR


def test_an_email_invitation_gets_the_link_and_its_subject(world) -> None:
    invitation = invite(
        world,
        channel="email",
        body="Dear %FIRSTNAME%,\nwe would like to meet you.",
        subject="Interview for %JOBTITLE%",
    )
    assert invitation.message.subject == "Interview for Backend Engineer"
    assert invitation.message.body.startswith("Dear Lena,\nwe would like to meet you.")
    assert f"{BASE}/book/{token_of(invitation)}" in invitation.message.body


def test_the_form_refuses_an_sms_without_the_link_and_keeps_the_text(world, client, auth) -> None:
    auth.login("recruiter@acme.test")
    path = f"/applications/{world['lena'].id}/invite"
    page = client.get(path)
    assert page.status_code == 200 and 'data-insert="%INVITELINK%"' in text(page)
    token = csrf_from(client, path)
    response = client.post(
        path, data={"csrf_token": token, "channel": "sms", "body": "Hi %FIRSTNAME%, call us"}
    )
    assert response.status_code == 422
    html = text(response)
    error = re.search(
        r'<p class="field-error" data-counter="missing-link" id="body-error" role="alert">([^<]+)</p>', html
    )
    assert error and "no booking link" in error.group(1) and "Insert booking link" in error.group(1)
    assert "Hi %FIRSTNAME%, call us</textarea>" in html
    assert 'id="insert-link"' in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


FIX_BUTTON = re.compile(
    r'<button type="button" class="button small link-fix" data-fix-into="(\w+)" data-fix-from="([^"]*)" '
    r'data-fix-to="([^"]*)"( form="[\w-]+")?>Put a space around the link</button>'
)


@pytest.mark.parametrize("bulk", [False, True], ids=["one", "bulk"])
def test_the_invite_form_refuses_a_glued_link_with_a_one_click_fix(world, client, auth, bulk: bool) -> None:
    auth.login("recruiter@acme.test")
    job, lena, astrid = world["job"], world["lena"], world["astrid"]
    path = f"/jobs/{job.id}/invite" if bulk else f"/applications/{lena.id}/invite"
    token = csrf_from(client, path + (f"?application={lena.id}&application={astrid.id}" if bulk else ""))
    body = "Hi %FIRSTNAME%, pick a time:%INVITELINK%Thanks"
    data = {"csrf_token": token, "channel": "sms", "body": body}
    if bulk:
        data["application"] = [lena.id, astrid.id]
    response = client.post(path, data=data)
    assert response.status_code == 422
    html = text(response)
    # Said under the text (once), with the fix beside it; what was typed stays, nothing is sent.
    error = re.findall(
        r'<p class="field-error" data-counter="glued-link" id="body-error" role="alert">([^<]+)</p>', html
    )
    assert len(error) == 1 and "touches the text beside it" in error[0]
    assert html.count('id="body-error"') == 1
    assert f"{body}</textarea>" in html
    fix = FIX_BUTTON.search(html)
    assert fix and fix.group(1, 2, 3) == ("body", body, "Hi %FIRSTNAME%, pick a time:%INVITELINK% Thanks")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
    # The fixed text goes.
    data["body"] = fix.group(3)
    assert client.post(path, data=data).status_code in (200, 303)
    sent = db.session.scalars(sa.select(Message).order_by(Message.id)).all()
    assert len(sent) == (2 if bulk else 1)
    assert re.search(r"pick a time:https://relay\.example/book/[\w-]{22} Thanks$", sent[0].body)


def test_an_email_invitations_glued_subject_is_refused_at_the_subject(world, client, auth) -> None:
    auth.login("recruiter@acme.test")
    path = f"/applications/{world['lena'].id}/invite"
    data = {"csrf_token": csrf_from(client, path), "channel": "email", "body": "Dear %FIRSTNAME%"}
    response = client.post(path, data={**data, "subject": "Book%INVITELINK%"})
    assert response.status_code == 422
    html = text(response)
    assert re.search(r'id="subject-error">[^<]*touches the text beside it', html)
    fix = FIX_BUTTON.search(html)
    assert fix and fix.group(1, 3) == ("subject", "Book %INVITELINK%")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


@pytest.mark.parametrize("bulk", [False, True], ids=["one", "bulk"])
def test_what_the_candidate_will_read_is_shown_open_with_the_real_link(world, client, auth, bulk) -> None:
    db.session.add(
        MessageTemplate(
            organization_id=world["org"].id,
            name="Invite SMS",
            channel="sms",
            kind="interview_invitation",
            body="Hi %FIRSTNAME%, book: %INVITELINK%",
        )
    )
    db.session.commit()
    auth.login("recruiter@acme.test")
    lena, astrid = world["lena"], world["astrid"]
    path = (
        f"/jobs/{world['job'].id}/invite?application={lena.id}&application={astrid.id}"
        if bulk
        else f"/applications/{lena.id}/invite"
    )
    html = text(client.get(path))
    # The counter, up to Send later (folded, after it).
    counter = html[html.index('<div id="invite-counter"') : html.index('<details class="send-later"')]
    assert "<details" not in counter and "What Lena will read" in counter
    shown = re.search(r'<blockquote data-counter="preview">([^<]*)</blockquote>', counter)
    assert shown and shown.group(1) == f"Hi Lena, book: {BASE}{templates.SAMPLE_BOOKING_PATH}"
    # And as the text changes (the live counter).
    live = text(
        client.post(
            "/interviews/preview",
            data={
                "channel": "sms",
                "body": "Go: %INVITELINK%!",
                "application": lena.id,
                "job": world["job"].id,
            },
            headers={"X-CSRFToken": csrf_from(client, path)},
        )
    )
    assert "<details" not in live
    assert (
        f'<blockquote data-counter="preview">Go: {BASE}{templates.SAMPLE_BOOKING_PATH} !</blockquote>' in live
    )


def test_the_counter_counts_the_rendered_link(world, client, auth) -> None:
    auth.login("recruiter@acme.test")
    token = csrf_from(client, f"/applications/{world['lena'].id}/invite")
    body = "x" * 120 + " %INVITELINK%"
    response = client.post(
        "/interviews/preview",
        data={"channel": "sms", "body": body, "application": world["lena"].id, "job": world["job"].id},
        headers={"X-CSRFToken": token},
    )
    html = text(response)
    link_length = len(f"{BASE}/book/") + 22
    characters = int(re.search(r'data-counter="units">(\d+) of 160 GSM-7 units', html).group(1))
    assert characters == 121 + link_length  # 160 would fit "%INVITELINK%" as typed; the link does not
    assert re.search(r'data-counter="segments">2 segments', html)
    # And the message sent costs what the counter said.
    sent = invite(world, body=body)
    assert (len(sent.message.body), sent.message.segments, sent.message.credits) == (characters, 2, 2)


def test_the_invitation_counter_speaks_as_the_composer(world, client, auth) -> None:
    """The invitation form's counter has the composer's words: units against one SMS, doubles named."""
    auth.login("recruiter@acme.test")
    token = csrf_from(client, f"/applications/{world['lena'].id}/invite")
    response = client.post(
        "/interviews/preview",
        data={
            "channel": "sms",
            "body": "Price 10 € %INVITELINK%",
            "application": world["lena"].id,
            "job": world["job"].id,
        },
        headers={"X-CSRFToken": token},
    )
    html = text(response)
    assert re.search(r'data-counter="units">\d+ of 160 GSM-7 units<', html)
    assert '<p class="counter-note" data-counter="doubled"><code>€</code> counts 2 units.</p>' in html


# --- An invitation is a normal message ------------------------------------------------------------------


def test_an_invitation_is_a_paid_routed_message_in_the_conversation(world) -> None:
    invitation = invite(world)
    message = invitation.message
    assert (message.channel, message.status, message.from_addr, message.to_addr) == (
        "sms",
        "queued",
        "+4915123456700",
        "+4915123456789",
    )
    assert message.author.name == "Riley Chen" and message.credits == 1
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.application_id == world["lena"].id
    assert db.session.scalar(sa.select(CreditAccount.balance)) == 49


@pytest.mark.parametrize(
    ("who", "channel", "reason"),
    [
        ("oscar", "sms", "opted out"),
        ("noel", "sms", "has no mobile number"),
        ("lena", "whatsapp", "24-hour window"),
    ],
)
def test_the_rules_of_a_message_apply(world, who: str, channel: str, reason: str) -> None:
    with pytest.raises(SendRefused) as refused:
        invite(world, who, channel)
    db.session.rollback()
    assert reason in refused.value.message
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 0


def test_no_credits_no_invitation(world) -> None:
    for i in range(50):
        invite(world, "astrid", body=f"{i} %INVITELINK%")
    with pytest.raises(SendRefused) as refused:
        invite(world)
    db.session.rollback()
    assert "credit" in refused.value.message
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 50


def test_the_manager_without_the_right_cannot_invite_by_sms(world) -> None:
    with pytest.raises(SendRefused) as refused:
        invitations.invite(
            db.session, world["manager"], world["lena"], "sms", "%INVITELINK%", None, BASE, utcnow()
        )
    assert "Recruitment" in refused.value.message


def test_no_free_slots_no_invitation(world) -> None:
    for slot in world["slots"]:
        db.session.delete(slot)
    db.session.commit()
    with pytest.raises(SendRefused) as refused:
        invite(world)
    assert "no free interview slots" in refused.value.message


def checked_channel(html: str) -> str:
    found = re.findall(r'name="channel" value="(\w+)" checked', html)
    assert len(found) == 1, found
    return found[0]


def test_the_invite_form_opens_on_the_channel_that_reaches_the_candidate(world, client, auth) -> None:
    """As the composer does (messaging.reply_channel): nothing written yet, SMS; opted out of texts,
    email; where they last wrote, that channel."""
    auth.login("recruiter@acme.test")
    lena, oscar = world["lena"], world["oscar"]
    assert checked_channel(text(client.get(f"/applications/{lena.id}/invite"))) == "sms"
    assert checked_channel(text(client.get(f"/applications/{oscar.id}/invite"))) == "email"
    conversation = conversations.for_subject(db.session, subjects.of_application(lena), create=True)
    assert conversation is not None
    reply = Message(
        conversation_id=conversation.id,
        organization_id=world["org"].id,
        channel="whatsapp",
        direction="inbound",
        body="Hej!",
        status="received",
        from_addr=lena.candidate.mobile,
    )
    db.session.add(reply)
    db.session.flush()
    inbound.joined(conversation, reply)
    db.session.commit()
    html = text(client.get(f"/applications/{lena.id}/invite"))
    assert checked_channel(html) == "whatsapp"


def test_no_free_slots_is_said_once_on_the_invite_form(world, client, auth) -> None:
    for slot in world["slots"]:
        db.session.delete(slot)
    db.session.commit()
    auth.login("recruiter@acme.test")
    path = f"/applications/{world['lena'].id}/invite"
    refused = client.post(
        path,
        data={"csrf_token": csrf_from(client, path), "channel": "sms", "body": "Book: %INVITELINK%"},
    )
    assert refused.status_code == 422
    html = text(refused)
    assert html.count("no free interview slots") == 1
    assert 'id="no-free-slots" role="alert"' in html


def test_a_new_invitation_replaces_the_open_one(world) -> None:
    first = invite(world)
    second = invite(world)
    db.session.refresh(first)
    assert (first.state, second.state) == ("replaced", "sent")
    assert booking.closed_reason(first, utcnow()) == "replaced"


def held_by(application) -> list[int]:
    """The slots the application's invitations hold, read from the database."""
    return list(
        db.session.scalars(
            sa.select(Invitation.slot_id).where(
                Invitation.application_id == application.id, Invitation.slot_id.is_not(None)
            )
        )
    )


def test_a_booked_invitation_stays_until_the_newer_link_books(world, client, auth) -> None:
    """Invited again after booking, the candidate keeps their interview; booking with the new link
    gives the old slot back and closes the old link: one application never holds two slots."""
    # One client for the candidate's pages and the team's: a test's requests share one app context,
    # where Flask-WTF keeps the CSRF token of the first client that asked for one.
    auth.login("recruiter@acme.test")
    candidate = client
    slot_list = world["slots"]
    old = invite(world)
    booking.book(db.session, old, slot_list[0].id, utcnow())
    db.session.commit()
    new = invite(world)
    db.session.expire_all()
    assert (old.state, new.state) == ("booked", "sent") and held_by(world["lena"]) == [slot_list[0].id]
    # The old link still moves the interview (the candidate may not have read the new message).
    assert post_book(candidate, token_of(old), slot_list[2].id).status_code == 303
    assert held_by(world["lena"]) == [slot_list[2].id]

    assert post_book(candidate, token_of(new), slot_list[1].id).status_code == 303
    db.session.expire_all()
    assert (old.state, old.slot_id) == ("replaced", None)
    assert (new.state, new.slot_id) == ("booked", slot_list[1].id)
    assert held_by(world["lena"]) == [slot_list[1].id]
    free = {s.id for s in slots.free(db.session, world["job"].id, utcnow())}
    assert free == {slot_list[0].id, slot_list[2].id}
    page = text(book_page(candidate, token_of(old)))
    assert "There is a newer link" in page and 'name="slot"' not in page
    # The old link cannot take a slot back either.
    csrf = csrf_from(candidate, f"/book/{token_of(new)}")  # the closed page has no form
    refused = candidate.post(f"/book/{token_of(old)}", data={"csrf_token": csrf, "slot": slot_list[0].id})
    assert "There is a newer link" in text(refused)
    assert held_by(world["lena"]) == [slot_list[1].id]

    # What the team sees says the same: the card and both messages of the thread.
    card = text(client.get(f"/applications/{world['lena'].id}/interview", headers={"HX-Request": "true"}))
    berlin = "Europe/Berlin"
    assert f"Booked for {zones.format_time(slot_list[1].starts_at, berlin, '%a %d %b %Y, %H:%M')}" in card
    assert card.count("Booked for") == 1 and "Replaced by a newer invitation" in card
    thread = text(
        client.get(
            f"/conversations/{new.message.conversation_id}/thread?tab=sms", headers={"HX-Request": "true"}
        )
    )
    states = re.findall(r'class="msg-invitation" data-invitation-state="(\w+)"', thread)
    assert sorted(states) == ["booked", "replaced"]
    slots_page = text(client.get(f"/jobs/{world['job'].id}/slots"))
    assert slots_page.count('data-slot-state="booked"') == 1


def test_the_newer_link_may_take_the_time_the_older_one_held(world) -> None:
    old = invite(world)
    booking.book(db.session, old, world["slots"][0].id, utcnow())
    db.session.commit()
    new = invite(world)
    booking.book(db.session, new, world["slots"][0].id, utcnow())
    db.session.commit()
    db.session.expire_all()
    assert (old.state, new.state, new.slot_id) == ("replaced", "booked", world["slots"][0].id)
    assert held_by(world["lena"]) == [world["slots"][0].id]


def test_a_refused_booking_with_the_newer_link_keeps_the_older_booking(world) -> None:
    old = invite(world)
    booking.book(db.session, old, world["slots"][0].id, utcnow())
    astrid = invite(world, "astrid")
    booking.book(db.session, astrid, world["slots"][1].id, utcnow())
    db.session.commit()
    new = invite(world)
    with pytest.raises(booking.BookingRefused):
        booking.book(db.session, new, world["slots"][1].id, utcnow())
    db.session.commit()  # what the refusal left of the transaction: the old booking must be in it
    db.session.expire_all()
    assert (old.state, old.slot_id, new.state) == ("booked", world["slots"][0].id, "sent")
    assert held_by(world["lena"]) == [world["slots"][0].id]


# --- Slots ----------------------------------------------------------------------------------------------


def test_a_slot_is_read_in_the_organisations_zone(world) -> None:
    draft = slots.Draft(datetime(2031, 7, 1).date(), datetime(2031, 7, 1, 9, 30).time(), 45, " Room 1 ", None)
    slot = slots.create(db.session, world["recruiter"], world["job"], draft, utcnow())
    assert slot.starts_at == datetime(2031, 7, 1, 7, 30, tzinfo=UTC)  # 09:30 CEST
    assert (slot.minutes, slot.place) == (45, "Room 1")


@pytest.mark.parametrize(
    ("day", "at", "minutes", "place", "interviewer", "field"),
    [
        (None, "10:00", 30, "Room", None, "day"),
        ("2031-01-01", None, 30, "Room", None, "at"),
        ("2031-01-01", "10:00", 7, "Room", None, "minutes"),
        ("2031-01-01", "10:00", 30, "  ", None, "place"),
        ("2020-01-01", "10:00", 30, "Room", None, "at"),
        ("2031-01-01", "10:00", 30, "Room", "outsider", "interviewer_id"),
    ],
)
def test_a_bad_slot_is_refused_next_to_its_field(world, day, at, minutes, place, interviewer, field) -> None:
    outsider = f.user(world["org"], name="Not On Team")
    draft = slots.Draft(
        datetime.fromisoformat(day).date() if day else None,
        datetime.fromisoformat(f"2000-01-01T{at}").time() if at else None,
        minutes,
        place,
        outsider.id if interviewer else None,
    )
    with pytest.raises(slots.SlotRefused) as refused:
        slots.create(db.session, world["recruiter"], world["job"], draft, utcnow())
    assert refused.value.field == field


def test_the_slots_page_adds_lists_and_removes(world, client, auth) -> None:
    auth.login("recruiter@acme.test")
    path = f"/jobs/{world['job'].id}/slots"
    token = csrf_from(client, path)
    bad = client.post(
        path, data={"csrf_token": token, "day": "2031-03-04", "at": "10:00", "minutes": "30", "place": ""}
    )
    assert bad.status_code == 422 and "Say where" in text(bad) and 'value="2031-03-04"' in text(bad)
    good = client.post(
        path,
        data={
            "csrf_token": token,
            "day": "2031-03-04",
            "at": "10:00",
            "minutes": "60",
            "place": "Room 9",
            "interviewer_id": str(world["recruiter"].id),
        },
    )
    assert good.status_code == 303
    page = text(client.get(path))
    assert "Tue 04 Mar 2031, 10:00 CET" in page and "Room 9" in page and "With Riley Chen" in page
    invitation = invite(world)
    booking.book(db.session, invitation, world["slots"][0].id, utcnow())
    db.session.commit()
    page = text(client.get(path))
    assert page.count('data-slot-state="booked"') == 1 and "Lena Müller" in page
    # A booked slot stays; a free one goes.
    booked = client.post(f"{path}/{world['slots'][0].id}/delete", data={"csrf_token": token})
    assert booked.status_code == 303 and db.session.get(InterviewSlot, world["slots"][0].id) is not None
    assert "This slot is booked" in text(client.get(path))
    free_id = world["slots"][2].id
    client.post(f"{path}/{free_id}/delete", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(InterviewSlot, free_id) is None


def test_a_slot_booked_after_it_was_loaded_is_not_deleted(world) -> None:
    """Deleting is one conditional step: a booking that landed after the team's page (and the route)
    loaded the slot is found by the delete itself, and reported, not a 500."""
    slot = slots.get(db.session, world["job"], world["slots"][0].id)
    assert slot is not None
    invitation = invite(world)
    booking.book(db.session, invitation, slot.id, utcnow())
    db.session.commit()
    with pytest.raises(slots.SlotRefused) as refused:
        slots.delete(db.session, slot)
    assert "This slot is booked" in refused.value.message
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(InterviewSlot, slot.id) is not None
    assert (invitation.state, invitation.slot_id) == ("booked", slot.id)


def test_another_organisations_user_gets_404(world, client, auth) -> None:
    other = f.messaging_org("Globex")
    f.user(other, "admin@globex.test", admin=True, codes=SMS)
    db.session.commit()
    auth.login("admin@globex.test")
    for path in (
        f"/jobs/{world['job'].id}/slots",
        f"/applications/{world['lena'].id}/invite",
        f"/jobs/{world['job'].id}/invite?application={world['lena'].id}",
        f"/applications/{world['lena'].id}/interview",
    ):
        assert client.get(path).status_code == 404, path


# --- Booking --------------------------------------------------------------------------------------------


def book_page(client, token: str):
    return client.get(f"/book/{token}")


def post_book(client, token: str, slot_id: int):
    csrf = csrf_from(client, f"/book/{token}")
    return client.post(f"/book/{token}", data={"csrf_token": csrf, "slot": slot_id})


def test_book_rebook_and_cancel_with_confirmations(world, app) -> None:
    invitation = invite(world)
    token = token_of(invitation)
    candidate = app.test_client()
    page = book_page(candidate, token)
    html = text(page)
    assert page.status_code == 200 and "Backend Engineer" in html and "Acme" in html
    assert "Times are in Europe/Berlin time, where your phone number is from" in html
    assert html.count('name="slot"') == 3

    first, second = world["slots"][0], world["slots"][1]
    assert post_book(candidate, token, first.id).status_code == 303
    db.session.expire_all()
    assert (invitation.state, invitation.slot_id) == ("booked", first.id)
    when = zones.format_time(first.starts_at, "Europe/Berlin", "%a %d %b %Y %H:%M")
    confirmation = db.session.scalars(sa.select(Message).order_by(Message.id.desc())).first()
    assert confirmation.channel == "sms" and confirmation.author_id is None
    assert when in confirmation.body and "Room 3, Hauptstr. 1" in confirmation.body
    assert f"{BASE}/book/{token}" in confirmation.body
    html = text(book_page(candidate, token))
    assert zones.format_time(first.starts_at, "Europe/Berlin", "%A %d %B %Y, %H:%M") in html
    assert "Cancel the interview" in html and html.count('name="slot"') == 2

    assert post_book(candidate, token, second.id).status_code == 303
    db.session.expire_all()
    assert invitation.slot_id == second.id
    assert {s.id for s in slots.free(db.session, world["job"].id, utcnow())} == {
        first.id,
        world["slots"][2].id,
    }

    csrf = csrf_from(candidate, f"/book/{token}")
    assert candidate.post(f"/book/{token}/cancel", data={"csrf_token": csrf}).status_code == 303
    db.session.expire_all()
    assert (invitation.state, invitation.slot_id) == ("cancelled", None)
    last = db.session.scalars(sa.select(Message).order_by(Message.id.desc())).first()
    assert "is cancelled" in last.body
    assert "You cancelled your interview" in text(book_page(candidate, token))
    # The same link books again; that fourth change is confirmed on the page only (three messages at
    # most per invitation).
    again = post_book(candidate, token, first.id)
    assert again.status_code == 303
    db.session.expire_all()
    assert invitation.state == "booked"
    assert "This page is your confirmation" in text(candidate.get(again.headers["Location"]))
    messages = db.session.scalar(sa.select(sa.func.count()).select_from(Message))
    assert messages == 4  # the invitation; the booking, the move and the cancellation confirmed


def last_message() -> Message:
    return db.session.scalars(sa.select(Message).order_by(Message.id.desc())).first()


def test_an_email_invitation_is_confirmed_by_email(world, app) -> None:
    invitation = invite(world, channel="email", body="Dear %FIRSTNAME%, pick a time.", subject="Interview")
    slot = world["slots"][1]
    assert post_book(app.test_client(), token_of(invitation), slot.id).status_code == 303
    db.session.expire_all()
    confirmation = last_message()
    assert confirmation.id != invitation.message_id and confirmation.channel == "email"
    assert confirmation.to_addr == world["lena"].candidate.email and confirmation.author_id is None
    assert confirmation.subject == "Interview booked: Backend Engineer"
    when = zones.format_time(slot.starts_at, "Europe/Berlin", "%a %d %b %Y %H:%M")
    assert when in confirmation.body and "https://meet.example/abc" in confirmation.body
    assert f"{BASE}/book/{token_of(invitation)}" in confirmation.body
    assert confirmation.conversation_id == invitation.message.conversation_id


def test_a_whatsapp_invitation_is_confirmed_by_whatsapp(world, app) -> None:
    f.open_whatsapp_window(world["lena"])
    db.session.commit()
    invitation = invite(world, channel="whatsapp")
    slot = world["slots"][0]
    assert post_book(app.test_client(), token_of(invitation), slot.id).status_code == 303
    db.session.expire_all()
    confirmation = last_message()
    assert confirmation.id != invitation.message_id
    assert (confirmation.channel, confirmation.to_addr, confirmation.from_addr) == (
        "whatsapp",
        "+4915123456789",
        invitation.message.from_addr,
    )
    when = zones.format_time(slot.starts_at, "Europe/Berlin", "%a %d %b %Y %H:%M")
    assert when in confirmation.body and "Room 3, Hauptstr. 1" in confirmation.body


def test_a_replaced_link_gets_a_friendly_page_that_names_no_one(world, app) -> None:
    old = invite(world)
    invite(world)
    page = book_page(app.test_client(), token_of(old))
    html = text(page)
    assert page.status_code == 200 and "There is a newer link" in html
    assert "Acme has sent you a newer invitation" in html
    for private in ("Lena", "Müller", "Backend Engineer", 'name="slot"'):
        assert private not in html, private


def test_a_slot_someone_holds_is_neither_shown_nor_bookable(world, app) -> None:
    lena, astrid = invite(world), invite(world, "astrid")
    booking.book(db.session, lena, world["slots"][0].id, utcnow())
    db.session.commit()
    candidate = app.test_client()
    html = text(book_page(candidate, token_of(astrid)))
    assert f'value="{world["slots"][0].id}"' not in html and "Lena" not in html and "Müller" not in html
    response = post_book(candidate, token_of(astrid), world["slots"][0].id)
    assert response.status_code == 409 and "Someone has just booked that time" in text(response)
    db.session.expire_all()
    assert astrid.slot_id is None and lena.slot_id == world["slots"][0].id


def test_booking_a_held_slot_is_refused_by_the_database(world) -> None:
    lena, astrid = invite(world), invite(world, "astrid")
    booking.book(db.session, lena, world["slots"][0].id, utcnow())
    db.session.commit()
    with pytest.raises(booking.BookingRefused) as refused:
        booking.book(db.session, astrid, world["slots"][0].id, utcnow())
    assert "just booked" in str(refused.value)
    db.session.commit()
    db.session.expire_all()
    assert (astrid.state, astrid.slot_id) == ("sent", None)


def test_a_slot_of_another_job_or_past_is_not_offered(world) -> None:
    invitation = invite(world)
    other = InterviewSlot(
        job_id=world["other_job"].id, starts_at=utcnow() + timedelta(days=1), minutes=30, place="X"
    )
    past = InterviewSlot(
        job_id=world["job"].id, starts_at=utcnow() - timedelta(hours=1), minutes=30, place="X"
    )
    db.session.add_all([other, past])
    db.session.commit()
    for slot in (other, past):
        with pytest.raises(booking.BookingRefused):
            booking.book(db.session, invitation, slot.id, utcnow())


def test_an_expired_link_gets_a_friendly_page(world, app) -> None:
    invitation = invite(world)
    invitation.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    candidate = app.test_client()
    page = book_page(candidate, token_of(invitation))
    assert page.status_code == 200 and "This link has expired" in text(page) and "Lena" not in text(page)
    assert 'name="slot"' not in text(page)
    csrf = csrf_from(candidate, "/login")
    response = candidate.post(
        f"/book/{token_of(invitation)}", data={"csrf_token": csrf, "slot": world["slots"][0].id}
    )
    assert "This link has expired" in text(response)
    db.session.expire_all()
    assert invitation.slot_id is None


def test_a_booked_link_lives_until_the_interview_starts(world, app) -> None:
    invitation = invite(world)
    booking.book(db.session, invitation, world["slots"][0].id, utcnow())
    invitation.expires_at = utcnow() - timedelta(days=1)  # past its booking window: still changeable
    db.session.commit()
    candidate = app.test_client()
    assert "Cancel the interview" in text(book_page(candidate, token_of(invitation)))
    world["slots"][0].starts_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    page = book_page(candidate, token_of(invitation))
    assert page.status_code == 200 and "This interview has begun" in text(page)
    assert "Cancel the interview" not in text(page)


@pytest.mark.parametrize("token", ["not-a-real-token-at-all", "short", "x" * 200, "%00%00"])
def test_an_unknown_link_gets_a_friendly_page_that_names_no_one(world, app, token: str) -> None:
    invite(world)
    page = app.test_client().get(f"/book/{token}")
    assert page.status_code == 404
    html = text(page)
    assert "This link does not work" in html and "Lena" not in html and "Acme" not in html


def test_the_booking_page_is_not_indexed(world, app) -> None:
    candidate = app.test_client()
    for path in (f"/book/{token_of(invite(world))}", "/book/not-a-real-token-at-all"):
        page = candidate.get(path)
        assert page.headers["X-Robots-Tag"] == "noindex, nofollow"
        assert '<meta name="robots" content="noindex, nofollow">' in text(page)
        assert page.headers["Referrer-Policy"] == "no-referrer"


class TestRateLimit:
    @pytest.fixture
    def app_config(self) -> dict[str, object]:
        return {"PUBLIC_BASE_URL": BASE, "BOOKING_MAX_REQUESTS_PER_ADDRESS": 3}

    def test_an_address_asking_too_often_is_told_to_wait(self, world, app) -> None:
        token = token_of(invite(world))
        candidate = app.test_client()
        codes = [candidate.get(f"/book/{token}").status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        too_many = candidate.get("/book/not-a-real-token-at-all")
        assert too_many.status_code == 429 and "Wait a few minutes" in text(too_many)
        assert "Retry-After" in too_many.headers
        # Another address is not held back.
        other = app.test_client().get(f"/book/{token}", environ_base={"REMOTE_ADDR": "192.0.2.7"})
        assert other.status_code == 200


def test_the_confirmation_is_skipped_not_the_booking_when_the_channel_cannot_carry_it(world, app) -> None:
    invitation = invite(world)
    opt_out(world["org"], "+4915123456789")
    db.session.commit()
    assert post_book(app.test_client(), token_of(invitation), world["slots"][0].id).status_code == 303
    db.session.expire_all()
    assert invitation.state == "booked"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 1


# --- Bulk -----------------------------------------------------------------------------------------------


def bulk_invite(client, job_id: int, chosen: list[int]) -> tuple[str, list[tuple[str, str]], list[str]]:
    """Invite the chosen applications by SMS from the job's page: the report's page, its rows
    (outcome, name) and the reasons it gives."""
    token = csrf_from(client, f"/jobs/{job_id}/invite?application={chosen[0]}")
    response = client.post(
        f"/jobs/{job_id}/invite",
        data={
            "csrf_token": token,
            "channel": "sms",
            "body": "Hi %FIRSTNAME%: %INVITELINK%",
            "application": chosen,
        },
    )
    assert response.status_code == 200
    html = text(response)
    rows = re.findall(r'data-outcome="(\w+)">\s*<a [^>]+>([^<]+)</a>', html)
    return html, rows, re.findall(r'class="report-reason">([^<]+)<', html)


def test_a_bulk_invitation_reports_each_candidate(world, client, auth) -> None:
    auth.login("recruiter@acme.test")
    job = world["job"]
    chosen = [world[k].id for k in ("lena", "noel", "oscar", "astrid")] + [world["elsewhere"].id]
    form = client.get(f"/jobs/{job.id}/invite?" + "&".join(f"application={i}" for i in chosen))
    assert form.status_code == 200 and "Send 4 invitations" in text(form)  # Eve is on another job
    html, rows, reasons = bulk_invite(client, job.id, chosen)
    assert rows == [
        ("sent", "Lena Müller"),
        ("refused", "Noel Nomobile"),
        ("refused", "Oscar Out"),
        ("sent", "Astrid Lund"),
    ]
    assert "no mobile number" in reasons[0] and "opted out" in reasons[1]
    assert "2 of 4 sent, 2 refused" in html
    sent = db.session.scalars(sa.select(Invitation).order_by(Invitation.id)).all()
    assert [i.application_id for i in sent] == [world["lena"].id, world["astrid"].id]
    assert len({i.token_hash for i in sent}) == 2
    assert db.session.scalar(sa.select(CreditAccount.balance)) == 48
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 2


@contextmanager
def database_refusing_messages_to(to_addr: str) -> Iterator[None]:
    """A trigger that makes the database itself refuse to store a message to this address: a real
    failure of the send that no check of Relay's foresees. Dropped afterwards (the PostgreSQL
    database is shared by the run's tests)."""
    if db.engine.dialect.name == "sqlite":
        create = [
            f"CREATE TRIGGER refuse_message BEFORE INSERT ON message WHEN NEW.to_addr = '{to_addr}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
        ]
        drop = ["DROP TRIGGER IF EXISTS refuse_message"]
    else:
        create = [
            "CREATE FUNCTION refuse_message() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test trigger'; END $$",
            f"CREATE TRIGGER refuse_message BEFORE INSERT ON message FOR EACH ROW "
            f"WHEN (NEW.to_addr = '{to_addr}') EXECUTE FUNCTION refuse_message()",
        ]
        drop = [
            "DROP TRIGGER IF EXISTS refuse_message ON message",
            "DROP FUNCTION IF EXISTS refuse_message()",
        ]
    with db.engine.begin() as conn:
        for statement in create:
            conn.execute(sa.text(statement))
    try:
        yield
    finally:
        db.session.rollback()
        with db.engine.begin() as conn:
            for statement in drop:
                conn.execute(sa.text(statement))


def test_an_unexpected_failure_in_a_bulk_invitation_is_that_candidates_only(
    world, client, auth, caplog
) -> None:
    ida = f.application(world["job"], f.candidate(world["org"], "Ida", "Third", mobile="+4915123456786"))
    db.session.commit()
    auth.login("recruiter@acme.test")
    job = world["job"]
    chosen = [world["lena"].id, world["astrid"].id, ida.id]
    with database_refusing_messages_to("+46701234567"), caplog.at_level("ERROR"):
        html, rows, reasons = bulk_invite(client, job.id, chosen)
    assert rows == [("sent", "Lena Müller"), ("refused", "Astrid Lund"), ("sent", "Ida Third")]
    assert reasons == [invitations.UNEXPECTED]
    assert "2 of 3 sent, 1 refused" in html
    # Astrid's transaction was undone whole: no invitation, no message, no credit spent on her.
    sent = db.session.scalars(sa.select(Invitation).order_by(Invitation.id)).all()
    assert [i.application_id for i in sent] == [world["lena"].id, ida.id]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 2
    assert db.session.scalar(sa.select(CreditAccount.balance)) == 48
    logged = [r for r in caplog.records if r.name == "webapp.interviews.invitations"]
    assert logged and logged[0].exc_info and f"application {world['astrid'].id}" in logged[0].getMessage()


def test_a_bulk_invitation_without_the_link_sends_nothing(world, client, auth) -> None:
    auth.login("recruiter@acme.test")
    job = world["job"]
    token = csrf_from(client, f"/jobs/{job.id}/invite?application={world['lena'].id}")
    response = client.post(
        f"/jobs/{job.id}/invite",
        data={
            "csrf_token": token,
            "channel": "whatsapp",
            "body": "Hi",
            "application": [world["lena"].id, world["astrid"].id],
        },
    )
    assert response.status_code == 422 and "no booking link" in text(response)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_the_job_list_offers_ticking_candidates(world, client, auth) -> None:
    auth.login("recruiter@acme.test")
    html = text(client.get(f"/jobs/{world['job'].id}"))
    assert 'id="invite-selected"' in html
    assert f'name="application" value="{world["lena"].id}"' in html


# --- The state, live ------------------------------------------------------------------------------------


def test_the_state_shows_on_the_application_page_and_in_the_thread(world, app, client, auth) -> None:
    auth.login("recruiter@acme.test")
    invitation = invite(world)
    page = text(client.get(f"/applications/{world['lena'].id}?tab=sms"))
    assert "Sent, not booked yet" in page and 'data-invitation-state="sent"' in page
    conversation_id = invitation.message.conversation_id
    thread = client.get(f"/conversations/{conversation_id}/thread?tab=sms", headers={"HX-Request": "true"})
    version = re.search(r'data-version="([^"]+)"', text(thread)).group(1)
    unchanged = client.get(
        f"/conversations/{conversation_id}/thread?tab=sms&since={version}", headers={"HX-Request": "true"}
    )
    assert unchanged.status_code == 204

    booking.book(db.session, invitation, world["slots"][0].id, utcnow())
    db.session.commit()
    changed = client.get(
        f"/conversations/{conversation_id}/thread?tab=sms&since={version}", headers={"HX-Request": "true"}
    )
    assert changed.status_code == 200 and "Interview invitation · Booked for" in text(changed)
    card = text(client.get(f"/applications/{world['lena'].id}/interview", headers={"HX-Request": "true"}))
    when = zones.format_time(world["slots"][0].starts_at, "Europe/Berlin", "%a %d %b %Y, %H:%M")
    assert f"Booked for {when}" in card
    # The Inbox's marker moved too.
    db.session.expire_all()
    assert db.session.get(Conversation, conversation_id).change_seq > 0


def test_times_follow_the_number_then_the_browser(world) -> None:
    invitation = invite(world)
    assert booking.candidate_zone(invitation, "America/Chicago", "UTC") == ("Europe/Berlin", "number")
    world["lena"].candidate.mobile = "+34612345678"  # mainland or the Canaries: the number cannot say
    assert booking.candidate_zone(invitation, "Atlantic/Canary", "UTC") == ("Atlantic/Canary", "browser")
    assert booking.candidate_zone(invitation, "Not/AZone", "Europe/Berlin") == (
        "Europe/Berlin",
        "organisation",
    )
    db.session.rollback()


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+4915123456789", "Europe/Berlin"),
        ("+447400123400", "Europe/London"),
        ("+353850123420", "Europe/Dublin"),
        ("+12015550100", "America/New_York"),
        ("+34612345678", None),
        (None, None),
    ],
)
def test_a_numbers_zone(number, zone) -> None:
    assert zones.for_number(number) == zone


def test_invitation_templates_are_offered_on_the_invite_form_only(world, client, auth) -> None:
    db.session.add_all(
        [
            MessageTemplate(
                organization_id=world["org"].id,
                name="Invite SMS",
                channel="sms",
                kind="interview_invitation",
                body="Hi %FIRSTNAME%, book: %INVITELINK%",
            ),
            MessageTemplate(
                organization_id=world["org"].id, name="Hello", channel="sms", kind="general", body="Hello"
            ),
        ]
    )
    db.session.commit()
    auth.login("recruiter@acme.test")
    form = text(client.get(f"/applications/{world['lena'].id}/invite"))
    assert "Invite SMS" in form and ">SMS · Hello<" not in form
    # The form opens with the first invitation template's text.
    assert "Hi %FIRSTNAME%, book: %INVITELINK%</textarea>" in form


def test_the_demo_has_slots_an_invitation_and_a_booking(app, runner) -> None:
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    all_slots = db.session.scalars(sa.select(InterviewSlot)).all()
    by_job = {
        title: [s for s in all_slots if s.job.title == title] for title in {s.job.title for s in all_slots}
    }
    assert {title: len(found) for title, found in by_job.items()} == {
        "Backend Engineer": 9,
        "Warehouse Associate": 6,
    }
    # Newark's slots are on New York's clock, entered at 10:00, 10:30 and 11:00 there.
    newark = by_job["Warehouse Associate"]
    assert {s.time_zone for s in newark} == {"America/New_York"} == {s.job.time_zone for s in newark}
    assert sorted({zones.local(s.starts_at, "America/New_York").strftime("%H:%M") for s in newark}) == [
        "10:00",
        "10:30",
        "11:00",
    ]
    states = sorted(db.session.scalars(sa.select(Invitation.state)))
    assert states == ["booked", "sent"]
    sent = db.session.scalar(sa.select(Invitation).where(Invitation.state == "sent"))
    assert sent.channel == "sms" and "/book/" in sent.message.body and sent.message.status == "delivered"
