"""Dispatch after the commit: on a thread pool in this process, or through RQ on a real Redis."""

from __future__ import annotations

import os

import pytest

from tests import factories as f
from tests.conftest import need
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import compose, dispatch
from webapp.messaging.subjects import of_application
from webapp.models import Message

REDIS_URL = os.environ.get("REDIS_TEST_URL", "")


@pytest.fixture
def queued(app):
    org = f.messaging_org("Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
    f.number(org, "+4915123456700")
    application = f.application(f.job(org, team=[user]), f.candidate(org))
    f.credits(org, 5)
    db.session.commit()
    message = compose.compose(db.session, user, of_application(application), "sms", "Hello")
    db.session.commit()
    return message.id


def status_of(message_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Message, message_id).status


def test_thread_pool_dispatch(app, queued) -> None:
    app.config["DISPATCH_MODE"] = "thread"
    future = dispatch.enqueue(queued)
    assert future is not None
    future.result(timeout=10)
    assert status_of(queued) in ("submitted", "delivered")


def test_rq_dispatch_through_redis(app, queued) -> None:
    if not REDIS_URL:
        need("Redis (REDIS_TEST_URL)")
    from rq import SimpleWorker

    app.config.update(DISPATCH_MODE="rq", REDIS_URL=REDIS_URL)
    q = dispatch.queue(app)
    q.empty()
    dispatch.enqueue(queued)
    dispatch.enqueue(queued)  # a second job for the same message (a retry, a double click) …
    assert status_of(queued) == "queued"  # nothing is sent in the web request
    SimpleWorker([q], connection=q.connection).work(burst=True, with_scheduler=False)
    message = db.session.get(Message, queued)
    assert message.status in ("submitted", "delivered") and message.attempts == 1  # … sends once
    q.empty()


def test_worker_command_sends_what_the_web_queued(app, queued, runner) -> None:
    if not REDIS_URL:
        need("Redis (REDIS_TEST_URL)")
    app.config.update(DISPATCH_MODE="rq", REDIS_URL=REDIS_URL)
    dispatch.queue(app).empty()
    dispatch.enqueue(queued)
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert status_of(queued) in ("submitted", "delivered")


def test_worker_command_needs_redis(app, runner) -> None:
    app.config["REDIS_URL"] = None
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code != 0 and "REDIS_URL" in result.output


def test_credits_command_writes_a_ledger_row(app, runner) -> None:
    org = f.org("Acme")
    db.session.commit()
    result = runner.invoke(args=["credits", "top-up", "Acme", "250", "--note", "Order 42"])
    assert result.exit_code == 0 and "balance 250" in result.output
    from webapp.billing import credits

    account = credits.account_for(db.session, org)
    assert account.balance == credits.ledger_sum(db.session, account.id) == 250
    assert runner.invoke(args=["credits", "top-up", "Nobody", "5", "--note", "x"]).exit_code != 0
    assert "no organisation" in runner.invoke(args=["credits", "balance", "Nobody"]).output
