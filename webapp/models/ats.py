"""The ATS: jobs ("cases"), their hiring teams, candidates and their applications."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, postgresql_only, utcnow
from webapp.models.contact import ContactMixin

if TYPE_CHECKING:
    from webapp.models.organization import Organization
    from webapp.models.user import User

# The pipeline every application moves through, in order; the labels are what users read.
STAGES: dict[str, str] = {
    "new": "New",
    "screening": "Screening",
    "interview": "Interview",
    "offer": "Offer",
    "hired": "Hired",
    "rejected": "Rejected",
}


class Job(Base):
    """A position being recruited for — a "case" in the users' words."""

    __tablename__ = "job"
    __table_args__ = (sa.Index("ix_job_org_created", "organization_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"))
    title: Mapped[str] = mapped_column(sa.String(200))
    location: Mapped[str] = mapped_column(sa.String(200), default="")
    # The time zone of the job's place (an IANA name): where its interviews in person happen. None:
    # the organisation's.
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    is_open: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship()
    team: Mapped[list[HiringTeamMember]] = relationship(back_populates="job", cascade="all, delete-orphan")
    applications: Mapped[list[Application]] = relationship(back_populates="job")

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.title!r}>"


class HiringTeamMember(Base):
    __tablename__ = "hiring_team_member"
    __table_args__ = (sa.UniqueConstraint("job_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("job.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    # What the member does on this job, shown on the team list ("Recruiter", "Hiring manager").
    title: Mapped[str] = mapped_column(sa.String(100), default="")

    job: Mapped[Job] = relationship(back_populates="team")
    user: Mapped[User] = relationship()


class Candidate(ContactMixin, Base):
    __tablename__ = "candidate"
    __table_args__ = (
        sa.Index("ix_candidate_org_mobile", "organization_id", "mobile"),
        # The inbox's search by name and by part of a number (PostgreSQL): trigram indexes for LIKE '%…%'.
        postgresql_only(
            sa.Index(
                "ix_candidate_search_name_trgm",
                "search_name",
                postgresql_using="gin",
                postgresql_ops={"search_name": "gin_trgm_ops"},
            )
        ),
        postgresql_only(
            sa.Index(
                "ix_candidate_mobile_trgm",
                "mobile",
                postgresql_using="gin",
                postgresql_ops={"mobile": "gin_trgm_ops"},
            )
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship()
    applications: Mapped[list[Application]] = relationship(back_populates="candidate")

    def __repr__(self) -> str:
        return f"<Candidate {self.id} {self.full_name!r}>"


class Application(Base):
    """One candidate applying to one job: the unit a hiring team talks to the candidate about."""

    __tablename__ = "application"
    __table_args__ = (
        sa.UniqueConstraint("job_id", "candidate_id"),
        sa.Index("ix_application_job_stage", "job_id", "stage"),
        sa.CheckConstraint(
            "stage IN ('new', 'screening', 'interview', 'offer', 'hired', 'rejected')", name="stage_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("job.id"))
    candidate_id: Mapped[int] = mapped_column(sa.ForeignKey("candidate.id"), index=True)
    stage: Mapped[str] = mapped_column(sa.String(20), default="new")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    job: Mapped[Job] = relationship(back_populates="applications")
    candidate: Mapped[Candidate] = relationship(back_populates="applications")

    def __repr__(self) -> str:
        return f"<Application {self.id} job={self.job_id} candidate={self.candidate_id}>"

    @property
    def stage_label(self) -> str:
        return STAGES.get(self.stage, self.stage)
