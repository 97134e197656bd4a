"""Reading jobs and applications for one user; every query goes through webapp.access scoping."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, contains_eager

from webapp import access, search
from webapp.models import Application, Candidate, Job, User

MAX_ROWS = 500


@dataclass(frozen=True)
class JobRow:
    job: Job
    applications: int
    active: int


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
    query = (
        access.visible_jobs(user)
        .add_columns(sa.func.coalesce(counts.c.total, 0), sa.func.coalesce(counts.c.active, 0))
        .outerjoin(counts, counts.c.job_id == Job.id)
        .order_by(Job.is_open.desc(), Job.created_at.desc(), Job.id.desc())
    )
    return [JobRow(job, total, active) for job, total, active in session.execute(query)]


def applications_for(
    session: Session, user: User, job: Job, q: str = "", stage: str = ""
) -> list[Application]:
    """The job's applications, filtered by candidate name and stage, newest first."""
    query = (
        access.visible_applications(user)
        .join(Application.candidate)
        .options(contains_eager(Application.candidate))
        .where(Application.job_id == job.id)
    )
    if stage:
        query = query.where(Application.stage == stage)
    # Every word of the query somewhere in the name, accents and case aside: "muller lena" finds
    # Lena Müller, in either order, on any backend.
    for word in search.words(q):
        query = query.where(Candidate.search_name.contains(word, autoescape=True))
    query = query.order_by(Application.created_at.desc(), Application.id.desc()).limit(MAX_ROWS)
    return list(session.scalars(query))
