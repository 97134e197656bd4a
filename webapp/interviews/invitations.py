"""Inviting candidates to interview: the booking link's rules per channel, one invitation (a normal
message of the conversation, through webapp.messaging.compose, so credits, routing, opt-out and the
WhatsApp window all apply), several at once with a result per candidate, and what state each is in.

Plain functions over a session; nothing here knows of the request. The caller has found the
applications through webapp.accounts.access.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from webapp import zones
from webapp.interviews import slots
from webapp.messaging import compose, subjects, templates, unsent
from webapp.messaging.checks import SendRefused
from webapp.messaging.templates import INVITELINK, SAMPLE_BOOKING_PATH, needs_invitelink
from webapp.models import CHANNEL_LABELS, Application, Invitation, Message, User

log = logging.getLogger(__name__)

# An unbooked link books for this long; a booked one lives until its interview starts.
VALID_FOR = timedelta(days=14)
# What an email without the link gets at its end (email has room, and a link is what it is for); the
# link ends the text, so nothing can touch it.
EMAIL_LINK_LINE = "\n\nChoose a time for your interview here: " + INVITELINK
# 16 random bytes: 22 URL-safe characters, as long as the sample link the previews count.
TOKEN_BYTES = 16
# A bulk invitation's line for a candidate whose send failed for a reason no check foresaw.
UNEXPECTED = "Could not be sent: an unexpected error; try again."


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# A booking link in a message's text: PUBLIC_BASE_URL/book/<token> (booking.TOKEN's characters).
_LINK = re.compile(r"https?://\S+?/book/([A-Za-z0-9_-]{16,64})")
# The states of a message that never left: its invitation's link was never read, and books nothing.
NOT_SENT = ("scheduled", "held", "cancelled")


def booking_url(base_url: str, token: str) -> str:
    """What %INVITELINK% renders to: PUBLIC_BASE_URL/book/<token>."""
    return f"{base_url.rstrip('/')}/book/{token}"


def sample_url(base_url: str) -> str:
    """A link as long as a real one, for counting before the token exists."""
    return base_url.rstrip("/") + SAMPLE_BOOKING_PATH


def missing_link(channel: str, body: str) -> str | None:
    """Why this text may not go as an invitation on this channel, or None. The rule itself (SMS and
    WhatsApp invitations carry the link) is the templates' (webapp.messaging.templates)."""
    if INVITELINK in body or not needs_invitelink(channel, "interview_invitation"):
        return None
    return (
        f"An invitation by {CHANNEL_LABELS[channel]} must contain {INVITELINK}: without it the candidate "
        "would get no booking link. “Insert booking link” puts it where the cursor is."
    )


def link_problem(channel: str, body: str, subject: str | None = None) -> SendRefused | None:
    """Why this text may not go as an invitation, naming its field: the link missing (SMS, WhatsApp),
    or glued to the text beside it (the templates' rule, webapp.messaging.templates.glued_invitelink)."""
    missing = missing_link(channel, body)
    if missing:
        return SendRefused(missing, "body")
    glued = templates.link_fixes(body, subject if channel == "email" else None)
    if glued:
        return SendRefused(templates.GLUED, glued[0].field)
    return None


def check_text(channel: str, allowed: Collection[str], body: str, subject: str | None) -> None:
    """SendRefused when the invitation may not go as written, whoever it is for: no channel among those
    the user may send on (`allowed`), or the booking link's problem (`link_problem`). The same for every
    candidate, so a bulk invitation checks it once, before any send."""
    if channel not in allowed:
        raise SendRefused("Choose how to send the invitation.", "channel")
    problem = link_problem(channel, body, subject)
    if problem:
        raise problem


def with_link(channel: str, body: str, subject: str | None = None) -> str:
    """The text to send: refused without the link by SMS or WhatsApp, or with it glued to a word; an
    email gets it added."""
    problem = link_problem(channel, body, subject)
    if problem:
        raise problem
    if INVITELINK not in body and body.strip():
        return body.rstrip() + EMAIL_LINK_LINE
    return body


def check_slots(session: Session, application: Application, now: datetime) -> None:
    if not slots.free(session, application.job_id, now):
        raise SendRefused(
            f"{application.job.title} has no free interview slots to book: add some first.", "slots"
        )


def invite(
    session: Session,
    user: User,
    application: Application,
    channel: str,
    body: str,
    subject: str | None,
    base_url: str,
    now: datetime,
    send_at: datetime | None = None,
    override_reason: str | None = None,
    move_picked: bool = False,
) -> Invitation:
    """Store the invitation and its message (queued, paid) in the caller's transaction; SendRefused
    says why not. The caller commits, then hands invitation.message_id to dispatch. `send_at`,
    `override_reason` and `move_picked` as in compose.compose: a message held to the candidate's
    morning, or written for later, is scheduled, and its link's validity counts from when it leaves.
    An earlier invitation whose message has not left yet is cancelled and refunded with it
    (`withdraw_unsent`)."""
    check_slots(session, application, now)
    text = with_link(channel, body, subject)
    # Before this one is paid for: the earlier message's row, then the credits, in the scheduler's order
    # (it takes a due row, then refunds one it holds), so that the two never wait for each other.
    withdraw_unsent(session, application.id, now)
    token = new_token()
    message = compose.compose(
        session,
        user,
        subjects.of_application(application),
        channel,
        text,
        subject=subject if channel == "email" else None,
        invite_link=booking_url(base_url, token),
        send_at=send_at,
        now=now,
        override_reason=override_reason,
        move_picked=move_picked,
    )
    # One live link per application: an earlier one that holds no slot steps aside, so that a
    # candidate never books twice from two messages. A booked one stays (the candidate keeps their
    # interview if they ignore the new message) until the new link books: booking.book then gives its
    # slot back and replaces it.
    session.execute(
        sa.update(Invitation)
        .where(Invitation.application_id == application.id, Invitation.state.in_(("sent", "cancelled")))
        .values(state="replaced")
    )
    invitation = Invitation(
        application_id=application.id,
        message_id=message.id,
        token_hash=token_hash(token),
        channel=channel,
        state="sent",
        expires_at=valid_until(message, now),
        created_by_id=user.id,
        created_at=now,
    )
    session.add(invitation)
    session.flush()
    return invitation


@dataclass(frozen=True)
class Outcome:
    """One candidate's line of a bulk invitation's report."""

    application: Application
    name: str
    invitation: Invitation | None
    refusal: str | None
    # When it leaves, for one that waits for its time (picked, or the candidate's morning).
    send_at: datetime | None = None

    @property
    def sent(self) -> bool:
        return self.invitation is not None


def invite_many(
    session: Session,
    user: User,
    applications: Iterable[Application],
    channel: str,
    body: str,
    subject: str | None,
    base_url: str,
    now: datetime,
    handed_over: Callable[[int], object],
    send_at: datetime | None = None,
    override_reason: str | None = None,
) -> list[Outcome]:
    """Invite each candidate in a transaction of their own: one refused (opted out, no mobile, no
    credits left…) does not stop the others. Each sent message is handed to `handed_over` (dispatch)
    after its commit. A time picked for all (`send_at`) that is night for some of them moves, for
    those, to their next allowed moment."""
    outcomes = []
    when = {"send_at": send_at, "override_reason": override_reason, "move_picked": True}
    for application in applications:
        name = application.candidate.full_name
        try:
            invitation = invite(session, user, application, channel, body, subject, base_url, now, **when)
            session.commit()
        except SendRefused as refused:
            session.rollback()
            outcomes.append(Outcome(application, name, None, refused.message))
            continue
        except Exception:
            # Anything else (the database refusing a row, a lost connection…) is this candidate's
            # failure only: the ones before are sent already and the ones after may still go, so a
            # 500 here would hide both from the recruiter. Their transaction is undone, nothing paid.
            session.rollback()
            log.exception("bulk invitation: application %s could not be invited", application.id)
            outcomes.append(Outcome(application, name, None, UNEXPECTED))
            continue
        # Stored and paid: sent, whatever the hand-over does (dispatch keeps a queued message for its
        # sweep when the hand-over fails).
        message = session.get(Message, invitation.message_id)
        waits = message.send_at if message is not None and message.status == "scheduled" else None
        if waits is None:  # one that waits is the scheduler's to hand over
            handed_over(invitation.message_id)
        outcomes.append(Outcome(application, name, invitation, None, waits))
    return outcomes


def withdraw_unsent(session: Session, application_id: int, now: datetime) -> list[int]:
    """The earlier invitations that a new one replaces (`invite`) whose message has not left yet: each
    message cancelled and refunded (unsent.withdraw: the conditional UPDATE on `status =
    'scheduled'`), in the caller's transaction, so that it never leaves later with a link that books
    nothing. One the scheduler took meanwhile has left: it stays as it went, replaced as any sent one
    is. The ids cancelled."""
    waiting = session.scalars(
        sa.select(Message)
        .join(Invitation, Invitation.message_id == Message.id)
        .where(
            Invitation.application_id == application_id,
            Invitation.state.in_(("sent", "cancelled")),
            Message.status == "scheduled",
        )
        .order_by(Message.id)
    ).all()
    withdrawn = []
    for message in waiting:
        if unsent.withdraw(
            session,
            message,
            now,
            title="Replaced by a newer invitation",
            note="Scheduled invitation replaced by a newer one before it left",
            code=unsent.REPLACED,
        ):
            withdrawn.append(message.id)
    return withdrawn


def valid_until(message: Message, now: datetime) -> datetime:
    """Until when an unbooked link books: VALID_FOR from when its message leaves (now, or its send_at).
    The one rule, for an invitation written and for one whose message moved."""
    return (message.send_at or now) + VALID_FOR


# --- A scheduled invitation edited (webapp.messaging.scheduled.reschedule) ----------------------------


def of_message(session: Session, message_id: int) -> Invitation | None:
    return session.scalar(sa.select(Invitation).where(Invitation.message_id == message_id))


def link_in(invitation: Invitation, text: str) -> str | None:
    """The invitation's own booking link as it stands in `text` (the token's hash is the invitation's),
    or None."""
    for found in _LINK.finditer(text):
        if token_hash(found.group(1)) == invitation.token_hash:
            return found.group(0)
    return None


def edited_text(invitation: Invitation, channel: str, old_text: str, new_text: str) -> tuple[str, str]:
    """A scheduled invitation's new text, with its booking link as %INVITELINK% for compose to render,
    and that link: the same link (the token is not stored, only its hash, so it is read back from the
    text the message was going to send). Refused, as a new invitation's text is, by SMS or WhatsApp
    without the link or with it glued to a word; an email without it gets it at its end."""
    link = link_in(invitation, old_text)
    if link is None:
        raise SendRefused(
            "This invitation's booking link is not in its text any more: cancel it and invite again.", "body"
        )
    text = new_text.replace(link, INVITELINK)
    if INVITELINK not in text and needs_invitelink(channel, "interview_invitation"):
        raise SendRefused(
            f"Keep the booking link {link} in the text: without it the candidate could not book.", "body"
        )
    return with_link(channel, text), link


def message_moved(session: Session, old_id: int, message: Message, now: datetime) -> None:
    """A scheduled invitation's message was given a new time, or replaced by its edited text (`old_id`
    cancelled): its invitation follows it, in the caller's transaction, and its link books for
    VALID_FOR from the new time."""
    session.execute(
        sa.update(Invitation)
        .where(Invitation.message_id == old_id)
        .values(message_id=message.id, expires_at=valid_until(message, now))
        .execution_options(synchronize_session="fetch")
    )


# --- What state an invitation is in ------------------------------------------------------------------


def is_expired(invitation: Invitation, now: datetime) -> bool:
    return invitation.state in ("sent", "cancelled") and invitation.expires_at <= now


def describe(invitation: Invitation, zone: str | None, now: datetime) -> str:
    """The invitation's state in words, for the team reading in `zone` (the organisation's): an interview
    in person at its place's clock, as the candidate was told, with the team's beside it. One whose
    message has not left (scheduled, held, cancelled) says so: the candidate has no link yet."""
    message = invitation.message
    if message is not None and message.status in NOT_SENT and invitation.state != "booked":
        if message.status == "scheduled" and message.send_at is not None:
            return f"Scheduled for {zones.format_time(message.send_at, zone, '%a %d %b %H:%M')}, not sent yet"
        if message.status == "held":
            return f"Held: not sent ({(message.error_title or 'held when it was due to leave').rstrip('.')})"
        if message.error_code == unsent.REPLACED:
            return "Cancelled before it was sent: replaced by a newer invitation"
        return "Cancelled before it was sent"
    if invitation.state == "booked" and invitation.slot is not None:
        shown = slots.shown(invitation.slot, zone or zones.DEFAULT, "%a %d %b %Y, %H:%M")
        when = shown.when + (f" ({shown.place})" if shown.place and shown.different else "")
        when += f", {shown.also} here" if shown.also else ""
        over = invitation.slot.starts_at <= now
        return f"{'Was booked' if over else 'Booked'} for {when}"
    if invitation.state == "replaced":
        return "Replaced by a newer invitation"
    if is_expired(invitation, now):
        return "Expired without a booking"
    if invitation.state == "cancelled":
        return "Cancelled by the candidate; the link can still book"
    return "Sent, not booked yet"


def for_messages(session: Session, message_ids: Sequence[int]) -> dict[int, Invitation]:
    """The invitations among these messages, by message id (one query, for a thread)."""
    if not message_ids:
        return {}
    found = session.scalars(
        sa.select(Invitation)
        .where(Invitation.message_id.in_(list(message_ids)))
        # Their messages are the thread's, loaded already: each is found in the session, not read again.
        .options(selectinload(Invitation.slot))
    )
    return {i.message_id: i for i in found}


def of_application(session: Session, application_id: int) -> list[Invitation]:
    """The application's invitations, newest first."""
    return list(
        session.scalars(
            sa.select(Invitation)
            .where(Invitation.application_id == application_id)
            .options(
                selectinload(Invitation.slot),
                selectinload(Invitation.created_by),
                selectinload(Invitation.message),
            )
            .order_by(Invitation.id.desc())
        )
    )
