"""Settings, read from the environment once, with defaults that are safe for development."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEV_SECRET_KEY = "relay-development-only-not-secret"
DEV_SIGNATURE_SECRET = "relay-development-signature-secret-0123456789"
ENVIRONMENTS = ("development", "testing", "production")


class ConfigError(RuntimeError):
    """The settings cannot be used; the message says which one and why."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def from_environment(instance_path: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config from environment variables (DESIGN §6)."""
    env = os.environ if environ is None else environ
    relay_env = env.get("RELAY_ENV", "development").strip().lower()
    if relay_env not in ENVIRONMENTS:
        raise ConfigError(f"RELAY_ENV must be one of {', '.join(ENVIRONMENTS)}, not {relay_env!r}")
    production = relay_env == "production"
    provider = env.get("MESSAGING_PROVIDER", "simulator")
    if provider not in ("simulator", "vonage"):
        raise ConfigError(f"MESSAGING_PROVIDER must be simulator or vonage, not {provider!r}")
    default_db = "sqlite:///" + str(Path(instance_path) / "relay.db")

    return {
        "RELAY_ENV": relay_env,
        "SECRET_KEY": env.get("SECRET_KEY") or DEV_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": _database_url(env.get("DATABASE_URL") or default_db),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": env.get("REDIS_URL") or None,
        "MESSAGING_PROVIDER": env.get("MESSAGING_PROVIDER", "simulator"),
        # rq when Redis is configured, else a thread pool in this process ("inline" runs it at once).
        "DISPATCH_MODE": env.get("DISPATCH_MODE") or ("rq" if env.get("REDIS_URL") else "thread"),
        # Tries of a send that certainly did not reach the provider (refused connection, 429).
        "SEND_MAX_ATTEMPTS": int(env.get("SEND_MAX_ATTEMPTS", "4")),
        "SEND_BACKOFF_SECONDS": float(env.get("SEND_BACKOFF_SECONDS", "1")),
        # A claim older than this is a dispatcher that died (webapp.messaging.dispatch.recover).
        "SEND_LEASE_SECONDS": float(env.get("SEND_LEASE_SECONDS", "120")),
        # How long a send whose outcome is unknown waits for the provider's report before it is given up.
        "SEND_UNKNOWN_WAIT_SECONDS": float(env.get("SEND_UNKNOWN_WAIT_SECONDS", "900")),
        "SEND_REQUEUE_AFTER_SECONDS": float(env.get("SEND_REQUEUE_AFTER_SECONDS", "300")),
        # How often the worker and each web process sweep for the above (0: never; the CLI still does).
        "DISPATCH_SWEEP_SECONDS": float(env.get("DISPATCH_SWEEP_SECONDS", "30")),
        "DISPATCH_THREADS": int(env.get("DISPATCH_THREADS", "8")),
        "SIMULATOR_DELIVERY_SECONDS": float(env.get("SIMULATOR_DELIVERY_SECONDS", "3")),
        "VONAGE_TIMEOUT": float(env.get("VONAGE_TIMEOUT", "10")),
        "VONAGE_CONNECT_TIMEOUT": float(env.get("VONAGE_CONNECT_TIMEOUT", "3")),
        "SMTP_TIMEOUT": float(env.get("SMTP_TIMEOUT", "10")),
        "VONAGE_APPLICATION_ID": env.get("VONAGE_APPLICATION_ID"),
        "VONAGE_PRIVATE_KEY_PATH": env.get("VONAGE_PRIVATE_KEY_PATH"),
        # Development signs the simulator's fake webhooks with this; production must set its own.
        "VONAGE_SIGNATURE_SECRET": env.get("VONAGE_SIGNATURE_SECRET")
        or ("" if production else DEV_SIGNATURE_SECRET),
        "VONAGE_API_HOST": env.get("VONAGE_API_HOST", "api.nexmo.com"),
        "SMTP_URL": env.get("SMTP_URL") or None,
        "UPLOAD_DIR": env.get("UPLOAD_DIR") or str(Path(instance_path) / "uploads"),
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
        "LOGIN_MAX_FAILURES_PER_ACCOUNT": int(env.get("LOGIN_MAX_FAILURES_PER_ACCOUNT", "5")),
        "LOGIN_MAX_FAILURES_PER_ADDRESS": int(env.get("LOGIN_MAX_FAILURES_PER_ADDRESS", "20")),
        "LOGIN_FAILURE_WINDOW_SECONDS": int(env.get("LOGIN_FAILURE_WINDOW_SECONDS", "900")),
        "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    }


def _database_url(url: str) -> str:
    # Heroku-style and plain postgres URLs mean psycopg 3, the driver we install.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def check(config: dict[str, Any]) -> None:
    """Refuse settings that would be unsafe."""
    _check_dispatch(config)
    secret = config.get("VONAGE_SIGNATURE_SECRET") or ""
    if config.get("MESSAGING_PROVIDER") == "vonage" and (secret == DEV_SIGNATURE_SECRET or len(secret) < 32):
        # With real Vonage, webhooks change real data: the public development secret would let anyone sign.
        raise ConfigError(
            "MESSAGING_PROVIDER=vonage needs VONAGE_SIGNATURE_SECRET (32 characters or more, as set for "
            "the account in the Vonage dashboard) to verify the webhooks"
        )
    if config.get("RELAY_ENV") != "production":
        return
    key = config.get("SECRET_KEY") or ""
    if key == DEV_SECRET_KEY or len(key) < 32:
        raise ConfigError(
            "RELAY_ENV=production needs a real SECRET_KEY (32 characters or more), "
            "e.g. python -c 'import secrets; print(secrets.token_hex(32))'"
        )


def _check_dispatch(config: dict[str, Any]) -> None:
    if config.get("DISPATCH_THREADS", 1) < 1:
        raise ConfigError("DISPATCH_THREADS must be 1 or more")
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
