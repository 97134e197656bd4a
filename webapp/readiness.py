"""Whether this process can serve requests: the database and Redis answer (GET /readyz). /healthz is
only whether the process lives, so a load balancer restarts on the one and routes on the other."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from webapp.extensions import db

# A dependency that has not answered within this long counts as down: a probe must answer quickly.
PROBE_SECONDS = 2


def check(config: Any) -> dict[str, str]:
    """Each dependency's state: "ok", or why not (one line, no address or secret)."""
    found = {"database": _database()}
    if config.get("REDIS_URL"):
        found["redis"] = _redis(config["REDIS_URL"])
    return found


def _database() -> str:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return "ok"
    except sa.exc.SQLAlchemyError as error:
        return f"unreachable ({type(getattr(error, 'orig', None) or error).__name__})"
    finally:
        db.session.rollback()


def _redis(url: str) -> str:
    from redis.exceptions import RedisError

    try:
        ping_redis(url, PROBE_SECONDS)
        return "ok"
    except (RedisError, OSError) as error:
        return f"unreachable ({type(error).__name__})"


def ping_redis(url: str, seconds: float) -> None:
    """Redis answers a PING within `seconds`, or its error (RedisError, OSError) is raised."""
    from redis import Redis

    client = Redis.from_url(url, socket_connect_timeout=seconds, socket_timeout=seconds)
    try:
        client.ping()
    finally:
        client.close()
