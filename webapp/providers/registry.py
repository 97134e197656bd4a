"""Which provider carries what: built once per app, from its settings.

Texting providers are named in the setting TEXTING_PROVIDERS (name → the module that builds it); each
sending number records the name of the one it belongs to, and MESSAGING_PROVIDER names the default (for
numbers added by hand). Email always goes through SMTP.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from flask import Flask

from webapp.config import ConfigError
from webapp.providers.base import Pace, Provider, Sender

_BUILDING = threading.Lock()


def names(app: Flask) -> list[str]:
    """Every texting provider's name, the default first."""
    default = default_name(app)
    return [default, *(name for name in app.config["TEXTING_PROVIDERS"] if name != default)]


def default_name(app: Flask) -> str:
    return str(app.config["MESSAGING_PROVIDER"])


def texting(app: Flask, name: str | None = None) -> Provider:
    """The texting provider of this name (None: the default), built on first use. ConfigError for a
    name that is not configured."""
    name = name or default_name(app)
    cache: dict[str, Sender] = app.extensions.setdefault("relay.providers", {})
    key = f"texting:{name}"
    if key not in cache:
        with _BUILDING:
            if key not in cache:
                cache[key] = _build(app, name)
    return cache[key]  # type: ignore[return-value]


def every(app: Flask) -> dict[str, Provider]:
    """Every texting provider, by name, the default first."""
    return {name: texting(app, name) for name in names(app)}


def for_sending(app: Flask, channel: str, provider: str | None = None) -> Sender:
    """What sends on this channel: SMTP for email; else the named texting provider (that of the number
    the message leaves from; None: the default), ready to send (ConfigError if it cannot be)."""
    if channel == "email":
        return _email(app)
    texter = texting(app, provider)
    texter.open()
    return texter


def for_channel(app: Flask, channel: str) -> Sender:
    """SMTP for email, else the default texting provider."""
    return for_sending(app, channel)


def _email(app: Flask) -> Sender:
    cache: dict[str, Sender] = app.extensions.setdefault("relay.providers", {})
    if "email" not in cache:
        from webapp.providers import smtp

        cache["email"] = smtp.from_config(app.config)
    return cache["email"]


def _build(app: Flask, name: str) -> Provider:
    module_name = app.config["TEXTING_PROVIDERS"].get(name)
    if module_name is None:
        known = ", ".join(sorted(app.config["TEXTING_PROVIDERS"]))
        raise ConfigError(f"No texting provider is called {name!r} (TEXTING_PROVIDERS has {known})")
    provider: Provider = importlib.import_module(module_name).create(app)
    return provider


def close(app: Flask) -> None:
    """Stop what the providers and the in-process dispatcher still have running (tests, shutdown)."""
    executor = app.extensions.pop("relay.executor", None)
    if executor is not None:
        executor.shutdown(wait=True)
    for provider in app.extensions.pop("relay.providers", {}).values():
        closer = getattr(provider, "close", None)
        if closer is not None:
            closer()


def pace(config: Mapping[str, Any], name: str | None) -> Pace | None:
    """The pace the provider named `name` declares (its module's PACE), or None: not paced. Read from
    its module without building it, so that taking a turn loads no SDK."""
    module = (config.get("TEXTING_PROVIDERS") or {}).get(name or "")
    return _declared_pace(module) if module else None


@lru_cache(maxsize=32)
def _declared_pace(module: str) -> Pace | None:
    return getattr(importlib.import_module(module), "PACE", None)
