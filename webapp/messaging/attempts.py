"""One try of a send, as an operator sees it: timed, one log line and the send metrics, whatever its
outcome. The dispatcher (webapp.messaging.dispatch) decides what an outcome means; this only watches.

The line holds the message's id, the provider, the channel, the try's number, the outcome, the
provider's error code if any, and the milliseconds; never the text, the addresses or the error's
words (a provider may quote what it was sent)."""

from __future__ import annotations

import logging
import time

from webapp import logs, metrics
from webapp.providers.base import Outbound, OutcomeUnknown, Rejected, Sender, TemporaryFailure

log = logging.getLogger("relay.send")

OUTCOMES = ("accepted", "rejected", "temporary", "unknown", "error")


def send(sender: Sender, outbound: Outbound, provider: str, attempt: int) -> str:
    """`sender.send(outbound)`, its answer or its exception unchanged, with the try logged and counted."""
    started = time.perf_counter()
    outcome, code = "error", None
    try:
        provider_id = sender.send(outbound)
        outcome = "accepted"
        return provider_id
    except Rejected as exc:
        outcome, code = "rejected", exc.code
        raise
    except TemporaryFailure as exc:
        outcome, code = "temporary", exc.code
        raise
    except OutcomeUnknown as exc:
        outcome, code = "unknown", exc.code
        raise
    finally:
        seconds = time.perf_counter() - started
        metrics.send_attempt(provider, outbound.channel, outcome, seconds)
        log.info(
            "send attempt",
            extra=logs.fields(
                message_id=outbound.message_id,
                provider=provider,
                channel=outbound.channel,
                attempt=attempt,
                outcome=outcome,
                error_code=code,
                ms=round(seconds * 1000, 1),
            ),
        )
