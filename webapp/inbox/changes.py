"""What the inbox keeps about a conversation, written in the transaction that changes it.

`record(session, conversation, message)` is called wherever a message joins a conversation (compose,
an inbound reply, the HELP answer, an unmatched message assigned): it keeps the latest message on the
conversation row (when, which way, which channel, who wrote it, its first line), the channels the
conversation has, one more unread message for everyone who may see it (an inbound message), and
"I wrote in it" for the author (an outbound one). `touch(session, conversation_id)` is for any other
change a page must learn (a status moved).

Both also move the conversation's change marker (`Conversation.change_seq`) and the clock of its
organisation (`ActivityClock`), which is what an open inbox polls. That part runs just before the
commit (a `before_commit` hook), for two reasons: the clock row of a customer is a lock that every
change of that customer takes, so it is taken last and held only for the commit (never while a credit
debit or a provider call waits); and the value is then taken under that lock, so a page that has seen
value n has seen every change up to n (see ActivityClock).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction, object_session, scoped_session

from webapp.accounts import access
from webapp.models import (
    ActivityClock,
    Conversation,
    ConversationState,
    Message,
    utcnow,
)
from webapp.models.organization import family_above

PREVIEW_LENGTH = 200
_PENDING = "relay.activity.pending"


def preview(message: Message) -> str:
    """An email's subject, else the message's first line with text, shortened."""
    text = " ".join((message.subject or "").split())
    if not text:
        for line in (message.body or "").splitlines():
            if line.strip():
                text = " ".join(line.split())
                break
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


def record(session: Session, conversation: Conversation, message: Message) -> None:
    """The message (flushed: it has its id) is now part of the conversation: keep what the inbox needs."""
    assert message.id is not None, "flush the message first"
    at = message.created_at or utcnow()
    # Ids grow with every insert, so the highest one is the newest message; a message joined late (an
    # unmatched reply assigned afterwards) counts for the channels and the unread count, not as latest.
    if conversation.last_message_id is None or message.id > conversation.last_message_id:
        conversation.last_message_id = message.id
        conversation.last_direction = message.direction
        conversation.last_channel = message.channel
        conversation.last_author_id = message.author_id
        conversation.last_preview = preview(message)
    conversation.last_message_at = max(filter(None, [conversation.last_message_at, at]))
    setattr(conversation, f"has_{message.channel}", True)
    # The conversation's row first, then the users' rows: every writer takes them in this order (an
    # inbound reply locks the conversation before it counts), so two writers never wait on each other.
    session.flush()
    now = utcnow()
    if message.direction == "inbound":
        _upsert_states(
            session,
            sa.select(
                access.conversation_viewers(conversation).subquery().c[0].label("user_id"),
            ),
            conversation.id,
            now,
            unread=True,
        )
    elif message.author_id is not None:
        _upsert_states(
            session,
            sa.select(sa.literal(message.author_id).label("user_id")),
            conversation.id,
            now,
            wrote=True,
        )
    touch(session, conversation.id)


def _upsert_states(
    session: Session,
    users: sa.Select,
    conversation_id: int,
    now: datetime,
    unread: bool = False,
    wrote: bool = False,
) -> None:
    """One statement: for each user id `users` gives, one more unread message or "wrote in it"."""
    module = {"postgresql": postgresql, "sqlite": sqlite}[session.get_bind().dialect.name]
    users = users.subquery()
    rows = sa.select(
        users.c.user_id,
        sa.literal(conversation_id),
        sa.literal(1 if unread else 0),
        sa.literal(wrote),
        sa.literal(now, ConversationState.changed_at.type),
    ).where(sa.true())  # SQLite reads "SELECT … FROM t ON CONFLICT" as a join without a WHERE
    table = ConversationState.__table__
    statement = module.insert(table).from_select(
        ["user_id", "conversation_id", "unread", "wrote", "changed_at"], rows
    )
    changes: dict[str, object] = {"changed_at": statement.excluded.changed_at}
    if unread:
        changes["unread"] = table.c.unread + 1
    if wrote:
        changes["wrote"] = sa.true()
    session.execute(
        statement.on_conflict_do_update(index_elements=["user_id", "conversation_id"], set_=changes)
    )


def touch(session: Session | None, conversation_id: int | None) -> None:
    """Something shown about the conversation changed: move its change marker at the commit."""
    if session is None or conversation_id is None:
        return
    if isinstance(session, scoped_session):  # Flask-SQLAlchemy's db.session: the session it stands for
        session = session()
    if session.get_transaction() is None:
        session.connection()  # begin now, so that a rollback forgets this touch (after_transaction_end)
    session.info.setdefault(_PENDING, set()).add(conversation_id)


def touch_message(message: Message) -> None:
    """For code that holds only the message (a status moved): touch its conversation, if any."""
    touch(object_session(message), message.conversation_id)


def touch_messages(session: Session, message_ids: Iterable[int]) -> None:
    """For bulk status changes (the dispatcher's sweep): touch the conversations of these messages."""
    ids = list(message_ids)
    if not ids:
        return
    found = session.scalars(
        sa.select(Message.conversation_id)
        .where(Message.id.in_(ids), Message.conversation_id.is_not(None))
        .distinct()
    )
    for conversation_id in found:
        touch(session, conversation_id)


def _stamp(session: Session, conversation_ids: set[int]) -> None:
    """Take the next value of each customer's clock and give it to its changed conversations."""
    rows = session.execute(
        sa.select(Conversation.id, Conversation.organization_id)
        .where(Conversation.id.in_(sorted(conversation_ids)))
        .order_by(Conversation.id)
        # The rows the marker is written to, locked before the clock (the order every writer uses).
        .with_for_update(key_share=True)
    ).all()
    chains = {org_id: _chain(session, org_id) for org_id in {org for _, org in rows}}
    by_top: dict[int, list[int]] = {}
    for conversation_id, org_id in rows:
        by_top.setdefault(chains[org_id][-1], []).append(conversation_id)
    for top in sorted(by_top):  # one order for every writer: no two wait on each other's clocks
        seq = _advance(session, top)
        below = {org for chain in chains.values() if chain[-1] == top for org in chain[:-1]}
        for org_id in sorted(below):
            _advance(session, org_id, to=seq)
        session.execute(
            sa.update(Conversation)
            .where(Conversation.id.in_(by_top[top]))
            .values(change_seq=seq)
            .execution_options(synchronize_session=False)
        )


def _chain(session: Session, organization_id: int) -> list[int]:
    """The organisation and its parents, the top last."""
    above = family_above(organization_id)
    rows = session.execute(sa.select(above.c.id, above.c.parent_id)).all()
    parents = {row.id: row.parent_id for row in rows}
    chain, current = [], organization_id
    while current is not None:
        chain.append(current)
        current = parents.get(current)
    return chain


def _advance(session: Session, organization_id: int, to: int | None = None) -> int:
    """The top's clock + 1 (to=None), or another organisation's clock set to the top's value."""
    dialect = session.get_bind().dialect.name
    module = {"postgresql": postgresql, "sqlite": sqlite}[dialect]
    table = ActivityClock.__table__
    statement = module.insert(table).values(organization_id=organization_id, seq=1 if to is None else to)
    if to is None:
        new = table.c.seq + 1
    else:  # never back: another customer's change may not lower it (it cannot, but say so)
        new = (sa.func.greatest if dialect == "postgresql" else sa.func.max)(table.c.seq, to)
    return session.execute(
        statement.on_conflict_do_update(index_elements=["organization_id"], set_={"seq": new}).returning(
            table.c.seq
        )
    ).scalar_one()


@sa.event.listens_for(Session, "before_flush")
def _messages_changed(session: Session, flush_context: object, instances: object) -> None:
    """A message changed through the ORM (its status, its text): the pages showing its conversation
    learn it from the marker, whichever code made the change. (Bulk UPDATEs touch explicitly.)"""
    for obj in session.dirty:
        if (
            isinstance(obj, Message)
            and obj.conversation_id is not None
            and session.is_modified(obj, include_collections=False)
        ):
            touch(session, obj.conversation_id)


@sa.event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    # What the commit would write anyway, before the clock (the last lock taken); a message changed in
    # it adds its conversation (_messages_changed).
    session.flush()
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    _stamp(session, pending)


@sa.event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (stamped already) or rolled back: nothing pending
        session.info.pop(_PENDING, None)
