"""On PostgreSQL, where writers really meet: twenty candidates book the same slot at the same moment
and exactly one holds it; and, step by step, that a second writer is made to wait (pg_stat_activity
shows it waiting on a lock the first holds) and then gets the right answer once the first commits — a
second booking of the same slot, a second link of the same candidate, and deleting a slot being booked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.interviews import booking, invitations, slots
from webapp.models import Application, InterviewSlot, Invitation, Job, Message, utcnow

CANDIDATES = 20


@pytest.fixture
def backend() -> str:
    return "postgresql"  # SQLite serialises writers; the race only exists on a real server


@pytest.fixture
def app_config() -> dict[str, object]:
    # One connection per thread, so that all of them really meet at the database.
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": CANDIDATES, "max_overflow": 5, "pool_timeout": 30}}


def race(app, invitation_ids: list[int], slot_id: int) -> list[str]:
    """Each invitation books the slot in a thread of its own, all released at once."""
    start = threading.Barrier(len(invitation_ids))
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(invitation_id: int) -> None:
        with app.app_context():
            invitation = db.session.get(Invitation, invitation_id)
            assert invitation is not None
            invitation.application.job  # noqa: B018  # loaded before the start, not during the race
            start.wait()
            try:
                booking.book(db.session, invitation, slot_id, utcnow())
                db.session.commit()
                result = "booked"
            except booking.BookingRefused:
                db.session.rollback()
                result = "refused"
            finally:
                db.session.remove()
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in invitation_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def test_twenty_candidates_one_slot(app) -> None:
    org = f.messaging_org("Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user])
    applications = [
        f.application(job, f.candidate(org, "C", str(i), mobile=f"+49151234567{i:02d}"))
        for i in range(CANDIDATES)
    ]
    slot = InterviewSlot(job_id=job.id, starts_at=utcnow() + timedelta(days=1), minutes=30, place="Room 1")
    db.session.add(slot)
    f.credits(org, 100)
    db.session.commit()
    for application in applications:
        invitations.invite(
            db.session, user, application, "sms", "%INVITELINK%", None, "https://x.test", utcnow()
        )
    db.session.commit()
    invitation_ids = list(db.session.scalars(sa.select(Invitation.id)))
    slot_id = slot.id
    db.session.remove()

    outcomes = race(app, invitation_ids, slot_id)

    assert sorted(outcomes) == ["booked"] + ["refused"] * (CANDIDATES - 1), outcomes
    holders = db.session.scalars(sa.select(Invitation).where(Invitation.slot_id == slot_id)).all()
    assert len(holders) == 1 and holders[0].state == "booked"
    others = db.session.scalars(sa.select(Invitation.state).where(Invitation.id != holders[0].id)).all()
    assert set(others) == {"sent"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == CANDIDATES


def test_the_database_refuses_a_second_holder_whatever_python_checked(app) -> None:
    """The constraint itself, without book(): two rows pointing at one slot cannot both be stored."""
    org = f.messaging_org("Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user])
    slot = InterviewSlot(job_id=job.id, starts_at=utcnow() + timedelta(days=1), minutes=30, place="Room 1")
    db.session.add(slot)
    f.credits(org, 10)
    db.session.commit()
    made = []
    for i in range(2):
        application = f.application(job, f.candidate(org, "C", str(i), mobile=f"+4915123456{i:03d}"))
        made.append(
            invitations.invite(
                db.session, user, application, "sms", "%INVITELINK%", None, "https://x.test", utcnow()
            )
        )
    db.session.commit()
    db.session.execute(
        sa.update(Invitation).where(Invitation.id == made[0].id).values(slot_id=slot.id, state="booked")
    )
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.update(Invitation).where(Invitation.id == made[1].id).values(slot_id=slot.id, state="booked")
        )
    db.session.rollback()


# --- One writer waits for the other ---------------------------------------------------------------------


class Second:
    """A call made in a thread of its own (its own app context, session and connection), started at
    once. Its backend's pid is known before the call, so that the test can ask PostgreSQL what that
    backend is waiting for."""

    def __init__(self, app, call: Callable[[], str]) -> None:
        self.pid: int | None = None
        self.result: str | None = None
        self._ready = threading.Event()

        def run() -> None:
            with app.app_context():
                try:
                    self.pid = db.session.scalar(sa.select(sa.func.pg_backend_pid()))
                    self._ready.set()
                    self.result = call()
                except Exception as exc:  # whatever it was, the test reports it, not a lost thread
                    db.session.rollback()
                    self.result = f"error: {exc!r}"
                finally:
                    self._ready.set()
                    db.session.remove()

        self.thread = threading.Thread(target=run)
        self.thread.start()
        assert self._ready.wait(10)

    def blocked_by(self, timeout: float = 10) -> list[int]:
        """The pids this call waits for once it waits on a lock; fails if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.thread.is_alive():
            # A connection of its own each time: pg_stat_activity is read once per transaction.
            with db.engine.connect() as conn:
                row = conn.execute(
                    sa.text(
                        "SELECT wait_event_type, pg_blocking_pids(pid) FROM pg_stat_activity WHERE pid = :pid"
                    ),
                    {"pid": self.pid},
                ).one()
            if row[0] == "Lock":
                return list(row[1])
            time.sleep(0.02)
        raise AssertionError(f"the second call never waited on a lock (it ended with {self.result!r})")

    def outcome(self) -> str | None:
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        return self.result


def book_by_id(invitation_id: int, slot_id: int) -> str:
    """What a booking request does, in the calling thread's session: booked, or why not."""
    invitation = db.session.get(Invitation, invitation_id)
    assert invitation is not None
    try:
        booking.book(db.session, invitation, slot_id, utcnow())
    except booking.BookingRefused as refused:
        db.session.rollback()
        return f"refused: {refused}"
    db.session.commit()
    return "booked"


def delete_by_id(job_id: int, slot_id: int) -> str:
    """What the team's "Remove" does, in the calling thread's session."""
    job = db.session.get(Job, job_id)
    assert job is not None
    slot = slots.get(db.session, job, slot_id)
    assert slot is not None
    try:
        slots.delete(db.session, slot)
    except slots.SlotRefused as refused:
        db.session.rollback()
        return f"refused: {refused}"
    db.session.commit()
    return "deleted"


@pytest.fixture
def two(app) -> dict[str, object]:
    """A job with two slots and two candidates, each invited by SMS."""
    org = f.messaging_org("Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user])
    soon = utcnow() + timedelta(days=1)
    slot_list = [
        InterviewSlot(job_id=job.id, starts_at=soon + timedelta(hours=h), minutes=30, place="Room 1")
        for h in range(2)
    ]
    db.session.add_all(slot_list)
    f.credits(org, 20)
    applications = [
        f.application(job, f.candidate(org, "C", str(i), mobile=f"+4915123456{i:03d}")) for i in range(2)
    ]
    db.session.commit()
    made = [invite(user, a) for a in applications]
    return {"user": user, "job": job, "slots": slot_list, "applications": applications, "invitations": made}


def invite(user, application: Application) -> Invitation:
    invitation = invitations.invite(
        db.session, user, application, "sms", "%INVITELINK%", None, "https://x.test", utcnow()
    )
    db.session.commit()
    return invitation


def pid() -> int:
    """This session's backend: the one whose transaction is open."""
    found = db.session.scalar(sa.select(sa.func.pg_backend_pid()))
    assert found is not None
    return found


def test_a_second_booking_of_the_slot_waits_for_the_first_then_is_refused(app, two) -> None:
    first, second = two["invitations"]
    slot_id = two["slots"][0].id
    mine = pid()
    booking.book(db.session, first, slot_id, utcnow())  # flushed, not committed: the first is in flight
    other = Second(app, lambda: book_by_id(second.id, slot_id))
    try:
        assert other.blocked_by() == [mine]
    finally:
        db.session.commit()
    assert other.outcome() == "refused: Someone has just booked that time. Pick another."
    holders = db.session.scalars(sa.select(Invitation.id).where(Invitation.slot_id == slot_id)).all()
    assert holders == [first.id]


def test_two_links_of_one_candidate_booking_at_once_take_turns(app, two) -> None:
    """Both links live and unbooked (the old booking cancelled after the new invitation), each booking
    its own time at once: the second waits for the first, then takes over; one slot held, not two."""
    user, application = two["user"], two["applications"][0]
    old = two["invitations"][0]
    booking.book(db.session, old, two["slots"][0].id, utcnow())
    db.session.commit()
    new = invite(user, application)
    booking.cancel(db.session, old, utcnow())
    db.session.commit()
    assert (old.state, new.state) == ("cancelled", "sent")

    mine = pid()
    booking.book(db.session, old, two["slots"][0].id, utcnow())
    other = Second(app, lambda: book_by_id(new.id, two["slots"][1].id))
    try:
        assert other.blocked_by() == [mine]
    finally:
        db.session.commit()
    assert other.outcome() == "booked"
    db.session.expire_all()
    held = db.session.scalars(
        sa.select(Invitation.slot_id).where(
            Invitation.application_id == application.id, Invitation.slot_id.is_not(None)
        )
    ).all()
    assert held == [two["slots"][1].id]
    assert (old.state, new.state) == ("replaced", "booked")


def test_removing_a_slot_while_it_is_being_booked_waits_then_is_refused(app, two) -> None:
    slot_id = two["slots"][0].id
    mine = pid()
    booking.book(db.session, two["invitations"][0], slot_id, utcnow())
    other = Second(app, lambda: delete_by_id(two["job"].id, slot_id))
    try:
        assert other.blocked_by() == [mine]
    finally:
        db.session.commit()
    outcome = other.outcome()
    assert outcome is not None and outcome.startswith("refused: This slot is booked"), outcome
    assert db.session.get(InterviewSlot, slot_id) is not None


def test_booking_a_slot_while_it_is_being_removed_waits_then_is_refused(app, two) -> None:
    slot_id, job = two["slots"][0].id, two["job"]
    mine = pid()
    slot = slots.get(db.session, job, slot_id)
    assert slot is not None
    slots.delete(db.session, slot)
    other = Second(app, lambda: book_by_id(two["invitations"][0].id, slot_id))
    try:
        assert other.blocked_by() == [mine]
    finally:
        db.session.commit()
    assert other.outcome() == "refused: That time is no longer offered. Pick another."
