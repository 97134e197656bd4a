"""Quiet hours at the send (issue #20 §2): a text written at night for the recipient is stored scheduled
for their morning and leaves then through the fake Vonage, once; a reason sets the organisation's hours
aside and is kept on the message, never the law's; a reply within minutes of theirs goes now; email is
not held. The clock is passed in (compose's `now`, the scheduler's pass)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests import factories as f
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import compose, conversations, scheduled
from webapp.messaging.checks import SendRefused
from webapp.messaging.subjects import of_application
from webapp.models import Message


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {**fake.app_settings(), "VONAGE_TIMEOUT": 2, "QUIET_HOURS": True}


def at(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


TUESDAY_NIGHT = at("America/Chicago", 2026, 12, 8, 23, 10)  # in Austin
SATURDAY_MORNING = at("America/Chicago", 2026, 12, 12, 10, 0)


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", time_zone="Europe/Berlin")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(org, "+15125550100")
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user], title="Backend Engineer")
    texan = f.application(job, f.candidate(org, "Tex", "Ritter", mobile="+15125550123"))
    f.credits(org, 10)
    db.session.commit()
    return {"org": org, "user": user, "texan": texan}


def write(world, now: datetime, channel: str = "sms", **kw) -> Message:
    message = compose.compose(
        db.session, world["user"], of_application(world["texan"]), channel, "Hi %FIRSTNAME%", now=now, **kw
    )
    db.session.commit()
    return message


def posts_for(fake, message_id: int) -> int:
    return sum(1 for r in fake.requests if r.body and r.body.get("client_ref") == str(message_id))


def test_a_text_written_at_night_for_them_leaves_at_their_morning_once(world, fake) -> None:
    message = write(world, TUESDAY_NIGHT)
    assert message.status == "scheduled"
    assert message.send_at == at("America/Chicago", 2026, 12, 9, 9, 0)
    assert scheduled.send_due(message.send_at - timedelta(seconds=1)).queued == []
    assert scheduled.send_due(message.send_at + timedelta(seconds=5)).queued == [message.id]
    scheduled.send_due(message.send_at + timedelta(seconds=20))  # a second pass: nothing more
    db.session.expire_all()
    assert db.session.get(Message, message.id).status in ("submitted", "delivered")
    assert posts_for(fake, message.id) == 1


def test_a_reason_sends_outside_the_organisations_hours_and_is_kept(world) -> None:
    assert write(world, SATURDAY_MORNING).status == "scheduled"
    message = write(world, SATURDAY_MORNING, override_reason="They start on Monday")
    assert message.status != "scheduled" and message.send_at is None
    assert message.hours_override == "They start on Monday"


def test_a_reason_does_not_set_the_law_aside_and_nothing_is_stored(world) -> None:
    with pytest.raises(SendRefused) as refused:
        write(world, TUESDAY_NIGHT, override_reason="Urgent")
    db.session.rollback()
    assert refused.value.field == "override_reason" and "Tex. Bus. & Com. Code" in refused.value.message
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_a_picked_time_at_night_for_them_is_refused(world) -> None:
    daytime = at("America/Chicago", 2026, 12, 8, 12, 0)
    with pytest.raises(SendRefused) as refused:
        write(world, daytime, send_at=at("America/Chicago", 2026, 12, 8, 22, 30))
    assert refused.value.field == "send_at" and "Wed 09:00 in Texas" in refused.value.message


def test_a_reply_within_minutes_of_theirs_goes_now_at_night(world) -> None:
    write(world, at("America/Chicago", 2026, 12, 8, 15, 0))  # the conversation, by day
    conversation = conversations.for_subject(db.session, of_application(world["texan"]))
    db.session.add(
        Message(
            conversation_id=conversation.id,
            channel="sms",
            direction="inbound",
            body="Is it still open?",
            status="received",
            from_addr="+15125550123",
            to_addr="+15125550100",
            received_at=TUESDAY_NIGHT - timedelta(minutes=4),
        )
    )
    db.session.commit()
    assert write(world, TUESDAY_NIGHT).status != "scheduled"
    assert write(world, TUESDAY_NIGHT + timedelta(minutes=20)).status == "scheduled"


def test_email_is_not_held(world) -> None:
    message = write(world, TUESDAY_NIGHT, channel="email", subject="Hello")
    assert message.status != "scheduled"


# --- Editing a scheduled message keeps its reason (the Edit form has no reason field) ------------------

FRIDAY_NOON = at("America/Chicago", 2026, 12, 11, 12, 0)


def reason_scheduled(world) -> Message:
    """Saturday 10:00 in Austin, outside the organisation's Monday–Friday, with the writer's reason."""
    return write(world, FRIDAY_NOON, send_at=SATURDAY_MORNING, override_reason="They start on Monday")


def test_an_edit_of_a_message_scheduled_with_a_reason_keeps_the_reason(world) -> None:
    message = reason_scheduled(world)
    assert (message.status, message.hours_override) == ("scheduled", "They start on Monday")
    # Its text alone: a new message at the same time, with the same reason.
    edited = scheduled.reschedule(
        db.session, world["user"], message, body="Hi Tex, see you Monday", now=FRIDAY_NOON
    )
    db.session.commit()
    assert (edited.status, edited.send_at, edited.hours_override) == (
        "scheduled",
        SATURDAY_MORNING,
        "They start on Monday",
    )
    # Its time alone, still outside the organisation's hours: the reason still sets them aside.
    later = at("America/Chicago", 2026, 12, 12, 11, 0)
    moved = scheduled.reschedule(db.session, world["user"], edited, send_at=later, now=FRIDAY_NOON)
    db.session.commit()
    assert (moved.id, moved.send_at, moved.hours_override) == (edited.id, later, "They start on Monday")
    # Moved inside them, it needs no reason any more: none is kept that was not used.
    monday = at("America/Chicago", 2026, 12, 14, 10, 0)
    moved = scheduled.reschedule(db.session, world["user"], moved, send_at=monday, now=FRIDAY_NOON)
    db.session.commit()
    assert (moved.send_at, moved.hours_override) == (monday, None)


def test_an_edit_is_still_held_to_the_law_and_says_the_first_time_that_can_be(world) -> None:
    message = reason_scheduled(world)
    saturday_night = at("America/Chicago", 2026, 12, 12, 22, 0)
    with pytest.raises(SendRefused) as refused:
        scheduled.reschedule(db.session, world["user"], message, send_at=saturday_night, now=FRIDAY_NOON)
    db.session.rollback()
    assert refused.value.field == "send_at"
    said = refused.value.message
    assert said.startswith("At that time it is Sat 22:00 for them: Texas law (Tex. Bus. & Com. Code")
    # The reason sets the organisation's Monday–Friday aside: Sunday noon, Texas's Sunday hours.
    assert said.endswith(
        "Pick a time within their hours: the first is Sun 12:00 in Texas · Sun 19:00 your time."
    )


def test_an_edit_refused_by_the_organisations_hours_does_not_offer_a_reason_field(world) -> None:
    message = write(world, FRIDAY_NOON, send_at=at("America/Chicago", 2026, 12, 11, 15, 0))
    with pytest.raises(SendRefused) as refused:
        scheduled.reschedule(db.session, world["user"], message, send_at=SATURDAY_MORNING, now=FRIDAY_NOON)
    db.session.rollback()
    assert refused.value.message == (
        "At that time it is Sat 10:00 for them: Your organisation sends Mon–Fri 08:00–20:00 their time. "
        "Pick a time within their hours: the first is Mon 09:00 in Texas · Mon 16:00 your time."
    )
    assert "reason" not in refused.value.message
