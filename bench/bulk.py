"""Bulk messages at scale (issue 22 §1): a batch of 5,000 people.

Run by hand from the repository root on a quiet machine (numbers go to bench/README.md, never into a
test):

    .venv/bin/python bench/bulk.py --people 5000 --samples 200
    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bulk.py

A fresh database (SQLite in a temporary directory, or a new PostgreSQL database under
BENCH_POSTGRES_URL) gets the demo, then `--people` candidates applying to the recruiter's Backend
Engineer job (inserted in bulk; 2 % without a mobile, 2 % opted out, a tenth on Sydney mobiles so that
quiet hours move some to their morning), credits to cover them and the organisation's cap raised to
fit. Then, signed in as the recruiter through the test client (no network):

- **preview**: POST /jobs/<id>/message/preview with every id: the server time to the preview page;
- **enqueue all**: `bulk.start` and `bulk.run` with a hand-over that only records the ids (the way of
  each message up to its commit; the provider's side is bench/dispatch.py's): time and messages/s;
- **memory**: tracemalloc's peak over preview and run, and the process's maximum resident size;
- **poll**: the progress page's poll (GET /batches/<id> as htmx asks it) against the floor (a page of
  this app reading one row by its key, rendered in base.html), interleaved, p50 / p95.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.inbox import bench_app, percentile  # noqa: E402
from webapp import demo  # noqa: E402
from webapp.billing import credits  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.messaging import bulk  # noqa: E402
from webapp.models import Application, Candidate, Conversation, Job, OptOut, User  # noqa: E402


def database_url() -> tuple[str, str | None]:
    pg = os.environ.get("BENCH_POSTGRES_URL")
    if not pg:
        return f"sqlite:///{tempfile.mkdtemp(prefix='relay-bench-bulk-')}/relay.db", None
    os.environ.setdefault("TEST_POSTGRES_URL", pg)
    from tests.conftest import create_postgres_database

    name = create_postgres_database("relay_bench_bulk")
    return name, name


def populate(people: int, rng: random.Random) -> dict[str, int]:
    demo.seed(db.session)
    db.session.commit()
    recruiter = db.session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
    job = db.session.scalar(
        sa.select(Job).where(
            Job.title == "Backend Engineer", Job.organization_id == recruiter.organization_id
        )
    )
    org = recruiter.organization
    org.bulk_cap = max(org.bulk_cap, people)
    rows = []
    for i in range(people):
        roll = rng.random()
        mobile = None if roll < 0.02 else (f"+6141{i:07d}" if roll < 0.12 else f"+151222{i:05d}")
        rows.append(
            {
                "organization_id": org.id,
                "first_name": f"Bench{i}",
                "last_name": "Person",
                "email": f"bench{i}@example.test",
                "mobile": mobile,
            }
        )
    db.session.execute(sa.insert(Candidate), rows)
    candidate_ids = list(
        db.session.scalars(
            sa.select(Candidate.id).where(Candidate.first_name.like("Bench%")).order_by(Candidate.id)
        )
    )
    db.session.execute(
        sa.insert(Application), [{"job_id": job.id, "candidate_id": c, "stage": "new"} for c in candidate_ids]
    )
    opted = [r["mobile"] for r in rows if r["mobile"] and rng.random() < 0.02]
    if opted:
        db.session.execute(sa.insert(OptOut), [{"organization_id": org.id, "e164": m} for m in opted])
    credits.top_up(db.session, org, people * 3, "bench")
    db.session.commit()
    ids = list(
        db.session.scalars(
            sa.select(Application.id)
            .where(Application.candidate_id.in_(candidate_ids))
            .order_by(Application.id)
        )
    )
    any_conversation = db.session.scalar(sa.select(Conversation.id).order_by(Conversation.id).limit(1))
    return {"job": job.id, "user": recruiter.id, "ids": ids, "row": any_conversation}  # type: ignore[dict-item]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args()
    url, pg_name = database_url()
    app = bench_app(url)
    app.config.update(QUIET_HOURS=True)
    results: dict[str, object] = {"people": args.people, "database": "postgresql" if pg_name else "sqlite"}
    try:
        with app.app_context():
            db.create_all()
            info = populate(args.people, random.Random(args.seed))
            db.session.remove()
        app.config["BENCH_ROW"] = info["row"]
        client = app.test_client()
        token = re.search(
            r'name="csrf_token"[^>]*?value="([^"]+)"', client.get("/login").get_data(as_text=True)
        )
        login = {"email": "recruiter@acme.example", "password": demo.PASSWORD, "csrf_token": token.group(1)}  # type: ignore[union-attr]
        client.post("/login", data=login)
        jobs = client.get("/jobs").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', jobs) or re.search(
            r'"X-CSRFToken": "([^"]+)"', jobs
        )
        form = {
            "application": [str(i) for i in info["ids"]],  # type: ignore[union-attr]
            "channel": "sms",
            "body": "Hi %FIRSTNAME%, we’d like to talk about %JOBTITLE%.",
            "csrf_token": token.group(1),  # type: ignore[union-attr]
        }
        tracemalloc.start()
        started = time.perf_counter()
        page = client.post(f"/jobs/{info['job']}/message/preview", data=form)
        results["preview_seconds"] = round(time.perf_counter() - started, 2)
        assert page.status_code == 200, page.status_code
        summary = re.search(r"(\d+) will be sent", page.get_data(as_text=True))
        results["preview_says"] = summary.group(0) if summary else None
        with app.app_context():
            user = db.session.get(User, info["user"])
            handed: list[int] = []
            started = time.perf_counter()
            batch = bulk.start(db.session, user, "application", info["ids"], "sms", form["body"])  # type: ignore[arg-type]
            stored = time.perf_counter()
            composed = bulk.run(batch.id, handed_over=handed.append)
            took = time.perf_counter() - started
            results.update(
                start_seconds=round(stored - started, 2),
                enqueue_all_seconds=round(took, 2),
                composed=composed,
                handed_over=len(handed),
                messages_per_second=round(composed / took, 1) if took else None,
            )
            batch_id = batch.id
            db.session.remove()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results["tracemalloc_peak_mb"] = round(peak / 2**20, 1)
        results["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        timings: dict[str, list[float]] = {"floor": [], "poll": []}
        urls = {"floor": ("/bench/floor", {}), "poll": (f"/batches/{batch_id}", {"HX-Request": "true"})}
        for _ in range(args.samples):
            for name, (path, headers) in urls.items():
                t = time.perf_counter()
                answer = client.get(path, headers=headers)
                timings[name].append((time.perf_counter() - t) * 1000)
                assert answer.status_code == 200, (path, answer.status_code)
        for name, values in timings.items():
            results[f"{name}_p50_ms"] = round(percentile(values, 50), 2)
            results[f"{name}_p95_ms"] = round(percentile(values, 95), 2)
        results["poll_over_floor"] = round(results["poll_p50_ms"] / results["floor_p50_ms"], 2)  # type: ignore[operator]
    finally:
        if pg_name:
            from tests.conftest import drop_postgres_database

            drop_postgres_database(pg_name)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
