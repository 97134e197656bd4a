"""Follow-ups that stop on a reply (issue 20 §3): "If no reply in N days, send…".

A follow-up is a scheduled message like any other (webapp.messaging.scheduled): stored and paid for when
its message is written, on the same channel and in the same conversation, at that message's time (its
send_at, or now) + N days, with `follow_up_of_id` naming the message it follows. Its time is held to the
recipient's hours as a message written at that moment would be: at night for them it moves to their next
allowed moment (compose.hours_for asked as if it were written then), rather than be refused; a
follow-up is not a reply, so the writer's reason to send outside the organisation's hours does not carry
over to it. Its text goes through every check a message's does (compose.compose).

It is cancelled, and its credits given back, the moment the person writes back on any channel of the
conversation (`replied`, called by webapp.messaging.inbound as a reply joins its conversation) or the
application is closed (`application_closed`, by webapp.jobs.stages), and with the message it follows
when that is cancelled before it leaves (`followed_cancelled`: "any news?" about a message never sent).
Each is one conditional UPDATE on `status = 'scheduled'`, as every move out of `scheduled` is, so that
a follow-up racing the scheduler either leaves or is cancelled, never both. Our own outbound messages
never cancel one.

It keeps its distance from the message it follows: when that one is given a new time
(webapp.messaging.scheduled.reschedule), the follow-up moves by as much (`followed_moved`), and is
held to the recipient's hours again as when it was first scheduled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from webapp.billing import credits
from webapp.messaging.checks import SendRefused
from webapp.messaging.subjects import Subject
from webapp.models import CHANNEL_LABELS, Conversation, Message, User, utcnow
from webapp.models.base import UTCDateTime

MIN_DAYS, MAX_DAYS = 1, 30
# The error codes of a follow-up cancelled because it was no longer needed (the thread says which).
REPLIED = "replied"
CLOSED = "closed"
UNSENT = "unsent"  # the message it follows was cancelled before it left
HELD = "followed_held"  # the message it follows was held when it was due (webapp.messaging.scheduled)
# The stages after which nobody follows up with the candidate (webapp.models.ats.STAGES).
FINAL_STAGES = frozenset({"hired", "rejected"})
# A refusal of the follow-up's text or time, said beside the composer's follow-up fields.
_FIELDS = {
    "body": "follow_up_body",
    "subject": "follow_up_body",
    "whatsapp_template_id": "follow_up_body",
    "send_at": "follow_up_days",
    "override_reason": "follow_up_days",
    "channel": "follow_up_days",
}


@dataclass(frozen=True)
class Plan:
    """What the writer asked: after `days` without a reply, send `body` (an email's `subject`)."""

    days: int | None
    body: str
    subject: str | None = None


def channel_refusal(channel: str) -> SendRefused | None:
    """Why a follow-up cannot go on `channel`, said before Send (the composer's counter) and at it; None
    when it can. On WhatsApp, days later the 24-hour window has closed (a reply, which would reopen it,
    cancels the follow-up), and a follow-up is free text."""
    if channel != "whatsapp":
        return None
    return SendRefused(
        "A WhatsApp follow-up would leave after the 24-hour window has closed, where only an approved "
        "template may go: follow up by SMS or email instead.",
        "follow_up_body",
    )


def check_days(days: int | None) -> int:
    if days is None or not MIN_DAYS <= days <= MAX_DAYS:
        raise SendRefused(f"Pick a number of days from {MIN_DAYS} to {MAX_DAYS}.", "follow_up_days")
    return days


def schedule(
    session: Session, user: User, about: Subject, followed: Message, plan: Plan, now: datetime | None = None
) -> Message:
    """Store and pay for the follow-up of `followed` (just written, in the caller's transaction).
    Raises SendRefused beside the follow-up's own fields (follow_up_days, follow_up_body)."""
    from webapp.messaging import compose

    now = now or utcnow()
    days = check_days(plan.days)
    if not plan.body.strip():
        raise SendRefused("Write the follow-up, or choose a template for it.", "follow_up_body")
    at = (followed.send_at or now) + timedelta(days=days)
    try:
        # Their hours at that moment, as for a message written then: moved to the next allowed moment.
        at = _in_hours(session, about, followed.channel, at)
        message = compose.compose(
            session, user, about, followed.channel, plan.body, subject=plan.subject, send_at=at, now=now
        )
    except SendRefused as refused:
        raise _said(refused, followed.channel) from refused
    message.follow_up_of_id = followed.id
    return message


def _in_hours(session: Session, about: Subject, channel: str, at: datetime) -> datetime:
    """A follow-up's time held to the recipient's hours, as for a message written then: moved to their
    next allowed moment (a follow-up is not a reply, and no writer's reason carries over to it)."""
    from webapp.messaging import compose

    return compose.hours_for(session, about, channel, at).send_at or at


def followed_moved(
    session: Session, followed_id: int, by: timedelta, now: datetime | None = None
) -> list[int]:
    """The message `followed_id` (still scheduled) was given a time `by` later (earlier, if negative):
    its pending follow-ups move by as much, each held to the recipient's hours (`_in_hours`), in the
    caller's transaction, after the followed message's row (webapp.messaging.scheduled). Each move is
    the conditional UPDATE on `status = 'scheduled'`: one the person's reply cancelled, or the
    scheduler took, meanwhile stays as it is. The ids moved; SendRefused beside the new time when their
    hours allow no moment to move one to."""
    from webapp.inbox import changes as activity
    from webapp.messaging import subjects

    if not by:
        return []
    now = now or utcnow()
    pending = session.scalars(
        sa.select(Message)
        .where(Message.follow_up_of_id == followed_id, Message.status == "scheduled")
        .order_by(Message.id)
    ).all()
    moved = []
    for follow_up in pending:
        assert follow_up.send_at is not None and follow_up.conversation is not None
        # Never into the past (its own time may have been edited nearer to the message than N days).
        at = max(follow_up.send_at + by, now + timedelta(seconds=1))
        try:
            at = _in_hours(session, subjects.of_conversation(follow_up.conversation), follow_up.channel, at)
        except SendRefused as refused:
            raise SendRefused(f"Its follow-up cannot move with it: {refused.message}", "send_at") from refused
        done = session.execute(
            sa.update(Message)
            .where(Message.id == follow_up.id, Message.status == "scheduled")
            .values(send_at=at, updated_at=now)
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        ).first()
        if done is not None:
            set_committed_value(follow_up, "send_at", at)
            activity.touch(session, follow_up.conversation_id)
            moved.append(follow_up.id)
    return moved


def followed_held(session: Session, followed_ids: list[int], now: datetime | None = None) -> list[int]:
    """The messages `followed_ids` were held when they were due (opted out since, a right taken away…):
    their pending follow-ups are cancelled (the conditional UPDATE), in the caller's transaction — "any
    news?" about a message they never got; their credits are for the caller to give back with `refund`
    once it has locked what it needs in its order (webapp.messaging.scheduled)."""
    if not followed_ids:
        return []
    return _stop(
        session, Message.follow_up_of_id.in_(followed_ids), now, HELD, "The message it follows was held."
    )


def followed_cancelled(session: Session, followed_id: int, now: datetime | None = None) -> list[int]:
    """The message `followed_id` was cancelled before it left: its pending follow-ups are cancelled
    too (the conditional UPDATE), in the caller's transaction; their credits are for the caller to give
    back with `refund` once it has locked what it needs in its order (webapp.messaging.scheduled)."""
    return _stop(
        session, Message.follow_up_of_id == followed_id, now, UNSENT, "The message it follows was cancelled."
    )


def template_text(
    session: Session, user: User, about: Subject, template_id: int, channel: str, subject: str | None
) -> tuple[str, str | None]:
    """The text (and an email's subject) of a template the composer offers this user for `about`
    (compose.templates_for), for a follow-up on `channel`; SendRefused beside the follow-up's template
    when it is not one of those, of that channel."""
    from webapp.messaging import compose

    offered = {t.id: t for t in compose.templates_for(session, user, [channel], about.audience)}
    template = offered.get(template_id)
    if template is None:
        label = CHANNEL_LABELS.get(channel, "this channel")
        raise SendRefused(f"Choose a template for {label}, as the message is.", "follow_up_template_id")
    return template.body, (template.subject or subject) if channel == "email" else None


def _said(refused: SendRefused, channel: str) -> SendRefused:
    """The refusal beside the follow-up's own field."""
    # Its time was moved into their hours already: on WhatsApp, a time refused is the closed window.
    on_channel = channel_refusal(channel)
    if refused.field == "send_at" and on_channel is not None:
        return on_channel
    return SendRefused(refused.message, _FIELDS.get(refused.field or "", "follow_up_body"))


def replied(session: Session, conversation_id: int, now: datetime | None = None) -> list[int]:
    """The person wrote back in this conversation: cancel its pending follow-ups (give their credits back
    with `refund`). On the inbound webhook's path, and before it locks the conversation's row (the
    scheduler locks a follow-up's row, then the conversation's: the same order, no deadlock): one probe
    of ix_message_follow_up_pending, which finds nothing almost always. The same conditional UPDATE as
    `_stop`'s. The ids cancelled."""
    parameters = {"reply_conversation": conversation_id, "reply_at": now or utcnow()}
    return list(session.connection().execute(_on_reply(), parameters).scalars())


@lru_cache(maxsize=1)
def _on_reply() -> sa.Update:
    # Built once with bound parameters, on the table (as inbound's route statement): every inbound
    # message runs it, and building it, then the ORM's execution of it, cost more than running it.
    table = Message.__table__
    at = sa.bindparam("reply_at", type_=UTCDateTime)
    return (
        sa.update(table)
        .where(
            table.c.conversation_id == sa.bindparam("reply_conversation", type_=sa.Integer),
            table.c.status == "scheduled",
            table.c.follow_up_of_id.is_not(None),
        )
        .values(
            status="cancelled", failed_at=at, updated_at=at, error_code=REPLIED, error_title="They replied."
        )
        .returning(table.c.id)
    )


def application_closed(session: Session, application_id: int, now: datetime | None = None) -> list[int]:
    """The application reached a final stage: cancel its conversation's pending follow-ups, refunded."""
    conversation = sa.select(Conversation.id).where(Conversation.application_id == application_id)
    stopped = _stop(
        session,
        Message.conversation_id == conversation.scalar_subquery(),
        now,
        CLOSED,
        "The application was closed.",
    )
    refund(session, stopped)
    return stopped


def refund(session: Session, message_ids: list[int]) -> None:
    """Give back what the cancelled follow-ups cost, and show them cancelled in their threads."""
    from webapp.inbox import changes as activity

    for message_id in message_ids:
        # populate_existing: a copy in this session still says `scheduled` (the UPDATE went around it).
        message = session.get(Message, message_id, populate_existing=True)
        assert message is not None and message.conversation is not None
        note = "Follow-up not needed: " + (message.error_title or "").rstrip(".").lower()
        credits.refund(session, message.conversation.organization, message, note[: credits.NOTE_LENGTH])
        activity.touch(session, message.conversation_id)


def _stop(
    session: Session, which: sa.ColumnElement[bool], now: datetime | None, code: str, title: str
) -> list[int]:
    """scheduled → cancelled for the pending follow-ups `which` names: one conditional UPDATE, so that
    one the scheduler handed over meanwhile stays as it left (see webapp.messaging.scheduled)."""
    now = now or utcnow()
    return list(
        session.scalars(
            sa.update(Message)
            .where(which, Message.status == "scheduled", Message.follow_up_of_id.is_not(None))
            .values(status="cancelled", failed_at=now, updated_at=now, error_code=code, error_title=title)
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        )
    )
