"""Webhooks stored first and applied by a worker (WEBHOOK_INGEST=queued, webapp.messaging.ingest): the
real endpoints with real signed tokens, a real Redis and RQ's worker."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import need
from tests.test_webhooks import INBOUND, LENA, OUR, STATUS, count_messages, inbound_messages, make_world
from tests.webhook_support import inbound, post, status
from webapp import config as settings
from webapp import logs
from webapp.extensions import db
from webapp.messaging import dispatch, ingest, optouts
from webapp.models import Message, WebhookEvent, utcnow
from webapp.scheduling.tasks import TASKS

REDIS_URL = os.environ.get("REDIS_TEST_URL", "")


@pytest.fixture
def queued(app, monkeypatch):
    if not REDIS_URL:
        need("Redis (REDIS_TEST_URL)")
    app.config.update(DISPATCH_MODE="rq", REDIS_URL=REDIS_URL, WEBHOOK_INGEST="queued")
    for q in (dispatch.queue(app), ingest.queue(app)):
        q.empty()
    ingest.queue(app).connection.delete(ingest.TOLD_KEY)
    # A job gathers for as long as its key lasts: not the half second of production in every test here.
    monkeypatch.setattr(ingest, "TOLD_MS", 50)
    yield app
    for q in (dispatch.queue(app), ingest.queue(app)):
        q.empty()
    ingest.queue(app).connection.delete(ingest.TOLD_KEY)


@pytest.fixture
def world(app):
    made = make_world()
    # Ids, not objects: the worker's job ends the session the objects were loaded in.
    return {"org": made["org"].id, "sent": made["sent"].id, "conversation": made["sent"].conversation_id}


def work(app) -> None:
    """What the queues hold, done as a loop of `flask --app wsgi worker` does it."""
    from webapp.messaging import worker

    queues = [dispatch.queue(app), ingest.queue(app)]
    worker.work_now(queues)
    db.session.remove()


def told_key_gone(app) -> None:
    """As when TOLD_MS went by: the key expired, and this process no longer counts on it."""
    ingest.queue(app).connection.delete(ingest.TOLD_KEY)
    app.extensions.pop(ingest._TOLD_UNTIL, None)


def events() -> list[WebhookEvent]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(WebhookEvent).order_by(WebhookEvent.id)))


def test_a_reply_is_stored_first_then_applied_by_the_worker(client, world, queued, caplog) -> None:
    caplog.set_level("INFO", logger="relay.ingest")
    before = count_messages()
    response = post(client, INBOUND, inbound(OUR, LENA, "Yes, Tuesday works"))
    assert response.status_code == 200
    # Acknowledged once it is on disk; nothing applied in the request.
    assert [e.kind for e in events()] == ["inbound"] and count_messages() == before
    work(queued)
    assert events() == []
    [reply] = inbound_messages()
    assert reply.body == "Yes, Tuesday works" and reply.conversation_id == world["conversation"]
    # How long it waited for the worker: one line (and the histogram relay_webhook_apply_delay_seconds).
    [line] = [r for r in caplog.records if r.getMessage() == "webhook applied"]
    fields = getattr(line, logs._FIELDS)
    assert fields["kind"] == "inbound" and 0 <= fields["delay_ms"] < 60_000


def test_a_stored_webhook_runs_the_one_insert_built_at_import(client, world, queued) -> None:
    """Issue #19: the stored-first request's INSERT is built once, of the table; SQLAlchemy's ORM-enabled
    INSERT was built, keyed and run through the ORM's bulk persistence anew for each webhook (a third
    of the request's own CPU, profiled)."""
    ran: list[object] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            ran.append(context.invoked_statement)

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        for text in ("One", "Two"):
            assert post(client, INBOUND, inbound(OUR, LENA, text)).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    assert ran == [ingest._STORE, ingest._STORE]
    assert [e.body for e in events()] and len(events()) == 2


def test_a_retry_of_a_waiting_body_stores_nothing_and_applied_changes_nothing(client, world, queued) -> None:
    payload = inbound(OUR, LENA, "Once")
    assert post(client, INBOUND, payload).status_code == 200
    assert post(client, INBOUND, payload).status_code == 204  # the same body waits already
    assert len(events()) == 1
    work(queued)
    assert post(client, INBOUND, payload).status_code == 200  # after it was applied: stored again …
    work(queued)
    assert [m.body for m in inbound_messages()] == ["Once"]  # … and the message is there once
    assert events() == []


@pytest.mark.parametrize(
    ("path", "body", "auth", "answer"),
    [
        (INBOUND, b'{"channel": "sms"}', None, 400),
        (STATUS, b'{"status": "delivered"}', None, 400),
        (INBOUND, json.dumps(inbound(OUR, LENA)).encode(), "Bearer forged", 401),
    ],
)
def test_a_refused_webhook_stores_nothing(client, world, queued, path, body, auth, answer) -> None:
    assert post(client, path, None, body=body, auth=auth).status_code == answer
    assert events() == []


def test_stop_is_applied_and_its_reply_sent_by_the_worker(client, world, queued) -> None:
    post(client, INBOUND, inbound(OUR, LENA, "HELP"))
    post(client, INBOUND, inbound(OUR, LENA, "STOP"))
    assert optouts.active(db.session, world["org"], LENA) is None  # not yet applied
    work(queued)
    assert optouts.active(db.session, world["org"], LENA) is not None
    db.session.expire_all()
    replies = db.session.scalars(
        sa.select(Message).where(Message.direction == "outbound", Message.author_id.is_(None))
    ).all()
    assert replies and all(r.status in ("submitted", "delivered") for r in replies)  # sent after the commit


def test_status_reports_are_applied_in_the_worker(client, world, queued) -> None:
    queued.config["SIMULATOR_DELIVERY_SECONDS"] = 3600
    dispatch.deliver(world["sent"])
    db.session.expire_all()
    uuid = db.session.get(Message, world["sent"]).provider_id
    assert post(client, STATUS, status(uuid, "delivered", "2026-11-23T10:00:01Z")).status_code == 204
    assert post(client, STATUS, status(uuid, "read", "2026-11-23T10:00:02Z")).status_code == 204
    assert db.session.get(Message, world["sent"]).status == "submitted"
    work(queued)
    db.session.expire_all()
    assert db.session.get(Message, world["sent"]).status == "read"


def test_with_redis_away_the_webhook_is_kept_and_the_sweep_applies_it(client, world, queued) -> None:
    queued.extensions.pop("relay.rq", None)
    queued.extensions.pop("relay.rq.webhooks", None)
    queued.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nobody listens there
    try:
        assert post(client, INBOUND, inbound(OUR, LENA, "Are you there?")).status_code == 200
        assert len(events()) == 1
        # Not yet old enough for the sweep: a worker may still be at it.
        assert ingest.sweep(utcnow(), timedelta(seconds=60)) == ""
        assert ingest.sweep(utcnow() + timedelta(seconds=61), timedelta(seconds=60)) == (
            "1 of 1 waiting webhook(s) applied"
        )
    finally:
        queued.extensions.pop("relay.rq", None)
        queued.extensions.pop("relay.rq.webhooks", None)
        queued.config["REDIS_URL"] = REDIS_URL
    assert [m.body for m in inbound_messages()] == ["Are you there?"] and events() == []


def test_a_body_that_cannot_be_applied_is_counted_and_left_after_the_last_try(client, world, queued) -> None:
    assert post(client, INBOUND, inbound(OUR, LENA, "Hello")).status_code == 200
    assert len(events()) == 1
    # A body that no longer reads (as after a provider's change of format): applying it fails every time.
    db.session.execute(sa.update(WebhookEvent).values(body='{"channel": "sms"}'))
    db.session.commit()
    later = utcnow() + timedelta(hours=1)
    for tries in range(1, ingest.MAX_ATTEMPTS + 1):
        assert ingest.sweep(later, timedelta(seconds=0)) == "0 of 1 waiting webhook(s) applied"
        assert events()[0].attempts == tries
    assert ingest.sweep(later, timedelta(seconds=0)) == ""  # left for an operator, with its reason
    assert (events()[0].last_error or "").startswith("BadPayload")
    assert inbound_messages() == []


def test_a_storm_tells_one_worker_and_its_job_applies_it_all(client, world, queued, monkeypatch) -> None:
    monkeypatch.setattr(ingest, "TOLD_MS", 60_000)  # however slow this machine posts them
    queued.config["SIMULATOR_DELIVERY_SECONDS"] = 3600
    dispatch.deliver(world["sent"])
    db.session.expire_all()
    uuid = db.session.get(Message, world["sent"]).provider_id
    texts = [f"Reply {n}" for n in range(2 * ingest.BATCH + 3)]  # more than two batches
    for text in texts:
        assert post(client, INBOUND, inbound(OUR, LENA, text)).status_code == 200
    assert post(client, STATUS, status(uuid, "delivered", "2026-11-23T10:00:01Z")).status_code == 204
    # One job for all: the others were stored while a worker was told.
    assert ingest.queue(queued).count == 1
    told_key_gone(queued)  # TOLD_MS went by
    work(queued)
    assert events() == []
    assert [m.body for m in inbound_messages()] == texts  # in the order they came
    db.session.expire_all()
    assert db.session.get(Message, world["sent"]).status == "delivered"
    # The key went: the next webhook tells a worker again.
    assert post(client, INBOUND, inbound(OUR, LENA, "After")).status_code == 200
    assert ingest.queue(queued).count == 1
    told_key_gone(queued)
    work(queued)
    assert events() == [] and inbound_messages()[-1].body == "After"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # a worker and the web at once
def test_a_told_worker_gathers_what_comes_while_its_key_is_there(
    app, client, world, queued, backend, monkeypatch
) -> None:
    monkeypatch.setattr(ingest, "TOLD_MS", 3000)
    assert post(client, INBOUND, inbound(OUR, LENA, "First")).status_code == 200
    [job] = ingest.queue(queued).jobs
    db.session.remove()
    worker = threading.Thread(target=lambda: app.app_context().push() or job.perform())
    worker.start()
    deadline = time.monotonic() + 10
    while not inbound_messages() and time.monotonic() < deadline:  # its own webhook applied first
        time.sleep(0.02)
    for text in ("Second", "Third"):  # while its key is there: no job of their own
        assert post(client, INBOUND, inbound(OUR, LENA, text)).status_code == 200
    assert ingest.queue(queued).count == 1  # only the first job, taken by nobody but this test
    worker.join(30)
    assert not worker.is_alive()
    assert [m.body for m in inbound_messages()] == ["First", "Second", "Third"] and events() == []


@pytest.mark.parametrize("told_by", ["this process", "another process"])
def test_while_the_told_key_stands_a_web_process_asks_redis_nothing(
    client, world, queued, monkeypatch, told_by
) -> None:
    """Issue #19: once a web process told a worker, or found one told, its webhooks cost no round trip to
    Redis for as long as the key has left (a tenth of a stored-first request's CPU, profiled)."""
    monkeypatch.setattr(ingest, "TOLD_MS", 60_000)
    redis = ingest.queue(queued).connection
    if told_by == "another process":
        redis.set(ingest.TOLD_KEY, 0, px=60_000)
    assert post(client, INBOUND, inbound(OUR, LENA, "One")).status_code == 200
    jobs = ingest.queue(queued).count
    assert jobs == (1 if told_by == "this process" else 0)
    redis.delete(ingest.TOLD_KEY)  # behind the process's back: had it asked, it would set the key again
    assert post(client, INBOUND, inbound(OUR, LENA, "Two")).status_code == 200
    assert redis.get(ingest.TOLD_KEY) is None and ingest.queue(queued).count == jobs
    assert len(events()) == 2


def test_once_the_told_key_may_have_gone_a_web_process_asks_again(client, world, queued) -> None:
    assert post(client, INBOUND, inbound(OUR, LENA, "One")).status_code == 200
    assert ingest.queue(queued).count == 1
    time.sleep(ingest.TOLD_MS / 1000 + 0.01)  # the key expired (50 ms here)
    assert post(client, INBOUND, inbound(OUR, LENA, "Two")).status_code == 200
    assert ingest.queue(queued).count == 2
    work(queued)
    assert [m.body for m in inbound_messages()] == ["One", "Two"] and events() == []


def test_a_webhook_whose_worker_was_never_told_is_applied_by_the_sweep(client, world, queued) -> None:
    # A worker was told and its job is lost (or not begun): nothing new is queued, nothing is lost.
    ingest.queue(queued).connection.set(ingest.TOLD_KEY, 0, px=ingest.TOLD_MS)
    assert post(client, INBOUND, inbound(OUR, LENA, "Anyone?")).status_code == 200
    assert ingest.queue(queued).count == 0
    work(queued)
    assert len(events()) == 1 and inbound_messages() == []
    assert ingest.sweep(utcnow() + timedelta(seconds=61), timedelta(seconds=60)) == (
        "1 of 1 waiting webhook(s) applied"
    )
    assert [m.body for m in inbound_messages()] == ["Anyone?"] and events() == []


def test_a_drain_that_runs_out_of_time_tells_a_worker_again(client, world, queued) -> None:
    for text in ("One", "Two"):
        assert post(client, INBOUND, inbound(OUR, LENA, text)).status_code == 200
    ingest.queue(queued).empty()
    told_key_gone(queued)
    assert ingest.drain(seconds=0) == 0 and len(events()) == 2
    assert ingest.queue(queued).count == 1  # the rest is handed on, not left for the sweep
    work(queued)
    assert [m.body for m in inbound_messages()] == ["One", "Two"] and events() == []


def test_a_backlog_is_applied_together_in_the_order_it_came(client, world, queued) -> None:
    for text in ("One", "Two", "Three"):
        assert post(client, INBOUND, inbound(OUR, LENA, text)).status_code == 200
    first, *_ = events()
    db.session.remove()
    # The first webhook's job applies those waiting behind it with it; their own jobs then find nothing.
    assert ingest.process(first.id) is True
    db.session.remove()
    assert events() == []
    assert [m.body for m in inbound_messages()] == ["One", "Two", "Three"]
    db.session.expire_all()
    conversation = db.session.get(Message, world["sent"]).conversation
    assert conversation.last_preview == "Three"
    work(queued)
    assert [m.body for m in inbound_messages()] == ["One", "Two", "Three"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_one_worker_at_a_time_applies_a_batch(client, world, queued, backend) -> None:
    """Two batches could each hold a conversation the other comes to next: while one worker applies a
    batch, another applies only the webhook of its own job."""
    for text in ("One", "Two", "Three"):
        assert post(client, INBOUND, inbound(OUR, LENA, text)).status_code == 200
    first, second, third = (e.id for e in events())
    db.session.remove()
    with db.engine.connect() as other:  # another worker, in the middle of its batch
        assert other.execute(sa.select(sa.func.pg_try_advisory_xact_lock(ingest.BATCH_LOCK))).scalar()
        assert ingest.process(second) is True
        db.session.remove()
        assert [e.id for e in events()] == [first, third]
        db.session.remove()
        other.rollback()
    assert ingest.process(first) is True
    db.session.remove()
    assert events() == []
    assert [m.body for m in inbound_messages()] == ["Two", "One", "Three"]


def test_a_body_that_cannot_be_applied_holds_back_none_of_a_batch(client, world, queued) -> None:
    for text in ("Before", "Broken", "After"):
        assert post(client, INBOUND, inbound(OUR, LENA, text)).status_code == 200
    broken = events()[1].id
    db.session.execute(
        sa.update(WebhookEvent).where(WebhookEvent.id == broken).values(body='{"channel": "sms"}')
    )
    db.session.commit()
    work(queued)
    assert sorted(m.body for m in inbound_messages()) == ["After", "Before"]
    [left] = events()
    assert left.id == broken and left.attempts == 1 and (left.last_error or "").startswith("BadPayload")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite has one writer at a time
def test_two_workers_at_once_apply_it_once(app, client, world, queued, backend) -> None:
    post(client, INBOUND, inbound(OUR, LENA, "Just once"))
    [event] = events()
    db.session.remove()
    results: list[bool] = []
    start = threading.Barrier(2)

    def one() -> None:
        with app.app_context():
            start.wait()
            results.append(ingest.process(event.id))
            db.session.remove()

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False, True]
    assert [m.body for m in inbound_messages()] == ["Just once"] and events() == []


def test_the_setting_follows_the_dispatcher_and_is_checked(tmp_path) -> None:
    env = {"REDIS_URL": "redis://127.0.0.1:6379/0"}
    assert settings.from_environment(str(tmp_path), env)["WEBHOOK_INGEST"] == "queued"
    assert settings.from_environment(str(tmp_path), {})["WEBHOOK_INGEST"] == "direct"
    chosen = settings.from_environment(str(tmp_path), {**env, "WEBHOOK_INGEST": "direct"})
    assert chosen["WEBHOOK_INGEST"] == "direct"
    with pytest.raises(settings.ConfigError, match="WEBHOOK_INGEST=queued needs the RQ workers"):
        settings.check(settings.from_environment(str(tmp_path), {"WEBHOOK_INGEST": "queued"}))
    with pytest.raises(settings.ConfigError, match="WEBHOOK_INGEST must be direct or queued"):
        settings.check(settings.from_environment(str(tmp_path), {"WEBHOOK_INGEST": "later"}))
    assert "webhook-sweep" in [task.name for task in TASKS]


def test_a_worker_of_the_webhooks_queue_applies_them_and_sends_nothing(client, world, queued, runner) -> None:
    from webapp.messaging import compose
    from webapp.messaging.subjects import of_application
    from webapp.models import Application, User

    post(client, INBOUND, inbound(OUR, LENA, "Seen it"))
    user = db.session.scalars(sa.select(User)).first()
    application = db.session.scalars(sa.select(Application)).first()
    waiting = compose.compose(db.session, user, of_application(application), "sms", "Waiting").id
    db.session.commit()
    dispatch.enqueue(waiting)
    result = runner.invoke(args=["worker", "--burst", "--queue", "webhooks"])
    assert result.exit_code == 0, result.output
    assert [m.body for m in inbound_messages()] == ["Seen it"] and events() == []
    db.session.expire_all()
    assert db.session.get(Message, waiting).status == "queued"  # the sends' queue is another worker's
    assert runner.invoke(args=["worker", "--burst", "--queue", "sends"]).exit_code == 0
    db.session.expire_all()
    assert db.session.get(Message, waiting).status in ("submitted", "delivered")
