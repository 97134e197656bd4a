"""Credits: one account on the top organisation, and the ledger that explains every change to it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.organization import Organization
    from webapp.models.user import User

TRANSACTION_KINDS = ("top_up", "debit", "refund")


class CreditAccount(Base):
    __tablename__ = "credit_account"
    __table_args__ = (sa.CheckConstraint("balance >= 0", name="balance_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Always the top (parent) organisation: its sub-organisations share it.
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"), unique=True)
    balance: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CreditTransaction(Base):
    """One change of a balance. The balance always equals the sum of its ledger."""

    __tablename__ = "credit_transaction"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('top_up', 'debit', 'refund')", name="kind_known"),
        # A message is debited once and refunded at most once.
        sa.UniqueConstraint("message_id", "kind"),
        sa.Index("ix_credit_transaction_account_at", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("credit_account.id"))
    kind: Mapped[str] = mapped_column(sa.String(10))
    amount: Mapped[int]  # signed: top-ups and refunds add, debits subtract
    balance_after: Mapped[int]
    message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("message.id"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefillRequest(Base):
    """An admin asked customer success for credits; open until staff refill the account."""

    __tablename__ = "refill_request"
    __table_args__ = (sa.Index("ix_refill_request_open", "handled_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The top organisation: the one whose balance is refilled.
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    transaction_id: Mapped[int | None] = mapped_column(sa.ForeignKey("credit_transaction.id"))

    organization: Mapped[Organization] = relationship()
    requested_by: Mapped[User | None] = relationship(foreign_keys=[requested_by_id])
    handled_by: Mapped[User | None] = relationship(foreign_keys=[handled_by_id])
