"""People who sign in, and what they may do: users, roles, permissions, sign-in attempts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.organization import Organization

user_role = sa.Table(
    "user_role",
    Base.metadata,
    sa.Column("user_id", sa.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("role_id", sa.ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
)

role_permission = sa.Table(
    "role_permission",
    Base.metadata,
    sa.Column("role_id", sa.ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("permission_code", sa.ForeignKey("permission.code", ondelete="CASCADE"), primary_key=True),
)


class Permission(Base):
    """One right, from the catalogue in webapp.accounts.permissions (synchronised into this table)."""

    __tablename__ = "permission"

    code: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    category: Mapped[str] = mapped_column(sa.String(100))


class Role(Base):
    """A named set of permissions, defined per organisation."""

    __tablename__ = "role"
    __table_args__ = (sa.UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))

    permissions: Mapped[list[Permission]] = relationship(secondary=role_permission)

    def __repr__(self) -> str:
        return f"<Role {self.name!r}>"


# How a person hears by email that a conversation waits for them (webapp.notifications).
NOTIFY_CHOICES = {
    "now": "At once (after the wait)",
    "hourly": "An hourly digest",
    "off": "Off",
}


class User(UserMixin, Base):
    __tablename__ = "user"
    __table_args__ = (
        # Only customer-success staff stand outside every customer organisation.
        sa.CheckConstraint("is_staff OR organization_id IS NOT NULL", name="staff_or_member"),
        sa.CheckConstraint("notify_email IN ('now', 'hourly', 'off')", name="notify_email_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    organization_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organization.id"), index=True)
    is_staff: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Their own clock (IANA name); None: their organisation's. Notification emails wait for their hours.
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    # Their working hours on that clock, and the ISO weekdays they work ("12345": Monday to Friday):
    # outside them no notification email is sent; it waits for their morning.
    work_from: Mapped[time] = mapped_column(sa.Time, default=time(8), server_default="08:00:00")
    work_until: Mapped[time] = mapped_column(sa.Time, default=time(18), server_default="18:00:00")
    work_days: Mapped[str] = mapped_column(sa.String(7), default="12345", server_default="12345")
    # NOTIFY_CHOICES; "off" too after the one-click unsubscribe link of such an email.
    notify_email: Mapped[str] = mapped_column(sa.String(10), default="now", server_default="now")
    # The start of the last hourly digest: the next is due an hour later (a conditional UPDATE claims it).
    digest_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organization: Mapped[Organization | None] = relationship(back_populates="users")
    roles: Mapped[list[Role]] = relationship(secondary=user_role)

    def __repr__(self) -> str:
        return f"<User {self.email}>"

    @validates("email")
    def _normalise_email(self, key: str, value: str) -> str:
        return value.strip().lower()

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    # The rights as read with this request's session (webapp.accounts.sessions.live); None: not read.
    _rights_read = None

    def rights_read(self, codes: Iterable[str]) -> None:
        self._rights_read = frozenset(codes)

    @property
    def permission_codes(self) -> frozenset[str]:
        # Roles loaded (or changed) in this database session say it; else what the session's lookup read.
        if "roles" not in self.__dict__ and self._rights_read is not None:
            return self._rights_read
        return frozenset(p.code for role in self.roles for p in role.permissions)


class LoginAttempt(Base):
    """A failed sign-in, kept to limit guessing per account and per address (across processes)."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        sa.Index("ix_login_attempt_email_at", "email", "created_at"),
        sa.Index("ix_login_attempt_address_at", "remote_addr", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    remote_addr: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserSession(Base):
    """One sign-in, checked on every request, so that the server can end it: sign-out, expiry, a password
    change. The signed session cookie carries a random token; the row is keyed by the token's SHA-256,
    so that the table alone does not let anyone in."""

    __tablename__ = "user_session"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Written at most once a minute (webapp.accounts.sessions.TOUCH_EVERY), not on every request.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class SetPasswordLink(Base):
    """A one-time link to set a password: an invitation, or a new link an admin makes. Like sessions, the
    table holds the SHA-256 of the token, so that reading it does not let anyone in."""

    __tablename__ = "set_password_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the password was set through it, or when a newer link replaced it.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
