"""Per-user read markers: what is unread on each channel of a conversation, and a cheap version of
the whole conversation so that a polling page learns "nothing changed" from one indexed query."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from webapp.models import ConversationRead, Message, utcnow


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
