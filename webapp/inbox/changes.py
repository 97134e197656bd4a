"""What the inbox keeps about a conversation, written in the transaction that changes it.

`record(session, conversation, message)` is called wherever a message joins a conversation (compose,
an inbound reply, the HELP answer, an unmatched message assigned): it keeps the latest message on the
conversation row (when, which way, which channel, who wrote it, its first line), the channels the
conversation has, one more unread message for everyone who may see it (an inbound message), and
"I wrote in it" for the author (an outbound one). `touch(session, conversation_id)` is for any other
change a page must learn (a status moved).

Both also move the conversation's change marker (`Conversation.change_seq`, which the thread follows)
and the clock of its organisation (`ActivityClock`), which is what an open inbox polls; `record` (and
`touch(…, listed=True)`) moves the list's marker too (`Conversation.list_seq`, to the same value): a
change the list's row shows. A status moves only the first, so that the list's poll stays quiet in a
storm of status reports. That part runs just before the commit (a `before_commit` hook), for two
reasons: the clock row of a customer is a lock that every change of that customer takes, so it is taken
last and held only for the commit (never while a credit debit or a provider call waits); and the value
is then taken under that lock, so a page that has seen value n has seen every change up to n, of either
marker (see ActivityClock).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, SessionTransaction, object_session, scoped_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from webapp.accounts import access
from webapp.models import (
    ActivityClock,
    Conversation,
    ConversationState,
    Message,
    Organization,
    utcnow,
)
from webapp.models.organization import chain
from webapp.models.upsert import on_conflict

PREVIEW_LENGTH = 200
_PENDING = "relay.activity.pending"
_LISTED = "relay.activity.listed"  # those of _PENDING whose row in the list changed too


def preview(message: Message) -> str:
    """An email's subject, else the message's first line with text, shortened."""
    text = " ".join((message.subject or "").split())
    if not text:
        for line in (message.body or "").splitlines():
            if line.strip():
                text = " ".join(line.split())
                break
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


def record(
    session: Session, conversation: Conversation, message: Message, *, left_at: datetime | None = None
) -> None:
    """The message (flushed: it has its id) is now part of the conversation: keep what the inbox needs.

    `left_at`: a message scheduled for later, leaving now. It was written (and given its id) before the
    messages that came while it waited, but from this moment it is the latest; last_message_id stays the
    highest id, which the read markers and the pages' versions count up to."""
    assert message.id is not None, "flush the message first"
    at = left_at or message.created_at or utcnow()
    # Ids grow with every insert, so the highest one is the newest message; a message joined late (an
    # unmatched reply assigned afterwards) counts for the channels and the unread count, not as latest.
    newest = conversation.last_message_id is None or message.id > conversation.last_message_id
    if newest or (left_at is not None and at >= (conversation.last_message_at or at)):
        conversation.last_message_id = max(message.id, conversation.last_message_id or 0)
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
        viewers, params = access.conversation_viewers_query(
            conversation, chain(session, conversation.organization_id)
        )
        session.execute(
            _states_statement(viewers),
            {**params, "state_conversation": conversation.id, "state_at": now},
        )
    elif message.author_id is not None:
        session.execute(
            _states_statement(None),
            {"state_user": message.author_id, "state_conversation": conversation.id, "state_at": now},
        )
    touch(session, conversation.id, listed=True)


@lru_cache(maxsize=3)
def _states_statement(viewers: sa.CompoundSelect | None) -> sa.Insert:
    """One statement, built once for each statement of viewers (access.conversation_viewers_query): for
    each viewer one more unread message; without viewers, "wrote in it" for the author (state_user)."""
    if viewers is None:
        users = sa.select(sa.bindparam("state_user", type_=sa.Integer).label("user_id")).subquery()
        change = "wrote = true"
    else:
        users = sa.select(viewers.subquery().c[0].label("user_id")).subquery()
        change = f"unread = {ConversationState.__tablename__}.unread + 1"
    unread = viewers is not None
    rows = sa.select(
        users.c.user_id,
        sa.bindparam("state_conversation", type_=sa.Integer),
        sa.literal(1 if unread else 0),
        sa.literal(not unread),
        sa.bindparam("state_at", type_=ConversationState.changed_at.type),
    ).where(sa.true())  # SQLite reads "SELECT … FROM t ON CONFLICT" as a join without a WHERE
    statement = sa.insert(ConversationState.__table__).from_select(
        ["user_id", "conversation_id", "unread", "wrote", "changed_at"], rows
    )
    return on_conflict(
        statement,
        f"ON CONFLICT (user_id, conversation_id) DO UPDATE SET changed_at = excluded.changed_at, {change}",
    )


def touch(session: Session | None, conversation_id: int | None, *, listed: bool = False) -> None:
    """Something shown about the conversation changed: move its change marker at the commit; listed:
    something its row in the inbox's list shows, so move the list's marker too."""
    if session is None or conversation_id is None:
        return
    if isinstance(session, scoped_session):  # Flask-SQLAlchemy's db.session: the session it stands for
        session = session()
    if session.get_transaction() is None:
        session.connection()  # begin now, so that a rollback forgets this touch (after_transaction_end)
    session.info.setdefault(_PENDING, set()).add(conversation_id)
    if listed:
        session.info.setdefault(_LISTED, set()).add(conversation_id)


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


def _stamp(session: Session, conversation_ids: set[int], listed: set[int]) -> None:
    """Take the next value of each customer's clock and give it to its changed conversations (and to
    the list's marker of those listed)."""
    ids = sorted(conversation_ids)
    if session.get_bind().dialect.name == "postgresql":
        # The usual case in one round trip: conversations of organisations without a parent (each its
        # own customer), locked, their clocks moved and the markers written by one statement.
        marked = session.execute(_LOCK_AND_MARK, {"conversation_ids": ids, "listed": sorted(listed)}).all()
        if all(seq is not None for *_, seq in marked):
            for conversation_id, _, _, seq in marked:
                _show(session, conversation_id, seq, conversation_id in listed)
            return
        # A sub-organisation's among them: the rows are locked, nothing was marked; its family's clocks
        # are moved below, in the one order.
        rows = [(conversation_id, org_id, parent_id) for conversation_id, org_id, parent_id, _ in marked]
    else:
        rows = [tuple(row) for row in session.execute(_LOCK, {"conversation_ids": ids})]
    chains = {
        org_id: [org_id] if parent_id is None else chain(session, org_id) for _, org_id, parent_id in rows
    }
    by_top: dict[int, list[int]] = {}
    for conversation_id, org_id, _ in rows:
        by_top.setdefault(chains[org_id][-1], []).append(conversation_id)
    for top in sorted(by_top):  # one order for every writer: no two wait on each other's clocks
        seq = _advance_and_mark(session, top, by_top[top], listed)
        below = {org for family in chains.values() if family[-1] == top for org in family[:-1]}
        for org_id in sorted(below):
            _advance(session, org_id, to=seq)
        for conversation_id in by_top[top]:
            _show(session, conversation_id, seq, conversation_id in listed)


def _show(session: Session, conversation_id: int, seq: int, listed: bool) -> None:
    # The markers were written past the ORM: a conversation this session holds (its sessions keep
    # objects after a commit) shows the new values, not the ones it was loaded with.
    loaded = session.identity_map.get(identity_key(Conversation, conversation_id))
    if loaded is not None:
        set_committed_value(loaded, "change_seq", seq)
        if listed:
            set_committed_value(loaded, "list_seq", seq)


# Built once (it runs at every commit that changes a conversation): the rows the marker is written to,
# locked before the clock (the order every writer uses); the organisation only read (its parent: one
# without is its own top, no family to walk).
_LOCK = (
    sa.select(Conversation.id, Conversation.organization_id, Organization.parent_id)
    .join(Organization, Organization.id == Conversation.organization_id)
    .where(Conversation.id.in_(sa.bindparam("conversation_ids", expanding=True)))
    .order_by(Conversation.id)
    .with_for_update(of=Conversation, key_share=True)
)


def _advance_and_mark(session: Session, top: int, conversation_ids: list[int], listed: set[int]) -> int:
    """The top's clock + 1, written to its changed conversations (rows locked already: never a wait)."""
    if session.get_bind().dialect.name == "postgresql":
        # One statement, one round trip: it runs at every commit that changes a conversation.
        marks = {"clock_of": top, "marked": conversation_ids, "listed": sorted(listed)}
        return session.execute(_MARK, marks).scalars().first()
    seq = _advance(session, top)
    session.execute(
        sa.update(Conversation)
        .where(Conversation.id.in_(conversation_ids))
        .values(
            change_seq=seq, list_seq=sa.case((Conversation.id.in_(listed), seq), else_=Conversation.list_seq)
        )
        .execution_options(synchronize_session=False)
    )
    return seq


_LISTED_IDS = sa.bindparam("listed", type_=postgresql.ARRAY(sa.Integer))


def _lock_and_mark(conversations: str, listed: str = ":listed") -> str:
    """PostgreSQL, when no organisation of the conversations (their ids: `conversations`, SQL) has a
    parent: the rows locked (in the order of their ids, all of them before any clock: the `clock` part
    needs all of `target`), each organisation's clock moved in the order of their ids, the conversations
    marked (`marked`; the list's marker of those in `listed`, an array: an empty one is the usual status
    report), in one statement. When one has a parent, it only locks: `marked` is empty, and the family's
    clocks are moved by _stamp."""
    return (
        "target AS ("
        " SELECT c.id, c.organization_id, o.parent_id FROM conversation c"
        " JOIN organization o ON o.id = c.organization_id"
        f" WHERE c.id IN {conversations} ORDER BY c.id FOR NO KEY UPDATE OF c),"
        " clock AS ("
        " INSERT INTO activity_clock (organization_id, seq)"
        " SELECT DISTINCT organization_id, 1 FROM target"
        " WHERE NOT EXISTS (SELECT 1 FROM target WHERE parent_id IS NOT NULL) ORDER BY organization_id"
        " ON CONFLICT (organization_id) DO UPDATE SET seq = activity_clock.seq + 1"
        " RETURNING organization_id, seq),"
        " marked AS ("
        " UPDATE conversation SET change_seq = clock.seq,"
        f" list_seq = CASE WHEN conversation.id = ANY({listed}) THEN clock.seq ELSE conversation.list_seq END"
        " FROM target, clock"
        " WHERE conversation.id = target.id AND clock.organization_id = target.organization_id"
        " RETURNING conversation.id, conversation.change_seq)"
    )


_LOCK_AND_MARK = sa.text(
    "WITH "
    + _lock_and_mark(":conversation_ids")
    + " SELECT target.id, target.organization_id, target.parent_id, marked.change_seq"
    " FROM target LEFT JOIN marked ON marked.id = target.id ORDER BY target.id"
).bindparams(sa.bindparam("conversation_ids", expanding=True), _LISTED_IDS)


def marked_with(change: str) -> str:
    """PostgreSQL: one statement that makes `change` (a data-modifying statement RETURNING
    conversation_id, for one conversation at most: a change its row in the list does not show, a
    status) and moves that conversation's marker, for a unit of work that is this one change (run it
    without a transaction around it: database.one_statement). Its row, if `change` changed one, is for
    `shown`."""
    return (
        f"WITH changed AS ({change}), "
        + _lock_and_mark("(SELECT conversation_id FROM changed)", listed="'{}'::integer[]")
        + " SELECT changed.conversation_id, marked.change_seq FROM changed"
        " LEFT JOIN marked ON marked.id = changed.conversation_id"
    )


def shown(session: Session, conversation_id: int | None, seq: int | None) -> None:
    """After a `marked_with` statement, its transaction ended: a conversation of a sub-organisation
    (not marked: `seq` None) is touched, its family's clocks moved at the session's next commit."""
    if conversation_id is None:
        return
    if seq is None:
        touch(session, conversation_id)
    else:
        _show(session, conversation_id, seq, listed=False)


# PostgreSQL: the clock moved and the conversations marked in one statement (a data-modifying CTE).
_MARK = sa.text(
    "WITH clock AS ("
    " INSERT INTO activity_clock (organization_id, seq) VALUES (:clock_of, 1)"
    " ON CONFLICT (organization_id) DO UPDATE SET seq = activity_clock.seq + 1 RETURNING seq)"
    " UPDATE conversation SET change_seq = (SELECT seq FROM clock),"
    " list_seq = CASE WHEN id = ANY(:listed) THEN (SELECT seq FROM clock) ELSE list_seq END"
    " WHERE id IN :marked RETURNING change_seq"
).bindparams(sa.bindparam("marked", expanding=True), _LISTED_IDS)


def _advance(session: Session, organization_id: int, to: int | None = None) -> int:
    """The top's clock + 1 (to=None), or another organisation's clock set to the top's value."""
    statement = _advance_statement(session.get_bind().dialect.name, to is not None)
    return session.execute(statement, {"clock_of": organization_id, "clock_to": to or 1}).scalar_one()


@lru_cache(maxsize=4)
def _advance_statement(dialect: str, catch_up: bool) -> sa.Insert:
    table = ActivityClock.__table__
    if catch_up:  # never back: another customer's change may not lower it (it cannot, but say so)
        new = f"{'greatest' if dialect == 'postgresql' else 'max'}({table.name}.seq, excluded.seq)"
    else:
        new = f"{table.name}.seq + 1"
    statement = sa.insert(table).values(
        organization_id=sa.bindparam("clock_of", type_=sa.Integer),
        seq=sa.bindparam("clock_to", type_=sa.Integer),
    )
    return on_conflict(statement, f"ON CONFLICT (organization_id) DO UPDATE SET seq = {new}").returning(
        table.c.seq
    )


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
    listed = session.info.pop(_LISTED, set())
    if not pending:
        return
    _stamp(session, pending, listed)


@sa.event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (stamped already) or rolled back: nothing pending
        session.info.pop(_PENDING, None)
        session.info.pop(_LISTED, None)
