"""The two webhook bodies of Vonage's Messages API v1, checked field by field into the port's types."""

from __future__ import annotations

from webapp.providers import fields
from webapp.providers.base import BadPayload, InboundMessage, StatusReport

MEDIA = ("image", "audio", "video", "file", "sticker")


def inbound(body: bytes) -> InboundMessage:
    data = fields.json_object(body)
    channel = fields.channel(data)
    message_type = fields.string(data, "message_type", 20)
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
    return InboundMessage(
        message_uuid=fields.string(data, "message_uuid", 100),
        channel=channel,
        sender=fields.phone_number(data, "from"),
        recipient=fields.phone_number(data, "to"),
        text=fields.clean(text, 10_000) or "",
        timestamp=fields.timestamp(data),
        profile_name=name,
    )


def status(body: bytes) -> StatusReport:
    data = fields.json_object(body)
    value = fields.status(data)
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    code = error.get("title")  # Vonage puts the numeric code in "title"
    return StatusReport(
        message_uuid=fields.string(data, "message_uuid", 100),
        status=value,
        timestamp=fields.timestamp(data),
        client_ref=fields.our_id(data.get("client_ref")),
        error_code=fields.clean(str(code), 50)
        if isinstance(code, (str, int)) and not isinstance(code, bool)
        else None,
        error_title=fields.clean(error.get("type"), 300),
        error_detail=fields.clean(error.get("detail"), 2000),
    )
