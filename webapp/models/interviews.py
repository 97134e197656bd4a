"""Interviews: the slots a hiring team offers on a job, and the invitations that let a candidate book one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine.default import DefaultExecutionContext

    from webapp.models.ats import Application, Job
    from webapp.models.messaging import Message
    from webapp.models.user import User

# sent: the link is out, nothing booked; booked: it holds a slot; cancelled: the candidate gave the
# slot back (they may book again with the same link); replaced: a newer invitation to the same
# application took over, so that one candidate never holds two links (and two slots) at once.
INVITATION_STATES = ("sent", "booked", "cancelled", "replaced")
# Confirmations (booked, moved, cancelled) one invitation may send: each is a paid message on the
# invitation's channel, and the booking link is public. Later changes are confirmed on the page only.
MAX_CONFIRMATIONS = 3


def _end_of(context: DefaultExecutionContext) -> datetime:
    values = context.get_current_parameters()
    return values["starts_at"] + timedelta(minutes=values["minutes"])


class InterviewSlot(Base):
    """A time a member of the hiring team can interview someone for the job."""

    __tablename__ = "interview_slot"
    __table_args__ = (
        sa.Index("ix_interview_slot_job_start", "job_id", "starts_at"),
        sa.Index("ix_interview_slot_interviewer_start", "interviewer_id", "starts_at"),
        sa.CheckConstraint("minutes > 0 AND minutes <= 480", name="minutes_in_range"),
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        # One interviewer is never in two places at once: on PostgreSQL the database refuses a slot
        # whose time [start, end) overlaps another of the same interviewer, whatever two requests
        # checked at the same moment (btree_gist lets the integer take part in a GiST index). On
        # SQLite, webapp.interviews.slots checks under the database's write lock. A slot with no
        # interviewer named is not anybody's time, and is not checked.
        postgresql.ExcludeConstraint(
            (sa.column("interviewer_id"), "="),
            (sa.func.tsrange(sa.column("starts_at"), sa.column("ends_at")), "&&"),
            name="ex_interview_slot_interviewer_overlap",
            using="gist",
            where=sa.text("interviewer_id IS NOT NULL"),
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("job.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    minutes: Mapped[int] = mapped_column()
    # Stored, so that the database can compare times (the exclusion constraint, overlap queries).
    # Slots are never edited, only added and removed: it is set once, from starts_at and minutes.
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_end_of)
    # The zone the slot lives in: an interview in person is at its place's clock (the job's location,
    # or the zone chosen when it was added); its times were entered in it. None: the job's zone, else
    # the organisation's (webapp.interviews.slots.zone_of).
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    # An address, a room, or a video link: shown as it was typed (a link is made clickable).
    place: Mapped[str] = mapped_column(sa.String(500))
    interviewer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    job: Mapped[Job] = relationship()
    interviewer: Mapped[User | None] = relationship(foreign_keys=[interviewer_id])
    # The invitation holding it, if any (at most one: the unique slot_id on invitation).
    holder: Mapped[Invitation | None] = relationship(back_populates="slot", viewonly=True, uselist=False)

    @property
    def is_link(self) -> bool:
        return self.place.startswith(("https://", "http://"))


class Invitation(Base):
    """An invitation to interview: one message in the conversation, and its booking link's token.

    Only the token's SHA-256 is stored: the link is in the message the candidate got, and a copy of the
    database must not be a way to book for someone else.
    """

    __tablename__ = "invitation"
    __table_args__ = (
        sa.CheckConstraint("state IN ('sent', 'booked', 'cancelled', 'replaced')", name="state_known"),
        sa.CheckConstraint("(state = 'booked') = (slot_id IS NOT NULL)", name="booked_has_slot"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(sa.ForeignKey("application.id"), index=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("message.id"), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    channel: Mapped[str] = mapped_column(sa.String(10))
    state: Mapped[str] = mapped_column(sa.String(10), default="sent")
    # Unique: two invitations can never hold the same slot. The database decides a race between two
    # candidates, not a check in Python that both could pass at once.
    slot_id: Mapped[int | None] = mapped_column(sa.ForeignKey("interview_slot.id"), unique=True)
    # Until then the link books; once booked it lives until the interview starts.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Confirmations sent for it so far (at most MAX_CONFIRMATIONS), counted in the booking's transaction.
    confirmations: Mapped[int] = mapped_column(default=0, server_default="0")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    application: Mapped[Application] = relationship()
    message: Mapped[Message] = relationship()
    slot: Mapped[InterviewSlot | None] = relationship(back_populates="holder")
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])


class BookingVisit(Base):
    """A request to the public booking page, kept to limit how often one address may ask (across
    processes, as the sign-in limit does): the page answers to anyone holding a token, so it must not
    be a place to try tokens by the thousand."""

    __tablename__ = "booking_visit"
    __table_args__ = (
        sa.Index("ix_booking_visit_address_at", "remote_addr", "created_at"),
        sa.Index("ix_booking_visit_token_at", "token_hash", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    remote_addr: Mapped[str] = mapped_column(sa.String(64))
    # The SHA-256 of the token asked for (as Invitation.token_hash), so that one link's requests are
    # limited too, from however many addresses they come.
    token_hash: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
