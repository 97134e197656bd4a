"""Serving as in production (`make serve`: `python -m webapp.serving`), with real processes against
PostgreSQL and Redis: the refusals before anything starts, /readyz, the supervisor, SIGTERM with a request
and a send in flight, and several web servers and clocks sharing one database and one Redis.

Serving needs PostgreSQL, so these tests do not take the `backend` fixture: each runs once, on
PostgreSQL (TEST_POSTGRES_URL) and Redis (REDIS_TEST_URL), and fails in CI when either is missing.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests import factories as f
from tests import serve_support as serving
from tests.conftest import (
    POSTGRES_URL,
    create_postgres_database,
    drop_postgres_database,
    need,
    test_config,
)
from tests.fake_vonage import running_fake_vonage
from webapp import config as settings
from webapp import create_app
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import compose, dispatch
from webapp.messaging.subjects import of_application
from webapp.models import Message

REDIS_URL = os.environ.get("REDIS_TEST_URL", "")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """This run's own Redis database (REDIS_TEST_URL), empty before and after."""
    if not REDIS_URL:
        need("Redis (REDIS_TEST_URL)")
    from redis import Redis

    client = Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (no schema: serving applies the migrations); dropped after."""
    if not POSTGRES_URL:
        need("PostgreSQL (TEST_POSTGRES_URL)")
    url = create_postgres_database("relay_serve")
    yield url
    drop_postgres_database(url)


@pytest.fixture
def server_postgres() -> str:
    """The test server's own maintenance database: it answers, which is all preflight asks."""
    if not POSTGRES_URL:
        need("PostgreSQL (TEST_POSTGRES_URL)")
    return POSTGRES_URL


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) and never answers: a server that
    hangs, or a firewall that lets the handshake through. Its number."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


# --- Refusals: one line on stderr, exit status 1, nothing started ---------------------------------------


def refusal(env: dict[str, str]) -> tuple[str, float]:
    """The one line `python -m webapp.serving` gave on stderr, and how long it took to give it."""
    started = time.monotonic()
    done = serving.run_serving(env)
    took = time.monotonic() - started
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("relay: cannot serve: "), lines[0]
    assert done.stdout == ""  # nothing was migrated or started
    return lines[0], took


def test_without_database_url_it_refuses(redis_url) -> None:
    env = serving.environment("", redis_url, serving.closed_port())
    env.pop("DATABASE_URL")
    line, _ = refusal(env)
    assert "DATABASE_URL is not set" in line


def test_sqlite_is_refused(redis_url, tmp_path) -> None:
    line, _ = refusal(serving.environment(f"sqlite:///{tmp_path}/relay.db", redis_url, serving.closed_port()))
    assert "DATABASE_URL must name a PostgreSQL database" in line


def test_a_missing_production_setting_is_named(server_postgres, redis_url) -> None:
    env = serving.environment(server_postgres, redis_url, serving.closed_port())
    env.pop("SECRET_KEY")
    line, _ = refusal(env)
    assert "SECRET_KEY" in line and "not set" in line


def test_postgresql_refusing_connections(redis_url) -> None:
    port = serving.closed_port()
    url = f"postgresql://relay:pg-password-never-shown@127.0.0.1:{port}/relay"
    line, took = refusal(serving.environment(url, redis_url, serving.closed_port()))
    assert f"PostgreSQL at postgresql+psycopg://relay:***@127.0.0.1:{port}/relay cannot be reached" in line
    assert "pg-password-never-shown" not in line
    assert took < 15


def test_postgresql_that_never_answers_is_given_up_within_seconds(redis_url) -> None:
    with silent_listener() as port:
        line, took = refusal(serving.environment(f"postgresql://relay@127.0.0.1:{port}/relay", redis_url, 1))
    assert f"PostgreSQL at postgresql+psycopg://relay@127.0.0.1:{port}/relay cannot be reached" in line
    assert took < 15  # preflight's 3 s connect timeout, not the operating system's minutes


def test_redis_refusing_connections(server_postgres) -> None:
    port = serving.closed_port()
    line, _ = refusal(serving.environment(server_postgres, f"redis://127.0.0.1:{port}/0", 1))
    assert f"Redis at redis://127.0.0.1:{port}/0 cannot be reached" in line


def test_redis_that_never_answers_is_given_up_within_seconds(server_postgres) -> None:
    with silent_listener() as port:
        line, took = refusal(serving.environment(server_postgres, f"redis://127.0.0.1:{port}/0", 1))
    assert f"Redis at redis://127.0.0.1:{port}/0 cannot be reached" in line
    assert took < 15


def test_a_procfile_that_cannot_be_read_is_refused_before_anything_connects(tmp_path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: gunicorn wsgi:app\nthis line has no name\n")
    # Nothing answers at these addresses: the Procfile is refused first, without waiting on them.
    env = serving.environment(
        f"postgresql://relay@127.0.0.1:{serving.closed_port()}/relay",
        f"redis://127.0.0.1:{serving.closed_port()}/0",
        1,
        SERVE_PROCFILE=str(procfile),
    )
    line, _ = refusal(env)
    assert f"{procfile}: line 2, 'this line has no name', is not 'name: command'" in line
    procfile.write_text("# nothing\n")
    assert "no process to run" in refusal(env)[0]
    env["SERVE_WORKERS"] = "0"
    assert "SERVE_WORKERS must be a whole number of 1 or more, not '0'" in refusal(env)[0]


def test_the_connect_timeout_setting_reaches_the_driver() -> None:
    options = settings.from_environment(
        "/tmp", {"DATABASE_URL": "postgresql://relay@db/relay", "DATABASE_CONNECT_TIMEOUT": "2"}
    )["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"] == {"connect_timeout": 2}


# --- /readyz and /healthz ----------------------------------------------------------------------------------


def ready_app(database_url: str, redis: str):  # type: ignore[no-untyped-def]
    """An app as a web process builds it from the environment, with a one-second database timeout."""
    env = {"DATABASE_URL": database_url, "DATABASE_CONNECT_TIMEOUT": "1"}
    options = settings.from_environment("/tmp", env)["SQLALCHEMY_ENGINE_OPTIONS"]
    config = test_config(
        settings.from_environment("/tmp", env)["SQLALCHEMY_DATABASE_URI"],
        SQLALCHEMY_ENGINE_OPTIONS=options,
        REDIS_URL=redis,
    )
    return create_app(config)


def probe(database_url: str, redis: str) -> tuple[int, dict[str, str], float, int]:
    """/readyz's status, its body and how long it took; /healthz's status."""
    app = ready_app(database_url, redis)
    client = app.test_client()
    started = time.monotonic()
    ready = client.get("/readyz")
    took = time.monotonic() - started
    health = client.get("/healthz").status_code
    with app.app_context():
        db.engine.dispose()
    return ready.status_code, ready.get_json(), took, health


def test_ready_when_the_database_and_redis_answer(postgres_url, redis_url) -> None:
    status, body, _, health = probe(postgres_url, redis_url)
    assert (status, body, health) == (200, {"database": "ok", "redis": "ok"}, 200)


def test_not_ready_when_redis_is_unreachable(postgres_url) -> None:
    status, body, _, health = probe(postgres_url, f"redis://127.0.0.1:{serving.closed_port()}/0")
    assert (status, body["database"], health) == (503, "ok", 200)
    assert body["redis"] == "unreachable (ConnectionError)"
    with silent_listener() as port:
        status, body, took, health = probe(postgres_url, f"redis://127.0.0.1:{port}/0")
    assert (status, body["database"], health) == (503, "ok", 200)
    assert body["redis"].startswith("unreachable")
    assert took < 10  # the probe's own timeout (2 s), so that a load balancer's check does not hang


def test_not_ready_when_the_database_is_unreachable(redis_url) -> None:
    status, body, _, health = probe(f"postgresql://relay@127.0.0.1:{serving.closed_port()}/relay", redis_url)
    assert (status, body, health) == (503, {"database": "unreachable (OperationalError)", "redis": "ok"}, 200)
    with silent_listener() as port:
        status, body, took, health = probe(f"postgresql://relay@127.0.0.1:{port}/relay", redis_url)
    assert (status, body["database"], body["redis"], health) == (503, body["database"], "ok", 200)
    assert body["database"].startswith("unreachable")
    assert took < 10  # DATABASE_CONNECT_TIMEOUT (1 s here)


def migrations_head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(__file__).resolve().parent.parent / "migrations")).get_current_head()


# --- The supervisor ------------------------------------------------------------------------------------


def test_a_process_that_keeps_ending_stops_the_others_and_fails(fresh_database, redis_url, tmp_path) -> None:
    """A process that ends is started again (after 1 s, then 2 s); the third end within a minute is
    a broken process: the others are stopped and the supervisor fails."""
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "sleeper: sleep 300\n"
        # Ignores SIGTERM: killed once SERVE_STOP_SECONDS have gone by.
        "stubborn: sh -c 'trap \"\" TERM; sleep 300'\n"
        "quitter: sh -c 'exit 3'\n"
    )
    env = serving.environment(
        fresh_database, redis_url, serving.closed_port(), SERVE_PROCFILE=str(procfile), SERVE_STOP_SECONDS="1"
    )
    running = serving.Served(env, tmp_path / "serve.log").launch()
    try:
        deadline = time.monotonic() + 60
        while len(running.started()) < 3 and time.monotonic() < deadline and running.process.poll() is None:
            time.sleep(0.1)
        assert set(running.started()) == {"sleeper", "stubborn", "quitter"}, running.tail()
        assert running.process.wait(60) == 1
        out = running.output()
        assert out.count("quitter started (pid") == 3
        assert "quitter ended by itself (exit status 3); starting it again in 1 s" in out
        assert "quitter ended by itself (exit status 3); starting it again in 2 s" in out
        assert "quitter ended by itself (exit status 3), 3 times within 60 s; stopping the others" in out
        assert out.count("sleeper started (pid") == 1
        assert "stubborn did not stop within 1 s: killed" in out
        assert "sleeper stopped (exit status -15)" in out
        assert running.alive() == []
    finally:
        running.kill_all()


# --- The served set: ready, then SIGTERM with work in flight ---------------------------------------------


def waiting_on_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


def test_served_as_in_production_then_sigterm_lets_the_request_in_flight_finish(
    fresh_database, redis_url, tmp_path
) -> None:
    stop_seconds = 20
    env = serving.environment(
        fresh_database,
        redis_url,
        serving.free_port(),
        SERVE_WORKERS="2",
        SERVE_STOP_SECONDS=str(stop_seconds),
        WEB_GRACEFUL_TIMEOUT="15",
    )
    engine = sa.create_engine(fresh_database, poolclass=sa.NullPool)
    with serving.served(env, tmp_path / "serve.log") as served:
        assert served.get("/readyz").json() == {"database": "ok", "redis": "ok"}
        assert served.get("/healthz").status_code == 200
        assert set(served.started()) == {"web", "worker.1", "worker.2", "webhooks", "clock"}
        # /readyz is the web process's; the workers and the clock start on their own time: two sending
        # workers (SEND_WORKER_THREADS, 4, loops each), the webhooks' worker (one).
        serving.wait_for(
            lambda: (
                served.output().count("worker listening on relay with 4 job loops") == 2
                and served.output().count("worker listening on relay-webhooks with 1 job loops") == 1
            ),
            60,
            "the RQ workers",
            served.log,
        )
        serving.wait_for(lambda: "clock    | Clock: " in served.output(), 60, "the clock", served.log)
        # The supervisor, gunicorn's master and its worker, two sending workers, the webhooks', the clock.
        assert len(served.members()) == 7, served.tail()
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == migrations_head()
            assert conn.scalar(sa.text('SELECT count(*) FROM "user"')) == 0  # no demo data unless asked

        # A sign-in that waits on the database: the login attempts' table is locked by the test.
        answer: dict[str, object] = {}
        browser = serving.Browser(served.base)
        token = browser.csrf()
        with engine.connect() as holder:
            holder.execute(sa.text("LOCK TABLE login_attempt IN ACCESS EXCLUSIVE MODE"))

            def sign_in() -> None:
                data = {"email": "nobody@example.test", "password": "wrong", "csrf_token": token}
                answer["response"] = browser.request("POST", "/login", data=data)

            thread = threading.Thread(target=sign_in)
            thread.start()
            serving.wait_for(
                lambda: waiting_on_a_lock(engine), 30, "the sign-in to wait on the lock", served.log
            )
            served.process.send_signal(15)  # SIGTERM, as systemd or a platform stops the set
            stopped_at = time.monotonic()
            # gunicorn has the signal; the request it holds goes on, and the set waits for it.
            serving.wait_for(
                lambda: "Handling signal: term" in served.output(), 10, "gunicorn's SIGTERM", served.log
            )
            time.sleep(1)
            assert thread.is_alive() and served.process.poll() is None
            holder.rollback()  # the lock goes: the request finishes
        thread.join(30)
        response = answer["response"]
        assert isinstance(response, requests.Response)
        assert response.status_code == 200 and "Wrong email or password." in response.text
        assert served.process.wait(stop_seconds + 10) == 0, served.tail()
        assert time.monotonic() - stopped_at < stop_seconds
        out = served.output()
        assert "killed" not in out
        for name in ("web", "worker.1", "worker.2", "clock"):
            assert f"{name} stopped (exit status 0)" in out, served.tail()
        assert served.alive() == []
    engine.dispose()


def test_sigterm_while_a_send_is_in_flight_finishes_it_once(fresh_database, redis_url, tmp_path) -> None:
    with running_fake_vonage(tmp_path / "vonage") as fake:
        vonage = {
            **fake.app_settings(),
        }
        env = serving.environment(
            fresh_database,
            redis_url,
            serving.free_port(),
            **vonage,
            ALLOW_SIMULATOR_IN_PRODUCTION="",
            REQUESTS_CA_BUNDLE=str(fake.ca_file),
            VONAGE_TIMEOUT="30",
            VONAGE_CONNECT_TIMEOUT="2",
            SERVE_STOP_SECONDS="30",
        )
        with serving.served(env, tmp_path / "serve.log") as served:
            # The message is composed and queued as a web process does, on the same Redis.
            app = create_app(test_config(fresh_database, DISPATCH_MODE="rq", REDIS_URL=redis_url, **vonage))
            with app.app_context():
                org = f.messaging_org("Acme", sender_name="Acme Careers")
                user = f.user(org, codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
                f.number(org, "+4915123456700")
                job = f.job(org, team=[user], title="Backend Engineer")
                lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
                f.credits(org, 10)
                db.session.commit()
                fake.hang(4)  # Vonage holds the POST for 4 s, then accepts it
                message = compose.compose(db.session, user, of_application(lena), "sms", "Hi %FIRSTNAME%")
                db.session.commit()
                message_id = message.id
                dispatch.enqueue(message_id)

                serving.wait_for(lambda: len(fake.requests) == 1, 30, "the worker's POST", served.log)
                served.process.send_signal(15)  # SIGTERM while Vonage has not answered
                assert served.process.wait(40) == 0, served.tail()
                out = served.output()
                assert "killed" not in out and "worker stopped (exit status 0)" in out, served.tail()
                assert served.alive() == []

                db.session.expire_all()
                sent = db.session.get(Message, message_id)
                assert sent is not None
                assert (sent.status, sent.attempts) == ("submitted", 1)
                assert sent.provider_id == fake.requests[0].response_body["message_uuid"]
                assert len(fake.requests) == 1 and fake.requests[0].body["client_ref"] == str(message_id)
                db.session.remove()
                db.engine.dispose()


# --- More than one machine -------------------------------------------------------------------------------

RUN_LOG = """
CREATE TABLE test_run_log AS SELECT task, started_at FROM scheduled_run WITH NO DATA;
CREATE FUNCTION test_log_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.started_at IS DISTINCT FROM OLD.started_at THEN
        INSERT INTO test_run_log (task, started_at) VALUES (NEW.task, NEW.started_at);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_log_run AFTER INSERT OR UPDATE ON scheduled_run
    FOR EACH ROW EXECUTE FUNCTION test_log_run();
"""


def test_two_web_servers_and_two_clocks_share_one_database_and_one_redis(
    fresh_database, redis_url, tmp_path
) -> None:
    app = create_app(test_config(fresh_database))
    with app.app_context():
        db.create_all()
        org = f.messaging_org("Acme")
        riley = f.user(org, email="riley@acme.example", codes=[permissions.RECRUITMENT_SMS])
        f.job(org, team=[riley], title="Backend Engineer")
        f.user(org, email="sam@acme.example", codes=[permissions.RECRUITMENT_SMS])
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    engine = sa.create_engine(fresh_database, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(RUN_LOG))

    sweep = 1.0
    common = {
        "LOGIN_MAX_FAILURES_PER_ACCOUNT": "4",
        "CLOCK_IN_PROCESS": "0",
        "DISPATCH_SWEEP_SECONDS": f"{sweep:g}",
        "COMPLIANCE_EXPIRY_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    ports = [serving.free_port(), serving.free_port()]
    started: list = []
    try:
        for number, port in enumerate(ports, 1):
            env = serving.environment(fresh_database, redis_url, port, **common)
            log = tmp_path / f"web{number}.log"
            started.append(
                (serving.spawn(["-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], env, log), log)
            )
        clock_env = serving.environment(fresh_database, redis_url, 1, **common)
        clocks = [
            serving.spawn(["-m", "flask", "--app", "wsgi", "clock"], clock_env, tmp_path / f"clock{n}.log")
            for n in (1, 2)
        ]
        started.extend((clock, tmp_path / f"clock{n}.log") for n, clock in enumerate(clocks, 1))
        a, b = (f"http://127.0.0.1:{port}" for port in ports)
        for (process, log), base in zip(started[:2], (a, b), strict=True):
            serving.wait_http(base + "/readyz", process, log)

        # Signed in on one, signed in on the other with the same cookie; signed out on the other, out on both.
        riley_browser = serving.Browser(a)
        assert riley_browser.sign_in("riley@acme.example", "password").status_code == 302
        landing = riley_browser.request("GET", "/", base=b)
        assert landing.status_code == 302 and "/login" not in landing.headers["Location"]
        assert riley_browser.request("GET", landing.headers["Location"], base=b).status_code == 200
        token = riley_browser.csrf(landing.headers["Location"], base=b)
        assert riley_browser.request("POST", "/logout", base=b, data={"csrf_token": token}).status_code == 302
        assert "/login" in riley_browser.request("GET", "/", base=a).headers["Location"]

        # The login limit (4 failures per account) spent across both: the next try is refused on either.
        sam = serving.Browser(a)
        for base in (a, b, a, b):
            wrong = sam.sign_in("sam@acme.example", "wrong", base=base)
            assert wrong.status_code == 200 and "Wrong email or password." in wrong.text
        assert sam.sign_in("sam@acme.example", "password", base=a).status_code == 429
        assert sam.sign_in("sam@acme.example", "password", base=b).status_code == 429

        # The clocks: both running all along, each task started once per interval between them.
        clock_logs = [tmp_path / f"clock{n}.log" for n in (1, 2)]
        serving.wait_for(lambda: all("Clock: " in log.read_text() for log in clock_logs), 120, "both clocks")

        def runs() -> list[tuple[str, object]]:
            with engine.connect() as conn:
                return list(
                    conn.execute(
                        sa.text("SELECT task, started_at FROM test_run_log ORDER BY task, started_at")
                    )
                )

        # From the moment both clocks run, four more intervals.
        wanted = len(runs()) + 3 * 4
        serving.wait_for(lambda: len(runs()) >= wanted, 60, "four more runs of each task")
        for process, log in started:
            assert process.poll() is None, serving._tail(log)
        rows = runs()
        for task in ("dispatch-recovery", "unknown-give-up", "bulk-resume"):
            starts = [started_at for name, started_at in rows if name == task]
            assert len(starts) >= 4, rows
            gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(starts)]
            assert min(gaps) >= sweep, (task, gaps)
        # The other tasks' intervals are longer than the test (webhook-sweep and scheduled-send, 15 s, and
        # notify-email and the number-health ones may have run once).
        others = {"webhook-sweep", "scheduled-send", "notify-email", "number-health", "number-health-recount"}
        assert {name for name, _ in rows} - others == {"dispatch-recovery", "unknown-give-up", "bulk-resume"}
    finally:
        for process, _ in started:
            serving.end(process)
        engine.dispose()


def test_two_machines_starting_together_migrate_once(fresh_database, redis_url, tmp_path) -> None:
    """Every machine's `make serve` runs the migrations: the advisory lock makes one wait for the other,
    which then finds nothing to do, instead of both creating the same tables. What each runs once it has
    migrated does not matter here: one process that waits stands for the Procfile's (the others' imports
    would only hold up the machine's two cores)."""
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: sleep 300\n")
    env = serving.environment(fresh_database, redis_url, 1, SERVE_PROCFILE=str(procfile))
    sets = [serving.Served(env, tmp_path / f"m{n}.log").launch() for n in (1, 2)]
    try:
        for served in sets:
            serving.wait_for(lambda s=served: "web" in s.started(), 120, "the migrations", served.log)
        migrated = [served.output().count("Running upgrade") for served in sets]
        every = len(list((serving.ROOT / "migrations" / "versions").glob("*.py")))
        assert sorted(migrated) == [0, every], migrated
        for served in sets:
            assert served.stop() == 0, served.tail()
    finally:
        for served in sets:
            served.kill_all()
