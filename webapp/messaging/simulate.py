"""Development: a candidate's (or prospect's) reply, made as Vonage would send it, and posted to this
app's own inbound webhook with a valid signature, so the whole way (verification, matching, STOP, the
live thread) runs as in production."""

from __future__ import annotations

import json
import uuid

from flask import Flask

from webapp.messaging.subjects import Subject
from webapp.models import Conversation, utcnow
from webapp.providers.vonage_signature import sign


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
    payload = {
        "channel": channel,
        "message_type": "text",
        "message_uuid": str(uuid.uuid4()),
        "to": number.e164.lstrip("+"),
        "from": contact.mobile.lstrip("+"),
        "timestamp": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "text": text,
    }
    if channel == "whatsapp":
        payload["profile"] = {"name": contact.full_name}
    else:
        payload["sms"] = {"num_messages": "1"}
    body = json.dumps(payload).encode()
    token = sign(body, app.config["VONAGE_SIGNATURE_SECRET"])
    # Through the whole WSGI stack of this app, in-process (no network, no deadlock on a one-thread server).
    response = app.test_client().post(
        "/webhooks/vonage/inbound",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return response.status_code
