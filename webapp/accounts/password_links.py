"""One-time links to set a password (an invitation, or a new link an admin makes for someone locked out).

The link carries a random token; the table keeps its SHA-256, like sessions do, so a copy of the table
lets nobody in. A link works once, until it expires, and only while its user is active; making a new
one retires the user's earlier ones. Setting the password ends the user's other sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from webapp.accounts import sessions
from webapp.models import SetPasswordLink, User, utcnow
from webapp.refusals import Refused

LIFETIME = timedelta(days=7)
PATH = "/set-password/"  # the route auth.set_password, with the token after it
MIN_PASSWORD = 10
MAX_PASSWORD = 200


class PasswordRefused(Refused):
    """The password cannot be set; said beside it."""

    def __init__(self, message: str, field: str | None = "password") -> None:
        super().__init__(message, field)


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    session: Session, user: User, by: User | None, lifetime: timedelta = LIFETIME, now: datetime | None = None
) -> str:
    """A new link for the user (earlier unused ones stop working); returns the token for the address."""
    now = now or utcnow()
    session.execute(
        sa.update(SetPasswordLink)
        .where(SetPasswordLink.user_id == user.id, SetPasswordLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        SetPasswordLink(
            token_hash=_key(token),
            user_id=user.id,
            created_by_id=by.id if by else None,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return token


def url(base: str, token: str) -> str:
    """The link's address: PUBLIC_BASE_URL/set-password/<token>."""
    return base.rstrip("/") + PATH + token


def find(session: Session, token: object, now: datetime | None = None) -> SetPasswordLink | None:
    """The live link the token names: unused, unexpired, its user active; else None."""
    if not isinstance(token, str) or not 0 < len(token) <= 100:
        return None
    link = session.scalar(
        sa.select(SetPasswordLink)
        .where(SetPasswordLink.token_hash == _key(token))
        .options(joinedload(SetPasswordLink.user))
    )
    if link is None or link.used_at is not None or (now or utcnow()) >= link.expires_at:
        return None
    return link if link.user.active else None


def check_password(user: User, password: str, repeated: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PasswordRefused(f"Use at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise PasswordRefused(f"Use at most {MAX_PASSWORD} characters.")
    if password.strip().lower() == user.email:
        raise PasswordRefused("Choose something other than your email address.")
    if password != repeated:
        raise PasswordRefused("The two passwords differ.")


def redeem(
    session: Session,
    token: str,
    password: str,
    repeated: str,
    current_session: str | None = None,
    now: datetime | None = None,
) -> User:
    """Set the password through the link, once. Every other session of the user ends (a link sent to
    someone who lost a device locks that device out). The caller commits."""
    now = now or utcnow()
    link = find(session, token, now)
    if link is None:
        raise PasswordRefused(
            "This link has expired or was used already. Ask your administrator for a new one."
        )
    check_password(link.user, password, repeated)
    # Claim the link with a conditional UPDATE: of two tabs submitting at once, one wins.
    claimed = session.execute(
        sa.update(SetPasswordLink)
        .where(SetPasswordLink.id == link.id, SetPasswordLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise PasswordRefused("This link was used already. Ask your administrator for a new one.")
    user = link.user
    user.set_password(password)
    sessions.end_sessions(session, user, except_current=current_session, now=now)
    return user


def retire(session: Session, user: User, now: datetime | None = None) -> None:
    """No link of the user works any more (deactivation)."""
    session.execute(
        sa.update(SetPasswordLink)
        .where(SetPasswordLink.user_id == user.id, SetPasswordLink.used_at.is_(None))
        .values(used_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
