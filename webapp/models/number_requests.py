"""An administrator's request for a sending number, and how customer success fulfils it
(webapp.numbers.number_requests)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.numbers import SendingNumber
    from webapp.models.organization import Organization
    from webapp.models.user import User

# open: nobody has looked yet · offered: staff searched and the provider has numbers for it · done: a
# number was bought, linked and put in the pool (number_id) · declined: staff said no, and why.
REQUEST_STATES = ("open", "offered", "done", "declined")
STATE_LABELS = {
    "open": "Open",
    "offered": "Numbers found",
    "done": "Done",
    "declined": "Declined",
}
# Why the administrator asks: the first number of a country, more numbers for the volume, or in words.
REASONS = {"new_country": "A new country", "volume": "More volume", "other": "Something else"}


class NumberRequest(Base):
    __tablename__ = "number_request"
    __table_args__ = (
        sa.Index("ix_number_request_state", "state", "created_at"),
        sa.CheckConstraint("state IN ('open', 'offered', 'done', 'declined')", name="state_known"),
        sa.CheckConstraint("reason IN ('new_country', 'volume', 'other')", name="reason_known"),
        sa.CheckConstraint("sms OR whatsapp", name="sends_something"),
        sa.CheckConstraint("(state = 'declined') = (decline_reason IS NOT NULL)", name="declined_says_why"),
        sa.CheckConstraint("state != 'done' OR number_id IS NOT NULL", name="done_has_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"), index=True)
    country: Mapped[str] = mapped_column(sa.String(2))
    sms: Mapped[bool] = mapped_column(default=True)
    whatsapp: Mapped[bool] = mapped_column(default=False)
    # Preferences for a best match, all optional: an area code as dialled in the country ("030"), a region
    # or city in words, a prefix of the number (national "030 12" or international "+49 30 12").
    area_code: Mapped[str | None] = mapped_column(sa.String(10))
    locality: Mapped[str | None] = mapped_column(sa.String(100))
    prefix: Mapped[str | None] = mapped_column(sa.String(20))
    reason: Mapped[str] = mapped_column(sa.String(20))
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    state: Mapped[str] = mapped_column(sa.String(20), default="open")
    decline_reason: Mapped[str | None] = mapped_column(sa.String(500))
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A purchase in progress: who holds the request and since when. Taken by one conditional UPDATE, so
    # two staff buying at once buy one number; a claim older than the lease is free again (the process
    # that held it died between the provider's answer and ours).
    claimed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The number bought for it (E.164), before it is linked and pooled: a purchase cannot be undone, so
    # it is recorded as soon as the provider sells it, and a failed link is retried from here.
    bought_e164: Mapped[str | None] = mapped_column(sa.String(16))
    bought_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    linked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    number_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sending_number.id"))
    # Who finished it (done or declined), and when.
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organization: Mapped[Organization] = relationship()
    requested_by: Mapped[User | None] = relationship(foreign_keys=[requested_by_id])
    claimed_by: Mapped[User | None] = relationship(foreign_keys=[claimed_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    number: Mapped[SendingNumber | None] = relationship()

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)

    @property
    def reason_label(self) -> str:
        return REASONS.get(self.reason, self.reason)

    @property
    def capabilities(self) -> list[str]:
        return [label for label, on in (("SMS", self.sms), ("WhatsApp", self.whatsapp)) if on]

    @property
    def waiting_for_link(self) -> bool:
        """Bought, but not yet linked and pooled: staff retry the link."""
        return self.bought_e164 is not None and self.state not in ("done", "declined")

    def __repr__(self) -> str:
        return f"<NumberRequest {self.id} {self.country} {self.state}>"
