"""A row read under a lock held until the commit, on both of our databases, so that a decision made on
what the transaction reads next cannot be undone by another request deciding at the same moment."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

T = TypeVar("T")


def lock_row(session: Session, model: type[T], row_id: int, *options: Any) -> T:
    """The row with this id, locked and read afresh (attributes already loaded are overwritten, and so
    are the objects of the eager `options`). On PostgreSQL a row lock (FOR UPDATE): a second request
    waits here for the first's commit, then reads what it committed. SQLite has no row locks and takes
    its one write lock at a transaction's first write: a write that changes nothing takes it here, so
    that nothing read from here on can be changed by another writer before this transaction ends."""
    key = sa.inspect(model).primary_key[0]
    if session.get_bind().dialect.name == "sqlite":
        session.execute(sa.update(key.table).where(key == row_id).values({key.name: key}))
    statement = (
        sa.select(model)
        .where(key == row_id)
        .with_for_update()
        .options(*options)
        .execution_options(populate_existing=True)
    )
    return session.execute(statement).scalar_one()
