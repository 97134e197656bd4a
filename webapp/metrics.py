"""What /metrics shows (Prometheus text format, prometheus-client), and who may read it.

Counted where it happens, with a counter's inc and no query (cheap on every request and send):
- relay_send_attempts_total{provider,channel,outcome} and relay_send_seconds{provider,outcome}: each
  try of a send (webapp.messaging.attempts), outcome accepted, rejected, temporary (tried again),
  unknown (the provider may have it), error (something unforeseen, treated as unknown);
- relay_send_unknown_outcomes_total{provider,channel}: the tries whose outcome is unknown;
- relay_webhooks_total{provider,kind,status}: provider webhooks by kind (inbound, status) and answer;
- relay_http_requests_total{method,endpoint,status}: every request, by its route's endpoint;
- relay_paced_wait_seconds: each wait for a sending token (`paced_wait`, for the pacing);
- relay_webhook_apply_delay_seconds{kind}: from a stored webhook's arrival to its being applied by a
  worker (webapp.messaging.ingest): how far behind the thread is;
- relay_credits_refused_total{channel}: messages refused for lack of credits (webapp.billing.credits).

Read from the database (and Redis) when scraped, once per scrape:
- relay_messages{channel,direction,status}: messages held, by where they stand;
- relay_queue_depth{queue}: outbound messages queued in the database (queue="database") and the
  jobs waiting in the RQ queue (queue="rq", when Redis is configured).

Under gunicorn (several processes), set PROMETHEUS_MULTIPROC_DIR to an empty directory that every
process of the app (web workers, RQ workers, the clock) can write to, before they start: each process
writes its counts there and a scrape adds them up (prometheus-client's multiprocess mode). Empty it
(`clear_multiprocess_dir`) before the processes start, never while they run; gunicorn's config calls
`child_exit` when a worker exits.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

log = logging.getLogger("relay.metrics")
CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

# Not in prometheus-client's default registry: each scrape builds its own (`render`), which also keeps
# the tests' many apps from registering anything twice.
SEND_ATTEMPTS = Counter(
    "relay_send_attempts",
    "Tries of a send, by provider, channel and outcome.",
    ["provider", "channel", "outcome"],
    registry=None,
)
SEND_SECONDS = Histogram(
    "relay_send_seconds",
    "Time of one try of a send (the provider's HTTP call), by provider and outcome.",
    ["provider", "outcome"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=None,
)
UNKNOWN_OUTCOMES = Counter(
    "relay_send_unknown_outcomes",
    "Tries whose outcome is unknown (timeout, 5xx, broken connection): never resent, settled by a report.",
    ["provider", "channel"],
    registry=None,
)
WEBHOOKS = Counter(
    "relay_webhooks",
    "Provider webhooks, by kind (inbound, status) and the status we answered.",
    ["provider", "kind", "status"],
    registry=None,
)
HTTP_REQUESTS = Counter(
    "relay_http_requests",
    "Requests, by method, endpoint (the route's name) and status.",
    ["method", "endpoint", "status"],
    registry=None,
)
PACED_WAITS = Histogram(
    "relay_paced_wait_seconds",
    "Waits for a sending token (the account's or the number's rate), in seconds.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=None,
)
APPLY_DELAY = Histogram(
    "relay_webhook_apply_delay_seconds",
    "From a stored webhook's arrival to its being applied by a worker, by kind (inbound, status).",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=None,
)
CREDITS_REFUSED = Counter(
    "relay_credits_refused",
    "Messages refused because the organisation's credits did not cover them, by channel.",
    ["channel"],
    registry=None,
)
LIVE: tuple[Counter | Histogram, ...] = (
    SEND_ATTEMPTS,
    SEND_SECONDS,
    UNKNOWN_OUTCOMES,
    WEBHOOKS,
    HTTP_REQUESTS,
    PACED_WAITS,
    APPLY_DELAY,
    CREDITS_REFUSED,
)


# --- Counting (cheap: an increment in this process's memory or its multiprocess file) ----------------


def send_attempt(provider: str, channel: str, outcome: str, seconds: float) -> None:
    SEND_ATTEMPTS.labels(provider, channel, outcome).inc()
    SEND_SECONDS.labels(provider, outcome).observe(seconds)
    if outcome in ("unknown", "error"):
        UNKNOWN_OUTCOMES.labels(provider, channel).inc()


def webhook(provider: str, kind: str, status: int) -> None:
    WEBHOOKS.labels(provider, kind, str(status)).inc()


def http_request(method: str, endpoint: str, status: int) -> None:
    HTTP_REQUESTS.labels(method, endpoint, str(status)).inc()


def paced_wait(seconds: float) -> None:
    """A send waited this long for a token of the rate limits (the pacing calls it)."""
    PACED_WAITS.observe(seconds)


def webhook_applied(kind: str, seconds: float) -> None:
    """A stored webhook was applied this long after it arrived (webapp.messaging.ingest)."""
    APPLY_DELAY.labels(kind).observe(seconds)


def credits_refused(channel: str) -> None:
    CREDITS_REFUSED.labels(channel).inc()


# --- Who may read them --------------------------------------------------------------------------------


def allowed(config: Mapping[str, Any], remote_addr: str | None, authorization: str | None) -> bool:
    """Whether a scrape may read /metrics: it shows the bearer token METRICS_TOKEN, or comes from an
    address in METRICS_ALLOW_FROM. With neither set, nobody may."""
    token = config.get("METRICS_TOKEN")
    if token and authorization:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    networks = config.get("METRICS_ALLOW_FROM") or ()
    if networks and remote_addr:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped:  # ::ffff:10.0.0.1 is 10.0.0.1
            address = address.ipv4_mapped
        return any(address in ipaddress.ip_network(network) for network in networks)
    return False


# --- A scrape -----------------------------------------------------------------------------------------


class _Stored:
    """The gauges read from the database (and the RQ queue's length from Redis) at scrape time."""

    def __init__(self, counts: Iterable[tuple[str, str, str, int]], rq_length: int | None) -> None:
        self.counts = list(counts)
        self.rq_length = rq_length

    def collect(self) -> Iterator[Metric]:
        messages = GaugeMetricFamily(
            "relay_messages",
            "Messages held, by channel, direction and status.",
            labels=["channel", "direction", "status"],
        )
        queued = 0
        for channel, direction, status, count in self.counts:
            messages.add_metric([channel, direction, status], count)
            if direction == "outbound" and status == "queued":
                queued += count
        yield messages
        depth = GaugeMetricFamily(
            "relay_queue_depth",
            "Messages waiting to be sent: queued in the database, and jobs in the RQ queue.",
            labels=["queue"],
        )
        depth.add_metric(["database"], queued)
        if self.rq_length is not None:
            depth.add_metric(["rq"], self.rq_length)
        yield depth


def message_counts(session: Any) -> list[tuple[str, str, str, int]]:
    """(channel, direction, status, count) of every message: one GROUP BY per scrape."""
    import sqlalchemy as sa

    from webapp.models import Message

    rows = session.execute(
        sa.select(Message.channel, Message.direction, Message.status, sa.func.count()).group_by(
            Message.channel, Message.direction, Message.status
        )
    ).all()
    return [(channel, direction, status, count) for channel, direction, status, count in rows]


def render(counts: Iterable[tuple[str, str, str, int]], rq_length: int | None) -> bytes:
    """The Prometheus text of this process's counters (or, in multiprocess mode, of every process's)
    and of the stored gauges."""
    registry = CollectorRegistry()
    directory = os.environ.get(MULTIPROC_DIR)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        for metric in LIVE:
            registry.register(metric)
    registry.register(_Stored(counts, rq_length))
    return generate_latest(registry)


# --- Multiprocess mode --------------------------------------------------------------------------------


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's child_exit hook (gunicorn.conf.py: `from webapp.metrics import child_exit`): a dead
    worker's live gauges leave the sum; its counters stay counted."""
    if os.environ.get(MULTIPROC_DIR):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def clear_multiprocess_dir() -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR (creating it if need be): before the processes start, so that a
    previous run's counts are not added to this one's. Never while they run."""
    directory = os.environ.get(MULTIPROC_DIR)
    if not directory:
        return
    if os.path.isdir(directory):
        shutil.rmtree(directory)
    os.makedirs(directory, exist_ok=True)
