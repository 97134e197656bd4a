"""The two webhook bodies of the Messages API v1, checked field by field into plain values."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from webapp import phones
from webapp.messaging.reports import Inbound, StatusReport
from webapp.models import utcnow

CHANNELS = ("sms", "whatsapp")
STATUSES = ("submitted", "delivered", "read", "rejected", "undeliverable")
MEDIA = ("image", "audio", "video", "file", "sticker")
_OUR_ID = re.compile(r"[0-9]{1,9}")  # client_ref carries our message id (an INTEGER column)


class BadPayload(ValueError):
    """The body is not a webhook we understand; the message is the short reason returned (400)."""


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
        # JSON may carry lone surrogates ("\ud800") that no database or encoder accepts.
        json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise BadPayload("body is not JSON") from exc
    if not isinstance(data, dict):
        raise BadPayload("body is not a JSON object")
    return data


def _string(data: dict[str, Any], key: str, max_length: int = 200) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadPayload(f"{key} is missing")
    if len(value) > max_length:
        raise BadPayload(f"{key} is too long")
    if "\x00" in value:
        raise BadPayload(f"{key} contains a NUL character")
    return value.strip()


def _clean(value: Any, length: int) -> str | None:
    return value.replace("\x00", "")[:length] if isinstance(value, str) else None


def _number(data: dict[str, Any], key: str) -> str:
    raw = _string(data, key, 32)
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


def _timestamp(data: dict[str, Any]) -> datetime:
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


def inbound(body: bytes) -> Inbound:
    data = _object(body)
    channel = _string(data, "channel", 20)
    if channel not in CHANNELS:
        raise BadPayload(f"channel {channel!r} is not handled")
    message_type = _string(data, "message_type", 20)
    if message_type == "text":
        text = data.get("text")
        if not isinstance(text, str):
            raise BadPayload("text is missing")
    elif message_type in MEDIA:
        media = data.get(message_type)
        if not isinstance(media, dict) or not isinstance(media.get("url"), str):
            raise BadPayload(f"{message_type}.url is missing")
        caption = media.get("caption") if isinstance(media.get("caption"), str) else ""
        text = f"[{message_type}] {media['url']}" + (f"\n{caption}" if caption else "")
    else:
        raise BadPayload(f"message_type {message_type!r} is not handled")
    profile = data.get("profile")
    name = profile.get("name") if isinstance(profile, dict) and isinstance(profile.get("name"), str) else None
    return Inbound(
        message_uuid=_string(data, "message_uuid", 100),
        channel=channel,
        sender=_number(data, "from"),
        recipient=_number(data, "to"),
        # PostgreSQL text cannot hold NUL; a phone never means one.
        text=text.replace("\x00", "")[:10_000],
        timestamp=_timestamp(data),
        profile_name=name,
    )


def status(body: bytes) -> StatusReport:
    data = _object(body)
    value = _string(data, "status", 20)
    if value not in STATUSES:
        raise BadPayload(f"status {value!r} is not known")
    client_ref = data.get("client_ref")
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    code = error.get("title")  # Vonage puts the numeric code in "title"
    return StatusReport(
        message_uuid=_string(data, "message_uuid", 100),
        status=value,
        timestamp=_timestamp(data),
        client_ref=client_ref if isinstance(client_ref, str) and _OUR_ID.fullmatch(client_ref) else None,
        error_code=_clean(str(code), 50)
        if isinstance(code, (str, int)) and not isinstance(code, bool)
        else None,
        error_title=_clean(error.get("type"), 300),
        error_detail=_clean(error.get("detail"), 2000),
    )
