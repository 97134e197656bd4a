"""Opting out and back in: the keywords, and the one record per organisation and number."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import Session

from webapp.models import Message, OptOut, Organization, utcnow
from webapp.models.organization import top_id
from webapp.models.upsert import insert_ignore

STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT", "OPTOUT"}
)
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})


def keyword(text: str) -> str | None:
    """The opt-out keyword the whole text is, whatever its case, spacing and punctuation."""
    words = re.sub(r"[\W_]+", " ", text).strip().upper()
    words = re.sub(r"\s+", " ", words)
    if words in STOP_WORDS:
        return "stop"
    if words in START_WORDS:
        return "start"
    if words in HELP_WORDS:
        return "help"
    return None


def customer_id(session: Session, organization_id: int) -> int:
    """Opt-outs hold for the whole customer: they are kept on its top organisation, whichever of its
    (sub-)organisations the STOP reached or the next message comes from."""
    organization = session.get(Organization, organization_id)
    assert organization is not None
    return organization.top.id


def opt_out(session: Session, organization_id: int, e164: str, source: Message) -> None:
    """For the whole customer, all its numbers and both channels, from now on."""
    organization_id = customer_id(session, organization_id)
    insert_ignore(
        session,
        OptOut,
        {
            "organization_id": organization_id,
            "e164": e164,
            "source_message_id": source.id,
            "created_at": utcnow(),
        },
        conflict=["organization_id", "e164"],
    )
    row = session.scalar(
        sa.select(OptOut)
        .where(OptOut.organization_id == organization_id, OptOut.e164 == e164)
        .with_for_update()
    )
    assert row is not None
    if row.revoked_at is not None:  # opted in again earlier; this STOP counts anew
        row.revoked_at, row.revoked_by_message_id = None, None
        row.source_message_id, row.created_at = source.id, utcnow()


def opt_in(session: Session, organization_id: int, e164: str, source: Message) -> None:
    organization_id = customer_id(session, organization_id)
    row = session.scalar(
        sa.select(OptOut)
        .where(OptOut.organization_id == organization_id, OptOut.e164 == e164)
        .with_for_update()
    )
    if row is not None and row.revoked_at is None:
        row.revoked_at, row.revoked_by_message_id = utcnow(), source.id


def active(session: Session, organization_id: int, e164: str) -> OptOut | None:
    """The opt-out in force for this number, for any organisation of the customer: one statement (the
    customer found in it), as every send asks it once, some twice."""
    return session.scalar(_active_statement(), {"optout_of": organization_id, "optout_number": e164})


def active_among(session: Session, organization_id: int, numbers: Sequence[str]) -> dict[str, OptOut]:
    """`active` for many numbers of one organisation: the opt-outs in force, by number (a bulk message's
    recipients, read once)."""
    customer = customer_id(session, organization_id)
    found: dict[str, OptOut] = {}
    for start in range(0, len(numbers), 1000):
        chunk = numbers[start : start + 1000]
        for row in session.scalars(
            sa.select(OptOut).where(*_held(sa.literal(customer)), OptOut.e164.in_(chunk))
        ):
            found[row.e164] = row
    return found


def held_by(customer_id: sa.ColumnElement[int], e164: sa.ColumnElement[str]) -> sa.Exists:
    """Whether an opt-out is in force for the number, held by this customer (a top organisation): what
    `active` answers, as a clause another query can carry when it knows the customer already (the
    dispatcher reads it with the message, for an organisation without a parent)."""
    return sa.exists().where(*_in_force(customer_id, e164))


def _held(customer_id: sa.ColumnElement[int]) -> tuple:
    return (OptOut.organization_id == customer_id, OptOut.revoked_at.is_(None))


def _in_force(customer_id: sa.ColumnElement[int], e164: sa.ColumnElement[str]) -> tuple:
    return (*_held(customer_id), OptOut.e164 == e164)


@lru_cache(maxsize=1)
def _active_statement() -> sa.Select:
    # Bound parameters: one statement object, neither built nor compiled again for each send.
    return sa.select(OptOut).where(
        *_in_force(
            top_id(sa.bindparam("optout_of", type_=sa.Integer)),
            sa.bindparam("optout_number", type_=sa.String),
        )
    )
