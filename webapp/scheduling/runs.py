"""The guard: a task runs only once its row's `started_at` has been moved forward by this caller.

`claim` is one UPDATE … WHERE started_at <= now - interval. Two clocks at the same moment both send it;
the database lets the first change the row and makes the second wait for that commit (PostgreSQL's
row lock, SQLite's write lock), after which the row no longer matches and the second changes nothing.
The first run ever creates the row instead (INSERT … ON CONFLICT DO NOTHING, same outcome). A clock
that dies mid-run holds nothing: the task is simply due again one interval after that start.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.models import ScheduledRun, utcnow
from webapp.models.upsert import insert_ignore


class Claim(NamedTuple):
    ours: bool  # this caller runs the task now
    started_at: datetime  # the last start, this one's or another clock's


def claim(session: Session, task: str, every: timedelta, now: datetime) -> Claim:
    """Take this interval's run of `task` if no one has started it within `every` before `now`
    (committed at once, so that the other clocks see it)."""
    taken = session.execute(
        sa.update(ScheduledRun)
        .where(ScheduledRun.task == task, ScheduledRun.started_at <= now - every)
        .values(started_at=now)
        .execution_options(synchronize_session=False)
    )
    ours = taken.rowcount == 1
    if not ours:
        last = last_start(session, task)
        if last is not None:
            session.commit()
            return Claim(False, last)
        ours = insert_ignore(session, ScheduledRun, {"task": task, "started_at": now}, ["task"])
    started_at = now if ours else last_start(session, task)
    session.commit()
    assert started_at is not None
    return Claim(ours, started_at)


def last_start(session: Session, task: str) -> datetime | None:
    return session.scalar(sa.select(ScheduledRun.started_at).where(ScheduledRun.task == task))


def finished(session: Session, task: str, started_at: datetime, outcome: str) -> None:
    """Note what the run that started at `started_at` did (unless a later run has started since)."""
    session.execute(
        sa.update(ScheduledRun)
        .where(ScheduledRun.task == task, ScheduledRun.started_at == started_at)
        .values(finished_at=utcnow(), outcome=outcome[:500])
        .execution_options(synchronize_session=False)
    )
    session.commit()
