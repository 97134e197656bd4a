"""Where a stored-first webhook's request spends its CPU, beside the durable-write floor (issue #19 §3).

In one process, the app as bench/webhooks.py serves it (`bench.floor_wsgi:app`, WEBHOOK_INGEST=queued,
Redis, JSON log lines to a file) is called as gunicorn's sync worker calls it: the WSGI callable, one
request at a time, with signed Vonage webhooks (inbound and status, as bench/webhooks_load.py makes them)
and with floor writes (`POST /bench/floor`), alternately in rounds. For each, the CPU per request of this
process and of its PostgreSQL backend (from /proc), and with --profile the functions that cost most
(cProfile, cumulative; the profiler inflates Python several times: read them as shares).

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    .venv/bin/python bench/webhook_profile.py --requests 2000 --rounds 5
    .venv/bin/python bench/webhook_profile.py --requests 2000 --rounds 1 --profile webhooks

No webhooks worker runs: the stored rows stay (their table is dropped with the database). BENCH_POSTGRES_URL
names the server (a fresh database is made and dropped), REDIS_URL the Redis (default DB 14).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import secrets
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

from bench.webhooks import FLOOR_TABLE, create_database, drop_database, server_environment  # noqa: E402
from bench.webhooks_load import _now  # noqa: E402
from webapp.providers.vonage.signature import sign  # noqa: E402

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
NUMBERS = ["447911123456", "4915112345678", "14155550123"]  # ours (valid numbers, as the demo's are)
# The candidates who write: a few hundred mobiles, each writing many times (as in bench/webhooks.py).
SENDERS = [f"4479111{n:05d}" for n in range(0, 30000, 100)]


def _inbound(rng: random.Random) -> tuple[str, bytes]:
    payload = {
        "channel": "sms",
        "message_type": "text",
        "message_uuid": str(uuid.uuid4()),
        "to": rng.choice(NUMBERS),
        "from": rng.choice(SENDERS),
        "timestamp": _now(),
        "text": "Yes, that works.",
        "sms": {"num_messages": "1"},
        "usage": {"currency": "EUR", "price": "0.0057"},
    }
    return "/webhooks/vonage/inbound", json.dumps(payload).encode()


def _status(rng: random.Random) -> tuple[str, bytes]:
    payload = {
        "message_uuid": str(uuid.uuid4()),
        "to": rng.choice(SENDERS),
        "from": rng.choice(NUMBERS),
        "timestamp": _now(),
        "status": rng.choice(["submitted", "delivered"]),
        "channel": "sms",
        "usage": {"currency": "EUR", "price": "0.0333"},
        "client_ref": str(rng.randrange(1, 10**6)),
    }
    return "/webhooks/vonage/status", json.dumps(payload).encode()


# What --parts times (CPU of this process, without the profiler's inflation): (label, module, attribute).
PARTS = [
    ("whole request (WSGI call)", "flask.app", "Flask.wsgi_app"),
    ("request context: session opened, URL matched", "flask.ctx", "RequestContext.push"),
    ("before-request hooks (request id, NUL check, CSRF)", "flask.app", "Flask.preprocess_request"),
    ("after-request hooks (log line, metrics, headers, session)", "flask.app", "Flask.process_response"),
    ("signature (JWT + body hash)", "webapp.providers.vonage.signature", "verify"),
    ("body parsed (inbound)", "webapp.providers.vonage.webhooks", "inbound"),
    ("body parsed (status)", "webapp.providers.vonage.webhooks", "status"),
    ("INSERT of the stored body", "webapp.messaging.ingest", "store"),
    ("COMMIT", "sqlalchemy.orm.session", "Session.commit"),
    ("worker told (Redis SET NX, maybe an RQ job)", "webapp.messaging.ingest", "enqueue"),
]


def _timed(parts: dict[str, list[float]]) -> None:
    """Wraps each of PARTS in a timer of this process's CPU (nested parts count in each)."""
    import functools
    import importlib

    for label, module_name, attribute in PARTS:
        module = importlib.import_module(module_name)
        owner: Any = module
        *path, name = attribute.split(".")
        for step in path:
            owner = getattr(owner, step)
        original = getattr(owner, name, None)
        if original is None:
            continue
        totals = parts.setdefault(label, [0.0, 0])

        def timer(*args: Any, _original: Any = original, _totals: list[float] = totals, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                _totals[0] += time.process_time() - started
                _totals[1] += 1

        setattr(owner, name, functools.wraps(original)(timer))


def _environ(path: str, body: bytes, secret: str) -> dict[str, Any]:
    """What gunicorn's sync worker hands the app for this request."""
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "RAW_URI": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": "Bearer " + sign(body, secret),
        "HTTP_CONTENT_TYPE": "application/json",
        "HTTP_ACCEPT_ENCODING": "identity",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backends(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                )
            ).scalars()
        )


def _run(
    app: Any, requests: list[dict[str, Any]], profiler: cProfile.Profile | None
) -> tuple[float, list[str]]:
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        return lambda data: None

    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    for environ in requests:
        result = app(environ, start_response)
        for _ in result:
            pass
        if hasattr(result, "close"):
            result.close()
    if profiler is not None:
        profiler.disable()
    return time.process_time() - started, statuses


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--inbound-share", type=float, default=0.35)
    parser.add_argument("--profile", choices=["webhooks", "floor"], help="cProfile this kind, print the top")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--parts", action="store_true", help="time PARTS (CPU ms per request of each kind)")
    parser.add_argument("--dump", help="write the profile's stats to this file (pstats)")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()

    server = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    name, admin, database_url = create_database(server)
    secret = secrets.token_urlsafe(48)
    log_file = tempfile.NamedTemporaryFile(prefix="relay_profile_", suffix=".log", delete=False)  # noqa: SIM115
    saved_stderr = os.dup(2)
    try:
        os.environ.update(server_environment(database_url, secret, args.redis))
        from webapp.extensions import db

        # The app's log lines go where gunicorn's would: a file on fd 2.
        os.dup2(log_file.fileno(), 2)
        from bench.floor_wsgi import app

        parts: dict[str, dict[str, list[float]]] = {"webhooks": {}, "floor": {}}
        if args.parts:
            current: dict[str, list[float]] = {}
            _timed(current)

        with app.app_context():
            db.create_all()
            db.session.execute(sa.text(FLOOR_TABLE))
            db.session.commit()
        engine = sa.create_engine(
            sa.make_url(database_url).set(drivername="postgresql+psycopg"), poolclass=sa.NullPool
        )
        rng = random.Random(7)

        def batch(kind: str) -> list[dict[str, Any]]:
            out = []
            for _ in range(args.requests):
                if kind == "floor":
                    _, body = _inbound(rng)
                    path = "/bench/floor"
                else:
                    path, body = _inbound(rng) if rng.random() < args.inbound_share else _status(rng)
                out.append(_environ(path, body, secret))
            return out

        # Warm-up: the first requests compile statements, open the pool and Redis.
        for kind in ("webhooks", "floor"):
            _run(app, batch(kind)[:200], None)
        pids = _backends(engine)
        totals = {"webhooks": [0.0, 0.0, 0], "floor": [0.0, 0.0, 0]}
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        codes: dict[str, dict[str, int]] = {"webhooks": {}, "floor": {}}
        for _ in range(args.rounds):
            for kind in ("webhooks", "floor"):
                requests = batch(kind)
                if args.parts:
                    for timer_totals in current.values():
                        timer_totals[:] = [0.0, 0]
                pg_before = sum(_cpu(pid) for pid in pids)
                app_cpu, statuses = _run(app, requests, profiler if args.profile == kind else None)
                pg_cpu = sum(_cpu(pid) for pid in pids) - pg_before
                totals[kind][0] += app_cpu
                totals[kind][1] += pg_cpu
                totals[kind][2] += len(requests)
                for status in statuses:
                    codes[kind][status] = codes[kind].get(status, 0) + 1
                if args.parts:
                    for label, (seconds, calls) in current.items():
                        sums = parts[kind].setdefault(label, [0.0, 0])
                        sums[0] += seconds
                        sums[1] += calls
        os.dup2(saved_stderr, 2)
        out: dict[str, Any] = {"load": Path("/proc/loadavg").read_text().split()[:3], "codes": codes}
        for kind, (app_cpu, pg_cpu, n) in totals.items():
            out[kind] = {
                "requests": n,
                "app_cpu_ms": round(1000 * app_cpu / n, 3),
                "postgres_cpu_ms": round(1000 * pg_cpu / n, 3),
                "total_ms": round(1000 * (app_cpu + pg_cpu) / n, 3),
            }
        if args.parts:
            out["parts_cpu_ms_per_request"] = {
                kind: {
                    label: [round(1000 * seconds / totals[kind][2], 3), calls]
                    for label, (seconds, calls) in found.items()
                    if calls
                }
                for kind, found in parts.items()
            }
        out["ratio_floor_to_webhooks"] = round(out["floor"]["total_ms"] / out["webhooks"]["total_ms"], 3)
        print(json.dumps(out, indent=2))
        if profiler is not None:
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(args.top)
            print(stream.getvalue())
            if args.dump:
                profiler.dump_stats(args.dump)
        with app.app_context():
            db.engine.dispose()
        engine.dispose()
    finally:
        os.dup2(saved_stderr, 2)
        drop_database(admin, name)
        log_file.close()
        lines = Path(log_file.name).read_text(errors="replace").splitlines()
        print(f"log lines: {len(lines)}; last: {lines[-1][:300] if lines else ''}", file=sys.stderr)
        os.unlink(log_file.name)


if __name__ == "__main__":
    main()
