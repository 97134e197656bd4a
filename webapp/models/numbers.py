"""The organisation's pool of sending numbers."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, validates

from webapp import phones
from webapp.models.base import Base, UTCDateTime, utcnow


class SendingNumber(Base):
    __tablename__ = "sending_number"
    __table_args__ = (
        sa.Index("ix_sending_number_org_country", "organization_id", "country"),
        sa.CheckConstraint("status IN ('active', 'pending', 'disabled')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"))
    # E.164 with the +; a number belongs to one customer only.
    e164: Mapped[str] = mapped_column(sa.String(16), unique=True)
    country: Mapped[str] = mapped_column(sa.String(2))
    sms: Mapped[bool] = mapped_column(default=True)
    whatsapp: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    # Spreads new conversations over the numbers of one country (least recently used first).
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @validates("e164")
    def _normalise(self, key: str, value: str) -> str:
        e164 = phones.normalise(value)
        self.country = phones.country_of(e164) or ""
        return e164

    def __repr__(self) -> str:
        return f"<SendingNumber {self.e164} {self.country}>"
