"""Checking a webhook's JSON field by field, for every provider's parser: what is not as expected is a
BadPayload naming the field, never a 500 and never a row stored."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from webapp import phones
from webapp.models import utcnow
from webapp.providers.base import BadPayload

CHANNELS = ("sms", "whatsapp")
STATUSES = ("submitted", "delivered", "read", "rejected", "undeliverable")
_OUR_ID = re.compile(r"[0-9]{1,9}")  # client_ref carries our message id (an INTEGER column)


def json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
        # JSON may carry lone surrogates ("\ud800") that no database or encoder accepts.
        json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise BadPayload("body is not JSON") from exc
    if not isinstance(data, dict):
        raise BadPayload("body is not a JSON object")
    return data


def string(data: dict[str, Any], key: str, max_length: int = 200) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadPayload(f"{key} is missing")
    if len(value) > max_length:
        raise BadPayload(f"{key} is too long")
    if "\x00" in value:
        raise BadPayload(f"{key} contains a NUL character")
    return value.strip()


def clean(value: Any, length: int) -> str | None:
    """Free text to keep, if it is text: without NUL (PostgreSQL text cannot hold it), cut to length."""
    return value.replace("\x00", "")[:length] if isinstance(value, str) else None


def phone_number(data: dict[str, Any], key: str) -> str:
    raw = string(data, key, 32)
    if not re.fullmatch(r"\+?[0-9 ()./-]+", raw):
        raise BadPayload(f"{key} is not a phone number")
    digits = re.sub(r"[^0-9]", "", raw)
    if digits.startswith("00"):  # the international prefix written out
        digits = digits[2:]
    try:
        return phones.normalise("+" + digits)
    except phones.InvalidPhoneNumber:
        # A number libphonenumber does not know is still someone's number: keep it as given.
        if not 7 <= len(digits) <= 15:
            raise BadPayload(f"{key} is not a phone number") from None
        return "+" + digits


def timestamp(data: dict[str, Any]) -> datetime:
    value = data.get("timestamp")
    if value is None:
        return utcnow()
    if not isinstance(value, str):
        raise BadPayload("timestamp is not a string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise BadPayload("timestamp is not ISO 8601") from exc


def channel(data: dict[str, Any]) -> str:
    value = string(data, "channel", 20)
    if value not in CHANNELS:
        raise BadPayload(f"channel {value!r} is not handled")
    return value


def status(data: dict[str, Any]) -> str:
    value = string(data, "status", 20)
    if value not in STATUSES:
        raise BadPayload(f"status {value!r} is not known")
    return value


def our_id(value: Any) -> str | None:
    """Our message id as the provider echoes it back (client_ref), if it can be one."""
    return value if isinstance(value, str) and _OUR_ID.fullmatch(value) else None
