"""Who answers a conversation: one person of its own team (the job's hiring team, the community's sourcing
team) who may write in it. Assigning, reassigning and unassigning are done by someone who may write in
it too; each change is a line in the thread (a ConversationEvent), never a message.

Two people assigning at once: the change is a conditional UPDATE against the assignee the asker saw, so
one wins and the other is told who has it now (a refusal, never an error).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.accounts import access
from webapp.inbox import changes
from webapp.messaging import checks, subjects
from webapp.messaging.subjects import Subject
from webapp.models import Application, CommunityMembership, Conversation, ConversationEvent, User
from webapp.refusals import Refused

# What `expected` defaults to: the assignee on the conversation as the caller loaded it.
AS_LOADED = object()


class AssignRefused(Refused):
    """Why this conversation may not be (re)assigned so."""


def writer_refusal(session: Session, user: User, about: Subject) -> str | None:
    """Why the user may not act in this conversation as its team does (assign it, write a note in it),
    or None: the rule for writing in it (checks.not_ours: a sub-organisation's conversation is read only
    by its parent's administrators; access.may_write: its team, and its organisation's admins)."""
    read_only = checks.not_ours(user, about)
    if read_only:
        return read_only
    if not access.may_write(session, user, about):
        return f"Only the {about.team} can assign this conversation or write notes in it."
    return None


def assignable(session: Session, conversation: Conversation) -> list[User]:
    """The people it may be assigned to: the active members of its own team, by name."""
    team = access.conversation_team(conversation).subquery()
    return list(
        session.scalars(
            sa.select(User)
            .where(User.id.in_(sa.select(team.c[0])), User.active.is_(True))
            .order_by(User.name, User.id)
        )
    )


def _may_be_assigned(session: Session, conversation: Conversation, person: User) -> bool:
    team = access.conversation_team(conversation).subquery()
    return person.active and bool(session.scalar(sa.select(sa.literal(person.id).in_(sa.select(team.c[0])))))


def assign(
    session: Session,
    by_user: User,
    conversation: Conversation,
    assignee: User | None,
    now: datetime,
    *,
    expected: int | object | None = AS_LOADED,
) -> ConversationEvent | None:
    """Assign the conversation to `assignee` (None: unassign it), as `by_user`, at `now`: the event of the
    change (its line in the thread), or None when it was so already. `expected`: the assignee the asker
    saw (the form's), which must still be the one; by default the conversation's as loaded. The caller
    commits."""
    about = subjects.of_conversation(conversation)
    refusal = writer_refusal(session, by_user, about)
    if refusal:
        raise AssignRefused(refusal)
    if assignee is not None and assignee.organization_id != conversation.organization_id:
        # Another organisation's person (a sub-organisation's, another customer's): not named.
        raise AssignRefused(f"Choose someone of the {about.team}.", "assignee")
    if assignee is not None and not _may_be_assigned(session, conversation, assignee):
        raise AssignRefused(
            f"{assignee.name} is not on the {about.team}: only its members can be assigned.", "assignee"
        )
    seen = conversation.assignee_id if expected is AS_LOADED else expected
    new = assignee.id if assignee is not None else None
    if seen == new:
        return None
    was = Conversation.assignee_id.is_(None) if seen is None else Conversation.assignee_id == seen
    done = session.execute(
        sa.update(Conversation)
        .where(Conversation.id == conversation.id, was)
        .values(assignee_id=new)
        .execution_options(synchronize_session=False)
    )
    session.expire(conversation, ["assignee_id", "assignee"])
    if done.rowcount != 1:
        current = session.scalar(
            sa.select(Conversation.assignee_id).where(Conversation.id == conversation.id)
        )
        if current == new:  # someone has just done the same: nothing more to say
            return None
        raise AssignRefused(_changed_meanwhile(session, current), "assignee")
    event = ConversationEvent(
        conversation_id=conversation.id,
        kind="assigned" if new is not None else "unassigned",
        author_id=by_user.id,
        assignee_id=new if new is not None else seen,  # type: ignore[arg-type]
        created_at=now,
    )
    session.add(event)
    session.flush()
    # The thread shows the line, and the Inbox's row its assignee (*Mine*, *Unassigned*).
    changes.touch(session, conversation.id, listed=True)
    return event


def _changed_meanwhile(session: Session, current: int | None) -> str:
    if current is None:
        return "Someone has just unassigned this conversation: choose again."
    name = session.scalar(sa.select(User.name).where(User.id == current))
    return f"Someone has just assigned this conversation to {name}: choose again."


def line(event: ConversationEvent) -> str:
    """The change in words, as the thread says it: "Ada assigned this to Riley", "Ada took this",
    "Ada unassigned Riley"."""
    who = event.author.name
    if event.kind == "unassigned" and event.assignee_id == event.author_id:
        return f"{who} unassigned themselves"
    if event.kind == "unassigned":
        return f"{who} unassigned {event.assignee.name if event.assignee else 'someone'}"
    if event.assignee_id == event.author_id:
        return f"{who} took this"
    return f"{who} assigned this to {event.assignee.name if event.assignee else 'someone'}"


def release(
    session: Session,
    user: User,
    *,
    job_ids: Iterable[int] | None = None,
    community_ids: Iterable[int] | None = None,
) -> list[int]:
    """Unassign the user from the conversations they can no longer answer: those of these jobs and
    communities (they left those teams), or all of them (both None: deactivated). An assignee is always
    one of the conversation's team who may write in it, so *Unassigned* lists these again and nobody
    is told of a reply they cannot see. The ids of the conversations changed; the caller commits."""
    condition: sa.ColumnElement[bool] = sa.true()
    if job_ids is not None or community_ids is not None:
        jobs, communities = list(job_ids or []), list(community_ids or [])
        condition = sa.or_(
            Conversation.application_id.in_(sa.select(Application.id).where(Application.job_id.in_(jobs))),
            Conversation.community_membership_id.in_(
                sa.select(CommunityMembership.id).where(CommunityMembership.community_id.in_(communities))
            ),
        )
        if not jobs and not communities:
            return []
    found = list(
        session.scalars(sa.select(Conversation.id).where(Conversation.assignee_id == user.id, condition))
    )
    if not found:
        return []
    session.execute(
        sa.update(Conversation)
        .where(Conversation.id.in_(found), Conversation.assignee_id == user.id)
        .values(assignee_id=None)
        .execution_options(synchronize_session=False)
    )
    for conversation_id in found:
        changes.touch(session, conversation_id, listed=True)
    return found
