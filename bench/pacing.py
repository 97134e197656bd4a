"""Paced sending and the send path's speed, against the fake Vonage (issue #19).

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/4 \\
        .venv/bin/python bench/pacing.py --messages 1000 --workers 4 --threads 1,8 --repeat 2

Three parts, on PostgreSQL, with the fake Vonage (real HTTPS, JWTs checked) in a process of its own
(`--keep-alive`: it keeps connections open between requests, as an API behind a load balancer does;
by default one request per connection, each with its TLS handshake, as in the tests):

1. paced: the messages are queued and paid, then sent by `--workers` RQ worker processes (`flask --app
   wsgi worker --burst --queue sends --threads N`, for each N of `--threads` in turn, `--repeat` rounds
   interleaved) sharing the Redis buckets at VONAGE_RATE_PER_SECOND=30, while the fake answers
   429 past 30 requests in any second (as Vonage would). Reported: the most requests that arrived at the
   fake within any one second (sliding) and within any calendar second, the 429s, and the POSTs per
   message.
2. unpaced: the same messages again (set back to queued), VONAGE_RATE_PER_SECOND=0, the fake answering
   each request after 50 ms: messages a second from the first arrival to the last. Both parts also
   report the workers' CPU per message (their whole runs, start-up included), the fake's, the most
   POSTs the fake held at once, the connections it accepted, and the load average before and after.
3. CPU per message, side by side in this process, interleaved in rounds: Relay's send path (`dispatch
   .deliver` of a queued message: the reads, the turn, the claim, the try's count, the SDK's request,
   the result's commit) against a bare `requests` POST of the same body with a freshly signed RS256 JWT
   and no database, the fake answering at once. Process CPU time (`time.process_time`), this process
   only (PostgreSQL's own CPU is not in it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import signal
import statistics
import subprocess
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
from rq import Queue  # noqa: E402

from bench.dispatch import RemoteFake, _database, _drop  # noqa: E402
from tests import factories as f  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.accounts import permissions  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.messaging import compose, dispatch  # noqa: E402
from webapp.messaging.subjects import of_application  # noqa: E402
from webapp.models import Message  # noqa: E402

SIGNATURE_SECRET = "bench-signature-secret-0123456789abcdef"
SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"


def settings(database_url: str, fake: RemoteFake, redis_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": SECRET_KEY,
        "MESSAGING_PROVIDER": "vonage",
        "VONAGE_API_HOST": fake.api_host,
        "VONAGE_APPLICATION_ID": fake.application_id,
        "VONAGE_PRIVATE_KEY_PATH": str(fake.private_key_path),
        "VONAGE_SIGNATURE_SECRET": SIGNATURE_SECRET,
        "VONAGE_TIMEOUT": 10,
        "REDIS_URL": redis_url,
        "DISPATCH_MODE": "rq",
        "DISPATCH_SWEEP_SECONDS": 0,
        # The benchmark sends at whatever hour it runs: nothing held to the recipients' morning.
        "QUIET_HOURS": False,
        **extra,
    }


def worker_env(config: dict[str, Any], fake: RemoteFake, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "RELAY_ENV": "development",
        "PYTHONUNBUFFERED": "1",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": config["REDIS_URL"],
        "MESSAGING_PROVIDER": "vonage",
        "VONAGE_API_HOST": fake.api_host,
        "VONAGE_APPLICATION_ID": fake.application_id,
        "VONAGE_PRIVATE_KEY_PATH": str(fake.private_key_path),
        "VONAGE_SIGNATURE_SECRET": SIGNATURE_SECRET,
        "REQUESTS_CA_BUNDLE": str(fake.ca_file),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "DISPATCH_SWEEP_SECONDS": "0",
        **extra,
    }


def build(app: Any, messages: int) -> list[int]:
    with app.app_context():
        db.drop_all()
        db.create_all()
        org = f.messaging_org("Acme")
        user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
        f.number(org, "+4915123456700")
        job = f.job(org, team=[user])
        applications = [f.application(job, f.candidate(org, mobile=f"+49151234{n:05d}")) for n in range(50)]
        f.credits(org, messages * 4)
        db.session.commit()
        ids = []
        for n in range(messages):
            m = compose.compose(
                db.session, user, of_application(applications[n % 50]), "sms", f"Hello {n}, see you Monday?"
            )
            db.session.commit()
            ids.append(m.id)
        return ids


def reset(ids: list[int]) -> None:
    """Back to queued, as if never sent (a benchmark's shortcut: the debits stay as they are)."""
    db.session.execute(
        sa.update(Message)
        .where(Message.id.in_(ids))
        .values(status="queued", attempts=0, claimed_at=None, provider_id=None, submitted_at=None)
    )
    db.session.commit()


def busiest(times: list[float]) -> tuple[int, int]:
    """The most arrivals within any one second (sliding), and within any calendar second."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - 1.0:
            first += 1
        most = max(most, last - first + 1)
    calendar: dict[int, int] = {}
    for at in times:
        calendar[int(at)] = calendar.get(int(at), 0) + 1
    return most, max(calendar.values(), default=0)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BackendCpu:
    """CPU of the PostgreSQL backends serving one database (their command lines name it), sampled from
    /proc every 0.1 s while a run lasts: a backend's last sample before it exits is what it counts."""

    def __init__(self, database: str) -> None:
        import threading

        self.database = database
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> BackendCpu:
        self._sample_once()
        self.start = dict(self.seen)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in self.seen.items())

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self._sample_once()

    def _sample_once(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes()
                if command.startswith(b"postgres: ") and f" {self.database} ".encode() in command:
                    self.seen[int(entry.name)] = process_cpu(int(entry.name))
            except OSError:
                continue


def start_workers(command: list[str], environment: dict[str, str], log: Path, workers: int) -> list:
    """`workers` processes of `flask --app wsgi <command>`, their output appended to `log`."""
    with open(log, "ab") as out:
        return [
            subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", *command],
                cwd=ROOT,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            for _ in range(workers)
        ]


def run_workers(
    app: Any, fake: RemoteFake, ids: list[int], workers: int, threads: int, log: Path, **env: str
) -> dict:
    before = fake.call("count")
    connections_before = fake.call("accepted")
    fake_cpu_before = process_cpu(fake.pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    database = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    with app.app_context(), BackendCpu(database) as postgres:
        reset(ids)
        q = dispatch.queue(app)
        q.empty()
        for message_id in ids:
            dispatch.enqueue(message_id)
        # The pool sized for the threads (webapp.config.size_pool).
        environment = worker_env(app.config, fake, SEND_WORKER_THREADS=str(threads), **env)
        command = ["worker", "--burst", "--queue", "sends", "--threads", str(threads)]
        processes = start_workers(command, environment, log, workers)
        codes = [p.wait(timeout=3600) for p in processes]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        worker_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        fake_cpu = process_cpu(fake.pid) - fake_cpu_before
        db.session.expire_all()
        statuses = list(db.session.scalars(sa.select(Message.status).where(Message.id.in_(ids))))
        db.session.remove()
    found = _outcome(fake, before, connections_before, statuses, threads, codes)
    sent = max(found["requests"], 1)
    return {
        **found,
        # Whole runs of the worker processes (start-up, the app's import, the recovery, included).
        "workers CPU s": round(worker_cpu, 2),
        "workers ms CPU/message": round(worker_cpu / sent * 1000, 2),
        "fake ms CPU/message": round(fake_cpu / sent * 1000, 2),
        "PostgreSQL ms CPU/message": round(postgres.seconds / sent * 1000, 2),
        "load average before/after": (round(load_before, 2), round(os.getloadavg()[0], 2)),
    }


def _outcome(
    fake: RemoteFake,
    before: int,
    connections_before: int,
    statuses: list[str],
    threads: int,
    codes: list[int],
) -> dict:
    """What the fake saw of a run (its requests since `before`) and how the messages ended."""
    arrivals = fake.call("arrivals")[before:]
    refs: dict[str, int] = {}
    for _, ref, status in arrivals:
        if status == 202:
            refs[ref] = refs.get(ref, 0) + 1
    times = [at for at, _, _ in arrivals]
    sliding, calendar = busiest(times)
    span = max(times) - min(times) if times else 0.0
    return {
        "threads": threads,
        "exit codes": codes,
        "requests": len(arrivals),
        "connections": fake.call("accepted") - connections_before,
        "429": sum(1 for _, _, status in arrivals if status == 429),
        "submitted": statuses.count("submitted"),
        "accepted once": sum(1 for n in refs.values() if n == 1),
        "accepted twice or more": sum(1 for n in refs.values() if n > 1),
        "busiest second (sliding)": sliding,
        "busiest calendar second": calendar,
        "span s": round(span, 2),
        "messages/s": round((len(times) - 1) / span, 1) if span else 0.0,
        "most in flight at the fake": fake.call("most_at_once", since=before),
    }


def run_running_workers(
    app: Any, fake: RemoteFake, ids: list[int], workers: int, threads: int, log: Path, **env: str
) -> dict:
    """As run_workers, but the workers are started first and wait, ready (listening, their provider
    made ready: `dispatch.warm_up`), until the messages are handed to them; measured from the hand-over
    to the last message's end, then stopped (SIGTERM). Sending by running workers, their start-up out."""
    environment = worker_env(app.config, fake, SEND_WORKER_THREADS=str(threads), **env)
    command = ["worker", "--queue", "sends", "--threads", str(threads)]
    database = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    with app.app_context():
        reset(ids)
        dispatch.queue(app).empty()
    seen = log.stat().st_size if log.exists() else 0
    processes = start_workers(command, environment, log, workers)
    try:
        deadline = time.monotonic() + 120
        while log.read_bytes()[seen:].count(b"worker listening") < workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError("the workers did not start: " + log.read_text()[-2000:])
            time.sleep(0.1)
        time.sleep(1.0)  # their start finished (the log line comes as the loops begin)
        before = fake.call("count")
        connections_before = fake.call("accepted")
        fake_cpu_before = process_cpu(fake.pid)
        workers_cpu_before = sum(process_cpu(p.pid) for p in processes)
        load_before = os.getloadavg()[0]
        with app.app_context(), BackendCpu(database) as postgres:
            # All handed over at once: queued through RQ (as dispatch.enqueue does) on a list of their
            # own beforehand, which then becomes the sends' queue in one step.
            queue = dispatch.queue(app)
            staging = Queue(f"{queue.name}-staging", connection=queue.connection)
            staging.empty()
            for message_id in ids:
                staging.enqueue(
                    "webapp.messaging.dispatch.deliver_job", message_id, None, job_id=f"message-{message_id}"
                )
            queue.connection.rename(staging.key, queue.key)
            pending = sa.select(sa.func.count()).where(
                Message.id.in_(ids), Message.status.in_(("queued", "sending"))
            )
            while db.session.scalar(pending):
                db.session.rollback()
                time.sleep(0.25)
            worker_cpu = sum(process_cpu(p.pid) for p in processes) - workers_cpu_before
            fake_cpu = process_cpu(fake.pid) - fake_cpu_before
            db.session.expire_all()
            statuses = list(db.session.scalars(sa.select(Message.status).where(Message.id.in_(ids))))
            db.session.remove()
    finally:
        for p in processes:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=60) for p in processes]
    found = _outcome(fake, before, connections_before, statuses, threads, codes)
    sent = max(found["requests"], 1)
    return {
        **found,
        "workers ms CPU/message (running)": round(worker_cpu / sent * 1000, 2),
        "fake ms CPU/message": round(fake_cpu / sent * 1000, 2),
        "PostgreSQL ms CPU/message": round(postgres.seconds / sent * 1000, 2),
        "load average before/after": (round(load_before, 2), round(os.getloadavg()[0], 2)),
    }


def cpu_side_by_side(app: Any, fake: RemoteFake, ids: list[int], rounds: int, per_round: int) -> dict:
    """CPU seconds per message: Relay's deliver() against a bare requests POST with a fresh RS256 JWT."""
    import jwt
    import requests
    from cryptography.hazmat.primitives import serialization

    fake.call("answer_every_request", delay=0.0)
    key = serialization.load_pem_private_key(Path(fake.private_key_path).read_bytes(), password=None)
    url = f"https://{fake.api_host}/v1/messages"
    session = requests.Session()

    def bare(n: int) -> None:
        now = int(time.time())
        token = jwt.encode(
            {
                "application_id": fake.application_id,
                "iat": now,
                "jti": str(uuid.uuid4()),
                "exp": now + 900,
            },
            key,
            algorithm="RS256",
        )
        body = {
            "to": "4915123400001",
            "from": "4915123456700",
            "text": f"Hello {n}, see you Monday?",
            "channel": "sms",
            "message_type": "text",
            "client_ref": str(n),
        }
        response = session.post(
            url,
            data=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=(3, 10),
        )
        assert response.status_code == 202, response.text

    relay: list[float] = []
    plain: list[float] = []
    with app.app_context():
        reset(ids)
        app.config.update(DISPATCH_MODE="inline", VONAGE_RATE_PER_SECOND=0)
        dispatch.deliver(ids[0])  # warm: the SDK's import, the key, the client, the connection pool
        bare(0)
        pending = iter(ids[1:])
        for _ in range(rounds):
            batch = [next(pending) for _ in range(per_round)]
            started = time.process_time()
            for message_id in batch:
                dispatch.deliver(message_id)
            relay.append((time.process_time() - started) / per_round)
            started = time.process_time()
            for n in range(per_round):
                bare(n)
            plain.append((time.process_time() - started) / per_round)
        db.session.expire_all()
        sent = db.session.scalar(
            sa.select(sa.func.count()).select_from(Message).where(Message.status == "submitted")
        )
        db.session.remove()
    r, p = statistics.median(relay), statistics.median(plain)
    return {
        "relay ms CPU/message (median of rounds)": round(r * 1000, 2),
        "bare POST ms CPU/message": round(p * 1000, 2),
        "ratio": round(r / p, 2),
        "rounds": [round(a / b, 2) for a, b in zip(relay, plain, strict=True)],
        "submitted": sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=40)
    parser.add_argument("--parts", default="paced,unpaced,cpu")
    parser.add_argument(
        "--threads", default="1,8", help="threads per worker process, comma-separated: each is run in turn"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each --threads, interleaved")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="start the workers (--burst) after the messages are queued, their start-up in the run (the "
        "measure before 2026-12-06); by default they are running and ready when the messages come",
    )
    parser.add_argument(
        "--margin", default=None, help="SEND_PACING_MARGIN_SECONDS for the paced runs (default: the app's)"
    )
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="the fake keeps connections open (HTTP/1.1) instead of one request per connection",
    )
    args = parser.parse_args()
    logging.getLogger("relay").setLevel(logging.ERROR)
    parts = set(args.parts.split(","))
    base = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/4")
    admin, name = _database(base)
    url = admin.set(database=name).render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory() as tmp:
        fake = RemoteFake(Path(tmp) / "fake", keep_alive=args.keep_alive)
        os.environ["REQUESTS_CA_BUNDLE"] = str(fake.ca_file)
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
        log = Path(tmp) / "workers.log"
        try:
            app = create_app(settings(url, fake, redis_url))
            started = time.perf_counter()
            ids = build(app, max(args.messages, 1 + args.rounds * args.per_round))
            print(f"{len(ids)} messages queued and paid in {time.perf_counter() - started:.1f} s", flush=True)
            threads = [int(t) for t in args.threads.split(",")]
            connections = "kept open" if args.keep_alive else "one request per connection"
            idle: dict[int, float] = {}
            if args.cold and parts & {"paced", "unpaced"}:
                # What the worker processes cost with nothing to send (import, start, recovery, the
                # threads' start and end), to take out of their CPU per message.
                idle = {
                    n: run_workers(app, fake, [], args.workers, n, log, VONAGE_RATE_PER_SECOND="0")[
                        "workers CPU s"
                    ]
                    for n in threads
                }
                print(f"workers' CPU s with nothing to send, by threads: {idle}", flush=True)
            mode = "started with the messages queued" if args.cold else "running when the messages came"

            def workers_send(ids: list[int], per_worker: int, **env: str) -> dict:
                if not args.cold:
                    return run_running_workers(app, fake, ids, args.workers, per_worker, log, **env)
                result = run_workers(app, fake, ids, args.workers, per_worker, log, **env)
                cpu = result["workers CPU s"] - idle[result["threads"]]
                sent = max(result["requests"], 1)
                return {**result, "workers ms CPU/message, start-up taken out": round(cpu / sent * 1000, 2)}

            for repeat in range(args.repeat):
                for per_worker in threads:  # interleaved: each setting meets the machine's moods
                    if "paced" in parts:
                        fake.call("answer_every_request", delay=0.0)
                        fake.call("rate_limit", per_second=30)
                        result = workers_send(
                            ids[: args.messages],
                            per_worker,
                            VONAGE_RATE_PER_SECOND="30",
                            **({"SEND_PACING_MARGIN_SECONDS": args.margin} if args.margin else {}),
                        )
                        fake.call("rate_limit", per_second=0)
                        print(
                            f"[{repeat + 1}] paced at 30/s (margin {args.margin or 'default'}), "
                            f"{args.workers} workers ({mode}) × {per_worker} threads, fake: {connections}:",
                            result,
                            flush=True,
                        )
                    if "unpaced" in parts:
                        fake.call("answer_every_request", delay=args.latency)
                        result = workers_send(ids[: args.messages], per_worker, VONAGE_RATE_PER_SECOND="0")
                        print(
                            f"[{repeat + 1}] unpaced, fake answering in {args.latency * 1000:.0f} ms, "
                            f"{args.workers} workers ({mode}) × {per_worker} threads, fake: {connections}:",
                            result,
                            flush=True,
                        )
            if "cpu" in parts:
                result = cpu_side_by_side(app, fake, ids, args.rounds, args.per_round)
                print(f"CPU per message, side by side: {result}", flush=True)
        finally:
            if log.exists() and "Traceback" in log.read_text():
                print(log.read_text()[-3000:])
            fake.stop()
            _drop(admin, name)
    load = os.getloadavg()
    print(f"\n{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load}")


if __name__ == "__main__":
    main()
