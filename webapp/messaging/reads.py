"""Per-user read markers: what is unread on each channel of a conversation, and a cheap version of
the whole conversation so that a polling page learns "nothing changed" from one indexed query.

The markers (last message read, per user, conversation and channel) are the truth. The inbox reads a
copy per user and conversation (ConversationState.unread, see webapp.messaging.activity), which every
function here that moves a marker recounts in the same transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from webapp.models import Conversation, ConversationRead, ConversationState, Message, utcnow


def version(session: Session, conversation_id: int | None) -> str:
    """Changes whenever a message is added to the conversation or one of its messages changes."""
    if conversation_id is None:
        return "0"
    newest, changed, n = session.execute(
        sa.select(sa.func.max(Message.id), sa.func.max(Message.updated_at), sa.func.count()).where(
            Message.conversation_id == conversation_id
        )
    ).one()
    stamp = int(changed.timestamp() * 1_000_000) if changed else 0
    return f"{newest or 0}.{n}.{stamp}"


def mark_read(session: Session, user_id: int, conversation_id: int, channel: str, upto: int) -> None:
    """The user has seen this channel up to message `upto` (never moves back). One statement."""
    if upto <= 0:
        return
    dialect = session.get_bind().dialect.name
    module = {"postgresql": postgresql, "sqlite": sqlite}[dialect]
    insert = module.insert(ConversationRead).values(
        user_id=user_id,
        conversation_id=conversation_id,
        channel=channel,
        last_read_message_id=upto,
        updated_at=utcnow(),
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["user_id", "conversation_id", "channel"],
            set_={"last_read_message_id": upto, "updated_at": utcnow()},
            where=ConversationRead.last_read_message_id < upto,
        )
    )
    _recount(session, user_id, conversation_id)


def _unread_count(user_id: int, conversation_id: int) -> sa.ScalarSelect[int]:
    """Inbound messages of the conversation past this user's marker of their channel."""
    marker = (
        sa.select(ConversationRead.last_read_message_id)
        .where(
            ConversationRead.user_id == user_id,
            ConversationRead.conversation_id == conversation_id,
            ConversationRead.channel == Message.channel,
        )
        .scalar_subquery()
    )
    return (
        sa.select(sa.func.count())
        .select_from(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == "inbound",
            Message.id > sa.func.coalesce(marker, 0),
        )
        .scalar_subquery()
    )


def _recount(session: Session, user_id: int, conversation_id: int) -> None:
    """The inbox's unread count of this user and conversation, from the markers (when it has one and it
    changed: a write only when the number does)."""
    count = _unread_count(user_id, conversation_id)
    session.execute(
        sa.update(ConversationState)
        .where(
            ConversationState.user_id == user_id,
            ConversationState.conversation_id == conversation_id,
            ConversationState.unread > 0,
            ConversationState.unread != count,
        )
        .values(unread=count, changed_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def mark_conversation_read(session: Session, user_id: int, conversation: Conversation) -> None:
    """The user has seen the whole conversation, every channel (the inbox's thread shows them all)."""
    upto = conversation.last_message_id or 0
    for channel in ("email", "sms", "whatsapp"):
        if getattr(conversation, f"has_{channel}"):
            mark_read(session, user_id, conversation.id, channel, upto)


def mark_unread(session: Session, user_id: int, conversation_id: int) -> None:
    """ "Mark unread": the conversation counts as unread for this user until they read it again (the
    per-channel markers stay; reading any channel of it recounts from them)."""
    module = {"postgresql": postgresql, "sqlite": sqlite}[session.get_bind().dialect.name]
    now = utcnow()
    insert = module.insert(ConversationState).values(
        user_id=user_id, conversation_id=conversation_id, unread=1, wrote=False, changed_at=now
    )
    table = ConversationState.__table__
    at_least_one = sa.case((table.c.unread > 0, table.c.unread), else_=1)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["user_id", "conversation_id"], set_={"unread": at_least_one, "changed_at": now}
        )
    )


def unread_by_channel(session: Session, user_id: int, conversation_id: int | None) -> dict[str, int]:
    """Inbound messages this user has not seen yet, per channel."""
    if conversation_id is None:
        return {}
    marker = (
        sa.select(ConversationRead.last_read_message_id)
        .where(
            ConversationRead.user_id == user_id,
            ConversationRead.conversation_id == conversation_id,
            ConversationRead.channel == Message.channel,
        )
        .scalar_subquery()
    )
    rows = session.execute(
        sa.select(Message.channel, sa.func.count())
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == "inbound",
            Message.id > sa.func.coalesce(marker, 0),
        )
        .group_by(Message.channel)
    )
    return {channel: n for channel, n in rows}
