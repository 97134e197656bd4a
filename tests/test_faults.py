"""Relay as `make serve` runs it (gunicorn, an RQ worker, the clock; tests/serve_support.py), while what it
stands on fails (tests/outages.py): PostgreSQL goes away under load and comes back, Redis is stopped and
started again, the worker is killed in the middle of a send, the whole set is stopped with SIGTERM while
sends wait. The assertion that matters each time: nothing acknowledged is lost, and no message reaches the
(fake) Vonage twice.

PostgreSQL only (serving refuses anything else), once per run: the served set is started once for the
module and again when a test has stopped it. The tests run in the order written.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
import sqlalchemy as sa

from tests import factories as f
from tests import webhook_support as hooks
from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database, need, test_config
from tests.fake_vonage import FakeVonage
from tests.outages import CuttableProxy, PrivateRedis
from tests.serve_support import Browser, Served, environment, free_port, wait_for
from webapp import create_app
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.models import Message

NUMBER = "+4915123456700"
MOBILE = "+4915123456789"
EMAIL = "riley@acme.test"
# Short enough for a test: the clock sweeps twice a second and hands over again what waited a second; a
# send that has not finished within 6 s belonged to a dispatcher that died; a stored webhook that no
# worker could apply (the database was away) is applied by the clock after a second, not 15.
TIMINGS = {
    "DISPATCH_SWEEP_SECONDS": "0.5",
    "WEBHOOK_SWEEP_SECONDS": "1",
    "SEND_REQUEUE_AFTER_SECONDS": "1",
    "SEND_LEASE_SECONDS": "6",
    "VONAGE_TIMEOUT": "4",
    "SMTP_TIMEOUT": "4",
    "VONAGE_CONNECT_TIMEOUT": "1",
    "SEND_BACKOFF_SECONDS": "0.1",
    "DATABASE_CONNECT_TIMEOUT": "2",
}


@dataclass
class Stack:
    served: Served
    proxy: CuttableProxy
    redis: PrivateRedis
    fake: FakeVonage
    conversation_id: int

    @property
    def base(self) -> str:
        return self.served.base

    def browser(self) -> Browser:
        browser = Browser(self.base)
        answer = browser.sign_in(EMAIL, f.PASSWORD)
        assert answer.status_code in (302, 303), f"sign-in answered {answer.status_code}"
        return browser


def _world() -> int:
    org = f.messaging_org("Acme", sender_name="Acme Careers")
    riley = f.user(org, EMAIL, codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(org, NUMBER, provider="vonage")
    job = f.job(org, team=[riley], title="Backend Engineer")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile=MOBILE))
    f.credits(org, 100)
    db.session.commit()
    return int(f.conversation_url(lena).rsplit("/", 1)[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not POSTGRES_URL:
        need("PostgreSQL (TEST_POSTGRES_URL)")
    if not PrivateRedis.available():
        need("redis-server")
    directory = tmp_path_factory.mktemp("faults")
    url = create_postgres_database("relay_faults")
    real = sa.make_url(url)
    proxy = CuttableProxy(real.host or "127.0.0.1", real.port or 5432)
    redis = PrivateRedis(directory)
    fake = FakeVonage(directory / "fake-vonage").start()
    served = None
    try:
        redis.start()
        env = environment(
            real.set(port=proxy.port).render_as_string(hide_password=False),
            redis.url,
            free_port(),
            PYTHONUNBUFFERED="1",
            ALLOW_SIMULATOR_IN_PRODUCTION="",
            MESSAGING_PROVIDER="vonage",
            VONAGE_API_HOST=fake.api_host,
            VONAGE_APPLICATION_ID=fake.application_id,
            VONAGE_PRIVATE_KEY_PATH=str(fake.private_key_path),
            REQUESTS_CA_BUNDLE=str(fake.ca_file),
            WEB_CONCURRENCY="2",
            SERVE_WORKERS="1",
            SERVE_STOP_SECONDS="20",
            **TIMINGS,
        )
        served = Served(env, directory / "serve.log")
        served.start()  # the migrations make the schema; the test adds its data after
        app = create_app(test_config(url))
        with app.app_context():
            conversation_id = _world()
            yield Stack(served, proxy, redis, fake, conversation_id)
            db.session.remove()
            db.engine.dispose()
    finally:
        if served is not None:
            served.kill_all()
        fake.stop()
        redis.stop()
        proxy.close()
        drop_postgres_database(url)


def posts_for(fake: FakeVonage, message_id: int) -> int:
    return sum(1 for r in fake.requests if r.body and r.body.get("client_ref") == str(message_id))


def message(**where: object) -> Message:
    db.session.expire_all()
    found = db.session.scalars(sa.select(Message).filter_by(**where)).all()
    assert len(found) == 1, f"{len(found)} messages with {where}"
    return found[0]


HTMX = {"HX-Request": "true"}


def send(stack: Stack, browser: Browser, text: str) -> Message:
    """Send an SMS from the conversation's composer, as the page does; the message stored."""
    token = browser.csrf(f"/inbox?c={stack.conversation_id}")
    answer = browser.request(
        "POST",
        f"/conversations/{stack.conversation_id}/messages",
        data={"channel": "sms", "view": "sms", "body": text, "csrf_token": token},
        headers=HTMX,
    )
    assert answer.status_code == 200, f"sending answered {answer.status_code}"
    return message(body=text)


def timed_get(browser: Browser, path: str, **kwargs: object) -> tuple[requests.Response, float]:
    """The answer, and how long it took to come whole."""
    started = time.monotonic()
    answer = browser.request("GET", path, timeout=15, **kwargs)
    return answer, time.monotonic() - started


def post_webhook(base: str, path: str, payload: dict[str, object]) -> int:
    return timed_webhook(base, path, payload)[0]


def timed_webhook(base: str, path: str, payload: dict[str, object]) -> tuple[int, float]:
    """The status a webhook was answered with (0: none, which Vonage also posts again), and how long
    the answer took. A connection of its own each time, as Vonage's posts come."""
    raw = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {hooks.token(raw)}"}
    started = time.monotonic()
    with requests.Session() as http:
        http.trust_env = False
        try:
            status = http.post(base + path, data=raw, headers=headers, timeout=30).status_code
        except requests.RequestException:
            status = 0
    return status, time.monotonic() - started


class InboundStorm(threading.Thread):
    """Inbound replies posted one after another, a new one each time until `stopping`; one answered other
    than 2xx is posted again (the same message_uuid) half a second later, as Vonage retries, until taken."""

    def __init__(self, base: str) -> None:
        super().__init__(name="inbound-storm", daemon=True)
        self.base = base
        self.stopping = threading.Event()
        self.taken: list[str] = []
        self.refused: dict[str, int] = {}  # message_uuid → answers other than 2xx
        self.pending: list[tuple[float, dict[str, object]]] = []  # (when to post again, the webhook)
        self.slowest_refusal = 0.0  # seconds

    def run(self) -> None:
        while not self.stopping.is_set() or self.pending:
            if self.pending and self.pending[0][0] <= time.monotonic():
                payload = self.pending.pop(0)[1]
            elif self.stopping.is_set():
                time.sleep(0.1)  # only retries are left: wait for the next one's turn
                continue
            else:
                payload = hooks.inbound(NUMBER, MOBILE, f"Reply {uuid.uuid4().hex[:8]}")
            status, seconds = timed_webhook(self.base, "/webhooks/vonage/inbound", payload)
            key = str(payload["message_uuid"])
            if 200 <= status < 300:
                self.taken.append(key)
            else:
                self.slowest_refusal = max(self.slowest_refusal, seconds)
                self.refused[key] = self.refused.get(key, 0) + 1
                self.pending.append((time.monotonic() + 0.5, payload))
                time.sleep(0.05)

    def finish(self, timeout: float) -> None:
        self.stopping.set()
        self.join(timeout)
        assert not self.is_alive(), f"webhooks still refused after {timeout:g} s: {len(self.pending)}"


def test_postgresql_going_away_answers_503_quickly_and_loses_nothing(stack: Stack) -> None:
    browser = stack.browser()
    assert browser.request("GET", "/inbox").status_code == 200
    storm = InboundStorm(stack.base)
    storm.start()
    wait_for(lambda: len(storm.taken) >= 3, 30, "webhooks taken before the cut", stack.served.log)

    stack.proxy.cut()  # every connection to PostgreSQL dropped, new ones refused: a restart
    try:
        page, seconds = timed_get(browser, "/inbox")
        assert page.status_code == 503, page.text[:500]
        assert seconds < 5
        assert page.headers.get("retry-after", "").isdigit()
        assert "Unavailable for a moment" in page.text
        pane, _ = timed_get(browser, f"/inbox/conversations/{stack.conversation_id}", headers=HTMX)
        assert (pane.status_code, pane.headers.get("hx-reswap")) == (503, "none")
        ready = stack.served.get("/readyz", timeout=15)
        assert ready.status_code == 503 and "unreachable" in ready.json()["database"]
        time.sleep(2)
    finally:
        stack.proxy.restore()

    # Nothing restarted: the next requests find the database again.
    wait_for(
        lambda: browser.request("GET", "/inbox").status_code == 200,
        20,
        "pages to answer again",
        stack.served.log,
    )
    assert stack.served.ready()
    time.sleep(1)
    storm.finish(30)
    assert len(storm.refused) >= 3, "the storm ran through the cut"
    assert storm.slowest_refusal < 5  # refused at once, not held until a timeout
    # Every webhook acknowledged is stored, each once; those refused were taken on a later try. The
    # workers apply what was acknowledged (webapp.messaging.ingest): wait for them.
    assert set(storm.refused) <= set(storm.taken)

    def stored() -> list[str]:
        db.session.rollback()
        return db.session.scalars(
            sa.select(Message.provider_id).where(
                Message.direction == "inbound", Message.provider_id.in_(storm.taken)
            )
        ).all()

    wait_for(
        lambda: len(stored()) >= len(set(storm.taken)), 30, "the workers to apply them", stack.served.log
    )
    assert sorted(stored()) == sorted(set(storm.taken))
    assert stack.served.process is not None and stack.served.process.poll() is None


def test_with_redis_stopped_pages_work_and_sends_wait_in_the_database(stack: Stack) -> None:
    before = stack.served.log.read_text().count("ended by itself")
    stack.redis.stop()
    try:
        browser = stack.browser()  # signing in needs no Redis
        assert browser.request("GET", "/inbox").status_code == 200
        assert stack.served.get("/readyz").status_code == 503
        waiting = [send(stack, browser, f"Redis is away {n}") for n in range(3)]
        time.sleep(2)  # the sweep runs meanwhile and cannot hand them over either
        assert [message(id=m.id).status for m in waiting] == ["queued"] * 3
        assert [posts_for(stack.fake, m.id) for m in waiting] == [0, 0, 0]
    finally:
        stack.redis.start()  # empty: what was enqueued before is gone too

    def all_sent() -> bool:
        return all(message(id=m.id).status == "submitted" for m in waiting)

    wait_for(all_sent, 30, "the sweep to hand the queued sends over", stack.served.log)
    time.sleep(1.5)  # more sweeps: nothing goes twice
    assert [posts_for(stack.fake, m.id) for m in waiting] == [1, 1, 1]
    assert stack.served.ready()
    # The workers waited for Redis: none ended (three ends within a minute would stop the whole set).
    assert stack.served.log.read_text().count("ended by itself") == before, stack.served.log.read_text()


def test_a_worker_killed_mid_send_leaves_one_post(stack: Stack) -> None:
    stack.fake.hang(60)  # Vonage takes the next send and does not answer
    browser = stack.browser()
    sent = send(stack, browser, "Killed mid-send")
    wait_for(lambda: posts_for(stack.fake, sent.id) == 1, 20, "the worker's POST", stack.served.log)
    started = stack.served.log.read_text().count("worker started (pid")
    os.kill(stack.served.started()["worker"], signal.SIGKILL)

    # The supervisor starts the worker again; the set stays up.
    wait_for(
        lambda: stack.served.log.read_text().count("worker started (pid") == started + 1,
        20,
        "a new worker",
        stack.served.log,
    )
    assert stack.served.process is not None and stack.served.process.poll() is None
    assert (message(id=sent.id).status, message(id=sent.id).attempts) == ("sending", 1)
    # Once the dead claim's lease has run out, the sweep finds it: the try may have reached Vonage, so
    # it is "checking with the network", not sent again.
    wait_for(lambda: message(id=sent.id).status == "unknown", 30, "the recovery", stack.served.log)
    assert stack.served.ready()
    # Vonage's report names it by our client_ref (its message_uuid never reached us).
    report = hooks.status(str(uuid.uuid4()), "delivered", client_ref=str(sent.id))
    assert 200 <= post_webhook(stack.base, "/webhooks/vonage/status", report) < 300
    wait_for(lambda: message(id=sent.id).status == "delivered", 20, "the report applied", stack.served.log)
    time.sleep(1.5)
    assert posts_for(stack.fake, sent.id) == 1


def test_sigterm_with_sends_queued_and_in_flight_doubles_none(stack: Stack) -> None:
    stack.fake.answer_every_request(delay=1.0)  # each send takes a second: one in flight, the rest wait
    try:
        browser = stack.browser()
        waiting = [send(stack, browser, f"Stopping {n}") for n in range(4)]
        wait_for(lambda: posts_for(stack.fake, waiting[0].id) == 1, 20, "the first send", stack.served.log)
        assert stack.served.stop() == 0  # SIGTERM: the send in flight finishes, the rest wait
        states = [message(id=m.id).status for m in waiting]
        assert "sending" not in states, states
        assert states[0] == "submitted"
    finally:
        stack.fake.answer_every_request(delay=0)
    stack.served.start()
    wait_for(
        lambda: all(message(id=m.id).status == "submitted" for m in waiting),
        30,
        "the rest to be sent after the restart",
        stack.served.log,
    )
    time.sleep(1.5)
    assert [posts_for(stack.fake, m.id) for m in waiting] == [1, 1, 1, 1]
    assert stack.served.stop() == 0
