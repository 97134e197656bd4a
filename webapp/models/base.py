"""The declarative base: constraint names that Alembic can find again, and a UTC timestamp type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Named constraints make batch migrations on SQLite and ALTERs on PostgreSQL address the same names.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# The inbox's trigram indexes (PostgreSQL only) need pg_trgm; the migration creates it, and so does
# create_all (the tests' schema). A trusted extension: the database's owner may create it.
sa.event.listen(
    Base.metadata,
    "before_create",
    sa.DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)
# An interviewer's slots may not overlap: an exclusion constraint over (integer =, time range &&), whose
# GiST index needs btree_gist for the integer. Trusted too.
sa.event.listen(
    Base.metadata,
    "before_create",
    sa.DDL("CREATE EXTENSION IF NOT EXISTS btree_gist").execute_if(dialect="postgresql"),
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would otherwise hand back naive ones)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Alembic renders our UTC type as a plain DateTime, so migrations never import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def postgresql_only(index: sa.Index) -> sa.Index:
    """An index PostgreSQL has and SQLite does not (a trigram index): created, and compared by Alembic,
    on PostgreSQL only."""
    index.info["only_on"] = "postgresql"
    return index.ddl_if(dialect="postgresql")


def include_object_for(dialect: str) -> Callable[..., bool]:
    """Alembic's include_object for a database of this dialect: leaves out the indexes of another one."""

    def include_object(obj: object, name: str, type_: str, reflected: bool, compare_to: object) -> bool:
        if type_ == "index" and not reflected:
            only_on = getattr(obj, "info", {}).get("only_on")
            return only_on in (None, dialect)
        return True

    return include_object
