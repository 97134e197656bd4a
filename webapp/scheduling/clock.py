"""The clock: runs whatever periodic task is due, once across every process that keeps a clock.

Where it runs:
- `flask --app wsgi clock`, a process of its own (production: beside gunicorn and the RQ workers);
  `--once` makes one pass (cron, a check by hand).
- A thread of a served app (wsgi.py: the dev server of `make run`, gunicorn's workers) when
  CLOCK_IN_PROCESS says so; by default when messages are dispatched in-process (DISPATCH_MODE=thread),
  where the web processes are the dispatchers. It starts with the app, never from a request, and not
  when another `flask` command (db upgrade, worker, clock…) loads the app.

Any number of clocks may run: `runs.claim` lets one of them start a task per interval.

The tasks run inline, in the clock, even with RQ (DISPATCH_MODE=rq): they are short database sweeps,
and the dispatch sweep exists for when the queue or its workers fail, so it must not wait in that
queue behind the sends it is there to rescue. What it finds to send again it hands to the dispatcher
(`dispatch.enqueue`: RQ then), so sending itself stays on the workers. RQ's own scheduler (jobs
enqueued for later) is therefore not used; messages scheduled for later will be a task here, their
due rows claimed in the database like everything else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import click
from flask import Flask, current_app

from webapp.extensions import db
from webapp.models import utcnow
from webapp.scheduling import runs
from webapp.scheduling.tasks import TASKS, Task

log = logging.getLogger("relay.clock")
# The loop looks at the time this often (or at the shortest interval, if shorter); a task's own
# interval decides how often it runs.
TICK_SECONDS = 1.0
# After a pass that could not reach the database at all, the loop waits this long before the next one.
RETRY_SECONDS = 5.0
EXTENSION = "relay.clock"


@dataclass(frozen=True)
class Run:
    task: str
    ran: bool  # False: switched off, or not due (this clock or another ran it within its interval)
    outcome: str  # what it changed ("" for nothing), why it failed, or why it did not run
    failed: bool = False

    def __str__(self) -> str:
        if not self.ran:
            return f"{self.task}: {self.outcome}"
        if self.failed:
            return f"{self.task}: failed ({self.outcome})"
        return f"{self.task}: {self.outcome or 'nothing to do'}"


def enabled(config: Mapping[str, Any], tasks: Sequence[Task] = TASKS) -> list[Task]:
    return [task for task in tasks if task.interval(config) > 0]


def run_due(
    now: datetime | None = None,
    tasks: Sequence[Task] = TASKS,
    due_at: dict[str, datetime] | None = None,
) -> list[Run]:
    """One pass (inside an app context): every task due at `now` and claimed by this caller runs, each
    in turn; a task that fails is logged, noted in its row, and due again one interval after this
    start. `due_at` is a loop's memory of when each task is next due, so that it asks the database
    only then (updated here)."""
    now = now or utcnow()
    config = current_app.config
    done: list[Run] = []
    for task in tasks:
        seconds = task.interval(config)
        if seconds <= 0:
            done.append(Run(task.name, False, "switched off"))
            continue
        if due_at is not None and now < due_at.get(task.name, now):
            continue
        every = timedelta(seconds=seconds)
        claim = runs.claim(db.session, task.name, every, now)
        if due_at is not None:
            due_at[task.name] = claim.started_at + every
        if not claim.ours:
            last = f"{claim.started_at:%Y-%m-%d %H:%M:%S} UTC"
            done.append(Run(task.name, False, f"not due (last started {last}, every {seconds:g} s)"))
            continue
        done.append(_run(task, claim.started_at))
    return done


def _run(task: Task, started_at: datetime) -> Run:
    try:
        outcome = task.run(started_at)
    except Exception as exc:
        log.exception("the scheduled task %s failed; it runs again after its interval", task.name)
        db.session.rollback()
        run = Run(task.name, True, f"{type(exc).__name__}: {exc}"[:300], failed=True)
        runs.finished(db.session, task.name, started_at, f"failed: {run.outcome}")
        return run
    runs.finished(db.session, task.name, started_at, outcome or "nothing to do")
    return Run(task.name, True, outcome)


def tick(config: Mapping[str, Any], tasks: Sequence[Task] = TASKS) -> float:
    intervals = [task.interval(config) for task in enabled(config, tasks)]
    return max(0.05, min([TICK_SECONDS, *intervals]))


def run_forever(
    app: Flask,
    stop: threading.Event,
    report: Callable[[Run], None] | None = None,
    tasks: Sequence[Task] = TASKS,
) -> None:
    """Pass after pass until `stop` is set; a pass under way finishes first. `report` is told of every
    run that changed something or failed."""
    due_at: dict[str, datetime] = {}
    pause = tick(app.config, tasks)
    while not stop.is_set():
        wait = pause
        with app.app_context():
            try:
                for run in run_due(tasks=tasks, due_at=due_at):
                    if report is not None and run.ran and (run.outcome or run.failed):
                        report(run)
            except Exception:
                # The database is away (restarting, unreachable): say so, and try again a little later.
                log.exception("the clock could not make its pass; trying again in %s s", RETRY_SECONDS)
                db.session.rollback()
                wait = max(pause, RETRY_SECONDS)
            finally:
                db.session.remove()
        stop.wait(wait)


# --- The clock in a thread of a served app ---------------------------------------------------------


class InProcessClock:
    """The thread that runs `run_forever` for this app, and the way to stop it."""

    def __init__(self, app: Flask) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_forever, args=(app, self._stop, _log_run), name="relay-clock", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._thread.join(timeout)


def in_process(config: Mapping[str, Any]) -> bool:
    """Whether a served app keeps the clock in a thread (CLOCK_IN_PROCESS; unset: in-process dispatch)."""
    wanted = config.get("CLOCK_IN_PROCESS")
    if wanted is None:
        wanted = config.get("DISPATCH_MODE") == "thread"
    return bool(wanted) and bool(enabled(config))


def start_in_process(app: Flask) -> InProcessClock | None:
    """Start this app's clock thread, once, if CLOCK_IN_PROCESS wants one and the app is loaded to serve
    requests; the running clock, or None."""
    if not in_process(app.config) or _loaded_by_a_command():
        return None
    with _start_lock:
        if EXTENSION not in app.extensions:
            app.extensions[EXTENSION] = InProcessClock(app)
    return app.extensions[EXTENSION]


def stop_in_process(app: Flask) -> None:
    clock = app.extensions.pop(EXTENSION, None)
    if clock is not None:
        clock.stop()


def _loaded_by_a_command() -> bool:
    """True while a `flask` command other than `run` (the dev server) loads the app: `db upgrade` must
    not have a clock sweeping a database it is still migrating, and `flask clock` is a clock itself."""
    context = click.get_current_context(silent=True)
    return context is not None and context.command.name != "run"


def _log_run(run: Run) -> None:
    if run.failed:
        return  # logged with its traceback where it failed
    log.info("%s", run)


_start_lock = threading.Lock()
