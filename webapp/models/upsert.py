"""INSERT … ON CONFLICT on both of our databases (no savepoint needed to survive a race).

The clause is written as SQL both PostgreSQL and SQLite read, on SQLAlchemy's plain INSERT: the
dialects' own insert constructs (`postgresql.insert(…).on_conflict_do_…`) carry no cache key in
SQLAlchemy 2.0, so every statement built with them is compiled anew on every execution — on a webhook
that was most of its SQL compilation. A plain INSERT with a text clause is compiled once per shape.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session


def on_conflict(statement: sa.Insert, clause: str) -> sa.Insert:
    """`statement` with `clause` ("ON CONFLICT (…) DO …", fixed SQL, no values: those are bound
    parameters of the statement) after its VALUES or SELECT, before any RETURNING."""
    statement = statement._generate()
    # The slot the dialects' own ON CONFLICT uses; part of the statement's cache key (a text clause).
    statement._post_values_clause = sa.text(clause)
    return statement


def insert_ignore(session: Session, model: type, values: dict[str, Any], conflict: list[str]) -> bool:
    """Insert the row unless one with the same `conflict` columns exists; True if this call inserted it."""
    key = sa.inspect(model).primary_key[0]
    statement = on_conflict(
        sa.insert(model).values(**values), f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    ).returning(key)
    # RETURNING tells reliably whether a row went in (an ORM-enabled INSERT's rowcount does not).
    return session.execute(statement).first() is not None
