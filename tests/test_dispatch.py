"""Dispatch after the commit: on a thread pool in this process, or through RQ on a real Redis."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.conftest import need
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import compose, dispatch
from webapp.messaging.subjects import of_application
from webapp.models import Message
from webapp.providers import registry

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
    from webapp.messaging import worker

    app.config.update(DISPATCH_MODE="rq", REDIS_URL=REDIS_URL)
    q = dispatch.queue(app)
    q.empty()
    dispatch.enqueue(queued)
    dispatch.enqueue(queued)  # a second job for the same message (a retry, a double click) …
    assert status_of(queued) == "queued"  # nothing is sent in the web request
    worker.work_now([q])
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


@pytest.mark.parametrize("stop_reached", ["parent", "sub"])
@pytest.mark.parametrize("sent_by", ["parent", "sub"])
def test_a_stop_to_any_organisation_of_the_customer_refuses_a_queued_message(
    app, sent_by, stop_reached
) -> None:
    """A STOP holds for the whole customer: whichever of its organisations it reached, a message that
    was queued before it, from the parent or a sub-organisation, is refused when its turn comes."""
    from webapp.messaging import optouts

    parent = f.messaging_org("Acme")
    sub = f.messaging_org("Acme Nordics", parent_id=parent.id)
    other = f.messaging_org("Globex")  # another customer's STOP of the same number counts for nobody else
    f.number(parent, "+4915123456700")
    f.credits(parent, 5)
    writer_org = parent if sent_by == "parent" else sub
    user = f.user(writer_org, codes=[permissions.RECRUITMENT_SMS])
    application = f.application(
        f.job(writer_org, team=[user]), f.candidate(writer_org, mobile="+4915123456789")
    )
    db.session.commit()
    # Redis cannot be reached: the message stays queued (the sweep would hand it over later).
    app.config.update(DISPATCH_MODE="rq", REDIS_URL="redis://127.0.0.1:1/0")
    message = compose.compose(db.session, user, of_application(application), "sms", "Hello")
    db.session.commit()
    other_message = compose.compose(db.session, user, of_application(application), "sms", "Hello again")
    db.session.commit()
    optouts.opt_out(db.session, other.id, "+4915123456789", message)
    db.session.commit()
    dispatch.deliver(other_message.id)
    assert status_of(other_message.id) in ("submitted", "delivered")

    optouts.opt_out(db.session, (parent if stop_reached == "parent" else sub).id, "+4915123456789", message)
    db.session.commit()
    dispatch.deliver(message.id)
    refused = db.session.get(Message, message.id)
    assert refused.status == "rejected" and refused.attempts == 0
    assert refused.error_title == "Not sent: the number opted out"


def test_a_send_moves_its_conversations_marker_for_the_pages_showing_it(app, queued) -> None:
    """The Inbox and the thread learn "Sent to the network" from the conversation's change marker."""
    from webapp.models import Conversation

    db.session.execute(sa.update(Message).where(Message.id == queued).values(status="queued", attempts=0))
    db.session.commit()
    conversation_id = db.session.get(Message, queued).conversation_id
    before = db.session.get(Conversation, conversation_id).change_seq
    dispatch.deliver(queued)
    db.session.expire_all()
    message = db.session.get(Message, queued)
    assert message.status == "submitted" and message.attempts == 1 and message.provider_id
    assert message.submitted_at is not None
    assert db.session.get(Conversation, conversation_id).change_seq > before


def test_a_sub_organisations_send_moves_its_marker_and_its_whole_familys_clocks(app) -> None:
    """A page of the parent and one of the sub-organisation both learn of a sub-organisation's send."""
    from webapp.models import ActivityClock, Conversation

    parent = f.messaging_org("Acme")
    sub = f.messaging_org("Acme Nordics", parent_id=parent.id)
    f.number(parent, "+4915123456700")
    f.credits(parent, 5)
    user = f.user(sub, codes=[permissions.RECRUITMENT_SMS])
    application = f.application(f.job(sub, team=[user]), f.candidate(sub, mobile="+4915123456789"))
    db.session.commit()
    app.config.update(DISPATCH_MODE="rq", REDIS_URL="redis://127.0.0.1:1/0")  # it stays queued
    message = compose.compose(db.session, user, of_application(application), "sms", "Hello")
    db.session.commit()
    clocks = {
        org.id: (db.session.get(ActivityClock, org.id) or ActivityClock(seq=0)).seq for org in (parent, sub)
    }
    message_id, parent_id, sub_id = message.id, parent.id, sub.id
    db.session.remove()

    dispatch.deliver(message_id)

    db.session.expire_all()
    assert status_of(message_id) in ("submitted", "delivered")
    moved = db.session.get(Conversation, db.session.get(Message, message_id).conversation_id).change_seq
    assert moved > max(clocks.values())
    assert db.session.get(ActivityClock, parent_id).seq == db.session.get(ActivityClock, sub_id).seq == moved


def test_a_worker_makes_its_texting_provider_ready_before_its_first_job(app, caplog) -> None:
    """`flask worker` builds the default texting provider at start (dispatch.warm_up), so that the
    first sends do not pay for it; one that cannot be built is a warning, left to the sends."""
    app.extensions.pop("relay.providers", None)
    dispatch.warm_up(app)
    assert f"texting:{registry.default_name(app)}" in app.extensions["relay.providers"]

    app.extensions.pop("relay.providers", None)
    app.config.update(MESSAGING_PROVIDER="vonage", VONAGE_APPLICATION_ID="", VONAGE_PRIVATE_KEY_PATH="")
    with caplog.at_level("WARNING", logger="relay.dispatch"):
        dispatch.warm_up(app)
    assert "could not be made ready at start" in caplog.text
