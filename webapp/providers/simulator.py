"""The embedded default: accepts every SMS/WhatsApp, and a few seconds later reports it delivered
through the same status function the Vonage status webhook calls, so the whole way runs in development.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from flask import Flask

from webapp.providers.base import Outbound

log = logging.getLogger("relay.simulator")


class SimulatorProvider:
    def __init__(self, app: Flask, delivery_seconds: float = 3.0) -> None:
        self.app = app
        self.delivery_seconds = delivery_seconds
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()

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
