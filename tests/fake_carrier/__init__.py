"""A second texting provider, for the tests only: the whole port in memory, in one package, made known
to Relay by the settings alone (TEXTING_PROVIDERS = {"carrier": "tests.fake_carrier", …}).

Its webhooks speak a language of their own, unlike Vonage's and the simulator's: `{"id", "from", "to",
"body", "kind"}` for a message, `{"id", "state", "reference", "reason"}` for a status (states in capitals),
authenticated by a shared token in `X-Carrier-Token` (its own setting, CARRIER_TOKEN). What it sent is
kept in `sent`; its account owns `owned` and offers `stock`.
"""

from __future__ import annotations

import hmac
import threading
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from flask import Flask

from webapp import phones
from webapp.providers import fields
from webapp.providers.base import (
    STARTS_WITH,
    AvailableNumber,
    BadPayload,
    InboundMessage,
    NumberNotBought,
    Outbound,
    OwnedNumber,
    Rejected,
    StatusReport,
    matches_pattern,
)

STATES = {"ACCEPTED": "submitted", "DELIVERED": "delivered", "SEEN": "read", "FAILED": "undeliverable"}


class FakeCarrier:
    label = "Fake Carrier"

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.numbers = CarrierNumbers()
        self.sent: list[Outbound] = []
        self.opened = False
        self._lock = threading.Lock()

    def open(self) -> None:
        self.opened = True

    def send(self, outbound: Outbound) -> str:
        if outbound.channel != "sms":
            raise Rejected("Fake Carrier carries SMS only", f"not {outbound.channel}")
        with self._lock:
            self.sent.append(outbound)
        return f"carrier-{uuid.uuid4()}"

    def close(self) -> None:
        pass

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        token = str(self.config.get("CARRIER_TOKEN") or "")
        return bool(token) and hmac.compare_digest(headers.get("X-Carrier-Token") or "", token)

    def parse_inbound(self, body: bytes) -> InboundMessage:
        data = fields.json_object(body)
        if data.get("kind") != "text":
            raise BadPayload("kind is not text")
        return InboundMessage(
            message_uuid=fields.string(data, "id", 100),
            channel="sms",
            sender=fields.phone_number(data, "from"),
            recipient=fields.phone_number(data, "to"),
            text=fields.clean(data.get("body"), 10_000) or "",
            timestamp=fields.timestamp(data),
        )

    def parse_status(self, body: bytes) -> StatusReport:
        data = fields.json_object(body)
        state = data.get("state")
        if state not in STATES:
            raise BadPayload(f"state {state!r} is not known")
        return StatusReport(
            message_uuid=fields.string(data, "id", 100),
            status=STATES[state],
            timestamp=fields.timestamp(data),
            client_ref=fields.our_id(data.get("reference")),
            error_title=fields.clean(data.get("reason"), 300),
        )


class CarrierNumbers:
    def __init__(self) -> None:
        self.owned_numbers: list[OwnedNumber] = []
        self.stock: list[AvailableNumber] = []
        self.linked: list[str] = []

    def own(self, *numbers: str) -> None:
        for e164 in numbers:
            self.owned_numbers.append(OwnedNumber(e164, phones.country_of(e164) or "", ("SMS",), "mobile"))

    def owned(self) -> list[OwnedNumber]:
        return sorted(self.owned_numbers, key=lambda n: (n.country, n.e164))

    def search(
        self,
        country: str,
        features: Collection[str] = ("SMS",),
        pattern: str | None = None,
        search_pattern: int = STARTS_WITH,
    ) -> list[AvailableNumber]:
        wanted = [n for n in self.stock if n.country == country and set(features) <= set(n.features)]
        return [n for n in wanted if matches_pattern(n.e164, pattern, search_pattern)]

    def buy(self, number: AvailableNumber) -> OwnedNumber:
        if number not in self.stock:
            raise NumberNotBought(f"{number.e164} is not for sale")
        self.stock.remove(number)
        bought = OwnedNumber(number.e164, number.country, number.features, number.type)
        self.owned_numbers.append(bought)
        return bought

    def link(self, number: OwnedNumber) -> None:
        self.linked.append(number.e164)


def create(app: Flask) -> FakeCarrier:
    return FakeCarrier(app.config)
