"""What a message costs, in credits: the one place for prices."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webapp.models import Organization

if TYPE_CHECKING:
    from webapp.messaging.segments import SegmentCount


def credits_for(channel: str, segments: int, organization: Organization) -> int:
    """SMS: one credit per segment. WhatsApp: the organisation's price per message. Email: free."""
    if channel == "sms":
        return segments
    if channel == "whatsapp":
        return organization.whatsapp_price
    if channel == "email":
        return 0
    raise ValueError(f"unknown channel {channel!r}")


def message_credits(channel: str, count: SegmentCount | None, organization: Organization) -> int:
    """What one message costs from its SMS count (None on the other channels: one message)."""
    return credits_for(channel, count.segments if count else 1, organization)
