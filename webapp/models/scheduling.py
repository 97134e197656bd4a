"""The last run of each periodic task: the row that lets one clock among many run it (webapp.scheduling)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime


class ScheduledRun(Base):
    """One row per periodic task. A clock runs a task only after moving `started_at` forward with one
    conditional UPDATE (`started_at` at least an interval ago), so of several clocks passing at the same
    moment exactly one wins; the row is created by the first run ever (INSERT … ON CONFLICT DO NOTHING)."""

    __tablename__ = "scheduled_run"

    task: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the last run that finished did, or why it failed; for an operator reading the table.
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
