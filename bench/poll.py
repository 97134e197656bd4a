"""The Inbox's poll with changes (issue #19): server time of `GET /inbox/changes` when conversations
changed since the marker the page sent, on PostgreSQL with the data bench/load.py serves.

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    .venv/bin/python bench/poll.py --changed 5,30,61 --samples 200

A fresh database relay_bench_<random> on BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/
postgres), filled as bench/webhooks.py fills it (the demo, 30,000 messages in 61 conversations), dropped
at the end. Signed in as the demo recruiter through the test client (no network: the time is the app's),
it loads the Inbox's first page and takes what its poll sends, as the browser does (inbox/_poll.html):
the marker, `until` (where the loaded rows end, #inbox-until) and `c` (the open conversation). Then for
each sample and each --changed count k, alternately: k conversations change in one commit (a reply to
a third of them: the row moves to the top with a new preview; the others are touched, as a status
report touches them), and the poll is timed with the marker from just before. --profile prints
cProfile's top functions for the largest k; --statements prints the statements of one poll.
"""

from __future__ import annotations

import argparse
import cProfile
import html
import io
import json
import os
import pstats
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench import webhooks as filler  # noqa: E402
from webapp import create_app, demo  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.inbox import changes as activity  # noqa: E402
from webapp.models import Conversation  # noqa: E402

HX = {"HX-Request": "true"}
POLL_RE = re.compile(r'id="inbox-poll"[^>]*?hx-get="([^"]+)"')
UNTIL_RE = re.compile(r'id="inbox-until" name="until" value="([^"]+)"')


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def change(app: Any, ids: list[int], rng: random.Random) -> None:
    """One commit in which these conversations change: a third get a reply (newest now: a change of the
    list's row), the others a status report (their thread's only), as the 30/s storm's mix."""
    with app.app_context():
        now = datetime.now(UTC)
        for conversation_id in ids:
            replied = rng.random() < 1 / 3
            if replied:
                db.session.execute(
                    sa.update(Conversation)
                    .where(Conversation.id == conversation_id)
                    .values(last_message_at=now, last_direction="inbound", last_preview=f"reply {now}")
                )
            activity.touch(db.session, conversation_id, listed=replied)
        db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changed", default="5,30,61", help="conversations changed before each poll")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--no-until", action="store_true", help="poll without until (the old bench/load.py)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--statements", action="store_true")
    args = parser.parse_args()
    counts = [int(k) for k in args.changed.split(",")]
    rng = random.Random(args.seed)
    server = os.environ.get("BENCH_POSTGRES_URL", filler.DEFAULT_POSTGRES)
    name, admin, database_url = filler.create_database(server)
    try:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database_url,
                "SECRET_KEY": "bench-" + "x" * 40,
                "MESSAGING_PROVIDER": "simulator",
                "DISPATCH_MODE": "inline",
                "DISPATCH_SWEEP_SECONDS": 0,
                # The changes are made in this process, applied at once (not stored for a worker).
                "WEBHOOK_INGEST": "direct",
            }
        )
        info = filler.populate(app, args.messages, rng)
        with app.app_context():
            ids = list(
                db.session.scalars(
                    sa.select(Conversation.id).where(Conversation.last_message_at.is_not(None))
                )
            )
        client = app.test_client()
        login = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', login).group(1)
        client.post(
            "/login", data={"email": "recruiter@acme.example", "password": demo.PASSWORD, "csrf_token": token}
        )
        page = client.get("/inbox").get_data(as_text=True)
        found_until = UNTIL_RE.search(page)
        until = "" if args.no_until or found_until is None else found_until.group(1)
        opened = ids[0]
        client.get(f"/inbox/conversations/{opened}", headers=HX)
        # The marker of the last answer, as the page keeps it (each answer brings the next poll).
        marker = [html.unescape(POLL_RE.search(client.get("/inbox").get_data(as_text=True)).group(1))]

        def poll_path() -> str:
            return marker[0] + (f"&until={until}" if until else "") + f"&c={opened}"

        # The app's own CPU (this process: no network, the database's time is not in it), steadier than
        # the time on a shared machine.
        cpu_ms: dict[int, list[float]] = {k: [] for k in counts}

        def once(k: int) -> tuple[float, int, int]:
            path = poll_path()
            change(app, rng.sample(ids, min(k, len(ids))), rng)
            begun, cpu = time.perf_counter(), time.process_time()
            response = client.get(path, headers=HX)
            elapsed = (time.perf_counter() - begun) * 1000
            cpu_ms[k].append((time.process_time() - cpu) * 1000)
            body = response.get_data(as_text=True)
            # 204: only statuses moved, none in the open conversation (the page keeps its marker).
            assert response.status_code in (200, 204), (response.status_code, body[:300])
            if response.status_code == 204:
                return elapsed, 0, 0
            marker[0] = html.unescape(POLL_RE.search(body).group(1))
            return elapsed, body.count('<li class="inbox-row'), len(body)

        def reference(path: str, headers: dict[str, str], expected: int) -> float:
            begun = time.perf_counter()
            response = client.get(path, headers=headers)
            elapsed = (time.perf_counter() - begun) * 1000
            assert response.status_code == expected, response.status_code
            response.close()
            return elapsed

        # For scale, in the same rounds: the Inbox page (as the browser first loads it) and the
        # unchanged poll (204).
        references = {"inbox page": ("/inbox", {}, 200), "unchanged poll": (None, HX, 204)}
        for k in counts:  # warm-up
            for _ in range(5):
                once(k)
        times: dict[int, list[float]] = {k: [] for k in counts}
        ref_times: dict[str, list[float]] = {name: [] for name in references}
        rows: dict[int, list[int]] = {k: [] for k in counts}
        sizes: dict[int, list[int]] = {k: [] for k in counts}
        for _ in range(args.samples):
            for k in counts:
                ms, n, size = once(k)
                times[k].append(ms)
                rows[k].append(n)
                sizes[k].append(size)
            for name, (path, headers, expected) in references.items():
                ref_times[name].append(reference(path or poll_path(), headers, expected))
        result: dict[str, Any] = {
            **info,
            "until": until or None,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        for name, values in ref_times.items():
            result[name] = {
                "n": len(values),
                "p50_ms": round(statistics.median(values), 2),
                "p95_ms": round(percentile(values, 0.95), 2),
            }
        for k in counts:
            result[f"changed {k}"] = {
                "n": len(times[k]),
                "p50_ms": round(statistics.median(times[k]), 2),
                "p95_ms": round(percentile(times[k], 0.95), 2),
                "app_cpu_p50_ms": round(statistics.median(cpu_ms[k][-len(times[k]) :]), 2),
                "rows_sent_mean": round(statistics.mean(rows[k]), 1),
                "bytes_mean": round(statistics.mean(sizes[k])),
            }
        if args.statements:
            # Each statement of polls with the largest k: its text and its time from send to answer.
            spent: dict[str, list[float]] = {}
            last: dict[str, tuple[str, Any]] = {}
            began: list[float] = []
            with app.app_context():
                engine = db.engine

                def before(conn, cursor, statement, parameters, context, executemany) -> None:
                    began.append(time.perf_counter())

                def after(conn, cursor, statement, parameters, context, executemany) -> None:
                    key = " ".join(statement.split())[:160]
                    spent.setdefault(key, []).append((time.perf_counter() - began.pop()) * 1000)
                    last[key] = (statement, parameters)

                sa.event.listen(engine, "before_cursor_execute", before)
                sa.event.listen(engine, "after_cursor_execute", after)
                try:
                    for _ in range(20):
                        path = poll_path()
                        change(app, rng.sample(ids, max(counts)), rng)
                        body = client.get(path, headers=HX).get_data(as_text=True)
                        if body:  # 204: the page keeps its marker
                            marker[0] = html.unescape(POLL_RE.search(body).group(1))
                finally:
                    sa.event.remove(engine, "before_cursor_execute", before)
                    sa.event.remove(engine, "after_cursor_execute", after)
            plans = {}
            with app.app_context(), db.engine.connect() as conn:
                for key, (statement, parameters) in last.items():
                    if "FROM conversation" in statement and not statement.startswith(("UPDATE", "WITH")):
                        rows = conn.exec_driver_sql(
                            "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                        ).all()
                        plans[key] = [r[0] for r in rows]
            result["plans"] = plans
            result["statements_per_poll"] = {
                k: {"n_per_poll": len(v) / 20, "p50_ms": round(statistics.median(v), 2)}
                for k, v in spent.items()
                if not k.startswith(
                    (
                        "UPDATE conversation",
                        "WITH clock",
                        "SELECT conversation.id, conversation.organization_id",
                    )
                )
            }
        if args.profile:
            k = max(counts)
            profile = cProfile.Profile()
            for _ in range(50):
                path = poll_path()
                change(app, rng.sample(ids, k), rng)
                profile.enable()
                body = client.get(path, headers=HX).get_data(as_text=True)
                profile.disable()
                if body:
                    marker[0] = html.unescape(POLL_RE.search(body).group(1))
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(45)
            print(out.getvalue())
        print(json.dumps(result, indent=2, default=str))
        with app.app_context():
            db.engine.dispose()
    finally:
        filler.drop_database(admin, name)


if __name__ == "__main__":
    main()
