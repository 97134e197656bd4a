"""Per-user read markers: what is unread on each channel of a conversation, and a cheap version of
the whole conversation so that a polling page learns "nothing changed" from one indexed query.

The markers (last message read, per user, conversation and channel) are the truth. The inbox reads a
copy per user and conversation (ConversationState.unread, see webapp.inbox.changes), which every
function here that moves a marker recounts in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from webapp.models import Conversation, ConversationRead, ConversationState, Message, utcnow

CHANNELS = ("email", "sms", "whatsapp")


def version_of(conversation: Conversation | None) -> str:
    """Changes whenever a message is added to the conversation or one of its messages changes: the
    newest message's id and the change marker that webapp.inbox.changes moves with every such
    change (an added message, a status). Read off the conversation's row, never counted from its
    messages: a thread of thousands costs what one of ten does. The row as the caller loaded it: loaded
    before the messages it draws, the version is never newer than they are (a commit in between makes
    the next poll draw again, it loses nothing)."""
    if conversation is None:
        return "0"
    return f"{conversation.last_message_id or 0}.{conversation.change_seq or 0}"


def markers(session: Session, user_id: int, conversation_id: int) -> dict[str, int]:
    """The user's markers of the conversation: the last message read, per channel."""
    rows = session.execute(
        sa.select(ConversationRead.channel, ConversationRead.last_read_message_id).where(
            ConversationRead.user_id == user_id, ConversationRead.conversation_id == conversation_id
        )
    )
    return {channel: upto for channel, upto in rows}


def mark_read(
    session: Session,
    user_id: int,
    conversation_id: int,
    channels: str | Iterable[str],
    upto: int,
    known: dict[str, int] | None = None,
) -> dict[str, int]:
    """The user has seen these channels up to message `upto` (a marker never moves back). Writes only
    the markers that are behind, and then recounts the inbox's unread number once (which writes only
    when it changed: a thread opened again with nothing new writes nothing). `known`: the markers, if
    the caller has read them. Returns the markers as they are now."""
    wanted = [channels] if isinstance(channels, str) else list(channels)
    now = dict(markers(session, user_id, conversation_id) if known is None else known)
    behind = [c for c in wanted if now.get(c, 0) < upto]
    if upto <= 0:
        return now
    if not behind:
        # Nothing to move, but a conversation marked unread is read again once opened.
        _recount(session, user_id, conversation_id)
        return now
    dialect = session.get_bind().dialect.name
    module = {"postgresql": postgresql, "sqlite": sqlite}[dialect]
    stamp = utcnow()
    insert = module.insert(ConversationRead).values(
        [
            {
                "user_id": user_id,
                "conversation_id": conversation_id,
                "channel": channel,
                "last_read_message_id": upto,
                "updated_at": stamp,
            }
            for channel in behind
        ]
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["user_id", "conversation_id", "channel"],
            set_={"last_read_message_id": upto, "updated_at": stamp},
            where=ConversationRead.last_read_message_id < upto,
        )
    )
    _recount(session, user_id, conversation_id)
    now.update({c: upto for c in behind})
    return now


def _unread_on(user_id: Any, conversation_id: Any, channel: str) -> sa.ScalarSelect[int]:
    """Inbound messages of one channel past this user's marker of it: one index range (conversation,
    channel, id) from the marker on, whatever the length of the thread."""
    marker = (
        sa.select(ConversationRead.last_read_message_id)
        .where(
            ConversationRead.user_id == user_id,
            ConversationRead.conversation_id == conversation_id,
            ConversationRead.channel == channel,
        )
        .scalar_subquery()
    )
    return (
        sa.select(sa.func.count())
        .select_from(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.channel == channel,
            Message.direction == "inbound",
            Message.id > sa.func.coalesce(marker, 0),
        )
        .scalar_subquery()
    )


# The statements below run on every opened thread; they are built once, with bound parameters
# (building them cost more than running them).
_USER, _CONVERSATION = sa.bindparam("reader"), sa.bindparam("conversation")


@lru_cache(maxsize=1)
def _recount_statement() -> sa.Update:
    total: sa.ColumnElement[int] = sa.literal(0)
    for channel in CHANNELS:
        total = total + _unread_on(_USER, _CONVERSATION, channel)
    return (
        sa.update(ConversationState)
        .where(
            ConversationState.user_id == _USER,
            ConversationState.conversation_id == _CONVERSATION,
            ConversationState.unread > 0,
            ConversationState.unread != total,
        )
        .values(unread=total, changed_at=sa.bindparam("now"))
        .execution_options(synchronize_session=False)
    )


@lru_cache(maxsize=8)
def _unread_statement(channels: tuple[str, ...]) -> sa.Select[Any]:
    return sa.select(*(_unread_on(_USER, _CONVERSATION, c) for c in channels))


def _recount(session: Session, user_id: int, conversation_id: int) -> None:
    """The inbox's unread count of this user and conversation, from the markers (when it has one and it
    changed: a write only when the number does)."""
    session.execute(
        _recount_statement(), {"reader": user_id, "conversation": conversation_id, "now": utcnow()}
    )


def recount(session: Session, user_id: int, conversation_id: int) -> None:
    """The user's unread count of the conversation from the markers again: what "Mark unread" or a
    mention in a note set is cleared when nothing is unread on any channel."""
    _recount(session, user_id, conversation_id)


def mark_conversation_read(session: Session, user_id: int, conversation: Conversation) -> None:
    """The user has seen the whole conversation, every channel (the inbox's thread shows them all)."""
    upto = conversation.last_message_id or 0
    mark_read(
        session, user_id, conversation.id, [c for c in CHANNELS if getattr(conversation, f"has_{c}")], upto
    )


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


def unread_by_channel(
    session: Session,
    user_id: int,
    conversation_id: int | None,
    known: dict[str, int] | None = None,
    newest: int | None = None,
) -> dict[str, int]:
    """Inbound messages this user has not seen yet, per channel. With the user's markers (`known`) and
    the conversation's newest message id (`newest`), a channel read up to the newest is not counted."""
    if conversation_id is None:
        return {}
    channels = [c for c in CHANNELS if known is None or newest is None or known.get(c, 0) < newest]
    if not channels:
        return {}
    counts = session.execute(
        _unread_statement(tuple(channels)), {"reader": user_id, "conversation": conversation_id}
    ).one()
    return {channel: n for channel, n in zip(channels, counts, strict=True) if n}


def activity_per_subject(user_id: int, key: Any) -> sa.Select[Any]:
    """Per subject with a conversation (`key`: Conversation.application_id or
    Conversation.community_membership_id): this user's unread count (what the inbox keeps, see
    webapp.inbox.changes) and the time of the newest message, as `subject_id`, `unread`,
    `last_at`; for the lists of applications and of community members."""
    return (
        sa.select(
            key.label("subject_id"),
            sa.func.coalesce(ConversationState.unread, 0).label("unread"),
            Conversation.last_message_at.label("last_at"),
        )
        .outerjoin(
            ConversationState,
            sa.and_(
                ConversationState.conversation_id == Conversation.id, ConversationState.user_id == user_id
            ),
        )
        .where(key.is_not(None))
    )
