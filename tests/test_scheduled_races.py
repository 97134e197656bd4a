"""Send later on PostgreSQL, where writers really meet (issue 20 §1): the scheduler against a cancel, an
edit, and another scheduler, each in a thread of its own with its own session and connection. Of those
racing for one scheduled message exactly one wins; the message leaves once (one POST to the fake Vonage)
or not at all, and the credits end where the winner's outcome says.

Each race is played as a burst (released together by a barrier, several rounds) and, for the scheduler
against a cancel, step by step: the cancel's change is held uncommitted while the scheduler's UPDATE is
seen waiting for it in pg_stat_activity, which shows that the condition is checked again after the wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from tests import factories as f
from tests.fake_vonage import FakeVonage
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.messaging import compose, scheduled
from webapp.messaging.subjects import of_application
from webapp.models import Message, User, utcnow

ROUNDS = 6


@pytest.fixture
def backend() -> str:
    return "postgresql"  # SQLite lets one writer at a time: the race only exists on a real server


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {
        **fake.app_settings(),
        "VONAGE_TIMEOUT": 5,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 8, "max_overflow": 4, "pool_timeout": 20},
    }


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user])
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
    f.credits(org, 500)
    db.session.commit()
    return {"org": org, "user_id": user.id, "lena": lena}


def schedule(world, body: str = "Hi %FIRSTNAME%") -> tuple[int, object]:
    user = db.session.get(User, world["user_id"])
    message = compose.compose(
        db.session, user, of_application(world["lena"]), "sms", body, send_at=utcnow() + timedelta(hours=1)
    )
    db.session.commit()
    return message.id, message.send_at


def posts_for(fake: FakeVonage, message_id: int) -> int:
    return sum(1 for r in fake.requests if r.body and r.body.get("client_ref") == str(message_id))


def balance(world) -> int:
    db.session.expire_all()
    account = credits.account_for(db.session, world["org"])
    assert credits.ledger_sum(db.session, account.id) == account.balance
    return account.balance


def together(app: Flask, *work: Callable[[], object]) -> list[object]:
    """Run each in a thread of its own (its own app context, session, connection), released at once;
    what each returned, or the exception it raised."""
    start = threading.Barrier(len(work))
    results: list[object] = [None] * len(work)

    def run(i: int) -> None:
        with app.app_context():
            start.wait()
            try:
                results[i] = work[i]()
            except Exception as exc:  # the loser's answer is part of the outcome
                db.session.rollback()
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def first_holds_second_waits(
    app: Flask, first: Callable[[dict[str, object]], object], second: Callable[[dict[str, object]], object]
) -> tuple[bool, dict[str, object]]:
    """`first(results)` runs in a thread of its own up to its flush and holds its transaction open;
    `second(results)` then runs in another and is watched in pg_stat_activity until it waits for a lock;
    then `first` commits. Whether `second` waited, and what both put in `results`."""
    done_first, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def run_first() -> None:
        with app.app_context():
            first(results)
            db.session.flush()
            done_first.set()
            release.wait(30)
            db.session.commit()
            db.session.remove()

    def run_second() -> None:
        with app.app_context():
            results["pid"] = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
            second(results)
            db.session.commit()
            db.session.remove()

    holder = threading.Thread(target=run_first)
    holder.start()
    assert done_first.wait(30)
    waiter = threading.Thread(target=run_second)
    waiter.start()
    deadline, waiting = time.monotonic() + 10, False
    while time.monotonic() < deadline and not waiting and waiter.is_alive():
        time.sleep(0.05)
        pid = results.get("pid")
        if pid is not None:
            waiting = (
                db.session.scalar(
                    sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                == "Lock"
            )
        db.session.rollback()
    release.set()
    holder.join(30)
    waiter.join(30)
    return waiting, results


def scheduler_at(now, round_: int = 0) -> Callable[[], scheduled.Handed]:
    """The scheduler's pass at `now`; in later rounds it starts a little later, so that both orders
    of the race are played (which one wins each round is still the database's doing)."""

    def run() -> scheduled.Handed:
        time.sleep(0.004 * round_)
        return scheduled.send_due(now)

    return run


def as_user(world, change: Callable[[User, Message], object], message_id: int) -> Callable[[], object]:
    def run() -> object:
        user = db.session.get(User, world["user_id"])
        message = db.session.get(Message, message_id)
        result = change(user, message)
        db.session.commit()
        return result

    return run


def test_cancel_against_the_scheduler_one_wins(app, world, fake) -> None:
    outcomes = []
    for round_ in range(ROUNDS):
        message_id, send_at = schedule(world)
        handed, cancelled = together(
            app,
            scheduler_at(send_at, round_),
            as_user(world, lambda u, m: scheduled.cancel(db.session, u, m), message_id),
        )
        db.session.expire_all()
        status = db.session.get(Message, message_id).status
        if isinstance(cancelled, scheduled.TooLate):
            assert str(cancelled) == "It has already left."
            assert handed.queued == [message_id] and status == "submitted"
            assert posts_for(fake, message_id) == 1
            outcomes.append("left")
        else:
            assert not isinstance(cancelled, Exception), cancelled
            assert handed.queued == [] and status == "cancelled"
            assert posts_for(fake, message_id) == 0
            outcomes.append("cancelled")
    assert balance(world) == 500 - outcomes.count("left")
    print("cancel against the scheduler:", outcomes)


def test_a_new_time_against_the_scheduler_one_wins(app, world, fake) -> None:
    outcomes = []
    for round_ in range(ROUNDS):
        message_id, send_at = schedule(world)
        later = send_at + timedelta(hours=1)
        handed, moved = together(
            app,
            scheduler_at(send_at, round_),
            as_user(
                world, lambda u, m, at=later: scheduled.reschedule(db.session, u, m, send_at=at), message_id
            ),
        )
        db.session.expire_all()
        message = db.session.get(Message, message_id)
        if isinstance(moved, scheduled.TooLate):
            assert str(moved) == "It has already left."
            assert handed.queued == [message_id] and posts_for(fake, message_id) == 1
            outcomes.append("left")
        else:
            assert not isinstance(moved, Exception), moved
            # The edit won: the scheduler, which waited for it or skipped the row, left it for later.
            assert handed.queued == [] and (message.status, message.send_at) == ("scheduled", later)
            assert posts_for(fake, message_id) == 0
            outcomes.append("moved")
    assert balance(world) == 500 - ROUNDS
    print("a new time against the scheduler:", outcomes)


def test_a_new_text_against_the_scheduler_exactly_one_version_leaves_once(app, world, fake) -> None:
    outcomes = []
    for round_ in range(ROUNDS):
        message_id, send_at = schedule(world)
        handed, edited = together(
            app,
            scheduler_at(send_at, round_),
            as_user(world, lambda u, m: scheduled.reschedule(db.session, u, m, body="Edited").id, message_id),
        )
        # The next pass sends what is still due (the new version, if the edit won).
        scheduled.send_due(send_at + timedelta(seconds=15))
        if isinstance(edited, scheduled.TooLate):
            assert str(edited) == "It has already left."
            assert posts_for(fake, message_id) == 1
            outcomes.append("left")
        else:
            assert isinstance(edited, int), edited
            # The old version never left; the new one (due at the same time) left in this pass or the next.
            assert message_id not in handed.queued
            assert (posts_for(fake, message_id), posts_for(fake, edited)) == (0, 1)
            outcomes.append("edited")
    assert balance(world) == 500 - ROUNDS  # one credit for each round's one message
    print("a new text against the scheduler:", outcomes)


def test_two_schedulers_at_once_send_each_message_once(app, world, fake) -> None:
    due = [schedule(world, f"Message {i}") for i in range(30)]
    now = max(send_at for _, send_at in due)
    first, second = together(app, scheduler_at(now), scheduler_at(now))
    assert not isinstance(first, Exception) and not isinstance(second, Exception)
    assert sorted(first.queued + second.queued) == [message_id for message_id, _ in due]
    assert [posts_for(fake, message_id) for message_id, _ in due] == [1] * 30


def test_step_by_step_the_scheduler_waits_for_a_cancel_and_then_leaves_it(app, world, fake) -> None:
    """The cancel's UPDATE is made and held uncommitted; the scheduler's UPDATE of the same row (its rows
    read before, unlocked, as on a backend without SKIP LOCKED) waits for it, then finds the row
    cancelled and hands nothing over."""
    message_id, send_at = schedule(world)
    cancelled, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def cancel() -> None:
        with app.app_context():
            user = db.session.get(User, world["user_id"])
            scheduled.cancel(db.session, user, db.session.get(Message, message_id))
            db.session.flush()
            cancelled.set()
            release.wait(30)
            db.session.commit()
            db.session.remove()

    def scheduler() -> None:
        with app.app_context():
            rows = db.session.scalars(
                sa.select(Message).where(Message.status == "scheduled", Message.send_at <= send_at)
            ).all()
            results["read"] = [m.id for m in rows]
            results["pid"] = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
            results["left"] = scheduled._leave(db.session, list(rows), send_at)
            db.session.commit()
            db.session.remove()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    assert cancelled.wait(30)
    leaver = threading.Thread(target=scheduler)
    leaver.start()
    deadline = time.monotonic() + 20
    waiting = False
    while time.monotonic() < deadline and not waiting:
        time.sleep(0.05)
        pid = results.get("pid")
        if pid is not None:
            waiting = (
                db.session.scalar(
                    sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                == "Lock"
            )
        db.session.rollback()
    release.set()
    canceller.join(30)
    leaver.join(30)
    assert waiting, "the scheduler's UPDATE never waited for the cancel's lock"
    assert results["read"] == [message_id]  # it had read the message as due and scheduled
    assert results["left"] == ([], [])  # and, after the wait, neither sent nor held it
    db.session.expire_all()
    assert db.session.get(Message, message_id).status == "cancelled"
    assert posts_for(fake, message_id) == 0
    assert balance(world) == 500


def test_the_due_query_is_a_range_of_its_index(app, world) -> None:
    for i in range(20):
        schedule(world, f"Message {i}")
    plan = explain(scheduled.due_query(utcnow() + timedelta(hours=2), 500))
    assert "Index Scan using ix_message_status_send_at on message" in plan, plan
    assert "Index Cond: (((status)::text = 'scheduled'::text) AND (send_at <= " in plan, plan
    assert "Sort" not in plan, plan  # the index gives the time order


def explain(statement: sa.Select) -> str:
    compiled = statement.compile(dialect=db.engine.dialect)
    params = {
        name: value.astimezone(UTC).replace(tzinfo=None) if isinstance(value, datetime) else value
        for name, value in compiled.params.items()
    }
    with db.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a table this small is read whole anyway
        # And of a few rows, any index on status does, sorted after: the plan without a sort is the one
        # whose index gives the time order (a sort would still show if no index gave it).
        conn.exec_driver_sql("SET LOCAL enable_sort = off")
        return "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", params))
