"""Inviting a candidate again while their earlier invitation's message still waits for its time (issue
20 §1): the earlier one is replaced, so its message must never leave with a link that books nothing —
it is cancelled and refunded in the new invitation's transaction (the same conditional UPDATE on
`status = 'scheduled'` as every move out of it), and the thread says why. If the scheduler took it
first, it left, and it stays replaced as any sent invitation is. The candidate hears once: counted in
POSTs to the fake Vonage. The race with the scheduler is played on PostgreSQL, where the two meet."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.test_scheduled_races import ROUNDS, first_holds_second_waits, together
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.interviews import invitations
from webapp.messaging import dispatch, scheduled, unsent
from webapp.models import Application, InterviewSlot, Invitation, Message, User, utcnow

LENA = "+4915123456789"
BODY = "Hi %FIRSTNAME%, book here: %INVITELINK%"


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {
        **fake.app_settings(),
        "VONAGE_TIMEOUT": 5,
        "PUBLIC_BASE_URL": "https://relay.example",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 8, "max_overflow": 4, "pool_timeout": 20},
    }


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", time_zone="Europe/Berlin")
    user = f.user(org, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(org, "+4915123456700")
    job = f.job(org, team=[user], title="Backend Engineer")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile=LENA))
    f.credits(org, 500)
    db.session.add(
        InterviewSlot(job_id=job.id, starts_at=utcnow() + timedelta(days=9), minutes=30, place="Room 3")
    )
    db.session.commit()
    return {"org": org, "user_id": user.id, "lena_id": lena.id}


def invite(world, now, send_at=None) -> tuple[int, int]:
    """Invite Lena (committed; one that goes now is delivered): (invitation id, message id)."""
    user = db.session.get(User, world["user_id"])
    application = db.session.get(Application, world["lena_id"])
    invitation = invitations.invite(
        db.session, user, application, "sms", BODY, None, "https://relay.example", now, send_at=send_at
    )
    db.session.commit()
    ids = invitation.id, invitation.message_id
    if send_at is None:
        dispatch.deliver(invitation.message_id)
    return ids


def to_lena(fake) -> list[str]:
    """The texts Lena was sent, as the fake Vonage received them."""
    return [r.body["text"] for r in fake.requests if r.body and r.body.get("to") == LENA.lstrip("+")]


def balance(world) -> int:
    db.session.expire_all()
    account = credits.account_for(db.session, world["org"])
    assert credits.ledger_sum(db.session, account.id) == account.balance
    return account.balance


def test_a_new_invitation_cancels_the_earlier_one_still_waiting_and_lena_hears_once(
    world, fake, client, auth
) -> None:
    now = utcnow()
    later = now + timedelta(hours=5)
    old_invitation, old_message = invite(world, now, send_at=later)
    assert balance(world) == 499
    _, new_message = invite(world, now + timedelta(minutes=1))

    db.session.expire_all()
    old = db.session.get(Message, old_message)
    assert (old.status, old.error_code) == ("cancelled", unsent.REPLACED)
    assert db.session.get(Invitation, old_invitation).state == "replaced"
    assert credits.refunded_ids(db.session, [old_message]) == {old_message}
    assert balance(world) == 499  # the earlier one given back, the new one paid

    # Its time comes: nothing leaves; Lena has exactly one text, the new invitation with its live link.
    assert scheduled.send_due(later + timedelta(seconds=1)) == scheduled.Handed()
    texts = to_lena(fake)
    assert len(texts) == 1
    assert texts[0] == db.session.get(Message, new_message).body

    # The thread says why the earlier one never left.
    auth.login("recruiter@acme.test")
    page = client.get(f"/applications/{world['lena_id']}?tab=sms").get_data(as_text=True)
    assert (
        "Cancelled: replaced by a newer invitation before it was sent. The credits were given back." in page
    )
    said = re.findall(r'class="msg-invitation"[^>]*>Interview invitation · ([^<]*)<', page)
    assert "Cancelled before it was sent: replaced by a newer invitation" in said
    # And a Cancel that comes too late says so.
    with pytest.raises(scheduled.TooLate, match="a newer invitation replaced it"):
        scheduled.cancel(db.session, db.session.get(User, world["user_id"]), old)


def test_two_invitations_for_later_only_the_newer_leaves(world, fake) -> None:
    now = utcnow()
    first_at, second_at = now + timedelta(hours=2), now + timedelta(hours=3)
    _, first = invite(world, now, send_at=first_at)
    _, second = invite(world, now, send_at=second_at)
    assert scheduled.send_due(second_at).queued == [second]
    assert len(to_lena(fake)) == 1 and balance(world) == 499
    assert db.session.get(Message, first).status == "cancelled"


def test_an_earlier_invitation_that_left_stays_replaced_and_is_not_refunded(world, fake) -> None:
    now = utcnow()
    first_at = now + timedelta(hours=1)
    old_invitation, old_message = invite(world, now, send_at=first_at)
    assert scheduled.send_due(first_at).queued == [old_message]
    invite(world, first_at + timedelta(minutes=1))
    db.session.expire_all()
    assert db.session.get(Message, old_message).status == "submitted"
    assert db.session.get(Invitation, old_invitation).state == "replaced"
    assert credits.refunded_ids(db.session, [old_message]) == set()
    assert len(to_lena(fake)) == 2 and balance(world) == 498


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_new_invitation_against_the_scheduler_the_old_one_leaves_once_or_is_refunded(
    app, world, fake
) -> None:
    """Released together: the scheduler at the earlier invitation's time, and a new invitation. Either
    the scheduler took it (it leaves once, stays paid, replaced) or the new invitation cancelled it (no
    POST, refunded); never both, and neither side fails."""
    outcomes = []
    paid = 0
    for round_ in range(ROUNDS):
        now = utcnow()
        due = now + timedelta(minutes=30)
        _, old_message = invite(world, now, send_at=due)
        sent_before = len(to_lena(fake))

        def scheduler(round_: int = round_, due=due) -> scheduled.Handed:
            time.sleep(0.002 * round_)
            return scheduled.send_due(due)

        def reinvite(due=due) -> int:
            user = db.session.get(User, world["user_id"])
            application = db.session.get(Application, world["lena_id"])
            invitation = invitations.invite(
                db.session, user, application, "sms", BODY, None, "https://relay.example", due
            )
            db.session.commit()
            return invitation.message_id

        handed, new_message = together(app, scheduler, reinvite)
        assert not isinstance(handed, Exception), handed
        assert isinstance(new_message, int), new_message
        dispatch.deliver(new_message)
        paid += 2
        db.session.expire_all()
        old = db.session.get(Message, old_message)
        refunded = credits.refunded_ids(db.session, [old_message]) == {old_message}
        if old.status == "cancelled":
            assert old.error_code == unsent.REPLACED and refunded
            assert old_message not in handed.queued
            assert len(to_lena(fake)) == sent_before + 1  # the new one only
            paid -= 1
            outcomes.append("cancelled")
        else:
            assert old.status == "submitted" and handed.queued == [old_message] and not refunded
            assert len(to_lena(fake)) == sent_before + 2
            outcomes.append("left")
        # The next pass sends nothing more.
        scheduled.send_due(due + timedelta(seconds=15))
        assert len(to_lena(fake)) == sent_before + (1 if outcomes[-1] == "cancelled" else 2)
    assert balance(world) == 500 - paid
    print("a new invitation against the scheduler:", outcomes)


def reinvite_in(world, now):
    def run(results: dict[str, object]) -> None:
        user = db.session.get(User, world["user_id"])
        application = db.session.get(Application, world["lena_id"])
        invitation = invitations.invite(
            db.session, user, application, "sms", BODY, None, "https://relay.example", now
        )
        results["invited"] = invitation.message_id

    return run


@pytest.mark.parametrize("backend", ["postgresql"])
def test_step_by_step_the_scheduler_waits_for_the_new_invitation_and_leaves_the_old_one(
    app, world, fake
) -> None:
    """The new invitation has cancelled the old message, uncommitted; the scheduler (its rows read
    before, unlocked, as on a backend without SKIP LOCKED) waits for it, then finds the old message
    cancelled and hands nothing over: Lena gets the new invitation only."""
    now = utcnow()
    due = now + timedelta(minutes=30)
    _, old_message = invite(world, now, send_at=due)

    def scheduler(results: dict[str, object]) -> None:
        rows = db.session.scalars(
            sa.select(Message).where(Message.status == "scheduled", Message.send_at <= due)
        ).all()
        results["read"] = [m.id for m in rows]
        results["left"] = scheduled._leave(db.session, list(rows), due)

    waiting, results = first_holds_second_waits(app, reinvite_in(world, due), scheduler)
    assert waiting, "the scheduler's UPDATE never waited for the new invitation's cancel"
    assert results["read"] == [old_message] and results["left"] == ([], [])
    dispatch.deliver(results["invited"])
    db.session.expire_all()
    assert db.session.get(Message, old_message).error_code == unsent.REPLACED
    assert len(to_lena(fake)) == 1 and balance(world) == 499


@pytest.mark.parametrize("backend", ["postgresql"])
def test_step_by_step_a_new_invitation_waits_for_the_scheduler_that_took_the_old_one(
    app, world, fake
) -> None:
    """The scheduler has taken the old message (FOR UPDATE) and moved it to queued, uncommitted; the new
    invitation waits for it (its rows), then finds it gone: the old one leaves once, paid, replaced, and
    neither side fails."""
    now = utcnow()
    due = now + timedelta(minutes=30)
    old_invitation, old_message = invite(world, now, send_at=due)

    def scheduler(results: dict[str, object]) -> None:
        rows = db.session.scalars(scheduled.due_query(due, 10)).all()
        results["left"] = scheduled._leave(db.session, list(rows), due)

    waiting, results = first_holds_second_waits(app, scheduler, reinvite_in(world, due))
    assert waiting, "the new invitation never waited for the scheduler's lock"
    assert results["left"] == ([old_message], [])
    for message_id in (old_message, results["invited"]):
        dispatch.deliver(message_id)
    db.session.expire_all()
    assert db.session.get(Message, old_message).status == "submitted"
    assert db.session.get(Invitation, old_invitation).state == "replaced"
    assert credits.refunded_ids(db.session, [old_message]) == set()
    assert len(to_lena(fake)) == 2 and balance(world) == 498
