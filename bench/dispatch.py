"""In-process dispatch against the fake Vonage over TLS: how many messages a second a thread pool
sends, and what one hanging call costs the others. For sizing DISPATCH_THREADS and VONAGE_TIMEOUT.

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/dispatch.py --messages 400

For each pool size and each latency of the fake, the given number of SMS are stored (queued, paid) and
then handed to the thread pool at once; the time from the first hand-over until the pool is idle gives
messages/s. Then the same with 5 % of the requests (the
first ones to arrive) hanging past VONAGE_TIMEOUT (1 s): those become `unknown` (sent once, waiting
for the report) and the others' times show how long they waited behind them.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from tests import factories as f  # noqa: E402
from tests.fake_vonage import FakeVonage  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.accounts import permissions  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.messaging import compose, dispatch  # noqa: E402
from webapp.messaging.subjects import of_application  # noqa: E402
from webapp.models import Message  # noqa: E402
from webapp.providers import registry  # noqa: E402


class RemoteFake:
    """The fake Vonage in a process of its own, so that it does not share this process's GIL."""

    def __init__(self, directory: Path, keep_alive: bool = False) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_fake, args=(child, directory, keep_alive), daemon=True)
        self._process.start()
        self.api_host, self.application_id, key, ca = self._conn.recv()
        self.pid = self._process.pid
        self.private_key_path, self.ca_file = Path(key), Path(ca)

    def call(self, command: str, **kwargs: Any) -> Any:
        self._conn.send((command, kwargs))
        return self._conn.recv()

    def stop(self) -> None:
        self.call("stop")
        self._process.join(timeout=10)


def _serve_fake(conn: Any, directory: Path, keep_alive: bool = False) -> None:
    fake = FakeVonage(directory, keep_alive=keep_alive).start()
    conn.send((fake.api_host, fake.application_id, str(fake.private_key_path), str(fake.ca_file)))
    while True:
        command, kwargs = conn.recv()
        if command == "stop":
            fake.stop()
            conn.send(None)
            return
        if command == "count":
            conn.send(len(fake.requests))
            continue
        conn.send(getattr(fake, command)(**kwargs))


def _database(base: str) -> tuple[sa.URL, str]:
    admin = sa.make_url(base).set(drivername="postgresql+psycopg")
    name = f"relay_bench_dispatch_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin, name


def _drop(admin: sa.URL, name: str) -> None:
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def run(
    database_url: str, fake: RemoteFake, threads: int, latency: float, messages: int, hang_every: int
) -> dict[str, Any]:
    fake.call("answer_every_request", delay=latency)
    timeout = 1.0
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "MESSAGING_PROVIDER": "vonage",
            "VONAGE_API_HOST": fake.api_host,
            "VONAGE_APPLICATION_ID": fake.application_id,
            "VONAGE_PRIVATE_KEY_PATH": str(fake.private_key_path),
            "VONAGE_SIGNATURE_SECRET": "bench-signature-secret-0123456789abcdef",
            "VONAGE_TIMEOUT": timeout,
            "DISPATCH_MODE": "thread",
            "DISPATCH_THREADS": threads,
            "DISPATCH_SWEEP_SECONDS": 0,
            "QUIET_HOURS": False,  # sent at whatever hour the benchmark runs
        }
    )
    with app.app_context():
        db.drop_all()
        db.create_all()
        org = f.messaging_org("Acme")
        user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
        f.number(org, "+4915123456700")
        job = f.job(org, team=[user])
        applications = [f.application(job, f.candidate(org, mobile=f"+49151234{n:05d}")) for n in range(50)]
        f.credits(org, messages * 2)
        db.session.commit()
        ids = []
        for n in range(messages):
            m = compose.compose(
                db.session, user, of_application(applications[n % 50]), "sms", f"Hello {n}, see you Monday?"
            )
            db.session.commit()
            ids.append(m.id)
        for n in range(messages):
            if hang_every and n % hang_every == 0:
                fake.call("hang", seconds=timeout * 3)
        before = fake.call("count")
        started = time.perf_counter()
        for message_id in ids:
            dispatch.enqueue(message_id)
        registry.close(app)  # waits for the pool to finish
        elapsed = time.perf_counter() - started
        db.session.expire_all()
        statuses = list(db.session.scalars(sa.select(Message.status).where(Message.id.in_(ids))))
        posts = fake.call("count") - before
        db.session.remove()
        db.engine.dispose()
    return {
        "threads": threads,
        "latency": latency,
        "hang_every": hang_every,
        "rate": messages / elapsed,
        "submitted": statuses.count("submitted"),
        "unknown": statuses.count("unknown"),
        "posts": posts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--threads", default="1,4,8,16")
    parser.add_argument("--latencies", default="0.05,0.2")
    args = parser.parse_args()
    logging.getLogger("relay").setLevel(logging.ERROR)  # the timeouts are the point: do not print each
    base = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin, name = _database(base)
    url = admin.set(database=name).render_as_string(hide_password=False)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        fake = RemoteFake(Path(tmp) / f"fake-{uuid.uuid4().hex[:6]}")
        os.environ["REQUESTS_CA_BUNDLE"] = str(fake.ca_file)
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
        try:
            for latency in [float(x) for x in args.latencies.split(",")]:
                for threads in [int(x) for x in args.threads.split(",")]:
                    for hang_every in (0, 20):
                        result = run(url, fake, threads, latency, args.messages, hang_every)
                        results.append(result)
                        r = result
                        print(
                            f"latency {latency * 1000:.0f} ms, {threads:2d} threads, "
                            f"{'5 % hang' if hang_every else 'no hangs'}: {r['rate']:7.1f} msg/s; "
                            f"{r['submitted']} submitted, {r['unknown']} unknown, {r['posts']} POSTs",
                            flush=True,
                        )
        finally:
            fake.stop()
            _drop(admin, name)
    print(f"\n{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    assert all(r["posts"] == args.messages for r in results), "a message was posted more than once"


if __name__ == "__main__":
    main()
