"""Two people assigning one conversation at once, on PostgreSQL (issue 21): one result, the other told
who has it now, never a 500 — with real requests, each from a test client of its own in a thread of its
own (tests/test_races.py's way)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests import test_inbox
from tests.test_inbox import conversation_of
from tests.test_races import at_once, holding, signed_in, statuses, token
from webapp.extensions import db
from webapp.messaging import assignment, notes
from webapp.models import Conversation, ConversationEvent, NoteMention, utcnow

world = test_inbox.world
HX = {"HX-Request": "true"}


@pytest.fixture
def backend() -> str:
    return "postgresql"  # SQLite serialises writers; the race only exists on a real server


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 10, "max_overflow": 5, "pool_timeout": 30}}


def events(conversation_id: int) -> list[ConversationEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(ConversationEvent).where(ConversationEvent.conversation_id == conversation_id)
        )
    )


def test_a_burst_of_assigns_leaves_one_assignee_and_one_line(app, world) -> None:
    w = world
    lena = conversation_of(w["lena"])
    db.session.commit()
    path = f"/conversations/{lena.id}/assignee"
    clients = [signed_in(app, email) for email in ("recruiter@acme.test", "manager@acme.test") * 3]
    people = [w["recruiter"].id, w["manager"].id] * 3

    def post(client, person):
        csrf = token(client, "/inbox")
        data = {"csrf_token": csrf, "assignee": str(person), "expected": ""}
        return lambda: client.post(path, data=data, headers=HX)

    answers = at_once([post(c, p) for c, p in zip(clients, people, strict=True)])
    assert 500 not in statuses(answers) and set(statuses(answers)) <= {200, 422}
    [line] = events(lena.id)
    db.session.expire_all()
    assert db.session.get(Conversation, lena.id).assignee_id == line.assignee_id
    # Those who asked for the same person as the winner were answered 200 (it is done); the others were
    # told who has it.
    winner = "Riley Recruiter" if line.assignee_id == w["recruiter"].id else "Morgan Manager"
    refused = [html for status, html in answers if status == 422]
    assert len(refused) == 3
    assert all(
        f"Someone has just assigned this conversation to {winner}: choose again." in r for r in refused
    )


def test_the_second_assign_waits_for_the_first_and_is_told(app, world) -> None:
    w = world
    lena = conversation_of(w["lena"])
    db.session.commit()
    manager = signed_in(app, "manager@acme.test")
    csrf = token(manager, "/inbox")
    data = {"csrf_token": csrf, "assignee": str(w["manager"].id), "expected": ""}
    _, (status, html) = holding(
        lambda: assignment.assign(db.session, w["recruiter"], lena, w["recruiter"], utcnow()),
        lambda: manager.post(f"/conversations/{lena.id}/assignee", data=data, headers=HX),
    )
    assert status == 422 and "Someone has just assigned this conversation to Riley Recruiter" in html
    assert [e.assignee_id for e in events(lena.id)] == [w["recruiter"].id]


def test_a_conversations_notes_and_mentions_go_with_it(world) -> None:
    """No page deletes a conversation; should one ever be erased, its notes, their mentions and its
    assignment lines go with it (ON DELETE CASCADE), never left behind."""
    w = world
    lena = conversation_of(w["lena"])
    notes.add_note(db.session, w["recruiter"], lena, "@Morgan Manager please call", utcnow())
    assignment.assign(db.session, w["recruiter"], lena, w["manager"], utcnow())
    db.session.commit()
    assert len(events(lena.id)) == 2
    db.session.execute(sa.delete(Conversation).where(Conversation.id == lena.id))
    db.session.commit()
    assert events(lena.id) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(NoteMention)) == 0
