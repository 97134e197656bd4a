"""A sending worker with several sends in flight (`flask --app wsgi worker --threads N`,
webapp.messaging.worker): real worker processes on a real Redis against the fake Vonage, whose request
times are the assertions — how many POSTs it held at once, how many per message, how many in a second."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from redis.connection import Connection
from rq import Worker

from tests import factories as f
from tests.conftest import need
from tests.fake_vonage import FakeVonage
from tests.test_dispatch_recovery import kill, process_env, start, wait_for
from tests.test_pacing import busiest_second
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import compose, dispatch, worker
from webapp.messaging.subjects import of_application
from webapp.models import Message

REDIS_URL = os.environ.get("REDIS_TEST_URL", "")
WORKER = ["-m", "flask", "--app", "wsgi", "worker", "--queue", "sends"]


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {
        **fake.app_settings(),
    }


@pytest.fixture
def queue(app):
    if not REDIS_URL:
        need("Redis (REDIS_TEST_URL)")
    app.config.update(DISPATCH_MODE="rq", REDIS_URL=REDIS_URL)
    q = dispatch.queue(app)
    q.empty()
    yield q
    q.empty()


@pytest.fixture
def processes() -> Iterator[list]:
    started: list = []
    yield started
    for process in started:
        kill(process)


def queued(app, count: int) -> list[int]:
    """`count` SMS composed and paid (to 25 candidates in turn), handed to the RQ queue."""
    org = f.messaging_org("Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user])
    applications = [f.application(job, f.candidate(org, mobile=f"+49151234{n:05d}")) for n in range(25)]
    f.credits(org, count)
    db.session.commit()
    ids = []
    for n in range(count):
        message = compose.compose(db.session, user, of_application(applications[n % 25]), "sms", f"Hello {n}")
        db.session.commit()
        ids.append(message.id)
    for message_id in ids:
        dispatch.enqueue(message_id)
    return ids


def rows(ids: list[int]) -> dict[int, tuple[str, int]]:
    db.session.expire_all()
    found = db.session.execute(
        sa.select(Message.id, Message.status, Message.attempts).where(Message.id.in_(ids))
    )
    return {m.id: (m.status, m.attempts) for m in found}


def posts(fake: FakeVonage) -> list[int]:
    """The client_ref of every POST the fake received, sorted: each message's id once means one POST each."""
    return sorted(int(ref) for _, ref, _ in fake.arrivals())


def test_a_threaded_worker_sends_each_message_once_with_several_in_flight(
    app, fake, queue, database_url, processes, tmp_path
) -> None:
    fake.answer_every_request(delay=0.5)  # each POST held half a second, as a slow network would
    ids = queued(app, 12)
    log = tmp_path / "worker.log"
    env = process_env(
        database_url, fake, REDIS_URL=REDIS_URL, DISPATCH_SWEEP_SECONDS="0", VONAGE_TIMEOUT="10"
    )
    process = start([*WORKER, "--burst", "--threads", "4"], env, log)
    processes.append(process)
    assert process.wait(timeout=120) == 0, log.read_text()

    assert posts(fake) == ids, log.read_text()  # exactly one POST for each message
    assert rows(ids) == {i: ("submitted", 1) for i in ids}
    # A second POST reached the fake before the first was answered: sends in flight together, in one
    # process; never more than its threads.
    assert 2 <= fake.most_at_once() <= 4, [(r.received_monotonic, r.status) for r in fake.requests]
    assert queue.count == 0


def test_sigterm_lets_the_sends_in_flight_finish_and_takes_no_new_one(
    app, fake, queue, database_url, processes, tmp_path
) -> None:
    fake.answer_every_request(delay=3)  # Vonage holds every POST for 3 s, then accepts it
    ids = queued(app, 6)
    log = tmp_path / "worker.log"
    env = process_env(
        database_url, fake, REDIS_URL=REDIS_URL, DISPATCH_SWEEP_SECONDS="0", VONAGE_TIMEOUT="10"
    )
    # Workers SIGKILLed by earlier tests stay listed until their registration expires: not this one's.
    earlier = {w.name for w in Worker.all(connection=queue.connection)}
    process = start([*WORKER, "--threads", "4"], env, log)
    processes.append(process)
    wait_for(lambda: len(fake.requests) == 4, 60, "four POSTs in flight", log)
    # `rq info` lists the process once (not a worker per thread), by host and pid, with its queue.
    [listed] = [w for w in Worker.all(connection=queue.connection) if w.name not in earlier]
    assert listed.name.endswith(f".{process.pid}") and listed.queue_names() == ["relay"]
    process.send_signal(signal.SIGTERM)  # as the supervisor stops it, while Vonage has not answered
    assert process.wait(timeout=30) == 0, log.read_text()
    assert listed.name not in {w.name for w in Worker.all(connection=queue.connection)}  # its end registered

    in_flight = posts(fake)
    assert len(in_flight) == 4 and fake.most_at_once() == 4
    # The four finished, their answers recorded; the other two were not taken: still queued, in Redis too.
    states = rows(ids)
    assert {i: states[i] for i in in_flight} == {i: ("submitted", 1) for i in in_flight}, log.read_text()
    left = [i for i in ids if i not in in_flight]
    assert {i: states[i] for i in left} == {i: ("queued", 0) for i in left}
    assert queue.count == 2

    # The next worker sends those two, and nothing twice.
    fake.answer_every_request(delay=0)
    after = start([*WORKER, "--burst", "--threads", "4"], env, log)
    processes.append(after)
    assert after.wait(timeout=60) == 0, log.read_text()
    assert posts(fake) == ids
    assert rows(ids) == {i: ("submitted", 1) for i in ids}


def test_threads_of_two_workers_keep_to_the_pace_no_second_holds_more_than_the_rate(
    app, fake, queue, database_url, processes, tmp_path
) -> None:
    # Each POST answered after 1 s, so that a worker's threads have several out at once (the turns are
    # 0.26 s apart; 8 threads would send 8 a second unpaced); the buckets must hold them all to the rate,
    # as Vonage's 30.
    rate, count = 5, 20
    fake.rate_limit(rate)
    fake.answer_every_request(delay=1.0)
    ids = queued(app, count)
    log = tmp_path / "workers.log"
    env = process_env(database_url, fake, REDIS_URL=REDIS_URL, DISPATCH_SWEEP_SECONDS="0", VONAGE_TIMEOUT="5")
    # The margin as in tests/test_pacing.py: what varies between a turn and the request's arrival.
    env.update(VONAGE_RATE_PER_SECOND=str(rate), SEND_PACING_MARGIN_SECONDS="0.3")
    workers = [start([*WORKER, "--burst", "--threads", "4"], env, log) for _ in range(2)]
    processes.extend(workers)
    for process in workers:
        assert process.wait(timeout=120) == 0, log.read_text()

    arrivals = fake.arrivals()
    seen = [(round(at - arrivals[0][0], 3), ref, status) for at, ref, status in arrivals]
    assert posts(fake) == ids, seen  # exactly one POST each
    assert [status for _, _, status in arrivals] == [202] * count, seen  # no 429
    assert busiest_second([at for at, _, _ in arrivals]) <= rate, seen
    # The threads did have sends in flight together: two workers of one job each could hold 2 at most.
    assert fake.most_at_once() >= 3, seen
    assert rows(ids) == {i: ("submitted", 1) for i in ids}


def test_the_database_pool_keeps_a_connection_for_every_sending_thread() -> None:
    from webapp.config import ConfigError, check, from_environment, size_pool

    config = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://db/relay", "SEND_WORKER_THREADS": 12}
    size_pool(config)
    assert config["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_size": 12}
    config = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://db/relay", "SEND_WORKER_THREADS": 2}
    size_pool(config)
    assert config["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_size": 5}  # SQLAlchemy's own default, at least
    given = {"pool_size": 30, "max_overflow": 0}  # a pool chosen by hand is kept
    config = {"SQLALCHEMY_DATABASE_URI": "postgresql://db/relay", "SQLALCHEMY_ENGINE_OPTIONS": given}
    size_pool(config)
    assert config["SQLALCHEMY_ENGINE_OPTIONS"] == given
    config = {"SQLALCHEMY_DATABASE_URI": "sqlite://", "SEND_WORKER_THREADS": 12}  # one connection
    size_pool(config)
    assert "SQLALCHEMY_ENGINE_OPTIONS" not in config
    settings = from_environment("/tmp", {"SEND_WORKER_THREADS": "0"})
    with pytest.raises(ConfigError, match="SEND_WORKER_THREADS"):
        check(settings)


# SQLite's pool opens a connection for each thread that asks: nothing to refuse there.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_more_threads_than_the_pool_keeps_is_refused_with_the_setting_to_change(
    app, backend, queue, runner
) -> None:
    result = runner.invoke(args=["worker", "--burst", "--queue", "sends", "--threads", "50"])
    assert result.exit_code != 0
    assert "--threads 50 needs a database pool of 50 connections" in result.output
    assert "SEND_WORKER_THREADS=50" in result.output


def test_a_second_sigterm_stops_at_once_with_status_1_leaving_the_sends_to_the_sweep(
    app, fake, queue, database_url, processes, tmp_path
) -> None:
    fake.answer_every_request(delay=20)  # Vonage holds every POST far longer than the test waits
    ids = queued(app, 2)
    log = tmp_path / "worker.log"
    env = process_env(
        database_url, fake, REDIS_URL=REDIS_URL, DISPATCH_SWEEP_SECONDS="0", VONAGE_TIMEOUT="30"
    )
    process = start([*WORKER, "--threads", "4"], env, log)
    processes.append(process)
    wait_for(lambda: len(fake.requests) == 2, 60, "two POSTs in flight", log)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=5) == 1, log.read_text()
    # Cut in the middle of their tries: `sending`, for the sweep to settle after the lease.
    assert rows(ids) == {i: ("sending", 1) for i in ids}


def test_a_loop_that_fails_stops_the_whole_process_with_status_1(
    app, fake, queue, database_url, processes, tmp_path
) -> None:
    log = tmp_path / "worker.log"
    env = process_env(database_url, fake, REDIS_URL=REDIS_URL, DISPATCH_SWEEP_SECONDS="0")
    process = start([*WORKER, "--threads", "4"], env, log)
    processes.append(process)
    wait_for(lambda: "worker listening on relay" in log.read_text(), 60, "the worker's loops", log)
    queue.connection.set(queue.key, "not a list")  # every loop's next look at the queue fails
    try:
        assert process.wait(timeout=30) == 1, log.read_text()
    finally:
        queue.connection.delete(queue.key)
    assert "WRONGTYPE" in log.read_text()


def touch(path: str) -> None:
    """A function that a job could name, not one of Relay's: it leaves a file if it runs."""
    Path(path).write_text("ran")


def test_a_job_that_is_not_one_of_relays_is_refused_and_not_run(
    app, fake, queue, runner, tmp_path, caplog
) -> None:
    ran = tmp_path / "ran"
    queue.enqueue("tests.test_send_worker_threads.touch", str(ran))
    ids = queued(app, 1)
    with caplog.at_level(logging.INFO, logger="relay.worker"):
        result = runner.invoke(args=["worker", "--burst", "--queue", "sends", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert not ran.exists()
    assert "'tests.test_send_worker_threads.touch' is not one of Relay's jobs" in caplog.text
    assert rows(ids) == {ids[0]: ("submitted", 1)}  # and the loop went on to the next job
    assert queue.count == 0


def test_a_job_that_raises_leaves_its_message_to_the_sweep_and_the_loop_goes_on(
    app, fake, queue, runner, monkeypatch, caplog
) -> None:
    first, second = queued(app, 2)
    deliver = dispatch.deliver

    def failing_first(message_id: int) -> None:
        if message_id == first:
            raise RuntimeError("the database went away")
        deliver(message_id)

    monkeypatch.setattr(dispatch, "deliver", failing_first)
    with caplog.at_level(logging.INFO, logger="relay.worker"):
        result = runner.invoke(args=["worker", "--burst", "--queue", "sends", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert f"job message-{first} (webapp.messaging.dispatch.deliver_job) failed" in caplog.text
    assert rows([first, second]) == {first: ("queued", 0), second: ("submitted", 1)}

    monkeypatch.setattr(dispatch, "deliver", deliver)
    assert dispatch.recover(queued_after=0).requeued == [first]  # the sweep hands it over again
    worker.work_now([queue])
    assert rows([first, second]) == {first: ("submitted", 1), second: ("submitted", 1)}
    assert posts(fake) == [first, second]


def test_a_job_costs_one_round_trip_to_redis_and_leaves_nothing_there(queue, monkeypatch) -> None:
    for n in range(20):
        queue.enqueue("tests.test_send_worker_threads.touch", f"/nowhere/{n}", job_id=f"message-{n}")
    ran: list[str] = []
    sent: list[bytes] = []
    send = Connection.send_packed_command

    def counted(self: Connection, command, check_health: bool = True) -> None:  # type: ignore[no-untyped-def]
        sent.append(command)
        send(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counted)
    jobs = {"tests.test_send_worker_threads.touch": ran.append}
    worker.Loop(queue.connection, [queue.name], threading.Event(), jobs).work(burst=True)
    monkeypatch.setattr(Connection, "send_packed_command", send)

    assert ran == [f"/nowhere/{n}" for n in range(20)]  # in the order queued
    # One round trip a job, one more to find the queue empty, and the script's loading once.
    assert len(sent) <= 20 + 1 + 2, sent
    # No job, result or registry kept (RQ's worker keeps each finished job with its result for 500 s).
    assert queue.count == 0
    assert queue.connection.keys("rq:job:*") == []
    assert queue.connection.keys("rq:finished:*") == [] and queue.connection.keys("rq:results:*") == []
