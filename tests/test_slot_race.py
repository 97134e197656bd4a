"""Two recruiters add the same time for one interviewer at the same moment: one slot, and one clear
refusal next to the time, never a 500 — over real HTTP, on PostgreSQL (where the exclusion constraint
decides) and on SQLite (where the check runs under the database's write lock). And, step by step on
PostgreSQL, that the second insert waits for the first and is then refused by the database itself,
after the check in Python had let it through."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import date, time

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from tests import factories as f
from tests.browser_support import serve
from tests.test_booking_race import Second, pid
from webapp.extensions import db
from webapp.interviews import slots
from webapp.models import InterviewSlot, Job, User, utcnow

CSRF_RE = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
CLIENTS = 8
ROUNDS = 4


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": CLIENTS + 2, "max_overflow": 2, "pool_timeout": 30}}


@pytest.fixture
def team(app) -> dict[str, object]:
    org = f.org("Acme", time_zone="Europe/Berlin")
    riley = f.user(org, "riley@acme.test", name="Riley Chen")
    sam = f.user(org, "sam@acme.test", name="Sam Lee")
    job = f.job(org, team=[riley, sam], title="Backend Engineer")
    db.session.commit()
    return {"riley": riley, "sam": sam, "job": job}


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    with serve(app) as url:
        yield url


class Recruiter:
    """A browser of its own, signed in."""

    def __init__(self, base: str, email: str) -> None:
        self.base = base
        self.http = requests.Session()
        login = self.http.get(f"{base}/login", timeout=30)
        token = CSRF_RE.search(login.text)
        assert token
        data = {"email": email, "password": f.PASSWORD, "csrf_token": token.group(1)}
        assert self.http.post(f"{base}/login", data=data, allow_redirects=False, timeout=30).status_code in (
            302,
            303,
        )

    def form_token(self, path: str) -> str:
        found = CSRF_RE.search(self.http.get(self.base + path, timeout=30).text)
        assert found
        return found.group(1)


def add_at_once(served: str, team: dict[str, object], at: str) -> list[requests.Response]:
    """CLIENTS browsers (the two recruiters, several tabs each) add Riley at `at` on 2031-03-04."""
    job, riley = team["job"], team["riley"]
    assert isinstance(job, Job) and isinstance(riley, User)
    path, riley_id = f"/jobs/{job.id}/slots", str(riley.id)
    browsers = [Recruiter(served, "riley@acme.test" if n % 2 else "sam@acme.test") for n in range(CLIENTS)]
    tokens = [b.form_token(path) for b in browsers]
    start = threading.Barrier(CLIENTS)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def add(n: int) -> None:
        data = {
            "csrf_token": tokens[n],
            "day": "2031-03-04",
            "at": at,
            "minutes": "30",
            "time_zone": "Europe/Berlin",
            "place": f"Room {n}",
            "interviewer_id": riley_id,
        }
        start.wait()
        answer = browsers[n].http.post(served + path, data=data, allow_redirects=False, timeout=60)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    return answers


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=False)
def test_recruiters_adding_one_time_at_once_leave_one_slot(backend, team, served) -> None:
    for n in range(ROUNDS):
        at = f"{10 + n}:00"
        answers = add_at_once(served, team, at)
        codes = sorted(a.status_code for a in answers)
        assert codes == [303] + [422] * (CLIENTS - 1), codes
        for refused in (a for a in answers if a.status_code == 422):
            assert (
                f'<p class="field-error" id="at-error">Riley Chen already has a slot then: Tue 04 Mar {at}'
                in (refused.text)
            )
        db.session.expire_all()
        count = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(InterviewSlot)
            .where(InterviewSlot.job_id == team["job"].id)
        )
        assert count == n + 1


@pytest.fixture
def backend(request) -> str:
    # The race over HTTP runs on both (parametrised above); the step-by-step test needs PostgreSQL.
    return getattr(request, "param", "postgresql")


def add_by_id(job_id: int, user_id: int, at: time) -> str:
    """What the team's "Add slot" does, in the calling thread's session."""
    job, user = db.session.get(Job, job_id), db.session.get(User, user_id)
    assert job is not None and user is not None
    draft = slots.Draft(date(2031, 3, 4), at, 30, "Room 2", user_id, "Europe/Berlin")
    try:
        slots.create(db.session, user, job, draft, utcnow())
    except slots.SlotRefused as refused:
        db.session.rollback()
        return f"refused ({refused.field}): {refused}"
    db.session.commit()
    return "added"


def test_the_second_insert_waits_for_the_first_then_the_database_refuses_it(app, team) -> None:
    job, riley = team["job"], team["riley"]
    mine = pid()
    # The first: checked and inserted, not yet committed. The second's check cannot see it.
    slots.create(
        db.session, riley, job, slots.Draft(date(2031, 3, 4), time(10), 30, "Room 1", riley.id), utcnow()
    )
    other = Second(app, lambda: add_by_id(job.id, riley.id, time(10, 15)))
    try:
        assert other.blocked_by() == [mine]
    finally:
        db.session.commit()
    assert other.outcome() == (
        "refused (at): Riley Chen already has a slot then: Tue 04 Mar 10:00–10:30 CET (just added)."
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InterviewSlot)) == 1
