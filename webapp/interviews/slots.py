"""Interview slots of a job: what the hiring team offers, and which are booked. Plain functions over a
session; the caller has already found the job through webapp.access (so it is the user's to see)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from webapp import zones
from webapp.models import Application, HiringTeamMember, InterviewSlot, Invitation, Job, User

# The lengths offered, in minutes (the form's choices; the database allows up to 8 hours).
LENGTHS = (15, 30, 45, 60, 90, 120)
PLACE_LENGTH = 500


class SlotRefused(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Draft:
    day: date | None
    at: time | None
    minutes: int | None
    place: str
    interviewer_id: int | None


def team(session: Session, job: Job) -> list[User]:
    """Who may interview: the job's hiring team."""
    return list(
        session.scalars(
            sa.select(User)
            .join(HiringTeamMember, HiringTeamMember.user_id == User.id)
            .where(HiringTeamMember.job_id == job.id)
            .order_by(User.name)
        )
    )


def of_job(session: Session, job: Job) -> list[InterviewSlot]:
    """Every slot of the job, soonest first, with who holds it."""
    return list(
        session.scalars(
            sa.select(InterviewSlot)
            .where(InterviewSlot.job_id == job.id)
            .options(
                selectinload(InterviewSlot.interviewer),
                selectinload(InterviewSlot.holder)
                .selectinload(Invitation.application)
                .selectinload(Application.candidate),
            )
            .order_by(InterviewSlot.starts_at, InterviewSlot.id)
            # Sessions keep what they loaded past a commit: read who holds each slot afresh.
            .execution_options(populate_existing=True)
        )
    )


def free(session: Session, job_id: int, now: datetime) -> list[InterviewSlot]:
    """Slots still to come that no invitation holds: what a candidate may pick."""
    held = sa.select(Invitation.id).where(Invitation.slot_id == InterviewSlot.id).exists()
    return list(
        session.scalars(
            sa.select(InterviewSlot)
            .where(InterviewSlot.job_id == job_id, InterviewSlot.starts_at > now, ~held)
            .order_by(InterviewSlot.starts_at, InterviewSlot.id)
        )
    )


def create(session: Session, user: User, job: Job, draft: Draft, now: datetime) -> InterviewSlot:
    """A new slot, its time read in the organisation's zone; SlotRefused names the field at fault."""
    if draft.day is None:
        raise SlotRefused("Choose the day.", "day")
    if draft.at is None:
        raise SlotRefused("Choose the time it starts.", "at")
    if draft.minutes not in LENGTHS:
        raise SlotRefused("Choose how long it lasts.", "minutes")
    place = draft.place.strip()
    if not place:
        raise SlotRefused("Say where: an address, a room or a video link.", "place")
    if len(place) > PLACE_LENGTH:
        raise SlotRefused(f"Keep the place under {PLACE_LENGTH} characters.", "place")
    interviewer = None
    if draft.interviewer_id is not None:
        interviewer = next((u for u in team(session, job) if u.id == draft.interviewer_id), None)
        if interviewer is None:
            raise SlotRefused("Choose someone on the job's hiring team.", "interviewer_id")
    zone = job.organization.time_zone
    starts = datetime.combine(draft.day, draft.at, tzinfo=zones.zone(zone)).astimezone(now.tzinfo)
    if starts <= now:
        raise SlotRefused("That time has passed: choose one still to come.", "at")
    slot = InterviewSlot(
        job_id=job.id,
        starts_at=starts,
        minutes=draft.minutes,
        place=place,
        interviewer_id=interviewer.id if interviewer else None,
        created_by_id=user.id,
        created_at=now,
    )
    session.add(slot)
    session.flush()
    return slot


def get(session: Session, job: Job, slot_id: int) -> InterviewSlot | None:
    return session.scalar(
        sa.select(InterviewSlot).where(InterviewSlot.id == slot_id, InterviewSlot.job_id == job.id)
    )


def delete(session: Session, slot: InterviewSlot) -> None:
    """Remove a free slot; a booked one stays (the candidate was told it), SlotRefused says so.

    A candidate may be booking it at this very moment, so "is it free?" and the delete must be one
    step: the row is locked first (PostgreSQL: a booking in flight holds a key lock on it, so this
    waits for that booking's commit or rollback, and a booking after it waits for ours), then deleted
    only if no invitation holds it.
    """
    session.execute(sa.select(InterviewSlot.id).where(InterviewSlot.id == slot.id).with_for_update())
    held = sa.select(Invitation.id).where(Invitation.slot_id == slot.id).exists()
    deleted = session.execute(
        sa.delete(InterviewSlot)
        .where(InterviewSlot.id == slot.id, ~held)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not deleted:
        raise SlotRefused(
            "This slot is booked (perhaps since this page was shown): the candidate would lose their "
            "interview.",
            "slot",
        )
    session.expunge(slot)
