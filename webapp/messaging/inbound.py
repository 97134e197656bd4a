"""What a candidate sends us: stored once, joined to its conversation, and read for STOP/START/HELP.

Everything here runs inside the webhook's transaction and is a handful of indexed queries; anything
slow (the HELP reply) is returned as message ids for the dispatcher to send after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import Session, object_session

from webapp.billing import credits
from webapp.inbox import changes as activity
from webapp.messaging import follow_ups
from webapp.messaging.optouts import keyword, opt_in, opt_out
from webapp.models import Conversation, Message, SendingNumber, utcnow
from webapp.models.organization import family_below
from webapp.models.upsert import on_conflict
from webapp.providers.base import InboundMessage

STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT", "OPTOUT"}
)
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
WHATSAPP_WINDOW = timedelta(hours=24)


@dataclass
class Received:
    message: Message
    duplicate: bool = False
    to_dispatch: list[int] = field(default_factory=list)


def conversation_for(session: Session, number: SendingNumber, sender: str, channel: str) -> int | None:
    """The conversation that last wrote to this sender from this number on this channel (the number's
    organisation or one of its sub-organisations, which send from their parent's pool)."""
    return session.scalar(
        _route_statement(),
        {
            "route_channel": channel,
            "route_number": number.e164,
            "route_sender": sender,
            "route_owner": number.organization_id,
        },
    )


@lru_cache(maxsize=1)
def _route_statement() -> sa.Select:
    # Built once with bound parameters: every inbound message runs it, and building it (a recursive CTE)
    # cost more than running it.
    owner = sa.bindparam("route_owner", type_=sa.Integer)
    return (
        sa.select(Message.conversation_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.direction == "outbound",
            Message.channel == sa.bindparam("route_channel", type_=sa.String),
            Message.from_addr == sa.bindparam("route_number", type_=sa.String),
            Message.to_addr == sa.bindparam("route_sender", type_=sa.String),
            Conversation.organization_id.in_(sa.select(family_below(owner).c.id)),  # type: ignore[arg-type]
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


def joined(conversation: Conversation, message: Message) -> None:
    """A candidate's message is now part of the conversation: it is recent, and on WhatsApp it opens
    the 24-hour window (counted from when the candidate sent it; a late older one never shortens it)."""
    now = utcnow()
    session = object_session(conversation)
    assert session is not None
    if message.channel == "whatsapp":
        # Counted from when the candidate wrote, but never from the future (a clock ahead, a forged time).
        ends = min(message.received_at or now, now) + WHATSAPP_WINDOW
        if conversation.whatsapp_window_ends_at is None or ends > conversation.whatsapp_window_ends_at:
            conversation.whatsapp_window_ends_at = ends
    # After the window: record's flush writes the conversation's row once, with the window in it.
    activity.record(session, conversation, message)


def receive(session: Session, inbound: InboundMessage) -> Received:
    # No look for the message_uuid first: the INSERT below is the one check (a retry, or the same
    # delivery racing us from another worker, inserts nothing and is answered as a duplicate).
    number = session.scalar(sa.select(SendingNumber).where(SendingNumber.e164 == inbound.recipient))
    conversation_id = conversation_for(session, number, inbound.sender, inbound.channel) if number else None
    now = utcnow()
    statement = on_conflict(
        sa.insert(Message).values(
            conversation_id=conversation_id,
            organization_id=number.organization_id if number else None,
            channel=inbound.channel,
            direction="inbound",
            body=inbound.text,
            status="received",
            provider_id=inbound.message_uuid,
            from_addr=inbound.sender,
            to_addr=inbound.recipient,
            received_at=inbound.timestamp,
            created_at=now,
            updated_at=now,
            segments=0,
            credits=0,
            attempts=0,
        ),
        "ON CONFLICT (provider_id) DO NOTHING",
    ).returning(Message)
    message = session.scalars(statement).first()  # the new row as a Message; none if it was there
    if message is None:
        existing = session.scalar(sa.select(Message).where(Message.provider_id == inbound.message_uuid))
        assert existing is not None
        return Received(existing, duplicate=True)
    result = Received(message)
    if conversation_id is not None:
        # A reply stops the conversation's follow-ups: cancelled before the conversation's row is locked
        # (webapp.messaging.follow_ups.replied), refunded after; one indexed probe when there are none.
        stopped = follow_ups.replied(session, conversation_id, now)
        # FOR NO KEY UPDATE: the message just inserted holds a key-share lock on this row (its foreign
        # key); a plain FOR UPDATE would wait on a concurrent reply doing the same, and deadlock.
        conversation = session.get(Conversation, conversation_id, with_for_update={"key_share": True})
        assert conversation is not None
        joined(conversation, message)
        if stopped:
            follow_ups.refund(session, stopped)
    if number is not None:
        word = keyword(inbound.text)
        if word == "stop":
            opt_out(session, number.organization_id, inbound.sender, message)
        elif word == "start":
            opt_in(session, number.organization_id, inbound.sender, message)
        elif word == "help" and conversation_id is not None:
            reply = help_reply(session, number, message)
            if reply is not None:
                result.to_dispatch.append(reply.id)
    return result


def help_reply(session: Session, number: SendingNumber, request: Message) -> Message | None:
    """The company's HELP answer, from the number that was written to; paid like any message."""
    from webapp.messaging import outbox, segments, subjects

    conversation = session.get(Conversation, request.conversation_id)
    assert conversation is not None
    org = subjects.of_conversation(conversation).organization
    text = (
        org.help_reply
        or org.top.help_reply
        or (
            f"{org.display_sender}: this number is used for messages from our recruiting team. "
            "Reply here to answer us. Reply STOP to stop messages."
        )
    )
    try:
        return outbox.queue(
            session,
            conversation,
            channel=request.channel,
            body=text,
            from_addr=number.e164,
            to_addr=request.from_addr,
            author_id=None,
            count=segments.count(text) if request.channel == "sms" else None,
        )
    except credits.InsufficientCredits:
        # No credits: keep the request on file but send nothing (nobody is billed for a reply not sent).
        return None
