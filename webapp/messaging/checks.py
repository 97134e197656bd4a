"""The checks before a message may go, in the order compose runs them, each with its own clear message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from webapp import phones, zones
from webapp.accounts import access, permissions
from webapp.messaging import segments
from webapp.messaging.facts import Facts
from webapp.messaging.subjects import Subject
from webapp.models import CHANNEL_LABELS, Candidate, Prospect, User
from webapp.refusals import Refused

MAX_SMS_SEGMENTS = 10
MAX_WHATSAPP_CHARACTERS = 4096
MAX_EMAIL_CHARACTERS = 50_000
MAX_SUBJECT_CHARACTERS = 300
PRODUCT_NAMES = {"messaging": "Messaging", "crm": "CRM"}
# How far ahead a message may be scheduled.
MAX_SCHEDULE_AHEAD = timedelta(days=365)


class SendRefused(Refused):
    """Why this message may not go."""


def _right(about: Subject | None) -> str:
    return about.texting_permission if about is not None else permissions.RECRUITMENT_SMS


def _products(about: Subject | None) -> tuple[str, ...]:
    return about.texting_products if about is not None else ("messaging",)


def allowed_channels(user: User, about: Subject | None = None) -> list[str]:
    """The channels this user may write on about this subject (a candidate's application when None):
    email always, SMS/WhatsApp with the subject's right and products."""
    org = user.organization
    if org is None:
        return []
    texting = access.has_permission(user, _right(about)) and all(org.has_product(p) for p in _products(about))
    return [c for c in org.channels if c == "email" or texting]


def missing_right(user: User, about: Subject | None = None) -> str | None:
    """The sentence the composer shows when the organisation texts but this user may not."""
    org = user.organization
    if org is None or not org.texts:
        return None
    code = _right(about)
    if access.has_permission(user, code):
        return None
    spec = next(p for p in permissions.CATALOGUE if p.code == code)
    return (
        f"Sending SMS or WhatsApp needs the permission “{spec.name}” ({spec.category}). "
        "Ask an administrator for it."
    )


def not_ours(user: User, about: Subject) -> str | None:
    """Why the user may read but never write in this conversation (a sub-organisation's, which its
    parent's administrators see in their Inbox: its own teams write in it, under its name), or None."""
    org = user.organization
    if org is None or about.organization.id != org.id:
        return (
            f"This conversation belongs to {about.organization.name}: you can read it, and its own team "
            "writes in it."
        )
    return None


def check_sender(
    session: Session, user: User, about: Subject, channel: str, facts: Facts | None = None
) -> None:
    """Tenant, team, right, entitlement, channel enabled. `facts`: what was read already (a batch's)."""
    org = user.organization
    if org is None or not_ours(user, about):
        raise SendRefused("This conversation belongs to another organisation.")
    if about.kind == "membership" and not org.has_product("crm"):
        raise SendRefused("Your organisation does not have CRM, so prospects cannot be written to.")
    if not (facts or Facts(session)).may_write(user, about):
        raise SendRefused(f"Only the {about.team} can write to {about.people}.")
    if about.membership is not None and about.membership.removed_at is not None:
        raise SendRefused(
            f"{about.contact.full_name} was removed from {about.title}. Add them to the community again "
            "to write to them."
        )
    if channel not in CHANNEL_LABELS:
        raise SendRefused("Choose SMS, WhatsApp or email.", "channel")
    if channel == "email":
        return
    label = CHANNEL_LABELS[channel]
    if not access.has_permission(user, about.texting_permission):
        raise SendRefused(missing_right(user, about) or "You may not send SMS or WhatsApp.", "channel")
    for product in about.texting_products:
        if not org.has_product(product):
            name = PRODUCT_NAMES[product]
            raise SendRefused(
                f"Your organisation does not have {name}, so {label} is not available.", "channel"
            )
    if not org.channel_enabled(channel):
        raise SendRefused(f"{label} is not switched on for your organisation.", "channel")


@dataclass(frozen=True)
class Unreachable:
    """Why a channel cannot reach a person: the refusal in full, and in a few words (for the composer's
    "By email: Felix opted out of texts")."""

    message: str
    short: str


def unreachable(
    session: Session, contact: Candidate | Prospect, channel: str, facts: Facts | None = None
) -> Unreachable | None:
    """Why this channel cannot reach the recipient (no address, opted out), or None when it can."""
    name, first = contact.full_name, contact.first_name
    if channel == "email":
        if not contact.email:
            return Unreachable(f"{name} has no email address.", f"{first} has no email address")
        return None
    if not contact.mobile:
        return Unreachable(f"{name} has no mobile number.", f"{first} has no mobile number")
    opt_out = (facts or Facts(session)).opt_out(contact.organization_id, contact.mobile)
    if opt_out is not None:
        return Unreachable(
            f"{phones.display(contact.mobile)} has opted out of texts from your organisation "
            f"(since {opt_out.created_at:%d %b %Y}). "
            "It cannot receive SMS or WhatsApp until it opts in again.",
            f"{first} opted out of texts",
        )
    return None


def check_recipient(
    session: Session, contact: Candidate | Prospect, channel: str, facts: Facts | None = None
) -> None:
    """The recipient can be reached on this channel and has not opted out."""
    found = unreachable(session, contact, channel, facts)
    if found is not None:
        raise SendRefused(found.message, "channel")


def recipient_refusal(session: Session, contact: Candidate | Prospect, channel: str) -> str | None:
    """Why check_recipient would refuse this channel, for the composer to say before Send; else None."""
    found = unreachable(session, contact, channel)
    return found.message if found else None


def check_body(channel: str, text: str, subject: str | None = None) -> segments.SegmentCount | None:
    """A non-empty text within the channel's limit; for SMS, its segment count."""
    if not text.strip():
        raise SendRefused("Write a message.", "body")
    if channel == "sms":
        count = segments.count(text)
        if count.segments > MAX_SMS_SEGMENTS:
            raise SendRefused(
                f"This SMS would be {count.segments} segments; the limit is {MAX_SMS_SEGMENTS}. Shorten it.",
                "body",
            )
        return count
    if channel == "whatsapp" and len(text) > MAX_WHATSAPP_CHARACTERS:
        raise SendRefused(
            f"A WhatsApp message holds at most {MAX_WHATSAPP_CHARACTERS:,} characters; this one has "
            f"{len(text):,}.",
            "body",
        )
    if channel == "email":
        if len(text) > MAX_EMAIL_CHARACTERS:
            raise SendRefused(f"An email holds at most {MAX_EMAIL_CHARACTERS:,} characters.", "body")
        if not (subject or "").strip():
            raise SendRefused("Give the email a subject.", "subject")
        if len(subject or "") > MAX_SUBJECT_CHARACTERS:
            raise SendRefused(f"Keep the subject under {MAX_SUBJECT_CHARACTERS} characters.", "subject")
    return None


def check_whatsapp_window(window_open: bool, using_template: bool) -> None:
    """Free text only inside the 24-hour window the candidate's last WhatsApp message opened."""
    if not window_open and not using_template:
        raise SendRefused(
            "Outside the 24-hour window: WhatsApp allows free text only within 24 hours of the "
            "candidate's last WhatsApp message. Send an approved WhatsApp template instead.",
            "whatsapp_template_id",
        )


def check_send_at(send_at: datetime, now: datetime) -> datetime:
    """A time to send a message later: aware, in the future, within MAX_SCHEDULE_AHEAD; in UTC."""
    if send_at.tzinfo is None:
        raise ValueError("naive datetime given for send_at; give it in UTC")
    if send_at <= now:
        raise SendRefused("That time has passed: pick a time in the future, or send it now.", "send_at")
    if send_at > now + MAX_SCHEDULE_AHEAD:
        raise SendRefused("A message can be scheduled at most a year ahead.", "send_at")
    return send_at.astimezone(UTC)


def check_whatsapp_window_at(
    window_ends_at: datetime | None,
    send_at: datetime,
    using_template: bool,
    zone: str | None,
    *,
    moved: bool = False,
    overridable: bool = False,
) -> None:
    """Free text scheduled for later must leave while the 24-hour window is still open (checked again
    when it leaves: webapp.messaging.scheduled). `moved`: the time is not one the writer picked but the
    recipient's next allowed moment (written in their closed hours), so an earlier time is no way out;
    `overridable`: a reason could send it now (only the organisation's hours held it)."""
    if using_template or (window_ends_at is not None and send_at < window_ends_at):
        return
    closes = zones.format_time(window_ends_at, zone, "%a %d %b %H:%M") if window_ends_at else None
    if moved:
        now_instead = ", or give a reason under Send later to send it now" if overridable else ""
        raise SendRefused(
            (f"Their hours open after the WhatsApp window closes ({closes}). " if closes else "")
            + f"Send an approved WhatsApp template instead{now_instead}.",
            "send_at",
        )
    raise SendRefused(
        (f"The WhatsApp window closes {closes}, before this would leave. " if closes else "")
        + "Pick an earlier time, or send an approved WhatsApp template instead.",
        "send_at",
    )
