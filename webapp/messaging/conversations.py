"""Finding and starting conversations, and reading their messages by channel."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.messaging.subjects import Subject
from webapp.models import Conversation, Message, User, utcnow
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


def lock(session: Session, *conversation_ids: int | None) -> None:
    """The conversations' rows, locked as a reply locks its one (webapp.messaging.inbound: FOR NO KEY
    UPDATE, as a message being inserted holds a key-share lock on it), in the order of their ids, by a
    writer that will touch the credits next. The one order is the conversation's row, then the credit
    account: a reply that cancels a follow-up takes them so (and refunds it), and every writer marks
    the conversation (an UPDATE of this row, at its commit at the latest: webapp.inbox.changes), so one
    that took the credits first could wait for a reply that waits for it: a deadlock. SQLite writes one
    at a time: a plain read there."""
    session.execute(
        sa.select(Conversation.id)
        .where(Conversation.id.in_(sorted({i for i in conversation_ids if i is not None})))
        .order_by(Conversation.id)
        .with_for_update(key_share=True)
    ).all()


# A thread opens with the newest messages; older ones come as the reader scrolls up.
PAGE = 50


# A scheduled message whose text was edited is cancelled with this code and replaced by a new one
# (webapp.messaging.scheduled): the thread and its counts show the new one only.
EDITED = "edited"
_SHOWN = sa.or_(Message.status != "cancelled", sa.func.coalesce(Message.error_code, "") != EDITED)


def page(
    session: Session,
    conversation: Conversation | None,
    channel: str | None,
    *,
    from_id: int | None = None,
    before_id: int | None = None,
    limit: int = PAGE,
) -> tuple[list[Message], bool]:
    """The conversation's messages on one channel (all channels when None), oldest first, as the
    database has them now (but on the newest page, or a refresh of it, the messages still waiting for
    their time come last): the newest `limit` (before `before_id`, when given), or every one from
    `from_id` on (what a refreshed thread already showed, however far the reader had scrolled up); and
    whether there are older ones still, asked in the same statement (one row more than the page)
    unless the page runs from `from_id`.

    populate_existing: a message this session loaded before (the one just composed, still "queued"
    here) is read again, so that a status the dispatcher committed meanwhile is what gets shown.
    """
    if conversation is None:
        return [], False
    query = sa.select(Message).where(Message.conversation_id == conversation.id, _SHOWN)
    if channel is not None:
        query = query.where(Message.channel == channel)
    if before_id is not None:
        query = query.where(Message.id < before_id)
    # From where the reader had scrolled up to, or the newest page.
    query = (
        query.where(Message.id >= from_id).limit(MAX_SHOWN) if from_id is not None else query.limit(limit + 1)
    )
    newest_first = list(
        session.scalars(query.order_by(Message.id.desc()).execution_options(populate_existing=True)).all()
    )
    if from_id is None:
        older = len(newest_first) > limit
        del newest_first[limit:]
    else:
        older = bool(newest_first) and has_older(session, conversation, channel, newest_first[-1].id)
    # The authors (and who assigned a message) in one statement, not refreshed: populate_existing on
    # them would reset the signed-in user's loaded rights, to be read again by the next check. Each
    # message then finds its author in the session without a query.
    authors = {u for m in newest_first for u in (m.author_id, m.assigned_by_id) if u is not None}
    if authors:
        session.scalars(sa.select(User).where(User.id.in_(authors))).all()
    oldest_first = list(reversed(newest_first))
    if before_id is None:
        # The newest messages end with what waits for its time, soonest first: that is where it will
        # go. (One written for later more than a page of messages ago stays where it was written.)
        waiting = [m for m in oldest_first if m.status == "scheduled"]
        waiting.sort(key=lambda m: (m.send_at, m.id))
        oldest_first = [m for m in oldest_first if m.status != "scheduled"] + waiting
    return oldest_first, older


# However far up a reader scrolled, a refresh redraws at most this many messages.
MAX_SHOWN = 2000


def has_older(session: Session, conversation: Conversation, channel: str | None, oldest_id: int) -> bool:
    query = sa.select(Message.id).where(
        Message.conversation_id == conversation.id, Message.id < oldest_id, _SHOWN
    )
    if channel is not None:
        query = query.where(Message.channel == channel)
    return session.scalar(sa.select(query.exists())) or False


def counts_by_channel(session: Session, conversation: Conversation | None) -> dict[str, int]:
    if conversation is None:
        return {}
    rows = session.execute(
        sa.select(Message.channel, sa.func.count())
        .where(Message.conversation_id == conversation.id, _SHOWN)
        .group_by(Message.channel)
    )
    return {channel: n for channel, n in rows}
