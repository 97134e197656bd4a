"""What the provider tells us, as plain values: a message someone sent us, and a status report.

The webhooks parse Vonage's JSON into these (webapp/webhooks/payloads.py); the way in
(webapp.messaging.inbound, status) takes them, knowing nothing of HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Inbound:
    message_uuid: str
    channel: str
    sender: str  # E.164 with +
    recipient: str  # E.164 with +: one of our numbers, we hope
    text: str
    timestamp: datetime
    profile_name: str | None = None


@dataclass(frozen=True)
class StatusReport:
    message_uuid: str
    status: str
    timestamp: datetime
    client_ref: str | None = None
    error_code: str | None = None
    error_title: str | None = None
    error_detail: str | None = None
