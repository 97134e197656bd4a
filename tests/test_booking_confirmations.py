"""The public booking link cannot spend the customer's credits (issue 17): one confirmation per real
change, at most three per invitation (later changes are confirmed on the page, and the team's card shows
them), and a limit per link besides the one per address."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from tests import factories as f
from tests.conftest import csrf_from
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.interviews import invitations
from webapp.models import CreditAccount, CreditTransaction, InterviewSlot, Invitation, Message, utcnow
from webapp.models.interviews import MAX_CONFIRMATIONS

BASE = "https://relay.example"
ADDRESSES = [f"198.51.100.{n}" for n in range(1, 6)]


@pytest.fixture
def app_config() -> dict[str, object]:
    # The per-link limit is tested on its own (below); here it must not stop the attacker first.
    return {"PUBLIC_BASE_URL": BASE, "BOOKING_MAX_REQUESTS_PER_TOKEN": 10_000}


@pytest.fixture
def invited(app) -> dict[str, object]:
    org = f.messaging_org("Acme", sender_name="Acme", time_zone="Europe/Berlin")
    recruiter = f.user(org, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    job = f.job(org, team=[recruiter], title="Backend Engineer")
    f.number(org, "+4915123456700")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
    f.credits(org, 100)
    soon = utcnow().replace(microsecond=0) + timedelta(days=2)
    slot_list = [
        InterviewSlot(job_id=job.id, starts_at=soon + timedelta(hours=h), minutes=30, place="Room 3")
        for h in range(3)
    ]
    db.session.add_all(slot_list)
    db.session.commit()
    invitation = invitations.invite(
        db.session, recruiter, lena, "sms", "Hi %FIRSTNAME%, book: %INVITELINK%", None, BASE, utcnow()
    )
    db.session.commit()
    found = re.search(r"/book/([A-Za-z0-9_-]+)", invitation.message.body)
    assert found
    return {
        "org": org,
        "lena": lena,
        "invitation": invitation,
        "token": found.group(1),
        "slots": [s.id for s in slot_list],
    }


def messages() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Message)) or 0


def book(client, token: str, slot_id: int, address: str = "127.0.0.1"):
    csrf = csrf_from(client, f"/book/{token}")
    return client.post(
        f"/book/{token}", data={"csrf_token": csrf, "slot": slot_id}, environ_base={"REMOTE_ADDR": address}
    )


def cancel(client, token: str, address: str = "127.0.0.1"):
    csrf = csrf_from(client, f"/book/{token}")
    return client.post(
        f"/book/{token}/cancel", data={"csrf_token": csrf}, environ_base={"REMOTE_ADDR": address}
    )


def test_booking_the_time_already_held_or_cancelling_twice_sends_nothing(app: Flask, invited) -> None:
    candidate = app.test_client()
    token, first = invited["token"], invited["slots"][0]
    assert book(candidate, token, first).status_code == 303
    assert messages() == 2  # the invitation, the confirmation
    again = book(candidate, token, first)
    assert again.status_code == 303
    assert "This time is already yours" in candidate.get(again.headers["Location"]).get_data(as_text=True)
    assert messages() == 2
    assert cancel(candidate, token).status_code == 303
    assert cancel(candidate, token).status_code == 303
    assert messages() == 3  # one cancellation confirmed, the second cancel changed nothing
    db.session.expire_all()
    assert invited["invitation"].confirmations == 2


@pytest.mark.parametrize("slot", ["", "not-a-slot", "0"])
def test_a_booking_without_a_time_is_asked_for_one_and_changes_nothing(
    app: Flask, invited, slot: str
) -> None:
    candidate = app.test_client()
    response = book(candidate, invited["token"], slot)  # type: ignore[arg-type]
    assert response.status_code == 422
    assert 'id="booking-error"><p>Pick a time first.</p>' in response.get_data(as_text=True)
    db.session.expire_all()
    assert (invited["invitation"].state, messages()) == ("sent", 1)


def test_a_time_taken_off_meanwhile_is_refused_with_409(app: Flask, invited) -> None:
    first = invited["slots"][0]
    db.session.delete(db.session.get(InterviewSlot, first))
    db.session.commit()
    response = book(app.test_client(), invited["token"], first)
    assert response.status_code == 409
    assert "That time is no longer offered. Pick another." in response.get_data(as_text=True)
    assert messages() == 1


def test_many_anonymous_requests_on_one_link_spend_three_confirmations(app: Flask, invited) -> None:
    """Book, move and cancel, again and again, from several addresses: three confirmations are paid
    for, whatever the number of changes; the ledger says so, and the page keeps confirming."""
    token, slot_ids = invited["token"], invited["slots"]
    account = db.session.scalar(sa.select(CreditAccount))
    before = account.balance
    answers = []
    # One cookie jar (the tests' requests share the test's application context, and with it the CSRF
    # token it made); the addresses differ, as for requests from several machines.
    client = app.test_client()
    for n in range(22):
        address = ADDRESSES[n % len(ADDRESSES)]
        if n % 3 == 2:
            answers.append(cancel(client, token, address).status_code)
        else:
            answers.append(book(client, token, slot_ids[n % len(slot_ids)], address).status_code)
    assert set(answers) == {303}, answers

    db.session.expire_all()
    debits = db.session.scalars(
        sa.select(CreditTransaction).where(CreditTransaction.kind == "debit").order_by(CreditTransaction.id)
    ).all()
    invitation_debit, *confirmation_debits = debits
    assert invitation_debit.message_id == invited["invitation"].message_id
    assert len(confirmation_debits) == MAX_CONFIRMATIONS == 3
    spent = sum(-d.amount for d in debits)
    assert account.balance == before - sum(-d.amount for d in confirmation_debits) == 100 - spent
    assert invited["invitation"].confirmations == MAX_CONFIRMATIONS
    # The booking itself went on: the last request (a booking) holds its time.
    assert invited["invitation"].state == "booked"


class TestConcurrent:
    @pytest.fixture
    def backend(self) -> str:
        return "postgresql"  # where requests really run at once

    @pytest.fixture
    def app_config(self) -> dict[str, object]:
        return {
            "PUBLIC_BASE_URL": BASE,
            "BOOKING_MAX_REQUESTS_PER_TOKEN": 10_000,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 12, "max_overflow": 2, "pool_timeout": 30},
        }

    def test_changes_at_once_from_several_addresses_still_send_three(self, app: Flask, invited) -> None:
        token, slot_ids = invited["token"], invited["slots"]
        start = threading.Barrier(10)
        answers: list[int] = []
        lock = threading.Lock()

        def attacker(n: int) -> None:
            client = app.test_client()
            address = ADDRESSES[n % len(ADDRESSES)]
            csrf = csrf_from(client, f"/book/{token}")
            start.wait()
            for r in range(3):
                if (n + r) % 3 == 2:
                    path, data = f"/book/{token}/cancel", {"csrf_token": csrf}
                else:
                    path, data = f"/book/{token}", {"csrf_token": csrf, "slot": slot_ids[(n + r) % 3]}
                answer = client.post(path, data=data, environ_base={"REMOTE_ADDR": address})
                with lock:
                    answers.append(answer.status_code)

        threads = [threading.Thread(target=attacker, args=(n,)) for n in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)

        assert 500 not in answers and set(answers) <= {303, 409}, answers
        db.session.expire_all()
        confirmations = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(CreditTransaction)
            .where(
                CreditTransaction.kind == "debit",
                CreditTransaction.message_id != invited["invitation"].message_id,
            )
        )
        assert confirmations == MAX_CONFIRMATIONS
        assert db.session.get(Invitation, invited["invitation"].id).confirmations == MAX_CONFIRMATIONS
        account = db.session.scalar(sa.select(CreditAccount))
        assert account.balance == 100 - db.session.scalar(sa.select(sa.func.sum(Message.credits)))


class TestPerLinkLimit:
    @pytest.fixture
    def app_config(self) -> dict[str, object]:
        return {"PUBLIC_BASE_URL": BASE, "BOOKING_MAX_REQUESTS_PER_TOKEN": 5}

    def test_one_link_asked_too_often_from_several_addresses_is_told_to_wait(
        self, app: Flask, invited
    ) -> None:
        token = invited["token"]
        client = app.test_client()
        csrf = csrf_from(client, f"/book/{token}")  # the first of the five
        codes = [
            client.get(f"/book/{token}", environ_base={"REMOTE_ADDR": ADDRESSES[n % 3]}).status_code
            for n in range(4)
        ]
        assert codes == [200] * 4
        refused = client.get(f"/book/{token}", environ_base={"REMOTE_ADDR": ADDRESSES[4]})
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        # A booking on that link is refused too, and sends nothing.
        posted = client.post(
            f"/book/{token}",
            data={"csrf_token": csrf, "slot": invited["slots"][0]},
            environ_base={"REMOTE_ADDR": ADDRESSES[3]},
        )
        assert posted.status_code == 429 and messages() == 1
        # Another link, from one of the same addresses, is not held back.
        other = invitations.invite(
            db.session,
            db.session.get(Invitation, invited["invitation"].id).created_by,
            f.application(
                invited["lena"].job, f.candidate(invited["org"], "Astrid", "Lund", mobile="+46701234567")
            ),
            "sms",
            "Book: %INVITELINK%",
            None,
            BASE,
            utcnow(),
        )
        db.session.commit()
        other_token = re.search(r"/book/([A-Za-z0-9_-]+)", other.message.body)
        assert other_token
        fine = client.get(f"/book/{other_token.group(1)}", environ_base={"REMOTE_ADDR": ADDRESSES[0]})
        assert fine.status_code == 200
