"""Paced sending: how many requests a provider's account, and each sending number, may make a second.

A provider refuses what goes faster than it allows (with a 429), so every dispatcher takes a
turn before it claims a message: one from the account's bucket (all its messages, SMS and WhatsApp,
count: providers limit API requests) and, for an SMS, one from its sending number's. With Redis
(REDIS_URL) the buckets live there and every worker and web process shares them; without it (DISPATCH_MODE
thread or inline on one machine, development) they live in this process, which is enough for one process.

A bucket of rate r holds one second of it (n = r turns, at least 1), and is strict: no window of
n / r seconds (plus SEND_PACING_MARGIN_SECONDS) ever holds more than n turns, and two turns are never
closer than a window's n-th part. That is a sliding window rather than the textbook token bucket on
purpose: a token bucket of size n refills while it is being spent, so the first second after a quiet
spell lets up to 2n through, which a provider that counts requests per second answers with 429s. And
the turns are spaced: a burst of messages reaching many idle workers at once would otherwise start n
requests in the same instant, and under that load some reach the provider later than the margin
allows, next to the ones a window on (measured: bench/README.md, 2026-12-06). A quiet minute leaves one
to go at once, then one each window's n-th part. The margin covers what happens between our turn and the
provider's clock (the claim, a commit, the TLS handshake: a few milliseconds that vary), so that two
requests a window apart here do not arrive less than a second apart there.

Waiting for a turn is not a failure and not a try: the message stays `queued` (dispatch waits before
it claims), and a turn taken for a message that another dispatcher had already claimed is given back.
After a 429, `hold` stops the whole account for its Retry-After, in every process.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from flask import Flask

from webapp import phones
from webapp.providers import registry

# How fast each provider lets us send is the provider's to say (its module's PACE, e.g. 30
# requests a second and 1 SMS a second from a US long number, with its sources); the settings
# SEND_RATE_PER_NUMBER and SEND_RATE_PER_COUNTRY override the per-number part. Relay sends from long
# numbers only (no short codes or alphanumeric senders).

KEY_PREFIX = "relay:pace:"


@dataclass(frozen=True)
class Bucket:
    """At most `size` turns in any `window` seconds: one second of `rate`, at least one turn."""

    key: str  # the provider's name (its account) or "<provider>:+15551230000" (a number of it)
    rate: float  # turns a second

    @property
    def account(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def size(self) -> int:
        return max(1, math.floor(self.rate))

    @property
    def window(self) -> float:
        return self.size / self.rate


def buckets(config: Mapping[str, Any], provider: str | None, channel: str, sender: str) -> list[Bucket]:
    """The buckets a message takes a turn from: its provider account's, then (SMS) its number's.
    None for email, which SMTP carries unpaced, and for a provider that declares no pace."""
    pace = registry.pace(config, provider) if channel != "email" and provider else None
    if pace is None:
        return []
    found = []
    account_rate = float(config.get(pace.account_rate_setting) or 0)
    if account_rate > 0:
        found.append(Bucket(str(provider), account_rate))
    number_rate = rate_of_number(config, sender, pace.per_number_by_country) if channel == "sms" else None
    if number_rate:
        found.append(Bucket(f"{provider}:{sender}", number_rate))
    return found


def rate_of_number(
    config: Mapping[str, Any], e164: str, defaults: Mapping[str, float] | None = None
) -> float | None:
    """SMS a second one number may send (None: no limit of its own). SEND_RATE_PER_COUNTRY first,
    then SEND_RATE_PER_NUMBER, then the provider's own figure for the country (`defaults`); 0 in a
    setting means no limit."""
    country = _country(e164)
    by_country: Mapping[str, float] = config.get("SEND_RATE_PER_COUNTRY") or {}
    if country in by_country:
        rate = by_country[country]
    elif config.get("SEND_RATE_PER_NUMBER") is not None:
        rate = config["SEND_RATE_PER_NUMBER"]
    else:
        rate = (defaults or {}).get(country or "")
    return float(rate) if rate else None


@lru_cache(maxsize=1024)
def _country(e164: str) -> str | None:
    return phones.country_of(e164)


# --- Taking a turn -------------------------------------------------------------------------------------


@dataclass
class Turn:
    """A turn taken: how long it was waited for, and what gives it back."""

    waited: float
    ticket: str = ""
    buckets: Sequence[Bucket] = field(default_factory=tuple)
    at: float = 0.0  # when it was taken (time.monotonic)


class PacingUnavailable(RuntimeError):
    """The shared buckets cannot be reached (Redis is down): nothing may go unpaced, so it waits."""


class Limiter(Protocol):
    def take(self, buckets: Sequence[Bucket], ticket: str, margin: float) -> float:
        """0 when the ticket took a turn from every bucket, else the seconds until one may free (and
        nothing taken)."""
        ...

    def give_back(self, buckets: Sequence[Bucket], ticket: str) -> None: ...

    def hold(self, account: str, seconds: float) -> None:
        """No turn from this account's bucket for `seconds` (a 429's Retry-After)."""
        ...


def wait_for_turn(app: Flask, found: Sequence[Bucket], max_wait: float | None = None) -> Turn | None:
    """Take a turn from every bucket at once, sleeping for as long as the buckets say, up to `max_wait`
    (SEND_PACING_MAX_WAIT_SECONDS). None when no turn came in that time (the caller leaves the message
    queued). Raises PacingUnavailable when the buckets cannot be reached."""
    if not found:
        return Turn(0.0)
    config = app.config
    max_wait = config.get("SEND_PACING_MAX_WAIT_SECONDS", 30) if max_wait is None else max_wait
    margin = float(config.get("SEND_PACING_MARGIN_SECONDS") or 0)
    limiter = limiter_for(app)
    ticket = uuid.uuid4().hex
    started = time.monotonic()
    slept = False
    while True:
        wait = limiter.take(found, ticket, margin)
        waited = time.monotonic() - started
        if wait <= 0:
            # A turn given at once waited nothing (the buckets' own round trip is not a wait).
            return Turn(waited if slept else 0.0, ticket, tuple(found), time.monotonic())
        if waited + wait > max_wait:
            return None
        time.sleep(wait)
        slept = True


def renewed(app: Flask, turn: Turn, max_wait: float) -> Turn | None:
    """The turn, or, when it was taken longer ago than half the margin, another taken now in its place:
    the provider counts a request when it arrives, the buckets when its turn is taken, so a turn that
    grew old before its request left (a slow claim, a thread waiting for a core) is renewed, and turns
    taken apart do not arrive together. None when no new turn came within max_wait. Raises
    PacingUnavailable when the buckets cannot be reached."""
    margin = float(app.config.get("SEND_PACING_MARGIN_SECONDS") or 0)
    if not turn.ticket or time.monotonic() - turn.at <= margin / 2:
        return turn
    give_back(app, turn)
    return wait_for_turn(app, turn.buckets, max_wait)


def give_back(app: Flask, turn: Turn) -> None:
    """Return a turn that was not used (the message was not ours to send after all)."""
    if turn.ticket and turn.buckets:
        limiter_for(app).give_back(turn.buckets, turn.ticket)


def hold(app: Flask, provider: str, seconds: float) -> None:
    """The provider said "not before `seconds`" (429 Retry-After): every process waits that long."""
    if registry.pace(app.config, provider) is not None and seconds > 0:
        limiter_for(app).hold(provider, seconds)


def limiter_for(app: Flask) -> Limiter:
    """Redis's buckets when REDIS_URL is set (shared by every process), else this process's own."""
    limiter = app.extensions.get("relay.pacing")
    if limiter is None:
        url = app.config.get("REDIS_URL")
        limiter = RedisLimiter(url) if url else LocalLimiter()
        app.extensions["relay.pacing"] = limiter
    return limiter


# One script, so that looking at every bucket and taking from all of them is one atomic step for all
# workers, on Redis's clock (the workers' clocks may differ). Each bucket is a sorted set of the turns
# taken in its window, scored by the time in microseconds.
# KEYS: the buckets, then the account's hold. ARGV: the ticket, then each bucket's size and window (µs).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS - 1
local wait = redis.call('PTTL', KEYS[n + 1]) * 1000
if wait < 0 then wait = 0 end
for i = 1, n do
  local size = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= size then
    local frees = redis.call('ZRANGE', KEYS[i], count - size, count - size, 'WITHSCORES')
    local w = tonumber(frees[2]) + window - now
    if w > wait then wait = w end
  end
  if count > 0 then
    local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
    local w = tonumber(last[2]) + window / size - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return math.max(1, math.floor(wait)) end
for i = 1, n do
  redis.call('ZADD', KEYS[i], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(ARGV[2 * i + 1]) / 1000) + 1000)
end
return 0
"""

_HOLD = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
"""


class RedisLimiter:
    def __init__(self, url: str) -> None:
        from redis import Redis

        self._redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self._take = self._redis.register_script(_TAKE)
        self._hold = self._redis.register_script(_HOLD)

    def take(self, buckets: Sequence[Bucket], ticket: str, margin: float) -> float:
        keys = [KEY_PREFIX + b.key for b in buckets] + [KEY_PREFIX + "hold:" + buckets[0].account]
        args: list[Any] = [ticket]
        for bucket in buckets:
            args += [bucket.size, round((bucket.window + margin) * 1_000_000)]
        try:
            return int(self._take(keys=keys, args=args)) / 1_000_000
        except Exception as exc:  # redis.RedisError, and OSError under it
            raise PacingUnavailable(f"the pacing buckets in Redis cannot be reached: {exc}") from exc

    def give_back(self, buckets: Sequence[Bucket], ticket: str) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.zrem(KEY_PREFIX + bucket.key, ticket)
            pipe.execute()

    def hold(self, account: str, seconds: float) -> None:
        self._hold(keys=[KEY_PREFIX + "hold:" + account], args=[max(1, round(seconds * 1000))])


class LocalLimiter:
    """The same buckets in this process's memory, on its monotonic clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken: dict[str, deque[tuple[float, str]]] = {}
        self._held: dict[str, float] = {}

    def take(self, buckets: Sequence[Bucket], ticket: str, margin: float) -> float:
        with self._lock:
            now = time.monotonic()
            wait = max(0.0, self._held.get(buckets[0].account, 0.0) - now)
            for bucket in buckets:
                window = bucket.window + margin
                taken = self._taken.setdefault(bucket.key, deque())
                while taken and taken[0][0] <= now - window:
                    taken.popleft()
                if len(taken) >= bucket.size:
                    wait = max(wait, taken[len(taken) - bucket.size][0] + window - now)
                if taken:
                    wait = max(wait, taken[-1][0] + window / bucket.size - now)
            if wait > 0:
                return max(wait, 1e-6)
            for bucket in buckets:
                self._taken[bucket.key].append((now, ticket))
            return 0.0

    def give_back(self, buckets: Sequence[Bucket], ticket: str) -> None:
        with self._lock:
            for bucket in buckets:
                taken = self._taken.get(bucket.key)
                if taken is not None:
                    self._taken[bucket.key] = deque(t for t in taken if t[1] != ticket)

    def hold(self, account: str, seconds: float) -> None:
        with self._lock:
            self._held[account] = max(self._held.get(account, 0.0), time.monotonic() + seconds)
