"""Before serving: the settings are usable, PostgreSQL and Redis answer. Each problem is one line that
names the setting or the service and what to do, so that an operator reads it in a journal."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from webapp import config as settings

# A service that does not answer within this many seconds is taken as unreachable.
CONNECT_SECONDS = 3


class NotReady(RuntimeError):
    """Serving cannot start; the message is one line saying why."""


def served_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the processes run with: as in production unless RELAY_ENV says otherwise;
    messages sent by the RQ workers (never by a thread of a web process) and the clock a process of
    its own, whatever the environment asked for those two."""
    env = dict(environ)
    env.setdefault("RELAY_ENV", "production")
    env["DISPATCH_MODE"] = "rq"
    env["CLOCK_IN_PROCESS"] = "0"
    # Each line a process prints reaches the supervisor (and the journal) when printed, in order.
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def check(environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """The Flask config that serving will use, once the settings, PostgreSQL and Redis are all right;
    NotReady otherwise."""
    if not (environ.get("DATABASE_URL") or "").strip():
        raise NotReady("DATABASE_URL is not set: serving needs PostgreSQL, e.g. postgresql://user@host/relay")
    if not (environ.get("REDIS_URL") or "").strip():
        raise NotReady(
            "REDIS_URL is not set: serving needs Redis for the send queue, e.g. redis://host:6379/0"
        )
    try:
        config = settings.from_environment(instance_path, environ)
        settings.check(config)
    except settings.ConfigError as error:
        raise NotReady(str(error)) from None
    url = config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("postgresql"):
        raise NotReady("DATABASE_URL must name a PostgreSQL database: several processes write to it at once")
    database_answers(url)
    redis_answers(config["REDIS_URL"])
    return config


def database_answers(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": CONNECT_SECONDS}, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        where = sa.engine.make_url(url).render_as_string(hide_password=True)
        reason = _first_line(error.orig or error)
        raise NotReady(f"PostgreSQL at {where} cannot be reached: {reason}") from None
    finally:
        engine.dispose()


def redis_answers(url: str) -> None:
    from redis.exceptions import RedisError

    from webapp.readiness import ping_redis

    try:
        ping_redis(url, CONNECT_SECONDS)
    except (RedisError, OSError) as error:
        raise NotReady(f"Redis at {_without_password(url)} cannot be reached: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def instance_path() -> str:
    from webapp import ROOT

    return os.path.join(ROOT, "instance")
