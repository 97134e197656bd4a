"""Notifications at scale (issue 21 §1): the email sweep's cost per run, and the unchanged poll with the
top bar's count in it against the one-row floor.

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/notifications.py --size 10000:1000000 --samples 200

A fresh PostgreSQL database gets bench/inbox.py's data (the demo, then 10,000 conversations with
1,000,000 messages over the recruiter's six jobs, inserted in bulk, 18 % inbound, one thread of 5,000;
5 % of the conversations unread for the recruiter, 1-3 replies each), plus the recruiter's read markers
(every channel read up to the newest message, except the unread replies) and working hours round the
clock, so that the sweep finds what a real morning would.

The sweep (webapp.notifications.emails.sweep, as the clock's task calls it), timed:

- **due, first run**: every unread conversation's replies are due (~500 emails, "at once"): the due
  query, the recipients, the claims, and each email composed and handed over — to a sender that keeps
  it in memory (the database's and Relay's own cost) and, in a second database copy of the state, to the
  real SMTP sink of the tests (aiosmtpd on 127.0.0.1: one SMTP session per email);
- **steady**: the same sweep again, everything already told: what the clock pays every minute;
- **hourly digest**: the recruiter on the hourly digest, one email gathering every conversation.

The poll (test client, no network, signed in as the recruiter, rounds interleaved as in bench/inbox.py):
the floor (one row by key, rendered in base.html — which now asks for the top bar's count), the floor
without the count (what the floor was before this change), the Inbox's unchanged poll (204) sent as the
browser sends it now (with X-Relay-Waiting: the page's stamp), the application page's unchanged thread
poll (204, with the stamp) and the top bar's own light poll (204) of a page without a poll.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from flask import Flask, render_template  # noqa: E402
from flask_login import login_required  # noqa: E402

from bench.inbox import bench_app, percentile, populate  # noqa: E402
from webapp import demo  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Conversation, Notification, User  # noqa: E402
from webapp.notifications import emails, waiting  # noqa: E402
from webapp.providers.base import Outbound  # noqa: E402

BASE = "https://relay.example"
# The generated replies are spread over 180 days; a real morning's are from the last few. Every unread
# one counts here, so that the first run has every unread conversation to tell (~5 % of them).
emails.HORIZON = timedelta(days=365)


class Kept:
    """A sender that keeps the emails (the sweep's own cost, without a mail server's)."""

    def __init__(self) -> None:
        self.sent: list[Outbound] = []

    def send(self, outbound: Outbound) -> str:
        self.sent.append(outbound)
        return f"<{len(self.sent)}@bench>"


def prepare(app: Flask) -> int:
    """The recruiter's read markers (the unread replies left unread) and hours round the clock."""
    with app.app_context():
        recruiter = db.session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
        db.session.execute(
            sa.text(
                """
                INSERT INTO conversation_read
                    (user_id, conversation_id, channel, last_read_message_id, updated_at)
                SELECT s.user_id, c.id, ch.channel,
                       CASE WHEN s.unread > 0 THEN coalesce((
                           SELECT m.id FROM message m
                           WHERE m.conversation_id = c.id AND m.direction = 'inbound'
                           ORDER BY m.id DESC OFFSET s.unread LIMIT 1), 0)
                       ELSE c.last_message_id END,
                       now()
                FROM conversation_state s
                JOIN conversation c ON c.id = s.conversation_id
                CROSS JOIN (VALUES ('email'), ('sms'), ('whatsapp')) AS ch(channel)
                WHERE s.user_id = :user AND c.last_message_id IS NOT NULL
                ON CONFLICT (user_id, conversation_id, channel) DO NOTHING
                """
            ),
            {"user": recruiter.id},
        )
        recruiter.work_from, recruiter.work_until, recruiter.work_days = (
            clock_time(0),
            clock_time(23, 59),
            "1234567",
        )
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE conversation_read"))
        return recruiter.id


def forget(app: Flask, user_id: int, mode: str) -> None:
    """Back to "nobody told yet", with the recruiter's choice."""
    with app.app_context():
        db.session.execute(sa.delete(Notification))
        db.session.execute(
            sa.update(User).where(User.id == user_id).values(notify_email=mode, digest_sent_at=None)
        )
        db.session.commit()


def timed_sweep(app: Flask, sender: Any) -> tuple[float, emails.Swept]:
    with app.app_context():
        begun = time.perf_counter()
        swept = emails.sweep(db.session, datetime.now(UTC), sender, BASE, app.config["SECRET_KEY"])
        elapsed = time.perf_counter() - begun
        db.session.remove()
    return elapsed, swept


def sweeps(app: Flask, user_id: int, smtp: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("now", "hourly"):
        forget(app, user_id, mode)
        kept = Kept()
        first, swept = timed_sweep(app, kept)
        steady = [timed_sweep(app, Kept())[0] for _ in range(5)]
        out[f"{mode}: first run (memory sender)"] = {
            "seconds": round(first, 3),
            "emails": swept.sent,
            "conversations": sum(o.body.count("Open the conversation") for o in kept.sent),
        }
        out[f"{mode}: steady run, nothing new (median of 5)"] = {
            "ms": round(statistics.median(steady) * 1000, 1)
        }
    if smtp:
        from tests.smtp_sink import running_smtp_sink
        from webapp.providers.smtp import SmtpProvider

        forget(app, user_id, "now")
        with running_smtp_sink() as sink:
            elapsed, swept = timed_sweep(app, SmtpProvider(sink.url))
            out["now: first run (real SMTP sink)"] = {
                "seconds": round(elapsed, 3),
                "emails": swept.sent,
                "received": len(sink.messages),
            }
    with app.app_context():
        compiled = emails._due_statement("postgresql").compile(dialect=db.engine.dialect)
        now = datetime.now(UTC)
        params = {**compiled.params, "due_before": now, "not_before": now - emails.HORIZON}
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SET jit = off")  # as emails.due does
            plan = [
                r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + compiled.string, params)
            ]
        db.session.remove()
    out["due query plan (everything already told)"] = plan
    return out


def polls(app: Flask, info: dict[str, Any], samples: int) -> dict[str, Any]:
    app.config["BENCH_ROW"] = info["thread_conversation"]

    @login_required
    def floor_without_count() -> str:
        constant = waiting.Waiting(0, "0")
        return render_template(
            "bench/floor.html",
            c=db.session.get(Conversation, app.config["BENCH_ROW"]),
            waiting_now=lambda: constant,
        )

    app.add_url_rule("/bench/floor-bare", "bench_floor_bare", floor_without_count)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1)
    client.post(
        "/login", data={"email": "recruiter@acme.example", "password": demo.PASSWORD, "csrf_token": token}
    )
    with app.app_context():
        conversation = db.session.get(Conversation, info["thread_conversation"])
        application_id = conversation.application_id
        db.session.remove()
    # The application page first: opening it marks its thread read, which moves the stamp.
    application = client.get(f"/applications/{application_id}").get_data(as_text=True)
    thread = re.search(r'hx-get="(/conversations/\d+/thread\?[^"]+)"', application).group(1)
    html = client.get("/inbox").get_data(as_text=True)
    poll = re.search(r'hx-get="(/inbox/changes\?[^"]+)"', html).group(1).replace("&amp;", "&")
    thread = thread.replace("&amp;", "&")
    stamp = re.search(r'<a id="waiting"[^>]*data-stamp="(\d+)"', html).group(1)
    hx = {"HX-Request": "true", "X-Relay-Waiting": stamp}
    endpoints: dict[str, tuple[str, dict[str, str], int]] = {
        "floor (base.html with the count)": ("/bench/floor", {}, 200),
        "floor without the count": ("/bench/floor-bare", {}, 200),
        "Inbox poll, unchanged (204, stamp sent)": (poll, hx, 204),
        "Inbox poll, unchanged (204, as before: no stamp)": (poll, {"HX-Request": "true"}, 204),
        "thread poll, unchanged (204, stamp sent)": (thread, hx, 204),
        "thread poll, unchanged (204, as before: no stamp)": (thread, {"HX-Request": "true"}, 204),
        "top bar's light poll (204)": ("/notifications/waiting", hx, 204),
    }

    def once(path: str, headers: dict[str, str], expected: int) -> float:
        begun = time.perf_counter()
        response = client.get(path, headers=headers)
        elapsed = (time.perf_counter() - begun) * 1000
        assert response.status_code == expected, (path, response.status_code)
        assert "X-Relay-Waiting" not in response.headers, path  # unchanged: no count in the answer
        response.close()
        return elapsed

    for path, headers, expected in endpoints.values():
        for _ in range(10):
            once(path, headers, expected)
    times: dict[str, list[float]] = {k: [] for k in endpoints}
    for _ in range(samples):
        for key, (path, headers, expected) in endpoints.items():
            times[key].append(once(path, headers, expected))
    floor = statistics.median(times["floor (base.html with the count)"])
    bare = statistics.median(times["floor without the count"])
    return {
        key: {
            "p50_ms": round(statistics.median(values), 2),
            "p95_ms": round(percentile(values, 95), 2),
            "x_floor": round(statistics.median(values) / floor, 2),
            "x_floor_without_count": round(statistics.median(values) / bare, 2),
        }
        for key, values in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="10000:1000000")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-smtp", action="store_true")
    args = parser.parse_args()
    conversations, messages = (int(x) for x in args.size.split(":"))
    server = sa.make_url(os.environ["BENCH_POSTGRES_URL"]).set(drivername="postgresql+psycopg")
    name = f"relay_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load before": os.getloadavg(),
        "command": " ".join(sys.argv),
    }
    try:
        app = bench_app(server.set(database=name).render_as_string(hide_password=False))
        info = populate(app, conversations, messages, random.Random(args.seed))
        user_id = prepare(app)
        with app.app_context():
            info["unread conversations"] = db.session.scalar(
                sa.text("SELECT count(*) FROM conversation_state WHERE user_id = :u AND unread > 0"),
                {"u": user_id},
            )
            db.session.remove()
        results["data"] = info
        print(json.dumps(info, default=str), flush=True)
        results["sweep"] = sweeps(app, user_id, smtp=not args.no_smtp)
        print(json.dumps(results["sweep"], indent=1, default=str), flush=True)
        forget(app, user_id, "now")
        results["polls"] = polls(app, info, args.samples)
        results["load after"] = os.getloadavg()
        print(json.dumps(results["polls"], indent=1), flush=True)
        with app.app_context():
            db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(json.dumps({"load before": results["load before"], "load after": results.get("load after")}))


if __name__ == "__main__":
    main()
