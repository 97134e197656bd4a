"""The clock (issue 18): the periodic work runs once across every clock, when it is due, and no request
starts a thread any more. On SQLite and PostgreSQL; clocks at once are real threads with connections of
their own, and `flask --app wsgi clock` a real process stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from flask import Flask

from tests import factories as f
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.compliance import catalogue, submissions
from webapp.config import ConfigError, from_environment
from webapp.extensions import db
from webapp.messaging import compose, dispatch
from webapp.messaging.subjects import of_application
from webapp.models import ComplianceSubmission, Message, ScheduledRun, SendingNumber, utcnow
from webapp.numbers import pool
from webapp.scheduling import clock
from webapp.scheduling.tasks import Task

ROOT = Path(__file__).resolve().parent.parent


class Counting:
    """A task that counts its runs (and takes a moment, as a real one does)."""

    def __init__(self, name: str = "counting", setting: str = "COUNTING_SECONDS") -> None:
        self.starts: list[datetime] = []
        self._lock = threading.Lock()
        self.task = Task(name, setting, self.run)

    def run(self, now: datetime) -> str:
        with self._lock:
            self.starts.append(now)
        time.sleep(0.05)
        return "counted"


@pytest.fixture
def app_config() -> dict[str, object]:
    # The suite's apps switch the dispatch sweep off (it would race their tests); the clock's tests run it.
    return {"COUNTING_SECONDS": 30, "DISPATCH_SWEEP_SECONDS": 30}


@pytest.fixture
def world(app: Flask) -> dict[str, object]:
    org = f.messaging_org("Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user], title="Backend Engineer")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
    f.credits(org, 10)
    db.session.commit()
    return {"org": org, "user": user, "lena": lena}


def queued(world: dict[str, object]) -> int:
    message = compose.compose(db.session, world["user"], of_application(world["lena"]), "sms", "Hi")
    db.session.commit()
    return message.id


def left_as(message_id: int, status: str, attempts: int, seconds_ago: float) -> None:
    """The message as a dispatcher (or a try) left it that long ago."""
    db.session.execute(
        sa.update(Message)
        .where(Message.id == message_id)
        .values(status=status, attempts=attempts, claimed_at=utcnow() - timedelta(seconds=seconds_ago))
    )
    db.session.commit()


def fresh(message_id: int) -> Message:
    db.session.expire_all()
    message = db.session.get(Message, message_id)
    assert message is not None
    return message


def balance(world: dict[str, object]) -> int:
    db.session.expire_all()
    return credits.account_for(db.session, world["org"]).balance


def passes_at_once(app: Flask, clocks: int, now: datetime, tasks: list[Task]) -> list[list[clock.Run]]:
    """`clocks` passes at the same moment, each in a thread with its own session and connection."""
    start = threading.Barrier(clocks)
    results: list[list[clock.Run]] = [[] for _ in range(clocks)]
    errors: list[BaseException] = []

    def one(n: int) -> None:
        with app.app_context():
            try:
                start.wait(timeout=10)
                results[n] = clock.run_due(now, tasks)
            except BaseException as exc:  # handed to the test, not lost in the thread
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(clocks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


# --- The guard ---------------------------------------------------------------------------------------


def test_clocks_passing_at_once_run_a_due_task_once(app) -> None:
    counting = Counting()
    now = utcnow()
    # The first run ever (the row does not exist yet), then the next interval's (the row is claimed).
    for moment in (now, now + timedelta(seconds=30)):
        results = passes_at_once(app, 6, moment, [counting.task])
        ran = [run for result in results for run in result if run.ran]
        assert [run.outcome for run in ran] == ["counted"]
    assert counting.starts == [now, now + timedelta(seconds=30)]
    row = db.session.get(ScheduledRun, "counting")
    assert row is not None and row.started_at == now + timedelta(seconds=30) and row.outcome == "counted"


def test_a_task_runs_again_only_once_its_interval_has_passed(app) -> None:
    counting = Counting()
    now = utcnow()
    assert [r.ran for r in clock.run_due(now, [counting.task])] == [True]
    for later in (1, 15, 29.9):
        (run,) = clock.run_due(now + timedelta(seconds=later), [counting.task])
        assert not run.ran and run.outcome.startswith("not due")
    assert [r.ran for r in clock.run_due(now + timedelta(seconds=30), [counting.task])] == [True]
    assert counting.starts == [now, now + timedelta(seconds=30)]


def test_a_task_switched_off_never_runs(app) -> None:
    app.config["COUNTING_SECONDS"] = 0
    counting = Counting()
    (run,) = clock.run_due(utcnow(), [counting.task])
    assert (run.ran, run.outcome) == (False, "switched off")
    assert counting.starts == [] and db.session.get(ScheduledRun, "counting") is None


def test_a_failing_task_is_noted_and_waits_its_interval_and_the_others_still_run(app) -> None:
    def broken(now: datetime) -> str:
        db.session.add(ScheduledRun(task="half-written", started_at=now))
        db.session.flush()
        raise RuntimeError("the provider's account is locked")

    counting = Counting()
    tasks = [Task("broken", "COUNTING_SECONDS", broken), counting.task]
    now = utcnow()
    failed, counted = clock.run_due(now, tasks)
    assert failed.ran and failed.failed and "the provider's account is locked" in failed.outcome
    assert counted.ran and counted.outcome == "counted"
    db.session.expire_all()
    assert db.session.get(ScheduledRun, "half-written") is None  # its writes were rolled back
    assert db.session.get(ScheduledRun, "broken").outcome.startswith("failed: RuntimeError")
    # Not tried again at once by every pass: due again after its interval, like any run.
    assert not clock.run_due(now + timedelta(seconds=5), tasks)[0].ran
    assert clock.run_due(now + timedelta(seconds=30), tasks)[0].ran


def test_a_loops_memory_spares_the_database_until_a_task_is_due(app) -> None:
    counting = Counting()
    due_at: dict[str, datetime] = {}
    now = utcnow()
    assert clock.run_due(now, [counting.task], due_at)[0].ran
    assert due_at == {"counting": now + timedelta(seconds=30)}
    # Another clock's run moves the row; this loop learns it when it next asks, and waits for that one.
    db.session.execute(sa.update(ScheduledRun).values(started_at=now + timedelta(seconds=40)))
    db.session.commit()
    assert clock.run_due(now + timedelta(seconds=10), [counting.task], due_at) == []  # not even asked
    (run,) = clock.run_due(now + timedelta(seconds=31), [counting.task], due_at)
    assert not run.ran and due_at == {"counting": now + timedelta(seconds=70)}
    assert counting.starts == [now]


# --- The periodic work, each run by the clock --------------------------------------------------------


def test_the_clock_runs_the_dispatch_recovery(app, world) -> None:
    never_tried = queued(world)
    left_as(never_tried, "sending", attempts=0, seconds_ago=600)  # its dispatcher died at once
    mid_send = queued(world)
    left_as(mid_send, "sending", attempts=1, seconds_ago=600)  # it died during the HTTP call
    runs = {run.task: run for run in clock.run_due()}
    assert runs["dispatch-recovery"].ran
    assert "1 message(s) handed to the dispatcher again" in runs["dispatch-recovery"].outcome
    # Handed over again (inline here) and sent, once; the other may have gone out: waits for its report.
    assert (fresh(never_tried).status, fresh(never_tried).attempts) == ("submitted", 1)
    assert (fresh(mid_send).status, fresh(mid_send).attempts) == ("unknown", 1)
    assert balance(world) == 8


def test_the_clock_gives_up_unknown_outcomes_past_their_wait(app, world) -> None:
    waited = queued(world)
    left_as(waited, "unknown", attempts=1, seconds_ago=app.config["SEND_UNKNOWN_WAIT_SECONDS"] + 60)
    recent = queued(world)
    left_as(recent, "unknown", attempts=1, seconds_ago=60)
    assert balance(world) == 8
    runs = {run.task: run for run in clock.run_due()}
    assert runs["unknown-give-up"].outcome == "1 message(s) never confirmed and refunded"
    assert (fresh(waited).status, fresh(waited).error_code) == ("rejected", "unconfirmed")
    assert fresh(recent).status == "unknown"
    assert balance(world) == 9


def test_the_clock_expires_compliance_approvals(app) -> None:
    catalogue.sync(db.session)
    acme = f.messaging_org("Acme")
    staff = f.user(None, "csm@relay.test", is_staff=True)
    fr = pool.add(db.session, staff, acme, "+33612345600", sms=True, whatsapp=False)
    submission = submissions.get_or_create(db.session, acme.id, "FR")
    submission.status, submission.expires_at = "approved", utcnow() - timedelta(minutes=1)
    pool.activate_country(db.session, staff, acme.id, "FR", "approved")
    db.session.commit()
    assert db.session.get(SendingNumber, fr.id).status == "active"
    runs = {run.task: run for run in clock.run_due()}
    assert runs["compliance-expiry"].outcome == "Acme FR expired"
    db.session.expire_all()
    assert db.session.get(ComplianceSubmission, submission.id).status == "expired"
    assert db.session.get(SendingNumber, fr.id).status == "suspended"
    assert db.session.get(ScheduledRun, "compliance-expiry").outcome == "Acme FR expired"


def test_the_clock_command_makes_one_pass(app, world, runner) -> None:
    mid_send = queued(world)
    left_as(mid_send, "sending", attempts=1, seconds_ago=600)
    first = runner.invoke(args=["clock", "--once"])
    assert first.exit_code == 0, first.output
    assert "dispatch-recovery: 0 message(s) handed to the dispatcher again, 1 left mid-send" in first.output
    assert "compliance-expiry: nothing to do" in first.output
    assert "webhook-sweep: nothing to do" in first.output
    assert "scheduled-send: nothing to do" in first.output
    assert "notify-email: nothing to do" in first.output
    assert "bulk-resume: nothing to do" in first.output
    assert "number-health: nothing to do" in first.output
    assert "number-health-recount: nothing to do" in first.output
    assert fresh(mid_send).status == "unknown"
    again = runner.invoke(args=["clock", "--once"])
    assert again.output.count("not due (last started") == 9


# --- Where the clock runs ----------------------------------------------------------------------------


@pytest.fixture
def process_log(tmp_path: Path) -> Path:
    return tmp_path / "clock.log"


def test_the_clock_process_runs_the_work_until_sigterm_and_stops_cleanly(
    app, world, database_url, process_log
) -> None:
    mid_send = queued(world)
    left_as(mid_send, "sending", attempts=1, seconds_ago=600)
    env = {
        **os.environ,
        "RELAY_ENV": "development",
        "DATABASE_URL": database_url,
        "DISPATCH_MODE": "inline",
        "DISPATCH_SWEEP_SECONDS": "0.2",
        "SIMULATOR_DELIVERY_SECONDS": "3600",
        "PYTHONUNBUFFERED": "1",
    }
    with open(process_log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "clock"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while fresh(mid_send).status != "unknown" and time.monotonic() < deadline:
            assert process.poll() is None, process_log.read_text()
            time.sleep(0.1)
        assert fresh(mid_send).status == "unknown", process_log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process_log.read_text()
    intervals = (
        "dispatch-recovery every 0.2 s, unknown-give-up every 0.2 s, scheduled-send every 15 s, "
        "compliance-expiry every 3600 s, "
        "webhook-sweep every 15 s, notify-email every 60 s, bulk-resume every 0.2 s, "
        "number-health every 60 s, number-health-recount every 3600 s"
    )
    assert f"Clock: {intervals}." in output
    assert "dispatch-recovery: 0 message(s) handed to the dispatcher again, 1 left mid-send" in output
    assert output.rstrip().endswith("Clock stopped."), output
    assert "Traceback" not in output


def clock_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("relay-clock", "relay-sweep")]


def test_no_request_starts_a_thread_that_sweeps(app, world, client) -> None:
    # Thread dispatch, a sweep every 0.1 s: what used to start the sweeper from the first request.
    app.config.update(DISPATCH_MODE="thread", DISPATCH_SWEEP_SECONDS=0.1, CLOCK_IN_PROCESS=False)
    assert client.get("/healthz").status_code == 200
    assert client.get("/login").status_code == 200
    with app.test_request_context("/"):
        future = dispatch.enqueue(queued(world))
        assert future is not None
        future.result(timeout=30)
    assert "relay.clock" not in app.extensions and "relay.sweeper" not in app.extensions
    assert clock_threads() == []


def test_a_served_app_keeps_its_clock_in_a_thread_from_its_start_when_asked(app, world) -> None:
    app.config.update(DISPATCH_SWEEP_SECONDS=0.1, CLOCK_IN_PROCESS=True)
    mid_send = queued(world)
    left_as(mid_send, "sending", attempts=1, seconds_ago=600)
    running = clock.start_in_process(app)  # what wsgi.py does, before any request
    try:
        assert running is not None and clock.start_in_process(app) is running  # one per app
        assert clock_threads() == ["relay-clock"]
        deadline = time.monotonic() + 20
        while fresh(mid_send).status != "unknown" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fresh(mid_send).status == "unknown"
    finally:
        clock.stop_in_process(app)
    assert clock_threads() == [] and "relay.clock" not in app.extensions


def test_only_the_dev_server_or_a_wsgi_server_starts_the_clock_in_process(app) -> None:
    app.config.update(CLOCK_IN_PROCESS=True, DISPATCH_SWEEP_SECONDS=30)
    # `flask db upgrade`, `flask worker`, `flask clock`… load the app too, and must not sweep.
    for command in ("db", "worker", "clock", "shell"):
        with click.Context(click.Command(command)):
            assert clock.start_in_process(app) is None
    assert clock_threads() == []
    with click.Context(click.Command("run")):
        try:
            assert clock.start_in_process(app) is not None
        finally:
            clock.stop_in_process(app)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"DISPATCH_MODE": "thread"}, True),  # `make run`, and web processes that are the dispatchers
        ({"DISPATCH_MODE": "rq"}, False),  # the clock is a process of its own
        ({"DISPATCH_MODE": "inline"}, False),
        ({"DISPATCH_MODE": "rq", "CLOCK_IN_PROCESS": True}, True),
        ({"DISPATCH_MODE": "thread", "CLOCK_IN_PROCESS": False}, False),
        ({"DISPATCH_MODE": "thread", "DISPATCH_SWEEP_SECONDS": 0, "COMPLIANCE_EXPIRY_SECONDS": 0}, False),
    ],
)
def test_whether_a_served_app_keeps_the_clock(settings: dict[str, object], expected: bool) -> None:
    config = {"DISPATCH_SWEEP_SECONDS": 30, "COMPLIANCE_EXPIRY_SECONDS": 3600, "CLOCK_IN_PROCESS": None}
    assert clock.in_process({**config, **settings}) is expected


def test_the_clocks_settings(tmp_path) -> None:
    defaults = from_environment(str(tmp_path), {})
    assert (defaults["CLOCK_IN_PROCESS"], defaults["COMPLIANCE_EXPIRY_SECONDS"]) == (None, 3600)
    assert defaults["DISPATCH_SWEEP_SECONDS"] == 30
    assert from_environment(str(tmp_path), {"CLOCK_IN_PROCESS": "0"})["CLOCK_IN_PROCESS"] is False
    assert from_environment(str(tmp_path), {"CLOCK_IN_PROCESS": " on "})["CLOCK_IN_PROCESS"] is True
    with pytest.raises(ConfigError, match="CLOCK_IN_PROCESS must be 1 or 0"):
        from_environment(str(tmp_path), {"CLOCK_IN_PROCESS": "maybe"})
    with pytest.raises(ConfigError, match="COMPLIANCE_EXPIRY_SECONDS must be a number of seconds"):
        from_environment(str(tmp_path), {"COMPLIANCE_EXPIRY_SECONDS": "hourly"})
