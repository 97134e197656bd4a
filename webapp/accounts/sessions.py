"""Sign-in sessions kept on the server: plain functions over the database session, no request.

The signed cookie alone cannot be taken back: a copy stays valid for as long as its signature does.
So the cookie carries a random token, and every request looks up the row it names (by the token's
SHA-256); sign-out, expiry, deactivation or a password change end the row, and with it every copy of
the cookie.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from webapp.models import User, UserSession, utcnow
from webapp.models.user import role_permission, user_role

log = logging.getLogger("relay.auth")

# last_seen_at is written at most this often per session: enough for an idle limit counted in
# minutes, without a write on every request.
TOUCH_EVERY = timedelta(minutes=1)

# The user's rights, read in the session's own statement: most pages check some, and loading the roles
# and then each role's permissions was two or more round trips more on every request.
_RIGHTS = (
    sa.select(sa.func.aggregate_strings(role_permission.c.permission_code, " "))
    .select_from(user_role.join(role_permission, role_permission.c.role_id == user_role.c.role_id))
    .where(user_role.c.user_id == UserSession.user_id)
    .scalar_subquery()
)


@dataclass(frozen=True)
class Lifetime:
    absolute: timedelta  # from sign-in, however busy the session is
    idle: timedelta | None  # since the last request; None: no idle limit


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, user: User, lifetime: Lifetime, now: datetime | None = None) -> str:
    """A new session for the user; returns the token for the cookie (the caller commits)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            id=_key(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime.absolute,
        )
    )
    return token


def live(
    session: Session, token: object, user_id: int, lifetime: Lifetime, now: datetime | None = None
) -> UserSession | None:
    """The session the token names, with its user, if it is the user's and has not ended; else None."""
    if not isinstance(token, str) or not 0 < len(token) <= 100:
        return None
    now = now or utcnow()
    found = session.execute(
        sa.select(UserSession, _RIGHTS)
        .where(UserSession.id == _key(token))
        .options(joinedload(UserSession.user).joinedload(User.organization))
        # Another process may have ended it, or changed the user's roles, since this session last looked.
        .execution_options(populate_existing=True)
    ).first()
    record = found[0] if found else None
    if record is None or record.user_id != user_id or record.revoked_at is not None:
        return None
    if now >= record.expires_at:
        return None
    if lifetime.idle is not None and now - record.last_seen_at >= lifetime.idle:
        return None
    record.user.rights_read((found[1] or "").split())
    return record


def touch(engine: sa.Engine, record: UserSession, now: datetime | None = None) -> None:
    """Note that the session is in use, if it was last noted over TOUCH_EVERY ago.

    On a connection of its own, committed at once: the request's transaction may be read-only (never
    committed) or roll back, and neither should make a busy session look idle.
    """
    now = now or utcnow()
    if now - record.last_seen_at < TOUCH_EVERY:
        return
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.update(UserSession)
                .where(UserSession.id == record.id, UserSession.revoked_at.is_(None))
                .values(last_seen_at=now)
            )
    except sa.exc.SQLAlchemyError:
        # Only the idle clock is late; the request itself is fine.
        log.warning("could not note the use of a session", exc_info=True)
        return
    # What the row now holds, without marking the object changed (the request's own flush would
    # write it a second time).
    set_committed_value(record, "last_seen_at", now)


def end(session: Session, token: object, now: datetime | None = None) -> None:
    """End the session the token names (sign-out); the caller commits."""
    if not isinstance(token, str) or not token:
        return
    session.execute(
        sa.update(UserSession)
        .where(UserSession.id == _key(token), UserSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


def end_sessions(
    session: Session, user: User, except_current: str | None = None, now: datetime | None = None
) -> int:
    """End all of the user's sessions but the one whose token is `except_current` (after a password
    change, it is the one that made it); for deactivation, pass None. The caller commits."""
    query = sa.update(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    if except_current:
        query = query.where(UserSession.id != _key(except_current))
    result = session.execute(
        query.values(revoked_at=now or utcnow()).execution_options(synchronize_session=False)
    )
    return result.rowcount


def purge(session: Session, now: datetime | None = None) -> None:
    """Forget sessions past their absolute end (ended ones too, once they would have expired)."""
    session.execute(
        sa.delete(UserSession)
        .where(UserSession.expires_at <= (now or utcnow()))
        .execution_options(synchronize_session=False)
    )
