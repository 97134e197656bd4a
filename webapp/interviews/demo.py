"""The demo's interviews: slots on Acme's Backend Engineer over the next working days, one candidate
invited by SMS (not booked yet) and one invited by email who has booked, so that a newcomer sees the
slots page, the invitation in a conversation and a booking; and slots in person at the Newark
warehouse, on New York's clock (a candidate invited there from Europe sees both times). Through the
same functions the pages use; the messages are marked delivered, as the demo never calls a provider.
Idempotent: a job with slots is left alone."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from webapp import zones
from webapp.interviews import booking, invitations, slots
from webapp.models import (
    Application,
    Candidate,
    Conversation,
    InterviewSlot,
    Job,
    Message,
    MessageTemplate,
    OptOut,
    Organization,
    User,
    utcnow,
)

JOB = "Backend Engineer"
TIMES = ("10:00", "11:30", "14:00")
PLACES = (
    "Acme office, Friedrichstraße 68, Berlin (ask for Riley at reception)",
    "https://meet.acme.example/backend",
)


NEWARK_JOB = "Warehouse Associate"
NEWARK_PLACE = "Acme warehouse, 200 Port Street, Newark, NJ (gate B)"
# New York's clock: after the Berlin slots' end on Riley's day, even in the weeks when only one of the
# two has moved to summer time.
NEWARK_TIMES = ("10:00", "10:30", "11:00")


def seed(session: Session, acme: Organization) -> None:
    _seed_newark(session, acme)
    job = session.scalar(sa.select(Job).where(Job.organization_id == acme.id, Job.title == JOB))
    recruiter = session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
    if job is None or recruiter is None:
        return
    if session.scalar(sa.select(InterviewSlot.id).where(InterviewSlot.job_id == job.id).limit(1)):
        return
    now = utcnow()
    day = zones.local(now, acme.time_zone).date()
    made: list[InterviewSlot] = []
    while len(made) < 3 * len(TIMES):
        day += timedelta(days=1)
        if day.weekday() >= 5:  # working days only
            continue
        for n, at in enumerate(TIMES):
            hour, minute = (int(x) for x in at.split(":"))
            draft = slots.Draft(day, time(hour, minute), 45, PLACES[n % 2], recruiter.id)
            made.append(slots.create(session, recruiter, job, draft, now))

    # Two candidates of the job nobody has written to yet, with a mobile that has not opted out and
    # that says its time zone (the booking page then needs nothing from the browser), the last first.
    written = sa.select(Conversation.application_id).where(Conversation.application_id.is_not(None))
    opted = sa.select(OptOut.e164).where(OptOut.revoked_at.is_(None))
    candidates = session.scalars(
        sa.select(Application)
        .join(Application.candidate)
        .where(
            Application.job_id == job.id,
            Application.id.notin_(written),
            Candidate.mobile.is_not(None),
            Candidate.mobile.notin_(opted),
            Candidate.email.is_not(None),
        )
        .order_by(Application.id.desc())
    ).all()
    fresh = [a for a in candidates if zones.for_number(a.candidate.mobile)][:2]
    base = current_app.config["PUBLIC_BASE_URL"]
    texts = {
        t.channel: t
        for t in session.scalars(
            sa.select(MessageTemplate).where(
                MessageTemplate.organization_id == acme.id, MessageTemplate.kind == "interview_invitation"
            )
        )
    }
    sms = texts.get("sms")
    email = texts.get("email")
    sent = invitations.invite(
        session, recruiter, fresh[0], "sms", sms.body if sms else "Book: %INVITELINK%", None, base, now
    )
    _delivered(sent.message, now)
    booked = invitations.invite(
        session,
        recruiter,
        fresh[1],
        "email",
        email.body if email else "Choose a time: %INVITELINK%",
        email.subject if email else "Interview for %JOBTITLE%",
        base,
        now,
    )
    _delivered(booked.message, now)
    slot = booking.book(session, booked, made[1].id, now)
    assert slot is not None  # a fresh invitation: the booking is a change
    # The link itself is only in the candidate's email (the token is not kept): the confirmation
    # names the page without it.
    zone, _ = booking.candidate_zone(booked, None, acme.time_zone)
    confirmation = booking.send_confirmation(
        session, booked, booking.confirmation(booked, slot, zone, "the link in our invitation")
    )
    if confirmation is not None:
        _delivered(confirmation, now)
    session.flush()


def _seed_newark(session: Session, acme: Organization) -> None:
    job = session.scalar(sa.select(Job).where(Job.organization_id == acme.id, Job.title == NEWARK_JOB))
    recruiter = session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
    if job is None or recruiter is None:
        return
    if session.scalar(sa.select(InterviewSlot.id).where(InterviewSlot.job_id == job.id).limit(1)):
        return
    now = utcnow()
    zone = slots.default_zone(job)
    day = zones.local(now, zone).date()
    days = 0
    while days < 2:
        day += timedelta(days=1)
        if day.weekday() >= 5:
            continue
        days += 1
        for at in NEWARK_TIMES:
            hour, minute = (int(x) for x in at.split(":"))
            draft = slots.Draft(day, time(hour, minute), 30, NEWARK_PLACE, recruiter.id, zone)
            slots.create(session, recruiter, job, draft, now)


def _delivered(message: Message, now: datetime) -> None:
    message.status = "sent" if message.channel == "email" else "delivered"
    message.provider_id = f"demo-invitation-{message.id}"
    message.submitted_at = now
    message.delivered_at = now if message.channel != "email" else None
