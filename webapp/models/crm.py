"""The CRM: talent communities, their sourcing teams, prospects and their memberships."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, postgresql_only, utcnow
from webapp.models.contact import ContactMixin

if TYPE_CHECKING:
    from webapp.models.organization import Organization
    from webapp.models.user import User


class Community(Base):
    __tablename__ = "community"
    __table_args__ = (sa.UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship()
    team: Mapped[list[SourcingTeamMember]] = relationship(
        back_populates="community", cascade="all, delete-orphan"
    )
    memberships: Mapped[list[CommunityMembership]] = relationship(back_populates="community")


class SourcingTeamMember(Base):
    __tablename__ = "sourcing_team_member"
    __table_args__ = (sa.UniqueConstraint("community_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("community.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)

    community: Mapped[Community] = relationship(back_populates="team")
    user: Mapped[User] = relationship()


class Prospect(ContactMixin, Base):
    __tablename__ = "prospect"
    __table_args__ = (
        # One person per organisation and number (E.164); prospects reached by email only have none.
        sa.Index("uq_prospect_organization_id_mobile", "organization_id", "mobile", unique=True),
        # The inbox's and the community's search by name and by part of a number (PostgreSQL).
        postgresql_only(
            sa.Index(
                "ix_prospect_search_name_trgm",
                "search_name",
                postgresql_using="gin",
                postgresql_ops={"search_name": "gin_trgm_ops"},
            )
        ),
        postgresql_only(
            sa.Index(
                "ix_prospect_mobile_trgm",
                "mobile",
                postgresql_using="gin",
                postgresql_ops={"mobile": "gin_trgm_ops"},
            )
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organization.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship()
    memberships: Mapped[list[CommunityMembership]] = relationship(back_populates="prospect")


class CommunityMembership(Base):
    """A prospect in a community: the unit a sourcing team talks to the prospect about."""

    __tablename__ = "community_membership"
    __table_args__ = (sa.UniqueConstraint("community_id", "prospect_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(sa.ForeignKey("community.id"))
    prospect_id: Mapped[int] = mapped_column(sa.ForeignKey("prospect.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Removing a member keeps the membership (its conversation is history that must not be lost); a
    # removed member is not listed and cannot be written to until added again.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    community: Mapped[Community] = relationship(back_populates="memberships")
    prospect: Mapped[Prospect] = relationship(back_populates="memberships")
