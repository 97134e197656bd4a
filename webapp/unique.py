"""One rule for every form: a unique-constraint conflict is a refusal beside its field, never a 500.

A domain function looks for the duplicate first and says what is wrong. Two requests at once can both
pass that look-up; then the database's unique constraint lets one in and makes the other fail (on
PostgreSQL the second waits for the first's commit). `refusing` runs the writes in a savepoint and turns
the conflict of a constraint it is given into the refusal given with it — the domain's own refusal,
with its field, so the route answers exactly as for the look-up (422, beside the field) — and the
caller's transaction stays usable. A conflict on a constraint the caller did not name is a bug and stays
an error. `savepoint` is the same without the refusal, for a caller that answers a conflict otherwise
(finding the row the other request stored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.models import Base


class Conflict(Exception):
    """Another request stored the same key first; `constraint` is the name of the one it broke."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


@contextmanager
def savepoint(session: Session, *constraints: str) -> Iterator[None]:
    """The block's writes, flushed in a savepoint. A conflict on one of `constraints` rolls back only the
    savepoint and raises Conflict; any other error is raised as it was."""
    unknown = set(constraints) - _unique_keys().keys()
    if unknown:
        raise ValueError(f"no unique constraint called {', '.join(sorted(unknown))}")
    try:
        with session.begin_nested():
            yield
    except IntegrityError as exc:
        name = constraint_of(exc)
        if name not in constraints:
            raise
        raise Conflict(name) from exc


@contextmanager
def refusing(session: Session, refusals: Mapping[str, Exception]) -> Iterator[None]:
    """The block's writes in a savepoint; a conflict on a constraint named in `refusals` raises the
    refusal given for it (the domain's refusal, which names the field)."""
    try:
        with savepoint(session, *refusals):
            yield
    except Conflict as conflict:
        raise refusals[conflict.constraint] from conflict


def constraint_of(exc: IntegrityError) -> str | None:
    """The name of the unique constraint (or unique index) a write broke, on either database."""
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:  # PostgreSQL names it
        return name
    # SQLite names the table's columns: "UNIQUE constraint failed: role.organization_id, role.name".
    found = re.search(r"UNIQUE constraint failed: (.+)$", str(exc.orig))
    if not found:
        return None
    columns = [part.strip().split(".", 1) for part in found.group(1).split(",")]
    if any(len(part) != 2 for part in columns) or len({table for table, _ in columns}) != 1:
        return None
    key = (columns[0][0], frozenset(column for _, column in columns))
    return next((name for name, of in _unique_keys().items() if of == key), None)


@cache
def _unique_keys() -> dict[str, tuple[str, frozenset[str]]]:
    """Every unique constraint and unique index of the models: its name → (table, columns)."""
    keys: dict[str, tuple[str, frozenset[str]]] = {}
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint) and constraint.name:
                keys[str(constraint.name)] = (table.name, frozenset(c.name for c in constraint.columns))
        for index in table.indexes:
            if index.unique and index.name:
                keys[str(index.name)] = (table.name, frozenset(c.name for c in index.columns))
    return keys
