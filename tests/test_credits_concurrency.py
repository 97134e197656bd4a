"""On PostgreSQL, 50 sends at once against a balance of 20: exactly 20 go, the balance ends at 0."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from tests import factories as f
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.messaging import checks, compose
from webapp.messaging.subjects import of_application
from webapp.models import Application, CreditAccount, CreditTransaction, Message, User


@pytest.fixture
def backend() -> str:
    return "postgresql"  # SQLite serialises writers; the race only exists on a real server


@pytest.fixture
def app_config() -> dict[str, object]:
    # One connection per thread, so all fifty really meet at the database.
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 50, "max_overflow": 5, "pool_timeout": 20}}


def test_fifty_threads_against_twenty_credits(app) -> None:
    org = f.messaging_org("Acme")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS])
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user])
    apps = [
        f.application(job, f.candidate(org, "C", str(i), mobile=f"+49151234567{i:02d}")) for i in range(25)
    ]
    f.credits(org, 20)
    db.session.commit()
    user_id, app_ids = user.id, [a.id for a in apps]
    db.session.remove()

    start = threading.Barrier(50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        with app.app_context():
            u = db.session.get(User, user_id)
            application = db.session.get(Application, app_ids[i % len(app_ids)])
            start.wait()
            try:
                compose.compose(db.session, u, of_application(application), "sms", f"Hello {i}")
                db.session.commit()
                result = "sent"
            except checks.SendRefused as refused:
                db.session.rollback()
                result = "refused" if "credit" in refused.message else refused.message
            finally:
                db.session.remove()
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(set(outcomes)) == ["refused", "sent"], outcomes
    assert outcomes.count("sent") == 20 and outcomes.count("refused") == 30
    account = db.session.scalar(sa.select(CreditAccount))
    assert account.balance == 0 == credits.ledger_sum(db.session, account.id)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 20
    balances = db.session.scalars(
        sa.select(CreditTransaction.balance_after).where(CreditTransaction.kind == "debit")
    ).all()
    assert sorted(balances) == list(range(20)) and min(balances) >= 0
