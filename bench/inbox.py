"""The inbox at scale (issue #9): server time of its pages against a one-row page of the same app.

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/inbox.py --sizes 1000:100000,10000:1000000 --samples 200

For each size (conversations:messages) and each database (SQLite in a file; PostgreSQL in a fresh
database made and dropped here) it loads the demo, then bulk-inserts that many conversations over the
recruiter's jobs with their messages (ids and times growing together, 18 % inbound; one conversation
of 5,000 messages; 5 % of conversations unread for the recruiter) and what the inbox keeps with them
(webapp.inbox.changes would keep the same, one message at a time). Then, signed in as
recruiter@acme.example through the test client (no network; the time is the app's), it times in
rounds, interleaved:

- floor: GET /bench/floor, a page of this run's app only: signed in, one row read by its key, rendered
  in base.html — the least a page of the app costs;
- first page: GET /inbox; filtered: the list for WhatsApp conversations that need a reply (htmx);
  search by name and by message text (htmx); search by a number's start ("+49": every generated
  candidate has a German mobile, the most a country code can match) and by seven of its digits (htmx);
- the unchanged poll: GET /inbox/changes with the page's own marker (204);
- a thread of 5,000 messages: its newest page, every channel interleaved, as the thread region draws
  it (GET /conversations/<id>/thread?tab=all), and the Inbox's pane that opens it (THREAD: the
  conversation's panel, the same thread and the composer).

and prints p50/p95 and the ratios, and on PostgreSQL the EXPLAIN (ANALYZE, BUFFERS) of the list's and
the searches' statements as the app sends them. --only search times the floor and the searches alone.
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
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from flask import Flask, render_template  # noqa: E402
from flask_login import login_required  # noqa: E402
from jinja2 import ChoiceLoader, DictLoader  # noqa: E402

from webapp import create_app, demo  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import (  # noqa: E402
    ActivityClock,
    Application,
    Candidate,
    Conversation,
    ConversationState,
    HiringTeamMember,
    Job,
    Message,
    Organization,
    SendingNumber,
    User,
)
from webapp.search import fold  # noqa: E402

FIRST = [
    "Lena",
    "Jonas",
    "Mia",
    "Felix",
    "Amelia",
    "Oliver",
    "Chloé",
    "Lucas",
    "Astrid",
    "Nils",
    "Sofia",
    "Hugo",
]
LAST = ["Müller", "Schmidt", "Jones", "Smith", "Tremblay", "Côté", "Lund", "Berg", "Rossi", "García", "Nowak"]
OUTBOUND = [
    "Hi {first}, thanks for applying to {job} at Acme. Could we book a short call this week?",
    "Hi {first}, we have received your application for {job}. We will be in touch soon. /Acme",
    "Hi {first}, a friendly reminder about your interview for {job} tomorrow at 10:00.",
    "Hej {first}! Vi vill gärna boka en intervju för {job}. Passar tisdag kl 14?",
    "Hi {first} 👋 quick question about your application for {job}: when could you start?",
]
INBOUND = ["Yes, that works.", "Thanks!", "Can we do Thursday instead?", "Sounds good", "OK 👍"]
TEXT_QUERY = "thursday instead"  # 1 inbound message in 5: a common phrase, the hard case for an index
THREAD_MESSAGES = 5000
# Opening a conversation in the Inbox: its whole panel, every channel interleaved (endpoint, argument).
THREAD = ("conversations.panel", "conversation_id")
FLOOR_TEMPLATE = '{% extends "base.html" %}{% block content %}<p>{{ c.last_preview }}</p>{% endblock %}'


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


# --- the data -----------------------------------------------------------------------------------------


def populate(app: Flask, conversations: int, messages: int, rng: random.Random) -> dict[str, Any]:
    started = time.monotonic()
    with app.app_context():
        db.create_all()
        demo.seed(db.session)
        db.session.commit()
        acme = db.session.scalar(sa.select(Organization).where(Organization.name == "Acme"))
        recruiter = db.session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
        jobs = list(
            db.session.execute(
                sa.select(Job.id, Job.title)
                .join(HiringTeamMember, HiringTeamMember.job_id == Job.id)
                .where(HiringTeamMember.user_id == recruiter.id)
            )
        )
        numbers = db.session.execute(
            sa.select(SendingNumber.e164, SendingNumber.whatsapp).where(
                SendingNumber.organization_id == acme.id
            )
        ).all()
        sms_numbers = [n for n, _ in numbers]
        wa_numbers = [n for n, wa in numbers if wa]

        def next_id(model: type) -> int:
            return (db.session.scalar(sa.select(sa.func.max(model.id))) or 0) + 1

        cand0, app0, conv0, msg0 = (
            next_id(Candidate),
            next_id(Application),
            next_id(Conversation),
            next_id(Message),
        )
        now = datetime.now(UTC)
        people, applications, convs = [], [], []
        for i in range(conversations):
            first, last = rng.choice(FIRST), f"{rng.choice(LAST)}{i}"
            people.append(
                {
                    "id": cand0 + i,
                    "organization_id": acme.id,
                    "first_name": first,
                    "last_name": last,
                    "search_name": fold(f"{first} {last}"),
                    "email": f"bench{i}@example.com",
                    "mobile": f"+4915{rng.randrange(10**9, 10**10)}",
                    "country": "DE",
                    "created_at": now,
                }
            )
            job_id, _ = jobs[i % len(jobs)]
            applications.append(
                {
                    "id": app0 + i,
                    "job_id": job_id,
                    "candidate_id": cand0 + i,
                    "stage": "new",
                    "created_at": now,
                }
            )
            convs.append(
                {"id": conv0 + i, "organization_id": acme.id, "application_id": app0 + i, "created_at": now}
            )
        for model, rows in ((Candidate, people), (Application, applications), (Conversation, convs)):
            for k in range(0, len(rows), 5000):
                db.session.execute(sa.insert(model), rows[k : k + 5000])
        db.session.commit()

        # Messages oldest first, so that ids and times grow together; one long thread of THREAD_MESSAGES.
        thread = conv0
        start, step = now - timedelta(days=180), timedelta(days=180) / messages
        kept: dict[int, dict[str, Any]] = {}
        batch: list[dict[str, Any]] = []
        for i in range(messages):
            index = 0 if i % max(1, messages // THREAD_MESSAGES) == 0 else rng.randrange(conversations)
            conversation_id = conv0 + index
            person = people[index]
            channel = "whatsapp" if index % 3 == 0 and rng.random() < 0.3 else "sms"
            if index % 7 == 0 and rng.random() < 0.3:
                channel = "email"
            inbound = channel != "email" and rng.random() < 0.18
            at = start + step * i
            message_id = msg0 + i
            ours = rng.choice(wa_numbers if channel == "whatsapp" else sms_numbers)
            body = (
                rng.choice(INBOUND)
                if inbound
                else rng.choice(OUTBOUND).format(first=person["first_name"], job=jobs[index % len(jobs)][1])
            )
            batch.append(
                {
                    "id": message_id,
                    "conversation_id": conversation_id,
                    "channel": channel,
                    "direction": "inbound" if inbound else "outbound",
                    "author_id": None if inbound else recruiter.id,
                    "body": body,
                    "subject": "Your application" if channel == "email" else None,
                    "status": "received" if inbound else "delivered",
                    "provider_id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "from_addr": person["mobile"] if inbound else ours,
                    "to_addr": ours if inbound else person["mobile"],
                    "segments": 0 if inbound else 1,
                    "credits": 0 if inbound else 1,
                    "attempts": 0 if inbound else 1,
                    "created_at": at,
                    "updated_at": at,
                    "received_at": at if inbound else None,
                }
            )
            k = kept.setdefault(conversation_id, {"id": conversation_id, "has": set()})
            k["has"].add(channel)
            k.update(
                last_message_id=message_id,
                last_message_at=at,
                last_direction="inbound" if inbound else "outbound",
                last_channel=channel,
                last_author_id=None if inbound else recruiter.id,
                last_preview=("Your application" if channel == "email" else body)[:200],
            )
            if len(batch) == 10000:
                db.session.execute(sa.insert(Message), batch)
                db.session.commit()
                batch = []
        if batch:
            db.session.execute(sa.insert(Message), batch)
        clock = (
            db.session.scalar(sa.select(ActivityClock.seq).where(ActivityClock.organization_id == acme.id))
            or 0
        )
        rows = []
        for n, k in enumerate(kept.values(), start=clock + 1):
            has = k.pop("has")
            rows.append(
                {
                    **k,
                    "b_id": k.pop("id"),
                    "has_email": "email" in has,
                    "has_sms": "sms" in has,
                    "has_whatsapp": "whatsapp" in has,
                    "change_seq": n,
                    "list_seq": n,
                }
            )
        update = (
            sa.update(Conversation.__table__)
            .where(Conversation.__table__.c.id == sa.bindparam("b_id"))
            .values({c: sa.bindparam(c) for c in rows[0] if c != "b_id"})
        )
        for k in range(0, len(rows), 5000):
            db.session.execute(update, rows[k : k + 5000])
        db.session.execute(
            sa.update(ActivityClock)
            .where(ActivityClock.organization_id == acme.id)
            .values(seq=clock + len(rows))
        )
        states = [
            {
                "user_id": recruiter.id,
                "conversation_id": c["b_id"],
                "unread": rng.randint(1, 3) if rng.random() < 0.05 else 0,
                "wrote": True,
                "changed_at": now,
            }
            for c in rows
        ]
        for k in range(0, len(states), 5000):
            db.session.execute(sa.insert(ConversationState), states[k : k + 5000])
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as conn:
                for table in ("candidate", "application", "conversation", "message"):
                    conn.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                        )
                    )
                conn.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
        else:
            with db.engine.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
        stored = db.session.scalar(sa.select(sa.func.count()).select_from(Message))
        db.engine.dispose()
    return {
        "conversations": conversations,
        "messages_stored": stored,
        "thread_conversation": thread,
        "seconds_to_build": round(time.monotonic() - started, 1),
    }


# --- the measurements ---------------------------------------------------------------------------------


def bench_app(database_url: str) -> Flask:
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "bench-" + "x" * 40,
            "DISPATCH_MODE": "inline",
            "DISPATCH_SWEEP_SECONDS": 0,
        }
    )
    # The floor: a page of this app that reads one row by its key and renders it in base.html.
    app.jinja_env.loader = ChoiceLoader(
        [DictLoader({"bench/floor.html": FLOOR_TEMPLATE}), app.jinja_env.loader]
    )

    @login_required
    def floor() -> str:
        return render_template("bench/floor.html", c=db.session.get(Conversation, app.config["BENCH_ROW"]))

    app.add_url_rule("/bench/floor", "bench_floor", floor)
    return app


def measure(app: Flask, info: dict[str, Any], samples: int, explain: bool, only: str = "") -> dict[str, Any]:
    app.config["BENCH_ROW"] = info["thread_conversation"]
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1)
    client.post(
        "/login", data={"email": "recruiter@acme.example", "password": demo.PASSWORD, "csrf_token": token}
    )
    html = client.get("/inbox").get_data(as_text=True)
    poll = re.search(r'hx-get="(/inbox/changes\?[^"]+)"', html).group(1).replace("&amp;", "&")
    with app.app_context():
        name, mobile = db.session.execute(
            sa.select(Candidate.last_name, Candidate.mobile).order_by(Candidate.id.desc()).limit(1)
        ).one()
        thread = None
        if THREAD[0] in app.view_functions:
            from flask import url_for

            with app.test_request_context():
                thread = url_for(THREAD[0], **{THREAD[1]: info["thread_conversation"]})
    hx = {"HX-Request": "true"}
    endpoints: dict[str, tuple[str, dict[str, str], int]] = {
        "floor": ("/bench/floor", {}, 200),
        "first page": ("/inbox", {}, 200),
        "filtered page": ("/inbox?channel=whatsapp&reply=1", hx, 200),
        "search by name": (f"/inbox?q={name}", hx, 200),
        "search by text": (f"/inbox?q={TEXT_QUERY.replace(' ', '+')}", hx, 200),
        "search by a number's start (+49)": ("/inbox?q=%2B49", hx, 200),
        "search by digits of a number": (f"/inbox?q={mobile[-7:]}", hx, 200),
        "unchanged poll": (poll, hx, 204),
    }
    if thread:
        endpoints["thread of 5,000"] = (thread + "/thread?tab=all", hx, 200)
        endpoints["pane of 5,000 (thread + composer)"] = (thread, hx, 200)
    if only:
        endpoints = {k: v for k, v in endpoints.items() if k == "floor" or k.startswith(only)}

    def once(path: str, headers: dict[str, str], expected: int) -> float:
        begun = time.perf_counter()
        response = client.get(path, headers=headers)
        elapsed = (time.perf_counter() - begun) * 1000
        assert response.status_code == expected, (
            path,
            response.status_code,
            response.get_data(as_text=True)[:300],
        )
        response.close()
        return elapsed

    for path, headers, expected in endpoints.values():  # warm-up
        for _ in range(10):
            once(path, headers, expected)
    times: dict[str, list[float]] = {k: [] for k in endpoints}
    deadline = {k: time.monotonic() + 60 for k in endpoints}  # a slow one stops after a minute
    for _ in range(samples):
        for key, (path, headers, expected) in endpoints.items():
            if time.monotonic() < deadline[key] or len(times[key]) < 20:
                times[key].append(once(path, headers, expected))
    result: dict[str, Any] = {}
    floor = statistics.median(times["floor"])
    for key, values in times.items():
        p50 = statistics.median(values)
        result[key] = {
            "n": len(values),
            "p50_ms": round(p50, 2),
            "p95_ms": round(percentile(values, 95), 2),
            "x_floor": round(p50 / floor, 2),
        }
    if not thread and not only:
        result["thread of 5,000"] = "waits for the conversations blueprint (issue #9 part 1): see THREAD"
    if explain:
        shown = ("first page", "search by text", "search by a number's start (+49)")
        result["plans"] = plans(app, client, {k: v for k, v in endpoints.items() if k in shown})
    return result


def plans(app: Flask, client: Any, endpoints: dict[str, tuple[str, dict[str, str], int]]) -> dict[str, Any]:
    """The EXPLAIN (ANALYZE, BUFFERS) of each statement that names the conversation table, as sent."""
    out: dict[str, Any] = {}
    with app.app_context():
        engine = db.engine
        for key, (path, headers, _) in endpoints.items():
            seen: list[tuple[str, Any]] = []

            def keep(conn, cursor, statement, parameters, context, executemany, seen=seen) -> None:
                if "FROM conversation" in statement and "EXPLAIN" not in statement:
                    seen.append((statement, parameters))

            sa.event.listen(engine, "before_cursor_execute", keep)
            try:
                client.get(path, headers=headers).close()
            finally:
                sa.event.remove(engine, "before_cursor_execute", keep)
            found = []
            with engine.connect() as conn:
                for statement, parameters in seen:
                    rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
                    found.append({"sql": " ".join(statement.split())[:600], "plan": [r[0] for r in rows]})
            out[key] = found
    return out


# --- the run ------------------------------------------------------------------------------------------


def run(database: str, size: tuple[int, int], samples: int, seed: int, only: str = "") -> dict[str, Any]:
    conversations, messages = size
    rng = random.Random(seed)
    if database == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            app = bench_app(f"sqlite:///{tmp}/bench.db")
            info = populate(app, conversations, messages, rng)
            return {**info, **measure(app, info, samples, explain=False, only=only)}
    server = sa.make_url(os.environ["BENCH_POSTGRES_URL"]).set(drivername="postgresql+psycopg")
    name = f"relay_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        app = bench_app(server.set(database=name).render_as_string(hide_password=False))
        info = populate(app, conversations, messages, rng)
        result = {**info, **measure(app, info, samples, explain=True, only=only)}
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
    parser.add_argument("--sizes", default="1000:100000,10000:1000000")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="", help='time the floor and the endpoints named so ("search")')
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",")]
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {__import__('sqlite3').sqlite_version}",
        "command": " ".join(sys.argv),
    }
    for database in args.databases.split(","):
        if database == "postgresql" and not os.environ.get("BENCH_POSTGRES_URL"):
            results[database] = "skipped: set BENCH_POSTGRES_URL"
            continue
        for size in sizes:
            label = f"{database} {size[0]:,} conversations / {size[1]:,} messages"
            results[label] = run(database, size, args.samples, args.seed, args.only)
            print(json.dumps({label: results[label]}, indent=1, ensure_ascii=False, default=str), flush=True)
    summary = {
        k: {e: v[e]["p50_ms"] for e in v if isinstance(v.get(e), dict) and "p50_ms" in v[e]}
        for k, v in results.items()
        if isinstance(v, dict)
    }
    print(json.dumps({"summary_p50_ms": summary}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
