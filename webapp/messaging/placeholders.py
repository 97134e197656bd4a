"""Placeholders in message texts and templates, rendered for one recipient.

A link we put into a message is always followed by whitespace or the end of the text: a phone reads a
link on to the next space, and some take a following ".", ")" or word into it. So when %INVITELINK% is
followed by anything else (punctuation, a letter, another placeholder), a space goes after the link:
"…/book/<token> ." reads a little oddly, "…/book/<token>." may not open. (A letter, digit or "/" touching
the placeholder is refused before it gets here: webapp.messaging.templates.glued_invitelink.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PLACEHOLDERS = ("%FIRSTNAME%", "%LASTNAME%", "%JOBTITLE%", "%COMPANY%", "%SENDERNAME%", "%INVITELINK%")
LINKS = ("%INVITELINK%",)  # placeholders that become a URL
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
        if value is None:
            return match.group(0)
        if match.group(0) in LINKS and match.end() < len(text) and not text[match.end()].isspace():
            return value + " "
        return value

    return _PATTERN.sub(replace, text)


def unknown(text: str) -> list[str]:
    """Placeholders in the text that Relay does not know, so the form can point them out."""
    return sorted({m for m in _PATTERN.findall(text) if m not in PLACEHOLDERS})
