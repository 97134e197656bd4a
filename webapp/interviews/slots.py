"""Interview slots of a job: what the hiring team offers, and which are booked. Plain functions over a
session; the caller has already found the job through webapp.accounts.access (so it is the user's to see).

A slot lives in a time zone: an interview in person happens at its place's clock (the job's location,
Job.time_zone, or a zone chosen when adding it), and its times are entered in that zone. An interviewer
is never in two places at once: a slot overlapping another of the same interviewer (any job) is
refused — checked here under SQLite's write lock, and on PostgreSQL also by the database itself (an
exclusion constraint, webapp.models.interviews), which decides between two requests at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload

from webapp import database, zones
from webapp.models import Application, HiringTeamMember, InterviewSlot, Invitation, Job, User
from webapp.refusals import Refused

# The lengths offered, in minutes (the form's choices; the database allows up to 8 hours).
LENGTHS = (15, 30, 45, 60, 90, 120)
# How often a series begins a slot, in minutes.
INTERVALS = (15, 20, 30, 45, 60, 90, 120)
PLACE_LENGTH = 500
# A series covers at most this many days and makes at most this many slots.
SERIES_DAYS = 31
SERIES_SLOTS = 100
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class SlotRefused(Refused):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, field)


@dataclass(frozen=True)
class Draft:
    day: date | None
    at: time | None
    minutes: int | None
    place: str
    interviewer_id: int | None
    # Where the times are read; None: the job's zone (default_zone).
    time_zone: str | None = None


@dataclass(frozen=True)
class Series:
    """Slots every `every` minutes from `start` until the last one has ended by `end`, on each chosen
    weekday (0 = Monday) from `first_day` to `last_day` (None: that day only)."""

    first_day: date | None
    last_day: date | None
    weekdays: frozenset[int]
    start: time | None
    end: time | None
    every: int | None
    minutes: int | None
    place: str
    interviewer_id: int | None
    time_zone: str | None = None


@dataclass
class SeriesOutcome:
    added: list[InterviewSlot] = field(default_factory=list)
    # The times left out (UTC starts) and why, in words.
    skipped: list[tuple[datetime, str]] = field(default_factory=list)

    def skipped_words(self, zone: str, most: int) -> str:
        """The first `most` times left out and why ("Tue 04 Mar 10:00: …; …"), and how many more."""
        listed = "; ".join(
            f"{zones.format_time(at, zone, '%a %d %b %H:%M')}: {why}" for at, why in self.skipped[:most]
        )
        more = len(self.skipped) - most
        return listed + (f"; and {more} more" if more > 0 else "")


def default_zone(job: Job) -> str:
    """The zone a new slot of the job is entered in: its place's, else the organisation's."""
    return job.time_zone or job.organization.time_zone


def zone_of(slot: InterviewSlot) -> str:
    """The zone the slot lives in."""
    return slot.time_zone or default_zone(slot.job)


def place_name(slot: InterviewSlot) -> str:
    """What to call the slot's clock: the job's town when the slot keeps the job's zone ("Newark"),
    else the zone's city ("New York")."""
    zone = zone_of(slot)
    town = slot.job.location.split(",")[0].strip()
    if town and slot.job.time_zone == zone:
        return town
    return zones.city(zone)


@dataclass(frozen=True)
class Shown:
    """A slot's time for one reader: on the slot's clock, named after its place when in person, and
    the same moment on the reader's clock when that reads otherwise."""

    when: str  # "Tue 04 Mar 2031, 10:00 EST"
    place: str | None  # "Newark": whose clock `when` is (None: the reader's own, or a video call)
    also: str | None  # "15:00 GMT" (with the day when it differs), or None

    @property
    def different(self) -> bool:
        return self.also is not None


def shown(slot: InterviewSlot, reader_zone: str, fmt: str, video_in_readers_zone: bool = False) -> Shown:
    """How to show the slot's time to someone reading in `reader_zone`. An interview in person is at
    its place's clock, the reader's beside it when that differs; a video call, for a candidate
    (video_in_readers_zone), simply in their own zone."""
    if video_in_readers_zone and slot.is_link:
        return Shown(zones.format_time(slot.starts_at, reader_zone, fmt), None, None)
    zone = zone_of(slot)
    here, there = zones.local(slot.starts_at, zone), zones.local(slot.starts_at, reader_zone)
    also = None
    if here.utcoffset() != there.utcoffset():
        also = zones.format_time(
            slot.starts_at, reader_zone, "%H:%M" if here.date() == there.date() else "%a %H:%M"
        )
    return Shown(
        zones.format_time(slot.starts_at, zone, fmt), None if slot.is_link else place_name(slot), also
    )


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
    """Slots still to come that no invitation holds, and whose interviewer is not booked at that time
    by another slot: what a candidate may pick. (The database keeps an interviewer's slots apart on
    PostgreSQL; the second condition keeps a booked interviewer from being offered twice whatever
    the data, e.g. rows written before that rule.)"""
    held = sa.select(Invitation.id).where(Invitation.slot_id == InterviewSlot.id).exists()
    other = aliased(InterviewSlot)
    interviewer_booked = (
        sa.select(other.id)
        .join(Invitation, Invitation.slot_id == other.id)
        .where(
            other.interviewer_id == InterviewSlot.interviewer_id,
            other.id != InterviewSlot.id,
            other.starts_at < InterviewSlot.ends_at,
            other.ends_at > InterviewSlot.starts_at,
        )
        .exists()
    )
    return list(
        session.scalars(
            sa.select(InterviewSlot)
            .where(InterviewSlot.job_id == job_id, InterviewSlot.starts_at > now, ~held, ~interviewer_booked)
            .order_by(InterviewSlot.starts_at, InterviewSlot.id)
        )
    )


def clash(session: Session, interviewer_id: int, starts: datetime, ends: datetime) -> InterviewSlot | None:
    """The interviewer's first slot that overlaps [starts, ends), of any job."""
    return session.scalar(
        sa.select(InterviewSlot)
        .where(
            InterviewSlot.interviewer_id == interviewer_id,
            InterviewSlot.starts_at < ends,
            InterviewSlot.ends_at > starts,
        )
        .order_by(InterviewSlot.starts_at, InterviewSlot.id)
        .limit(1)
    )


def _clash_words(interviewer: User, other: InterviewSlot, zone: str, job: Job) -> str:
    local_start = zones.local(other.starts_at, zone)
    local_end = zones.local(other.ends_at, zone)
    when = f"{local_start.strftime('%a %d %b %H:%M')}–{local_end.strftime('%H:%M')} {local_start.tzname()}"
    where = "" if other.job_id == job.id else f" ({other.job.title})"
    return f"{interviewer.name} already has a slot then: {when}{where}"


def _place(draft_place: str) -> str:
    place = draft_place.strip()
    if not place:
        raise SlotRefused("Say where: an address, a room or a video link.", "place")
    if len(place) > PLACE_LENGTH:
        raise SlotRefused(f"Keep the place under {PLACE_LENGTH} characters.", "place")
    return place


def _interviewer(session: Session, job: Job, interviewer_id: int | None) -> User | None:
    if interviewer_id is None:
        return None
    found = next((u for u in team(session, job) if u.id == interviewer_id), None)
    if found is None:
        raise SlotRefused("Choose someone on the job's hiring team.", "interviewer_id")
    return found


def _zone(job: Job, name: str | None) -> str:
    if name is None or not name.strip():
        return default_zone(job)
    if not zones.is_known(name.strip()):
        raise SlotRefused("Choose a time zone from the list, e.g. America/New_York.", "time_zone")
    return name.strip()


def _add(
    session: Session,
    user: User,
    job: Job,
    starts: datetime,
    minutes: int,
    place: str,
    interviewer: User | None,
    zone: str,
    now: datetime,
) -> InterviewSlot:
    """Store one slot, unless its interviewer is busy then (SlotRefused on "at"). The caller holds the
    write lock on SQLite (database.write_lock); on PostgreSQL the exclusion constraint refuses an
    overlap that another transaction committed after our check, and the refusal names it."""
    ends = starts + timedelta(minutes=minutes)
    if interviewer is not None:
        other = clash(session, interviewer.id, starts, ends)
        if other is not None:
            raise SlotRefused(_clash_words(interviewer, other, zone, job) + ".", "at")
    slot = InterviewSlot(
        job_id=job.id,
        starts_at=starts,
        minutes=minutes,
        ends_at=ends,
        time_zone=zone,
        place=place,
        interviewer_id=interviewer.id if interviewer else None,
        created_by_id=user.id,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(slot)
            session.flush()
    except IntegrityError:
        # Another request added an overlapping slot and committed while we checked: it is there now
        # (PostgreSQL made us wait for its commit before refusing).
        other = clash(session, interviewer.id, starts, ends) if interviewer is not None else None
        if other is None:
            raise
        raise SlotRefused(_clash_words(interviewer, other, zone, job) + " (just added).", "at") from None
    return slot


def create(session: Session, user: User, job: Job, draft: Draft, now: datetime) -> InterviewSlot:
    """A new slot, its time read in its zone; SlotRefused names the field at fault."""
    if draft.day is None:
        raise SlotRefused("Choose the day.", "day")
    if draft.at is None:
        raise SlotRefused("Choose the time it starts.", "at")
    if draft.minutes not in LENGTHS:
        raise SlotRefused("Choose how long it lasts.", "minutes")
    place = _place(draft.place)
    interviewer = _interviewer(session, job, draft.interviewer_id)
    zone = _zone(job, draft.time_zone)
    starts = datetime.combine(draft.day, draft.at, tzinfo=zones.zone(zone)).astimezone(now.tzinfo)
    if starts <= now:
        raise SlotRefused("That time has passed: choose one still to come.", "at")
    database.write_lock(session)
    return _add(session, user, job, starts, draft.minutes, place, interviewer, zone, now)


def series_times(series: Series, zone: str) -> list[datetime]:
    """The series' starts, in UTC, soonest first; SlotRefused for a series that cannot be made."""
    if series.first_day is None:
        raise SlotRefused("Choose the first day.", "first_day")
    last = series.last_day or series.first_day
    if last < series.first_day:
        raise SlotRefused("The last day comes before the first.", "last_day")
    if (last - series.first_day).days >= SERIES_DAYS:
        raise SlotRefused(f"A series covers at most {SERIES_DAYS} days.", "last_day")
    if not series.weekdays:
        raise SlotRefused("Tick the days of the week to add slots on.", "weekdays")
    if series.start is None:
        raise SlotRefused("Choose when the first slot starts.", "start")
    if series.end is None:
        raise SlotRefused("Choose when the last slot has to end.", "end")
    if series.minutes not in LENGTHS:
        raise SlotRefused("Choose how long each slot lasts.", "minutes")
    if series.every not in INTERVALS:
        raise SlotRefused("Choose how often a slot starts.", "every")
    if series.every < series.minutes:
        raise SlotRefused(
            f"Slots of {series.minutes} min every {series.every} min would overlap each other: start one "
            f"at most every {series.minutes} min, or make them shorter.",
            "every",
        )
    first_end = datetime.combine(date.min, series.start) + timedelta(minutes=series.minutes)
    if first_end > datetime.combine(date.min, series.end):
        raise SlotRefused(
            f"A {series.minutes}-minute slot from {series.start:%H:%M} ends after {series.end:%H:%M}.", "end"
        )
    tz = zones.zone(zone)
    starts: list[datetime] = []
    day = series.first_day
    while day <= last:
        if day.weekday() in series.weekdays:
            at = datetime.combine(day, series.start)
            while at + timedelta(minutes=series.minutes) <= datetime.combine(day, series.end):
                starts.append(at.replace(tzinfo=tz).astimezone(UTC))
                at += timedelta(minutes=series.every)
        day += timedelta(days=1)
    if not starts:
        raise SlotRefused("None of the days between the first and the last is ticked.", "weekdays")
    if len(starts) > SERIES_SLOTS:
        raise SlotRefused(
            f"That makes {len(starts)} slots; a series makes at most {SERIES_SLOTS}. Choose fewer days or "
            "a shorter time.",
            "last_day",
        )
    return starts


def add_series(session: Session, user: User, job: Job, series: Series, now: datetime) -> SeriesOutcome:
    """Add a series of slots in one step. A time that has passed, or at which the interviewer already
    has a slot, is skipped and reported; the others are added. SlotRefused when the series itself is
    wrong, or when none of its times could be added."""
    place = _place(series.place)
    interviewer = _interviewer(session, job, series.interviewer_id)
    zone = _zone(job, series.time_zone)
    starts = series_times(series, zone)
    assert series.minutes is not None
    database.write_lock(session)
    outcome = SeriesOutcome()
    for at in starts:
        if at <= now:
            outcome.skipped.append((at, "that time has passed"))
            continue
        try:
            outcome.added.append(_add(session, user, job, at, series.minutes, place, interviewer, zone, now))
        except SlotRefused as refused:
            outcome.skipped.append((at, refused.message.rstrip(".")))
    if not outcome.added:
        raise SlotRefused(f"None of these times could be added. {outcome.skipped_words(zone, 3)}.", "start")
    return outcome


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
