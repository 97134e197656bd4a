"""/metrics: Prometheus text read by prometheus-client's own parser, after real sends to the fake Vonage
and real signed webhooks; closed to anyone without the token or an allowed address; and the counts of
several processes added up in multiprocess mode (real subprocesses writing to one directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests import factories as f
from tests import webhook_support as hooks
from tests.conftest import need
from webapp import metrics
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import compose, dispatch
from webapp.messaging.checks import SendRefused
from webapp.messaging.subjects import of_application
from webapp.models import Message

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_TEST_URL", "")
TOKEN = "metrics-token-for-the-tests-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {
        "METRICS_TOKEN": TOKEN,
        "METRICS_ALLOW_FROM": ("10.0.0.0/8", "2001:db8::/32"),
        **fake.app_settings(),
        "VONAGE_TIMEOUT": 2,
        "SEND_MAX_ATTEMPTS": 2,
    }


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", sender_name="Acme Careers")
    user = f.user(org, "riley@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user], title="Backend Engineer")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
    f.credits(org, 3)
    db.session.commit()
    return {"org": org, "user": user, "lena": lena}


def scrape(client, **kw) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) → value."""
    response = client.get("/metrics", headers=BEARER, **kw)
    assert response.status_code == 200, response.status_code
    assert response.content_type.startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def queued(world, body: str = "Hi %FIRSTNAME%") -> int:
    message = compose.compose(db.session, world["user"], of_application(world["lena"]), "sms", body)
    db.session.commit()
    return message.id


# --- What it shows -------------------------------------------------------------------------------------


def test_a_send_and_webhooks_show_in_the_metrics(client, world, fake) -> None:
    before = scrape(client)
    message_id = queued(world)
    dispatch.deliver(message_id)
    uuid = db.session.get(Message, message_id).provider_id
    assert hooks.post(client, "/webhooks/vonage/status", hooks.status(uuid, "delivered")).status_code == 204
    reply = hooks.inbound("+4915123456700", "+4915123456789", "Thanks")
    assert hooks.post(client, "/webhooks/vonage/inbound", reply).status_code == 200
    assert hooks.post(client, "/webhooks/vonage/inbound", reply).status_code == 204  # the same again
    forged = hooks.post(client, "/webhooks/vonage/status", hooks.status(uuid, "read"), auth="Bearer x")
    assert forged.status_code == 401
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    attempt = {"provider": "vonage", "channel": "sms", "outcome": "accepted"}
    assert grew("relay_send_attempts_total", **attempt) == 1
    assert grew("relay_send_seconds_count", provider="vonage", outcome="accepted") == 1
    assert grew("relay_send_seconds_bucket", provider="vonage", outcome="accepted", le="+Inf") == 1
    assert grew("relay_webhooks_total", provider="vonage", kind="status", status="204") == 1
    assert grew("relay_webhooks_total", provider="vonage", kind="status", status="401") == 1
    assert grew("relay_webhooks_total", provider="vonage", kind="inbound", status="200") == 1
    assert grew("relay_webhooks_total", provider="vonage", kind="inbound", status="204") == 1
    assert grew("relay_http_requests_total", method="GET", endpoint="scrape", status="200") == 1
    # Read from the database at the scrape: what there is now.
    assert value(after, "relay_messages", channel="sms", direction="outbound", status="delivered") == 1
    assert value(after, "relay_messages", channel="sms", direction="inbound", status="received") == 1
    assert value(after, "relay_queue_depth", queue="database") == 0
    assert ("relay_queue_depth", (("queue", "rq"),)) not in after  # no Redis in this app


def test_unknown_outcomes_credits_refused_paced_waits_and_the_queue(client, world, fake) -> None:
    before = scrape(client)
    fake.fail(500, "Internal Error")
    dispatch.deliver(queued(world))  # the provider may have it: unknown
    queued(world)  # waits in the database
    with pytest.raises(SendRefused, match="needs 3 credits"):
        queued(world, "x" * 400)  # three parts; one credit left
    db.session.rollback()
    metrics.paced_wait(0.3)
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("relay_send_attempts_total", provider="vonage", channel="sms", outcome="unknown") == 1
    assert grew("relay_send_unknown_outcomes_total", provider="vonage", channel="sms") == 1
    assert grew("relay_credits_refused_total", channel="sms") == 1
    assert grew("relay_paced_wait_seconds_count") == 1
    assert grew("relay_paced_wait_seconds_sum") == pytest.approx(0.3)
    assert value(after, "relay_messages", channel="sms", direction="outbound", status="unknown") == 1
    assert value(after, "relay_queue_depth", queue="database") == 1


def test_the_rq_queue_length_is_read_from_redis(app, client, world) -> None:
    if not REDIS_URL:
        need("Redis (REDIS_TEST_URL)")
    app.config.update(DISPATCH_MODE="rq", REDIS_URL=REDIS_URL)
    q = dispatch.queue(app)
    q.empty()
    try:
        queued(world)
        queued(world)
        dispatch.enqueue(db.session.scalars(sa.select(Message.id)).first())
        samples = scrape(client)
    finally:
        q.empty()
    assert value(samples, "relay_queue_depth", queue="rq") == 1
    assert value(samples, "relay_queue_depth", queue="database") == 2


def test_a_request_counts_without_a_query(app, client) -> None:
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_rest) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        assert client.get("/healthz").status_code == 200
        assert client.get("/login").status_code == 200
        assert client.get("/no/such/page").status_code == 404
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    assert statements == []


# --- Who may read it ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "address", "allowed"),
    [
        (BEARER, "192.0.2.1", True),  # the token, from anywhere
        ({"Authorization": f"bearer {TOKEN}"}, "192.0.2.1", True),  # the scheme in any case
        ({}, "10.20.30.40", True),  # an allowed network
        ({}, "2001:db8::7", True),
        ({}, "192.0.2.1", False),  # anyone else
        ({}, "127.0.0.1", False),  # the machine itself is not allowed unless listed
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, "192.0.2.1", False),
        ({"Authorization": f"Basic {TOKEN}"}, "192.0.2.1", False),
        ({"Authorization": "Bearer "}, "192.0.2.1", False),
    ],
)
def test_only_the_token_or_an_allowed_address_reads_it(client, world, headers, address, allowed) -> None:
    response = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": address})
    assert response.status_code == (200 if allowed else 404)
    assert (b"relay_messages" in response.data) is allowed


def test_with_nothing_configured_nobody_reads_it(app, client, world) -> None:
    app.config.update(METRICS_TOKEN=None, METRICS_ALLOW_FROM=())
    assert client.get("/metrics", headers=BEARER).status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 404


def test_the_settings_are_checked() -> None:
    from webapp import config

    env = {"METRICS_ALLOW_FROM": "10.0.0.0/8, 192.0.2.7 ,::1"}
    assert config.from_environment("/tmp", env)["METRICS_ALLOW_FROM"] == (
        "10.0.0.0/8",
        "192.0.2.7/32",
        "::1/128",
    )
    with pytest.raises(config.ConfigError, match="METRICS_ALLOW_FROM: 'ten' is not"):
        config.from_environment("/tmp", {"METRICS_ALLOW_FROM": "10.0.0.0/8,ten"})
    base = config.from_environment("/tmp", {})
    assert base["LOG_FORMAT"] == "text" and base["METRICS_TOKEN"] is None
    production = config.from_environment("/tmp", {"RELAY_ENV": "production"})
    assert production["LOG_FORMAT"] == "json"
    for bad, message in (
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be 32 characters"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be json or text"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be"),
        (
            {"PROMETHEUS_MULTIPROC_DIR": "/nonexistent/prometheus"},
            "PROMETHEUS_MULTIPROC_DIR=/nonexistent/pro",
        ),
    ):
        with pytest.raises(config.ConfigError, match=message):
            config.check(config.from_environment("/tmp", bad))


# --- Several processes --------------------------------------------------------------------------------


COUNTING = textwrap.dedent(
    """
    import sys
    from webapp import metrics

    for _ in range(int(sys.argv[1])):
        metrics.send_attempt("vonage", "sms", "accepted", 0.2)
    metrics.webhook("vonage", "status", 204)
    print("done")
    """
)


def test_multiprocess_mode_adds_up_every_process(client, world, tmp_path, monkeypatch) -> None:
    directory = tmp_path / "prometheus"
    monkeypatch.setenv(metrics.MULTIPROC_DIR, str(directory))
    metrics.clear_multiprocess_dir()  # creates it
    env = {**os.environ, metrics.MULTIPROC_DIR: str(directory)}
    workers = [
        subprocess.Popen([sys.executable, "-c", COUNTING, str(n)], cwd=ROOT, env=env, stdout=subprocess.PIPE)
        for n in (3, 4)
    ]
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0 and out.strip() == b"done"
    assert len(list(directory.glob("counter_*.db"))) == 2  # one file per process

    samples = scrape(client)  # this process counts in its own memory: only the two processes' files
    attempt = {"provider": "vonage", "channel": "sms", "outcome": "accepted"}
    assert value(samples, "relay_send_attempts_total", **attempt) == 7
    assert value(samples, "relay_send_seconds_count", provider="vonage", outcome="accepted") == 7
    assert value(samples, "relay_send_seconds_sum", provider="vonage", outcome="accepted") == pytest.approx(
        1.4
    )
    assert value(samples, "relay_webhooks_total", provider="vonage", kind="status", status="204") == 2
    assert value(samples, "relay_queue_depth", queue="database") == 0  # the database's gauges as well

    # gunicorn's hook for a worker that exited: its counts stay in the sum.
    metrics.child_exit(None, SimpleNamespace(pid=workers[0].pid))
    assert value(scrape(client), "relay_send_attempts_total", **attempt) == 7

    metrics.clear_multiprocess_dir()
    assert list(directory.iterdir()) == []


def test_two_gunicorn_workers_are_scraped_as_one(sqlite_schema, tmp_path) -> None:
    """Real gunicorn, two sync workers, the child_exit hook imported as a gunicorn config would: every
    request counted once, whichever worker served it or the scrape."""
    import http.client
    import shutil
    import signal
    import socket
    from concurrent.futures import ThreadPoolExecutor

    database = tmp_path / "relay.db"
    shutil.copyfile(sqlite_schema, database)
    directory = tmp_path / "prometheus"
    directory.mkdir()
    config = tmp_path / "gunicorn.conf.py"
    config.write_text("from webapp.metrics import child_exit  # noqa: F401\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "RELAY_ENV": "development",
        "DATABASE_URL": f"sqlite:///{database}",
        "DISPATCH_MODE": "inline",
        "CLOCK_IN_PROCESS": "0",
        "METRICS_TOKEN": TOKEN,
        metrics.MULTIPROC_DIR: str(directory),
        "LOG_FORMAT": "json",
    }
    env.pop("REDIS_URL", None)
    log = tmp_path / "gunicorn.log"
    gunicorn = str(ROOT / ".venv" / "bin" / "gunicorn")
    command = [gunicorn, "-c", str(config), "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:app"]
    with open(log, "wb") as out:
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            answer = conn.getresponse()
            return answer.status, answer.read().decode()
        finally:
            conn.close()

    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # Until both workers have served some (each writes its own file): the second may still be
        # starting while the first answers a whole batch.
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:
            while True:
                assert set(pool.map(lambda _: get("/healthz")[0], range(200))) == {200}
                if len(list(directory.glob("counter_*.db"))) == 2:
                    break
                assert time.monotonic() < deadline, log.read_text()

        def healthz_count() -> float:
            status, text = get("/metrics", {"Authorization": f"Bearer {TOKEN}"})
            assert status == 200, text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    labels = sample.labels
                    if sample.name == "relay_http_requests_total" and labels.get("endpoint") == "healthz":
                        return sample.value
            return 0.0

        counted = healthz_count()
        assert counted >= 201  # 200, and those of the wait for the start (each worker counts its own)
        # A worker killed: gunicorn starts another and calls child_exit; its counts stay in the sum.
        pids = [int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("counter_*.db")]
        os.kill(pids[0], signal.SIGKILL)
        time.sleep(1)
        assert healthz_count() == counted
        assert server.poll() is None
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["msg"] == "request" and line["route"] == "/healthz"]
    assert len(requests) >= 200 and all(line["status"] == 200 for line in requests)
