"""Signed-in users while a webhook storm runs (issue #19): what ingest costs the people using the app.

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    .venv/bin/python bench/webhooks_mixed.py --users 30 --workers 5 --seconds 15 --rounds 2

The same database as bench/webhooks.py (demo data and 100,000 messages, on a fresh PostgreSQL database
made and dropped here) served by `gunicorn -w 5` (sync workers). `--users` sessions of the demo's
recruiter, signed in through the login form, each loop in one thread of a process of their own: the
Inbox, a conversation pane (its thread), the application page, and the pane's poll with the version
just read (the unchanged poll, unless a webhook changed that conversation in between), with `--think`
seconds between requests. Rounds alternate: users alone for `--seconds`, then users while
bench/webhooks_load.py posts webhooks (the mix of bench/webhooks.py) with `--storm-threads`
connections as fast as they are answered. Per phase: the users' p50/p95 per page and all together,
requests/s, non-2xx; the webhooks' rate; afterwards every inbound webhook acknowledged is stored once.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAGES = ("inbox", "pane", "application", "poll")
COMMAND = ".venv/bin/python bench/webhooks_mixed.py --users 30 --workers 5 --seconds 15 --rounds 2"


# --- the users (a process of their own: `webhooks_mixed.py users --plan … --out …`) -------------------


class Browser:
    """One signed-in user: an HTTP connection and its cookies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            text = response.read().decode(errors="replace")
        except (http.client.HTTPException, OSError):
            self.conn.close()
            return 0, ""
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]
        if response.will_close:
            self.conn.close()
        return response.status, text

    def sign_in(self, email: str, password: str) -> None:
        status, html = self.request("GET", "/login")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
        if status != 200 or token is None:
            raise RuntimeError(f"no login form ({status})")
        form = urlencode({"csrf_token": token.group(1), "email": email, "password": password}).encode()
        status, _ = self.request(
            "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 302:
            raise RuntimeError(f"sign-in answered {status}")


def run_users(plan: dict[str, Any]) -> dict[str, Any]:
    browsers = []
    for _ in range(plan["users"]):
        browser = Browser(plan["port"])
        browser.sign_in(plan["email"], plan["password"])
        browsers.append(browser)
    times: dict[str, list[float]] = {page: [] for page in PAGES}
    codes: dict[str, Counter[int]] = {page: Counter() for page in PAGES}
    lock = threading.Lock()
    start = time.monotonic() + 0.2
    deadline = start + plan["seconds"]

    def loop(browser: Browser, rng: random.Random) -> None:
        time.sleep(max(0.0, start - time.monotonic()) + rng.uniform(0, plan["think"]))
        while time.monotonic() < deadline:
            target = rng.choice(plan["pages"])
            version = None
            for page in PAGES:
                if page == "inbox":
                    path, headers = "/inbox", {}
                elif page == "pane":  # as the Inbox loads it into its pane (htmx)
                    path = f"/conversations/{target['conversation']}?tab=sms"
                    headers = {"HX-Request": "true"}
                elif page == "application":
                    path, headers = f"/applications/{target['application']}", {}
                else:
                    if version is None:
                        continue
                    query = urlencode({"tab": "sms", "since": version})
                    path = f"/conversations/{target['conversation']}/thread?{query}"
                    headers = {"HX-Request": "true"}
                began = time.perf_counter()
                status, html = browser.request("GET", path, None, headers)
                took = (time.perf_counter() - began) * 1000
                if page == "pane":
                    found = re.search(r'data-version="([^"]+)"', html)
                    version = found.group(1) if found else None
                with lock:
                    times[page].append(took)
                    codes[page][status] += 1
                time.sleep(plan["think"])
                if time.monotonic() >= deadline:
                    break

    threads = [
        threading.Thread(target=loop, args=(b, random.Random(i)), daemon=True) for i, b in enumerate(browsers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(plan["seconds"] + 120)
    seconds = time.monotonic() - start
    result: dict[str, Any] = {"seconds": round(seconds, 2)}
    everything: list[float] = []
    for page in PAGES:
        result[page] = _stats(times[page], codes[page], seconds)
        everything += times[page]
    result["all"] = _stats(everything, sum(codes.values(), Counter()), seconds)
    return result


def _stats(times: list[float], codes: Counter[int], seconds: float) -> dict[str, Any]:
    ordered = sorted(times)

    def pct(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))], 1)

    return {
        "requests": len(ordered),
        "per_second": round(len(ordered) / seconds, 1),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "non_2xx": sum(v for k, v in codes.items() if not 200 <= k < 300),
        "codes": {str(k): v for k, v in sorted(codes.items())},
    }


# --- the run ------------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "users":
        parser = argparse.ArgumentParser()
        parser.add_argument("users")
        parser.add_argument("--plan", required=True)
        parser.add_argument("--out", required=True)
        args = parser.parse_args()
        result = run_users(json.loads(Path(args.plan).read_text()))
        Path(args.out).write_text(json.dumps(result))
        return

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--storm-threads", type=int, default=12)
    parser.add_argument(
        "--webhook-workers",
        type=int,
        default=0,
        help="serve the webhooks from a gunicorn of their own with this many workers (0: the same one)",
    )
    parser.add_argument(
        "--webhook-nice", type=int, default=0, help="that gunicorn's CPU priority (os.nice), e.g. 10"
    )
    parser.add_argument("--think", type=float, default=0.1, help="seconds between a user's requests")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()

    import sqlalchemy as sa

    from bench import webhooks as wb
    from webapp import create_app, demo
    from webapp.accounts import access
    from webapp.extensions import db
    from webapp.models import User

    signal.signal(signal.SIGTERM, wb._on_sigterm)
    server = os.environ.get("BENCH_POSTGRES_URL", wb.DEFAULT_POSTGRES)
    rng = random.Random(args.seed)
    secret = secrets.token_urlsafe(48)
    work = Path(tempfile.mkdtemp(prefix="relay_bench_mixed_"))
    log_path = work / "gunicorn.log"
    name, admin, database_url = wb.create_database(server)
    gunicorn = hooks_gunicorn = None
    app = None
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench-" + "x" * 40})
        data = wb.populate(app, args.messages, rng)
        plan = wb.load_plan(app, rng)
        plan["messages_before"] = data["messages_stored_before"]
        plan.pop("mobiles")
        with app.app_context():
            recruiter = db.session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
            visible = access.visible_conversations(recruiter).subquery()
            rows = db.session.execute(
                sa.select(visible.c.id, visible.c.application_id)
                .where(visible.c.application_id.is_not(None))
                .order_by(visible.c.last_message_at.desc())
                .limit(20)
            ).all()
        pages = [{"conversation": c, "application": a} for c, a in rows]
        port = wb.free_port()
        gunicorn = wb.start_gunicorn(database_url, secret, port, log_path, args.workers)
        storm_port = port
        if args.webhook_workers:
            # As a deployment would route /webhooks/ to processes of their own: the storm then queues
            # in front of those, not in front of the pages' workers (the CPU is still shared).
            storm_port = wb.free_port()
            hooks_gunicorn = wb.start_gunicorn(
                database_url,
                secret,
                storm_port,
                work / "gunicorn-webhooks.log",
                args.webhook_workers,
                nice=args.webhook_nice,
            )
        users_plan = {
            "port": port,
            "users": args.users,
            "seconds": args.seconds,
            "think": args.think,
            "pages": pages,
            "email": "recruiter@acme.example",
            "password": demo.PASSWORD,
        }
        storm_plan = {
            **plan,
            "port": storm_port,
            "secret": secret,
            "seconds": args.seconds,
            "rounds": 1,
            "phases": ["webhooks"],
            "threads": args.storm_threads,
            "inbound_share": 0.35,
            "duplicate_share": 0.10,
        }
        phases: dict[str, list[dict[str, Any]]] = {"users alone": [], "users with the storm": []}
        storms: list[dict[str, Any]] = []
        inbound_log: dict[str, Any] = {}
        status_log: dict[str, Any] = {}
        # Warm-up (not counted): every worker has its statements compiled and its connections open.
        warm_path, warm_out = work / "warm.json", work / "warm_out.json"
        warm_path.write_text(json.dumps({**users_plan, "seconds": 5}))
        subprocess.run(
            [sys.executable, __file__, "users", "--plan", str(warm_path), "--out", str(warm_out)],
            check=True,
            timeout=300,
        )
        for round_number in range(args.rounds):
            for label in phases:
                users_path, users_out = work / "users.json", work / "users_out.json"
                users_path.write_text(json.dumps(users_plan))
                users = subprocess.Popen(
                    [sys.executable, __file__, "users", "--plan", str(users_path), "--out", str(users_out)]
                )
                storm = None
                if label == "users with the storm":
                    storm_plan["seed"] = args.seed + 10 + round_number
                    storm_path, storm_out = work / "storm.json", work / "storm_out.json"
                    storm_path.write_text(json.dumps(storm_plan))
                    time.sleep(0.5 * args.users / 30 + 0.5)  # the users sign in first
                    storm = subprocess.Popen(
                        [
                            sys.executable,
                            str(ROOT / "bench" / "webhooks_load.py"),
                            "--plan",
                            str(storm_path),
                            "--out",
                            str(storm_out),
                        ]
                    )
                users.wait(args.seconds + 300)
                phases[label].append(json.loads(users_out.read_text()))
                if storm is not None:
                    storm.wait(args.seconds + 300)
                    result = json.loads(storm_out.read_text())
                    storms.append(result["webhooks"]["all"])
                    inbound_log.update(result["inbound_log"])
                    for key, events in result["status_log"].items():
                        status_log.setdefault(key, []).extend(events)
        wb.stop_gunicorn(gunicorn)
        if hooks_gunicorn is not None:
            wb.stop_gunicorn(hooks_gunicorn)
        checks = wb.verify(app, plan, {"inbound_log": inbound_log, "status_log": status_log, "floor_log": {}})

        def combined(runs: list[dict[str, Any]], page: str) -> dict[str, Any]:
            return {
                "p50_ms": [r[page]["p50_ms"] for r in runs],
                "p95_ms": [r[page]["p95_ms"] for r in runs],
                "per_second": [r[page]["per_second"] for r in runs],
                "non_2xx": sum(r[page]["non_2xx"] for r in runs),
                "codes": [r[page]["codes"] for r in runs],
            }

        alone, stormed = phases["users alone"], phases["users with the storm"]
        results = {
            "command": COMMAND,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "server": f"gunicorn -w {args.workers} (sync workers) bench.floor_wsgi:app, PostgreSQL "
            + wb.server_version(admin),
            "load": wb.load_average(),
            "users": args.users,
            "think_seconds": args.think,
            "storm_threads": args.storm_threads,
            "webhooks_served_by": f"gunicorn -w {args.webhook_workers} of their own, nice {args.webhook_nice}"
            if args.webhook_workers
            else "the same gunicorn as the pages",
            "users_alone": {page: combined(alone, page) for page in (*PAGES, "all")},
            "users_with_storm": {page: combined(stormed, page) for page in (*PAGES, "all")},
            "p95_with_storm_over_without": [
                round(s["all"]["p95_ms"] / a["all"]["p95_ms"], 2) for a, s in zip(alone, stormed, strict=True)
            ],
            "p50_with_storm_over_without": [
                round(s["all"]["p50_ms"] / a["all"]["p50_ms"], 2) for a, s in zip(alone, stormed, strict=True)
            ],
            "throughput_with_storm_over_without": [
                round(s["all"]["per_second"] / a["all"]["per_second"], 2)
                for a, s in zip(alone, stormed, strict=True)
            ],
            "storm_webhooks": [
                {k: s[k] for k in ("requests", "per_second", "p50_ms", "p95_ms", "non_2xx")} for s in storms
            ],
            "checks": {"inbound": checks["inbound"], "status": checks["status"]},
        }
        print(json.dumps(results, indent=2, ensure_ascii=False))
    finally:
        for process in (gunicorn, hooks_gunicorn):
            if process is not None:
                wb.stop_gunicorn(process)
        if app is not None:
            with app.app_context():
                db.engine.dispose()
        wb.drop_database(admin, name)
        logs = "".join(p.read_text(errors="replace") for p in work.glob("gunicorn*.log"))
        if "Traceback" in logs:
            print(f"gunicorn's logs kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
