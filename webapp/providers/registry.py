"""The provider for a channel, built once per app from its settings."""

from __future__ import annotations

from flask import Flask

from webapp.providers.base import Provider


def for_channel(app: Flask, channel: str) -> Provider:
    cache: dict[str, Provider] = app.extensions.setdefault("relay.providers", {})
    key = "email" if channel == "email" else "texting"
    if key not in cache:
        cache[key] = _build(app, key)
    return cache[key]


def _build(app: Flask, key: str) -> Provider:
    if key == "email":
        from webapp.providers import smtp

        return smtp.from_config(app.config)
    if app.config["MESSAGING_PROVIDER"] == "vonage":
        from webapp.providers import vonage

        return vonage.from_config(app.config)
    from webapp.providers.simulator import SimulatorProvider

    return SimulatorProvider(app, app.config["SIMULATOR_DELIVERY_SECONDS"])


def close(app: Flask) -> None:
    """Stop what the providers and the in-process dispatcher still have running (tests, shutdown)."""
    executor = app.extensions.pop("relay.executor", None)
    if executor is not None:
        executor.shutdown(wait=True)
    for provider in app.extensions.pop("relay.providers", {}).values():
        closer = getattr(provider, "close", None)
        if closer is not None:
            closer()
