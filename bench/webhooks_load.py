"""The load generator of bench/webhooks.py: one process, N threads, one http.client connection each.

Started by bench/webhooks.py with a plan (JSON) and writes what it sent and what came back (JSON); not
meant to be run by hand. Phase 1 posts signed Vonage webhooks for `seconds`: inbound replies from the
candidates to the number their conversation uses, STOP/START, senders we do not know, each tenth
inbound posted a second time (half at once, racing the first, half a little later), and status reports
(submitted/delivered/read, a few rejected/undeliverable, duplicates, out of order) for the outbound
messages stored beforehand; a webhook answered 5xx is posted again a second later, as Vonage retries.
Then the floor (POST /bench/floor of bench/floor_wsgi.py: a webhook-sized body, one INSERT, one COMMIT)
and GET /healthz, the same way for `seconds` each; the three phases alternate `rounds` times.
"""

from __future__ import annotations

import argparse
import heapq
import http.client
import itertools
import json
import os
import random
import resource
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from webapp.providers.vonage.signature import sign  # noqa: E402

REPLIES = [
    "Yes, Tuesday at 10 works for me.",
    "Thanks! I'll send the documents tonight.",
    "Hi, could we move the call to Thursday?",
    "Sounds good 👍",
    "Ja, det passar bra. Tack!",
    "Merci, je suis disponible demain après-midi.",
    "Can you tell me more about the salary range?",
    "I have accepted another offer, sorry.",
]
STOPS = ["STOP", "Stop", "stop.", "UNSUBSCRIBE"]
STARTS = ["START", "Start", "UNSTOP"]
POOL = 64  # status sequences in flight at once: their events interleave between the threads
RETRIES = 4  # like Vonage, a webhook answered 5xx (or not at all) is posted again, 1 s later


@dataclass(order=True)
class Request:
    due: float
    seq: int
    kind: str = field(compare=False)  # inbound | status
    path: str = field(compare=False)
    body: bytes = field(compare=False)
    key: str = field(compare=False)  # message_uuid
    status: str | None = field(compare=False, default=None)
    attempt: int = field(compare=False, default=1)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Source:
    """Hands the threads their next webhook and keeps the log of what was answered (one lock)."""

    def __init__(self, plan: dict[str, Any], rng: random.Random) -> None:
        self.plan = plan
        self.rng = rng
        self.lock = threading.Lock()
        self.counter = itertools.count()
        self.later: list[Request] = []  # heap of second posts by due time
        self.targets = iter(plan["targets"])
        self.active: list[list[Any]] = []  # [target, remaining statuses]
        self.inbound_log: dict[str, dict[str, Any]] = {}
        self.status_log: dict[str, list[list[Any]]] = {}
        self.retries = 0

    def next(self) -> Request:
        with self.lock:
            now = time.monotonic()
            if self.later and self.later[0].due <= now:
                return heapq.heappop(self.later)
            if self.rng.random() < self.plan["inbound_share"]:
                return self._inbound(now)
            return self._status(now)

    def _inbound(self, now: float) -> Request:
        rng = self.rng
        r = rng.random()
        if r < 0.07:  # someone we never wrote to, on one of our numbers
            kind, channel = "unknown", "sms"
            sender = "+4917" + "".join(rng.choice("0123456789") for _ in range(9))
            recipient = rng.choice(self.plan["acme_numbers"])
            text = rng.choice(REPLIES)
            route = None
        else:
            route = rng.choice(self.plan["routes"])
            sender, recipient, channel = route["mobile"], route["number"], route["channel"]
            if r < 0.12:
                kind, text = "stop", rng.choice(STOPS)
            elif r < 0.15:
                kind, text = "start", rng.choice(STARTS)
            else:
                kind, text = "reply", rng.choice(REPLIES)
        message_uuid = str(uuid.uuid4())
        payload: dict[str, Any] = {
            "channel": channel,
            "message_type": "text",
            "message_uuid": message_uuid,
            "to": recipient.lstrip("+"),
            "from": sender.lstrip("+"),
            "timestamp": _now(),
            "text": text,
        }
        if channel == "sms":
            payload["sms"] = {"num_messages": "1"}
            payload["usage"] = {"currency": "EUR", "price": "0.0057"}
        else:
            payload["profile"] = {"name": "Candidate"}
        body = json.dumps(payload).encode()
        self.inbound_log[message_uuid] = {
            "kind": kind,
            "from": sender,
            "to": recipient,
            "channel": channel,
            "codes": [],
        }
        request = Request(now, next(self.counter), "inbound", "/webhooks/vonage/inbound", body, message_uuid)
        if rng.random() < self.plan["duplicate_share"]:
            # Vonage retries: the same body again, at once (racing the first) or a little later.
            delay = 0.0 if rng.random() < 0.5 else rng.uniform(0.2, 3.0)
            heapq.heappush(
                self.later,
                Request(now + delay, next(self.counter), "inbound", request.path, body, message_uuid),
            )
        return request

    def _sequence(self) -> list[str]:
        rng = self.rng
        r = rng.random()
        if r < 0.03:
            events = ["rejected"]
        elif r < 0.07:
            events = ["submitted", "undeliverable"]
        else:
            events = ["submitted", "delivered"]
        return events

    def _status(self, now: float) -> Request:
        rng = self.rng
        while len(self.active) < POOL:
            target = next(self.targets, None)
            if target is None:
                break
            events = self._sequence()
            if target["channel"] == "whatsapp" and events[-1] == "delivered":
                events.append("read")
            if len(events) > 1 and rng.random() < 0.25:
                ordered = list(events)
                while events == ordered:
                    rng.shuffle(events)  # out of order
            if rng.random() < 0.15:
                events.insert(rng.randrange(len(events) + 1), rng.choice(events))  # twice
            self.active.append([target, events])
        if not self.active or rng.random() < 0.03:
            # A receipt for a message that is not ours (or long gone): acknowledged and ignored.
            target = {
                "uuid": str(uuid.uuid4()),
                "id": None,
                "channel": "sms",
                "to": "+447400123456",
                "from": rng.choice(self.plan["acme_numbers"]),
            }
            value = "delivered"
        else:
            index = rng.randrange(len(self.active))
            target, events = self.active[index]
            value = events.pop(0)
            if not events:
                self.active[index] = self.active[-1]
                self.active.pop()
        payload: dict[str, Any] = {
            "message_uuid": target["uuid"],
            "to": target["to"].lstrip("+"),
            "from": target["from"].lstrip("+"),
            "timestamp": _now(),
            "status": value,
            "channel": target["channel"],
            "usage": {"currency": "EUR", "price": "0.0333"},
        }
        if target["id"] is not None:
            payload["client_ref"] = str(target["id"])
        if value in ("rejected", "undeliverable"):
            payload["error"] = {
                "type": "https://developer.vonage.com/api-errors/messages#1320",
                "title": 1320,
                "detail": "Message failed because the number is not reachable",
            }
        body = json.dumps(payload).encode()
        return Request(
            now, next(self.counter), "status", "/webhooks/vonage/status", body, target["uuid"], value
        )

    def answered(self, request: Request, code: int) -> None:
        with self.lock:
            if request.kind == "inbound":
                self.inbound_log[request.key]["codes"].append(code)
            else:
                self.status_log.setdefault(request.key, []).append([request.status, code])
            if (code == 0 or code >= 500) and request.attempt <= RETRIES:
                self.retries += 1
                retry = Request(
                    time.monotonic() + 1.0,
                    next(self.counter),
                    request.kind,
                    request.path,
                    request.body,
                    request.key,
                    request.status,
                    request.attempt + 1,
                )
                heapq.heappush(self.later, retry)


# Seconds between two requests of one thread when the plan gives a fixed rate (an open-loop storm, as
# Vonage's traffic is: it does not speed up when we answer faster); 0: as fast as answered.
INTERVAL = 0.0


class Worker(threading.Thread):
    def __init__(self, port: int, work: Any, deadline: float) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.deadline = deadline
        self.next_at = time.monotonic()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.times: dict[str, list[float]] = {}
        self.codes: dict[str, Counter[int]] = {}
        self.reconnects = 0
        self.errors: list[str] = []

    def call(self, kind: str, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> int:
        if INTERVAL:
            self.next_at = max(self.next_at + INTERVAL, time.monotonic() - INTERVAL)
            time.sleep(max(0.0, self.next_at - time.monotonic()))
        started = time.perf_counter()
        try:
            if self.conn.sock is None:
                self.reconnects += 1
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            answer = response.read()
            if response.status == 400 and os.environ.get("BENCH_DEBUG"):
                print("400", answer[:200], body[:300] if body else b"", file=sys.stderr, flush=True)
            if response.will_close:
                self.conn.close()  # gunicorn's sync workers close after each response
            code = response.status
        except (http.client.HTTPException, OSError) as exc:  # never retried: a POST could count twice
            self.conn.close()
            self.errors.append(f"{kind}: {exc!r}")
            code = 0
        self.times.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
        self.codes.setdefault(kind, Counter())[code] += 1
        return code

    def run(self) -> None:
        self.work(self)


def _stats(times: list[float], codes: Counter[int], seconds: float) -> dict[str, Any]:
    ordered = sorted(times)

    def pct(p: float) -> float:
        return round(ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))], 2)

    return {
        "requests": len(ordered),
        "per_second": round(len(ordered) / seconds, 1),
        "p50_ms": pct(50) if ordered else None,
        "p95_ms": pct(95) if ordered else None,
        "p99_ms": pct(99) if ordered else None,
        "max_ms": round(ordered[-1], 2) if ordered else None,
        "codes": {str(k): v for k, v in sorted(codes.items())},
        "non_2xx": sum(v for k, v in codes.items() if not 200 <= k < 300),
    }


class ServerCPU:
    """CPU seconds the server has used so far: gunicorn's workers (the children of its master) and the
    PostgreSQL backends of the bench's database (on this machine), those of the webhooks worker (the plan's
    `webhooks_worker_pid`, found by their client's port) apart. Under a machine shared with other work,
    CPU per request is the measure that the others' load disturbs least."""

    def __init__(self, plan: dict[str, Any]) -> None:
        import psycopg

        self.master = plan.get("gunicorn_pid")
        self.worker = plan.get("webhooks_worker_pid")
        self.conn = psycopg.connect(plan["libpq_url"], autocommit=True) if plan.get("libpq_url") else None
        self.tick = os.sysconf("SC_CLK_TCK")

    def _backends(self) -> list[tuple[int, int | None]]:
        if self.conn is None:
            return []
        return self.conn.execute(
            "SELECT pid, client_port FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()

    def _ports_of(self, pid: int) -> set[int]:
        """The local TCP ports of the process's sockets (its connections to PostgreSQL among them)."""
        inodes = set()
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            return set()
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    for line in f.readlines()[1:]:
                        parts = line.split()
                        if parts[9] in inodes:
                            ports.add(int(parts[1].rsplit(":", 1)[1], 16))
            except OSError:
                pass
        return ports

    def _stat(self, pid: int, parent: bool = False) -> float:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        if parent:
            return int(fields[1])  # ppid
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime

    def parts(self) -> dict[str, float]:
        """web (gunicorn's workers), postgres (the web's backends), postgres_webhooks_worker."""
        if self.master is None:
            return {"web": 0.0, "postgres": 0.0, "postgres_webhooks_worker": 0.0}
        web = sum(
            self._stat(int(entry))
            for entry in os.listdir("/proc")
            if entry.isdigit() and self._stat(int(entry), parent=True) == self.master
        )
        worker_ports = self._ports_of(self.worker) if self.worker else set()
        postgres = worker = 0.0
        for pid, port in self._backends():
            if port in worker_ports:
                worker += self._stat(pid)
            else:
                postgres += self._stat(pid)
        return {"web": web, "postgres": postgres, "postgres_webhooks_worker": worker}

    def seconds(self) -> float:
        return sum(self.parts().values())


def _phase(port: int, threads: int, seconds: float, work: Any) -> tuple[float, list[Worker]]:
    started = time.monotonic()
    workers = [Worker(port, work, started + seconds) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 60)
    elapsed = time.monotonic() - started
    for w in workers:
        w.conn.close()
    return elapsed, workers


def _merge(workers: list[Worker], kind: str) -> tuple[list[float], Counter[int]]:
    times: list[float] = []
    codes: Counter[int] = Counter()
    for w in workers:
        times += w.times.get(kind, [])
        codes.update(w.codes.get(kind, Counter()))
    return times, codes


def _floor_body(rng: random.Random, plan: dict[str, Any]) -> tuple[str, bytes]:
    """A body the size and shape of an inbound webhook, with a fresh message_uuid."""
    route = rng.choice(plan["routes"])
    message_uuid = str(uuid.uuid4())
    payload = {
        "channel": "sms",
        "message_type": "text",
        "message_uuid": message_uuid,
        "to": route["number"].lstrip("+"),
        "from": route["mobile"].lstrip("+"),
        "timestamp": _now(),
        "text": rng.choice(REPLIES),
        "sms": {"num_messages": "1"},
        "usage": {"currency": "EUR", "price": "0.0057"},
    }
    return message_uuid, json.dumps(payload).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    plan = json.loads(Path(args.plan).read_text())
    port, threads, seconds, secret = plan["port"], plan["threads"], plan["seconds"], plan["secret"]
    if plan.get("rate"):
        global INTERVAL
        INTERVAL = threads / float(plan["rate"])
    rounds = plan.get("rounds", 1)
    source = Source(plan, random.Random(plan["seed"]))
    floor_rng = random.Random(plan["seed"] + 1)
    floor_lock = threading.Lock()
    floor_log: dict[str, list[int]] = {}

    def webhooks(worker: Worker) -> None:
        while time.monotonic() < worker.deadline:
            request = source.next()
            headers = {
                "Content-Type": "application/json",
                "Authorization": "Bearer " + sign(request.body, secret),
            }
            code = worker.call(request.kind, "POST", request.path, request.body, headers)
            source.answered(request, code)

    def floor(worker: Worker) -> None:
        # The same headers as a webhook (a token is made and sent, not checked): the same client cost.
        while time.monotonic() < worker.deadline:
            with floor_lock:
                message_uuid, body = _floor_body(floor_rng, plan)
            headers = {"Content-Type": "application/json", "Authorization": "Bearer " + sign(body, secret)}
            code = worker.call("floor", "POST", "/bench/floor", body, headers)
            with floor_lock:
                floor_log.setdefault(message_uuid, []).append(code)

    def healthz(worker: Worker) -> None:
        while time.monotonic() < worker.deadline:
            worker.call("healthz", "GET", "/healthz", None, {})

    # Interleaved: webhooks, floor, /healthz, then again, `rounds` times, so that all three share the
    # machine's moods (others' work on the same two cores) alike.
    phases: dict[str, list[tuple[float, list[Worker]]]] = {"webhooks": [], "floor": [], "healthz": []}
    cpu: dict[str, float] = {name: 0.0 for name in phases}
    server = ServerCPU(plan)
    server_cpu: dict[str, float] = {name: 0.0 for name in phases}
    server_parts: dict[str, dict[str, float]] = {name: {} for name in phases}
    works = {"webhooks": webhooks, "floor": floor, "healthz": healthz}
    wanted = plan.get("phases", list(works))  # bench/webhooks_mixed.py runs the webhooks alone
    for _ in range(rounds):
        for name, work in ((name, works[name]) for name in wanted):
            before = resource.getrusage(resource.RUSAGE_SELF)
            server_before = server.parts()
            phases[name].append(_phase(port, threads, seconds, work))
            for part, value in server.parts().items():
                used = value - server_before[part]
                server_cpu[name] += used
                server_parts[name][part] = server_parts[name].get(part, 0.0) + used
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu[name] += after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

    def merged(name: str, kinds: tuple[str, ...]) -> dict[str, Any]:
        times: list[float] = []
        codes: Counter[int] = Counter()
        elapsed = 0.0
        for phase_seconds, workers in phases[name]:
            elapsed += phase_seconds
            for kind in kinds:
                t, c = _merge(workers, kind)
                times += t
                codes.update(c)
        return _stats(times, codes, elapsed or 1.0)

    def per_round(name: str, kinds: tuple[str, ...]) -> list[float]:
        rates = []
        for phase_seconds, workers in phases[name]:
            rates.append(round(sum(len(_merge(workers, k)[0]) for k in kinds) / phase_seconds, 1))
        return rates

    hook_workers = [w for _, ws in phases["webhooks"] for w in ws]
    other_workers = [w for name in ("floor", "healthz") for _, ws in phases[name] for w in ws]
    result = {
        "threads": threads,
        "rounds": rounds,
        "webhooks": {
            "seconds": round(sum(s for s, _ in phases["webhooks"]), 2),
            "all": merged("webhooks", ("inbound", "status")),
            "inbound": merged("webhooks", ("inbound",)),
            "status": merged("webhooks", ("status",)),
            "per_round": per_round("webhooks", ("inbound", "status")),
        },
        "floor": {
            "seconds": round(sum(s for s, _ in phases["floor"]), 2),
            "write": merged("floor", ("floor",)),
            "per_round": per_round("floor", ("floor",)),
        },
        "healthz": {
            "seconds": round(sum(s for s, _ in phases["healthz"]), 2),
            "healthz": merged("healthz", ("healthz",)),
            "per_round": per_round("healthz", ("healthz",)),
        },
        "new_connections": {
            "webhooks": sum(w.reconnects for w in hook_workers),
            "others": sum(w.reconnects for w in other_workers),
        },
        "transport_errors": [e for w in hook_workers + other_workers for e in w.errors][:20],
        "generator_cpu_seconds": {name: round(value, 2) for name, value in cpu.items()},
        "server_cpu_seconds": {name: round(value, 2) for name, value in server_cpu.items()},
        "server_cpu_seconds_by_part": {
            name: {part: round(value, 2) for part, value in parts.items()}
            for name, parts in server_parts.items()
        },
        "retries_after_5xx": source.retries,
        "unsent_second_posts_or_retries": len(source.later),
        "inbound_log": source.inbound_log,
        "status_log": source.status_log,
        "floor_log": floor_log,
    }
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
