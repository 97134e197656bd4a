"""Signed-in users under a webhook storm (issue #19): `python -m webapp.serving` (gunicorn, an RQ worker,
the clock, as `make serve` runs them) on a fresh PostgreSQL database filled as bench/webhooks.py fills it,
then --users users, each signed in as a user of their own, looping over what the Inbox page asks for:

    GET /inbox                                   the page (list, filters, the poll's marker)
    GET /inbox/conversations/<id>  (htmx)        a conversation's pane, opened from the list
    GET /applications/<id>                       the application page of a conversation
    GET /inbox/changes?since=<marker>&until=…&c=…  (htmx)   the poll, as the page sends it

with --think seconds between requests. --poll page (the default) polls as the page does
(inbox/_poll.html, htmx's `every 2s`): every --poll-every seconds while the Inbox is open (from its load
until the user goes to the application page), each with the marker of the last answer, `until` (where
the loaded rows end: #inbox-until, in the sentinel of the next page) and `c` (the conversation open in
the pane); an answer that tells the open conversation it changed (HX-Trigger) makes the pane fetch its
thread, as the page does ("thread"). --poll once is the earlier loop: one poll after the application
page, with the marker of the Inbox page loaded three pauses before, and no `until`.

Phases alternate: users alone, then users while bench/webhooks_load.py posts signed inbound and status
webhooks from --storm-threads threads (its own /healthz phase afterwards is not measured), and again;
p50/p95 per request kind and errors for each.
The goal of issue #19: the users' p95 with the storm at most 2x without it.

    .venv/bin/python bench/load.py --seconds 20

BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres) names the server: a database
relay_bench_<random> is made there and dropped at the end. A private redis-server on a free port carries
the queue. Numbers go to bench/README.md, never into a test.
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench import webhooks as filler  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Application, Conversation, HiringTeamMember, User  # noqa: E402

COMMAND = ".venv/bin/python bench/load.py --seconds 20"
PASSWORD = "relay-demo"  # the demo users' (webapp/demo.py); the bench's users copy the recruiter's
CSRF_RE = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
POLL_RE = re.compile(r'id="inbox-poll"[^>]*?hx-get="([^"]+)"')
UNTIL_RE = re.compile(r'id="inbox-until" name="until" value="([^"]+)"')
THREAD_RE = re.compile(r'id="thread-\d+"[^>]*?hx-get="([^"]+)"')
KINDS = ("inbox", "pane", "application", "poll", "thread")


# --- the served set -----------------------------------------------------------------------------------


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = filler.free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        ["redis-server", *options, "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"redis://127.0.0.1:{port}/0"


def start_serving(
    database_url: str, redis_url: str, secret: str, port: int, log: Path
) -> subprocess.Popen[bytes]:
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.update(
        RELAY_ENV="production",
        PYTHONUNBUFFERED="1",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="bench-" + secrets.token_hex(24),
        VONAGE_SIGNATURE_SECRET=secret,
        RELAY_FILE_KEY=Fernet.generate_key().decode(),
        MESSAGING_PROVIDER="simulator",
        ALLOW_SIMULATOR_IN_PRODUCTION="1",
        HOST="127.0.0.1",
        PORT=str(port),
        SERVE_WORKERS="1",
    )
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "webapp.serving"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serving ended ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if call(port, "GET", "/readyz", timeout=2)[0] == 200:
                return process
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"serving was not ready within 120 s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # the supervisor stops gunicorn, the worker and the clock
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_times(serving: int, database: str) -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by each process of the served set (by role) and by the PostgreSQL
    backends of the bench's database: what a phase cost, less noisy than the users' times on a shared
    machine."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(fields[1]), command, (int(fields[11]) + int(fields[12])) / tick)
    ours = {serving}
    for _ in range(4):  # the supervisor, gunicorn's master, its workers
        ours |= {pid for pid, (parent, _, _) in found.items() if parent in ours}
    roles: dict[int, tuple[str, float]] = {}
    for pid, (_, command, seconds) in found.items():
        if pid in ours and pid != serving:
            role = (
                "web"
                if "gunicorn" in command
                else "webhooks"
                if "--queue webhooks" in command
                else "sends"
                if "--queue sends" in command
                else "clock"
                if " clock" in command
                else "other"
            )
            roles[pid] = (role, seconds)
        elif command.startswith("postgres:") and f" {database} " in command:
            roles[pid] = ("postgres", seconds)
    # Each backend named after the process at the other end of its connection (postgres:web, …).
    owners = _port_owners({pid: role for pid, (role, _) in roles.items() if role != "postgres"})
    for pid, (role, seconds) in list(roles.items()):
        port = re.search(r"\((\d+)\)", found[pid][1]) if role == "postgres" else None
        if port and int(port.group(1)) in owners:
            roles[pid] = (f"postgres:{owners[int(port.group(1))]}", seconds)
    return roles


def _port_owners(processes: dict[int, str]) -> dict[int, str]:
    """Local TCP port -> the role of the process holding that socket."""
    inodes: dict[str, str] = {}
    for pid, role in processes.items():
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = role
        except OSError:
            continue
    owners: dict[int, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                owners[int(fields[1].split(":")[1], 16)] = inodes[fields[9]]
    return owners


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    used: dict[str, float] = defaultdict(float)
    for pid, (role, seconds) in after.items():
        used[role] += seconds - before.get(pid, (role, 0.0))[1]
    return {role: round(seconds, 2) for role, seconds in sorted(used.items())}


# --- the data -----------------------------------------------------------------------------------------


def make_users(app: Any, count: int) -> list[str]:
    """`count` users of Acme who see what the demo recruiter sees (same roles, same hiring teams)."""
    with app.app_context():
        recruiter = db.session.scalar(sa.select(User).where(User.email == "recruiter@acme.example"))
        jobs = db.session.scalars(
            sa.select(HiringTeamMember.job_id).where(HiringTeamMember.user_id == recruiter.id)
        ).all()
        emails = []
        for n in range(count):
            user = User(
                email=f"load{n}@acme.example",
                name=f"Load User {n}",
                organization_id=recruiter.organization_id,
                password_hash=recruiter.password_hash,
            )
            user.roles = list(recruiter.roles)
            db.session.add(user)
            db.session.flush()
            db.session.add_all(HiringTeamMember(job_id=j, user_id=user.id, title="Recruiter") for j in jobs)
            emails.append(user.email)
        db.session.commit()
    return emails


def conversations(app: Any) -> list[tuple[int, int]]:
    """(conversation id, application id) of the conversations the demo recruiter (and so every user of
    the bench) may open: about an application of a job whose hiring team they are on."""
    with app.app_context():
        recruiter = db.session.scalar(sa.select(User.id).where(User.email == "recruiter@acme.example"))
        rows = db.session.execute(
            sa.select(Conversation.id, Conversation.application_id)
            .join(Application, Application.id == Conversation.application_id)
            .join(HiringTeamMember, HiringTeamMember.job_id == Application.job_id)
            .where(HiringTeamMember.user_id == recruiter)
        ).all()
    return [(r[0], r[1]) for r in rows]


# --- the users ----------------------------------------------------------------------------------------


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
    with_headers: bool = False,
) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        found = (response.status, response.read(), response.headers.get_all("Set-Cookie") or [])
        if with_headers:
            return (*found, {k.lower(): v for k, v in response.getheaders()})
        return found
    finally:
        conn.close()


class Phase:
    """What the main thread says is being measured now ("alone", "storm"), or None between phases."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.stopping = threading.Event()


class SignedInUser(threading.Thread):
    def __init__(
        self,
        port: int,
        email: str,
        pairs: list[tuple[int, int]],
        phase: Phase,
        think: float,
        seed: int,
        poll: str = "page",
        poll_every: float = 2.0,
    ):
        super().__init__(daemon=True)
        self.port, self.email, self.pairs, self.phase, self.think = port, email, pairs, phase, think
        self.poll, self.poll_every = poll, poll_every
        self.rng = random.Random(seed)
        self.cookies: dict[str, str] = {}
        self.samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.codes: dict[str, Counter[str]] = defaultdict(Counter)
        self.error: str | None = None
        self.open_page: dict[str, Any] = {}  # what the open Inbox page holds for its poll

    def request(
        self, path: str, htmx: bool = False, form: dict[str, str] | None = None
    ) -> tuple[int, str, dict[str, str]]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        if htmx:
            headers["HX-Request"] = "true"
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, data, set_cookies, answer_headers = call(
            self.port, "POST" if form else "GET", path, body, headers, with_headers=True
        )
        for line in set_cookies:  # Secure cookies in production: sent back here as a TLS proxy would
            for name, morsel in SimpleCookie(line).items():
                self.cookies[name] = morsel.value
        return status, data.decode("utf-8", "replace"), answer_headers

    def timed(self, kind: str, path: str, htmx: bool = False) -> tuple[int, str, dict[str, str]]:
        phase = self.phase.name
        started = time.monotonic()
        answer: dict[str, str] = {}
        try:
            status, text, answer = self.request(path, htmx)
            code = str(status)
        except OSError as error:
            status, text, code = 0, "", type(error).__name__
        seconds = time.monotonic() - started
        # Counted in the phase it began in: under load an answer may end in the next one.
        if phase is not None:
            self.samples[phase][kind].append(seconds)
            self.codes[phase][f"{kind} {code}"] += 1
        return status, text, answer

    def run(self) -> None:
        try:
            _, login, _ = self.request("/login")
            token = CSRF_RE.search(login).group(1)  # type: ignore[union-attr]
            status, _, _ = self.request(
                "/login", form={"email": self.email, "password": PASSWORD, "csrf_token": token}
            )
            if status not in (302, 303):
                raise RuntimeError(f"sign-in answered {status}")
            # Users not in step: each starts its loop at its own moment.
            self.phase.stopping.wait(self.rng.uniform(0, 4 * self.think))
            while not self.phase.stopping.is_set():
                conversation, application = self.rng.choice(self.pairs)
                if self.poll == "once":
                    self.loop_polling_once(conversation, application)
                else:
                    self.loop_as_the_page(conversation, application)
        except Exception as error:  # one user's failure is reported, not the end of the run
            self.error = f"{type(error).__name__}: {error}"

    def loop_polling_once(self, conversation: int, application: int) -> None:
        """The earlier loop: the poll after the application page, with the Inbox page's marker."""
        _, page, _ = self.timed("inbox", "/inbox")
        self.pause()
        self.timed("pane", f"/inbox/conversations/{conversation}", htmx=True)
        self.pause()
        self.timed("application", f"/applications/{application}")
        self.pause()
        poll = POLL_RE.search(page)
        if poll:
            self.timed("poll", html.unescape(poll.group(1)), htmx=True)
        self.pause()

    def loop_as_the_page(self, conversation: int, application: int) -> None:
        """The Inbox open (polling as its page does), a conversation opened in its pane (still polling),
        then its application page (the Inbox left: no poll)."""
        _, page, _ = self.timed("inbox", "/inbox")
        self.open_page = {"thread": None, "c": None, "next_poll": time.monotonic() + self.poll_every}
        self.learn(page)
        self.pause_on_inbox()
        _, pane, _ = self.timed("pane", f"/inbox/conversations/{conversation}", htmx=True)
        thread = THREAD_RE.search(pane)
        self.open_page.update(c=str(conversation), thread=html.unescape(thread.group(1)) if thread else None)
        self.pause_on_inbox()
        self.timed("application", f"/applications/{application}")
        self.pause()

    def learn(self, text: str) -> None:
        """What a list (the page, or a poll's answer) says the next poll sends: its marker and filters
        (the poll element's address), and how far the list is loaded (the next page's sentinel)."""
        poll = POLL_RE.search(text)
        if poll:
            self.open_page["poll"] = html.unescape(poll.group(1))
        if 'id="inbox-list"' in text:  # a whole list: its sentinel says where it ends, or it has none
            until = UNTIL_RE.search(text)
            self.open_page["until"] = until.group(1) if until else None

    def pause_on_inbox(self) -> None:
        """A pause with the Inbox open: its poll fires every poll_every seconds (htmx's `every`), the
        next one poll_every after the last began, or once its answer is in when that took longer; an
        answer with changes brings a new poll element, whose clock starts when it is put in."""
        ends = time.monotonic() + self.think * (0.5 + self.rng.random())
        while not self.phase.stopping.is_set():
            now = time.monotonic()
            if self.open_page["next_poll"] >= ends:
                self.phase.stopping.wait(max(0.0, ends - now))
                return
            self.phase.stopping.wait(max(0.0, self.open_page["next_poll"] - now))
            if self.phase.stopping.is_set() or not self.open_page.get("poll"):
                return
            self.poll_once()

    def poll_once(self) -> None:
        page = self.open_page
        started = time.monotonic()
        sent = {name: page[name] for name in ("c", "until") if page.get(name)}
        path = (
            page["poll"] + ("&" if "?" in page["poll"] else "?") + urlencode(sent) if sent else page["poll"]
        )
        status, text, answer = self.timed("poll", path, htmx=True)
        page["next_poll"] = started + self.poll_every
        if status != 200:
            return
        page["next_poll"] = time.monotonic() + self.poll_every
        self.learn(text)
        if answer.get("hx-trigger") == "conversation-changed" and page.get("thread"):
            status, text, _ = self.timed("thread", page["thread"], htmx=True)
            thread = THREAD_RE.search(text) if status == 200 else None
            if thread:
                page["thread"] = html.unescape(thread.group(1))

    def pause(self) -> None:
        self.phase.stopping.wait(self.think * (0.5 + self.rng.random()))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(users: list[SignedInUser], phase: str, seconds: float) -> dict[str, Any]:
    found: dict[str, Any] = {}
    every: list[float] = []
    codes: Counter[str] = Counter()
    for user in users:
        codes.update(user.codes.get(phase, Counter()))
    for kind in KINDS:
        values = [v for user in users for v in user.samples.get(phase, {}).get(kind, [])]
        every += values
        if values:
            found[kind] = {
                "n": len(values),
                "p50_ms": round(statistics.median(values) * 1000, 1),
                "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            }
    found["all"] = {
        "n": len(every),
        "per_second": round(len(every) / seconds, 1),
        "p50_ms": round(statistics.median(every) * 1000, 1) if every else None,
        "p95_ms": round(percentile(every, 0.95) * 1000, 1) if every else None,
    }
    found["answers"] = dict(sorted(codes.items()))
    found["errors"] = sum(n for key, n in codes.items() if not key.split()[1].startswith(("2", "3")))
    return found


# --- the run ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument(
        "--think", type=float, default=2.0, help="mean seconds between a user's requests (the poll's 2 s)"
    )
    parser.add_argument("--seconds", type=float, default=20, help="length of each measured phase")
    parser.add_argument("--rounds", type=int, default=2, help="alone/storm pairs, interleaved")
    parser.add_argument("--storm-threads", type=int, default=8)
    parser.add_argument(
        "--storm-rate",
        type=float,
        default=0,
        help="webhooks a second the storm posts at most (open loop); 0: as fast as answered",
    )
    parser.add_argument("--messages", type=int, default=30_000, help="messages stored before the run")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument(
        "--poll",
        choices=("page", "once"),
        default="page",
        help="page: as the Inbox page polls (every --poll-every s while open); once: the earlier loop",
    )
    parser.add_argument("--poll-every", type=float, default=2.0, help="the page's poll interval (s)")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("bench/load.py needs redis-server on PATH")

    server = os.environ.get("BENCH_POSTGRES_URL", filler.DEFAULT_POSTGRES)
    rng = random.Random(args.seed)
    secret = secrets.token_urlsafe(48)
    work = Path(tempfile.mkdtemp(prefix="relay_bench_load_"))
    name, admin, database_url = filler.create_database(server)
    redis, redis_url = start_redis(work)
    serving = None
    try:
        port = filler.free_port()
        # Serving first: its migrations make the schema, then the data goes in as bench/webhooks.py puts it.
        serving = start_serving(database_url, redis_url, secret, port, work / "serve.log")
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database_url,
                "SECRET_KEY": "bench-" + "x" * 40,
                "MESSAGING_PROVIDER": "simulator",
            }
        )
        data = filler.populate(app, args.messages, rng)
        emails = make_users(app, args.users)
        pairs = conversations(app)
        plan = filler.load_plan(app, rng)
        plan.pop("mobiles")
        with app.app_context():
            db.engine.dispose()

        phase = Phase()
        users = [
            SignedInUser(port, e, pairs, phase, args.think, args.seed + n, args.poll, args.poll_every)
            for n, e in enumerate(emails)
        ]
        for user in users:
            user.start()
        time.sleep(max(10.0, args.seconds / 2))  # sign-ins and a warm-up, not measured
        elapsed: dict[str, float] = defaultdict(float)
        storms: list[dict[str, Any]] = []
        load_before = os.getloadavg()
        cpu: dict[str, dict[str, float]] = {"alone": defaultdict(float), "storm": defaultdict(float)}

        def count_cpu(name: str, before: dict[int, tuple[str, float]]) -> None:
            for role, seconds in cpu_used(before, cpu_times(serving.pid, name_db)).items():
                cpu[name][role] += seconds

        name_db = name
        for round_ in range(args.rounds):
            phase.name = "alone"
            started = time.monotonic()
            cpu_start = cpu_times(serving.pid, name_db)
            time.sleep(args.seconds)
            phase.name = None
            count_cpu("alone", cpu_start)
            elapsed["alone"] += time.monotonic() - started

            plan_path, out_path = work / f"plan{round_}.json", work / f"storm{round_}.json"
            plan_path.write_text(
                json.dumps(
                    {
                        **plan,
                        "port": port,
                        "secret": secret,
                        "seconds": args.seconds,
                        "threads": args.storm_threads,
                        "rate": args.storm_rate,
                        "seed": args.seed + 100 + round_,
                        "inbound_share": 0.35,
                        "duplicate_share": 0.10,
                    }
                )
            )
            storm = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "bench" / "webhooks_load.py"),
                    "--plan",
                    str(plan_path),
                    "--out",
                    str(out_path),
                ]
            )
            time.sleep(0.5)  # its threads connected
            phase.name = "storm"
            started = time.monotonic()
            cpu_start = cpu_times(serving.pid, name_db)
            time.sleep(args.seconds - 0.5)
            phase.name = None
            count_cpu("storm", cpu_start)
            elapsed["storm"] += time.monotonic() - started
            storm.wait(args.seconds + 120)  # its /healthz phase: users run on, unmeasured
            result = json.loads(out_path.read_text())
            storms.append(
                {"webhooks": result["webhooks"]["all"], "retries_after_5xx": result["retries_after_5xx"]}
            )
        load_after = os.getloadavg()
        phase.stopping.set()
        for user in users:
            user.join(30)

        alone, storm_ = summary(users, "alone", elapsed["alone"]), summary(users, "storm", elapsed["storm"])
        ratio = {
            kind: round(storm_[kind]["p95_ms"] / alone[kind]["p95_ms"], 2)
            for kind in (*KINDS, "all")
            if alone.get(kind, {}).get("p95_ms") and storm_.get(kind, {}).get("p95_ms")
        }
        report = {
            "command": COMMAND,
            "users": args.users,
            "think_seconds": args.think,
            "seconds_per_phase": args.seconds,
            "rounds": args.rounds,
            "storm_threads": args.storm_threads,
            "storm_rate": args.storm_rate or "as fast as answered",
            "poll": args.poll,
            "poll_every_seconds": args.poll_every,
            "data": data,
            "web_workers": os.cpu_count() * 2 + 1
            if not os.environ.get("WEB_CONCURRENCY")
            else os.environ["WEB_CONCURRENCY"],
            "alone": alone,
            "storm": storm_,
            "p95_storm_over_alone": ratio,
            "goal_p95_at_most_2x": ratio.get("all", 99) <= 2,
            "storm_webhooks": storms,
            # CPU seconds per second of each phase, by process (PostgreSQL: the bench database's backends).
            "cpu_per_second": {
                name: {role: round(seconds / elapsed[name], 3) for role, seconds in sorted(cpu[name].items())}
                for name in ("alone", "storm")
            },
            "user_failures": [u.error for u in users if u.error][:5],
            "load_average_before_after": [round(x, 2) for x in load_before + load_after],
            "cpus": os.cpu_count(),
        }
        print(json.dumps(report, indent=2))
    finally:
        if serving is not None:
            stop(serving)
        redis.kill()
        redis.wait()
        filler.drop_database(admin, name)


if __name__ == "__main__":
    main()
