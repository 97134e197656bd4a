"""The organisation's pool of sending numbers."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from webapp import phones
from webapp.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.organization import Organization

# Only `active` numbers are routed to (webapp.messaging.compose.sender_number). A number in a country
# whose carriers ask for proof of business waits in `pending_documents` until its organisation's
# submission for that country is approved; `suspended` stops it for a while (by staff, or because the
# approval was withdrawn or expired); `released` gives it back to the provider's account for good. The row
# stays, so that old conversations and replies still find the number they used.
NUMBER_STATUSES = ("active", "pending_documents", "suspended", "released")
STATUS_LABELS = {
    "active": "Active",
    "pending_documents": "Pending documents",
    "suspended": "Suspended",
    "released": "Released",
}
# Why a number is suspended: staff stopped it by hand (only staff start it again), or its country's
# compliance approval was withdrawn or expired (a new approval starts it again).
SUSPENSIONS = ("staff", "compliance")


def _configured_provider() -> str:
    """A new number belongs to the provider the app sends through, unless it is told otherwise."""
    from flask import current_app, has_app_context

    return str(current_app.config["MESSAGING_PROVIDER"]) if has_app_context() else "simulator"


class SendingNumber(Base):
    __tablename__ = "sending_number"
    __table_args__ = (
        sa.Index("ix_sending_number_org_country", "organization_id", "country"),
        sa.CheckConstraint(
            "status IN ('active', 'pending_documents', 'suspended', 'released')", name="status_known"
        ),
        sa.CheckConstraint("(status = 'suspended') = (suspension IS NOT NULL)", name="suspended_says_why"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"))
    # E.164 with the +; a number belongs to one customer only, released or not (its conversations keep it).
    e164: Mapped[str] = mapped_column(sa.String(16), unique=True)
    country: Mapped[str] = mapped_column(sa.String(2))
    sms: Mapped[bool] = mapped_column(default=True)
    whatsapp: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    suspension: Mapped[str | None] = mapped_column(sa.String(20))
    # The texting provider whose account holds the number and that carries what is sent from it: a name
    # of the registry (webapp.providers.registry), as in the number's webhook URLs.
    provider: Mapped[str] = mapped_column(sa.String(40), default=_configured_provider)
    # Spreads new conversations over the numbers of one country (least recently used first).
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Health (webapp.numbers.health): set when the number went over its daily guidance or past the
    # failure threshold. It then takes no new conversations (its conversations keep it, so replies
    # thread), until staff let it take them again; `paused_at` stays off the status on purpose, since a
    # number that is not active loses its conversations to routing.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(sa.String(200))
    # The UTC day staff let it take new conversations again: not paused again for that day's figures.
    let_in_on: Mapped[date | None] = mapped_column(sa.Date)

    organization: Mapped[Organization] = relationship()

    @validates("e164")
    def _normalise(self, key: str, value: str) -> str:
        e164 = phones.normalise(value)
        # Numbers that belong to no region (+800, +882 …) keep the country chosen for them.
        region = phones.country_of(e164)
        if region and len(region) == 2 and region.isalpha():
            self.country = region
        elif self.country is None:
            self.country = ""
        return e164

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def capabilities(self) -> list[str]:
        return [label for label, on in (("SMS", self.sms), ("WhatsApp", self.whatsapp)) if on]

    def __repr__(self) -> str:
        return f"<SendingNumber {self.e164} {self.country} {self.status}>"
