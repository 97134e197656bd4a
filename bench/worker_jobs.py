"""What a job costs the worker around the job itself: jobs that do nothing, taken from Redis and run by
RQ's own SimpleWorker and by the worker's loop (webapp.messaging.worker.Loop), interleaved in rounds.

Run by hand from the repository root (numbers go to bench/README.md, never into a test):

    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/worker_jobs.py --jobs 1000 --rounds 3

Reported per job: the worker's CPU (`time.process_time`, this process), the wall time, and the commands
Redis processed (its INFO counter, a script's own commands included: other clients of the same Redis
count too, so use a quiet one). RQ's SimpleWorker as it comes (webapp.messaging.worker's ThreadWorker,
before the loop, skipped some of its heartbeats: about 2.5 ms CPU a job, 48 commands).
RQ's worker logs at WARNING here (in a worker its 3–4 lines a job at INFO cost more besides).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402
from rq import Queue, SimpleWorker  # noqa: E402

from webapp.messaging.worker import Loop  # noqa: E402

QUEUE = "bench-noop"
NOOP = "bench.worker_jobs.noop"


def noop(message_id: int, request_id: str | None = None) -> None:
    return None


def fill(queue: Queue, jobs: int) -> None:
    for n in range(jobs):
        queue.enqueue(NOOP, n, "bench", job_id=f"message-{n}")


def measure(redis: Redis, run, jobs: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    commands = redis.info("stats")["total_commands_processed"]
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    commands = redis.info("stats")["total_commands_processed"] - commands - 1
    return {
        "ms CPU/job": round(cpu * 1000 / jobs, 3),
        "ms wall/job": round(wall * 1000 / jobs, 3),
        "Redis commands/job": round(commands / jobs, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/4"))
    queue = Queue(QUEUE, connection=redis)
    for round_ in range(1, args.rounds + 1):
        queue.empty()
        fill(queue, args.jobs)
        worker = SimpleWorker([queue], connection=redis)
        rq = measure(
            redis,
            lambda w=worker: w.work(burst=True, with_scheduler=False, logging_level="WARNING"),
            args.jobs,
        )
        queue.empty()
        fill(queue, args.jobs)
        loop = Loop(redis, [QUEUE], threading.Event(), jobs={NOOP: noop})
        lean = measure(redis, lambda loop=loop: loop.work(burst=True), args.jobs)
        assert queue.count == 0
        print(f"[{round_}] RQ's SimpleWorker: {rq}  the worker's loop: {lean}", flush=True)
    queue.empty()
    # What RQ's worker kept (finished jobs, their results, its registries: 500 s each).
    for pattern in ("rq:job:message-*", "rq:results:message-*", f"rq:*:{QUEUE}"):
        for key in redis.scan_iter(pattern):
            redis.delete(key)
    load = os.getloadavg()
    print(f"{args.jobs} jobs a round, load {tuple(round(x, 2) for x in load)}")


if __name__ == "__main__":
    main()
