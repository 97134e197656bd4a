"""One gunicorn worker: time from start to the first page, and its memory after a warm-up (issue #19).

    .venv/bin/python bench/worker_memory.py                      # this checkout, SQLite in a temp dir
    .venv/bin/python bench/worker_memory.py --repo /tmp/before   # another checkout, same venv
    BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/worker_memory.py --postgres

A database with the demo data (`flask db upgrade` and `flask seed-demo`, commands every version has),
then `gunicorn -w 1 wsgi:app`. "first page" is the time from starting gunicorn until GET /login answers
200: gunicorn's own start, the worker's fork, `import wsgi` (the app, its blueprints) and the first
request. Then the warm-up, what a working worker has done: the recruiter signs in and opens the Inbox, a
conversation, the jobs, a job, an application page (which names the candidate's country); the
administrator opens Credits (names of countries); a signed Vonage inbound webhook (a reply) and a status
report; all of it --rounds times. The worker's resident memory (VmRSS, /proc) is read before and after.
"""

from __future__ import annotations

import argparse
import hashlib
import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import jwt
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SIGNATURE_SECRET = "bench-webhook-signature-secret-0123456789abcdef"


def engine(url: str, **options: object) -> sa.Engine:
    # psycopg 3 (the app's own _database_url does the same with DATABASE_URL).
    parsed = sa.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed, **options)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as response:
            assert response.status == 200, (path, response.status)
            return response.read().decode()

    def sign_in(self, email: str) -> str:
        page = self.get("/login")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
            r'name="csrf_token"[^>]*value="([^"]+)"', page
        )
        assert token, "no csrf_token on /login"
        data = urllib.parse.urlencode({"email": email, "password": "relay-demo", "csrf_token": token[1]})
        with self.opener.open(self.base + "/login", data=data.encode(), timeout=30) as response:
            assert response.status == 200, response.status
            return response.read().decode()


def webhook(base: str, kind: str, payload: dict) -> int:
    body = json.dumps(payload).encode()
    claims = {"iat": int(time.time()), "jti": str(uuid.uuid4()), "iss": "Vonage"}
    claims["payload_hash"] = hashlib.sha256(body).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Bearer " + jwt.encode(claims, SIGNATURE_SECRET, algorithm="HS256"),
    }
    request = urllib.request.Request(f"{base}/webhooks/vonage/{kind}", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def warm_up(base: str, db_url: str, rounds: int) -> None:
    database = engine(db_url)
    with database.connect() as conn:
        reply_to, reply_from = conn.execute(
            sa.text(
                "SELECT from_addr, to_addr FROM message WHERE direction = 'outbound' AND channel = 'sms'"
                " AND from_addr LIKE '+%' AND to_addr LIKE '+%' ORDER BY id LIMIT 1"
            )
        ).one()
        reported = conn.execute(
            sa.text("SELECT provider_id FROM message WHERE provider_id IS NOT NULL ORDER BY id LIMIT 1")
        ).scalar_one()
    database.dispose()
    recruiter, admin = Browser(base), Browser(base)
    recruiter.sign_in("recruiter@acme.example")
    admin.sign_in("admin@acme.example")
    for n in range(rounds):
        inbox = recruiter.get("/inbox")
        conversation = re.search(r"/inbox\?c=(\d+)", inbox)
        if conversation:
            recruiter.get(f"/inbox?c={conversation[1]}")
        jobs = recruiter.get("/jobs")
        job = re.search(r'href="(/jobs/\d+)"', jobs)
        assert job, "no job on /jobs"
        applications = recruiter.get(job[1])
        application = re.search(r'href="(/applications/\d+)', applications)
        assert application, "no application on a job's page"
        recruiter.get(application[1])
        admin.get("/admin/credits")
        reply = {
            "channel": "sms",
            "message_type": "text",
            "message_uuid": str(uuid.uuid4()),
            "to": reply_to.lstrip("+"),
            "from": reply_from.lstrip("+"),
            "timestamp": "2026-11-23T10:00:00Z",
            "text": f"Thanks, see you then ({n})",
            "sms": {"num_messages": "1"},
        }
        assert webhook(base, "inbound", reply) == 200
        report = {
            "message_uuid": reported,
            "to": reply_from.lstrip("+"),
            "from": reply_to.lstrip("+"),
            "timestamp": "2026-11-23T10:00:05Z",
            "status": "delivered",
            "channel": "sms",
        }
        assert webhook(base, "status", report) in (200, 204)


def first_page(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/login", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(ROOT), help="the checkout to serve (default: this one)")
    parser.add_argument("--postgres", action="store_true", help="a fresh database on BENCH_POSTGRES_URL")
    parser.add_argument("--port", type=int, default=5098)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    repo = Path(args.repo).resolve()
    work = Path(tempfile.mkdtemp(prefix="relay-mem-"))
    admin_url = ""
    if args.postgres:
        admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        name = f"relay_mem_{uuid.uuid4().hex[:8]}"
        admin = engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        db_url = str(sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False))
    else:
        db_url = f"sqlite:///{work}/relay.db"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "REDIS_URL", "FLASK_APP")}
    env.update(DATABASE_URL=db_url, VONAGE_SIGNATURE_SECRET=SIGNATURE_SECRET, PYTHONDONTWRITEBYTECODE="")
    flask = [str(VENV_BIN / "flask"), "--app", "wsgi"]
    for command in (["db", "upgrade"], ["seed-demo"]):
        subprocess.run(flask + command, cwd=repo, env=env, check=True, capture_output=True)

    base = f"http://127.0.0.1:{args.port}"
    gunicorn = [str(VENV_BIN / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{args.port}", "wsgi:app"]
    started = time.monotonic()
    server = subprocess.Popen(gunicorn, cwd=repo, env=env, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while not first_page(base):
            if server.poll() is not None:
                raise SystemExit("gunicorn stopped")
            time.sleep(0.01)
        first = time.monotonic() - started
        (worker,) = children(server.pid)
        after_first = rss_mb(worker)
        warm_up(base, db_url, args.rounds)
        warm = rss_mb(worker)
        master = rss_mb(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
        if args.postgres:
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    print(
        json.dumps(
            {
                "repo": str(repo),
                "database": "postgresql" if args.postgres else "sqlite",
                "start_to_first_page_s": round(first, 2),
                "worker_rss_after_first_page_mb": round(after_first, 1),
                "worker_rss_after_warm_up_mb": round(warm, 1),
                "master_rss_mb": round(master, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
