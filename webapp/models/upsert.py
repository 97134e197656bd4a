"""INSERT … ON CONFLICT DO NOTHING on both of our databases (no savepoint needed to survive a race)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, model: type, values: dict[str, Any], conflict: list[str]) -> bool:
    """Insert the row unless one with the same `conflict` columns exists; True if this call inserted it."""
    dialect = session.get_bind().dialect.name
    module = {"postgresql": postgresql, "sqlite": sqlite}[dialect]
    key = sa.inspect(model).primary_key[0]
    statement = (
        module.insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict).returning(key)
    )
    # RETURNING tells reliably whether a row went in (an ORM-enabled INSERT's rowcount does not).
    return session.execute(statement).first() is not None
