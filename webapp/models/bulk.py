"""Bulk messages: one text written once, sent to many people, each in their own conversation."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.messaging import Message
    from webapp.models.organization import Organization
    from webapp.models.user import User

# "draft": the preview, stored so that paging it and Send reuse its checks; "running" once sent.
BATCH_STATES = ("draft", "running", "done", "cancelled")
# "sending": claimed by a worker inside its open transaction (never seen committed: the same transaction
# writes the final outcome with the message), so a killed worker leaves the row empty for the next one.
RECIPIENT_OUTCOMES = ("sending", "sent", "scheduled", "refused", "failed", "cancelled")


class Batch(Base):
    __tablename__ = "batch"
    __table_args__ = (
        sa.CheckConstraint("state IN ('draft', 'running', 'done', 'cancelled')", name="state_known"),
        sa.CheckConstraint("kind IN ('application', 'membership')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"), index=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"))
    # What every recipient row names: applications or community memberships.
    kind: Mapped[str] = mapped_column(sa.String(12))
    channel: Mapped[str] = mapped_column(sa.String(10))
    body: Mapped[str] = mapped_column(sa.Text)
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    template_id: Mapped[int | None] = mapped_column(sa.ForeignKey("message_template.id", ondelete="SET NULL"))
    whatsapp_template_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("whatsapp_template.id", ondelete="SET NULL")
    )
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(sa.String(10), default="running")
    total: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A worker runs the batch until then (renewed as it goes): the clock's pass leaves it alone, and
    # takes it over once the lease has run out (the worker died).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What plain quotes and dashes would save (webapp.messaging.lookalikes.savings): credits, messages.
    plain_saved: Mapped[int] = mapped_column(default=0)
    plain_helped: Mapped[int] = mapped_column(default=0)

    organization: Mapped[Organization] = relationship()
    author: Mapped[User] = relationship()


class BatchRecipient(Base):
    __tablename__ = "batch_recipient"
    __table_args__ = (
        sa.UniqueConstraint("batch_id", "subject_id", name="one_row_per_subject"),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN "
            "('sending', 'sent', 'scheduled', 'refused', 'failed', 'cancelled')",
            name="outcome_known",
        ),
        # The progress bar's counts and the worker's next recipients: one index range per batch.
        sa.Index("ix_batch_recipient_batch_outcome", "batch_id", "outcome", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("batch.id", ondelete="CASCADE"))
    # An application's id or a community membership's (the batch's kind says which).
    subject_id: Mapped[int]
    name: Mapped[str] = mapped_column(sa.String(300), default="")
    # None: not composed yet. Written with the message in one transaction: the claim against a second send.
    outcome: Mapped[str | None] = mapped_column(sa.String(10))
    message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("message.id", ondelete="SET NULL"), unique=True
    )
    reason: Mapped[str | None] = mapped_column(sa.Text)
    # The preview's line: the text as they read it, its cost, and when quiet hours move it to.
    text: Mapped[str | None] = mapped_column(sa.Text)
    segments: Mapped[int] = mapped_column(default=0)
    credits: Mapped[int] = mapped_column(default=0)
    morning_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    batch: Mapped[Batch] = relationship()
    message: Mapped[Message | None] = relationship()
