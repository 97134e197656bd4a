"""Messages written for later: edit and cancel them, and the scheduler that hands them to dispatch.

A scheduled message is stored and paid for like any other (compose.compose with `send_at`, then
outbox.schedule): status `scheduled`, its time in `send_at`. From then every move out of `scheduled` is
one conditional UPDATE on `status = 'scheduled'` — the scheduler's (to `queued`, or `held`), an edit's,
a cancel's — so that of those racing for one message exactly one wins: PostgreSQL makes the later
writer wait for the earlier's commit and checks the condition again on the row as it then is; SQLite
lets one writer at a time. The loser is told what happened ("It has already left"). The scheduler also
takes its batch with FOR UPDATE SKIP LOCKED (PostgreSQL), so that two clocks never take the same rows.

When a message leaves, the channel checks run again (`refusal`): the organisation still has the
product and the channel, the prospect is still in the community, the author (while still active) still
has the right, the number has not opted out, its sending number is still active, a free-text WhatsApp
message is still inside the 24-hour window. One that fails is `held`, with the reason in its
error_title, and its credits go back; it is never sent against the rule. Credits need no check: they
were taken when it was scheduled.

A scheduled message is the company's, not its writer's: the author's deactivation does not hold it (the
people who leave are not the reason a candidate should not hear back; their colleagues see it in the
thread and can cancel it). A right taken away from an author who is still active does hold it: that is
the organisation deciding this person's texts should not go out, which must not be undone by a
message written the day before.

A message handed over is `queued` from then on and dispatch's to send, once (its claim), paced; the
dispatch sweep counts its wait from `send_at`. It joins the conversation's list (latest message,
preview) when it leaves, not when it is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from webapp import phones
from webapp.accounts import access, permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.inbox import changes as activity
from webapp.messaging import checks, conversations, follow_ups, optouts, subjects, timing, unsent, whatsapp
from webapp.messaging.checks import SendRefused
from webapp.models import CHANNEL_LABELS, BatchRecipient, Conversation, Message, SendingNumber, User, utcnow

log = logging.getLogger("relay.scheduled")

# The error code of a scheduled message whose text was edited: cancelled, and replaced by a new one
# (the thread shows the new one only: webapp.messaging.conversations).
EDITED = conversations.EDITED


class TooLate(SendRefused):
    """The message is not scheduled any more: it left, was cancelled, edited or held meanwhile."""


# --- What the thread and the pages ask ---------------------------------------------------------------


def find(session: Session, user: User, message_id: int) -> Message | None:
    """A message of a conversation this user may see, by its id (None for anyone else's: a 404)."""
    return session.scalar(
        sa.select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.id == message_id, Message.direction == "outbound", access.conversation_visible_to(user)
        )
    )


def pending(session: Session, conversation: Conversation) -> list[Message]:
    """The conversation's messages still waiting for their time, soonest first."""
    return list(
        session.scalars(
            sa.select(Message)
            .where(Message.conversation_id == conversation.id, Message.status == "scheduled")
            .order_by(Message.send_at, Message.id)
        )
    )


# --- Cancel and edit ---------------------------------------------------------------------------------


def cancel(session: Session, user: User, message: Message, now: datetime | None = None) -> Message:
    """Cancel a scheduled message and give its credits back, in the caller's transaction. Any member of
    the team that writes in the conversation may (it is the company's message). Raises TooLate when it
    is not scheduled any more, SendRefused when the user may not write here."""
    now = now or utcnow()
    _may_change(session, user, message, texting=False)
    if not unsent.withdraw(
        session, message, now, title=f"Cancelled by {user.name}", note="Scheduled message cancelled"
    ):
        raise too_late(session, message)
    return message


def reschedule(
    session: Session,
    user: User,
    message: Message,
    *,
    send_at: datetime | None = None,
    body: str | None = None,
    subject: str | None = None,
    now: datetime | None = None,
    reader_zone: str | None = None,
) -> Message:
    """Edit a scheduled message: a new time (`send_at`), a new text (`body`, an email's `subject`), or
    both. The message that will leave, which the caller commits:

    - a new time only: the same message, its send_at moved (the price is the same);
    - a new text: a new scheduled message written by `user` (its placeholders rendered, its checks run,
      priced anew), at the new time or the old one, and the old one cancelled as edited (EDITED) and
      refunded: the ledger debits a message once and refunds it at most once, so a new price is a new
      message. The balance moves by the difference; when it cannot cover the new price, SendRefused
      says so and the caller rolls back (the old message stays as it was).

    The writer's reason to send outside the organisation's hours (hours_override) stays with the
    message: an edit is not a new decision about the hours, and its form has no reason field. The law's
    hours are held to as ever; a time they (or, without a reason, the organisation's) do not allow is
    refused with the first time that can be, on the recipient's clock and `reader_zone`'s (the
    organisation's by default).

    Raises TooLate when it is not scheduled any more (it left, or was cancelled or edited meanwhile),
    SendRefused for a time or text that may not be sent. Rolls back nothing itself."""
    now = now or utcnow()
    try:
        return _reschedule(session, user, message, send_at, body, subject, now)
    except timing.Closed as closed:
        zone = reader_zone or _organization(message).time_zone
        raise SendRefused(timing.edit_refusal(closed.decision, zone), "send_at") from closed


def _reschedule(
    session: Session,
    user: User,
    message: Message,
    send_at: datetime | None,
    body: str | None,
    subject: str | None,
    now: datetime,
) -> Message:
    from webapp.messaging import compose

    if message.follow_up_of_id is not None:
        # A follow-up: the message it follows locked first, then this one read as it now is. An edit of
        # that message moves its follow-ups (follow_ups.followed_moved) holding its row, and would not
        # see a follow-up's new text written meanwhile (a row inserted after its statement began); in
        # turn, this edit would keep a time read before that move. One after the other, neither is lost.
        session.execute(
            sa.select(Message.id).where(Message.id == message.follow_up_of_id).with_for_update(key_share=True)
        ).all()
        session.refresh(message)
    conversation = message.conversation
    assert conversation is not None
    about = _may_change(session, user, message, texting=True)
    if send_at is not None:
        when = checks.check_send_at(send_at, now)
    else:
        # Its time kept; one that has just come (the scheduler has not passed yet) is the next moment.
        assert message.send_at is not None
        when = max(message.send_at, now + timedelta(seconds=1))
    if body is None and subject is None:
        kept_reason = message.hours_override
        if send_at is not None:
            # The new time is held to the recipient's hours as a new message's is (a new text is, by
            # compose); the reason is kept where the new time still needs it.
            kept_reason = compose.hours_for(
                session, about, message.channel, now, when, override_reason=message.hours_override
            ).override_reason
        if message.channel == "whatsapp":
            checks.check_whatsapp_window_at(
                conversation.whatsapp_window_ends_at,
                when,
                message.whatsapp_template_id is not None,
                conversation.organization.time_zone,
            )
        moved = session.execute(
            sa.update(Message)
            .where(Message.id == message.id, Message.status == "scheduled")
            .values(send_at=when, hours_override=kept_reason, updated_at=now)
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        ).first()
        if moved is None:
            raise too_late(session, message)
        was = message.send_at
        set_committed_value(message, "send_at", when)
        set_committed_value(message, "hours_override", kept_reason)
        activity.touch(session, conversation.id)
        _carry_over(session, message.id, was, message, now)
        return message
    if message.whatsapp_template_id is not None:
        raise SendRefused(
            "An approved WhatsApp template is sent as Meta approved it: cancel this one and schedule "
            "another instead.",
            "body",
        )
    from webapp.interviews import invitations

    text = body if body is not None else message.body
    # An invitation's new text keeps its booking link: the same one, which the candidate will follow.
    invitation = invitations.of_message(session, message.id)
    invite_link = None
    if invitation is not None:
        text, invite_link = invitations.edited_text(invitation, message.channel, message.body, text)
    if not unsent.move_out(
        session, message, "cancelled", now, title="Edited: replaced by the new text", code=EDITED
    ):
        raise too_late(session, message)
    # Its follow-ups, which will follow the new text (_carry_over), locked now, before the conversation
    # and the credits (the refund takes them in that order): in the order a reply takes them
    # (webapp.messaging.inbound), so that the two never wait for each other.
    session.execute(
        sa.select(Message.id).where(Message.follow_up_of_id == message.id).with_for_update()
    ).all()
    credits.refund(
        session, _organization(message), message, "Scheduled message edited: its new text is paid instead"
    )
    # The new text goes through every check (the WhatsApp window at its time too) and is paid for.
    try:
        edited = compose.compose(
            session,
            user,
            about,
            message.channel,
            text,
            subject=subject if subject is not None else message.subject,
            invite_link=invite_link,
            send_at=when,
            now=now,
            override_reason=message.hours_override,
        )
        # A follow-up's new text is still a follow-up: a reply cancels it as it would have the old one.
        edited.follow_up_of_id = message.follow_up_of_id
        session.flush()
        _carry_over(session, message.id, message.send_at, edited, now)
        return edited
    except SendRefused as refused:
        short = refused.__cause__
        if not isinstance(short, credits.InsufficientCredits):
            raise
        # Said as the user sees it: the balance before this edit, and what the edit adds to the price.
        paid = message.credits
        raise SendRefused(
            f"The new text costs {short.needed} credit{'s' if short.needed != 1 else ''}, "
            f"{short.needed - paid} more than this message, and your organisation has {short.left - paid} "
            "left. Shorten it, or contact your Customer Success Manager to refill.",
            "body",
        ) from short


def _carry_over(
    session: Session, old_id: int, old_send_at: datetime | None, message: Message, now: datetime
) -> None:
    """What points at the edited message (`old_id`, due at `old_send_at`) points at the one that will
    leave (`message`; the same one when only its time moved), in the same transaction: its invitation
    (whose link then books from the new time), the follow-ups that follow it (their times moved by as
    much as its time was), and a bulk send's line for it."""
    from webapp.interviews import invitations

    invitations.message_moved(session, old_id, message, now)
    if old_id != message.id:
        session.execute(
            sa.update(Message)
            .where(Message.follow_up_of_id == old_id)
            .values(follow_up_of_id=message.id)
            .execution_options(synchronize_session="fetch")
        )
        session.execute(
            sa.update(BatchRecipient)
            .where(BatchRecipient.message_id == old_id)
            .values(message_id=message.id)
            .execution_options(synchronize_session="fetch")
        )
    if old_send_at is not None and message.send_at is not None:
        follow_ups.followed_moved(session, message.id, message.send_at - old_send_at, now)


def too_late(session: Session, message: Message) -> TooLate:
    """Why a scheduled message can no longer be changed, as the row is now."""
    session.refresh(message)
    if message.status == "cancelled":
        if message.error_code == EDITED:
            return TooLate("It was edited meanwhile: reload the conversation to see the new text.")
        if message.error_code == unsent.REPLACED:
            return TooLate("It was cancelled: a newer invitation replaced it.")
        return TooLate("It was cancelled.")
    if message.status == "held":
        return TooLate(f"It was held when it was due to leave: {(message.error_title or '').rstrip('.')}.")
    return TooLate("It has already left.")


def _may_change(session: Session, user: User, message: Message, *, texting: bool) -> subjects.Subject:
    """The subject, if the user may change this message: write in its conversation (team, tenant);
    `texting`: also send on its channel now (an edit is a new message)."""
    if message.status != "scheduled":
        raise too_late(session, message)
    conversation = message.conversation
    assert conversation is not None
    about = subjects.of_conversation(conversation)
    if texting:
        checks.check_sender(session, user, about, message.channel)
    elif checks.not_ours(user, about) or not access.may_write(session, user, about):
        raise SendRefused(f"Only the {about.team} can change a message to {about.people}.")
    return about


def _organization(message: Message):  # type: ignore[no-untyped-def]
    assert message.conversation is not None
    return message.conversation.organization


# --- The scheduler -----------------------------------------------------------------------------------


@dataclass
class Handed:
    """What one run of the scheduler did."""

    queued: list[int] = field(default_factory=list)  # handed to dispatch
    held: list[int] = field(default_factory=list)  # refused at leaving, refunded

    def __str__(self) -> str:
        if not (self.queued or self.held):
            return ""
        return (
            f"{len(self.queued)} scheduled message(s) handed to the dispatcher, "
            f"{len(self.held)} held and refunded"
        )


def due_query(now: datetime | sa.BindParameter[datetime], limit: int) -> sa.Select[tuple[Message]]:
    """The scheduled messages whose time has come, soonest first: a range of ix_message_status_send_at.
    Locked, skipping rows another scheduler (or an edit) holds: each run takes rows no other has."""
    return (
        sa.select(Message)
        .where(Message.status == "scheduled", Message.send_at <= now)
        .order_by(Message.send_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def send_due(now: datetime | None = None, *, batch: int | None = None, hand_over: bool = True) -> Handed:
    """Hand every scheduled message due at `now` to dispatch (or hold it), a batch per transaction;
    safe to run any number of times at once. `hand_over=False`: leave them queued for the caller (the
    dispatch sweep hands queued messages over anyway)."""
    from webapp.messaging import dispatch

    now = now or utcnow()
    size = batch or current_app.config["SCHEDULED_SEND_BATCH"]
    done = Handed()
    while True:
        rows = db.session.scalars(
            due_query(now, size).options(
                selectinload(Message.conversation).selectinload(Conversation.organization),
                selectinload(Message.author),
            )
        ).all()
        if not rows:
            db.session.rollback()
            break
        queued, held = _leave(db.session, list(rows), now)
        db.session.commit()
        done.queued += queued
        done.held += held
        if hand_over:
            for message_id in queued:
                dispatch.enqueue(message_id)
        if len(rows) < size or not (queued or held):
            break
    return done


@dataclass
class _Seen:
    """What the checks of one batch have read already: the answers repeat across its messages."""

    rights: dict[tuple[int, str], bool] = field(default_factory=dict)
    numbers: dict[str, bool] = field(default_factory=dict)


def _leave(session: Session, due: list[Message], now: datetime) -> tuple[list[int], list[int]]:
    seen = _Seen()
    going: dict[int, Message] = {}
    holding: list[tuple[Message, str]] = []
    for message in due:
        reason = refusal(session, message, now, seen)
        if reason is None:
            going[message.id] = message
        else:
            holding.append((message, reason))
    queued: list[int] = []
    if going:
        # One statement for the batch; the conditions again, so that a row an edit moved (its time, or
        # cancelled) stays as the edit left it, even where no lock was taken (SQLite).
        queued = list(
            session.scalars(
                sa.update(Message)
                .where(
                    Message.id.in_(list(going)),
                    Message.status == "scheduled",
                    Message.send_at <= now,
                )
                .values(status="queued", updated_at=now)
                .returning(Message.id)
                .execution_options(synchronize_session=False)
            )
        )
        for message_id in sorted(queued):
            message = going[message_id]
            set_committed_value(message, "status", "queued")
            assert message.conversation is not None
            activity.record(session, message.conversation, message, left_at=now)
    stopped = [
        (message, reason)
        for message, reason in holding
        if message.send_at is not None
        and message.send_at <= now
        and unsent.move_out(session, message, "held", now, title=reason)
    ]
    # Their follow-ups with them (nobody follows up on a message that never left), then their
    # conversations' rows, all of them before the first refund (conversations.lock): a reply's order.
    follow_ups_held = follow_ups.followed_held(session, [message.id for message, _ in stopped], now)
    if stopped:
        conversations.lock(session, *(message.conversation_id for message, _ in stopped))
    for message, reason in stopped:
        credits.refund(session, _organization(message), message, f"Held: {reason}"[: credits.NOTE_LENGTH])
        log.info("scheduled message %s held: %s", message.id, reason)
    follow_ups.refund(session, follow_ups_held)
    return queued, [message.id for message, _ in stopped]


def refusal(session: Session, message: Message, now: datetime, seen: _Seen | None = None) -> str | None:
    """Why this scheduled message may not leave now (the channel checks, again), or None."""
    seen = seen or _Seen()
    conversation = message.conversation
    if conversation is None:
        return "Its conversation no longer exists."
    org = conversation.organization
    kind = subjects.kind_of(conversation)
    if kind == "membership":
        membership = conversation.community_membership
        if membership is not None and membership.removed_at is not None:
            return f"{membership.prospect.full_name} was removed from {membership.community.name}."
        if not org.has_product("crm"):
            return "Your organisation no longer has CRM."
    channel = message.channel
    if channel == "email":
        return None
    label = CHANNEL_LABELS[channel]
    right, products = subjects.TEXTING[kind]
    for product in products:
        if not org.has_product(product):
            name = checks.PRODUCT_NAMES[product]
            return f"Your organisation no longer has {name}, so {label} is not available."
    if not org.channel_enabled(channel):
        return f"{label} was switched off for your organisation."
    author = message.author
    if author is not None and author.active:
        key = (author.id, right)
        if key not in seen.rights:
            seen.rights[key] = access.has_permission(author, right)
        if not seen.rights[key]:
            spec = next(p for p in permissions.CATALOGUE if p.code == right)
            return f"{author.name} no longer has the permission “{spec.name}”."
    if message.author_id is not None and optouts.active(
        session, conversation.organization_id, message.to_addr
    ):
        # (Automatic replies, which have no author, go as dispatch sends them: the answer to HELP.)
        return f"{phones.display(message.to_addr)} opted out of texts before it left."
    if message.from_addr not in seen.numbers:
        seen.numbers[message.from_addr] = (
            session.scalar(
                sa.select(SendingNumber.id).where(
                    SendingNumber.e164 == message.from_addr, SendingNumber.status == "active"
                )
            )
            is not None
        )
    if not seen.numbers[message.from_addr]:
        return f"Its sending number {phones.display(message.from_addr)} is no longer active."
    if (
        channel == "whatsapp"
        and message.whatsapp_template_id is None
        and whatsapp.time_left(conversation, now) is None
    ):
        return "The WhatsApp 24-hour window had closed: outside it WhatsApp allows only an approved template."
    return None


# --- What an edit's new time would do, said before Save (webapp.web.scheduled_edit) -----------------


def clocks(about: subjects.Subject, message: Message, at: datetime, zone: str) -> tuple[str, str]:
    """A moment on the recipient's clock and the writer's, "Wed 09:00 in Texas · Wed 16:00 your time",
    and the recipient's alone where it differs from the writer's ("Wed 09:00 in Texas", else ""), from
    one decision of their hours; an email's on the writer's alone (it is not held to anyone's hours)."""
    decision = None
    if message.channel in timing.HELD_CHANNELS and message.to_addr:
        decision = timing.decide(about.organization, message.to_addr, at, place_zone=timing.place_of(about))
    theirs = timing.beside(at, decision, zone) if decision is not None else ""
    return timing.both_times(at, decision, zone), theirs


def both_times(about: subjects.Subject, message: Message, at: datetime, zone: str) -> str:
    return clocks(about, message, at, zone)[0]


def time_said(
    session: Session, about: subjects.Subject, message: Message, typed: str, zone: str, now: datetime
) -> tuple[str, bool]:
    """What Save would do with a newly typed time, and whether it would be refused: "Sends Wed 09:00 in
    Texas · Wed 16:00 your time.", or the reason not, as the edit words it (a time within their hours,
    the first that can be). Blank: the time it has. For the Edit form's line, as the composer's counter
    asks compose.hours_said."""
    from webapp.messaging import compose

    assert message.send_at is not None
    if not typed.strip():
        return f"Sends {both_times(about, message, message.send_at, zone)}.", False
    try:
        at = checks.check_send_at(timing.local_time(typed, zone), now)
        compose.hours_for(session, about, message.channel, now, at, override_reason=message.hours_override)
    except timing.Closed as closed:
        return timing.edit_refusal(closed.decision, zone), True
    except SendRefused as refused:
        return refused.message, True
    return f"Sends {both_times(about, message, at, zone)}.", False
