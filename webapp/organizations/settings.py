"""An organisation's settings (its admins) and entitlements (Relay's staff): the rules for each value.

Each refusal names its field, so that a form says it next to it; the caller rolls back, and nothing of
a refused form is saved.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import time

from webapp import zones
from webapp.billing import credits
from webapp.models import Organization
from webapp.refusals import Refused

# What an organisation with Messaging may switch on: SMS only, WhatsApp only, or both.
CHANNEL_CHOICES = {"sms": "SMS only", "whatsapp": "WhatsApp only", "both": "SMS and WhatsApp"}
SENDER_NAME_LENGTH = 100
HELP_REPLY_LENGTH = 300
MAX_WHATSAPP_PRICE = 1000
# Weekdays as the form offers them: ISO numbers, Monday first.
WEEKDAYS = {"1": "Mon", "2": "Tue", "3": "Wed", "4": "Thu", "5": "Fri", "6": "Sat", "7": "Sun"}
_CLOCK = re.compile(r"([01]?\d|2[0-3])[:.]?([0-5]\d)")
# Characters that reorder the text around them: "Acme \u202emoc.knab" reads as "Acme bank.com".
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


# The highest cap on one bulk message an organisation may set (the batch's preview is built in one request).
MAX_BULK_CAP = 5000


class SettingsRefused(Refused):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, field)


@dataclass(frozen=True)
class Settings:
    sender_name: str
    channels: str | None  # a key of CHANNEL_CHOICES; None when the organisation has no Messaging
    help_reply: str | None  # None: kept as it is (so is it for an organisation that cannot text)
    low_credit_threshold: str | None  # as typed; None: kept (a sub-organisation: the parent's counts)
    time_zone: str
    # The organisation's hours for texts, as typed ("08:00"), and the ISO weekdays ticked ("1" … "7");
    # None: kept as they are (an organisation that cannot text is not asked).
    send_from: str | None = None
    send_until: str | None = None
    send_days: list[str] | None = None
    # The most people one bulk message may go to, as typed; None: kept.
    bulk_cap: str | None = None


def channel_choice(org: Organization) -> str:
    if org.sms_enabled and org.whatsapp_enabled:
        return "both"
    return "whatsapp" if org.whatsapp_enabled else "sms"


def _whole_number(text: str | None, field: str, low: int, high: int, what: str) -> int:
    value = (text or "").strip()
    if not value.isascii() or not value.lstrip("-").isdigit() or len(value) > 12:
        raise SettingsRefused(f"Enter {what} as a whole number, like {max(low, 1) * 50}.", field)
    number = int(value)
    if not low <= number <= high:
        raise SettingsRefused(f"Enter a number from {low} to {high}.", field)
    return number


def sender_name(text: str) -> str:
    """The name candidates see, as the email's display name and %SENDERNAME%: one line of visible text.
    (The email's From header is built by the header registry whatever it holds; this keeps out what a
    reader would not see as typed.)"""
    sender = text.strip()
    if not sender:
        raise SettingsRefused("Enter the name candidates see, e.g. your company's name.", "sender_name")
    if len(sender) > SENDER_NAME_LENGTH:
        raise SettingsRefused(
            f"The name is {len(sender)} characters long; at most {SENDER_NAME_LENGTH} fit.", "sender_name"
        )
    for char in sender:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            raise SettingsRefused(
                "Keep the name on one line, without tabs or invisible control characters.", "sender_name"
            )
    if "=?" in sender:
        # How email writes encoded text (RFC 2047): mail programs would show something else than typed.
        raise SettingsRefused("The name cannot contain “=?”.", "sender_name")
    return sender


def clock(text: str | None, field: str) -> time:
    """A time of day as typed: "08:00", "8:00", "0800", "20.30"."""
    match = _CLOCK.fullmatch((text or "").strip())
    if match is None:
        raise SettingsRefused("Enter a time of day in 24-hour form, like 08:00 or 20:30.", field)
    return time(int(match.group(1)), int(match.group(2)))


def send_hours(start: str | None, end: str | None, days: list[str] | None) -> tuple[time, time, str]:
    """The organisation's own window for texts, read on the recipient's clock: (from, until, "12345")."""
    begins, ends = clock(start, "send_from"), clock(end, "send_until")
    if not begins < ends:
        raise SettingsRefused(
            f"End after the start ({begins:%H:%M}), on the same day: texts go from the start until the end "
            "of one day, so a window over midnight cannot be set.",
            "send_until",
        )
    ticked = set(days or ())
    if not ticked:
        raise SettingsRefused("Tick at least one day texts may go.", "send_days")
    if not ticked <= WEEKDAYS.keys():
        raise SettingsRefused("Tick days from the list.", "send_days")
    return begins, ends, "".join(sorted(ticked))


def update(org: Organization, values: Settings) -> None:
    sender = sender_name(values.sender_name)
    if values.channels is not None and org.has_messaging and values.channels not in CHANNEL_CHOICES:
        raise SettingsRefused("Choose SMS only, WhatsApp only, or both.", "channels")
    # An organisation that cannot text is not asked for the HELP reply or the low-credit threshold (it
    # gets no texts and spends no credits): what it had is kept.
    texts = org.texts
    help_reply = org.help_reply if values.help_reply is None or not texts else values.help_reply.strip()
    if len(help_reply) > HELP_REPLY_LENGTH:
        raise SettingsRefused(
            f"The reply is {len(help_reply)} characters long; at most {HELP_REPLY_LENGTH} fit.", "help_reply"
        )
    threshold = None
    if org.parent_id is None and texts and values.low_credit_threshold is not None:
        threshold = _whole_number(
            values.low_credit_threshold, "low_credit_threshold", 0, credits.MAX_BALANCE, "the threshold"
        )
    bulk_cap = None
    if values.bulk_cap is not None:
        bulk_cap = _whole_number(values.bulk_cap, "bulk_cap", 1, MAX_BULK_CAP, "the limit")
    hours = None
    if texts and None not in (values.send_from, values.send_until, values.send_days):
        hours = send_hours(values.send_from, values.send_until, values.send_days)
    if not zones.is_known(values.time_zone):
        raise SettingsRefused(
            "Choose a time zone from the list, e.g. Europe/Berlin or America/New_York.", "time_zone"
        )
    org.sender_name = sender
    if values.channels is not None and org.has_messaging:
        org.sms_enabled = values.channels in ("sms", "both")
        org.whatsapp_enabled = values.channels in ("whatsapp", "both")
    org.help_reply = help_reply
    if threshold is not None:
        org.low_credit_threshold = threshold
    org.time_zone = values.time_zone
    if bulk_cap is not None:
        org.bulk_cap = bulk_cap
    if hours is not None:
        org.send_from, org.send_until, org.send_days = hours


def set_entitlements(org: Organization, messaging: bool, crm: bool, whatsapp_price: str) -> None:
    """Staff: the products an organisation has bought, and its WhatsApp price in credits."""
    price = _whole_number(whatsapp_price, "whatsapp_price", 0, MAX_WHATSAPP_PRICE, "the price")
    org.has_messaging = messaging
    org.has_crm = crm
    org.whatsapp_price = price
    if messaging and not (org.sms_enabled or org.whatsapp_enabled):
        # Bought Messaging but nothing switched on yet: start with SMS; its admins choose.
        org.sms_enabled = True
