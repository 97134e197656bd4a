"""What every database connection is given, and the write lock of a check that must not race.

SQLite is the embedded default, and it runs background work of its own (the dispatcher's threads, the
simulator's delivery reports): several connections write to one file. Without care, one of them is
told "database is locked" at once instead of waiting its turn — a 500 for whoever it was. So every
SQLite connection gets:

- WAL mode: readers never wait for the writer, nor the writer for readers;
- a busy timeout: a writer waits for the current one to commit instead of failing;
- transactions that hold the write lock from their start. The driver (pysqlite) opens a transaction
  only at the first INSERT/UPDATE/DELETE, which takes the write lock in the same step; but a SAVEPOINT
  opens one that only reads, and a write after reads inside it must *upgrade* the lock, which SQLite
  refuses outright when another connection wrote meanwhile (no waiting: the busy timeout does not
  apply). Such transactions begin with BEGIN IMMEDIATE here instead.

`write_lock(session)` does the same for a check followed by a write (an interviewer's free time, say):
on SQLite it takes the database's write lock before the check, so two such checks run one after the
other. PostgreSQL needs none of this: its constraints and row locks decide races there.

A pooled connection is asked whether it is alive (`SELECT 1`) before it is used again only when it lay
unused for PING_AFTER_IDLE_SECONDS (`ping_when_idle`), where SQLAlchemy's pre-ping asks at every
checkout. A send checks a connection out three times within milliseconds and a busy web process many
times a second, and each question is a round trip to PostgreSQL (a third of a send's). What the ping is
for — a database restarted while the pool's connections waited, the quiet night's maintenance — still
finds every connection asked. A restart under load is met by the connection's first statement instead:
SQLAlchemy sees the disconnect, drops every connection of the pool made before it, and that one request
answers 503 (a send's read is tried once more; nothing was claimed).

`one_statement(session)` is for a unit of work that is one statement (a send's read, its claim, its
end): on PostgreSQL the session's next transaction then runs each statement on its own, committed as it
ends, without the BEGIN before it and the COMMIT (or ROLLBACK) after it — two round trips of three.

`lock_row(session, Model, id)` is the decision on one row (a submission's last approval): a row lock on
PostgreSQL, the write lock on SQLite, and the row read afresh after it either way.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

T = TypeVar("T")

# How long a writer waits for another's commit before giving up; write transactions last milliseconds.
BUSY_TIMEOUT_MS = 15_000
# A pooled connection unused for this long is pinged before it is used again (see the docstring).
PING_AFTER_IDLE_SECONDS = 1.0
_USED_AT = "relay.used_at"


def ping_when_idle(engine: sa.Engine, after_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Ping the engine's pooled connections at checkout only when they were idle `after_seconds` (for an
    engine made without pool_pre_ping). A dead one is replaced by a new connection, as pre-ping does."""
    dialect = engine.dialect

    @sa.event.listens_for(engine, "connect")
    def _made(_dbapi_connection: Any, record: Any) -> None:
        record.info[_USED_AT] = time.monotonic()

    @sa.event.listens_for(engine, "checkin")
    def _used(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_USED_AT] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        used = record.info.get(_USED_AT)
        if used is not None and time.monotonic() - used < after_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                # The pool throws this connection away and checks out a new one (SQLAlchemy's protocol).
                raise sa.exc.DisconnectionError(str(exc)) from exc
            raise


@sa.event.listens_for(sa.Engine, "connect")
def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Kept in the file, so this changes something only once; a database in memory answers "memory"
        # and stays as it is. The first switch needs the file to itself: when another process is using
        # it, the next connection tries again, and this one works as before, only less concurrently.
        with contextlib.suppress(sqlite3.OperationalError):
            cursor.execute("PRAGMA journal_mode = WAL")
        # WAL's recommended durability: a commit survives a crash of the process, not a power cut.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _begin_immediate(dbapi_connection: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection) and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN IMMEDIATE")


@sa.event.listens_for(sa.Engine, "savepoint")
def _savepoint_takes_the_write_lock(conn: sa.Connection, _name: str | None) -> None:
    _begin_immediate(conn.connection.driver_connection)


def one_statement(session: Session) -> bool:
    """On PostgreSQL, with no transaction begun: the session's next transaction is autocommit (each
    statement committed as it ends; its commit() then sends nothing). True when it is; a caller whose
    work is more than one statement must not use it. The connection goes back to the pool as it was."""
    if isinstance(session, scoped_session):  # Flask-SQLAlchemy's db.session: the session it stands for
        session = session()
    if session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return False
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return True


def write_lock(session: Session) -> None:
    """On SQLite, hold the database's write lock from now until the session's commit or rollback (a
    transaction that has already written holds it anyway). On PostgreSQL nothing: lock rows there."""
    _begin_immediate(session.connection().connection.driver_connection)


def lock_row(session: Session, model: type[T], row_id: int, *options: Any) -> T:
    """The row with this id, locked until the commit and read afresh (attributes already loaded are
    overwritten, and so are the objects of the eager `options`), so that a decision made on what the
    transaction reads next cannot be undone by another request deciding at the same moment. On
    PostgreSQL a row lock (FOR UPDATE): a second request waits here for the first's commit, then reads
    what it committed. SQLite has no row locks: its one write lock is taken here instead."""
    write_lock(session)
    key = sa.inspect(model).primary_key[0]
    statement = (
        sa.select(model)
        .where(key == row_id)
        .with_for_update()
        .options(*options)
        .execution_options(populate_existing=True)
    )
    return session.execute(statement).scalar_one()
