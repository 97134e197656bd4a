"""What waits for one person, for the top bar of every page: how many conversations have something they
have not read, among those assigned to them or on their teams, and a stamp that moves whenever that
number may have (their own side of the conversations: an inbound message, a read, "mark unread").

The page sends the stamp it shows with its poll (static/js/app.js); the answer carries the count again
only when the stamp moved, so an unchanged poll stays one index probe more than it was. With the count
come the newest reply that waits for them and the newest mention of them: what the desktop alert follows
(a second reply in a conversation already unread moves neither the count nor anything else it shows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.accounts import access
from webapp.models import (
    Conversation,
    ConversationEvent,
    ConversationRead,
    ConversationState,
    NoteMention,
    User,
)

# The top bar counts this far and then says "99+", as the Inbox's title does.
CAP = 99

S = ConversationState


@dataclass(frozen=True)
class Waiting:
    count: int
    stamp: str  # the newest change of the person's own conversation states, in microseconds
    # The id of the newest inbound message they have not read in those conversations (when it is its
    # conversation's last message), and of the newest note that mentions them: a new one is news.
    reply: int = 0
    mention: int = 0

    @property
    def label(self) -> str:
        return f"{CAP}+" if self.count > CAP else str(self.count)

    def header(self) -> str:
        """The value of the X-Relay-Waiting answer header: "<count> <stamp> <reply> <mention>"."""
        return f"{self.count} {self.stamp} {self.reply} {self.mention}"


def _micros(at: datetime | None) -> str:
    return str(int(at.timestamp()) * 1_000_000 + at.microsecond) if at is not None else "0"


def stamp(session: Session, user_id: int) -> str:
    """One probe of ix_conversation_state_user_changed: the person's newest change."""
    return _micros(session.scalar(_stamp_statement(), {"waiting_user": user_id}))


def waiting(session: Session, user: User) -> Waiting:
    """The count and the stamp, in one statement (0 for staff, who belong to no customer)."""
    if user.organization_id is None:
        return Waiting(0, "0")
    count, newest, reply, mention = session.execute(_statement(*_key(user)), {"waiting_user": user.id}).one()
    return Waiting(count or 0, _micros(newest), reply or 0, mention or 0)


def _key(user: User) -> tuple[Any, ...]:
    return (user.id, user.organization_id, access.entitled(user, "crm"))


@lru_cache(maxsize=1)
def _stamp_statement() -> sa.Select[Any]:
    return sa.select(sa.func.max(S.changed_at)).where(S.user_id == sa.bindparam("waiting_user"))


# Built once per person and product (the rule is per user, as the Inbox's statements are).
@lru_cache(maxsize=4096)
def _statement(user_id: int, organization_id: int, crm: bool) -> sa.Select[Any]:
    rule = access.mine_or_my_teams_rule(user_id, organization_id, crm)
    rows = (
        sa.select(S.conversation_id)
        .join(Conversation, Conversation.id == S.conversation_id)
        .where(S.user_id == sa.bindparam("waiting_user"), S.unread > 0, rule)
        .limit(CAP + 1)
        .subquery()
    )
    user = sa.bindparam("waiting_user")
    marker = (
        sa.select(ConversationRead.last_read_message_id)
        .where(
            ConversationRead.user_id == user,
            ConversationRead.conversation_id == Conversation.id,
            ConversationRead.channel == Conversation.last_channel,
        )
        .correlate(Conversation)
        .scalar_subquery()
    )
    # Every waiting conversation, not the counted 100: the newest reply may be in any of them. A reply
    # followed by a colleague's answer before the next poll is not news (someone answered it).
    reply = (
        sa.select(sa.func.max(Conversation.last_message_id))
        .select_from(S)
        .join(Conversation, Conversation.id == S.conversation_id)
        .where(
            S.user_id == user,
            S.unread > 0,
            rule,
            Conversation.last_direction == "inbound",
            Conversation.last_message_id > sa.func.coalesce(marker, 0),
        )
        .scalar_subquery()
    )
    # Not their own mention of themselves (which marks nothing unread for them).
    mention = (
        sa.select(sa.func.max(NoteMention.id))
        .join(ConversationEvent, ConversationEvent.id == NoteMention.event_id)
        .where(NoteMention.user_id == user, ConversationEvent.author_id != user)
        .scalar_subquery()
    )
    return sa.select(
        sa.select(sa.func.count()).select_from(rows).scalar_subquery(),
        _stamp_statement().scalar_subquery(),
        reply,
        mention,
    )
