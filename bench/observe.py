"""What the request line and the counters cost a request (issue #19, section 4).

Interleaved rounds of GET /healthz and GET /login through the test client (the whole Flask stack, no
network), with the request-log hooks (the JSON line on stderr, the request counter) and without them
(the same app with those three hooks taken off). The log goes to stderr: run with 2>/dev/null so that
the terminal's speed is not measured. Prints the medians of the rounds' per-request times, and the
cost of the pieces alone (one counter increment, one JSON line formatted).

    .venv/bin/python bench/observe.py --requests 2000 --rounds 7 2>/dev/null
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()

    from webapp import create_app, logs, metrics
    from webapp.extensions import db

    work = Path(tempfile.mkdtemp(prefix="relay-observe-"))
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work}/relay.db",
            "VONAGE_SIGNATURE_SECRET": "bench-webhook-signature-secret-0123456789abcdef",
            "RELAY_FILE_KEY": "2u9Jw7Zb6oKpR0l3ZCk4a1jQG2f9s8Vt5XxYyWnLmE0=",
            "LOG_FORMAT": "json",
        }
    )
    with app.app_context():
        db.create_all()
    client = app.test_client()

    hooks = {
        "before": [f for f in app.before_request_funcs[None] if f.__module__ == "webapp.web.request_log"],
        "after": [f for f in app.after_request_funcs[None] if f.__module__ == "webapp.web.request_log"],
        "teardown": [f for f in app.teardown_request_funcs[None] if f.__module__ == "webapp.web.request_log"],
    }
    assert all(len(found) == 1 for found in hooks.values()), hooks

    def switch(on: bool) -> None:
        for kind, registry in (
            ("before", app.before_request_funcs[None]),
            ("after", app.after_request_funcs[None]),
            ("teardown", app.teardown_request_funcs[None]),
        ):
            hook = hooks[kind][0]
            if on and hook not in registry:
                registry.insert(0, hook)
            if not on and hook in registry:
                registry.remove(hook)

    def per_request(path: str) -> float:
        started = time.perf_counter()
        for _ in range(options.requests):
            client.get(path)
        return (time.perf_counter() - started) / options.requests * 1e6

    results: dict[tuple[str, bool], list[float]] = {}
    for path in ("/healthz", "/login"):
        per_request(path)  # warm-up
        for n in range(options.rounds):
            for on in (True, False) if n % 2 else (False, True):  # either goes first in turn
                switch(on)
                results.setdefault((path, on), []).append(per_request(path))
    switch(True)

    print(f"{options.rounds} interleaved rounds of {options.requests} requests (µs per request, median):")
    for path in ("/healthz", "/login"):
        with_hooks = statistics.median(results[(path, True)])
        without = statistics.median(results[(path, False)])
        print(
            f"  GET {path:9} with the line and counter {with_hooks:7.1f}   without {without:7.1f}   "
            f"difference {with_hooks - without:+6.1f}"
        )

    # The hooks timed on their own (the A/B above drowns in the noise of a shared machine).
    spent: dict[str, list[float]] = {}
    for kind, registry in (
        ("before", app.before_request_funcs[None]),
        ("after", app.after_request_funcs[None]),
        ("teardown", app.teardown_request_funcs[None]),
    ):
        index = registry.index(hooks[kind][0])

        def timed(*args, _hook=registry[index], _kind=kind):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return _hook(*args)
            finally:
                spent.setdefault(_kind, []).append(time.perf_counter() - started)

        registry[index] = timed
    for path in ("/healthz", "/login"):
        spent.clear()
        for _ in range(options.requests):
            client.get(path)
        total = [sum(parts) for parts in zip(*spent.values(), strict=True)]
        shares = ", ".join(f"{kind} {statistics.median(v) * 1e6:.1f}" for kind, v in spent.items())
        print(
            f"  GET {path:9} the three hooks alone: median {statistics.median(total) * 1e6:.1f} µs, "
            f"mean {statistics.mean(total) * 1e6:.1f} µs ({shares})"
        )

    n = 100_000
    started = time.perf_counter()
    for _ in range(n):
        metrics.http_request("GET", "healthz", 200)
    print(f"  one labelled counter increment: {(time.perf_counter() - started) / n * 1e6:.2f} µs")
    record = logging.LogRecord("relay.request", logging.INFO, __file__, 1, "request", None, None)
    record.__dict__.update(
        logs.fields(
            method="GET",
            route="/healthz",
            endpoint="healthz",
            status=200,
            ms=0.4,
            user_id=None,
            organization_id=None,
        )
    )
    formatter = logs.JsonFormatter()
    started = time.perf_counter()
    for _ in range(n):
        formatter.format(record)
    print(f"  one JSON request line formatted: {(time.perf_counter() - started) / n * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
