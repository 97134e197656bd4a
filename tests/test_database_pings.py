"""Pooled PostgreSQL connections: pinged when they lay idle, not at every checkout, and a unit of work
that is one statement sent without BEGIN and COMMIT around it (webapp.database).

A connection's backend is ended from outside (`pg_terminate_backend`), as a database restart ends them
all: one idle past the limit is found dead by its ping and replaced unseen; one used a moment ago meets
it at its first statement, after which the pool has new ones; a send whose read met it reads again.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tests import factories as f
from webapp import database
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import compose, dispatch
from webapp.messaging.subjects import of_application
from webapp.models import Message


@pytest.fixture
def backend() -> str:
    return "postgresql"  # backends (server processes) to end: SQLite has none


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {**fake.app_settings(), "VONAGE_TIMEOUT": 5, "REDIS_URL": None, "DISPATCH_MODE": "inline"}


def pooled_backend() -> int:
    """The server process of the connection the pool hands out next (the one just returned)."""
    with db.engine.connect() as connection:
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def end(pid: int) -> None:
    outside = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with outside.connect() as connection:
        assert connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar_one()
    outside.dispose()


def test_the_app_pings_idle_connections_itself(app) -> None:
    assert not db.engine.pool._pre_ping  # replaced by webapp.database.ping_when_idle


def test_a_connection_idle_past_the_limit_is_pinged_and_replaced_unseen(app) -> None:
    dead = pooled_backend()
    end(dead)
    time.sleep(database.PING_AFTER_IDLE_SECONDS + 0.2)
    assert pooled_backend() != dead  # no error: the ping found it dead and the pool made a new one


def test_a_connection_used_a_moment_ago_meets_a_restart_at_its_first_statement_only(app) -> None:
    dead = pooled_backend()
    end(dead)
    with pytest.raises(sa.exc.DBAPIError) as raised:
        pooled_backend()
    assert raised.value.connection_invalidated
    assert pooled_backend() != dead  # the pool dropped its connections: the next one is new


def queued_message() -> Message:
    org = f.messaging_org("Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
    f.number(org, "+4915123456700")
    f.credits(org, 5)
    application = f.application(f.job(org, team=[user]), f.candidate(org, mobile="+4915123456789"))
    db.session.commit()
    message = compose.compose(db.session, user, of_application(application), "sms", "Hello")
    db.session.commit()
    return message


def test_a_send_whose_connection_died_reads_again_and_sends_once(app, fake) -> None:
    message = queued_message()
    db.session.remove()
    end(pooled_backend())

    dispatch.deliver(message.id)

    db.session.expire_all()
    sent = db.session.get(Message, message.id)
    assert (sent.status, sent.attempts) == ("submitted", 1)
    assert [r.body["client_ref"] for r in fake.requests] == [str(message.id)]


def test_a_send_is_three_statements_each_sent_alone(app, fake) -> None:
    """Its read, its claim, and its end with the conversation's marker: each statement its own
    transaction (autocommit: no BEGIN before it, no COMMIT after it), three round trips in all."""
    from webapp.models import ActivityClock, Conversation

    message = queued_message()
    conversation = db.session.get(Conversation, message.conversation_id)
    marker, organization_id = conversation.change_seq, conversation.organization_id
    db.session.remove()
    sent: list[tuple[str, bool]] = []

    def seen(connection, _cursor, statement, *_args) -> None:
        sent.append((statement.split()[0], connection.connection.dbapi_connection.autocommit))

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        dispatch.deliver(message.id)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)

    assert sent == [("SELECT", True), ("UPDATE", True), ("WITH", True)]
    db.session.expire_all()
    done = db.session.get(Message, message.id)
    assert (done.status, done.attempts) == ("submitted", 1)
    moved = db.session.get(Conversation, message.conversation_id).change_seq
    assert moved > marker
    assert db.session.get(ActivityClock, organization_id).seq == moved
