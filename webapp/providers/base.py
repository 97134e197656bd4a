"""The port: what Relay asks of a texting provider, and what comes back, in Relay's own types.

A provider sends (`send`), tells its webhooks from forgeries (`verify`), reads them (`parse_inbound`,
`parse_status`) and keeps a numbers account (list the numbers owned, search for available ones, buy
one, link it to our application). Dispatch, the webhook routes and the staff pages know this module,
never a provider's own API: they find a provider through `webapp.providers.registry`, by the name a
sending number records. SMTP is the email provider and only sends (`Sender`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
    # Email only: more headers, as (name, value) pairs (List-Unsubscribe on a notification of Relay's own).
    headers: tuple[tuple[str, str], ...] = ()
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
    TLS handshake, connect timeout). Nothing reached the provider, so a retry cannot make a second copy.
    `retry_after`: the seconds the provider asked us to wait (a 429's Retry-After), if it said."""

    def __init__(
        self, title: str, detail: str = "", code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(title, detail, code)
        self.retry_after = retry_after


class OutcomeUnknown(ProviderError):
    """The request may have reached the provider, which may have accepted it: a timeout while waiting
    for the answer, a 5xx, a connection dropped after the request was written. Never resent blindly:
    the provider's status report (which carries our client_ref) settles it."""


# --- What the webhooks tell us ---------------------------------------------------------------------


@dataclass(frozen=True)
class InboundMessage:
    """A message someone sent to one of our numbers."""

    message_uuid: str  # the provider's id for it: a second delivery of the same id changes nothing
    channel: str  # "sms" | "whatsapp"
    sender: str  # E.164 with +
    recipient: str  # E.164 with +: one of our numbers, we hope
    text: str
    timestamp: datetime
    profile_name: str | None = None


@dataclass(frozen=True)
class StatusReport:
    """What became of a message we sent: found by the provider's id, or by ours (`client_ref`)."""

    message_uuid: str
    status: str  # submitted | delivered | read | rejected | undeliverable
    timestamp: datetime
    client_ref: str | None = None
    error_code: str | None = None
    error_title: str | None = None
    error_detail: str | None = None


@dataclass(frozen=True)
class Pace:
    """How fast a provider lets us send, as it says (webapp.messaging.pacing keeps to it): the setting
    that gives its account's requests a second, and SMS a second per long number by the number's
    country where it sets one. A provider module declares it as `PACE`; one without is not paced."""

    account_rate_setting: str
    per_number_by_country: Mapping[str, float] = field(default_factory=dict)


class BadPayload(ValueError):
    """A signed webhook body that is not one the provider sends; the message is the short reason the
    webhook answers with its 400 (and nothing is stored)."""


# --- The numbers account ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnedNumber:
    """A number the provider's account holds (in a pool of ours or not yet)."""

    e164: str
    country: str  # ISO 3166 alpha-2
    features: tuple[str, ...]  # the provider's words, upper case: "SMS", "VOICE", "MMS"
    type: str

    @property
    def sms(self) -> bool:
        return "SMS" in self.features


@dataclass(frozen=True)
class AvailableNumber:
    """A number the provider offers to buy."""

    e164: str
    country: str
    features: tuple[str, ...]
    type: str
    monthly_cost: str | None = None  # as the provider words it (euros, as text, for some)


class NumbersUnavailable(RuntimeError):
    """The account cannot answer now; the message says why, in words for the staff page.

    `set_up` is False when the account is not configured at all (a missing key), rather than failing."""

    def __init__(self, message: str, *, set_up: bool = True) -> None:
        super().__init__(message)
        self.set_up = set_up


class NumberNotBought(RuntimeError):
    """The provider would not sell this number (taken meanwhile, not for sale, no balance): why, in words."""


class NumberNotLinked(RuntimeError):
    """The provider would not point this (owned) number at our application: why, in words. The number
    stays bought; linking it again is safe (it sets the same application again)."""


# How `search` matches its pattern against the number's digits (E.164 without the +), as the providers'
# numbers APIs take it (the Numbers API's `search_pattern`).
STARTS_WITH, CONTAINS, ENDS_WITH = 0, 1, 2


def matches_pattern(e164: str, pattern: str | None, search_pattern: int = STARTS_WITH) -> bool:
    """Whether the number's digits (E.164 without the +) match the pattern as a numbers API's search
    does: start with it, contain it or end with it."""
    if not pattern:
        return True
    digits = e164.lstrip("+")
    if search_pattern == CONTAINS:
        return pattern in digits
    return digits.endswith(pattern) if search_pattern == ENDS_WITH else digits.startswith(pattern)


class NumbersAccount(Protocol):
    def owned(self) -> list[OwnedNumber]:
        """Every number the account holds, sorted by country and number. Raises NumbersUnavailable."""
        ...

    def search(
        self,
        country: str,
        features: Collection[str] = ("SMS",),
        pattern: str | None = None,
        search_pattern: int = STARTS_WITH,
    ) -> list[AvailableNumber]:
        """Numbers on offer in a country (ISO alpha-2) that have all these features, and whose digits
        (E.164 without the +, so starting with the country's calling code) start with, contain or end
        with `pattern` (search_pattern) when one is given. Raises NumbersUnavailable."""
        ...

    def buy(self, number: AvailableNumber) -> OwnedNumber:
        """Buy a number found by `search`; from then on `owned` lists it. Raises NumberNotBought or
        NumbersUnavailable."""
        ...

    def link(self, number: OwnedNumber) -> None:
        """Point a number the account holds at our application, so that its inbound messages and status
        reports come to our webhooks. Raises NumberNotLinked or NumbersUnavailable."""
        ...


# --- The providers ---------------------------------------------------------------------------------


class Sender(Protocol):
    def send(self, outbound: Outbound) -> str:
        """Hand the message over; return the provider's id for it (its message_uuid).

        Raises Rejected, TemporaryFailure or OutcomeUnknown; never retries by itself (dispatch owns
        retries, and only after a TemporaryFailure).
        """
        ...

    def close(self) -> None:
        """Let go of connections and timers (the registry calls it at shutdown and between tests)."""
        ...


class Provider(Sender, Protocol):
    """A texting provider (SMS and WhatsApp) behind the port. Built by its package's `create(app)`."""

    label: str  # its name in words, for staff ("Simulator")
    numbers: NumbersAccount

    def open(self) -> None:
        """Get ready to send: read keys, build clients. Raises ConfigError for a missing or wrong setting,
        so that dispatch refuses the message before a try, instead of leaving its outcome unknown.
        Cheap once done; the webhooks and the numbers account do not need it."""
        ...

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """True when the webhook request (its headers and exact body) comes from the provider unchanged.
        Logs why not; never raises."""
        ...

    def parse_inbound(self, body: bytes) -> InboundMessage:
        """The inbound-message webhook's body, checked field by field. Raises BadPayload."""
        ...

    def parse_status(self, body: bytes) -> StatusReport:
        """The status webhook's body, checked field by field. Raises BadPayload."""
        ...
