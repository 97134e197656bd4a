"""Number health at scale (issue 23 §2): the staff's health view over 500 numbers and 10M messages on
PostgreSQL, against the one-row floor of the same app (bench/inbox.py's), and what the clock's recounts
that keep it cost.

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/number_health.py --numbers 500 --messages 10000000 --samples 200

It makes a fresh database (dropped at the end), loads the demo, adds `--numbers` sending numbers over 50
customers (US and GB), then the messages in one INSERT … SELECT over generate_series (no row goes through
Python): from those numbers in turn, spread evenly over the last `--days` days (365: a year of history, so
that the 30 days the view counts hold a twelfth of them), 10 % WhatsApp, 5 % undeliverable with one of
three error codes; and `--opt-outs` STOPs (an inbound message and its opt-out each). VACUUM ANALYZE.

Then it times the clock's two passes (webapp.numbers.health.refresh: the hourly recount of 30 days and the
minute's of 2), once each, and, signed in as csm@relay.example through the test client (no network; the
time is the app's), in rounds, interleaved:

- floor: GET /bench/floor, one row read by its key and rendered in base.html;
- the health view: GET /staff/numbers/health (the riskiest 50 by share of guidance), sorted by failure
  rate, a later page, and one customer's numbers (?org=);

and prints p50/p95 and each one's ratio to the floor (the issue asks for ≤ 3×).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from flask import Flask  # noqa: E402

from bench.inbox import bench_app, percentile  # noqa: E402
from webapp import demo  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Conversation, Organization, SendingNumber  # noqa: E402
from webapp.numbers import health  # noqa: E402

CUSTOMERS = 50
CODES = ("1320", "1330", "1240")


def populate(app: Flask, numbers: int, messages: int, days: int, opt_outs: int) -> dict[str, Any]:
    started = time.monotonic()
    with app.app_context():
        db.create_all()
        demo.seed(db.session)
        db.session.commit()
        orgs = []
        for n in range(CUSTOMERS):
            org = Organization(
                name=f"Bench customer {n + 1}", sender_name="Bench", has_messaging=True, sms_enabled=True
            )
            db.session.add(org)
            orgs.append(org)
        db.session.flush()
        # Written past the model's validator (which parses each number): valid-looking E.164, one country
        # in five British.
        rows = [
            {
                "organization_id": orgs[i % CUSTOMERS].id,
                "e164": f"+447700{i:06d}" if i % 5 == 4 else f"+1201{2000000 + i:07d}",
                "country": "GB" if i % 5 == 4 else "US",
                "sms": True,
                "whatsapp": True,
                "status": "active",
                "provider": "simulator",
                "created_at": datetime.now(UTC),
            }
            for i in range(numbers)
        ]
        db.session.execute(sa.insert(SendingNumber), rows)
        db.session.commit()
        pool = db.session.execute(
            sa.select(SendingNumber.e164, SendingNumber.organization_id)
            .where(SendingNumber.organization_id.in_([o.id for o in orgs]))
            .order_by(SendingNumber.id)
        ).all()
        e164s = [e for e, _ in pool]
        owners = [o for _, o in pool]
        with db.engine.begin() as conn:
            # One statement: PostgreSQL makes every row itself. g walks the numbers in turn and the
            # minutes of `days` days backwards from now; g / n (the round) spreads the WhatsApp messages
            # and the failures over every number alike.
            conn.execute(
                sa.text(
                    """
                    INSERT INTO message (organization_id, channel, direction, body, status, error_code,
                        from_addr, to_addr, segments, credits, attempts, created_at, updated_at)
                    SELECT (CAST(:owners AS integer[]))[1 + g % :n],
                        CASE WHEN (g / :n) % 10 = 0 THEN 'whatsapp' ELSE 'sms' END,
                        'outbound', 'Hello from the bench',
                        CASE WHEN (g / :n) % 20 = 7 THEN 'undeliverable' ELSE 'delivered' END,
                        CASE WHEN (g / :n) % 20 = 7 THEN (CAST(:codes AS text[]))[1 + (g / :n) % 3] END,
                        (CAST(:numbers AS text[]))[1 + g % :n],
                        '+1202' || lpad((g % 9000000)::text, 7, '0'), 1, 1, 1,
                        now() AT TIME ZONE 'UTC' - (g % (:days * 1440)) * interval '1 minute',
                        now() AT TIME ZONE 'UTC'
                    FROM generate_series(1, :messages) AS g
                    """
                ),
                {
                    "owners": owners,
                    "numbers": e164s,
                    "n": len(e164s),
                    "codes": list(CODES),
                    "days": days,
                    "messages": messages,
                },
            )
            # The STOPs: an inbound message to one of our numbers, and its opt-out, spread over the days.
            conn.execute(
                sa.text(
                    """
                    INSERT INTO message (organization_id, channel, direction, body, status, from_addr,
                        to_addr, segments, credits, attempts, created_at, updated_at)
                    SELECT (CAST(:owners AS integer[]))[1 + g % :n], 'sms', 'inbound', 'STOP', 'received',
                        '+1303' || lpad(g::text, 7, '0'), (CAST(:numbers AS text[]))[1 + g % :n], 0, 0, 0,
                        now() AT TIME ZONE 'UTC' - (g % (:days * 1440)) * interval '1 minute',
                        now() AT TIME ZONE 'UTC'
                    FROM generate_series(1, :opt_outs) AS g
                    """
                ),
                {"owners": owners, "numbers": e164s, "n": len(e164s), "days": days, "opt_outs": opt_outs},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO opt_out (organization_id, e164, source_message_id, created_at)"
                    " SELECT organization_id, from_addr, id, created_at FROM message"
                    " WHERE direction = 'inbound' AND body = 'STOP' AND from_addr LIKE '+1303%'"
                )
            )
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        stored = db.session.scalar(sa.text("SELECT count(*) FROM message"))
        built = time.monotonic() - started
        # The clock's passes, timed once each: the hourly recount of 30 days, then the minute's of 2.
        now = datetime.now(UTC)
        begun = time.monotonic()
        health.refresh(db.session, now, health.RECOUNT_DAYS)
        recount = time.monotonic() - begun
        begun = time.monotonic()
        health.refresh(db.session, now, health.RECENT_DAYS)
        minute = time.monotonic() - begun
        one_customer = orgs[0].id
        row = db.session.scalar(sa.select(Conversation.id).order_by(Conversation.id).limit(1))
        db.engine.dispose()
    return {
        "numbers": len(e164s),
        "messages_stored": stored,
        "seconds_to_build": round(built, 1),
        "clock recount of 30 days (hourly), s": round(recount, 2),
        "clock pass of 2 days (every minute), s": round(minute, 2),
        "customer": one_customer,
        "floor_row": row,
    }


def measure(app: Flask, info: dict[str, Any], samples: int) -> dict[str, Any]:
    import re

    app.config["BENCH_ROW"] = info["floor_row"]
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1)
    client.post("/login", data={"email": demo.STAFF[0], "password": demo.PASSWORD, "csrf_token": token})
    endpoints = {
        "floor": "/bench/floor",
        "health view (by share)": "/staff/numbers/health",
        "health view (by failure rate)": "/staff/numbers/health?sort=failures",
        "health view, page 5": "/staff/numbers/health?page=5",
        "one customer's numbers": f"/staff/numbers/health?org={info['customer']}",
    }

    def once(path: str) -> float:
        begun = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - begun) * 1000
        assert response.status_code == 200, (
            path,
            response.status_code,
            response.get_data(as_text=True)[:300],
        )
        response.close()
        return elapsed

    for path in endpoints.values():  # warm-up
        for _ in range(10):
            once(path)
    times: dict[str, list[float]] = {k: [] for k in endpoints}
    for _ in range(samples):
        for key, path in endpoints.items():
            times[key].append(once(path))
    floor = statistics.median(times["floor"])
    return {
        key: {
            "n": len(values),
            "p50_ms": round(statistics.median(values), 2),
            "p95_ms": round(percentile(values, 95), 2),
            "x_floor": round(statistics.median(values) / floor, 2),
        }
        for key, values in times.items()
    }


def run(numbers: int, messages: int, days: int, opt_outs: int, samples: int) -> dict[str, Any]:
    server = sa.make_url(os.environ["BENCH_POSTGRES_URL"]).set(drivername="postgresql+psycopg")
    name = f"relay_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        app = bench_app(server.set(database=name).render_as_string(hide_password=False))
        info = populate(app, numbers, messages, days, opt_outs)
        result = {**info, **measure(app, info, samples)}
        with app.app_context():
            db.engine.dispose()
        return result
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--numbers", type=int, default=500)
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--opt-outs", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    if not os.environ.get("BENCH_POSTGRES_URL"):
        sys.exit("set BENCH_POSTGRES_URL (a PostgreSQL server where a database may be made and dropped)")
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": " ".join(sys.argv),
        **run(args.numbers, args.messages, args.days, args.opt_outs, args.samples),
    }
    print(json.dumps(result, indent=1, ensure_ascii=False, default=str), flush=True)


if __name__ == "__main__":
    main()
