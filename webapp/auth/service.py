"""Checking credentials and limiting guesses: plain functions over the session, no request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.models import LoginAttempt, User

# Checked when the email is unknown, so that a wrong email costs the same time as a wrong password.
_DUMMY_HASH = generate_password_hash("relay-timing-equaliser")


@dataclass(frozen=True)
class Limits:
    per_account: int
    per_address: int
    window: timedelta


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not user.check_password(password) or not user.is_active:
        return None
    return user


def retry_after(
    session: Session, email: str, address: str, limits: Limits, now: datetime
) -> timedelta | None:
    """How long until this account or address may try again, or None if it may try now."""
    since = now - limits.window
    waits = []
    for column, value, limit in (
        (LoginAttempt.email, email.strip().lower(), limits.per_account),
        (LoginAttempt.remote_addr, address, limits.per_address),
    ):
        times = session.scalars(
            sa.select(LoginAttempt.created_at)
            .where(column == value, LoginAttempt.created_at > since)
            .order_by(LoginAttempt.created_at.desc())
            .limit(limit)
        ).all()
        if len(times) >= limit:
            # The oldest of the last `limit` failures leaves the window first.
            waits.append(times[-1] + limits.window - now)
    return max(waits) if waits else None


def record_failure(session: Session, email: str, address: str, limits: Limits, now: datetime) -> None:
    session.execute(sa.delete(LoginAttempt).where(LoginAttempt.created_at <= now - limits.window))
    session.add(LoginAttempt(email=email.strip().lower()[:254], remote_addr=address[:64], created_at=now))


def clear_failures(session: Session, email: str) -> None:
    session.execute(sa.delete(LoginAttempt).where(LoginAttempt.email == email.strip().lower()))
