"""Compose → queued: server time of the send request, p50/p95 over 1,000 sends, on SQLite and PostgreSQL;
and in the same run segment-counting throughput against Twilio's calculator under node.

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    npm install --prefix /tmp/segcalc sms-segments-calculator@1.3.0
    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/compose.py --sends 1000 --calculator-dir /tmp/segcalc

Each send is one POST /applications/<id>/messages through the app (form parsing, the checks,
placeholders, segments, routing, the credit debit, the INSERT and the COMMIT, and the rendered
thread), timed inside the process with no network. Dispatch is switched off so that the figure is
compose → queued only; the provider call is not part of it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
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

from bench import segments_bench  # noqa: E402
from webapp import create_app, demo  # noqa: E402
from webapp.billing import credits  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.messaging import dispatch  # noqa: E402
from webapp.models import Organization, User  # noqa: E402

TEXTS = [
    "Hi %FIRSTNAME%, thanks for applying to %JOBTITLE% at %COMPANY%. Can we call you tomorrow at 10?",
    "Hej %FIRSTNAME%! Vi vill gärna boka en intervju för %JOBTITLE%. Passar tisdag kl 14? Svara JA.",
    "Hi %FIRSTNAME% 👋 quick reminder about your interview for %JOBTITLE% tomorrow. See you! – %SENDERNAME%",
    "Price check: the relocation package is 2,500 € {net}. " + "Details follow in the email we sent. " * 4,
]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def compose_times(database_url: str, sends: int) -> dict[str, Any]:
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "bench-" + "x" * 40,
            "DISPATCH_MODE": "inline",
            # compose → queued: a text held to someone's morning would be stored scheduled instead, and
            # the thread each answer draws would grow with scheduled messages (README: benchmarks set it
            # off).
            "QUIET_HOURS": False,
        }
    )
    # compose → queued only: the provider call is not part of this figure.
    dispatch.deliver = lambda message_id: None  # type: ignore[assignment]
    with app.app_context():
        db.create_all()
        demo.seed(db.session)
        acme = db.session.scalar(sa.select(Organization).where(Organization.name == "Acme"))
        credits.top_up(db.session, acme, sends * 10, "benchmark")
        db.session.commit()
        recruiter = db.session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
        from webapp.accounts import access
        from webapp.messaging import optouts

        def textable(a) -> bool:  # type: ignore[no-untyped-def]
            mobile = a.candidate.mobile
            return bool(mobile) and not optouts.active(db.session, a.job.organization_id, mobile)

        # Every application the recruiter may text (the demo has an opted-out candidate).
        from webapp.messaging import conversations, subjects

        # The panel sends by conversation: each application's (started, empty, where there is none).
        visible = [a for a in db.session.scalars(access.visible_applications(recruiter)) if textable(a)]
        app_ids = [
            conversations.for_subject(db.session, subjects.of_application(a), create=True).id for a in visible
        ]
        db.session.commit()
        db.session.remove()

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1)
    client.post(
        "/login", data={"email": "recruiter@acme.example", "password": demo.PASSWORD, "csrf_token": token}
    )
    token = re.search(r'"X-CSRFToken": "([^"]+)"', client.get("/jobs").get_data(as_text=True)).group(1)

    def one(i: int) -> float:
        started = time.perf_counter()
        response = client.post(
            f"/conversations/{app_ids[i % len(app_ids)]}/messages",
            data={"channel": "sms", "body": TEXTS[i % len(TEXTS)]},
            headers={"HX-Request": "true", "X-CSRFToken": token},
        )
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return elapsed * 1000

    for i in range(20):  # warm-up: first conversations, caches
        one(i)
    times = [one(i) for i in range(sends)]
    with app.app_context():
        from webapp.models import Message

        stored = db.session.scalar(sa.select(sa.func.count()).select_from(Message))
        db.engine.dispose()
    return {
        "sends": sends,
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(_percentile(times, 95), 2),
        "max_ms": round(max(times), 2),
        "messages_stored": stored,
    }


def _postgres_database(url: str) -> tuple[str, sa.Engine]:
    base = sa.make_url(url).set(drivername="postgresql+psycopg")
    name = f"relay_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return base.set(database=name).render_as_string(hide_password=False), admin


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--calculator-dir", default=segments_bench.DEFAULT_CALCULATOR_DIR)
    parser.add_argument("--corpus", type=int, default=2000)
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = compose_times(f"sqlite:///{tmp}/bench.db", args.sends)
    pg = os.environ.get("BENCH_POSTGRES_URL")
    if pg:
        url, admin = _postgres_database(pg)
        try:
            results["postgresql"] = compose_times(url, args.sends)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'))
    else:
        results["postgresql"] = "skipped: set BENCH_POSTGRES_URL"
    corpus = segments_bench.make_corpus(args.corpus, seed=1)
    results["segments"] = segments_bench.run(corpus, calculator_dir=args.calculator_dir)
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
