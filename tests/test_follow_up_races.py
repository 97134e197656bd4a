"""A reply against the scheduler, on PostgreSQL (issue 20 §3): the person writes back at the moment
their follow-up is due. Each in a thread of its own (its own session and connection), released together;
the follow-up either leaves (one POST to the fake Vonage, paid) or is cancelled by the reply (no POST,
refunded), never both, and neither side deadlocks — also when the scheduler hands over another message
of the same conversation in the same pass (it then writes the conversation's row, which the reply
locks too).

The message a follow-up follows, still scheduled, given a new time or cancelled at the moment the
person replies: the follow-up is cancelled once and refunded once, whoever wins; a move that comes
after the reply leaves the cancelled follow-up's time as it was, and a cancel of the message that comes
first leaves the reply nothing to cancel."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.test_scheduled_races import (
    ROUNDS,
    balance,
    first_holds_second_waits,
    posts_for,
    schedule,
    scheduler_at,
    together,
)
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import bulk, compose, dispatch, follow_ups, inbound, scheduled, status
from webapp.messaging.subjects import of_application
from webapp.models import BatchRecipient, CreditTransaction, Message, User, utcnow
from webapp.providers.base import InboundMessage

OUR, LENA, ANN = "+4915123456700", "+4915123456789", "+4915123456788"


@pytest.fixture
def backend() -> str:
    return "postgresql"  # SQLite lets one writer at a time: the race only exists on a real server


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {
        **fake.app_settings(),
        "VONAGE_TIMEOUT": 5,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 8, "max_overflow": 4, "pool_timeout": 20},
    }


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(org, OUR)
    job = f.job(org, team=[user])
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile=LENA))
    f.credits(org, 500)
    db.session.commit()
    return {"org": org, "user_id": user.id, "lena": lena}


def with_follow_up(world) -> tuple[int, int]:
    """A message sent an hour ago, its follow-up due now and a plain scheduled message due with it:
    (follow-up id, plain id); the follow-up's time is the moment of the race."""
    user = db.session.get(User, world["user_id"])
    about = of_application(world["lena"])
    message = compose.compose(db.session, user, about, "sms", "Hi %FIRSTNAME%")
    follow_up = follow_ups.schedule(db.session, user, about, message, follow_ups.Plan(1, "Any news?"))
    plain = compose.compose(db.session, user, about, "sms", "Also", send_at=follow_up.send_at)
    db.session.commit()
    dispatch.deliver(message.id)
    return follow_up.id, plain.id


def a_reply(round_: int) -> Callable[[], object]:
    """The person's reply through the inbound path; in earlier rounds a little later (the scheduler in
    later ones), so that both orders of the race are played (which wins is still the database's doing)."""

    def run() -> object:
        time.sleep(0.004 * (ROUNDS - 1 - round_))
        return receive()

    return run


def receive(sender: str = LENA) -> int:
    received = inbound.receive(
        db.session,
        InboundMessage(str(uuid.uuid4()), "sms", sender, OUR, "Yes, I'm interested", utcnow()),
    )
    db.session.commit()
    return received.message.id


def test_a_reply_against_the_scheduler_the_follow_up_leaves_once_or_is_cancelled(app, world, fake) -> None:
    outcomes = []
    paid = 0
    for round_ in range(ROUNDS):
        follow_up_id, plain_id = with_follow_up(world)
        paid += 3  # the message, its follow-up, the plain one
        due = db.session.get(Message, follow_up_id).send_at
        handed, replied = together(app, scheduler_at(due, round_), a_reply(round_))
        assert not isinstance(handed, Exception), handed  # no deadlock, no error on either side
        assert not isinstance(replied, Exception), replied
        db.session.expire_all()
        follow_up = db.session.get(Message, follow_up_id)
        assert plain_id in handed.queued and posts_for(fake, plain_id) == 1  # a plain message leaves anyway
        if follow_up.status == "cancelled":
            assert follow_up.error_code == follow_ups.REPLIED and follow_up_id not in handed.queued
            assert posts_for(fake, follow_up_id) == 0
            paid -= 1
            outcomes.append("cancelled")
        else:
            assert follow_up.status == "submitted" and handed.queued.count(follow_up_id) == 1
            assert posts_for(fake, follow_up_id) == 1
            outcomes.append("left")
        # The next pass sends nothing more.
        scheduled.send_due(due + timedelta(seconds=15))
        assert posts_for(fake, follow_up_id) == (1 if outcomes[-1] == "left" else 0)
    assert balance(world) == 500 - paid
    print("a reply against the scheduler:", outcomes)


def test_step_by_step_a_reply_waits_for_the_scheduler_that_took_its_follow_up(app, world, fake) -> None:
    """The scheduler has taken the follow-up (FOR UPDATE), moved it to queued and written the
    conversation's row, uncommitted; the reply's cancel waits for it (seen in pg_stat_activity), then
    finds it gone and cancels nothing: the follow-up leaves once and stays paid."""
    follow_up_id, plain_id = with_follow_up(world)
    due = db.session.get(Message, follow_up_id).send_at
    taken, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def scheduler() -> None:
        with app.app_context():
            rows = db.session.scalars(scheduled.due_query(due, 10)).all()
            results["left"] = scheduled._leave(db.session, list(rows), due)
            db.session.flush()
            taken.set()
            release.wait(30)
            db.session.commit()
            db.session.remove()

    def reply() -> None:
        with app.app_context():
            results["pid"] = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
            results["reply"] = receive()
            db.session.remove()

    leaver = threading.Thread(target=scheduler)
    leaver.start()
    assert taken.wait(30)
    replier = threading.Thread(target=reply)
    replier.start()
    deadline, waiting = time.monotonic() + 20, False
    while time.monotonic() < deadline and not waiting:
        time.sleep(0.05)
        pid = results.get("pid")
        if pid is not None:
            waiting = (
                db.session.scalar(
                    sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                == "Lock"
            )
        db.session.rollback()
    release.set()
    leaver.join(30)
    replier.join(30)
    assert waiting, "the reply's cancel never waited for the scheduler's lock"
    assert sorted(results["left"][0]) == sorted([follow_up_id, plain_id]) and "reply" in results
    db.session.expire_all()
    assert db.session.get(Message, follow_up_id).status == "queued"
    for message_id in (follow_up_id, plain_id):
        dispatch.deliver(message_id)
    assert posts_for(fake, follow_up_id) == 1
    assert balance(world) == 500 - 3


# --- The message it follows, moved or cancelled, against a reply -------------------------------------------


def followed_later(world, application=None) -> tuple[int, int]:
    """A message scheduled for an hour from now and its follow-up a day after it: (message, follow-up);
    to Lena unless another `application` is given."""
    user = db.session.get(User, world["user_id"])
    about = of_application(application or world["lena"])
    message = compose.compose(db.session, user, about, "sms", "Hi", send_at=utcnow() + timedelta(hours=1))
    follow_up = follow_ups.schedule(db.session, user, about, message, follow_ups.Plan(1, "Any news?"))
    db.session.commit()
    return message.id, follow_up.id


def move_by(world, message_id: int, by: timedelta) -> Callable[[], object]:
    def run() -> object:
        user = db.session.get(User, world["user_id"])
        message = db.session.get(Message, message_id)
        assert message is not None and message.send_at is not None
        scheduled.reschedule(db.session, user, message, send_at=message.send_at + by)
        db.session.commit()
        return message_id

    return run


def cancel(world, message_id: int) -> Callable[[], object]:
    def run() -> object:
        user = db.session.get(User, world["user_id"])
        scheduled.cancel(db.session, user, db.session.get(Message, message_id))
        db.session.commit()
        return message_id

    return run


def reply_after(round_: int) -> Callable[[], object]:
    """The person's reply, later in later rounds: the other side does more before its first write, so
    without a head start it would always come second (which wins is still the database's doing)."""

    def run() -> object:
        time.sleep(0.01 * round_)
        return receive()

    return run


def refunds_of(message_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(CreditTransaction.id)).where(
            CreditTransaction.message_id == message_id, CreditTransaction.kind == "refund"
        )
    )


def test_the_message_moved_against_a_reply_the_follow_up_is_cancelled_once(app, world) -> None:
    outcomes = []
    for round_ in range(ROUNDS):
        message_id, follow_up_id = followed_later(world)
        was = db.session.get(Message, follow_up_id).send_at
        moved, replied = together(app, move_by(world, message_id, timedelta(hours=2)), reply_after(round_))
        assert not isinstance(moved, Exception), moved  # no deadlock, no error on either side
        assert not isinstance(replied, Exception), replied
        db.session.expire_all()
        follow_up = db.session.get(Message, follow_up_id)
        assert (follow_up.status, follow_up.error_code) == ("cancelled", follow_ups.REPLIED)
        assert refunds_of(follow_up_id) == 1
        # Moved first, then cancelled; or cancelled first, and then its time left as it was.
        assert follow_up.send_at in (was, was + timedelta(hours=2))
        outcomes.append("moved first" if follow_up.send_at != was else "replied first")
    assert balance(world) == 500 - ROUNDS  # each message paid, each follow-up given back
    print("the message moved against a reply:", outcomes)


def test_the_message_cancelled_against_a_reply_the_follow_up_is_refunded_once(app, world) -> None:
    outcomes = []
    for round_ in range(ROUNDS):
        message_id, follow_up_id = followed_later(world)
        cancelled, replied = together(app, cancel(world, message_id), reply_after(round_))
        assert not isinstance(cancelled, Exception), cancelled
        assert not isinstance(replied, Exception), replied
        db.session.expire_all()
        follow_up = db.session.get(Message, follow_up_id)
        assert follow_up.status == "cancelled"
        assert follow_up.error_code in (follow_ups.REPLIED, follow_ups.UNSENT)
        assert (refunds_of(message_id), refunds_of(follow_up_id)) == (1, 1)
        outcomes.append(follow_up.error_code)
    assert balance(world) == 500  # nothing left
    print("the message cancelled against a reply:", outcomes)


def cancel_uncommitted(world, message_id: int) -> Callable[[dict[str, object]], object]:
    def run(results: dict[str, object]) -> None:
        user = db.session.get(User, world["user_id"])
        scheduled.cancel(db.session, user, db.session.get(Message, message_id))

    return run


def receive_uncommitted(results: dict[str, object]) -> None:
    results["reply"] = inbound.receive(
        db.session,
        InboundMessage(str(uuid.uuid4()), "sms", LENA, OUR, "Yes, I'm interested", utcnow()),
    ).message.id


def test_step_by_step_a_move_waits_for_the_reply_and_leaves_the_cancelled_follow_up_alone(app, world) -> None:
    """The reply has cancelled the follow-up, uncommitted; moving the message it follows waits for it
    (seen in pg_stat_activity), then finds it cancelled: its time stays as it was, refunded once."""
    message_id, follow_up_id = followed_later(world)
    was = db.session.get(Message, follow_up_id).send_at
    waiting, _ = first_holds_second_waits(
        app, receive_uncommitted, lambda results: move_by(world, message_id, timedelta(hours=2))()
    )
    assert waiting, "the move never waited for the reply's cancel of the follow-up"
    db.session.expire_all()
    follow_up = db.session.get(Message, follow_up_id)
    assert (follow_up.status, follow_up.error_code, follow_up.send_at) == (
        "cancelled",
        follow_ups.REPLIED,
        was,
    )
    assert db.session.get(Message, message_id).status == "scheduled"
    assert refunds_of(follow_up_id) == 1 and balance(world) == 499


def test_step_by_step_a_reply_waits_for_the_cancel_of_the_message_and_finds_nothing_left(app, world) -> None:
    """The message is cancelled and its follow-up with it, uncommitted; the reply's cancel waits for it,
    then finds the follow-up gone: cancelled as unsent, refunded once."""
    message_id, follow_up_id = followed_later(world)
    waiting, results = first_holds_second_waits(
        app, cancel_uncommitted(world, message_id), lambda results: results.update(reply=receive())
    )
    assert waiting, "the reply never waited for the cancel of the message it follows"
    assert "reply" in results
    db.session.expire_all()
    follow_up = db.session.get(Message, follow_up_id)
    assert (follow_up.status, follow_up.error_code) == ("cancelled", follow_ups.UNSENT)
    assert (refunds_of(message_id), refunds_of(follow_up_id)) == (1, 1) and balance(world) == 500


def test_another_message_cancelled_against_a_reply_neither_waits_for_the_other_forever(app, world) -> None:
    """A plain scheduled message cancelled while a reply cancels the follow-up of another message of the
    conversation: both give credits back and both mark the conversation. The cancel takes the
    conversation's row before the credits, as the reply does, so the two never deadlock."""
    for round_ in range(ROUNDS):
        _, follow_up_id = followed_later(world)
        plain_id, _ = schedule(world, "Plain")
        cancelled, replied = together(app, cancel(world, plain_id), reply_after(round_))
        assert not isinstance(cancelled, Exception), cancelled
        assert not isinstance(replied, Exception), replied
        assert (refunds_of(plain_id), refunds_of(follow_up_id)) == (1, 1)
    assert balance(world) == 500 - ROUNDS  # each followed message paid, its follow-up and the plain one not


def edit_follow_up(world, follow_up_id: int) -> Callable[[dict[str, object]], object]:
    def run(results: dict[str, object]) -> None:
        user = db.session.get(User, world["user_id"])
        follow_up = db.session.get(Message, follow_up_id)
        results["edited"] = scheduled.reschedule(db.session, user, follow_up, body="Still keen?").id

    return run


def move_uncommitted(world, message_id: int, by: timedelta) -> Callable[[dict[str, object]], object]:
    def run(results: dict[str, object]) -> None:
        user = db.session.get(User, world["user_id"])
        message = db.session.get(Message, message_id)
        scheduled.reschedule(db.session, user, message, send_at=message.send_at + by)

    return run


@pytest.mark.parametrize("first", ["move", "edit"])
def test_step_by_step_the_message_moved_while_its_follow_up_is_rewritten_the_new_text_moves(
    app, world, first
) -> None:
    """The message moved by two hours and its follow-up's text edited, one held uncommitted while the
    other waits: whichever comes first, the follow-up that will leave (the new text) is two hours later
    too, follows the message, and is paid once."""
    message_id, follow_up_id = followed_later(world)
    was = db.session.get(Message, follow_up_id).send_at
    move, edit = move_uncommitted(world, message_id, timedelta(hours=2)), edit_follow_up(world, follow_up_id)
    waiting, results = first_holds_second_waits(app, *((move, edit) if first == "move" else (edit, move)))
    assert waiting, f"the second never waited for the {first}"
    db.session.expire_all()
    edited = db.session.get(Message, results["edited"])
    assert (edited.status, edited.body, edited.follow_up_of_id) == ("scheduled", "Still keen?", message_id)
    assert edited.send_at == was + timedelta(hours=2)
    assert db.session.get(Message, follow_up_id).status == "cancelled"
    assert balance(world) == 498  # the message and the follow-up's new text


# --- A message sent as the person replies, with a follow-up pending -----------------------------------------


def held_at_the_credits_while_a_reply_comes(
    app, writer: Callable[[], object], sender: str = LENA
) -> tuple[bool, dict[str, object]]:
    """`writer()` (then its commit) in a thread of its own, held right after its UPDATE of the credit
    account (a debit or a refund, seen on its own connection), uncommitted; the reply (from `sender`)
    then runs and is watched in pg_stat_activity until it waits for a lock; then the writer goes on and
    commits. Whether the reply waited, and what each side answered (an exception if it failed: a
    deadlock's loser)."""
    at_credits, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}
    holder: list[threading.Thread] = []

    def hold_at_credits(connection, _cursor, statement: str, *_args) -> None:
        if threading.current_thread() is holder[0] and statement.startswith("UPDATE credit_account"):
            at_credits.set()
            release.wait(30)

    def write() -> None:
        with app.app_context():
            try:
                results["writer"] = writer()
                db.session.commit()
            except Exception as exc:
                db.session.rollback()
                results["writer"] = exc
            finally:
                db.session.remove()

    def reply() -> None:
        with app.app_context():
            results["pid"] = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
            try:
                results["reply"] = receive(sender)
            except Exception as exc:
                db.session.rollback()
                results["reply"] = exc
            finally:
                db.session.remove()

    holder.append(threading.Thread(target=write))
    sa.event.listen(db.engine, "after_cursor_execute", hold_at_credits)
    try:
        holder[0].start()
        assert at_credits.wait(30), "the writer never touched the credits"
        replier = threading.Thread(target=reply)
        replier.start()
        deadline, waiting = time.monotonic() + 10, False
        while time.monotonic() < deadline and not waiting and replier.is_alive():
            time.sleep(0.05)
            pid = results.get("pid")
            if pid is not None:
                waiting = (
                    db.session.scalar(
                        sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                    )
                    == "Lock"
                )
            db.session.rollback()
        release.set()
        holder[0].join(30)
        replier.join(30)
    finally:
        release.set()
        sa.event.remove(db.engine, "after_cursor_execute", hold_at_credits)
    return waiting, results


def send_now(world) -> Callable[[], object]:
    """The recruiter's Send (compose, as the route runs it): the message's id."""

    def run() -> object:
        user = db.session.get(User, world["user_id"])
        return compose.compose(db.session, user, of_application(world["lena"]), "sms", "Are you free?").id

    return run


def test_step_by_step_a_send_and_a_reply_that_cancels_a_follow_up_neither_deadlocks(app, world) -> None:
    """The recruiter presses Send as the person's reply arrives, a follow-up pending in the conversation:
    the send has debited the credits and is held there; the reply cancels the follow-up and waits for a
    lock the send holds (the conversation's row, taken before the credits; without that it took the
    conversation's row and waited for the credits, while the send would then wait for the conversation:
    a deadlock, one side aborted). Both commit: the message is stored and paid, the follow-up refunded."""
    _, follow_up_id = followed_later(world)
    waiting, results = held_at_the_credits_while_a_reply_comes(app, send_now(world))
    assert waiting, "the reply never waited for the send"
    assert not isinstance(results["writer"], Exception), results["writer"]
    assert not isinstance(results["reply"], Exception), results["reply"]
    db.session.expire_all()
    sent = db.session.get(Message, results["writer"])
    assert sent.status == "queued" and sent.body == "Are you free?"
    follow_up = db.session.get(Message, follow_up_id)
    assert (follow_up.status, follow_up.error_code) == ("cancelled", follow_ups.REPLIED)
    assert refunds_of(follow_up_id) == 1
    assert balance(world) == 500 - 2  # the message it follows and the new one; the follow-up given back


def test_step_by_step_the_scheduler_holding_a_message_and_a_reply_that_cancels_a_follow_up(
    app, world
) -> None:
    """The scheduler holds a due message (SMS switched off since it was written) and gives its credits
    back, held there uncommitted, as the person's reply cancels a follow-up of the same conversation: the
    reply waits for the scheduler (which took the conversation's row before the credits, as the reply
    does); both commit, each message refunded once."""
    _, follow_up_id = followed_later(world)
    user = db.session.get(User, world["user_id"])
    due = utcnow() + timedelta(minutes=30)  # before the message the follow-up follows
    plain = compose.compose(db.session, user, of_application(world["lena"]), "sms", "Plain", send_at=due)
    world["org"].sms_enabled = False
    db.session.commit()
    plain_id, due = plain.id, plain.send_at
    waiting, results = held_at_the_credits_while_a_reply_comes(
        app, lambda: scheduled.send_due(due, hand_over=False)
    )
    assert waiting, "the reply never waited for the scheduler"
    assert not isinstance(results["writer"], Exception), results["writer"]
    assert not isinstance(results["reply"], Exception), results["reply"]
    assert results["writer"].held == [plain_id] and results["writer"].queued == []
    db.session.expire_all()
    assert db.session.get(Message, plain_id).status == "held"
    follow_up = db.session.get(Message, follow_up_id)
    assert (follow_up.status, follow_up.error_code) == ("cancelled", follow_ups.REPLIED)
    assert (refunds_of(plain_id), refunds_of(follow_up_id)) == (1, 1)
    assert balance(world) == 500 - 1  # the message the follow-up follows


def test_step_by_step_a_bulk_chunk_and_a_reply_that_cancels_a_follow_up_of_one_of_its_people(
    app, world
) -> None:
    """A bulk message's chunk (one transaction) has paid for its first recipient (Lena) and is held
    there, uncommitted, as the second recipient's reply cancels their follow-up: the reply waits for the
    chunk (which took its people's conversations before the first debit); both commit, the bulk message
    goes to both, the follow-up is refunded."""
    ann = f.application(world["lena"].job, f.candidate(world["org"], "Ann", "Berg", mobile=ANN))
    db.session.commit()
    _, follow_up_id = followed_later(world, ann)
    user = db.session.get(User, world["user_id"])
    people = [world["lena"].id, ann.id]
    batch = bulk.start(db.session, user, "application", people, "sms", "Hello %FIRSTNAME%")
    assert (
        db.session.scalars(sa.select(BatchRecipient.subject_id).order_by(BatchRecipient.id)).all() == people
    )
    waiting, results = held_at_the_credits_while_a_reply_comes(
        app, lambda: bulk.run(batch.id, handed_over=lambda message_id: None), sender=ANN
    )
    assert waiting, "the reply never waited for the bulk chunk"
    assert not isinstance(results["reply"], Exception), results["reply"]
    assert results["writer"] == 2
    db.session.expire_all()
    outcomes = db.session.scalars(sa.select(BatchRecipient.outcome).order_by(BatchRecipient.id)).all()
    assert outcomes == ["sent", "sent"]
    follow_up = db.session.get(Message, follow_up_id)
    assert (follow_up.status, follow_up.error_code) == ("cancelled", follow_ups.REPLIED)
    assert refunds_of(follow_up_id) == 1
    assert balance(world) == 500 - 3  # the message the follow-up follows, the bulk message to both


def test_step_by_step_a_rejection_report_and_a_reply_that_cancels_a_follow_up(app, world) -> None:
    """The network rejects a message (its report refunds it), held there uncommitted, as the person's
    reply cancels a follow-up of the same conversation: the reply waits for the report (which took the
    conversation's row before the credits); both commit, both refunded once."""
    _, follow_up_id = followed_later(world)
    user = db.session.get(User, world["user_id"])
    sent = compose.compose(db.session, user, of_application(world["lena"]), "sms", "Hi")
    db.session.commit()
    dispatch.deliver(sent.id)
    db.session.expire_all()
    sent = db.session.get(Message, sent.id)
    provider_id, sent_id = sent.provider_id, sent.id
    assert provider_id is not None

    def rejected() -> object:
        failure = status.Failure("4", "Invalid recipient")
        return status.receive_report(db.session, provider_id, "rejected", failure=failure).id

    waiting, results = held_at_the_credits_while_a_reply_comes(app, rejected)
    assert waiting, "the reply never waited for the report"
    assert not isinstance(results["writer"], Exception), results["writer"]
    assert not isinstance(results["reply"], Exception), results["reply"]
    db.session.expire_all()
    assert db.session.get(Message, sent_id).status == "rejected"
    assert (refunds_of(sent_id), refunds_of(follow_up_id)) == (1, 1)
    assert balance(world) == 500 - 1  # the message the follow-up follows
