"""Reading jobs and applications for one user; every query goes through webapp.accounts.access scoping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, contains_eager

from webapp import search
from webapp.accounts import access
from webapp.messaging import reads
from webapp.models import Application, Candidate, Conversation, Job, User

MAX_ROWS = 500


@dataclass(frozen=True)
class JobRow:
    job: Job
    applications: int
    active: int
    unread: int = 0  # inbound messages this user has not read, over the job's conversations
    last_activity: datetime | None = None  # the newest message of any of its conversations


@dataclass(frozen=True)
class Activity:
    unread: int
    last_activity: datetime | None


def _activity(user: User) -> sa.Select:
    return reads.activity_per_subject(user.id, Conversation.application_id)


def jobs_for(session: Session, user: User) -> list[JobRow]:
    """The jobs the user works on (all of the organisation's for admins), open ones first."""
    counts = (
        sa.select(
            Application.job_id,
            sa.func.count().label("total"),
            sa.func.count().filter(Application.stage.notin_(("hired", "rejected"))).label("active"),
        )
        .group_by(Application.job_id)
        .subquery()
    )
    per_application = _activity(user).subquery()
    activity = (
        sa.select(
            Application.job_id,
            sa.func.sum(per_application.c.unread).label("unread"),
            sa.func.max(per_application.c.last_at).label("last_at"),
        )
        .join(per_application, per_application.c.subject_id == Application.id)
        .group_by(Application.job_id)
        .subquery()
    )
    query = (
        access.visible_jobs(user)
        .add_columns(
            sa.func.coalesce(counts.c.total, 0),
            sa.func.coalesce(counts.c.active, 0),
            sa.func.coalesce(activity.c.unread, 0),
            activity.c.last_at,
        )
        .outerjoin(counts, counts.c.job_id == Job.id)
        .outerjoin(activity, activity.c.job_id == Job.id)
        .order_by(Job.is_open.desc(), Job.created_at.desc(), Job.id.desc())
    )
    return [JobRow(*row) for row in session.execute(query)]


def activity_for(session: Session, user: User, applications: list[Application]) -> dict[int, Activity]:
    """Unread count and last activity of these applications' conversations, for this user (one query)."""
    if not applications:
        return {}
    per_application = _activity(user).where(Conversation.application_id.in_([a.id for a in applications]))
    return {
        application_id: Activity(unread, last_at)
        for application_id, unread, last_at in session.execute(per_application)
    }


def matching(user: User, job_id: int, q: str = "", stage: str = "") -> sa.Select[tuple[Application]]:
    """The job's applications this user may see that the filter matches, unordered and uncapped: the one
    rule of "who matches" for the list and for a bulk message to all matching."""
    query = access.visible_applications(user).join(Application.candidate).where(Application.job_id == job_id)
    if stage:
        query = query.where(Application.stage == stage)
    # Every word of the query somewhere in the name, accents and case aside: "muller lena" finds
    # Lena Müller, in either order, on any backend.
    for word in search.words(q):
        query = query.where(Candidate.search_name.contains(word, autoescape=True))
    return query


def applications_for(
    session: Session, user: User, job: Job, q: str = "", stage: str = ""
) -> list[Application]:
    """The job's applications, filtered by candidate name and stage, the newest MAX_ROWS."""
    query = (
        matching(user, job.id, q, stage)
        .options(contains_eager(Application.candidate))
        .order_by(Application.created_at.desc(), Application.id.desc())
        .limit(MAX_ROWS)
    )
    return list(session.scalars(query))


def matching_ids(session: Session, user: User, job_id: int, q: str = "", stage: str = "") -> list[int]:
    """Every application the filter matches, uncapped, in id order."""
    query = matching(user, job_id, q, stage).with_only_columns(Application.id).order_by(Application.id)
    return list(session.scalars(query))


def count_matching(session: Session, user: User, job_id: int, q: str = "", stage: str = "") -> int:
    """How many applications the filter matches, uncapped (the list shows at most MAX_ROWS)."""
    found = matching(user, job_id, q, stage).with_only_columns(Application.id).subquery()
    return session.scalar(sa.select(sa.func.count()).select_from(found)) or 0
