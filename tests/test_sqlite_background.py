"""The embedded default (SQLite in a file, sends on the web process's thread pool, the simulator reporting
deliveries from timer threads) under its own background work: candidates book, move and cancel over
real HTTP while the confirmations they cause are sent and reported delivered, and while status webhooks
land. No request may fail ("database is locked" was a 500), and the data must add up afterwards."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from tests import factories as f
from tests import webhook_support
from tests.browser_support import serve
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.interviews import invitations
from webapp.messaging import compose, dispatch, subjects
from webapp.models import Conversation, CreditAccount, InterviewSlot, Invitation, Message, User, utcnow

CANDIDATES = 6
ROUNDS = 4
BASE = "http://relay.test"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


@pytest.fixture
def backend() -> str:
    return "sqlite"  # a file database (conftest), as `make run` has


@pytest.fixture
def app_config() -> dict[str, object]:
    return {
        "DISPATCH_MODE": "thread",  # as `make run`: sends on the web process's own threads
        "SIMULATOR_DELIVERY_SECONDS": 0,  # every delivery report lands while the bookings go on
        "PUBLIC_BASE_URL": BASE,
        "BOOKING_MAX_REQUESTS_PER_ADDRESS": 100_000,
        "BOOKING_MAX_REQUESTS_PER_TOKEN": 100_000,
    }


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    with serve(app) as url:
        yield url


def test_bookings_while_deliveries_are_reported(app: Flask, served: str) -> None:
    org = f.messaging_org("Acme", sender_name="Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user])
    applications = [
        f.application(job, f.candidate(org, "C", str(i), mobile=f"+49151234567{i:02d}"))
        for i in range(CANDIDATES)
    ]
    f.credits(org, 1000)
    soon = utcnow().replace(microsecond=0) + timedelta(days=2)
    slot_list = [
        InterviewSlot(job_id=job.id, starts_at=soon + timedelta(hours=h), minutes=30, place="Room 1")
        for h in range(2 * CANDIDATES)
    ]
    db.session.add_all(slot_list)
    db.session.commit()
    tokens = []
    for application in applications:
        invitation = invitations.invite(
            db.session, user, application, "sms", "Book: %INVITELINK%", None, BASE, utcnow()
        )
        db.session.commit()
        found = re.search(r"/book/([A-Za-z0-9_-]+)", invitation.message.body)
        assert found
        tokens.append(found.group(1))
        dispatch.enqueue(invitation.message_id)
    slot_ids = [s.id for s in slot_list]
    conversation_ids = list(db.session.scalars(sa.select(Message.conversation_id).distinct()))
    db.session.remove()

    answers: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(CANDIDATES + 2)

    def candidate(i: int) -> None:
        http = requests.Session()
        page = f"{served}/book/{tokens[i]}"
        start.wait()
        for r in range(ROUNDS):
            mine = slot_ids[2 * i + r % 2]  # each candidate moves between two times of its own
            csrf = CSRF_RE.search(http.get(page, timeout=30).text)
            assert csrf, "no form"
            booked = http.post(page, data={"csrf_token": csrf.group(1), "slot": mine}, timeout=30)
            with lock:
                answers.append(booked.status_code)
            if r == ROUNDS - 2:
                cancelled = http.post(
                    page + "/cancel", data={"csrf_token": csrf.group(1)}, allow_redirects=False, timeout=30
                )
                with lock:
                    answers.append(cancelled.status_code)

    def sender() -> None:
        """The team writes meanwhile: more sends, more delivery reports landing."""
        start.wait()
        with app.app_context():
            for n in range(3 * CANDIDATES):
                conversation_id = conversation_ids[n % len(conversation_ids)]
                about = subjects.of_conversation(db.session.get(Conversation, conversation_id))
                message = compose.compose(
                    db.session, db.session.get(User, user.id), about, "sms", f"Note {n}"
                )
                db.session.commit()
                dispatch.enqueue(message.id)
            db.session.remove()

    done = threading.Event()

    def webhooks() -> None:
        """Vonage's own reports meanwhile: each message the simulator has sent is reported read."""
        http = requests.Session()
        reported: set[str] = set()
        start.wait()
        while not done.is_set():
            with app.app_context():
                sent = set(
                    db.session.scalars(sa.select(Message.provider_id).where(Message.provider_id.is_not(None)))
                )
                db.session.remove()
            for provider_id in sorted(sent - reported):
                raw = json.dumps(webhook_support.status(provider_id, "read")).encode()
                answer = http.post(
                    f"{served}/webhooks/vonage/status",
                    data=raw,
                    headers={
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {webhook_support.token(raw)}",
                    },
                    timeout=30,
                )
                with lock:
                    answers.append(answer.status_code)
                reported.add(provider_id)

    threads = [threading.Thread(target=candidate, args=(i,)) for i in range(CANDIDATES)]
    threads += [threading.Thread(target=sender), threading.Thread(target=webhooks)]
    for t in threads:
        t.start()
    for t in threads[:-1]:
        t.join(timeout=120)
    done.set()
    threads[-1].join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    assert 500 not in answers, answers
    assert set(answers) <= {200, 204, 303}, answers

    # Every send reached the simulator and was reported delivered (waiting for the background threads
    # to finish, not timing them).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pending = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Message)
            .where(Message.status.notin_(("delivered", "read")))
        )
        db.session.rollback()
        if not pending:
            break
        time.sleep(0.1)
    statuses = db.session.scalars(sa.select(Message.status)).all()
    assert set(statuses) <= {"delivered", "read"}, statuses

    # Each candidate holds the time of its last booking; no slot has two holders; the credits add up.
    held = db.session.execute(sa.select(Invitation.slot_id, Invitation.state)).all()
    assert sorted(h.slot_id for h in held) == sorted(
        slot_ids[2 * i + (ROUNDS - 1) % 2] for i in range(CANDIDATES)
    )
    assert {h.state for h in held} == {"booked"}
    account = db.session.scalar(sa.select(CreditAccount))
    assert account.balance == credits.ledger_sum(db.session, account.id)
    spent = db.session.scalar(sa.select(sa.func.sum(Message.credits)))
    assert account.balance == 1000 - spent
