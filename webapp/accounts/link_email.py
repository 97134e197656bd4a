"""The email that carries a set-password link to a colleague: an invitation, or a new link an admin (or
Relay's staff) made. It goes over SMTP like candidates' email, through the same provider (SMTP_URL), at
once from the request: it is not a message of any conversation, costs nothing, and if it cannot go (no
SMTP_URL, the server refuses) the page says so and shows the link to hand over instead.

What it says is built here from plain values; nothing here knows the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from webapp import zones
from webapp.accounts import password_links
from webapp.models import User
from webapp.providers import registry
from webapp.providers.base import Outbound, Provider, ProviderError
from webapp.providers.smtp import LogEmailProvider

SENDER_NAME = "Relay"


@dataclass(frozen=True)
class Sent:
    """What became of the email, for the page that shows the link."""

    to: str
    ok: bool  # handed to the mail server
    problem: str = ""  # why not, in words, when not


def _by(by: User | None) -> str:
    if by is None:
        return "An administrator of Relay"
    if by.organization_id is None:  # staff belong to no customer
        return f"{by.name} of Relay's customer success team"
    return f"{by.name} ({by.email})"


def _organization_name(user: User) -> str:
    return user.organization.name if user.organization is not None else "Relay"


def _expiry(user: User, expires_at: datetime) -> str:
    zone = user.organization.time_zone if user.organization is not None else None
    return zones.format_time(expires_at, zone, "%A %d %B %Y, %H:%M")


def invitation(user: User, by: User, url: str, expires_at: datetime) -> Outbound:
    """Someone was invited: who invited them, to which organisation, the link and until when it works."""
    org = _organization_name(user)
    body = (
        f"Hello {user.name},\n\n"
        f"{_by(by)} has invited you to {org} on Relay, where {org}'s recruiting teams write to "
        f"their candidates.\n\n"
        f"Choose your password here; you are signed in as soon as it is set:\n\n"
        f"{url}\n\n"
        f"The link works once, until {_expiry(user, expires_at)}. If it has expired, ask {by.name} or "
        f"another administrator of {org} for a new one.\n\n"
        f"Your sign-in address is {user.email}. If you did not expect this invitation, ignore this "
        f"email: nothing happens without the link.\n"
    )
    return _outbound(user, by, f"{by.name} invited you to {org} on Relay", body)


def new_link(user: User, by: User | None, url: str, expires_at: datetime) -> Outbound:
    """A new link for someone who has (or had) an account: any earlier link stops working."""
    org = _organization_name(user)
    body = (
        f"Hello {user.name},\n\n"
        f"{_by(by)} has made you a new link to set your password for {org} on Relay:\n\n"
        f"{url}\n\n"
        f"It works once, until {_expiry(user, expires_at)}; any earlier link no longer works. Once the "
        f"password is set you are signed in, and signed out everywhere else.\n\n"
        f"Your sign-in address is {user.email}. If you did not ask for this, ignore this email: your "
        f"password stays as it is unless the link is used.\n"
    )
    return _outbound(user, by, f"Set your password for {org} on Relay", body)


def _outbound(user: User, by: User | None, subject: str, body: str) -> Outbound:
    return Outbound(
        message_id=None,
        channel="email",
        to=user.email,
        sender=SENDER_NAME,
        body=body,
        subject=subject,
        # A reply reaches whoever made the link, not a mailbox nobody reads.
        reply_to=by.email if by is not None else None,
    )


def send(provider: Provider, email: Outbound) -> Sent:
    """Hand the email to the mail server once; a failure is reported, never raised (the link is on
    the page anyway)."""
    if isinstance(provider, LogEmailProvider):
        # Not even to the log: the link lets whoever reads it choose the password.
        return Sent(email.to, False, "no mail server is set up (SMTP_URL)")
    try:
        provider.send(email)
    except ProviderError as error:
        reason = f"{error.title}: {error.detail}" if error.detail else error.title
        return Sent(email.to, False, f"the mail server did not confirm it ({reason})")
    return Sent(email.to, True)


@dataclass(frozen=True)
class Handed:
    """A link just made, for the page that shows it once (only its hash is stored)."""

    user: User
    url: str
    expires: datetime
    sent: Sent


def hand_over(app: Flask, session: Session, user: User, by: User | None, token: str, invited: bool) -> Handed:
    """Email the committed link to its user (an invitation, or a new link) and say how that went."""
    link = password_links.find(session, token)
    assert link is not None, "hand over a link that was just made and committed"
    url = password_links.url(app.config["PUBLIC_BASE_URL"], token)
    if invited:
        assert by is not None
        email = invitation(user, by, url, link.expires_at)
    else:
        email = new_link(user, by, url, link.expires_at)
    return Handed(user, url, link.expires_at, send(registry.for_channel(app, "email"), email))
