"""Bulk messages at scale (issue 22 §1): a batch of 5,000 people.

Run by hand from the repository root on a quiet machine (numbers go to bench/README.md, never into a
test):

    .venv/bin/python bench/bulk.py --people 5000 --samples 200
    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bulk.py

A fresh database (SQLite in a temporary directory, or a new PostgreSQL database under
BENCH_POSTGRES_URL) gets the demo, then `--people` candidates applying to the recruiter's Backend
Engineer job (inserted in bulk; 2 % without a mobile, 2 % opted out, a tenth on Sydney mobiles so that
quiet hours move some to their morning, the rest on German ones; the organisation texts any day of the
week, so that in Berlin's daytime those go now), credits to cover them and the organisation's cap raised to
fit. Then, signed in as the recruiter through the test client (no network):

- **preview**: POST /jobs/<id>/message/preview with every id (every person checked, the draft stored)
  and the GET of the draft's page it redirects to: the server time to the preview page; then a second
  page of the preview and a search (read from the stored draft);
- **send**: POST /batches/<id>/send (the draft becomes a running batch), with DISPATCH_MODE=thread
  off: the batch is then run here by `bulk.run` with a hand-over that only records the ids (the way of
  each message up to its commit; the provider's side is bench/dispatch.py's): time and messages/s;
- **memory**: the process's maximum resident size; with `--tracemalloc`, tracemalloc's peak too (it
  slows Python down several times: the times of such a run are not the times);
- **poll**: the progress page's poll (GET /batches/<id> as htmx asks it, with the stamp of what it shows:
  204) against the floor (a page of this app reading one row by its key, rendered in base.html), and
  the same poll without the stamp (200, drawn), interleaved, p50 / p95.
"""

from __future__ import annotations

import argparse
import json
import logging
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
from webapp.models import Application, Candidate, Conversation, Job, OptOut, SendingNumber, User  # noqa: E402


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
    org.send_days = "1234567"  # any day: whatever day the bench runs, only the clock's hours move people
    # A German pool that the numbers' daily guidance (webapp.numbers.health: 1,000 SMS a number) lets
    # send this many in a day, as a customer texting thousands there would have: with the demo's one
    # German number, everyone past its thousandth is refused ("every DE number is paused").
    extra = -(-people // 1000)
    db.session.add_all(
        SendingNumber(organization_id=org.id, e164=f"+4915123456{900 + n}", country="DE", sms=True)
        for n in range(extra)
    )
    rows = []
    for i in range(people):
        roll = rng.random()
        mobile = None if roll < 0.02 else (f"+6141{i:07d}" if roll < 0.12 else f"+4915{i:08d}")
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
    parser.add_argument("--tracemalloc", action="store_true", help="measure Python's allocations too")
    args = parser.parse_args()
    logging.getLogger("relay.bulk").setLevel(logging.CRITICAL)  # launch's refused hand-over (see send)
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
        if args.tracemalloc:
            tracemalloc.start()
        started = time.perf_counter()
        drafted = client.post(f"/jobs/{info['job']}/message/preview", data=form)
        assert drafted.status_code == 303, drafted.status_code
        page = client.get(drafted.headers["Location"])
        results["preview_seconds"] = round(time.perf_counter() - started, 2)
        assert page.status_code == 200, page.status_code
        summary = re.search(r"(\d+) will be sent", page.get_data(as_text=True))
        results["preview_says"] = summary.group(0) if summary else None
        batch_url = drafted.headers["Location"]
        for name, query in (("preview_page_2", {"page": "2"}), ("preview_search", {"q": "bench12"})):
            t = time.perf_counter()
            assert (
                client.get(batch_url, query_string=query, headers={"HX-Request": "true"}).status_code == 200
            )
            results[f"{name}_ms"] = round((time.perf_counter() - t) * 1000, 1)
        batch_id = int(batch_url.rsplit("/", 1)[1])
        app.config["DISPATCH_MODE"] = "rq"  # launch enqueues on a Redis nobody reads: run here instead
        app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
        started = time.perf_counter()
        sent = client.post(batch_url + "/send", data={"csrf_token": form["csrf_token"]})
        results["send_seconds"] = round(time.perf_counter() - started, 2)
        assert sent.status_code == 303, sent.status_code
        with app.app_context():
            handed: list[int] = []
            started = time.perf_counter()
            composed = bulk.run(batch_id, handed_over=handed.append)
            took = time.perf_counter() - started
            results.update(
                enqueue_all_seconds=round(took, 2),
                composed=composed,
                handed_over=len(handed),
                messages_per_second=round(composed / took, 1) if took else None,
            )
            db.session.remove()
        if args.tracemalloc:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            results["tracemalloc_peak_mb"] = round(peak / 2**20, 1)
        results["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        with app.app_context():
            from webapp.models import Batch

            stamp = bulk.progress(db.session, db.session.get(Batch, batch_id)).stamp
            db.session.remove()
        timings: dict[str, list[float]] = {"floor": [], "poll": [], "poll_drawn": []}
        hx = {"HX-Request": "true"}
        urls = {
            "floor": ("/bench/floor", {}),
            "poll": (f"/batches/{batch_id}?seen={stamp}", hx),
            "poll_drawn": (f"/batches/{batch_id}", hx),
        }
        for _ in range(args.samples):
            for name, (path, headers) in urls.items():
                t = time.perf_counter()
                answer = client.get(path, headers=headers)
                timings[name].append((time.perf_counter() - t) * 1000)
                assert answer.status_code in (200, 204), (path, answer.status_code)
        for name, values in timings.items():
            results[f"{name}_p50_ms"] = round(percentile(values, 50), 2)
            results[f"{name}_p95_ms"] = round(percentile(values, 95), 2)
        for name in ("poll", "poll_drawn"):
            results[f"{name}_over_floor"] = round(results[f"{name}_p50_ms"] / results["floor_p50_ms"], 2)  # type: ignore[operator]
    finally:
        if pg_name:
            from tests.conftest import drop_postgres_database

            drop_postgres_database(pg_name)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
