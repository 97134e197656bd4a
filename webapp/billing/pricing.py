"""What a message costs, in credits: the one place for prices."""

from __future__ import annotations

from webapp.models import Organization


def credits_for(channel: str, segments: int, organization: Organization) -> int:
    """SMS: one credit per segment. WhatsApp: the organisation's price per message. Email: free."""
    if channel == "sms":
        return segments
    if channel == "whatsapp":
        return organization.whatsapp_price
    if channel == "email":
        return 0
    raise ValueError(f"unknown channel {channel!r}")
