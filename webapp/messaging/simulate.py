"""Development: a candidate's (or prospect's) reply, made by the simulator provider and posted to this
app's own webhook for it with a valid signature, so the whole way (verification, matching, STOP, the
live thread) runs as in production."""

from __future__ import annotations

import uuid

from flask import Flask

from webapp.messaging.subjects import Subject
from webapp.models import Conversation, utcnow
from webapp.providers import registry
from webapp.providers.simulator import SimulatorProvider

SIMULATOR = "simulator"  # its name in the registry, and so in its webhooks' URLs


class CannotSimulate(Exception):
    pass


def reply(app: Flask, about: Subject, conversation: Conversation | None, channel: str, text: str) -> int:
    """Post the reply; returns the webhook's HTTP status."""
    number = conversation.number_for(channel) if conversation else None
    if number is None:
        first = "a WhatsApp message" if channel == "whatsapp" else "an SMS"
        raise CannotSimulate(f"Send {first} first: a reply needs our number.")
    contact = about.contact
    if not contact.mobile:
        raise CannotSimulate(f"{contact.full_name} has no mobile number.")
    simulator = registry.texting(app, SIMULATOR)
    assert isinstance(simulator, SimulatorProvider)
    body, headers = simulator.signed(
        {
            "channel": channel,
            "message_uuid": str(uuid.uuid4()),
            "to": number.e164,
            "from": contact.mobile,
            "timestamp": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "text": text,
            "profile_name": contact.full_name if channel == "whatsapp" else None,
        }
    )
    # Through the whole WSGI stack of this app, in-process (no network, no deadlock on a one-thread server).
    response = app.test_client().post(f"/webhooks/{SIMULATOR}/inbound", data=body, headers=headers)
    return response.status_code
