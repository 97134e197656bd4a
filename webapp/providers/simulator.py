"""The embedded provider for development and the demo: the whole port, with nobody's network behind it.

- Sending accepts every SMS/WhatsApp and, a few seconds later, reports it delivered through the same
  status function the status webhooks call, so the whole way runs in development.
- Its webhooks (/webhooks/simulator/inbound and /status) take Relay's own JSON, signed with an HMAC of
  the body under a key made from SECRET_KEY; `signed` makes such a request (a simulated reply is one).
- Its numbers account lives in this process: it offers, for any country, valid numbers made from
  libphonenumber's examples, and owns what was bought through it until the process ends. Enough for
  the staff pages of the demo; a second process does not see the first one's purchases.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from typing import Any

import phonenumbers
from flask import Flask

from webapp.providers import fields
from webapp.providers.base import (
    STARTS_WITH,
    AvailableNumber,
    BadPayload,
    InboundMessage,
    NumberNotBought,
    NumberNotLinked,
    Outbound,
    OwnedNumber,
    StatusReport,
    matches_pattern,
)

log = logging.getLogger("relay.simulator")

SIGNATURE_HEADER = "X-Simulator-Signature"
FEATURES = ("SMS", "VOICE", "MMS")
OFFERED_PER_SEARCH = 10


class SimulatorProvider:
    label = "Simulator"

    def __init__(self, app: Flask, delivery_seconds: float = 3.0) -> None:
        self.app = app
        self.delivery_seconds = delivery_seconds
        self.numbers = SimulatedNumbers()
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()

    def open(self) -> None:
        pass  # nothing to connect to

    def send(self, outbound: Outbound) -> str:
        if outbound.channel not in ("sms", "whatsapp"):
            raise ValueError(f"the simulator carries SMS and WhatsApp, not {outbound.channel!r}")
        provider_id = str(uuid.uuid4())
        log.info(
            "simulated %s %s → %s: %r", outbound.channel, outbound.sender, outbound.to, outbound.body[:60]
        )
        timer = threading.Timer(self.delivery_seconds, self._deliver, args=(provider_id,))
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()
        return provider_id

    def close(self) -> None:
        """Forget the deliveries not yet reported (at shutdown, and between tests)."""
        with self._lock:
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()

    # --- Webhooks ----------------------------------------------------------------------------------

    def signed(self, payload: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a webhook request from the simulator, as `verify` accepts them."""
        body = json.dumps(payload).encode()
        return body, {SIGNATURE_HEADER: self._signature(body), "Content-Type": "application/json"}

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        given = headers.get(SIGNATURE_HEADER) or ""
        if hmac.compare_digest(given.strip().lower(), self._signature(body)):
            return True
        log.warning("simulator webhook refused: %s", "bad signature" if given else "no signature")
        return False

    def parse_inbound(self, body: bytes) -> InboundMessage:
        data = fields.json_object(body)
        channel = fields.channel(data)
        text = data.get("text")
        if not isinstance(text, str):
            raise BadPayload("text is missing")
        return InboundMessage(
            message_uuid=fields.string(data, "message_uuid", 100),
            channel=channel,
            sender=fields.phone_number(data, "from"),
            recipient=fields.phone_number(data, "to"),
            text=fields.clean(text, 10_000) or "",
            timestamp=fields.timestamp(data),
            profile_name=fields.clean(data.get("profile_name"), 200),
        )

    def parse_status(self, body: bytes) -> StatusReport:
        data = fields.json_object(body)
        value = fields.status(data)
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        return StatusReport(
            message_uuid=fields.string(data, "message_uuid", 100),
            status=value,
            timestamp=fields.timestamp(data),
            client_ref=fields.our_id(data.get("client_ref")),
            error_code=fields.clean(error.get("code"), 50),
            error_title=fields.clean(error.get("title"), 300),
            error_detail=fields.clean(error.get("detail"), 2000),
        )

    def _signature(self, body: bytes) -> str:
        # A key of its own, derived from SECRET_KEY: a signature never doubles as anything else's.
        key = hmac.new(str(self.app.config["SECRET_KEY"]).encode(), b"relay-simulator-webhooks", "sha256")
        return hmac.new(key.digest(), body, hashlib.sha256).hexdigest()

    # --- Delivery reports ----------------------------------------------------------------------------

    def _deliver(self, provider_id: str) -> None:
        try:
            self._report(provider_id)
        except Exception:
            log.exception("simulated delivery report for %s failed", provider_id)
        finally:
            with self._lock:
                self._timers.discard(threading.current_thread())  # type: ignore[arg-type]

    def _report(self, provider_id: str) -> None:
        from webapp.extensions import db
        from webapp.messaging.status import apply_status

        with self.app.app_context():
            # The dispatcher stores the id just after send() returns; give it a moment if we are early.
            for _ in range(50):
                message = apply_status(db.session, provider_id, "delivered")
                if message is not None:
                    db.session.commit()
                    return
                db.session.rollback()
                time.sleep(0.1)
            log.warning("simulated delivery for %s found no message", provider_id)


class SimulatedNumbers:
    """A numbers account in this process: offers made-up valid mobiles, owns what was bought."""

    def __init__(self) -> None:
        self._owned: dict[str, OwnedNumber] = {}
        self._lock = threading.Lock()

    def owned(self) -> list[OwnedNumber]:
        with self._lock:
            numbers = list(self._owned.values())
        return sorted(numbers, key=lambda n: (n.country, n.e164))

    def search(
        self,
        country: str,
        features: Collection[str] = ("SMS",),
        pattern: str | None = None,
        search_pattern: int = STARTS_WITH,
    ) -> list[AvailableNumber]:
        if set(features) - set(FEATURES):
            return []
        with self._lock:
            owned = set(self._owned)
        offers = [n for n in _offers(country.upper()) if n.e164 not in owned]
        return [n for n in offers if matches_pattern(n.e164, pattern, search_pattern)]

    def buy(self, number: AvailableNumber) -> OwnedNumber:
        if number.e164 not in {n.e164 for n in _offers(number.country)}:
            raise NumberNotBought(f"The simulator does not offer {number.e164}.")
        bought = OwnedNumber(number.e164, number.country, number.features, number.type)
        with self._lock:
            if number.e164 in self._owned:
                raise NumberNotBought(f"{number.e164} is bought already.")
            self._owned[number.e164] = bought
        return bought

    def link(self, number: OwnedNumber) -> None:
        """Nothing to point anywhere: the simulator's webhooks are this app's own."""
        with self._lock:
            if number.e164 not in self._owned:
                raise NumberNotLinked(f"The simulator's account does not hold {number.e164}.")


def _offers(country: str) -> list[AvailableNumber]:
    """The same few valid mobiles of the country every time: libphonenumber's example, its last three
    digits counted down from 999 (demo data varies the last two, so the two rarely meet)."""
    if country not in phonenumbers.SUPPORTED_REGIONS:
        return []
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return []
    digits = str(example.national_number)
    found: list[AvailableNumber] = []
    for ending in range(999, 899, -1):
        candidate = phonenumbers.parse(f"+{example.country_code}{digits[:-3]}{ending:03d}")
        ours = phonenumbers.region_code_for_number(candidate) == country
        if ours and phonenumbers.is_valid_number(candidate):
            e164 = phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
            found.append(AvailableNumber(e164, country, FEATURES, "mobile", monthly_cost="0.00"))
        if len(found) == OFFERED_PER_SEARCH:
            break
    return found


def create(app: Flask) -> SimulatorProvider:
    return SimulatorProvider(app, app.config["SIMULATOR_DELIVERY_SECONDS"])
