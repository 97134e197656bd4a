"""What every provider takes and how it fails: the contract between dispatch and the providers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Outbound:
    """One message ready to leave: the rendered text, from one of our numbers (or our sender name)."""

    message_id: int | None  # None: an email of Relay's own to a colleague (an invitation), not a Message
    channel: str  # "sms" | "whatsapp" | "email"
    to: str  # E.164 with the + for sms/whatsapp; an email address for email
    sender: str  # E.164 with the + for sms/whatsapp; the company's sender name for email
    body: str
    subject: str | None = None  # email only
    reply_to: str | None = None  # email only
    # WhatsApp outside the 24-hour window: an approved template, its locale and its parameter values.
    template_name: str | None = None
    template_locale: str | None = None
    template_parameters: tuple[str, ...] = ()


class ProviderError(Exception):
    """A send that did not go through. `title`/`detail` are the provider's own words, shown to users."""

    def __init__(self, title: str, detail: str = "", code: str | None = None) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.title = title
        self.detail = detail
        self.code = code


class Rejected(ProviderError):
    """Permanent: the provider refused this message (4xx). No retry; the credits go back."""


class TemporaryFailure(ProviderError):
    """Certainly not accepted, worth trying again: rate limited (429), no connection at all (refused, DNS,
    TLS handshake, connect timeout). Nothing reached the provider, so a retry cannot make a second copy."""


class OutcomeUnknown(ProviderError):
    """The request may have reached the provider, which may have accepted it: a timeout while waiting
    for the answer, a 5xx, a connection dropped after the request was written. Never resent blindly:
    the provider's status report (which carries our client_ref) settles it."""


class Provider(Protocol):
    def send(self, outbound: Outbound) -> str:
        """Hand the message over; return the provider's id for it (Vonage's message_uuid).

        Raises Rejected, TemporaryFailure or OutcomeUnknown; never retries by itself (dispatch owns
        retries, and only after a TemporaryFailure).
        """
        ...

    def close(self) -> None:
        """Let go of connections and timers (the registry calls it at shutdown and between tests)."""
        ...
