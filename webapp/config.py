"""Settings, read from the environment once, with defaults that are safe for development."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEV_SECRET_KEY = "relay-development-only-not-secret"
DEV_SIGNATURE_SECRET = "relay-development-signature-secret-0123456789"
ENVIRONMENTS = ("development", "testing", "production")
PUBLIC_SECRETS = (DEV_SECRET_KEY, DEV_SIGNATURE_SECRET)
MIN_SECRET_LENGTH = 32
# The longest time a setting or a command's option may give in seconds: ten years, far beyond any wait
# Relay has and well within what a date can be moved by (1e308 seconds cannot be).
MAX_SECONDS = 10 * 366 * 24 * 3600
# The texting providers: a name (each sending number records it; its webhooks are /webhooks/<name>/…)
# and the module whose create(app) builds it (webapp.providers.base says what it must do). The setting
# TEXTING_PROVIDERS adds more, or points a name elsewhere: "name=package.module,name2=package.module2".
BUILT_IN_PROVIDERS = {"vonage": "webapp.providers.vonage", "simulator": "webapp.providers.simulator"}
_PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")  # a path segment, and SendingNumber.provider


class ConfigError(RuntimeError):
    """The settings cannot be used; the message says which one and why."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _switch(env: Mapping[str, str], name: str) -> bool | None:
    """On or off as written, None when unset (the setting's default then depends on others)."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
        raise ConfigError(f"{name} must be 1 or 0 (on or off), not {raw!r}")
    return _bool(raw)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def seconds(text: str) -> float:
    """A number of seconds as typed (a setting, a command's option); ValueError, saying what is
    accepted, for anything else: nan, inf, 1e308, a negative number, a word."""
    try:
        # float() also reads digits of other scripts ("٣" is 3); a setting is written in ASCII.
        value = float(text) if text.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= MAX_SECONDS):
        raise ValueError(f"a number of seconds from 0 to {MAX_SECONDS} (ten years), not {text.strip()!r}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return seconds(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be {exc}") from None


def _minutes(env: Mapping[str, str], name: str, default: float) -> float:
    """A setting counted in minutes, read as _seconds reads seconds (the same bound, in minutes)."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    longest = MAX_SECONDS // 60
    try:
        value = seconds(raw)
    except ValueError:
        value = math.nan
    if not value <= longest:  # nan too
        raise ConfigError(
            f"{name} must be a number of minutes from 0 to {longest} (ten years), not {raw.strip()!r}"
        )
    return value


def _rate_value(text: str) -> float:
    """Messages a second as typed: 0 or more (0.5 is one every two seconds); ValueError otherwise."""
    value = float(text) if text.strip().isascii() else math.nan
    if not (math.isfinite(value) and 0 <= value <= 1_000_000):
        raise ValueError(text)
    return value


def _rate(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return _rate_value(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be a number of messages a second (0 or more), not {raw.strip()!r}"
        ) from None


def _rates_by_country(raw: str | None) -> dict[str, float]:
    """SEND_RATE_PER_COUNTRY: "US=1,CA=0.5" (ISO 3166 alpha-2 = messages a second per number)."""
    found: dict[str, float] = {}
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        country, equals, rate = (part.strip() for part in item.partition("="))
        try:
            if not equals or not re.fullmatch(r"[A-Za-z]{2}", country):
                raise ValueError(item)
            found[country.upper()] = _rate_value(rate)
        except ValueError:
            raise ConfigError(
                f"SEND_RATE_PER_COUNTRY: {item.strip()!r} is not COUNTRY=rate (US=1: a rate of 0 or more)"
            ) from None
    return found


def _providers(raw: str | None) -> dict[str, str]:
    found = dict(BUILT_IN_PROVIDERS)
    for item in (raw or "").split(","):
        name, equals, module = (part.strip() for part in item.partition("="))
        if not (name or module):
            continue
        if not equals or not _PROVIDER_NAME.fullmatch(name) or not module:
            raise ConfigError(
                f"TEXTING_PROVIDERS: {item.strip()!r} is not name=package.module "
                "(a name of lower-case letters, digits, - or _)"
            )
        found[name] = module
    return found


def from_environment(instance_path: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from environment variables (the README's Settings table)."""
    env = os.environ if environ is None else environ
    relay_env = env.get("RELAY_ENV", "development").strip().lower()
    if relay_env not in ENVIRONMENTS:
        raise ConfigError(f"RELAY_ENV must be one of {', '.join(ENVIRONMENTS)}, not {relay_env!r}")
    production = relay_env == "production"
    development = relay_env == "development"
    providers = _providers(env.get("TEXTING_PROVIDERS"))
    provider = env.get("MESSAGING_PROVIDER", "simulator")
    if provider not in providers:
        raise ConfigError(f"MESSAGING_PROVIDER must be {' or '.join(sorted(providers))}, not {provider!r}")
    if production and provider != "simulator" and not _bool(env.get("ALLOW_SIMULATOR_IN_PRODUCTION")):
        # In production the simulator carries nothing: no number can be given to it (its messages would
        # be paid for and never sent), and its webhooks are not open.
        providers.pop("simulator", None)
    default_db = "sqlite:///" + str(Path(instance_path) / "relay.db")
    database_url = _database_url(env.get("DATABASE_URL") or default_db)
    dispatch_mode = env.get("DISPATCH_MODE") or ("rq" if env.get("REDIS_URL") else "thread")

    return {
        "RELAY_ENV": relay_env,
        # Development only: check() refuses this value everywhere else.
        "SECRET_KEY": env.get("SECRET_KEY") or (DEV_SECRET_KEY if development else ""),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url, env),
        "REDIS_URL": env.get("REDIS_URL") or None,
        "MESSAGING_PROVIDER": env.get("MESSAGING_PROVIDER", "simulator"),
        "TEXTING_PROVIDERS": providers,
        # rq when Redis is configured, else a thread pool in this process ("inline" runs it at once).
        "DISPATCH_MODE": dispatch_mode,
        # Tries of a send that certainly did not reach the provider (refused connection, 429).
        "SEND_MAX_ATTEMPTS": _int(env, "SEND_MAX_ATTEMPTS", 4),
        "SEND_BACKOFF_SECONDS": _seconds(env, "SEND_BACKOFF_SECONDS", 1),
        # A claim older than this is a dispatcher that died (webapp.messaging.dispatch.recover).
        "SEND_LEASE_SECONDS": _seconds(env, "SEND_LEASE_SECONDS", 120),
        # How long a send whose outcome is unknown waits for the provider's report before it is given up.
        "SEND_UNKNOWN_WAIT_SECONDS": _seconds(env, "SEND_UNKNOWN_WAIT_SECONDS", 900),
        "SEND_REQUEUE_AFTER_SECONDS": _seconds(env, "SEND_REQUEUE_AFTER_SECONDS", 300),
        # How often the clock sweeps for the above (0: never; `dispatch requeue` still does).
        "DISPATCH_SWEEP_SECONDS": _seconds(env, "DISPATCH_SWEEP_SECONDS", 30),
        # Webhooks stored first and applied by the RQ workers ("queued", the default with RQ), or applied
        # in the request ("direct"); webapp.messaging.ingest says why.
        "WEBHOOK_INGEST": (env.get("WEBHOOK_INGEST") or "").strip().lower()
        or ("queued" if dispatch_mode == "rq" else "direct"),
        # How often the clock applies stored webhooks that no worker applied within as long (0: never).
        "WEBHOOK_SWEEP_SECONDS": _seconds(env, "WEBHOOK_SWEEP_SECONDS", 15),
        # How often the clock hands messages scheduled for later to dispatch once their time has come
        # (0: never). A message leaves within this long of its time, plus its turn in the pacing.
        "SCHEDULED_SEND_EVERY_SECONDS": _seconds(env, "SCHEDULED_SEND_EVERY_SECONDS", 15),
        # Email notifications (webapp.notifications.emails): a reply still unread this many minutes after
        # it came is emailed to whom it concerns; the clock looks this often (0: never).
        "NOTIFY_WAIT_MINUTES": _minutes(env, "NOTIFY_WAIT_MINUTES", 10),
        "NOTIFY_EVERY_SECONDS": _seconds(env, "NOTIFY_EVERY_SECONDS", 60),
        # The top bar's count on a page that has no poll of its own asks this often (seconds).
        "WAITING_POLL_SECONDS": _seconds(env, "WAITING_POLL_SECONDS", 10),
        # How many due messages the scheduler takes (and locks) in one transaction.
        "SCHEDULED_SEND_BATCH": _int(env, "SCHEDULED_SEND_BATCH", 500),
        # The recipients' quiet hours (webapp.messaging.timing): a text written at night for them is held
        # to their morning. Off only for tests and benchmarks that send at whatever hour they run.
        # Only an explicit off turns them off: an empty or mistyped value keeps the law's hours.
        "QUIET_HOURS": (env.get("QUIET_HOURS") or "").strip().lower() not in {"0", "false", "no", "off"},
        # Number health (webapp.numbers.health): how often the clock recounts today's and yesterday's
        # messages per number, tells of numbers near their guidance and pauses those over it (0: never);
        # and how often it recounts the last 30 days, for late delivery reports and days not yet counted.
        "HEALTH_EVERY_SECONDS": _seconds(env, "HEALTH_EVERY_SECONDS", 60),
        "HEALTH_RECOUNT_SECONDS": _seconds(env, "HEALTH_RECOUNT_SECONDS", 3600),
        # How often the clock expires compliance approvals past their date (0: never; the CLI still does).
        "COMPLIANCE_EXPIRY_SECONDS": _seconds(env, "COMPLIANCE_EXPIRY_SECONDS", 3600),
        # Whether a served app (wsgi.py) keeps the clock in a thread of its own process; None (unset):
        # when messages are dispatched in-process (DISPATCH_MODE=thread). Else `flask --app wsgi clock`.
        "CLOCK_IN_PROCESS": _switch(env, "CLOCK_IN_PROCESS"),
        "DISPATCH_THREADS": _int(env, "DISPATCH_THREADS", 8),
        # Sends in flight at once in each sending worker process (`flask --app wsgi worker`), each in a
        # thread of its own (webapp.messaging.worker); the database pool holds at least as many.
        "SEND_WORKER_THREADS": _int(env, "SEND_WORKER_THREADS", 4),
        # Paced sending (webapp.messaging.pacing): requests a second for the Vonage account (0: not
        # paced), SMS a second per sending number (unset: by country, from Vonage's guidance; 0: no
        # limit), per-country overrides ("US=3,CA=1"), the margin added to each bucket's window, and the
        # longest a dispatcher waits for a turn before leaving the message queued for the sweep.
        "VONAGE_RATE_PER_SECOND": _rate(env, "VONAGE_RATE_PER_SECOND", 30.0),
        "SEND_RATE_PER_NUMBER": _rate(env, "SEND_RATE_PER_NUMBER", None),
        "SEND_RATE_PER_COUNTRY": _rates_by_country(env.get("SEND_RATE_PER_COUNTRY")),
        "SEND_PACING_MARGIN_SECONDS": _seconds(env, "SEND_PACING_MARGIN_SECONDS", 0.1),
        "SEND_PACING_MAX_WAIT_SECONDS": _seconds(env, "SEND_PACING_MAX_WAIT_SECONDS", 30),
        "SIMULATOR_DELIVERY_SECONDS": _seconds(env, "SIMULATOR_DELIVERY_SECONDS", 3),
        "VONAGE_TIMEOUT": _seconds(env, "VONAGE_TIMEOUT", 10),
        "VONAGE_CONNECT_TIMEOUT": _seconds(env, "VONAGE_CONNECT_TIMEOUT", 3),
        "SMTP_TIMEOUT": _seconds(env, "SMTP_TIMEOUT", 10),
        "VONAGE_APPLICATION_ID": env.get("VONAGE_APPLICATION_ID"),
        "VONAGE_PRIVATE_KEY_PATH": env.get("VONAGE_PRIVATE_KEY_PATH"),
        # Verifies Vonage's webhooks. Development has a public default (to try them against a local fake);
        # elsewhere it must be set (check()).
        "VONAGE_SIGNATURE_SECRET": env.get("VONAGE_SIGNATURE_SECRET")
        or (DEV_SIGNATURE_SECRET if development else ""),
        # Production sends through Vonage; the simulator there is a deliberate choice (a demo server).
        "ALLOW_SIMULATOR_IN_PRODUCTION": _bool(env.get("ALLOW_SIMULATOR_IN_PRODUCTION")),
        "VONAGE_API_HOST": env.get("VONAGE_API_HOST", "api.nexmo.com"),
        # The Numbers API (the numbers the account owns, for the staff pages) signs in with the account's
        # API key and secret, not the application's JWT, and lives on the REST host. Optional: without
        # them staff type numbers in.
        "VONAGE_API_KEY": env.get("VONAGE_API_KEY") or None,
        "VONAGE_API_SECRET": env.get("VONAGE_API_SECRET") or None,
        "VONAGE_REST_HOST": env.get("VONAGE_REST_HOST", "rest.nexmo.com"),
        "SMTP_URL": env.get("SMTP_URL") or None,
        "UPLOAD_DIR": env.get("UPLOAD_DIR") or str(Path(instance_path) / "uploads"),
        # Fernet key(s) for the compliance documents at rest, comma-separated: the first encrypts, all
        # decrypt (so a key can be rotated). Production requires it; elsewhere, without it, a key is
        # generated into the instance folder on first use (webapp.compliance.files).
        "RELAY_FILE_KEY": env.get("RELAY_FILE_KEY") or None,
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000"),
        # Cookies: never readable from scripts, never sent on cross-site POSTs, HTTPS-only in production.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        # The token is bound to the session, and pages stay open for hours while recruiters work in
        # them (htmx keeps the token of the first render); the session cookie bounds its life instead.
        "WTF_CSRF_TIME_LIMIT": None,
        "LOGIN_MAX_FAILURES_PER_ACCOUNT": _int(env, "LOGIN_MAX_FAILURES_PER_ACCOUNT", 5),
        "LOGIN_MAX_FAILURES_PER_ADDRESS": _int(env, "LOGIN_MAX_FAILURES_PER_ADDRESS", 20),
        # Reverse proxies in front of the app that set X-Forwarded-For and -Proto (0: none, the headers are
        # ignored: anyone could send them). The client's address counts for the sign-in and booking limits
        # and METRICS_ALLOW_FROM; the scheme makes redirects https.
        "TRUSTED_PROXIES": _int(env, "TRUSTED_PROXIES", 0),
        "LOGIN_FAILURE_WINDOW_SECONDS": _int(env, "LOGIN_FAILURE_WINDOW_SECONDS", 900),
        # The public booking page (/book/<token>): requests per address, and per link (token), within
        # the window.
        "BOOKING_MAX_REQUESTS_PER_ADDRESS": _int(env, "BOOKING_MAX_REQUESTS_PER_ADDRESS", 60),
        "BOOKING_MAX_REQUESTS_PER_TOKEN": _int(env, "BOOKING_MAX_REQUESTS_PER_TOKEN", 30),
        "BOOKING_WINDOW_SECONDS": _int(env, "BOOKING_WINDOW_SECONDS", 600),
        # A sign-in lasts at most SESSION_LIFETIME_SECONDS (absolute) and ends after SESSION_IDLE_SECONDS
        # without a request (0: no idle limit); both are enforced on the server (webapp.accounts.sessions).
        "SESSION_LIFETIME_SECONDS": _int(env, "SESSION_LIFETIME_SECONDS", 12 * 3600),
        "SESSION_IDLE_SECONDS": _int(env, "SESSION_IDLE_SECONDS", 30 * 60),
        "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
        # Log lines (webapp.logs): one JSON object a line for machines, or text for a person reading.
        "LOG_FORMAT": (env.get("LOG_FORMAT") or ("json" if production else "text")).strip().lower(),
        "LOG_LEVEL": (env.get("LOG_LEVEL") or "INFO").strip().upper(),
        # Who may read /metrics (webapp.metrics.allowed): a bearer token, and/or addresses (IPs, CIDRs).
        "METRICS_TOKEN": env.get("METRICS_TOKEN") or None,
        "METRICS_ALLOW_FROM": _networks(env.get("METRICS_ALLOW_FROM")),
        # Read by prometheus-client itself from the environment; here to be checked before it is used.
        "PROMETHEUS_MULTIPROC_DIR": env.get("PROMETHEUS_MULTIPROC_DIR") or None,
    }


def _engine_options(url: str, env: Mapping[str, str]) -> dict[str, Any]:
    # Pooled connections are pinged when they were idle (webapp.database.ping_when_idle), not at every
    # checkout as SQLAlchemy's pool_pre_ping does.
    options: dict[str, Any] = {}
    if url.startswith("postgresql"):
        # A database that does not answer must fail a request quickly (503), not hang it.
        timeout = _seconds(env, "DATABASE_CONNECT_TIMEOUT", 5)
        options["connect_args"] = {"connect_timeout": max(1, round(timeout))}
    return options


def size_pool(config: dict[str, Any]) -> None:
    """Keep at least SEND_WORKER_THREADS PostgreSQL connections in the pool (of the settings as finally
    given, overrides included). A sending worker's threads each hold one through their transactions;
    SQLAlchemy keeps 5 and opens up to 10 more only to close them after each use, which on PostgreSQL
    is a new backend process per transaction. (SQLite's pools are left as they are: an in-memory
    database has a pool of one connection.)"""
    if not str(config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("postgresql"):
        return
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options.setdefault("pool_size", max(5, config.get("SEND_WORKER_THREADS", 1)))
    config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _networks(raw: str | None) -> tuple[str, ...]:
    """METRICS_ALLOW_FROM: comma-separated addresses or networks, each checked, written normalised."""
    found = []
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        try:
            found.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise ConfigError(
                f"METRICS_ALLOW_FROM: {item.strip()!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(found)


def _database_url(url: str) -> str:
    # Heroku-style and plain postgres URLs mean psycopg 3, the driver we install.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def check(config: dict[str, Any]) -> None:
    """Refuse settings that would be unsafe, naming the setting and what to do."""
    _check_dispatch(config)
    _check_ingest(config)
    _check_providers(config)
    relay_env = config.get("RELAY_ENV")
    vonage = config.get("MESSAGING_PROVIDER") == "vonage"
    if relay_env != "development" or vonage:
        # The development values are in this public source: whoever reads it could sign sessions
        # (SECRET_KEY) or webhooks that change real data (VONAGE_SIGNATURE_SECRET).
        why = "MESSAGING_PROVIDER=vonage" if relay_env == "development" else f"RELAY_ENV={relay_env}"
        _require_secret(config, "SECRET_KEY", why)
        _require_secret(config, "VONAGE_SIGNATURE_SECRET", why)
    if relay_env == "production" and not vonage and not config.get("ALLOW_SIMULATOR_IN_PRODUCTION"):
        raise ConfigError(
            "RELAY_ENV=production with MESSAGING_PROVIDER=simulator would pretend to send every SMS and "
            "WhatsApp message: set MESSAGING_PROVIDER=vonage, or ALLOW_SIMULATOR_IN_PRODUCTION=1 for a "
            "demonstration server"
        )
    if vonage:
        _check_vonage_credentials(config)
    _check_file_key(config)
    if bool(config.get("VONAGE_API_KEY")) != bool(config.get("VONAGE_API_SECRET")):
        raise ConfigError("VONAGE_API_KEY and VONAGE_API_SECRET go together: set both, or neither")
    if not 0 <= config.get("TRUSTED_PROXIES", 0) <= 10:
        raise ConfigError("TRUSTED_PROXIES must be the number of reverse proxies in front of Relay, 0 to 10")
    if config.get("SESSION_LIFETIME_SECONDS", 1) <= 0:
        raise ConfigError("SESSION_LIFETIME_SECONDS must be more than 0")
    if config.get("SESSION_IDLE_SECONDS", 0) < 0:
        raise ConfigError("SESSION_IDLE_SECONDS must be 0 (no idle limit) or more")
    _check_observing(config)


def _check_observing(config: dict[str, Any]) -> None:
    if config.get("LOG_FORMAT", "text") not in ("json", "text"):
        raise ConfigError(f"LOG_FORMAT must be json or text, not {config['LOG_FORMAT']!r}")
    if config.get("LOG_LEVEL", "INFO") not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(
            f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {config['LOG_LEVEL']!r}"
        )
    directory = config.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and not (os.path.isdir(directory) and os.access(directory, os.W_OK)):
        # Every process writes its counts there from its start; make it (empty) before they start.
        raise ConfigError(
            f"PROMETHEUS_MULTIPROC_DIR={directory} is not a directory this process can write to: "
            "create it, empty, before starting the processes"
        )
    token = config.get("METRICS_TOKEN")
    if token is not None and len(token) < MIN_SECRET_LENGTH:
        # Whoever guesses it reads how much every customer sends; as hard to guess as the other secrets.
        raise ConfigError(
            f"METRICS_TOKEN must be {MIN_SECRET_LENGTH} characters or more (it is {len(token)}). Make one "
            "with: python -c 'import secrets; print(secrets.token_hex(32))'"
        )


def _require_secret(config: dict[str, Any], name: str, why: str) -> None:
    value = config.get(name) or ""
    if value in PUBLIC_SECRETS:
        problem = "the development value, which is public"
    elif not value:
        problem = "not set"
    elif len(value) < MIN_SECRET_LENGTH:
        problem = f"only {len(value)} characters long"
    else:
        return
    where = " (the account's signature secret in the Vonage dashboard)" if name.startswith("VONAGE") else ""
    raise ConfigError(
        f"{why} needs a real {name}{where} of {MIN_SECRET_LENGTH} characters or more; it is {problem}. "
        "Make one with: python -c 'import secrets; print(secrets.token_hex(32))'"
    )


def _check_vonage_credentials(config: dict[str, Any]) -> None:
    """The application id and a readable private key, so that the first send does not find out."""
    missing = [n for n in ("VONAGE_APPLICATION_ID", "VONAGE_PRIVATE_KEY_PATH") if not config.get(n)]
    if missing:
        raise ConfigError(f"MESSAGING_PROVIDER=vonage needs {' and '.join(missing)}")
    key = str(config["VONAGE_PRIVATE_KEY_PATH"])
    if "-----BEGIN" in key:  # the key itself, as the provider also accepts
        return
    try:
        with open(key, "rb") as key_file:
            content = key_file.read(64 * 1024)
    except OSError as error:
        raise ConfigError(
            f"VONAGE_PRIVATE_KEY_PATH={key}: the Vonage private key cannot be read ({error.strerror})"
        ) from None
    if b"PRIVATE KEY-----" not in content:
        raise ConfigError(f"VONAGE_PRIVATE_KEY_PATH={key}: the file is not a PEM private key")


def _check_providers(config: dict[str, Any]) -> None:
    providers = config.get("TEXTING_PROVIDERS") or {}
    for name in providers:
        if not _PROVIDER_NAME.fullmatch(name):
            raise ConfigError(
                f"TEXTING_PROVIDERS: {name!r} is not a provider name (lower-case letters, digits, - or _)"
            )
    default = config.get("MESSAGING_PROVIDER")
    if default not in providers:
        raise ConfigError(f"MESSAGING_PROVIDER must be {' or '.join(sorted(providers))}, not {default!r}")


def _check_ingest(config: dict[str, Any]) -> None:
    ingest = config.get("WEBHOOK_INGEST", "direct")
    if ingest not in ("direct", "queued"):
        raise ConfigError(f"WEBHOOK_INGEST must be direct or queued, not {ingest!r}")
    if ingest == "queued" and config.get("DISPATCH_MODE") != "rq":
        raise ConfigError("WEBHOOK_INGEST=queued needs the RQ workers to apply the webhooks: set REDIS_URL")


def _check_dispatch(config: dict[str, Any]) -> None:
    if config.get("DISPATCH_THREADS", 1) < 1:
        raise ConfigError("DISPATCH_THREADS must be 1 or more")
    if config.get("SEND_WORKER_THREADS", 1) < 1:
        raise ConfigError("SEND_WORKER_THREADS must be 1 or more")
    # A lease shorter than one try would declare a live sender dead (safe, since a lost claim is never
    # resent, but every slow send would then wait for its report instead of its answer).
    vonage_try = config.get("VONAGE_CONNECT_TIMEOUT", 0) + config.get("VONAGE_TIMEOUT", 0)
    longest_try = max(vonage_try, config.get("SMTP_TIMEOUT", 0))
    backoff = config.get("SEND_BACKOFF_SECONDS", 0) * 2 ** max(0, config.get("SEND_MAX_ATTEMPTS", 1) - 2)
    if config.get("SEND_LEASE_SECONDS", 0) <= longest_try + backoff:
        raise ConfigError(
            f"SEND_LEASE_SECONDS must be longer than one try and its backoff ({longest_try + backoff:g} s "
            "with these timeouts)"
        )


def file_keys(value: str | None) -> list[bytes]:
    """The Fernet keys in RELAY_FILE_KEY (comma-separated, the first encrypts), or ConfigError."""
    from cryptography.fernet import Fernet

    keys = [k.strip().encode() for k in (value or "").split(",") if k.strip()]
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"RELAY_FILE_KEY: key {number} is not a Fernet key (32 bytes in URL-safe base64). Make one "
                "with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None
    return keys


def _check_file_key(config: dict[str, Any]) -> None:
    keys = file_keys(config.get("RELAY_FILE_KEY"))
    if not keys and config.get("RELAY_ENV") == "production":
        # Identity documents are personal data: production never falls back to a key on local disk.
        raise ConfigError(
            "RELAY_ENV=production needs RELAY_FILE_KEY, the key that encrypts compliance documents at rest. "
            "Make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        )
