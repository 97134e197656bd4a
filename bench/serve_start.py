"""How long `make serve` (`python -m webapp.serving`) takes to answer /readyz on a fresh PostgreSQL
database (preflight, every migration, the processes' start), to have its RQ workers and clock running,
and to stop on SIGTERM with nothing in flight.

    TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.serve_start --redis redis://127.0.0.1:6379/10 --rounds 3

Uses a Redis database of its own choosing (it is emptied) and a new database per round (dropped after).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tests import serve_support as serving
from tests.conftest import create_postgres_database, drop_postgres_database


def one_round(redis_url: str, workers: int, log: Path) -> tuple[float, float, float]:
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    url = create_postgres_database("relay_bench_serve")
    env = serving.environment(url, redis_url, serving.free_port(), SERVE_WORKERS=str(workers))
    try:
        started = time.monotonic()
        running = serving.Served(env, log)
        try:
            running.wait_ready()
            ready = time.monotonic() - started
            while (
                # Each sending worker and the webhooks' worker (a line each once its loops run).
                running.output().count("worker listening on relay") < workers + 1
                or "Clock: " not in running.output()
            ):
                time.sleep(0.05)
            all_up = time.monotonic() - started
            stopping = time.monotonic()
            assert running.stop() == 0, running.tail()
            stopped = time.monotonic() - stopping
            assert running.alive() == []
        finally:
            running.kill_all()
    finally:
        drop_postgres_database(url)
    return ready, all_up, stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True, help="a Redis URL whose database may be emptied")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="SERVE_WORKERS")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(args.rounds):
            results.append(one_round(args.redis, args.workers, Path(tmp) / f"serve{number}.log"))
            ready, all_up, stopped = results[-1]
            print(
                f"round {number + 1}: /readyz {ready:.1f} s, workers and clock {all_up:.1f} s, "
                f"SIGTERM to exit {stopped:.1f} s"
            )
    for label, values in zip(("/readyz", "all running", "stop"), zip(*results, strict=True), strict=True):
        median = statistics.median(values)
        print(f"{label}: median {median:.1f} s (min {min(values):.1f}, max {max(values):.1f})")


if __name__ == "__main__":
    main()
