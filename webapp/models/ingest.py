"""Provider webhooks stored before they are processed (webapp.messaging.ingest)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime


class WebhookEvent(Base):
    """A verified webhook's body, stored and committed before the provider is answered, deleted in the
    transaction that processes it. One row per distinct body: the provider's retry of a webhook not yet
    processed stores nothing more (after processing, the message's own uniqueness answers it)."""

    __tablename__ = "webhook_event"
    __table_args__ = (
        sa.UniqueConstraint("provider", "kind", "body_sha256", name="uq_webhook_event_body"),
        sa.Index("ix_webhook_event_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(10))  # "inbound" or "status"
    body: Mapped[str] = mapped_column(sa.Text)
    body_sha256: Mapped[str] = mapped_column(sa.String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Failed processings so far, and the last one's reason (for an operator); the sweep stops at a limit.
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
