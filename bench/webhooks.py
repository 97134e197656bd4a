"""Vonage webhooks under load (issues #4, #19): inbound and status webhooks through gunicorn on PostgreSQL
with 100,000 messages stored, against two floors of the same app in the same run: the durable-write
floor (POST /bench/floor of bench/floor_wsgi.py: a webhook-sized body, one INSERT and one COMMIT through
the app's own session) and GET /healthz (no database); the three phases alternate --rounds times. Then,
in the database, every inbound message posted stored exactly once and every status report applied, and
every floor write acknowledged stored once.

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    .venv/bin/python bench/webhooks.py --seconds 10 --rounds 3

BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres) names the server; a fresh
database relay_bench_<random> is made there and dropped at the end, also on failure. The app runs as
`gunicorn -w 2 bench.floor_wsgi:app` (sync workers; wsgi:app plus the floor's route) with
DISPATCH_MODE=inline and the simulator; the load comes from
one other process (bench/webhooks_load.py) with --threads threads, one HTTP connection each.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import random
import re
import secrets
import shlex
import signal
import socket
import subprocess
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

from webapp import create_app, demo  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.messaging import status as status_rules  # noqa: E402
from webapp.models import (  # noqa: E402
    Application,
    Candidate,
    Conversation,
    Job,
    Message,
    OptOut,
    Organization,
    SendingNumber,
    User,
)

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
COMMAND = ".venv/bin/python bench/webhooks.py --seconds 10 --rounds 3"
# The floor's table (bench/floor_wsgi.py writes it): one row per webhook-sized body, unique by uuid.
FLOOR_TABLE = (
    "CREATE TABLE bench_floor (id BIGSERIAL PRIMARY KEY, message_uuid TEXT NOT NULL UNIQUE,"
    " body TEXT NOT NULL, received_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)
OUTBOUND_TEXTS = [
    "Hi {first}, thanks for applying to {job} at Acme. Could we book a short call this week?",
    "Hi {first}, we have received your application for {job}. We will be in touch soon. /Acme",
    "Hi {first}, a friendly reminder about your interview for {job} tomorrow at 10:00.",
    "Hej {first}! Vi vill gärna boka en intervju för {job}. Passar tisdag kl 14?",
    "Hi {first} 👋 quick question about your application for {job}: when could you start?",
]
INBOUND_TEXTS = ["Yes, that works.", "Thanks!", "Can we do Thursday instead?", "Sounds good", "OK 👍"]


class Terminated(Exception):
    pass


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated(f"signal {signum}")


# --- the database -------------------------------------------------------------------------------------


def create_database(server_url: str) -> tuple[str, sa.Engine, str]:
    base = sa.make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"relay_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return name, admin, base.set(database=name).render_as_string(hide_password=False)


def server_version(admin: sa.Engine) -> str:
    with admin.connect() as conn:
        return str(conn.execute(sa.text("SHOW server_version")).scalar())


def drop_database(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def populate(app: Any, messages: int, rng: random.Random) -> dict[str, Any]:
    """Schema, demo data, a conversation per Acme application, then `messages` messages in bulk."""
    started = time.monotonic()
    with app.app_context():
        db.create_all()
        demo.seed(db.session)
        db.session.commit()
        acme = db.session.scalar(sa.select(Organization).where(Organization.name == "Acme"))
        recruiter = db.session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
        numbers = list(
            db.session.scalars(
                sa.select(SendingNumber).where(SendingNumber.organization_id == acme.id).order_by("id")
            )
        )
        rows = db.session.execute(
            sa.select(Application.id, Candidate.mobile, Candidate.country, Candidate.first_name, Job.title)
            .join(Candidate, Candidate.id == Application.candidate_id)
            .join(Job, Job.id == Application.job_id)
            .where(Job.organization_id == acme.id, Candidate.mobile.is_not(None))
            # The demo's own conversations keep their numbers and history; the load uses the others.
            .where(~sa.select(Conversation.id).where(Conversation.application_id == Application.id).exists())
            .order_by(Application.id)
        ).all()

        def pick(pool: list[SendingNumber], country: str | None, turn: int) -> SendingNumber:
            # As routing does: the candidate's country, else the US, else any; turns spread one country.
            for wanted in (country, "US"):
                same = [n for n in pool if n.country == wanted]
                if same:
                    return same[turn % len(same)]
            return pool[turn % len(pool)]

        sms_pool = [n for n in numbers if n.sms]
        wa_pool = [n for n in numbers if n.whatsapp]
        conversations = []
        for turn, (application_id, mobile, country, first, job) in enumerate(rows):
            sms = pick(sms_pool, country, turn)
            wa = pick(wa_pool, country, turn) if turn % 3 == 0 else None
            conversation = Conversation(
                organization_id=acme.id,
                application_id=application_id,
                sms_number_id=sms.id,
                whatsapp_number_id=wa.id if wa else None,
            )
            db.session.add(conversation)
            conversations.append((conversation, mobile, first, job, sms.e164, wa.e164 if wa else None))
        db.session.flush()
        conv_ids = [c.id for c, *_ in conversations]
        db.session.commit()
        acme_id, recruiter_id = acme.id, recruiter.id

        # Oldest first, so ids grow with time; the most recent 15 % of outbound are still "submitted":
        # those are what the status webhooks of the run report on.
        start = datetime.now(UTC) - timedelta(days=180)
        step = timedelta(days=180) / messages
        batch: list[dict[str, Any]] = []
        counts = {"outbound": 0, "inbound": 0, "submitted": 0, "whatsapp": 0}
        last_at: dict[int, datetime] = {}
        for i in range(messages):
            index = rng.randrange(len(conversations))
            _, mobile, first, job, sms_number, wa_number = conversations[index]
            conversation_id = conv_ids[index]
            channel = "whatsapp" if wa_number and rng.random() < 0.3 else "sms"
            number = wa_number if channel == "whatsapp" else sms_number
            at = start + step * i
            last_at[conversation_id] = at
            inbound = rng.random() < 0.18
            row: dict[str, Any] = {
                "conversation_id": conversation_id,
                "channel": channel,
                "created_at": at,
                "updated_at": at,
                "provider_id": str(uuid.uuid4()),
            }
            if inbound:
                row.update(
                    organization_id=acme_id,
                    direction="inbound",
                    body=rng.choice(INBOUND_TEXTS),
                    status="received",
                    from_addr=mobile,
                    to_addr=number,
                    received_at=at,
                )
            else:
                recent = i >= messages * 0.85
                r = rng.random()
                if recent:
                    value = "submitted"
                elif channel == "sms":
                    value = "delivered" if r < 0.96 else ("undeliverable" if r < 0.98 else "rejected")
                else:
                    value = "read" if r < 0.75 else ("delivered" if r < 0.97 else "undeliverable")
                segments = 1 + (rng.random() < 0.2)
                row.update(
                    direction="outbound",
                    author_id=recruiter_id,
                    body=rng.choice(OUTBOUND_TEXTS).format(first=first, job=job),
                    status=value,
                    from_addr=number,
                    to_addr=mobile,
                    encoding="GSM-7" if channel == "sms" else None,
                    segments=segments if channel == "sms" else 1,
                    credits=segments if channel == "sms" else 2,
                    attempts=1,
                    submitted_at=at if value != "rejected" else None,
                    delivered_at=at + timedelta(seconds=5) if value in ("delivered", "read") else None,
                    read_at=at + timedelta(minutes=3) if value == "read" else None,
                    failed_at=at + timedelta(seconds=5) if value in status_rules.FINAL else None,
                    error_code="1320" if value in status_rules.FINAL else None,
                    error_title="Not delivered" if value in status_rules.FINAL else None,
                )
                counts["submitted"] += value == "submitted"
            counts["inbound" if inbound else "outbound"] += 1
            counts["whatsapp"] += channel == "whatsapp"
            batch.append(row)
            if len(batch) == 5000 or i == messages - 1:
                db.session.execute(sa.insert(Message), batch)
                db.session.commit()
                batch = []
        for conversation_id, at in last_at.items():
            db.session.execute(
                sa.update(Conversation).where(Conversation.id == conversation_id).values(last_message_at=at)
            )
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        total = db.session.scalar(sa.select(sa.func.count()).select_from(Message))
    return {
        "messages_stored_before": total,
        **counts,
        "conversations": len(conversations),
        "seconds_to_build": round(time.monotonic() - started, 1),
    }


def load_plan(app: Any, rng: random.Random) -> dict[str, Any]:
    """What the load generator needs: the routes a reply matches, our numbers, the status targets."""
    with app.app_context():
        acme_id = db.session.scalar(sa.select(Organization.id).where(Organization.name == "Acme"))
        numbers = list(
            db.session.scalars(sa.select(SendingNumber.e164).where(SendingNumber.organization_id == acme_id))
        )
        # The conversation the app must find for a reply: the one that last wrote to that mobile from
        # that number on that channel (DISTINCT ON keeps the highest id per route).
        routes = db.session.execute(
            sa.text(
                "SELECT DISTINCT ON (to_addr, from_addr, channel)"
                " to_addr, from_addr, channel, conversation_id"
                " FROM message WHERE direction = 'outbound' AND channel IN ('sms', 'whatsapp')"
                " ORDER BY to_addr, from_addr, channel, id DESC"
            )
        ).all()
        targets = db.session.execute(
            sa.select(Message.provider_id, Message.id, Message.channel, Message.to_addr, Message.from_addr)
            .where(Message.direction == "outbound", Message.status == "submitted")
            .order_by(Message.id)
        ).all()
        mobiles = set(db.session.scalars(sa.select(Candidate.mobile).where(Candidate.mobile.is_not(None))))
    target_list = [
        {"uuid": t.provider_id, "id": t.id, "channel": t.channel, "to": t.to_addr, "from": t.from_addr}
        for t in targets
    ]
    rng.shuffle(target_list)
    return {
        "acme_id": acme_id,
        "acme_numbers": numbers,
        "routes": [
            {
                "mobile": r.to_addr,
                "number": r.from_addr,
                "channel": r.channel,
                "conversation": r.conversation_id,
            }
            for r in routes
        ],
        "targets": target_list,
        "mobiles": sorted(mobiles),
    }


# --- the server ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_environment(database_url: str, secret: str, redis_url: str | None = None) -> dict[str, str]:
    """The app's settings for the bench: webhooks applied in the request, or (redis_url) stored first and
    applied by a worker of the `webhooks` queue, as `make serve` runs it."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        VONAGE_SIGNATURE_SECRET=secret,
        MESSAGING_PROVIDER="simulator",
        DISPATCH_MODE="inline",
        SECRET_KEY="bench-key-0123456789abcdef0123456789abcdef",
        RELAY_ENV="development",
        PYTHONUNBUFFERED="1",
        CLOCK_IN_PROCESS="0",
    )
    env.pop("REDIS_URL", None)
    if redis_url:
        env.update(REDIS_URL=redis_url, DISPATCH_MODE="rq", WEBHOOK_INGEST="queued", LOG_FORMAT="json")
    return env


def start_webhooks_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`flask --app wsgi worker --queue webhooks` at the Procfile's priority (nice 10)."""
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            "nice",
            "-n",
            "10",
            str(ROOT / ".venv" / "bin" / "flask"),
            "--app",
            "wsgi",
            "worker",
            "--queue",
            "webhooks",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return process


def process_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def apply_delays(log_path: Path) -> dict[str, float]:
    """From the worker's "webhook applied" lines: how long a webhook waited between its 2xx and its
    being applied (what the thread lags behind), p50 / p95 / max in ms."""
    delays = []
    for line in log_path.read_text(errors="replace").splitlines():
        if '"webhook applied"' in line:
            delays.append(json.loads(line)["delay_ms"])
    if not delays:
        return {}
    delays.sort()
    return {
        "n": len(delays),
        "p50": delays[len(delays) // 2],
        "p95": delays[int(len(delays) * 0.95)],
        "max": delays[-1],
    }


def wait_for_backlog(app: Any, timeout: float = 300) -> float:
    """Seconds until no stored webhook waits (the worker has applied them all)."""
    from webapp.models import WebhookEvent

    started = time.monotonic()
    with app.app_context():
        while time.monotonic() - started < timeout:
            left = db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent))
            db.session.rollback()
            if not left:
                return time.monotonic() - started
            time.sleep(0.05)
    raise RuntimeError(f"the webhooks worker did not apply the backlog within {timeout:g} s")


def start_gunicorn(
    database_url: str,
    secret: str,
    port: int,
    log_path: Path,
    workers: int = 2,
    nice: int = 0,
    redis_url: str | None = None,
) -> subprocess.Popen[bytes]:
    gunicorn = ROOT / ".venv" / "bin" / "gunicorn"
    env = server_environment(database_url, secret, redis_url)
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(gunicorn), "-w", str(workers), "-b", f"127.0.0.1:{port}", "bench.floor_wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,  # lower CPU priority, inherited by workers
    )
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return process
            conn.close()
        except OSError:
            pass
        time.sleep(0.2)
    stop_gunicorn(process)
    raise RuntimeError("gunicorn did not answer /healthz within 60 s")


def stop_gunicorn(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the master stops its workers
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def server_errors(log_text: str) -> list[dict[str, Any]]:
    """The exceptions Flask logged, grouped: the request, our frames, the exception and its details."""
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    blocks = re.split(r"^(?=\[[^\]]+\] ERROR in app: )", log_text, flags=re.MULTILINE)
    for block in blocks:
        if " ERROR in app: " not in block.split("\n", 1)[0]:
            continue
        lines = [line for line in block.splitlines() if not line.startswith("[20") or "ERROR" in line]
        request = lines[0].split("ERROR in app: ", 1)[1]
        ours = [
            f"{m.group(1)}:{m.group(2)} in {m.group(3)}"
            for m in re.finditer(r'File "(?:[^"]*/)?(webapp/[^"]+)", line (\d+), in (\w+)', block)
        ]
        raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Detected)\b", line)]
        details = [line for line in lines if line.startswith(("DETAIL:", "Process ", "CONTEXT:"))]
        key = (request, *ours, raised[-1] if raised else "")
        group = groups.setdefault(
            key,
            {
                "request": request,
                "count": 0,
                "app_frames": ours,
                "exception": raised[-1] if raised else None,
                "details": list(dict.fromkeys(details)),
            },
        )
        group["count"] += 1
    return sorted(groups.values(), key=lambda g: -g["count"])


# --- what the database says afterwards ----------------------------------------------------------------


def _chunks(items: list[str], size: int = 2000) -> Any:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def possible_finals(before: str, events: set[str]) -> set[str]:
    """Every status the message may end in when these reports arrive in any order."""
    finals = set()
    for order in itertools.permutations(sorted(events)):
        current = before
        for new in order:
            if status_rules.may_follow(current, new):
                current = new
        finals.add(current)
    return finals


def verify(app: Any, plan: dict[str, Any], load: dict[str, Any]) -> dict[str, Any]:
    routes = {(r["mobile"], r["number"], r["channel"]): r["conversation"] for r in plan["routes"]}
    inbound_log: dict[str, dict[str, Any]] = load["inbound_log"]
    posted = list(inbound_log)
    acknowledged = {u for u, r in inbound_log.items() if any(200 <= c < 300 for c in r["codes"])}
    stored: dict[str, list[Any]] = {}
    with app.app_context():
        for chunk in _chunks(posted):
            for row in db.session.execute(
                sa.select(
                    Message.provider_id,
                    sa.func.count(),
                    sa.func.min(Message.conversation_id),
                    sa.func.min(Message.organization_id),
                    sa.func.min(Message.direction),
                )
                .where(Message.provider_id.in_(chunk))
                .group_by(Message.provider_id)
            ):
                stored[row[0]] = list(row[1:])
        status_log: dict[str, list[list[Any]]] = load["status_log"]
        after: dict[str, str] = {}
        for chunk in _chunks(list(status_log)):
            rows = db.session.execute(
                sa.select(Message.provider_id, Message.status).where(Message.provider_id.in_(chunk))
            )
            after.update((provider_id, value) for provider_id, value in rows)
        optouts = db.session.execute(
            sa.select(sa.func.count(), sa.func.count().filter(OptOut.revoked_at.is_(None))).select_from(
                OptOut
            )
        ).one()
        total = db.session.scalar(sa.select(sa.func.count()).select_from(Message))
        floor_log: dict[str, list[int]] = load["floor_log"]
        floor_rows: dict[str, int] = {}
        for chunk in _chunks(list(floor_log)):
            rows = db.session.execute(
                sa.text(
                    "SELECT message_uuid, count(*) FROM bench_floor WHERE message_uuid = ANY(:ids)"
                    " GROUP BY message_uuid"
                ),
                {"ids": chunk},
            )
            floor_rows.update((u, n) for u, n in rows)
    floor_acknowledged = {u for u, codes in floor_log.items() if any(200 <= c < 300 for c in codes)}

    wrong_conversation = []
    for message_uuid, record in inbound_log.items():
        row = stored.get(message_uuid)
        if row is None:
            continue
        _, conversation_id, organization_id, direction = row
        if record["kind"] == "unknown":
            expected = None
        else:
            expected = routes[record["from"], record["to"], record["channel"]]
        if conversation_id != expected or organization_id != plan["acme_id"] or direction != "inbound":
            wrong_conversation.append([message_uuid, record["kind"], expected, conversation_id])
    twice = [u for u, r in inbound_log.items() if len(r["codes"]) > 1]
    kinds: dict[str, int] = {}
    for record in inbound_log.values():
        kinds[record["kind"]] = kinds.get(record["kind"], 0) + 1

    targets = {t["uuid"] for t in plan["targets"]}
    applied, not_applied, reports_for_unknown = 0, [], 0
    for message_uuid, events in status_log.items():
        if message_uuid not in targets:
            reports_for_unknown += len(events)
            continue
        ok_events = {value for value, code in events if 200 <= code < 300}
        finals = possible_finals("submitted", ok_events)
        if after.get(message_uuid) in finals:
            applied += 1
        else:
            not_applied.append(
                [message_uuid, [e[0] for e in events], sorted(finals), after.get(message_uuid)]
            )
    return {
        "inbound": {
            "unique_posted": len(posted),
            "by_kind": kinds,
            "posted_twice": len(twice),
            "acknowledged_2xx": len(acknowledged),
            "stored": sum(1 for u in posted if u in stored),
            "lost": len(acknowledged - set(stored)),
            "never_acknowledged": len(set(posted) - acknowledged),
            "duplicated_rows": sum(row[0] - 1 for row in stored.values()),
            "wrong_conversation_or_org": len(wrong_conversation),
            "wrong_examples": wrong_conversation[:5],
        },
        "status": {
            "messages_reported_on": len(status_log) - sum(1 for u in status_log if u not in targets),
            "reports_for_unknown_uuids": reports_for_unknown,
            "ended_in_expected_status": applied,
            "not_applied": len(not_applied),
            "not_applied_examples": not_applied[:5],
        },
        "floor": {
            "posted": len(floor_log),
            "acknowledged_2xx": len(floor_acknowledged),
            "lost": len(floor_acknowledged - set(floor_rows)),
            "duplicated_rows": sum(n - 1 for n in floor_rows.values()),
        },
        "opt_outs": {"rows": optouts[0], "active": optouts[1]},
        "messages_stored_after": total,
        # Only the inbound messages may be new rows (no HELP is sent, so no reply is queued).
        "unexpected_new_rows": total - plan["messages_before"] - sum(1 for u in posted if u in stored),
    }


# --- the run ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10, help="length of each phase of each round")
    parser.add_argument("--rounds", type=int, default=3, help="webhooks, floor, /healthz: alternations")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--threads", type=int, default=12, help="load generator threads (one process)")
    parser.add_argument("--messages", type=int, default=100_000, help="messages stored before the run")
    parser.add_argument("--inbound-share", type=float, default=0.35, help="share of inbound among webhooks")
    parser.add_argument("--duplicate-share", type=float, default=0.10, help="inbound webhooks posted twice")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--ingest",
        choices=["direct", "queued"],
        default="direct",
        help="direct: applied in the request; queued: stored first, applied by a webhooks worker",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14", help="Redis for --ingest queued")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_sigterm)

    server = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    rng = random.Random(args.seed)
    secret = secrets.token_urlsafe(48)  # 64 characters
    work = Path(tempfile.mkdtemp(prefix="relay_bench_webhooks_"))
    log_path = work / "gunicorn.log"
    name, admin, database_url = create_database(server)
    gunicorn: subprocess.Popen[bytes] | None = None
    hooks_worker: subprocess.Popen[bytes] | None = None
    app = None
    keep_log = False
    try:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database_url,
                "SECRET_KEY": "bench-" + "x" * 40,
            }
        )
        data = populate(app, args.messages, rng)
        plan = load_plan(app, rng)
        plan["messages_before"] = data["messages_stored_before"]
        mobiles = set(plan.pop("mobiles"))
        with app.app_context():
            db.session.execute(sa.text(FLOOR_TABLE))
            db.session.commit()
        port = free_port()
        redis_url = args.redis if args.ingest == "queued" else None
        if redis_url:
            from redis import Redis

            Redis.from_url(redis_url).delete("rq:queue:relay-webhooks")
            hooks_worker = start_webhooks_worker(
                server_environment(database_url, secret, redis_url), work / "worker.log"
            )
        gunicorn = start_gunicorn(database_url, secret, port, log_path, args.workers, redis_url=redis_url)
        plan_path, out_path = work / "plan.json", work / "load.json"
        plan_path.write_text(
            json.dumps(
                {
                    **plan,
                    "port": port,
                    "gunicorn_pid": gunicorn.pid,
                    "webhooks_worker_pid": hooks_worker.pid if hooks_worker is not None else None,
                    "libpq_url": sa.make_url(database_url)
                    .set(drivername="postgresql")
                    .render_as_string(hide_password=False),
                    "secret": secret,
                    "seconds": args.seconds,
                    "rounds": args.rounds,
                    "threads": args.threads,
                    "seed": args.seed + 1,
                    "inbound_share": args.inbound_share,
                    "duplicate_share": args.duplicate_share,
                }
            )
        )
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "webhooks_load.py"),
                "--plan",
                str(plan_path),
                "--out",
                str(out_path),
            ],
            check=True,
            timeout=3 * args.rounds * args.seconds + 300,
        )
        load = json.loads(out_path.read_text())
        stop_gunicorn(gunicorn)
        queued_figures: dict[str, Any] = {}
        if hooks_worker is not None:
            queued_figures["backlog_seconds_after_the_load"] = round(wait_for_backlog(app), 2)
            applied = load["webhooks"]["all"]["requests"]
            queued_figures["worker_cpu_ms_per_webhook"] = round(
                1000 * process_cpu_seconds(hooks_worker.pid) / max(1, applied), 3
            )
            queued_figures["arrival_to_applied_ms"] = apply_delays(work / "worker.log")
        checks = verify(app, plan, load)
        unknown_is_candidate = sum(
            1 for r in load["inbound_log"].values() if r["kind"] == "unknown" and r["from"] in mobiles
        )
        log_text = log_path.read_text(errors="replace")
        errors = server_errors(log_text)
        keep_log = "Traceback" in log_text
        hooks, floor, healthz = load["webhooks"], load["floor"]["write"], load["healthz"]["healthz"]
        # Server CPU (gunicorn workers + PostgreSQL backends) per request, by phase: what the webhooks
        # cost against the floor, least disturbed by other work on the machine.
        served = {
            "webhooks": hooks["all"]["requests"],
            "floor": floor["requests"],
            "healthz": healthz["requests"],
        }
        cpu_per_request = {
            name: round(1000 * load["server_cpu_seconds"][name] / max(1, count), 3)
            for name, count in served.items()
        }
        results = {
            "command": COMMAND,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "server": f"gunicorn -w {args.workers} (sync workers) bench.floor_wsgi:app"
            " (wsgi:app + the floor), simulator, PostgreSQL "
            + server_version(admin)
            + (", webhooks stored first and applied by a webhooks worker" if args.ingest == "queued" else ""),
            "load_generator": f"1 process, {load['threads']} threads, http.client, loopback",
            "load": load_average(),
            "rounds": load["rounds"],
            "note": "closed loop: latency includes waiting for one of the sync workers; sync workers "
            "close the connection after each response, so every request opens a new one",
            "data": data,
            "webhooks_seconds": hooks["seconds"],
            "inbound": _brief(hooks["inbound"]),
            "status": _brief(hooks["status"]),
            "webhooks_all": _brief(hooks["all"]),
            "floor_write": _brief(floor),
            "healthz": _brief(healthz),
            "ratio_webhooks_to_floor": round(hooks["all"]["per_second"] / floor["per_second"], 3),
            "ratio_webhooks_to_healthz": round(hooks["all"]["per_second"] / healthz["per_second"], 3),
            "server_cpu_ms_per_request": cpu_per_request,
            "ratio_by_server_cpu": round(cpu_per_request["floor"] / cpu_per_request["webhooks"], 3),
            # The same, by part: the web's workers, their PostgreSQL backends, and the backends of the
            # webhooks worker (applying what the web stored; counted in the server's CPU above).
            "server_cpu_ms_per_request_by_part": {
                name: {
                    part: round(1000 * value / max(1, served[name]), 3)
                    for part, value in load["server_cpu_seconds_by_part"][name].items()
                }
                for name in served
            },
            "per_round_requests_per_second": {
                "webhooks": hooks["per_round"],
                "floor": load["floor"]["per_round"],
                "healthz": load["healthz"]["per_round"],
                "ratio_webhooks_to_floor": [
                    round(w / f, 3)
                    for w, f in zip(hooks["per_round"], load["floor"]["per_round"], strict=True)
                ],
            },
            "non_2xx": {
                "inbound": hooks["inbound"]["non_2xx"],
                "status": hooks["status"]["non_2xx"],
                "floor": floor["non_2xx"],
                "healthz": healthz["non_2xx"],
            },
            "new_connections": load["new_connections"],
            "transport_errors": load["transport_errors"],
            "generator_cpu_seconds": load["generator_cpu_seconds"],
            "checks": checks,
            "unknown_senders_that_were_candidates": unknown_is_candidate,
            "retries_after_5xx": load["retries_after_5xx"],
            "server_errors": errors,
            "ingest": args.ingest,
            **queued_figures,
            "gunicorn_log": str(log_path) if keep_log else None,
        }
        print(json.dumps(results, indent=2, ensure_ascii=False))
        print(f"\ncommand: {COMMAND}  (BENCH_POSTGRES_URL={shlex.quote(server)})", file=sys.stderr)
    finally:
        if hooks_worker is not None:
            stop_gunicorn(hooks_worker)
        if gunicorn is not None:
            stop_gunicorn(gunicorn)
            if not keep_log and log_path.exists():
                log_text = log_path.read_text(errors="replace")
                keep_log = "Traceback" in log_text
        if app is not None:
            with app.app_context():
                db.engine.dispose()
        drop_database(admin, name)
        for leftover in ("plan.json", "load.json", "worker.log"):
            (work / leftover).unlink(missing_ok=True)
        if keep_log:
            print(f"gunicorn's log kept: {log_path}", file=sys.stderr)
        else:
            log_path.unlink(missing_ok=True)
            work.rmdir()


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} at the end"


def _brief(stats: dict[str, Any]) -> dict[str, Any]:
    keys = ("requests", "per_second", "p50_ms", "p95_ms", "p99_ms", "max_ms", "codes", "non_2xx")
    return {k: stats[k] for k in keys}


if __name__ == "__main__":
    main()
