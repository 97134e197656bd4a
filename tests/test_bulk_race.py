"""Send pressed in several tabs at once for one bulk message: one batch runs, each person gets one
message, and every other tab is told it was sent already (422) — over real HTTP, on PostgreSQL and on
SQLite (the suite runs on each)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from tests import factories as f
from tests.browser_support import serve
from tests.test_slot_race import Recruiter
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import bulk
from webapp.models import Batch, Message

TABS = 6


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {
        **fake.app_settings(),
        "QUIET_HOURS": False,
        "VONAGE_RATE_PER_SECOND": 0.0,
        "SEND_RATE_PER_NUMBER": 0.0,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": TABS + 2, "max_overflow": 2, "pool_timeout": 30},
    }


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    with serve(app) as url:
        yield url


def test_send_in_several_tabs_at_once_sends_the_batch_once(app, served, fake) -> None:
    acme = f.messaging_org("Acme", sender_name="Acme")
    riley = f.user(acme, "riley@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(acme, "+4915123456700")
    job = f.job(acme, team=[riley], title="Backend Engineer")
    ids = [
        f.application(job, f.candidate(acme, f"Cand{i}", "Test", mobile=f"+49151234567{i:02d}")).id
        for i in range(5)
    ]
    f.credits(acme, 100)
    db.session.commit()
    batch = bulk.draft(
        db.session, riley, "application", bulk.recipients(db.session, riley, "application", ids), "sms", "Hi"
    )
    url = f"{served}/batches/{batch.id}/send"
    tabs = [Recruiter(served, "riley@acme.test") for _ in range(TABS)]
    tokens = [tab.form_token(f"/batches/{batch.id}") for tab in tabs]
    start = threading.Barrier(TABS)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def press(n: int) -> None:
        start.wait()
        answer = tabs[n].http.post(url, data={"csrf_token": tokens[n]}, allow_redirects=False, timeout=60)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=press, args=(n,)) for n in range(TABS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)

    codes = sorted(a.status_code for a in answers)
    assert codes == [303] + [422] * (TABS - 1), codes
    assert all("was sent already" in a.text for a in answers if a.status_code == 422)
    db.session.expire_all()
    assert db.session.scalar(sa.select(Batch.state).where(Batch.id == batch.id)) == "done"
    per_person = Counter(db.session.scalars(sa.select(Message.to_addr)))
    assert len(per_person) == 5 and set(per_person.values()) == {1}
    assert len({r.body.get("client_ref") for r in fake.requests if r.body}) == 5
