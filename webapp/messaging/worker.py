"""The worker process (`flask --app wsgi worker`): several job loops in threads of one process, taking the
jobs that the web processes enqueue through RQ, with a loop of ours instead of RQ's worker.

A send spends most of its time waiting: for the provider's answer (tens of milliseconds to seconds), for its
turn in the pacing buckets, for PostgreSQL's commits. So a sending worker runs `threads` loops
(SEND_WORKER_THREADS, or `--threads`) and has that many sends in flight. Each loop runs in its own thread
with its own app context, hence its own database session (Flask-SQLAlchemy scopes sessions to the app
context); the database pool holds at least SEND_WORKER_THREADS connections (webapp.config), and a
provider's sender gives every thread a client of its own (its package says how).

The enqueue side is RQ's, unchanged: `Queue.enqueue` stores the job (a hash, rq:job:<id>) and pushes its
id on the queue's list (rq:queue:relay, rq:queue:relay-webhooks), so `rq info` counts what waits, and the
metrics read the lists' lengths. The taking side is not RQ's worker. RQ's worker keeps a job's whole life
in Redis — the started-job registry and an execution record while it runs, its status, the worker's
state and heartbeats around it, the result and the finished- or failed-job registry after, and 3–4 log
lines — about 48 Redis commands and 2.4–2.6 ms of the worker's CPU per job (profiled, a job that does
nothing; RQ 3.0), a fifth of what a worker spent on a whole send, and Redis's own CPU besides. Relay
needs none of it: the database is the record of every message and every stored webhook
(webapp.messaging.dispatch, ingest), and a job only says "look at this row now". A job lost — taken
by a worker killed before it ran it, or run and failed — costs a delay, not a message: the clock's
sweep hands a `queued` message back after SEND_REQUEUE_AFTER_SECONDS, settles a `sending` one after its
lease, and applies a stored webhook again (up to ingest.MAX_ATTEMPTS).
Nor do Relay's operators read RQ's registries: each send attempt is logged, as JSON, by Relay itself
(webapp.messaging.attempts), and what went wrong is on the message's row.

So a loop here takes a job in one round trip to Redis (`_TAKE`: the first id of the first non-empty
queue popped, the job's data read and its hash deleted, in one script) and runs it; when the queues are
empty it waits on them (BLPOP) for POLL_SECONDS at a time, then looks for a stop request. Per job that is
one round trip, no log line, and about 0.1 ms of the worker's CPU (the same no-op job, profiled).

What is checked: a job names the function it runs, and Redis could hold any name; a loop runs only the
two of Relay's (`_jobs`) and refuses any other loudly (an error line, the job dropped, nothing run). The
job's data is unpickled first, as RQ's worker does: Redis is trusted as much as it was with RQ.

What RQ's worker did that is given up:

- the job timeout. RQ's, in a thread, raises an exception into the job's thread after 180 s, which
  cannot cut a blocking call short (the provider's HTTP request, a database wait) and could land
  between a provider's answer and its record. A send has its own limits: VONAGE_TIMEOUT on the request,
  the pacing waits within the claim's lease.
- the started, finished and failed registries, results, and RQ's per-job log lines (see above).

What is kept: the worker registry, because `rq info` and dashboards list workers from it — one entry per
process (host.pid, with its queues), registered at start, its heartbeat refreshed every HEARTBEAT_SECONDS
by the main thread and its death registered at the end; its state reads "started" throughout (setting
"busy"/"idle" around every job would be two more round trips each).

Stopping: the first SIGTERM (or Ctrl-C) stops taking jobs; the sends in flight finish (their answers are
recorded), then the process exits with status 0. A second one stops at once (exit status 1): what was in
flight is `sending` in the database, and the sweep recovers it (webapp.messaging.dispatch: back to
`queued` if no try began, else `unknown` — never sent twice), as after SIGKILL. A loop that ends by
itself (not asked to, not a burst; a wrong type in Redis, say) stops the others and the process exits
with status 1, so that the supervisor starts a whole one again instead of a process sending with fewer
threads than it says. Redis away is not such an end: the loops (and a process starting) wait for it.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Flask
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.job import Job

log = logging.getLogger("relay.worker")

# How long an idle thread waits on Redis for a job before it looks for a stop request again.
POLL_SECONDS = 1
# The time between two heartbeats of the process's entry in RQ's worker registry: far below RQ's
# worker TTL (420 s), whose expiry marks the worker dead.
HEARTBEAT_SECONDS = 10.0


def _jobs() -> dict[str, Callable[..., Any]]:
    from webapp.messaging import bulk, dispatch, ingest

    return {
        "webapp.messaging.dispatch.deliver_job": dispatch.deliver_job,
        "webapp.messaging.ingest.process_job": ingest.process_job,
        "webapp.messaging.bulk.run_job": bulk.run_job,
    }


# One job taken: the id at the front of the first queue (KEYS, in order) that has one, popped; the job's
# data (RQ's `data` field) read and its hash deleted. The reply: {id, data}, or {id} when the hash was
# gone (expired, deleted), or nil when every queue is empty.
_TAKE = """
for _, key in ipairs(KEYS) do
  local id = redis.call('LPOP', key)
  if id then
    local job = ARGV[1] .. id
    local data = redis.call('HGET', job, 'data')
    redis.call('DEL', job)
    return {id, data}
  end
end
return nil
"""


class Loop:
    """One thread's job loop over `queues` (in order: a job is taken from the first that has one)."""

    def __init__(
        self,
        connection: Redis,
        queues: Sequence[str],
        stopping: threading.Event,
        jobs: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.connection = connection
        self.keys = [Queue.redis_queue_namespace_prefix + name for name in queues]
        self.stopping = stopping
        self.jobs = _jobs() if jobs is None else jobs
        self._take = connection.register_script(_TAKE)

    def work(self, burst: bool) -> None:
        """Take and run jobs until asked to stop (or, with `burst`, until the queues are empty). While
        Redis is away the loop waits for it (the sends wait in the database, and the sweep hands them
        over again once it is back): a worker that ended instead would be started again and again by
        the supervisor, which then stops everything, pages included."""
        away = 0.0
        while not self.stopping.is_set():
            try:
                taken = self._take(keys=self.keys, args=[Job.redis_job_namespace_prefix])
                if taken is None and not burst:
                    # Wait for one, then read and delete its hash (the idle path: two round trips).
                    popped = self.connection.blpop(self.keys, timeout=POLL_SECONDS)
                    taken = self._fetch(popped[1]) if popped is not None else None
            except REDIS_AWAY:
                if burst:
                    raise
                away = _waited(away, self.stopping)
                continue
            if away:
                log.info("Redis is back: taking jobs again")
                away = 0.0
            if taken is None:
                if burst:
                    return
                continue
            self.run(taken)

    def _fetch(self, job_id: bytes) -> list[Any]:
        """What _TAKE returns, for an id popped already."""
        pipe = self.connection.pipeline(transaction=True)
        job = Job.redis_job_namespace_prefix + job_id.decode()
        pipe.hget(job, "data")
        pipe.delete(job)
        data, _ = pipe.execute()
        return [job_id, data]

    def run(self, taken: list[Any]) -> None:
        """A job taken from Redis run, if it is one of ours; whatever it raises is logged, not raised."""
        job_id = taken[0].decode()
        if len(taken) < 2 or taken[1] is None:
            # Queued twice under one id (a retry, the sweep) and taken already, or expired: nothing to run.
            log.info("job %s: no longer in Redis (taken already, or expired); skipped", job_id)
            return
        try:
            # As RQ stores it (rq.job.Job.save): its default serializer's pickle, compressed.
            name, instance, args, kwargs = pickle.loads(zlib.decompress(taken[1]))
        except Exception:
            log.exception("job %s: unreadable; refused", job_id)
            return
        func = self.jobs.get(name) if isinstance(name, str) and instance is None else None
        if func is None:
            known = ", ".join(self.jobs)
            log.error("job %s: refused, %r is not one of Relay's jobs (%s); not run", job_id, name, known)
            return
        try:
            func(*args, **kwargs)
        except Exception:
            # The message (or stored webhook) is still in the database: the sweep comes back to it.
            log.exception("job %s (%s) failed; the sweep takes it up again", job_id, name)


REDIS_AWAY = (RedisConnectionError, RedisTimeoutError)
AWAY_PAUSE_MAX = 5.0  # seconds between two looks for Redis while it is away


def _waited(away: float, stopping: threading.Event) -> float:
    """One pause while Redis is away (said once, when it begins), each longer up to AWAY_PAUSE_MAX; the
    pause's length."""
    if not away:
        log.warning("Redis is away: waiting for it; the sends wait in the database")
    away = min(max(away * 2, 0.5), AWAY_PAUSE_MAX)
    stopping.wait(away)
    return away


def work_now(queues: Sequence[Queue]) -> None:
    """What `queues` hold, run in this thread (in its app context) until they are empty, as a loop of a
    worker runs it."""
    Loop(queues[0].connection, [q.name for q in queues], threading.Event()).work(burst=True)


def run(app: Flask, queues: Sequence[Queue], threads: int, burst: bool) -> int:
    """Work on `queues` with `threads` loops until stopped (or, with `burst`, until they are empty);
    the exit status."""
    connection = queues[0].connection
    names = [q.name for q in queues]
    ended_badly = threading.Event()
    stopping = threading.Event()
    loops = [Loop(connection, names, stopping) for _ in range(threads)]

    def loop(n: int, job_loop: Loop) -> None:
        try:
            with app.app_context():
                job_loop.work(burst)
        except BaseException:
            log.exception("worker thread %s failed", n)
            ended_badly.set()
            raise
        if not burst and not stopping.is_set():
            log.error("worker thread %s ended without being asked to", n)
            ended_badly.set()

    def stop(signum: int, _frame: Any) -> None:
        if stopping.is_set():
            name = signal.Signals(signum).name
            log.warning("second %s: stopping now; the sweep recovers the sends cut", name)
            os._exit(1)
        stopping.set()
        log.info("stopping: no new jobs; the ones in flight finish")

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    registered = Worker(list(queues), name=f"{socket.gethostname()}.{os.getpid()}", connection=connection)
    away = 0.0
    while not stopping.is_set():  # started while Redis is away: it waits, as its loops would
        try:
            registered.register_birth()
            registered.set_state("started")
            break
        except REDIS_AWAY:
            away = _waited(away, stopping)
    try:
        running = [
            threading.Thread(target=loop, args=(n, job_loop), name=f"jobs-{n}", daemon=True)
            for n, job_loop in enumerate(loops, start=1)
        ]
        for thread in running:
            thread.start()
        log.info("worker listening on %s with %s job loops (%s)", ", ".join(names), threads, registered.name)
        beat = time.monotonic()
        while any(t.is_alive() for t in running):
            if ended_badly.is_set():
                stopping.set()
            if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                beat = time.monotonic()
                try:
                    registered.heartbeat()
                except Exception:  # Redis away: the loops meet it too, and end the process
                    log.exception("could not refresh the worker's heartbeat in Redis")
            for thread in running:
                thread.join(timeout=0.2)  # short: this thread must come back to run the signal handlers
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            registered.register_death()
        except Exception:
            log.exception("could not register the worker's end in Redis")
    return 1 if ended_badly.is_set() else 0
