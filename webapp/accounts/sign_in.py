"""Checking credentials and limiting guesses: plain functions over the session, no request."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.models import LoginAttempt, User
from webapp.refusals import Refused

# What a turned-away attempt is told to wait when the attempts that filled the limit are gone already.
MIN_WAIT = timedelta(minutes=1)


@dataclass(frozen=True)
class Limits:
    per_account: int
    per_address: int
    window: timedelta


class SignInRefused(Refused):
    """Wrong email or password: the attempt stays stored, the failure that counts."""


class TooManyAttempts(SignInRefused):
    """The account or the address has failed too often lately: the password was not even checked."""


def attempt(session: Session, email: str, password: str, address: str, limits: Limits, now: datetime) -> User:
    """The user these credentials sign in, their failures forgotten (in the caller's transaction);
    SignInRefused, or TooManyAttempts, if not. Commits the attempt's count first (begin_attempt)."""
    wait = begin_attempt(session, email, address, limits, now)
    if wait is not None:
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        raise TooManyAttempts(
            f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        )
    user = authenticate(session, email, password)
    if user is None:
        raise SignInRefused("Wrong email or password.")
    clear_failures(session, email)
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalar(sa.select(User).where(User.email == _normal(email)))
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not user.check_password(password) or not user.is_active:
        return None
    return user


def begin_attempt(
    session: Session, email: str, address: str, limits: Limits, now: datetime
) -> timedelta | None:
    """Count this sign-in attempt, then decide whether its password may be checked: None if it may,
    else how long until the account or address may try again.

    The attempt is stored and committed first, and only then are the attempts in the window counted,
    itself included. Each attempt thus counts every attempt committed before it: of any number of
    parallel guesses, the k-th to commit counts at least k, so at most `limit` of them see a count
    within the limit and get their password checked. (Counting first, as a read, let 60 parallel
    guesses through a limit of 5.) The row stays as the failure if the password is wrong; a success
    clears the account's rows; an attempt turned away removes its own row, so that hammering a locked
    account does not extend the lock.

    Commits (twice): the protocol needs its rows visible to the other attempts.
    """
    email = _normal(email)
    session.execute(sa.delete(LoginAttempt).where(LoginAttempt.created_at <= now - limits.window))
    attempt = LoginAttempt(email=email, remote_addr=address[:64], created_at=now)
    session.add(attempt)
    session.commit()
    if not _over_limit(session, email, address, limits, now):
        return None
    session.execute(sa.delete(LoginAttempt).where(LoginAttempt.id == attempt.id))
    session.commit()
    # Others' attempts still in flight count here too; a success may have cleared them meanwhile.
    return retry_after(session, email, address, limits, now) or MIN_WAIT


def _over_limit(session: Session, email: str, address: str, limits: Limits, now: datetime) -> bool:
    since = now - limits.window
    for column, value, limit in (
        (LoginAttempt.email, email, limits.per_account),
        (LoginAttempt.remote_addr, address[:64], limits.per_address),
    ):
        count = session.scalar(
            sa.select(sa.func.count())
            .select_from(LoginAttempt)
            .where(column == value, LoginAttempt.created_at > since)
        )
        if (count or 0) > limit:
            return True
    return False


def retry_after(
    session: Session, email: str, address: str, limits: Limits, now: datetime
) -> timedelta | None:
    """How long until this account or address may try again, or None if it may try now."""
    since = now - limits.window
    waits = []
    for column, value, limit in (
        (LoginAttempt.email, _normal(email), limits.per_account),
        (LoginAttempt.remote_addr, address[:64], limits.per_address),
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


def clear_failures(session: Session, email: str) -> None:
    session.execute(sa.delete(LoginAttempt).where(LoginAttempt.email == _normal(email)))


@cache
def _dummy_hash() -> str:
    """Checked when the email is unknown, so that a wrong email costs the same time as a wrong password.

    Made on first use, not on import: hashing takes ~0.15 s, which every process start paid (only the
    first unknown email a process sees costs two hashes).
    """
    return generate_password_hash("relay-timing-equaliser")


def _normal(email: str) -> str:
    return email.strip().lower()[:254]
