"""Never stuck, never twice: dispatch against the fake Vonage over TLS when things go wrong.

The assertion that matters in each test is the number of POSTs the fake received for the message.
Processes that die mid-send are real processes killed with SIGKILL: an RQ worker on Redis, and a web
process sending on its thread pool.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests import webhook_support as hooks
from tests.conftest import WEBHOOK_SECRET, need
from tests.fake_vonage import FakeVonage
from tests.serve_support import wait_for
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.messaging import compose, dispatch
from webapp.messaging.subjects import of_application
from webapp.models import Message, utcnow
from webapp.scheduling import clock

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_TEST_URL", "")


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {
        **fake.app_settings(),
        "VONAGE_TIMEOUT": 0.5,
        "SEND_MAX_ATTEMPTS": 3,
    }


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", sender_name="Acme Careers")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user], title="Backend Engineer")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
    f.credits(org, 10)
    db.session.commit()
    return {"org": org, "user": user, "lena": lena}


def queued(world, body: str = "Hi %FIRSTNAME%") -> int:
    message = compose.compose(db.session, world["user"], of_application(world["lena"]), "sms", body)
    db.session.commit()
    return message.id


def fresh(message_id: int) -> Message:
    db.session.expire_all()
    message = db.session.get(Message, message_id)
    assert message is not None
    return message


def posts_for(fake: FakeVonage, message_id: int) -> int:
    return sum(1 for r in fake.requests if r.body and r.body.get("client_ref") == str(message_id))


def balanced(world) -> int:
    """The balance, after checking that it equals its ledger."""
    db.session.expire_all()
    account = credits.account_for(db.session, world["org"])
    assert credits.ledger_sum(db.session, account.id) == account.balance
    return account.balance


def report(client, message_id: int, value: str, **extra):
    """A status webhook for a message whose message_uuid we never learnt: only client_ref names it."""
    payload = hooks.status("0b9e1c9e-5d7a-4c1e-9f4e-0a1b2c3d4e5f", value, client_ref=str(message_id), **extra)
    return hooks.post(client, "/webhooks/vonage/status", payload)


def age(message_id: int, seconds: float) -> None:
    """Move the message's claim into the past, as if that much time had gone by."""
    db.session.execute(
        sa.update(Message)
        .where(Message.id == message_id)
        .values(claimed_at=utcnow() - timedelta(seconds=seconds))
    )
    db.session.commit()


# --- Unknown outcomes, settled by the report ---------------------------------------------------------


def test_a_timeout_is_sent_once_shown_as_checking_and_settled_by_the_report(
    world, fake, client, auth
) -> None:
    fake.hang(3)
    message_id = queued(world)
    dispatch.deliver(message_id)

    m = fresh(message_id)
    assert (m.status, m.attempts, m.provider_id) == ("unknown", 1, None)
    assert posts_for(fake, message_id) == 1
    assert balanced(world) == 9  # it may have gone: not refunded

    auth.login(world["user"].email)
    page = client.get(f"/applications/{world['lena'].id}?tab=sms").get_data(as_text=True)
    assert "Checking with the network…" in page and "Not sent" not in page
    assert "Vonage did not answer in time. Relay will not send it again" in page

    assert report(client, message_id, "delivered").status_code == 204
    m = fresh(message_id)
    assert m.status == "delivered" and m.provider_id == "0b9e1c9e-5d7a-4c1e-9f4e-0a1b2c3d4e5f"
    assert m.error_title is None
    assert posts_for(fake, message_id) == 1
    assert balanced(world) == 9


def test_a_rejection_report_settles_an_unknown_outcome_and_refunds(world, fake, client) -> None:
    fake.fail(503, "Service Unavailable", "Try later")
    message_id = queued(world)
    dispatch.deliver(message_id)
    assert fresh(message_id).status == "unknown"

    error = {"type": "https://developer.vonage.com/api-errors#1320", "title": "1320", "detail": "Bad number"}
    report(client, message_id, "rejected", error=error)

    m = fresh(message_id)
    assert m.status == "rejected" and m.error_code == "1320"
    assert posts_for(fake, message_id) == 1
    assert balanced(world) == 10


def test_with_no_report_it_is_given_up_refunded_and_a_late_report_still_counts(
    world, fake, client, auth
) -> None:
    fake.fail(500, "Internal Error", "Something went wrong on our side")
    message_id = queued(world)
    dispatch.deliver(message_id)
    assert fresh(message_id).status == "unknown"

    assert dispatch.recover().given_up == []  # still within the wait
    age(message_id, 901)
    assert dispatch.recover().given_up == [message_id]
    m = fresh(message_id)
    assert (m.status, m.error_code, m.error_title) == (
        "rejected",
        "unconfirmed",
        "Not confirmed by the network",
    )
    assert balanced(world) == 10
    assert posts_for(fake, message_id) == 1  # given up, never resent

    auth.login(world["user"].email)
    page = client.get(f"/applications/{world['lena'].id}?tab=sms").get_data(as_text=True)
    assert "Not confirmed by the network" in page and "the credits were given back" in page

    # Vonage's report comes after all: the candidate got it, and the screen says so.
    report(client, message_id, "delivered")
    m = fresh(message_id)
    assert m.status == "delivered" and m.error_code is None
    assert balanced(world) == 10  # the give-up was ours: the customer is not charged again
    assert dispatch.recover().given_up == []


# --- Certainly not accepted: retried, counted --------------------------------------------------------


def test_attempts_count_the_http_tries(world, fake) -> None:
    fake.fail(429, "Rate Limit Hit", "Please wait")
    fake.fail(429, "Rate Limit Hit", "Please wait")
    message_id = queued(world)
    dispatch.deliver(message_id)
    m = fresh(message_id)
    assert m.status == "submitted" and m.attempts == 3 == posts_for(fake, message_id)


def test_a_provider_that_cannot_be_built_rejects_and_refunds_instead_of_sticking(world, fake, app) -> None:
    Path(app.config["VONAGE_PRIVATE_KEY_PATH"]).unlink()  # the key went missing after start-up
    message_id = queued(world)
    dispatch.deliver(message_id)
    m = fresh(message_id)
    assert m.status == "rejected" and m.error_title == "Relay could not send it"
    assert "private key" in m.error_detail
    assert m.attempts == 0 and posts_for(fake, message_id) == 0
    assert balanced(world) == 10


# --- Leases --------------------------------------------------------------------------------------------


def claimed(message_id: int, attempts: int, seconds_ago: float) -> None:
    db.session.execute(
        sa.update(Message)
        .where(Message.id == message_id)
        .values(status="sending", attempts=attempts, claimed_at=utcnow() - timedelta(seconds=seconds_ago))
    )
    db.session.commit()


def test_a_claim_whose_lease_ran_out_before_any_try_is_sent_once(world, fake) -> None:
    message_id = queued(world)
    claimed(message_id, attempts=0, seconds_ago=60)
    assert dispatch.recover().requeued == []  # within the lease (120 s): its dispatcher may be alive
    claimed(message_id, attempts=0, seconds_ago=121)
    assert dispatch.recover().requeued == [message_id]
    assert fresh(message_id).status == "submitted"
    assert posts_for(fake, message_id) == 1
    assert dispatch.recover().requeued == []


def test_a_claim_whose_lease_ran_out_mid_try_waits_for_the_report(world, fake, client) -> None:
    message_id = queued(world)
    claimed(message_id, attempts=1, seconds_ago=121)
    found = dispatch.recover()
    assert found.unknown == [message_id] and found.requeued == []
    m = fresh(message_id)
    assert m.status == "unknown" and m.error_title == "The sender stopped mid-send"
    assert posts_for(fake, message_id) == 0  # not resent: the dead try may have reached Vonage
    report(client, message_id, "submitted")
    assert fresh(message_id).status == "submitted"


def test_a_sender_that_lost_its_claim_does_not_try_again(world, fake, app) -> None:
    # While a slow try is under way, the sweep (lease too short) takes the message over; when the try
    # comes back "not accepted", its dispatcher must not try again.
    app.config.update(SEND_LEASE_SECONDS=0.2)
    fake.fail(429, "Rate Limit Hit", "Please wait")
    message_id = queued(world)
    original = dispatch.attempts.send
    swept: list[bool] = []

    def slow_then_sweep(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return original(*args, **kwargs)
        finally:
            if not swept:  # the first try, counted already, takes longer than the lease
                swept.append(True)
                time.sleep(0.3)
                dispatch.recover(hand_over=False)

    dispatch.attempts.send = slow_then_sweep  # type: ignore[assignment]
    try:
        dispatch.deliver(message_id)
    finally:
        dispatch.attempts.send = original  # type: ignore[assignment]
    m = fresh(message_id)
    assert m.status == "unknown" and posts_for(fake, message_id) == 1


def test_queued_messages_left_behind_are_handed_over_once(world, fake, runner) -> None:
    message_id = queued(world)
    db.session.execute(
        sa.update(Message)
        .where(Message.id == message_id)
        .values(created_at=utcnow() - timedelta(seconds=301))
    )
    db.session.commit()
    result = runner.invoke(args=["dispatch", "requeue"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 message(s) handed to the dispatcher again")
    assert fresh(message_id).status == "submitted"
    result = runner.invoke(args=["dispatch", "requeue", "--older-than", "0"])
    assert result.output.startswith("0 message(s)")
    assert posts_for(fake, message_id) == 1


# --- The in-process dispatcher ---------------------------------------------------------------------------


def test_one_hanging_call_does_not_hold_the_other_messages(world, fake, app) -> None:
    app.config.update(DISPATCH_MODE="thread", DISPATCH_THREADS=4, VONAGE_TIMEOUT=2)
    fake.hang(5)  # the first request to arrive hangs; the others are answered at once
    ids = [queued(world, f"Message {n}") for n in range(6)]
    started = time.monotonic()
    futures = [dispatch.enqueue(i) for i in ids]

    def others_done() -> bool:
        db.session.expire_all()
        states = [db.session.get(Message, i).status for i in ids]
        return states.count("submitted") == 5

    wait_for(others_done, 1.5, "the five other messages")
    assert time.monotonic() - started < 1.5
    for future in futures:
        assert future is not None
        future.result(timeout=5)
    states = sorted(fresh(i).status for i in ids)
    assert states == ["submitted"] * 5 + ["unknown"]
    assert [posts_for(fake, i) for i in ids] == [1] * 6


# --- Real processes killed mid-send ------------------------------------------------------------------------


def process_env(database_url: str, fake: FakeVonage, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "RELAY_ENV": "development",
        "PYTHONUNBUFFERED": "1",
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "DATABASE_URL": database_url,
        **fake.app_settings(),
        "VONAGE_SIGNATURE_SECRET": WEBHOOK_SECRET,
        "REQUESTS_CA_BUNDLE": str(fake.ca_file),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "VONAGE_TIMEOUT": "30",
        "VONAGE_CONNECT_TIMEOUT": "2",
        "SEND_LEASE_SECONDS": "60",
        **settings,
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        kill(process)


def test_an_rq_worker_killed_mid_send_leaves_one_copy(
    world, fake, app, client, database_url, processes, tmp_path
) -> None:
    if not REDIS_URL:
        need("Redis (REDIS_TEST_URL)")
    app.config.update(DISPATCH_MODE="rq", REDIS_URL=REDIS_URL)
    q = dispatch.queue(app)
    q.empty()
    fake.hang(60)
    message_id = queued(world)
    dispatch.enqueue(message_id)
    log = tmp_path / "workers.log"

    env = process_env(database_url, fake, REDIS_URL=REDIS_URL, DISPATCH_SWEEP_SECONDS="0")
    first = start(["-m", "flask", "--app", "wsgi", "worker"], env, log)
    processes.append(first)
    wait_for(lambda: posts_for(fake, message_id) == 1, 30, "the worker's POST", log)
    kill(first)  # SIGKILL while Vonage has the request and has not answered
    m = fresh(message_id)
    assert (m.status, m.attempts) == ("sending", 1)

    # A new worker and the clock, with a short lease, find the dead claim and recover it, without sending
    # again.
    env.update(
        VONAGE_TIMEOUT="1",
        VONAGE_CONNECT_TIMEOUT="0.5",
        SMTP_TIMEOUT="1",
        SEND_BACKOFF_SECONDS="0.1",
        SEND_LEASE_SECONDS="2.5",
        DISPATCH_SWEEP_SECONDS="0.3",
    )
    second = start(["-m", "flask", "--app", "wsgi", "worker"], env, log)
    processes.append(second)
    processes.append(start(["-m", "flask", "--app", "wsgi", "clock"], env, log))
    wait_for(lambda: fresh(message_id).status == "unknown", 30, "the recovery", log)
    assert posts_for(fake, message_id) == 1

    report(client, message_id, "delivered")
    assert fresh(message_id).status == "delivered"
    time.sleep(0.5)  # a sweep or two more: still one copy
    assert posts_for(fake, message_id) == 1 and len(fake.requests) == 1
    assert balanced(world) == 9
    q.empty()


SEND_IN_PROCESS = """
import sys, time
from webapp import create_app
from webapp.messaging import dispatch
app = create_app({"DISPATCH_MODE": "thread"})
with app.app_context():
    dispatch.enqueue(int(sys.argv[1]))
time.sleep(120)
"""


def test_a_web_process_killed_mid_send_is_recovered_by_the_in_process_sweep(
    world, fake, app, client, database_url, processes, tmp_path
) -> None:
    fake.hang(60)
    message_id = queued(world)
    env = process_env(database_url, fake)
    web = start(["-c", SEND_IN_PROCESS, str(message_id)], env, tmp_path / "web.log")
    processes.append(web)
    wait_for(lambda: posts_for(fake, message_id) == 1, 30, "the web process's POST", tmp_path / "web.log")
    kill(web)  # as gunicorn does to a worker that overstays its graceful timeout
    assert fresh(message_id).status == "sending"

    # Another web process (this one) sweeps on its own: its clock runs in a thread from its start.
    app.config.update(
        DISPATCH_MODE="thread",
        DISPATCH_SWEEP_SECONDS=0.2,
        SEND_LEASE_SECONDS=1,
        SEND_UNKNOWN_WAIT_SECONDS=1.5,
    )
    assert clock.start_in_process(app) is not None  # as wsgi.py does when the app is served
    try:
        assert client.get("/healthz").status_code == 200
        wait_for(lambda: fresh(message_id).status == "unknown", 10, "the lease to run out")
        wait_for(lambda: fresh(message_id).status == "rejected", 10, "the wait for a report to end")
    finally:
        clock.stop_in_process(app)
    m = fresh(message_id)
    assert m.error_code == "unconfirmed"
    assert posts_for(fake, message_id) == 1
    assert balanced(world) == 10
