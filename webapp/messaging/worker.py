"""The RQ worker process (`flask --app wsgi worker`): several job loops in threads of one process.

A send spends most of its time waiting: for the provider's answer (tens of milliseconds to seconds), for its
turn in the pacing buckets, for PostgreSQL's commits. One job at a time per process (RQ's SimpleWorker)
keeps a process idle through all of that, so a sending worker runs `threads` loops (SEND_WORKER_THREADS,
or `--threads`) and has that many sends in flight. Each loop runs in its own thread with its own app
context, hence its own database session (Flask-SQLAlchemy scopes sessions to the app context); the
database pool holds at least SEND_WORKER_THREADS connections (webapp.config), and a provider's sender
gives every thread a client of its own (its package says how).

Each loop is RQ's own SimpleWorker (`ThreadWorker`, a unique name each) rather than a loop of ours over
the queue: RQ's worker keeps its bookkeeping right — the job moved to the started-job registry while it
runs and to the failed-job registry when it raises, the worker registry and heartbeats that `rq info`
shows and that RQ's clean-up uses to find jobs of a dead worker, results and their TTLs — all of which a
loop of ours would have to redo. What a thread cannot do as RQ's worker does is changed, and only that:

- signal handlers: Python lets only the main thread install them. The process's own handlers (`run`)
  ask every loop to stop after the job it holds; the threads install none.
- the job timeout: RQ's default raises from SIGALRM, a signal again; a timer that raises in the job's
  thread (RQ's TimerDeathPenalty) does the same per thread.
- waiting for a job: RQ blocks on Redis for minutes, and only a signal in the main thread cuts that
  short. A thread waits one second at a time and looks for a stop request in between.

And one thing for its cost: RQ refreshes the worker's heartbeat (its key's expiry, three round trips to
Redis) three times around every job (a fifth of RQ's own CPU per job, profiled), for a key that lives
WORKER_TTL (420 s); a thread's worker refreshes it at most every HEARTBEAT_SECONDS. (The heartbeats
RQ sends with a job's own bookkeeping, in one pipeline, are left alone.)

Stopping: the first SIGTERM (or Ctrl-C) stops taking jobs; the sends in flight finish (their answers are
recorded), then the process exits with status 0, as a one-job worker did. A second one stops at once
(exit status 1): what was in flight is `sending` in the database, and the sweep recovers it
(webapp.messaging.dispatch: back to `queued` if no try began, else `unknown` — never sent twice), as
after SIGKILL. A loop that ends by itself (not asked to, not a burst) stops the others and the process
exits with status 1, so that the supervisor starts a whole one again instead of a process sending with
fewer threads than it says.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Sequence
from typing import Any

from flask import Flask
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.logutils import setup_loghandlers
from rq.timeouts import TimerDeathPenalty
from rq.utils import now

log = logging.getLogger("relay.worker")

# How long an idle thread waits on Redis for a job before it looks for a stop request again.
POLL_SECONDS = 1
# The least time between two heartbeats of a thread's worker of its own (not part of a job's pipeline):
# far below RQ's worker TTL, whose expiry would mark the worker dead.
HEARTBEAT_SECONDS = 10.0


class ThreadWorker(SimpleWorker):
    """RQ's SimpleWorker, for a thread that is not the main one (see the module's docstring)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass  # only the main thread may; its handlers call stop_after_job()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        recent = (
            self.last_heartbeat is not None
            and (now() - self.last_heartbeat).total_seconds() < HEARTBEAT_SECONDS
        )
        if timeout is None and pipeline is None and recent:
            return
        super().heartbeat(timeout, pipeline)

    def stop_after_job(self) -> None:
        """Take no new job; the job under way finishes."""
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Any, Queue] | None:
        if timeout is None:  # a burst: one look, no wait
            return super().dequeue_job_and_maintain_ttl(None, max_idle_time)
        while not self._stop_requested:
            # Idle for POLL_SECONDS, RQ's loop returns None instead of waiting on.
            found = super().dequeue_job_and_maintain_ttl(POLL_SECONDS, POLL_SECONDS)
            if found is not None:
                return found
        raise StopRequested  # RQ's loop ends on it, as on its own stop request


def run(app: Flask, queues: Sequence[Queue], threads: int, burst: bool) -> int:
    """Work on `queues` with `threads` loops until stopped (or, with `burst`, until they are empty);
    the exit status. One thread: RQ's SimpleWorker in this thread, with its own signal handling."""
    if threads <= 1:
        SimpleWorker(list(queues), connection=queues[0].connection).work(burst=burst, with_scheduler=False)
        return 0
    # Once here, before the threads: RQ sets its log handlers up in each worker's start, and two
    # threads doing it at once could both add them (every line printed twice).
    setup_loghandlers(name="rq.worker")
    setup_loghandlers(name="rq.job")
    prefix = f"{socket.gethostname()}.{os.getpid()}"
    workers = [
        ThreadWorker(
            # Queue objects of its own: a worker reorders its list of queues as it takes jobs.
            [Queue(q.name, connection=q.connection) for q in queues],
            name=f"{prefix}.{n}",
            connection=queues[0].connection,
        )
        for n in range(1, threads + 1)
    ]
    ended_badly = threading.Event()
    stopping = threading.Event()

    def loop(worker: ThreadWorker) -> None:
        try:
            with app.app_context():
                worker.work(burst=burst, with_scheduler=False)
        except BaseException:
            log.exception("worker thread %s failed", worker.name)
            ended_badly.set()
            raise
        if not burst and not stopping.is_set():
            log.error("worker thread %s ended without being asked to", worker.name)
            ended_badly.set()

    def stop(signum: int, _frame: Any) -> None:
        if stopping.is_set():
            name = signal.Signals(signum).name
            log.warning("second %s: stopping now; the sweep recovers the sends cut", name)
            os._exit(1)
        stopping.set()
        log.info("stopping: no new jobs; the ones in flight finish")
        for worker in workers:
            worker.stop_after_job()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        running = [
            threading.Thread(target=loop, args=(w,), name=f"rq-{n}", daemon=True)
            for n, w in enumerate(workers, start=1)
        ]
        for thread in running:
            thread.start()
        log.info("%s job loops on %s", threads, ", ".join(q.name for q in queues))
        while any(t.is_alive() for t in running):
            if ended_badly.is_set() and not stopping.is_set():
                stopping.set()
                for worker in workers:
                    worker.stop_after_job()
            for thread in running:
                thread.join(timeout=0.2)  # short: this thread must come back to run the signal handlers
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if ended_badly.is_set() else 0
