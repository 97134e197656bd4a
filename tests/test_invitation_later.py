"""Send later in the interview invitation's composer (issue #20 §1): a picked time schedules the
invitation (its link valid from when it leaves), the page says so; for several candidates one picked
time that is night for some of them moves, for those, to their next allowed moment, and the report
says who waits for when. The clock is injected (the modules' `utcnow`); nothing sleeps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.conftest import csrf_from
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.interviews import invitations
from webapp.messaging import compose, optouts, scheduled
from webapp.models import InterviewSlot, Invitation, Message, OptOut
from webapp.web import composer
from webapp.web.interviews import routes

# Tuesday 8 Dec 2026, 10:00 in Berlin (the organisation's zone), 03:00 in Austin.
NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
# Wednesday 14:00 in Berlin: 07:00 in Austin, before Texas's 09:00.
PICKED, PICKED_UTC = "2026-12-09T14:00", datetime(2026, 12, 9, 13, 0, tzinfo=UTC)
TEX_MORNING = datetime(2026, 12, 9, 15, 0, tzinfo=UTC)  # Wednesday 09:00 in Austin
BODY = "Hi %FIRSTNAME%, book here: %INVITELINK%"


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"QUIET_HOURS": True, "PUBLIC_BASE_URL": "https://relay.example"}


@pytest.fixture
def world(app, auth, monkeypatch):
    for module in (compose, composer, routes, scheduled):
        monkeypatch.setattr(module, "utcnow", lambda: NOW)
    acme = f.messaging_org("Acme", sender_name="Acme", time_zone="Europe/Berlin")
    riley = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    for e164 in ("+4915123456700", "+15125550100"):
        f.number(acme, e164)
    job = f.job(acme, team=[riley], title="Backend Engineer")
    lena = f.application(job, f.candidate(acme, "Lena", "Müller", mobile="+4915123456789"))
    tex = f.application(job, f.candidate(acme, "Tex", "Ritter", mobile="+15125550123"))
    f.credits(acme, 20)
    db.session.add(
        InterviewSlot(job_id=job.id, starts_at=NOW + timedelta(days=3), minutes=30, place="Room 3")
    )
    db.session.commit()
    auth.login("recruiter@acme.test")
    return {"org": acme, "job": job, "lena": lena, "tex": tex}


def html(response) -> str:
    return response.get_data(as_text=True)


def test_one_invitation_at_a_picked_time_waits_for_it_its_link_valid_from_then(client, world) -> None:
    lena = world["lena"]
    path = f"/applications/{lena.id}/invite"
    page = html(client.get(path))
    assert "<summary>Send later</summary>" in page and "Their morning" in page
    assert "Follow up if no reply" not in page
    data = {"csrf_token": csrf_from(client, path), "channel": "sms", "body": BODY, "send_at": PICKED}
    response = client.post(path, data=data, follow_redirects=True)
    message = db.session.scalar(sa.select(Message))
    assert (message.status, message.send_at) == ("scheduled", PICKED_UTC)
    invitation = db.session.scalar(sa.select(Invitation))
    assert invitation.expires_at == PICKED_UTC + invitations.VALID_FOR
    assert credits.balance(db.session, world["org"]) == 19  # paid when scheduled
    assert "Invitation by SMS scheduled for Wed 09 Dec 14:00 CET (your time)" in html(response)
    assert "Scheduled for Wed 09 Dec 14:00" in html(response)


def test_a_picked_time_at_night_for_one_candidate_is_refused_beside_send_at(client, world) -> None:
    tex = world["tex"]
    path = f"/applications/{tex.id}/invite"
    data = {"csrf_token": csrf_from(client, path), "channel": "sms", "body": BODY, "send_at": PICKED}
    response = client.post(path, data=data)
    assert response.status_code == 422
    assert re.search(r'id="send-at-error">At that time it is Wed 07:00 for them: Texas law', html(response))
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_one_time_for_many_moves_for_those_asleep_then_and_the_report_says_when(client, world) -> None:
    job, lena, tex = world["job"], world["lena"], world["tex"]
    path = f"/jobs/{job.id}/invite"
    page = html(client.get(f"{path}?application={lena.id}&application={tex.id}"))
    assert "<summary>Send later</summary>" in page and "Their morning" not in page
    token = csrf_from(client, f"{path}?application={lena.id}&application={tex.id}")
    counter = html(
        client.post(
            "/interviews/preview",
            data={
                "csrf_token": token,
                "channel": "sms",
                "body": BODY,
                "send_at": PICKED,
                "job": job.id,
                "application": [lena.id, tex.id],
            },
        )
    )
    line = re.search(r'data-counter="hours" data-hours="later">([^<]*)</p>', counter)
    assert line and line.group(1) == (
        "Sends Wed 14:00 your time. Anyone for whom it is night then gets it at the next time their hours "
        "allow."
    )
    data = {
        "csrf_token": token,
        "channel": "sms",
        "body": BODY,
        "send_at": PICKED,
        "application": [lena.id, tex.id],
    }
    report = html(client.post(path, data=data))
    sent = {m.to_addr: m for m in db.session.scalars(sa.select(Message))}
    assert sent["+4915123456789"].send_at == PICKED_UTC
    assert sent["+15125550123"].send_at == TEX_MORNING
    assert {m.status for m in sent.values()} == {"scheduled"}
    assert "2 of 2 sent (2 of them wait for their time)." in report
    assert "Scheduled for Wed 09 Dec 14:00" in report and "Scheduled for Wed 09 Dec 16:00" in report


# --- A scheduled invitation says what it is, keeps its link through an edit, and books only once sent ---

LINK = re.compile(r"https://relay\.example/book/[A-Za-z0-9_-]+")
HX = {"HX-Request": "true"}


def schedule_invitation(client, world) -> tuple[Invitation, Message, str]:
    """Lena's invitation by SMS at the picked time: the invitation, its message, and its booking link."""
    path = f"/applications/{world['lena'].id}/invite"
    data = {"csrf_token": csrf_from(client, path), "channel": "sms", "body": BODY, "send_at": PICKED}
    client.post(path, data=data)
    invitation = db.session.scalar(sa.select(Invitation))
    message = db.session.get(Message, invitation.message_id)
    assert message.status == "scheduled"
    return invitation, message, LINK.search(message.body).group(0)


def scheduled_url(message: Message) -> str:
    return f"/conversations/{message.conversation_id}/scheduled/{message.id}"


def post(client, url: str, data: dict[str, str]):
    return client.post(url, data={**data, "csrf_token": csrf_from(client, "/jobs")}, headers=HX)


def states(client, world) -> tuple[str, str]:
    """The invitation's state as the thread says it, and as the application's Interview card does."""
    page = html(client.get(f"/applications/{world['lena'].id}?tab=sms"))
    thread = re.search(r'class="msg-invitation"[^>]*>Interview invitation · ([^<]*)<', page)
    card = re.search(r'class="invitation-state">([^<]*)<', page)
    assert thread and card, page
    return thread.group(1), card.group(1)


def test_a_scheduled_invitation_says_so_and_cancelled_before_it_left_its_link_books_nothing(
    client, world
) -> None:
    invitation, message, link = schedule_invitation(client, world)
    waiting = "Scheduled for Wed 09 Dec 14:00 CET, not sent yet"
    assert states(client, world) == (waiting, waiting)
    path = link.removeprefix("https://relay.example")
    # Nobody was given the link yet: it books nothing.
    assert client.get(path).status_code == 404

    assert post(client, f"{scheduled_url(message)}/cancel", {}).status_code == 204
    said = states(client, world)
    assert said == ("Cancelled before it was sent", "Cancelled before it was sent")
    closed = client.get(path)
    assert closed.status_code == 404 and "This link is not valid" in html(closed)
    assert "has not been sent" in html(closed)
    slot = db.session.scalar(sa.select(InterviewSlot))
    booked = client.post(path, data={"slot_id": slot.id, "csrf_token": csrf_from(client, "/jobs")})
    assert booked.status_code == 404
    db.session.expire_all()
    assert db.session.get(Invitation, invitation.id).state == "sent"
    assert db.session.get(InterviewSlot, slot.id).holder is None


def test_a_held_invitation_says_why_it_was_not_sent(client, world) -> None:
    _, message, _ = schedule_invitation(client, world)
    db.session.add(OptOut(organization_id=world["org"].id, e164="+4915123456789"))
    db.session.commit()
    assert optouts.active(db.session, world["org"].id, "+4915123456789")
    assert scheduled.send_due(PICKED_UTC, hand_over=False).held == [message.id]
    thread, card = states(client, world)
    assert thread == card == "Held: not sent (+49 1512 3456789 opted out of texts before it left)"


def test_an_edited_invitation_keeps_its_link_and_the_invitation_follows_the_new_message(
    client, world
) -> None:
    invitation, message, link = schedule_invitation(client, world)
    new_body = message.body.replace("book here:", "pick a time that suits you:")
    edited = post(client, scheduled_url(message), {"send_at": PICKED, "body": new_body})
    assert edited.status_code == 204, html(edited)
    db.session.expire_all()
    new = db.session.scalar(sa.select(Message).where(Message.status == "scheduled"))
    assert new.id != message.id and db.session.get(Message, message.id).status == "cancelled"
    invitation = db.session.get(Invitation, invitation.id)
    assert invitation.message_id == new.id
    # What Lena will read: the same link, the one whose token the invitation holds.
    assert new.body == f"Hi Lena, pick a time that suits you: {link}"
    assert invitations.link_in(invitation, new.body) == link
    waiting = "Scheduled for Wed 09 Dec 14:00 CET, not sent yet"
    assert states(client, world) == (waiting, waiting)

    # %INVITELINK% written in an edit is that same link too.
    post(client, scheduled_url(new), {"send_at": PICKED, "body": "Lena, choose here: %INVITELINK%"})
    db.session.expire_all()
    newer = db.session.scalar(sa.select(Message).where(Message.status == "scheduled"))
    assert newer.body == f"Lena, choose here: {link}"
    assert db.session.get(Invitation, invitation.id).message_id == newer.id

    # Once it has left, the link books.
    assert scheduled.send_due(PICKED_UTC, hand_over=False).queued == [newer.id]
    path = link.removeprefix("https://relay.example")
    assert client.get(path).status_code == 200


def test_an_edit_that_drops_the_booking_link_is_refused_under_the_form(client, world) -> None:
    invitation, message, link = schedule_invitation(client, world)
    refused = post(client, scheduled_url(message), {"send_at": PICKED, "body": "Hi Lena, call us."})
    assert refused.status_code == 422
    assert f"Keep the booking link {link} in the text" in html(refused)
    db.session.expire_all()
    assert db.session.get(Message, message.id).status == "scheduled"
    assert db.session.get(Invitation, invitation.id).message_id == message.id


@pytest.mark.parametrize("new_text", [False, True])
def test_a_moved_invitation_books_for_its_validity_from_the_new_time(client, world, new_text) -> None:
    invitation, message, _ = schedule_invitation(client, world)
    later, later_utc = "2026-12-11T10:00", datetime(2026, 12, 11, 9, 0, tzinfo=UTC)
    body = message.body.replace("Hi", "Hello") if new_text else message.body
    assert post(client, scheduled_url(message), {"send_at": later, "body": body}).status_code == 204
    db.session.expire_all()
    invitation = db.session.get(Invitation, invitation.id)
    assert invitation.message.send_at == later_utc
    assert invitation.expires_at == later_utc + invitations.VALID_FOR
