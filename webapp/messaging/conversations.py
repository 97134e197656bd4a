"""Finding and starting conversations, and reading their messages by channel."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from webapp.messaging.subjects import Subject
from webapp.models import Conversation, Message, utcnow
from webapp.models.upsert import insert_ignore


def for_subject(session: Session, about: Subject, create: bool = False) -> Conversation | None:
    """The conversation about this application or membership; started (empty) when `create` is set."""
    query = sa.select(Conversation).where(about.conversation_condition)
    conversation = session.scalar(query)
    if conversation is None and create:
        # Two first messages at once must share one conversation: the unique key decides, no error.
        key = about.conversation_key
        insert_ignore(
            session,
            Conversation,
            {"organization_id": about.organization.id, "created_at": utcnow(), **key},
            conflict=list(key),
        )
        conversation = session.scalar(query)
    return conversation


def messages(session: Session, conversation: Conversation | None, channel: str) -> list[Message]:
    """The conversation's messages on one channel, oldest first, as the database has them now.

    populate_existing: a message this session loaded before (the one just composed, still "queued"
    here) is read again, so that a status the dispatcher committed meanwhile is what gets shown.
    """
    if conversation is None:
        return []
    return list(
        session.scalars(
            sa.select(Message)
            .where(Message.conversation_id == conversation.id, Message.channel == channel)
            .options(selectinload(Message.author))
            .order_by(Message.id)
            .execution_options(populate_existing=True)
        )
    )


def counts_by_channel(session: Session, conversation: Conversation | None) -> dict[str, int]:
    if conversation is None:
        return {}
    rows = session.execute(
        sa.select(Message.channel, sa.func.count())
        .where(Message.conversation_id == conversation.id)
        .group_by(Message.channel)
    )
    return {channel: n for channel, n in rows}
