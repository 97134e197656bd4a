"""Send later (issue 20 §1): a message stored for its time, paid for when it is scheduled, edited or
cancelled until it leaves, and sent by the scheduler at its time through the fake Vonage — once, however
often the scheduler runs — or held with the reason when the channel checks refuse it at leaving.

The clock is injected: the scheduler is given the moment of its pass (`now`), nobody sleeps. The races
with real concurrent sessions are in tests/test_scheduled_races.py (PostgreSQL).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.fake_vonage import FakeVonage
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.messaging import compose, dispatch, optouts, scheduled
from webapp.messaging.checks import SendRefused
from webapp.messaging.subjects import of_application
from webapp.models import Conversation, CreditTransaction, Message, utcnow
from webapp.scheduling import clock


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {**fake.app_settings(), "VONAGE_TIMEOUT": 2}


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", sender_name="Acme Careers", time_zone="Europe/Berlin")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    colleague = f.user(org, codes=[permissions.RECRUITMENT_SMS], name="Sam Park")
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user, colleague], title="Backend Engineer")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
    f.credits(org, 10)
    db.session.commit()
    return {"org": org, "user": user, "colleague": colleague, "lena": lena}


AT = timedelta(hours=2)  # how far ahead the messages here are scheduled


def schedule(world, body: str = "Hi %FIRSTNAME%", channel: str = "sms", **kw) -> Message:
    send_at = kw.pop("send_at", None) or utcnow() + AT
    message = compose.compose(
        db.session,
        kw.pop("user", world["user"]),
        of_application(world["lena"]),
        channel,
        body,
        send_at=send_at,
        **kw,
    )
    db.session.commit()
    return message


def fresh(message_id: int) -> Message:
    db.session.expire_all()
    message = db.session.get(Message, message_id)
    assert message is not None
    return message


def posts_for(fake: FakeVonage, message_id: int) -> int:
    return sum(1 for r in fake.requests if r.body and r.body.get("client_ref") == str(message_id))


def balance(world) -> int:
    """The balance, after checking that it equals its ledger."""
    db.session.expire_all()
    account = credits.account_for(db.session, world["org"])
    assert credits.ledger_sum(db.session, account.id) == account.balance
    return account.balance


def run_scheduler(now) -> scheduled.Handed:
    done = scheduled.send_due(now)
    db.session.expire_all()
    return done


# --- Scheduling, and the conversation's list ---------------------------------------------------------


def test_scheduling_debits_at_once_and_the_message_joins_the_list_only_when_it_leaves(world, fake) -> None:
    before = schedule(world, "An earlier message", send_at=utcnow() + timedelta(minutes=5))
    run_scheduler(before.send_at)
    assert posts_for(fake, before.id) == 1
    message = schedule(world, "Hi %FIRSTNAME%, are you free on Tuesday?")
    assert (message.status, message.body, message.credits) == (
        "scheduled",
        "Hi Lena, are you free on Tuesday?",
        1,
    )
    assert balance(world) == 8  # both paid for when they were scheduled
    conversation = db.session.get(Conversation, message.conversation_id)
    # Nothing was said to Lena yet: the list still shows the message that left.
    assert conversation.last_preview == "An earlier message"
    left_at = conversation.last_message_at

    due = message.send_at + timedelta(seconds=1)
    assert str(run_scheduler(due)) == "1 scheduled message(s) handed to the dispatcher, 0 held and refunded"
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.last_preview == "Hi Lena, are you free on Tuesday?"
    assert conversation.last_message_at == due > left_at
    assert conversation.last_message_id == message.id


def test_a_message_written_while_one_waited_stays_the_latest_until_the_scheduled_one_leaves(
    world, fake
) -> None:
    message = schedule(world, "Scheduled first")
    now_sent = compose.compose(db.session, world["user"], of_application(world["lena"]), "sms", "Sent now")
    db.session.commit()
    dispatch.deliver(now_sent.id)
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.last_preview == "Sent now"

    run_scheduler(message.send_at)
    conversation = db.session.get(Conversation, message.conversation_id)
    # It left last, so it is the latest; the highest id stays the marker that reads count up to.
    assert conversation.last_preview == "Scheduled first"
    assert conversation.last_message_id == now_sent.id > message.id


@pytest.mark.parametrize(
    ("when", "words"),
    [(timedelta(minutes=-1), "That time has passed"), (timedelta(days=400), "at most a year ahead")],
)
def test_a_time_in_the_past_or_too_far_ahead_is_refused_and_nothing_is_paid(world, when, words) -> None:
    with pytest.raises(SendRefused) as refused:
        schedule(world, send_at=utcnow() + when)
    assert words in refused.value.message and refused.value.field == "send_at"
    db.session.rollback()
    assert balance(world) == 10
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


# --- The scheduler: at its time, once ----------------------------------------------------------------


def test_the_scheduler_sends_it_at_its_time_with_exactly_one_post(world, fake) -> None:
    message = schedule(world)
    assert str(run_scheduler(message.send_at - timedelta(seconds=1))) == ""
    assert fresh(message.id).status == "scheduled" and posts_for(fake, message.id) == 0

    handed = run_scheduler(message.send_at)
    assert handed.queued == [message.id]
    sent = fresh(message.id)
    assert sent.status == "submitted" and sent.provider_id and posts_for(fake, message.id) == 1
    assert fake.requests[-1].body["text"] == "Hi Lena"

    # Every later pass, and the dispatch sweep, leave it alone.
    for later in (1, 60, 3600):
        run_scheduler(message.send_at + timedelta(seconds=later))
        dispatch.recover(now=message.send_at + timedelta(seconds=later))
    assert posts_for(fake, message.id) == 1
    assert balance(world) == 9


def test_the_clock_runs_the_scheduler_as_a_task(world, fake) -> None:
    message = schedule(world)
    runs = {run.task: run for run in clock.run_due(now=message.send_at + timedelta(seconds=5))}
    assert runs["scheduled-send"].ran
    assert runs["scheduled-send"].outcome.startswith("1 scheduled message(s) handed to the dispatcher")
    assert posts_for(fake, message.id) == 1


def test_a_scheduler_killed_after_handing_over_loses_nothing_and_sends_nothing_twice(
    world, fake, app
) -> None:
    message = schedule(world)
    waiting = schedule(world, "Later still", send_at=message.send_at + timedelta(days=1))
    # The run commits `queued`, then dies before the dispatcher is told.
    scheduled.send_due(message.send_at, hand_over=False)
    assert fresh(message.id).status == "queued" and posts_for(fake, message.id) == 0
    # The restarted scheduler finds nothing left to do; the dispatch sweep hands the queued one over once
    # it waited SEND_REQUEUE_AFTER_SECONDS from its time (not from when it was written, days earlier).
    run_scheduler(message.send_at + timedelta(seconds=15))
    assert posts_for(fake, message.id) == 0
    early = dispatch.recover(now=message.send_at + timedelta(seconds=30))
    assert message.id not in early.requeued
    late = dispatch.recover(
        now=message.send_at + timedelta(seconds=app.config["SEND_REQUEUE_AFTER_SECONDS"] + 1)
    )
    assert late.requeued == [message.id]
    assert posts_for(fake, message.id) == 1
    dispatch.recover(now=message.send_at + timedelta(hours=1))
    run_scheduler(message.send_at + timedelta(hours=1))
    assert posts_for(fake, message.id) == 1
    # The sweep never takes a message that is still waiting for its time.
    assert fresh(waiting.id).status == "scheduled" and posts_for(fake, waiting.id) == 0


def test_running_the_scheduler_twice_at_its_time_sends_once(world, fake) -> None:
    messages = [schedule(world, f"Message {i}") for i in range(3)]
    due = max(m.send_at for m in messages)
    first = run_scheduler(due)
    second = run_scheduler(due)
    assert sorted(first.queued) == [m.id for m in messages] and second.queued == []
    assert [posts_for(fake, m.id) for m in messages] == [1, 1, 1]


def test_a_large_backlog_leaves_in_batches(world, fake) -> None:
    messages = [schedule(world, f"Message {i}") for i in range(5)]
    handed = scheduled.send_due(max(m.send_at for m in messages), batch=2)
    assert sorted(handed.queued) == [m.id for m in messages]
    assert [posts_for(fake, m.id) for m in messages] == [1] * 5


# --- Cancel and edit ---------------------------------------------------------------------------------


def test_cancel_gives_the_credits_back_and_it_never_leaves(world, fake) -> None:
    message = schedule(world)
    assert balance(world) == 9
    scheduled.cancel(db.session, world["colleague"], message)  # the company's message: a colleague may
    db.session.commit()
    assert balance(world) == 10
    cancelled = fresh(message.id)
    assert (cancelled.status, cancelled.error_title) == ("cancelled", "Cancelled by Sam Park")
    note = db.session.scalar(
        sa.select(CreditTransaction.note).where(
            CreditTransaction.message_id == message.id, CreditTransaction.kind == "refund"
        )
    )
    assert note == "Scheduled message cancelled"
    run_scheduler(message.send_at + timedelta(seconds=1))
    assert posts_for(fake, message.id) == 0
    with pytest.raises(scheduled.TooLate, match="It was cancelled"):
        scheduled.cancel(db.session, world["user"], cancelled)
    assert balance(world) == 10


def test_too_late_to_cancel_or_edit_once_it_left(world, fake) -> None:
    message = schedule(world)
    run_scheduler(message.send_at)
    left = fresh(message.id)
    with pytest.raises(scheduled.TooLate, match="It has already left"):
        scheduled.cancel(db.session, world["user"], left)
    with pytest.raises(scheduled.TooLate, match="It has already left"):
        scheduled.reschedule(db.session, world["user"], left, body="Changed my mind")
    db.session.rollback()
    assert balance(world) == 9 and posts_for(fake, message.id) == 1


def test_someone_outside_the_team_may_not_cancel(world) -> None:
    message = schedule(world)
    outsider = f.user(world["org"], codes=[permissions.RECRUITMENT_SMS], name="Not on the team")
    db.session.commit()
    with pytest.raises(SendRefused, match="Only the hiring team of this job"):
        scheduled.cancel(db.session, outsider, message)
    db.session.rollback()
    assert fresh(message.id).status == "scheduled"
    assert scheduled.find(db.session, world["user"], message.id) is not None
    other_org_user = f.user(f.messaging_org("Globex"), codes=[permissions.RECRUITMENT_SMS])
    assert scheduled.find(db.session, other_org_user, message.id) is None


def test_a_new_time_moves_the_same_message(world, fake) -> None:
    message = schedule(world)
    first = message.send_at
    later = first + timedelta(hours=3)
    moved = scheduled.reschedule(db.session, world["user"], message, send_at=later)
    db.session.commit()
    assert moved.id == message.id and fresh(message.id).send_at == later
    run_scheduler(first + timedelta(hours=1))
    assert posts_for(fake, message.id) == 0
    run_scheduler(later)
    assert posts_for(fake, message.id) == 1
    assert balance(world) == 9


def test_a_new_text_is_priced_anew_the_difference_debited_or_refunded(world, fake) -> None:
    message = schedule(world, "Short")
    assert balance(world) == 9
    long_text = "Longer than one segment. " * 10  # 250 GSM-7 characters: 2 segments
    edited = scheduled.reschedule(db.session, world["user"], message, body=long_text)
    db.session.commit()
    assert edited.id != message.id and (edited.status, edited.credits) == ("scheduled", 2)
    assert edited.send_at == message.send_at and edited.body == long_text
    assert balance(world) == 8  # one more credit
    old = fresh(message.id)
    assert (old.status, old.error_code) == ("cancelled", scheduled.EDITED)
    with pytest.raises(scheduled.TooLate, match="It was edited meanwhile"):
        scheduled.cancel(db.session, world["user"], old)

    cheaper = scheduled.reschedule(db.session, world["colleague"], edited, body="Short again, %FIRSTNAME%")
    db.session.commit()
    assert (cheaper.credits, cheaper.body, cheaper.author_id) == (
        1,
        "Short again, Lena",
        world["colleague"].id,
    )
    assert balance(world) == 9  # the credit given back

    run_scheduler(message.send_at)
    assert [posts_for(fake, m.id) for m in (message, edited, cheaper)] == [0, 0, 1]


def test_a_bulk_sends_line_follows_the_edited_text(world) -> None:
    from webapp.messaging import batch_rows
    from webapp.models import Batch, BatchRecipient

    message = schedule(world, "Short")
    batch = Batch(
        organization_id=world["org"].id,
        author_id=world["user"].id,
        kind="application",
        channel="sms",
        body="Short",
    )
    db.session.add(batch)
    db.session.flush()
    row = BatchRecipient(
        batch_id=batch.id, subject_id=world["lena"].id, outcome="scheduled", message_id=message.id
    )
    db.session.add(row)
    db.session.commit()
    edited = scheduled.reschedule(db.session, world["user"], message, body="Short, edited")
    db.session.commit()
    db.session.expire_all()
    row = db.session.get(BatchRecipient, row.id)
    assert row.message_id == edited.id
    # So that the provider's verdict on the message that leaves reaches the bulk send's line.
    batch_rows.follow(fresh(edited.id), failed=True)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(BatchRecipient, row.id).outcome == "failed"


def test_an_edit_the_balance_cannot_cover_is_refused_and_changes_nothing(world) -> None:
    message = schedule(world, "Short")
    spend = compose.compose(db.session, world["user"], of_application(world["lena"]), "sms", "x" * 1300)
    db.session.commit()
    assert spend.credits == 9 and balance(world) == 0
    with pytest.raises(SendRefused) as refused:
        scheduled.reschedule(db.session, world["user"], message, body="y" * 400)  # 3 segments: 2 more
    assert refused.value.message.startswith(
        "The new text costs 3 credits, 2 more than this message, and your organisation has 0 left."
    )
    db.session.rollback()
    unchanged = fresh(message.id)
    assert (unchanged.status, unchanged.body, unchanged.credits) == ("scheduled", "Short", 1)
    assert balance(world) == 0


# --- Checked again at leaving --------------------------------------------------------------------------


def held(world, fake, message: Message) -> Message:
    handed = run_scheduler(message.send_at)
    assert handed.held == [message.id] and handed.queued == []
    assert posts_for(fake, message.id) == 0
    found = fresh(message.id)
    assert found.status == "held"
    assert credits.refunded_ids(db.session, [message.id]) == {message.id}
    return found


def test_held_when_the_number_opted_out_since(world, fake) -> None:
    message = schedule(world)
    optouts.opt_out(db.session, world["org"].id, "+4915123456789", message)
    db.session.commit()
    found = held(world, fake, message)
    assert found.error_title.endswith(" opted out of texts before it left.")
    assert balance(world) == 10


def test_held_when_the_author_lost_the_right(world, fake) -> None:
    message = schedule(world)
    world["user"].roles = []
    db.session.commit()
    found = held(world, fake, message)
    assert found.error_title == "Riley Chen no longer has the permission “Recruitment – SMS”."


def test_held_when_the_organisation_switched_the_channel_off(world, fake) -> None:
    message = schedule(world)
    world["org"].sms_enabled = False
    db.session.commit()
    assert held(world, fake, message).error_title == "SMS was switched off for your organisation."


def test_a_deactivated_author_does_not_stop_it(world, fake) -> None:
    message = schedule(world)
    world["user"].active = False
    world["user"].roles = []  # what leaving the company does to the rights does not matter either
    db.session.commit()
    run_scheduler(message.send_at)
    assert fresh(message.id).status == "submitted" and posts_for(fake, message.id) == 1


def test_whatsapp_free_text_is_held_when_the_window_closed_since_a_template_still_goes(world, fake) -> None:
    f.open_whatsapp_window(world["lena"], hours=24)
    template = f.whatsapp_template(world["org"], approved=True)
    db.session.commit()
    free = schedule(world, "Free text", channel="whatsapp")
    templated = schedule(world, "", channel="whatsapp", whatsapp_template_id=template.id)
    conversation = db.session.get(Conversation, free.conversation_id)
    conversation.whatsapp_window_ends_at = free.send_at - timedelta(minutes=1)  # as if it had closed early
    db.session.commit()

    handed = run_scheduler(templated.send_at)
    assert handed.held == [free.id] and handed.queued == [templated.id]
    assert "WhatsApp 24-hour window had closed" in fresh(free.id).error_title
    assert posts_for(fake, free.id) == 0 and posts_for(fake, templated.id) == 1


def test_whatsapp_free_text_cannot_be_scheduled_past_the_window(world) -> None:
    f.open_whatsapp_window(world["lena"], hours=1)
    db.session.commit()
    with pytest.raises(SendRefused) as refused:
        schedule(world, "Free text", channel="whatsapp")  # two hours ahead
    assert refused.value.message.startswith("The WhatsApp window closes ")
    assert refused.value.field == "send_at"


# --- The thread -----------------------------------------------------------------------------------------


def test_the_thread_shows_when_it_is_scheduled_for_in_the_organisations_zone(world, client, auth) -> None:
    from datetime import UTC, datetime

    send_at = datetime(utcnow().year + 1, 1, 6, 8, 0, tzinfo=UTC)  # 09:00 in Berlin (CET)
    message = schedule(world, "See you soon", send_at=send_at)
    auth.login(world["user"].email)
    page = client.get(f"/applications/{world['lena'].id}?tab=sms").get_data(as_text=True)
    assert f"Scheduled for {send_at:%a} 06 Jan 09:00" in page
    assert f'id="message-{message.id}"' in page

    scheduled.cancel(db.session, world["user"], message)
    db.session.commit()
    page = client.get(f"/applications/{world['lena'].id}?tab=sms").get_data(as_text=True)
    assert "Scheduled for" not in page and "Cancelled" in page


def test_the_thread_says_why_a_message_was_held(world, fake, client, auth) -> None:
    message = schedule(world)
    world["org"].sms_enabled = False
    db.session.commit()
    run_scheduler(message.send_at)
    world["org"].sms_enabled = True
    db.session.commit()
    auth.login(world["user"].email)
    page = client.get(f"/applications/{world['lena'].id}?tab=sms").get_data(as_text=True)
    held_note = "held when it was due to leave. SMS was switched off for your organisation. The credits were"
    assert f"Not sent: {held_note} given back." in page


# --- Prospects and email ---------------------------------------------------------------------------------


def test_a_prospect_removed_from_the_community_is_not_written_to_an_email_still_leaves(app, fake) -> None:
    from webapp.messaging.subjects import of_membership

    org = f.messaging_org("Acme", has_crm=True)
    sourcer = f.user(org, codes=[permissions.SOURCING_MESSAGING], name="Sam Sourcer")
    f.number(org, "+4915123456700")
    nordic = f.community(org, "Nordic engineers", team=[sourcer])
    grace = f.prospect(org, "Grace", "Hopper", mobile="+4915123456789", email="grace@example.test")
    membership = f.membership(nordic, grace)
    f.credits(org, 5)
    db.session.commit()
    about = of_membership(membership)
    send_at = utcnow() + AT
    text = compose.compose(db.session, sourcer, about, "sms", "Hi Grace", send_at=send_at)
    email = compose.compose(db.session, sourcer, about, "email", "Hello", subject="News", send_at=send_at)
    db.session.commit()
    membership.removed_at = utcnow()
    db.session.commit()

    handed = run_scheduler(send_at)
    assert sorted(handed.held) == sorted([text.id, email.id]) and handed.queued == []
    assert fresh(text.id).error_title == "Grace Hopper was removed from Nordic engineers."

    membership.removed_at = None
    db.session.commit()
    again = compose.compose(
        db.session, sourcer, about, "email", "Hello", subject="News", send_at=send_at + AT
    )
    db.session.commit()
    assert run_scheduler(send_at + AT).queued == [again.id]


def test_a_new_text_for_a_message_whose_time_just_came_leaves_at_the_next_pass(world, fake) -> None:
    message = schedule(world, "Old text")
    just_after = message.send_at + timedelta(seconds=2)  # due, and the scheduler has not passed yet
    edited = scheduled.reschedule(db.session, world["user"], message, body="New text", now=just_after)
    db.session.commit()
    assert edited.send_at == just_after + timedelta(seconds=1)
    run_scheduler(just_after + timedelta(seconds=15))
    assert (posts_for(fake, message.id), posts_for(fake, edited.id)) == (0, 1)
    assert fake.requests[-1].body["text"] == "New text"


def test_too_late_says_why_it_was_held(world, fake) -> None:
    message = schedule(world)
    world["org"].sms_enabled = False
    db.session.commit()
    run_scheduler(message.send_at)
    with pytest.raises(scheduled.TooLate) as late:
        scheduled.cancel(db.session, world["user"], fresh(message.id))
    assert (
        str(late.value) == "It was held when it was due to leave: SMS was switched off for your organisation."
    )
