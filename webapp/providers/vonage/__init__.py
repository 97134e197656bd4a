"""Vonage, the one real provider: SMS and WhatsApp through the Messages API, its signed webhooks, and
the account's numbers through the Numbers API, all behind the port (webapp.providers.base).

    sending.py    the Messages API through the official SDK: timeouts, no retries, what a failure means
    signature.py  the webhooks' signature: an HS256 JWT whose payload_hash is the body's SHA-256
    webhooks.py   the inbound and status bodies, checked field by field into the port's types
    numbers.py    the Numbers API: the numbers owned, those on offer, buying one
    http.py       the SDK's HTTP client alone, without loading the SDK's other APIs

Settings (all VONAGE_*): the application id and private key for sending, the signature secret for the
webhooks, the API key and secret for the numbers account. The SDK loads when a message is sent or the
account is asked (sending.py, numbers.py), not when a webhook is read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask

from webapp.providers.base import InboundMessage, Outbound, Pace, StatusReport
from webapp.providers.vonage import signature, webhooks
from webapp.providers.vonage.numbers import VonageNumbers

if TYPE_CHECKING:
    from webapp.providers.vonage.sending import VonageSender

log = logging.getLogger("relay.webhooks")

# How fast Vonage lets us send (webapp.messaging.pacing). "What is the Throughput Limit for Outbound
# SMS?" (https://api.support.vonage.com/hc/en-us/articles/203993598): "All API keys are set with 30 API
# requests per second throughput restriction by default. […] When sending from US long virtual
# numbers, you are restricted to 1 SMS per second." A registered US 10DLC campaign may get more
# (https://api.support.vonage.com/hc/en-us/articles/4406782736532, per campaign and carrier): set
# SEND_RATE_PER_COUNTRY=US=… then. Canada's long numbers are the same kind of NANP number; the article
# does not name Canada, so 1 a second there is our caution, not Vonage's word. For every other country
# Vonage states no per-number limit: only the account's applies.
PACE = Pace("VONAGE_RATE_PER_SECOND", {"US": 1.0, "CA": 1.0})


class Vonage:
    label = "Vonage"

    def __init__(self, config: Mapping[str, Any]) -> None:
        # The app's live settings: read when used, so a setting changed after start-up (tests) counts.
        self.config = config
        self.numbers = VonageNumbers(config)
        self._sender: VonageSender | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        if self._sender is None:
            with self._lock:
                if self._sender is None:
                    from webapp.providers.vonage.sending import from_config

                    self._sender = from_config(self.config)

    def send(self, outbound: Outbound) -> str:
        self.open()
        assert self._sender is not None
        return self._sender.send(outbound)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        try:
            secret = self.config.get("VONAGE_SIGNATURE_SECRET") or ""
            signature.verify(headers.get("Authorization"), body, secret)
        except signature.InvalidSignature as exc:
            log.warning("Vonage webhook refused: %s", exc)
            return False
        return True

    def parse_inbound(self, body: bytes) -> InboundMessage:
        return webhooks.inbound(body)

    def parse_status(self, body: bytes) -> StatusReport:
        return webhooks.status(body)


def create(app: Flask) -> Vonage:
    return Vonage(app.config)
