"""Placeholders in message texts and templates, rendered for one recipient."""

from __future__ import annotations

import re
from dataclasses import dataclass

PLACEHOLDERS = ("%FIRSTNAME%", "%LASTNAME%", "%JOBTITLE%", "%COMPANY%", "%SENDERNAME%", "%INVITELINK%")
_PATTERN = re.compile(r"%[A-Z]+%")


@dataclass(frozen=True)
class Recipient:
    """What a placeholder can be replaced with for one conversation."""

    first_name: str
    last_name: str
    job_title: str
    company: str
    sender_name: str
    invite_link: str | None = None


def values(r: Recipient) -> dict[str, str | None]:
    return {
        "%FIRSTNAME%": r.first_name,
        "%LASTNAME%": r.last_name,
        "%JOBTITLE%": r.job_title,
        "%COMPANY%": r.company,
        "%SENDERNAME%": r.sender_name,
        "%INVITELINK%": r.invite_link,
    }


def render(text: str, recipient: Recipient) -> str:
    """Replace the known placeholders; leave anything else (and an unavailable invite link) as typed."""
    table = values(recipient)

    def replace(match: re.Match[str]) -> str:
        value = table.get(match.group(0))
        return match.group(0) if value is None else value

    return _PATTERN.sub(replace, text)


def unknown(text: str) -> list[str]:
    """Placeholders in the text that Relay does not know, so the form can point them out."""
    return sorted({m for m in _PATTERN.findall(text) if m not in PLACEHOLDERS})
