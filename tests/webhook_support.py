"""Signed Vonage webhooks for tests: real HS256 tokens (PyJWT) over the exact bytes posted."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

import jwt

from tests.conftest import WEBHOOK_SECRET


def token(body: bytes, secret: str = WEBHOOK_SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    payload = {
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        **claims,
    }
    return jwt.encode(payload, secret, algorithm=algorithm)


def post(client, path: str, payload: Any, *, body: bytes | None = None, auth: str | None = None):
    raw = body if body is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    headers["Authorization"] = auth if auth is not None else f"Bearer {token(raw)}"
    return client.post(path, data=raw, headers=headers)


def inbound(to: str, sender: str, text: str = "Hello", channel: str = "sms", **extra: Any) -> dict[str, Any]:
    return {
        "channel": channel,
        "message_type": "text",
        "message_uuid": str(uuid.uuid4()),
        "to": to.lstrip("+"),
        "from": sender.lstrip("+"),
        "timestamp": "2026-11-23T10:00:00Z",
        "text": text,
        **({"sms": {"num_messages": "1"}} if channel == "sms" else {"profile": {"name": "Lena"}}),
        **extra,
    }


def status(
    message_uuid: str, value: str, timestamp: str = "2026-11-23T10:00:05Z", **extra: Any
) -> dict[str, Any]:
    return {
        "message_uuid": message_uuid,
        "to": "4915123456789",
        "from": "4915123456700",
        "timestamp": timestamp,
        "status": value,
        "channel": "sms",
        **extra,
    }
