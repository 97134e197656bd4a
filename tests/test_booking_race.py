"""On PostgreSQL, twenty candidates book the same slot at the same moment: exactly one holds it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from webapp import permissions
from webapp.extensions import db
from webapp.interviews import booking, invitations
from webapp.models import InterviewSlot, Invitation, Message, utcnow

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
