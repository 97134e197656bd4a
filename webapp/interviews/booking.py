"""The candidate's side of an invitation: finding it by its link, booking, rebooking and cancelling a
slot, the confirmation message, the time zone times are shown in, and how often one address and one
link may ask.

Two candidates can never hold the same slot: `invitation.slot_id` is unique, so of two bookings at
once the database lets one commit and refuses the other (IntegrityError), whatever Python checked
before. The link is public, and each confirmation is a paid message: one is sent per real change
(booking the time already held, or cancelling twice, sends nothing) and at most MAX_CONFIRMATIONS per
invitation, counted in the database in the booking's own transaction. Plain functions over a session;
nothing here knows of the request.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp import database, zones
from webapp.billing import credits
from webapp.inbox import changes as activity
from webapp.interviews import invitations, slots
from webapp.messaging import checks, compose, outbox, subjects, whatsapp
from webapp.models import Application, BookingVisit, Conversation, InterviewSlot, Invitation, Message
from webapp.models.interviews import MAX_CONFIRMATIONS
from webapp.refusals import Refused

log = logging.getLogger(__name__)
# What a token from new_token() looks like; anything else is unknown without asking the database.
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


class BookingRefused(Refused):
    """Why that booking could not be made, for the candidate."""


def find(session: Session, token: str) -> Invitation | None:
    if not TOKEN.fullmatch(token or ""):
        return None
    return session.scalar(sa.select(Invitation).where(Invitation.token_hash == invitations.token_hash(token)))


def closed_reason(invitation: Invitation | None, now: datetime) -> str | None:
    """Why the link no longer books — "unknown", "unsent" (its message never left: scheduled, held or
    cancelled before its time), "replaced", "over" (the interview has started) or "expired" — or None
    while it works."""
    if invitation is None:
        return "unknown"
    if invitation.message.status in invitations.NOT_SENT:
        # Nobody was given this link: it books nothing, whoever holds it.
        return "unsent"
    if invitation.state == "replaced":
        return "replaced"
    if invitation.state == "booked" and invitation.slot is not None:
        return "over" if invitation.slot.starts_at <= now else None
    return "expired" if invitation.expires_at <= now else None


def candidate_zone(invitation: Invitation, browser_zone: str | None, fallback: str) -> tuple[str, str]:
    """The zone to show times in, and where it came from: the candidate's number's country when it has
    one zone, else the browser's, else the organisation's."""
    mobile = invitation.application.candidate.mobile
    from_number = zones.for_number(mobile)
    if from_number:
        return from_number, "number"
    if zones.is_known(browser_zone):
        assert browser_zone is not None
        return browser_zone, "browser"
    return fallback, "organisation"


def offered(session: Session, invitation: Invitation, now: datetime) -> list[InterviewSlot]:
    """What the candidate may pick: the job's free slots to come (their own, if booked, is shown apart)."""
    return slots.free(session, invitation.application.job_id, now)


def _take_turn(session: Session, invitation: Invitation) -> None:
    """Bookings and cancellations of one application take turns, under its row's lock (the write lock
    on SQLite): two links of one candidate booking at once would otherwise each see no other holder
    and both commit, the candidate then holding two slots. The invitation is read afresh under the
    lock: a change that waited for another must see what that one did."""
    database.lock_row(session, Application, invitation.application_id)
    session.refresh(invitation)


def book(session: Session, invitation: Invitation, slot_id: int, now: datetime) -> InterviewSlot | None:
    """Hold this slot for the invitation (giving back the one it held): the slot, or None when the
    invitation holds it already (nothing changed, nothing to confirm). BookingRefused if the slot is
    not offered or someone else holds it. In the caller's transaction.

    One application holds one slot at most: a candidate invited again keeps their booked interview
    until they book with the newer link, and that booking gives back what the older invitations held
    (they become "replaced", their links closed), in the same savepoint as the new hold.
    """
    _take_turn(session, invitation)
    slot = session.scalar(
        sa.select(InterviewSlot).where(
            InterviewSlot.id == slot_id,
            InterviewSlot.job_id == invitation.application.job_id,
            InterviewSlot.starts_at > now,
        )
    )
    if slot is None:
        raise BookingRefused("That time is no longer offered. Pick another.")
    if invitation.slot_id == slot.id:
        return None
    try:
        with session.begin_nested():
            released = _release_others(session, invitation)
            invitation.slot_id = slot.id
            invitation.state = "booked"
            invitation.booked_at = now
            invitation.cancelled_at = None
            session.flush()
    except IntegrityError as exc:
        # The unique slot_id: someone committed this slot first (or holds it still, uncommitted, and
        # PostgreSQL made us wait for their commit). Or the slot was removed meanwhile (its foreign key).
        if session.scalar(sa.select(InterviewSlot.id).where(InterviewSlot.id == slot_id)) is None:
            raise BookingRefused("That time is no longer offered. Pick another.") from exc
        raise BookingRefused("Someone has just booked that time. Pick another.") from exc
    session.refresh(invitation)
    for other in released:
        _changed(other, now)
    _changed(invitation, now)
    return slot


def _release_others(session: Session, invitation: Invitation) -> list[Invitation]:
    """Give back the slots the application's other invitations hold; flushed before the new hold, so
    that the candidate may take the very time an older link held."""
    others = list(
        session.scalars(
            sa.select(Invitation)
            .where(
                Invitation.application_id == invitation.application_id,
                Invitation.id != invitation.id,
                Invitation.state == "booked",
            )
            # Read afresh under the application's lock: the session may hold an older copy.
            .execution_options(populate_existing=True)
        )
    )
    for other in others:
        other.slot_id = None
        other.state = "replaced"
    session.flush()
    return others


def cancel(session: Session, invitation: Invitation, now: datetime) -> InterviewSlot | None:
    """Give the slot back; the link can book again until it expires. The slot it held, or None when
    nothing was booked (a second cancel changes nothing)."""
    _take_turn(session, invitation)
    slot = invitation.slot
    if invitation.state != "booked" or slot is None:
        return None
    invitation.slot_id = None
    invitation.state = "cancelled"
    invitation.cancelled_at = now
    session.flush()
    session.refresh(invitation)
    _changed(invitation, now)
    return slot


def _changed(invitation: Invitation, now: datetime) -> None:
    """The invitation's message shows its state: its thread and the Inbox see a change."""
    invitation.message.updated_at = now
    activity.touch_message(invitation.message)


# --- The confirmation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Confirmation:
    subject: str
    body: str


def when(slot: InterviewSlot, zone: str, fmt: str) -> slots.Shown:
    """The slot's time for the candidate reading in `zone`: an interview in person at its place's
    clock (their own beside it when it differs), a video call in their own."""
    return slots.shown(slot, zone, fmt, video_in_readers_zone=True)


def confirmation(
    invitation: Invitation, slot: InterviewSlot, zone: str, link: str, cancelled: bool = False
) -> Confirmation:
    """What the candidate gets after booking (or cancelling), with the link to change it: the time as
    the page shows it (in person: the place's clock, named)."""
    org = invitation.application.job.organization.display_sender
    job = invitation.application.job.title
    shown = when(slot, zone, "%a %d %b %Y %H:%M")
    when_text = f"{shown.when} ({shown.place} time)" if shown.place and shown.different else shown.when
    if cancelled:
        return Confirmation(
            f"Interview cancelled: {job}",
            f"Your interview with {org} for {job} on {when_text} is cancelled. To pick another time: {link}",
        )
    return Confirmation(
        f"Interview booked: {job}",
        # The place ends its line: it may be a video link, and a link must be followed by whitespace
        # (a phone would read a "." after it into the address).
        f"Your interview with {org} for {job} is booked: {when_text}, {slot.minutes} min.\n"
        f"Where: {slot.place}\n"
        f"To change or cancel: {link}",
    )


def confirmations_left(invitation: Invitation) -> int:
    return max(0, MAX_CONFIRMATIONS - invitation.confirmations)


def send_confirmation(session: Session, invitation: Invitation, text: Confirmation) -> Message | None:
    """Queue the confirmation on the invitation's channel, if its rules allow it now (the candidate may
    have opted out, the WhatsApp window closed, the credits run out) and the invitation has not sent
    MAX_CONFIRMATIONS already: the booking stands either way, and the page says when and where. In a
    savepoint of the caller's transaction, which also counts it."""
    conversation = session.get(Conversation, invitation.message.conversation_id)
    if conversation is None:
        return None
    about = subjects.of_conversation(conversation)
    channel = invitation.channel
    contact = about.contact
    try:
        with session.begin_nested():
            # Counted first, by a conditional UPDATE: of two changes at once, only those under the
            # limit get a message (a refusal below rolls the count back with the savepoint).
            counted = session.execute(
                sa.update(Invitation)
                .where(Invitation.id == invitation.id, Invitation.confirmations < MAX_CONFIRMATIONS)
                .values(confirmations=Invitation.confirmations + 1)
                .execution_options(synchronize_session=False)
            ).rowcount
            if not counted:
                log.info(
                    "no confirmation for invitation %s: %s sent already", invitation.id, MAX_CONFIRMATIONS
                )
                return None
            checks.check_recipient(session, contact, channel)
            if channel == "whatsapp":
                checks.check_whatsapp_window(whatsapp.time_left(conversation) is not None, False)
            count = checks.check_body(channel, text.body, text.subject if channel == "email" else None)
            if channel == "email":
                from_addr, to_addr = about.organization.display_sender, contact.email or ""
            else:
                assert contact.mobile
                to_addr = contact.mobile
                from_addr = compose.sender_number(session, conversation, channel, to_addr).e164
            return outbox.queue(
                session,
                conversation,
                channel=channel,
                body=text.body,
                from_addr=from_addr,
                to_addr=to_addr,
                author_id=None,
                count=count,
                email_subject=text.subject if channel == "email" else None,
            )
    except (checks.SendRefused, credits.InsufficientCredits) as refused:
        log.info("no confirmation for invitation %s: %s", invitation.id, refused)
        return None
    finally:
        session.refresh(invitation, ["confirmations"])


def book_and_confirm(
    session: Session, invitation: Invitation, slot_id: int, now: datetime, zone: str, link: str
) -> tuple[InterviewSlot | None, Message | None]:
    """book(), and the confirmation of the time (send_confirmation): the slot and the message queued,
    if one was. (None, None) when the invitation holds that time already."""
    slot = book(session, invitation, slot_id, now)
    if slot is None:
        return None, None
    return slot, send_confirmation(session, invitation, confirmation(invitation, slot, zone, link))


def cancel_and_confirm(
    session: Session, invitation: Invitation, now: datetime, zone: str, link: str
) -> tuple[InterviewSlot | None, Message | None]:
    """cancel(), and the confirmation that the interview is off: the slot given back and the message
    queued, if one was. (None, None) when nothing was booked."""
    slot = cancel(session, invitation, now)
    if slot is None:
        return None, None
    return slot, send_confirmation(
        session, invitation, confirmation(invitation, slot, zone, link, cancelled=True)
    )


# --- How often one address, and one link, may ask ------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    per_address: int
    window: timedelta
    # Requests for one link, from whatever addresses (0: no such limit).
    per_token: int = 0


def visit(session: Session, address: str, limit: Limit, now: datetime, token: str | None = None) -> bool:
    """Count this request; False when the address, or the link (`token`, when the request names one),
    has asked more than its limit within the window.

    Stored and committed before counting, as the sign-in limit does (webapp.accounts.sign_in), so that
    parallel requests cannot all see a count under the limit. Rows older than the window go.
    """
    address = address[:64]
    hashed = invitations.token_hash(token) if token else None
    since = now - limit.window
    session.execute(sa.delete(BookingVisit).where(BookingVisit.created_at <= since))
    session.add(BookingVisit(remote_addr=address, token_hash=hashed, created_at=now))
    session.commit()

    def count(condition: sa.ColumnElement[bool]) -> int:
        found = session.scalar(
            sa.select(sa.func.count())
            .select_from(BookingVisit)
            .where(condition, BookingVisit.created_at > since)
        )
        return found or 0

    if count(BookingVisit.remote_addr == address) > limit.per_address:
        return False
    return not (hashed and limit.per_token and count(BookingVisit.token_hash == hashed) > limit.per_token)
