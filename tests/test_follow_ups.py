"""Follow-ups that stop on a reply (issue 20 §3): "If no reply in N days, send…" is stored and paid for
with its message, at that message's time + N days (moved out of the recipient's night), cancelled and
refunded the moment the person writes back on any channel of the conversation (the signed inbound
webhook) or the application is closed, never by our own messages; with no reply it leaves at its time
through the fake Vonage, once. The clock is passed in (compose's `now`, the scheduler's pass); the race
with the scheduler on PostgreSQL is in tests/test_follow_up_races.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.webhook_support import inbound, post, status
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.jobs import stages
from webapp.messaging import compose, dispatch, follow_ups, scheduled
from webapp.messaging.checks import SendRefused
from webapp.messaging.subjects import of_application
from webapp.models import CreditTransaction, Message, utcnow

INBOUND, STATUS = "/webhooks/vonage/inbound", "/webhooks/vonage/status"
OUR, LENA = "+4915123456700", "+4915123456789"


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {**fake.app_settings(), "VONAGE_TIMEOUT": 2}


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", sender_name="Acme Careers", time_zone="Europe/Berlin")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(org, OUR)
    job = f.job(org, team=[user], title="Backend Engineer")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile=LENA, email="lena@example.test"))
    f.credits(org, 10)
    db.session.commit()
    return {"org": org, "user": user, "lena": lena}


def write(
    world, body="Hi %FIRSTNAME%, are you free on Tuesday?", days=3, follow="Any news, %FIRSTNAME%?", **kw
):
    """A message sent now with its follow-up, committed: (message, follow-up)."""
    channel = kw.pop("channel", "sms")
    about = of_application(world["lena"])
    message = compose.compose(db.session, world["user"], about, channel, body, **kw)
    plan = follow_ups.Plan(days, follow, kw.get("subject"))
    follow_up = follow_ups.schedule(db.session, world["user"], about, message, plan, now=kw.get("now"))
    db.session.commit()
    if message.status == "queued":
        dispatch.deliver(message.id)
    return message, follow_up


def fresh(message_id: int) -> Message:
    db.session.expire_all()
    message = db.session.get(Message, message_id)
    assert message is not None
    return message


def balance(world) -> int:
    db.session.expire_all()
    account = credits.account_for(db.session, world["org"])
    assert credits.ledger_sum(db.session, account.id) == account.balance
    return account.balance


def posts_for(fake, message_id: int) -> int:
    return sum(1 for r in fake.requests if r.body and r.body.get("client_ref") == str(message_id))


def reply(client, channel: str = "sms", text: str = "Yes, Tuesday works") -> None:
    assert post(client, INBOUND, inbound(OUR, LENA, text, channel=channel)).status_code == 200


# --- Stored and paid ---------------------------------------------------------------------------------------


def test_the_follow_up_is_scheduled_n_days_after_its_message_and_paid_for(world) -> None:
    message, follow_up = write(world, days=3)
    assert (follow_up.status, follow_up.channel, follow_up.body) == ("scheduled", "sms", "Any news, Lena?")
    assert follow_up.conversation_id == message.conversation_id and follow_up.follow_up_of_id == message.id
    assert abs(follow_up.send_at - (message.created_at + timedelta(days=3))) < timedelta(seconds=5)
    assert balance(world) == 8  # both paid for now


def test_a_follow_up_of_a_scheduled_message_counts_from_its_time(world) -> None:
    send_at = utcnow() + timedelta(hours=5)
    message, follow_up = write(world, days=2, send_at=send_at)
    assert message.status == "scheduled" and follow_up.send_at == send_at + timedelta(days=2)


def test_the_follow_up_of_a_scheduled_message_whose_text_is_edited_follows_the_new_text(world) -> None:
    message, follow_up = write(world, days=2, send_at=utcnow() + timedelta(hours=5))
    edited = scheduled.reschedule(db.session, world["user"], message, body="Hi %FIRSTNAME%, free on Monday?")
    db.session.commit()
    assert edited.id != message.id
    # The message it follows is the one that will leave, not the one cancelled as edited.
    assert fresh(follow_up.id).follow_up_of_id == edited.id


@pytest.mark.parametrize("days", [0, 31, None])
def test_days_outside_1_to_30_are_refused_beside_the_days(world, days) -> None:
    with pytest.raises(SendRefused) as refused:
        write(world, days=days)
    assert refused.value.field == "follow_up_days" and "from 1 to 30" in refused.value.message
    db.session.rollback()
    assert balance(world) == 10


def test_its_text_goes_through_the_same_checks_and_a_refusal_names_its_field(world) -> None:
    with pytest.raises(SendRefused) as refused:
        write(world, follow="x" * 2000)  # longer than an SMS may be
    assert refused.value.field == "follow_up_body"
    db.session.rollback()
    f.open_whatsapp_window(world["lena"], hours=24)
    db.session.commit()
    with pytest.raises(SendRefused) as refused:
        write(world, channel="whatsapp")  # days later, outside the 24-hour window
    assert refused.value.field == "follow_up_body" and "follow up by SMS or email" in refused.value.message


def test_at_night_for_them_the_follow_up_moves_to_their_next_allowed_moment(app, world) -> None:
    app.config["QUIET_HOURS"] = True
    f.number(world["org"], "+15125550100")
    tex = f.application(
        f.job(world["org"], team=[world["user"]]),
        f.candidate(world["org"], "Tex", "Ritter", mobile="+15125550123"),
    )
    db.session.commit()
    austin = ZoneInfo("America/Chicago")
    # Saturday 10:00 in Austin, written with a reason (the organisation's window is Monday–Friday).
    saturday = datetime(2026, 12, 12, 10, 0, tzinfo=austin).astimezone(UTC)
    about = of_application(tex)
    message = compose.compose(
        db.session, world["user"], about, "sms", "Hi", now=saturday, override_reason="They asked for Saturday"
    )
    follow_up = follow_ups.schedule(
        db.session, world["user"], about, message, follow_ups.Plan(1, "Any news?"), now=saturday
    )
    db.session.commit()
    # Sunday 10:00 is closed for them (Texas: 12:00 on Sundays; the organisation: weekdays): Monday 09:00.
    assert follow_up.send_at == datetime(2026, 12, 14, 9, 0, tzinfo=austin)
    assert follow_up.hours_override is None  # the reason was for the message, not for the follow-up


# --- Stopped by a reply, or by the application's close -----------------------------------------------------


def test_a_reply_cancels_it_and_gives_the_credits_back(world, client, fake) -> None:
    _, follow_up = write(world)
    assert balance(world) == 8
    reply(client)
    stopped = fresh(follow_up.id)
    assert (stopped.status, stopped.error_code, stopped.error_title) == (
        "cancelled",
        "replied",
        "They replied.",
    )
    assert balance(world) == 9
    note = db.session.scalar(
        sa.select(CreditTransaction.note).where(
            CreditTransaction.message_id == follow_up.id, CreditTransaction.kind == "refund"
        )
    )
    assert note == "Follow-up not needed: they replied"
    assert scheduled.send_due(follow_up.send_at + timedelta(minutes=1)).queued == []
    assert posts_for(fake, follow_up.id) == 0
    reply(client, text="And again")  # a second reply finds nothing left to cancel, refunds nothing twice
    assert balance(world) == 9


def test_a_reply_on_another_channel_of_the_conversation_cancels_it_too(world, client) -> None:
    f.open_whatsapp_window(world["lena"], hours=24)
    db.session.commit()
    about = of_application(world["lena"])
    on_whatsapp = compose.compose(db.session, world["user"], about, "whatsapp", "Hi on WhatsApp")
    db.session.commit()
    dispatch.deliver(on_whatsapp.id)
    _, follow_up = write(world)  # an SMS and its SMS follow-up
    reply(client, channel="whatsapp")
    assert fresh(follow_up.id).status == "cancelled"
    assert credits.refunded_ids(db.session, [follow_up.id]) == {follow_up.id}


def test_a_reply_in_another_conversation_of_theirs_does_not(world, client) -> None:
    # The same person's other application: its conversation writes from another number.
    f.number(world["org"], "+4915123456701")
    other = f.application(f.job(world["org"], team=[world["user"]]), world["lena"].candidate)
    db.session.commit()
    _, follow_up = write(world)
    elsewhere = compose.compose(
        db.session, world["user"], of_application(other), "sms", "About the other job"
    )
    db.session.commit()
    dispatch.deliver(elsewhere.id)
    assert elsewhere.from_addr != OUR
    assert post(client, INBOUND, inbound(elsewhere.from_addr, LENA, "Sure")).status_code == 200
    assert fresh(follow_up.id).status == "scheduled"


def test_our_own_messages_and_their_reports_do_not_cancel_it_and_it_leaves_once(world, client, fake) -> None:
    message, follow_up = write(world, days=2)
    more = compose.compose(db.session, world["user"], of_application(world["lena"]), "sms", "One more thing")
    db.session.commit()
    dispatch.deliver(more.id)
    for sent in (message, more):
        assert post(client, STATUS, status(fresh(sent.id).provider_id, "delivered")).status_code in (200, 204)
    assert fresh(follow_up.id).status == "scheduled"

    assert scheduled.send_due(follow_up.send_at - timedelta(seconds=1)).queued == []
    assert scheduled.send_due(follow_up.send_at).queued == [follow_up.id]
    scheduled.send_due(follow_up.send_at + timedelta(seconds=30))
    assert posts_for(fake, follow_up.id) == 1 and fresh(follow_up.id).status == "submitted"
    assert fake.requests[-1].body["text"] == "Any news, Lena?"
    reply(client)  # a reply after it left changes nothing of it
    assert fresh(follow_up.id).status == "submitted" and balance(world) == 7


def test_closing_the_application_cancels_it_other_stages_do_not(world, fake) -> None:
    _, follow_up = write(world)
    assert stages.move(db.session, world["lena"], "interview") == []
    db.session.commit()
    assert fresh(follow_up.id).status == "scheduled"
    assert stages.move(db.session, world["lena"], "rejected") == [follow_up.id]
    db.session.commit()
    stopped = fresh(follow_up.id)
    assert (stopped.status, stopped.error_code, stopped.error_title) == (
        "cancelled",
        "closed",
        "The application was closed.",
    )
    assert balance(world) == 9
    scheduled.send_due(follow_up.send_at)
    assert posts_for(fake, follow_up.id) == 0


def test_a_plain_scheduled_message_is_not_cancelled_by_a_reply(world, client) -> None:
    later = compose.compose(
        db.session,
        world["user"],
        of_application(world["lena"]),
        "sms",
        "Later",
        send_at=utcnow() + timedelta(hours=3),
    )
    db.session.commit()
    write(world)
    reply(client)
    assert fresh(later.id).status == "scheduled"


def test_a_cancelled_follow_up_can_no_longer_be_cancelled_or_edited(world, client) -> None:
    _, follow_up = write(world)
    reply(client)
    with pytest.raises(scheduled.TooLate, match="It was cancelled"):
        scheduled.cancel(db.session, world["user"], fresh(follow_up.id))


def test_a_follow_up_edited_is_still_one_and_a_reply_cancels_the_new_text(world, client) -> None:
    _, follow_up = write(world)
    edited = scheduled.reschedule(db.session, world["user"], follow_up, body="Still keen, %FIRSTNAME%?")
    db.session.commit()
    assert edited.id != follow_up.id and edited.follow_up_of_id == follow_up.follow_up_of_id
    reply(client)
    assert (fresh(edited.id).status, fresh(edited.id).error_code) == ("cancelled", follow_ups.REPLIED)
    assert balance(world) == 9


def test_their_message_assigned_to_the_conversation_by_an_administrator_cancels_it(world, client) -> None:
    from webapp.messaging import unmatched

    _, follow_up = write(world)
    # Lena writes from another phone: no conversation claims it until an administrator assigns it.
    assert (
        post(client, INBOUND, inbound(OUR, "+4915199999999", "It's Lena, from my work phone")).status_code
        == 200
    )
    waiting = db.session.scalar(sa.select(Message).where(Message.from_addr == "+4915199999999"))
    assert waiting.conversation_id is None and fresh(follow_up.id).status == "scheduled"
    admin = f.user(world["org"], codes=sorted(permissions.CODES), name="Ada Admin")
    db.session.commit()
    unmatched.assign(db.session, admin, waiting.id, of_application(world["lena"]))
    db.session.commit()
    assert (fresh(follow_up.id).status, fresh(follow_up.id).error_code) == ("cancelled", follow_ups.REPLIED)
    assert balance(world) == 9


# --- The message it follows moved, or cancelled, before it left -------------------------------------------


def test_a_new_time_for_the_message_moves_its_follow_up_by_as_much(world) -> None:
    send_at = utcnow() + timedelta(hours=5)
    message, follow_up = write(world, days=2, send_at=send_at)
    scheduled.reschedule(db.session, world["user"], message, send_at=send_at + timedelta(hours=3))
    db.session.commit()
    assert fresh(follow_up.id).send_at == send_at + timedelta(days=2, hours=3)
    # And earlier again: the same distance kept, whichever way it moves.
    scheduled.reschedule(db.session, world["user"], fresh(message.id), send_at=send_at + timedelta(hours=1))
    db.session.commit()
    assert fresh(follow_up.id).send_at == send_at + timedelta(days=2, hours=1)
    assert (fresh(follow_up.id).status, balance(world)) == ("scheduled", 8)  # the same price


def test_a_new_text_and_time_for_the_message_the_follow_up_follows_the_new_one_moved_as_much(world) -> None:
    send_at = utcnow() + timedelta(hours=5)
    message, follow_up = write(world, days=2, send_at=send_at)
    edited = scheduled.reschedule(
        db.session,
        world["user"],
        message,
        body="Hi %FIRSTNAME%, free on Monday?",
        send_at=send_at + timedelta(hours=2),
    )
    db.session.commit()
    moved = fresh(follow_up.id)
    assert (moved.follow_up_of_id, moved.send_at) == (edited.id, send_at + timedelta(days=2, hours=2))
    assert balance(world) == 8


def test_a_follow_up_moved_into_their_closed_hours_goes_at_their_next_allowed_moment(app, world) -> None:
    app.config["QUIET_HOURS"] = True
    f.number(world["org"], "+15125550100")
    tex = f.application(
        f.job(world["org"], team=[world["user"]]),
        f.candidate(world["org"], "Tex", "Ritter", mobile="+15125550123"),
    )
    db.session.commit()
    austin = ZoneInfo("America/Chicago")
    now = datetime(2026, 12, 9, 10, 0, tzinfo=austin).astimezone(UTC)  # Wednesday
    about = of_application(tex)
    thursday = datetime(2026, 12, 10, 10, 0, tzinfo=austin).astimezone(UTC)
    message = compose.compose(db.session, world["user"], about, "sms", "Hi", send_at=thursday, now=now)
    follow_up = follow_ups.schedule(
        db.session, world["user"], about, message, follow_ups.Plan(1, "Any news?"), now=now
    )
    db.session.commit()
    assert follow_up.send_at == datetime(2026, 12, 11, 10, 0, tzinfo=austin)  # Friday 10:00
    # The message a day later (Friday): its follow-up would be Saturday 10:00, outside the organisation's
    # Monday–Friday; it goes at their next allowed moment, Monday 09:00 (Texas law), as when scheduled.
    friday = datetime(2026, 12, 11, 10, 0, tzinfo=austin).astimezone(UTC)
    scheduled.reschedule(db.session, world["user"], message, send_at=friday, now=now)
    db.session.commit()
    assert fresh(follow_up.id).send_at == datetime(2026, 12, 14, 9, 0, tzinfo=austin)


def test_a_follow_up_cancelled_by_their_reply_keeps_its_time_when_the_message_moves(world, client) -> None:
    send_at = utcnow() + timedelta(hours=5)
    message, follow_up = write(world, days=2, send_at=send_at)
    reply(client)
    scheduled.reschedule(db.session, world["user"], fresh(message.id), send_at=send_at + timedelta(hours=3))
    db.session.commit()
    stopped = fresh(follow_up.id)
    assert (stopped.status, stopped.error_code) == ("cancelled", follow_ups.REPLIED)
    assert stopped.send_at == send_at + timedelta(days=2)


def test_cancelling_the_message_before_it_leaves_cancels_and_refunds_its_follow_up(world, fake) -> None:
    send_at = utcnow() + timedelta(hours=5)
    message, follow_up = write(world, days=2, send_at=send_at)
    assert balance(world) == 8
    scheduled.cancel(db.session, world["user"], message)
    db.session.commit()
    stopped = fresh(follow_up.id)
    assert (stopped.status, stopped.error_code) == ("cancelled", follow_ups.UNSENT)
    assert balance(world) == 10  # both given back
    note = db.session.scalar(
        sa.select(CreditTransaction.note).where(
            CreditTransaction.message_id == follow_up.id, CreditTransaction.kind == "refund"
        )
    )
    assert note == "Follow-up not needed: the message it follows was cancelled"
    assert scheduled.send_due(stopped.send_at + timedelta(minutes=1)) == scheduled.Handed()
    assert fake.requests == []


def test_a_message_held_when_it_was_due_takes_its_follow_up_with_it(world, fake) -> None:
    from webapp.messaging import optouts

    send_at = utcnow() + timedelta(hours=5)
    message, follow_up = write(world, days=2, send_at=send_at)
    assert balance(world) == 8
    optouts.opt_out(db.session, world["org"].id, LENA, message)  # before it left
    db.session.commit()
    handed = scheduled.send_due(send_at + timedelta(minutes=1), hand_over=False)
    assert handed.held == [message.id] and handed.queued == []
    stopped = fresh(follow_up.id)
    assert (stopped.status, stopped.error_code) == ("cancelled", follow_ups.HELD)
    assert balance(world) == 10  # both given back
    later = scheduled.send_due(stopped.send_at + timedelta(minutes=1), hand_over=False)
    assert later == scheduled.Handed() and fake.requests == []
