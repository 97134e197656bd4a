"""Send later (issue 20): 10,000 messages due in the same minute on PostgreSQL — how long the scheduler
takes to hand all of them to dispatch, and the due query's plan.

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/scheduled.py --due 10000

A fresh database (created and dropped here, as the other bench scripts do) with one customer, its
candidates' conversations (--conversations, 10,000: one due message each, as a bulk send would make), a
history of older messages (--history, already sent) and as many messages scheduled for later days as
are due (not due: the index must skip them). The due ones are spread over one minute (send_at T … T+59
s), written by 20 users; then the scheduler runs at T+60 s (`scheduled.send_due`, the clock task's
work):

- `database`: hand_over=False — the due query, the checks at leaving (opt-out, the author's right, the
  number), the conditional UPDATE to queued and the conversations' list rows, batch after batch, each
  committed: what the task costs the database;
- `rq`: the same, each message then enqueued on RQ (DISPATCH_MODE=rq, REDIS_URL; no worker runs, so
  this is the hand-over to pacing itself); the queue is emptied afterwards;
- `2 clocks`: two schedulers at once (threads), which take disjoint batches (FOR UPDATE SKIP LOCKED).

Between runs the same messages are put back to `scheduled`. The due query's plan is printed with
EXPLAIN (ANALYZE, BUFFERS) for one batch, before the first run.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from tests import factories as f  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.accounts import permissions  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.messaging import conversations, scheduled  # noqa: E402
from webapp.messaging.subjects import of_application  # noqa: E402
from webapp.models import Message, utcnow  # noqa: E402

USERS = 20


def _database(base: str) -> tuple[sa.URL, str]:
    admin = sa.make_url(base).set(drivername="postgresql+psycopg")
    name = f"relay_bench_scheduled_{uuid.uuid4().hex[:8]}"
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


def _insert_messages(rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 5000):
        db.session.execute(sa.insert(Message), rows[start : start + 5000])
    db.session.commit()


def seed(due: int, history: int, conversations_: int, at: datetime) -> list[int]:
    """The customer, its conversations, the history, the later ones, and the due ones (their ids)."""
    org = f.messaging_org("Acme")
    users = [f.user(org, codes=[permissions.RECRUITMENT_SMS], name=f"Writer {n}") for n in range(USERS)]
    f.number(org, "+4915123456700")
    job = f.job(org, team=users)
    f.credits(org, 1_000_000)
    found = []
    for n in range(conversations_):
        application = f.application(job, f.candidate(org, "C", str(n), mobile=f"+49151{n:08d}"))
        found.append(conversations.for_subject(db.session, of_application(application), create=True))
    db.session.commit()
    now = utcnow()

    def row(n: int, status: str, send_at: datetime | None, created_at: datetime) -> dict[str, Any]:
        conversation = found[n % conversations_]
        return {
            "conversation_id": conversation.id,
            "channel": "sms",
            "direction": "outbound",
            "author_id": users[n % USERS].id,
            "body": f"Hello {n}, are you free on Tuesday?",
            "status": status,
            "from_addr": "+4915123456700",
            "to_addr": f"+49151{n % conversations_:08d}",
            "encoding": "GSM-7",
            "segments": 1,
            "credits": 1,
            "send_at": send_at,
            "created_at": created_at,
            "updated_at": created_at,
        }

    _insert_messages([row(n, "delivered", None, now - timedelta(days=30)) for n in range(history)])
    _insert_messages(
        [row(n, "scheduled", at + timedelta(days=1 + n % 7, seconds=n % 3600), now) for n in range(due)]
    )
    _insert_messages([row(n, "scheduled", at + timedelta(seconds=n % 60), now) for n in range(due)])
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    return list(
        db.session.scalars(
            sa.select(Message.id).where(
                Message.status == "scheduled", Message.send_at <= at + timedelta(seconds=60)
            )
        )
    )


def explain(now: datetime, batch: int) -> str:
    statement = scheduled.due_query(now, batch)
    compiled = statement.compile(dialect=db.engine.dialect)
    params = {
        k: v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) else v
        for k, v in compiled.params.items()
    }
    with db.engine.begin() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}", params)
        return "\n".join(r[0] for r in rows)


def reset(ids: list[int]) -> None:
    db.session.execute(
        sa.update(Message)
        .where(Message.id.in_(ids))
        .values(status="scheduled")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE message"))


def timed(app, now: datetime, hand_over: bool, clocks: int = 1) -> tuple[float, int]:
    handed: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        with app.app_context():
            done = scheduled.send_due(now, hand_over=hand_over)
            with lock:
                handed.extend(done.queued)
            db.session.remove()

    started = time.perf_counter()
    if clocks == 1:  # in this thread (what --profile sees)
        one()
        return time.perf_counter() - started, len(handed)
    threads = [threading.Thread(target=one) for _ in range(clocks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    assert len(handed) == len(set(handed)), "a message was handed over twice"
    return elapsed, len(handed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="cProfile the first run (top 25 by own time)")
    args = parser.parse_args()
    logging.getLogger("relay").setLevel(logging.WARNING)
    base = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "")
    admin, name = _database(base)
    url = admin.set(database=name).render_as_string(hide_password=False)
    config = {
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        "MESSAGING_PROVIDER": "simulator",
        "DISPATCH_MODE": "rq" if redis_url else "inline",
        "REDIS_URL": redis_url or None,
        "DISPATCH_SWEEP_SECONDS": 0,
        "SCHEDULED_SEND_BATCH": args.batch,
    }
    try:
        app = create_app(config)
        with app.app_context():
            db.create_all()
            at = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
            started = time.perf_counter()
            ids = seed(args.due, args.history, args.conversations, at)
            took = time.perf_counter() - started
            print(
                f"seeded {len(ids)} due, {args.due} later, {args.history} sent, in {took:.1f} s", flush=True
            )
            now = at + timedelta(seconds=60)
            plan = explain(now, args.batch)
            print(f"\nThe due query (LIMIT {args.batch}), EXPLAIN (ANALYZE, BUFFERS):\n{plan}\n")
            runs = [("database", False, 1), ("2 clocks", False, 2)]
            if redis_url:
                runs.append(("rq", True, 1))
            for label, hand_over, clocks in runs:
                reset(ids)
                if args.profile and label == "database":
                    import cProfile
                    import pstats

                    profiler = cProfile.Profile()
                    profiler.enable()
                    elapsed, handed = timed(app, now, hand_over, clocks)
                    profiler.disable()
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
                else:
                    elapsed, handed = timed(app, now, hand_over, clocks)
                statuses = dict(
                    db.session.execute(
                        sa.select(Message.status, sa.func.count())
                        .where(Message.id.in_(ids))
                        .group_by(Message.status)
                    ).all()
                )
                rate = handed / elapsed
                print(
                    f"{label:9s}: {handed} handed over in {elapsed:.2f} s ({rate:,.0f} msg/s); {statuses}",
                    flush=True,
                )
                db.session.remove()
                if hand_over:
                    from webapp.messaging import dispatch

                    queue = dispatch.queue(app)
                    print(f"           RQ queue length {queue.count}; emptied", flush=True)
                    queue.empty()
            db.session.remove()
            db.engine.dispose()
    finally:
        _drop(admin, name)
    print(f"\n{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
