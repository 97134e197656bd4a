"""Number health (issue 23 §2): a daily rollup of what each sending number sent, what failed (by error
code) and who opted out through it; the figures the health pages sort by; and the notices sent.

The rollup is written by the clock (webapp.numbers.health.refresh), never by the way of a message: see
that module for why.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utcnow


class NumberDay(Base):
    """One number's day (UTC): messages it sent (SMS and WhatsApp; `sms` of them by SMS), how many of
    those failed, and the opt-outs (STOPs) that reached it."""

    __tablename__ = "number_day"

    number_id: Mapped[int] = mapped_column(sa.ForeignKey("sending_number.id"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    sent: Mapped[int] = mapped_column(default=0)
    sms: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    opt_outs: Mapped[int] = mapped_column(default=0)


class NumberDayFailure(Base):
    """The failures of one number's day by error code (the provider's; "" when it gave none)."""

    __tablename__ = "number_day_failure"

    number_id: Mapped[int] = mapped_column(sa.ForeignKey("sending_number.id"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    error_code: Mapped[str] = mapped_column(sa.String(50), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class NumberHealth(Base):
    """A number's figures as of `computed_at`, one row per number: what the health pages read and sort
    by (a page never adds up days itself)."""

    __tablename__ = "number_health"
    __table_args__ = (sa.Index("ix_number_health_share", "share", "number_id"),)

    number_id: Mapped[int] = mapped_column(sa.ForeignKey("sending_number.id"), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    day: Mapped[date] = mapped_column(sa.Date)  # the UTC day "today" refers to
    sms_today: Mapped[int] = mapped_column(default=0)
    guidance: Mapped[int] = mapped_column(default=0)  # SMS per day: the country's, or the customer's cap
    share: Mapped[float] = mapped_column(sa.Float, default=0.0)  # sms_today / guidance
    sent_7d: Mapped[int] = mapped_column(default=0)
    failed_7d: Mapped[int] = mapped_column(default=0)
    failure_rate: Mapped[float] = mapped_column(sa.Float, default=0.0)  # failed_7d / sent_7d
    sent_30d: Mapped[int] = mapped_column(default=0)
    opt_outs_30d: Mapped[int] = mapped_column(default=0)
    opt_out_rate: Mapped[float] = mapped_column(sa.Float, default=0.0)  # opt_outs_30d / sent_30d
    # The commonest error codes of those 7 days with their counts, most first: "1320:6 1240:5".
    failure_codes: Mapped[str] = mapped_column(sa.String(300), default="")


NOTICE_KINDS = ("near_guidance", "paused")


class NumberNotice(Base):
    """What admins and staff were told about a number on a day (UTC): at most one of each kind per
    number and day, claimed by its insert before its email leaves (two clocks at once send one)."""

    __tablename__ = "number_notice"
    __table_args__ = (
        sa.UniqueConstraint("number_id", "day", "kind"),
        sa.CheckConstraint("kind IN ('near_guidance', 'paused')", name="kind_known"),
        sa.Index("ix_number_notice_day", "day", "number_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number_id: Mapped[int] = mapped_column(sa.ForeignKey("sending_number.id"))
    day: Mapped[date] = mapped_column(sa.Date)
    kind: Mapped[str] = mapped_column(sa.String(20))
    detail: Mapped[str] = mapped_column(sa.String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_error: Mapped[str | None] = mapped_column(sa.String(300))
