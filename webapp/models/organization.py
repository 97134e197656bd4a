"""Customers: an organisation, its products and its channels."""

from __future__ import annotations

from datetime import datetime, time
from functools import lru_cache
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import (
    Mapped,
    Session,
    SessionTransaction,
    aliased,
    mapped_column,
    object_session,
    relationship,
    scoped_session,
)

from webapp.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.user import User

PRODUCTS = ("ats", "messaging", "crm")
CHANNELS = ("sms", "whatsapp")


class Organization(Base):
    __tablename__ = "organization"
    __table_args__ = (sa.CheckConstraint("low_credit_threshold >= 0", name="threshold_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organization.id"), index=True)
    # Every customer has the ATS; these two are bought on top of it.
    has_messaging: Mapped[bool] = mapped_column(default=False)
    has_crm: Mapped[bool] = mapped_column(default=False)
    sms_enabled: Mapped[bool] = mapped_column(default=False)
    whatsapp_enabled: Mapped[bool] = mapped_column(default=False)
    sender_name: Mapped[str] = mapped_column(sa.String(100), default="")
    # Credits one WhatsApp message costs this organisation (SMS is priced per segment).
    whatsapp_price: Mapped[int] = mapped_column(default=1, server_default="1")
    # Answer to HELP/INFO texts; empty means a default naming the company and how to opt out.
    help_reply: Mapped[str] = mapped_column(sa.String(300), default="", server_default="")
    # Admins and senders are warned when the shared balance is at or below this (the top organisation's
    # value counts: the balance is its).
    low_credit_threshold: Mapped[int] = mapped_column(default=50, server_default="50")
    # The most people one bulk message may go to (issue 22); set under Settings.
    bulk_cap: Mapped[int] = mapped_column(default=500, server_default="500")
    # The customer's own most SMS per number and day (issue 23): below its country's guidance it is the
    # guidance (webapp.numbers.guidance); None: the country's alone. Set by customer success.
    number_daily_cap: Mapped[int | None] = mapped_column()
    # IANA name; pages show times in it (webapp.zones).
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    # The organisation's own hours for texts, on the recipient's clock (webapp.messaging.quiet_hours):
    # from, until, and the ISO weekdays allowed ("12345": Monday to Friday). The law's hours hold besides.
    send_from: Mapped[time] = mapped_column(sa.Time, default=time(8), server_default="08:00:00")
    send_until: Mapped[time] = mapped_column(sa.Time, default=time(20), server_default="20:00:00")
    send_days: Mapped[str] = mapped_column(sa.String(7), default="12345", server_default="12345")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Organization | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Organization]] = relationship(back_populates="parent")
    users: Mapped[list[User]] = relationship(back_populates="organization")

    def __repr__(self) -> str:
        return f"<Organization {self.id} {self.name!r}>"

    @property
    def display_sender(self) -> str:
        """The name candidates see: the company, never the user."""
        return self.sender_name or self.name

    @property
    def top(self) -> Organization:
        """The parent organisation at the top, which holds the shared credits: one statement over
        family_above (the family is walked there only), none for an organisation without a parent."""
        if self.parent_id is None and self.parent is None:
            return self
        session = object_session(self)
        if session is None:
            raise RuntimeError(f"{self!r} is not in a session: its parents cannot be read")
        if self.id is None:
            session.flush()
        return session.scalars(sa.select(Organization).where(Organization.id == top_id(self.id))).one()

    def has_product(self, product: str) -> bool:
        if product not in PRODUCTS:
            raise ValueError(f"unknown product {product!r}")
        return {"ats": True, "messaging": self.has_messaging, "crm": self.has_crm}[product]

    def channel_enabled(self, channel: str) -> bool:
        """SMS/WhatsApp are usable when Messaging is bought and the channel is switched on."""
        if channel == "email":
            return True
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        enabled = self.sms_enabled if channel == "sms" else self.whatsapp_enabled
        return self.has_messaging and enabled

    @property
    def texts(self) -> bool:
        """Whether this organisation can text at all (SMS or WhatsApp), i.e. spends credits."""
        return any(self.channel_enabled(c) for c in CHANNELS)

    @property
    def channels(self) -> list[str]:
        """The channels this organisation's users can write on, email first."""
        return ["email"] + [c for c in CHANNELS if self.channel_enabled(c)]


# The family of an organisation (a customer's parent and its sub-organisations, at any depth) is walked
# here only, in SQL (Organization.top too): below an organisation for what it and its subs own or may
# see, above it for what its parents lend it (numbers, credits, administrators).


def family_below(organization_id: int) -> sa.CTE:
    """The organisation and its sub-organisations at any depth (column `id`)."""
    family = sa.select(Organization.id).where(Organization.id == organization_id).cte(recursive=True)
    return family.union_all(sa.select(Organization.id).where(Organization.parent_id == family.c.id))


def family_above(organization_id: int) -> sa.CTE:
    """The organisation and its parents up to the top (columns `id`, `parent_id`)."""
    chain = (
        sa.select(Organization.id, Organization.parent_id)
        .where(Organization.id == organization_id)
        .cte(recursive=True)
    )
    parent = aliased(Organization)
    return chain.union_all(sa.select(parent.id, parent.parent_id).where(parent.id == chain.c.parent_id))


def top_id(organization_id: int | sa.BindParameter[int]) -> sa.ScalarSelect[int]:
    """The id of the organisation's top parent (itself, without one): the customer, which holds the
    credits and the opt-outs."""
    above = family_above(organization_id)  # type: ignore[arg-type]
    return sa.select(above.c.id).where(above.c.parent_id.is_(None)).scalar_subquery()


_CHAINS = "relay.organization.chains"


@lru_cache(maxsize=1)
def _chain_statement() -> sa.Select:
    # Built once, with the organisation as a bound parameter: the same statement object every time, so
    # SQLAlchemy neither builds it nor compiles it again (a request's webhook reads it once or twice).
    above = family_above(sa.bindparam("chain_of", type_=sa.Integer))  # type: ignore[arg-type]
    return sa.select(above.c.id, above.c.parent_id)


def chain(session: Session, organization_id: int) -> list[int]:
    """The organisation and its parents, the top last; read once per transaction (the inbound reply's
    viewers and the change marker's clocks both need it), never used by another transaction."""
    if isinstance(session, scoped_session):  # Flask-SQLAlchemy's db.session: the session it stands for
        session = session()
    if session.get_transaction() is None:
        session.connection()  # begin: the memo below belongs to this transaction
    transaction = session.get_transaction()
    memo = session.info.get(_CHAINS)
    if memo is None or memo[0] is not transaction:
        memo = session.info[_CHAINS] = (transaction, {})
    known: dict[int, list[int]] = memo[1]
    found = known.get(organization_id)
    if found is None:
        parents = dict(session.execute(_chain_statement(), {"chain_of": organization_id}).tuples().all())
        found, current = [], organization_id
        while current is not None:
            found.append(current)
            current = parents.get(current)
        known[organization_id] = found
    return found


@sa.event.listens_for(Session, "after_transaction_end")
def _forget_chains(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # let go of the ended transaction (the memo names it)
        session.info.pop(_CHAINS, None)
