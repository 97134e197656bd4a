"""Bulk messages (issue 22 §1) through the fake Vonage: the preview's per-recipient refusals and totals,
the refusal up front when the credits or the cap do not cover it, each message in its person's own
conversation, quiet hours per recipient, a provider failure in the middle (the rest go), cancel, and a
worker killed mid-batch (nobody twice). The clock is passed in."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests import factories as f
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import bulk
from webapp.models import Batch, BatchRecipient, Conversation, Message, OptOut


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    # Pacing has its own tests (tests/test_pacing.py); here a US number's one a second would make 500
    # recipients take minutes without testing anything more.
    return {
        **fake.app_settings(),
        "VONAGE_TIMEOUT": 2,
        "QUIET_HOURS": True,
        "VONAGE_RATE_PER_SECOND": 0.0,
        "SEND_RATE_PER_NUMBER": 0.0,
    }


# Tuesday 13:00 in Austin: afternoon there, 06:00 on Wednesday in Sydney.
NOW = datetime(2026, 12, 8, 13, 0, tzinfo=ZoneInfo("America/Chicago")).astimezone(UTC)


class Killed(BaseException):
    """A worker's process dying inside a recipient's transaction (not an Exception: nothing catches it)."""


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", time_zone="America/Chicago")
    user = f.user(org, codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(org, "+15125550100")
    job = f.job(org, team=[user], title="Backend Engineer")
    db.session.commit()
    return {"org": org, "user": user, "job": job}


def people(world, n: int, mobile=lambda i: f"+151222{i:05d}", first: str = "Tex") -> list[int]:
    ids = []
    for i in range(n):
        c = f.candidate(world["org"], first, f"Person{i}", mobile=mobile(i))
        ids.append(f.application(world["job"], c).id)
    db.session.commit()
    return ids


def posts(fake) -> Counter[str]:
    return Counter(r.body.get("client_ref") for r in fake.requests if r.body and r.body.get("client_ref"))


def start(world, ids, body: str = "Hi %FIRSTNAME%, about %JOBTITLE%.", channel: str = "sms", **kw) -> Batch:
    return bulk.start(db.session, world["user"], "application", ids, channel, body, now=NOW, **kw)


def rows(batch: Batch) -> list[BatchRecipient]:
    return list(
        db.session.scalars(
            sa.select(BatchRecipient).where(BatchRecipient.batch_id == batch.id).order_by(BatchRecipient.id)
        )
    )


def test_five_hundred_mixed_each_in_their_own_conversation(app, world, fake) -> None:
    texans = people(world, 400)
    sydney = people(world, 60, mobile=lambda i: f"+6141{i:07d}", first="Bruce")
    no_mobile = people(world, 20, mobile=lambda i: None, first="Nomo")
    opted = people(world, 20, mobile=lambda i: f"+151233{i:05d}", first="Stop")
    for i in range(20):
        db.session.add(OptOut(organization_id=world["org"].id, e164=f"+151233{i:05d}"))
    f.credits(world["org"], 470)
    db.session.commit()
    everyone = texans + sydney + no_mobile + opted

    plan = bulk.preview(
        db.session,
        world["user"],
        bulk.recipients(db.session, world["user"], "application", everyone),
        "sms",
        "Hi %FIRSTNAME%, it’s about %JOBTITLE%.",
        now=NOW,
    )
    totals = plan.totals
    assert len(plan.lines) == 500 and len(plan.sendable) == 460 and totals.skipped == 40
    assert totals.credits == 460 and totals.segments == 460 and plan.refusal is None
    assert totals.at_morning == 60
    reasons = Counter(line.refusal.split(" ")[-1] for line in plan.lines if line.refusal)
    assert sum(reasons.values()) == 40
    assert any("no mobile number" in (line.refusal or "") for line in plan.lines)
    assert any("opted out" in (line.refusal or "") for line in plan.lines)
    # The typographic apostrophe alone makes every one UCS-2; plain quotes would keep them one segment
    # either way here (short), so no credit is saved; but every one of them would go as GSM-7.
    assert totals.saved_credits == 0 and totals.helped == 460
    assert plan.lines[0].text == "Hi Tex, it’s about Backend Engineer."

    batch = start(world, everyone)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0  # nothing sent yet
    assert bulk.run(batch.id, now=lambda: NOW) == 460

    sent = posts(fake)
    assert len(sent) == 400 and set(sent.values()) == {1}
    progress = bulk.progress(db.session, batch)
    assert progress.counts == {"sent": 400, "scheduled": 60, "refused": 40}
    assert progress.state == "done" and progress.percent == 100
    for row in rows(batch):
        if row.message_id is None:
            continue
        message = db.session.get(Message, row.message_id)
        conversation = db.session.get(Conversation, message.conversation_id)
        assert conversation.application_id == row.subject_id
        assert message.status == ("scheduled" if row.outcome == "scheduled" else "submitted")
    report = bulk.report(db.session, batch)
    assert len(report) == 500 and report[0] == ("Tex Person0", "sent", "")


def test_a_balance_that_does_not_cover_refuses_before_anything_is_stored(app, world, fake) -> None:
    ids = people(world, 30)
    f.credits(world["org"], 29)
    db.session.commit()
    with pytest.raises(bulk.BulkRefused, match="cost 30 credits and your balance is 29"):
        start(world, ids)
    db.session.rollback()
    # The preview stays a draft (its page says why it cannot be sent); nothing runs, nothing is sent.
    assert db.session.scalars(sa.select(Batch.state)).all() == ["draft"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
    assert not posts(fake)


def test_the_organisations_cap_refuses_a_larger_batch(app, world) -> None:
    ids = people(world, 11)
    f.credits(world["org"], 100)
    world["org"].bulk_cap = 10
    db.session.commit()
    with pytest.raises(bulk.BulkRefused, match="at most 10 people; you chose 11"):
        start(world, ids)
    db.session.rollback()
    # Refused on the count, before anyone is checked: nothing stored.
    assert db.session.scalars(sa.select(Batch.state)).all() == []
    world["org"].bulk_cap = 11
    db.session.commit()
    assert start(world, ids).total == 11


def test_people_the_user_may_not_see_are_dropped(app, world) -> None:
    mine = people(world, 3)
    other_job = f.job(world["org"], team=[], title="Not mine")
    theirs = f.application(other_job, f.candidate(world["org"], "Hidden", "One", mobile="+15122999999")).id
    db.session.commit()
    found = bulk.recipients(db.session, world["user"], "application", [*mine, theirs, 10**9])
    assert [s.id for s in found] == mine


def test_a_failure_in_the_middle_does_not_stop_the_rest(app, world, fake) -> None:
    ids = people(world, 20)
    f.credits(world["org"], 100)
    batch = start(world, ids)
    tenth = rows(batch)[9].id

    def provider_refuses_the_tenth(row_id: int) -> None:
        if row_id == tenth:
            fake.fail(422, "Invalid params", "The value of one or more parameters is invalid.")

    # One recipient a transaction, so that the tenth's message is the next the provider sees.
    bulk.run(batch.id, now=lambda: NOW, before_commit=provider_refuses_the_tenth, chunk=1)
    progress = bulk.progress(db.session, batch)
    assert progress.counts == {"sent": 19, "failed": 1} and progress.state == "done"
    assert len(posts(fake)) == 20
    line = bulk.report(db.session, batch)[9]
    assert line[1] == "failed" and line[2]
    # Its credit came back: 20 debited, one refunded.
    from webapp.billing import credits

    assert credits.balance(db.session, world["org"]) == 100 - 19


def test_a_worker_killed_mid_batch_resumes_and_sends_nobody_twice(app, world, fake) -> None:
    ids = people(world, 25)
    f.credits(world["org"], 100)
    batch = start(world, ids)
    seventh = rows(batch)[6].id

    def die(row_id: int) -> None:
        if row_id == seventh:
            raise Killed

    with pytest.raises(Killed):
        bulk.run(batch.id, now=lambda: NOW, before_commit=die, chunk=5)
    db.session.rollback()  # the process is gone: its open transaction with it
    # The first chunk of five was committed and sent; the second, killed at its second, is undone.
    assert len(posts(fake)) == 5
    assert bulk.progress(db.session, batch).counts == {"sent": 5, "waiting": 20}

    # While its lease runs, the clock leaves the batch to its worker (it may only be slow) …
    assert bulk.resume_running(NOW + bulk.LEASE / 2) == ""
    # … once the lease ran out, it finishes the batch; a second pass finds nothing.
    later = NOW + bulk.LEASE + timedelta(seconds=1)
    assert bulk.resume_running(later) == "20 bulk message(s) composed"
    assert bulk.resume_running(later) == ""
    sent = posts(fake)
    assert len(sent) == 25 and set(sent.values()) == {1}
    per_subject = Counter(
        db.session.scalars(
            sa.select(Conversation.application_id).join(Message, Message.conversation_id == Conversation.id)
        )
    )
    assert per_subject == Counter(ids)
    assert bulk.progress(db.session, batch).state == "done"


def test_cancel_stops_what_has_not_left(app, world, fake) -> None:
    ids = people(world, 12)
    f.credits(world["org"], 100)
    batch = start(world, ids)
    fifth = rows(batch)[4].id

    def stop(row_id: int) -> None:
        if row_id == fifth:
            raise Killed

    with pytest.raises(Killed):
        bulk.run(batch.id, now=lambda: NOW, before_commit=stop, chunk=1)
    db.session.rollback()
    assert bulk.cancel(db.session, batch) == 8
    assert bulk.run(batch.id, now=lambda: NOW) == 0
    assert bulk.resume_running(NOW) == ""
    progress = bulk.progress(db.session, batch)
    assert progress.counts == {"sent": 4, "cancelled": 8} and progress.state == "cancelled"
    assert len(posts(fake)) == 4
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 4


def test_whatsapp_outside_the_window_needs_an_approved_template(app, world, fake) -> None:
    ids = people(world, 6)
    for application_id in ids[:3]:
        from webapp.models import Application

        f.open_whatsapp_window(db.session.get(Application, application_id), hours=24 * 30)
    f.credits(world["org"], 100)
    db.session.commit()
    subjects = bulk.recipients(db.session, world["user"], "application", ids)
    plan = bulk.preview(db.session, world["user"], subjects, "whatsapp", "Hi %FIRSTNAME%", now=NOW)
    assert len(plan.sendable) == 3
    assert all("24-hour window" in (line.refusal or "") for line in plan.lines[3:])
    template = f.whatsapp_template(world["org"], approved=True)
    db.session.commit()
    plan = bulk.preview(
        db.session,
        world["user"],
        subjects,
        "whatsapp",
        "Hi %FIRSTNAME%",
        whatsapp_template_id=template.id,
        now=NOW,
    )
    # The open windows get the text; the template is for the closed ones only.
    assert len(plan.sendable) == 6 and plan.lines[0].text == "Hi Tex"
    assert plan.lines[3].text.startswith("Hi Tex, can we talk about Backend")
    batch = start(world, ids, body="Hi %FIRSTNAME%", channel="whatsapp", whatsapp_template_id=template.id)
    assert bulk.run(batch.id, now=lambda: NOW) == 6
    sent = db.session.scalars(sa.select(Message).order_by(Message.id)).all()
    assert [m.whatsapp_template_id for m in sent] == [None, None, None, template.id, template.id, template.id]
    other = f.whatsapp_template(f.messaging_org("Other"), approved=True)
    db.session.commit()
    with pytest.raises(bulk.BulkRefused, match="approved WhatsApp templates"):
        start(world, ids, channel="whatsapp", whatsapp_template_id=other.id)


def test_two_workers_on_one_batch_send_nobody_twice(app, world, fake) -> None:
    """The RQ job and the clock's pass may run one batch at once: the claim keeps each person to one."""
    import threading

    ids = people(world, 30)
    f.credits(world["org"], 100)
    batch = start(world, ids)
    composed: list[int] = []
    errors: list[BaseException] = []
    go = threading.Barrier(2)

    def worker() -> None:
        with app.app_context():
            try:
                go.wait()
                composed.append(bulk.run(batch.id, now=lambda: NOW))
            except BaseException as error:  # reported below: a thread's failure must fail the test
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sum(composed) == 30
    sent = posts(fake)
    assert len(sent) == 30 and set(sent.values()) == {1}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 30


def test_on_rq_the_worker_runs_the_batch_and_the_clock_hands_over_a_dead_ones(app, world, fake) -> None:
    """`make serve`'s way: Send enqueues the batch as an RQ job that the worker (webapp.messaging.worker)
    knows; a batch whose worker died is handed to the workers again by the clock, not run in it."""
    import os
    import threading

    from tests.conftest import need
    from webapp.messaging import dispatch, worker

    redis_url = os.environ.get("REDIS_TEST_URL", "")
    if not redis_url:
        need("Redis (REDIS_TEST_URL)")
    # The worker runs on the real clock (no `now` to pass an RQ job): no quiet hours in the way.
    app.config.update(DISPATCH_MODE="rq", REDIS_URL=redis_url, QUIET_HOURS=False)
    queue = dispatch.queue(app)
    queue.empty()
    try:
        ids = people(world, 8)
        f.credits(world["org"], 100)
        first = start(world, ids).id
        assert bulk.launch(first) is True
        assert queue.job_ids == [f"batch-{first}"]
        # The job ends by removing the thread's session, as a worker's thread does.
        worker.Loop(queue.connection, [queue.name], threading.Event()).work(burst=True)
        assert bulk.progress(db.session, db.session.get(Batch, first)).counts == {"sent": 8}
        assert len(posts(fake)) == 8

        second = start(world, people(world, 3, first="Late")).id
        # Its worker died holding the lease: once the lease ran out the clock enqueues it again.
        from webapp.models import utcnow

        ran_out = utcnow() - timedelta(seconds=1)  # the worker runs on the real clock
        db.session.execute(sa.update(Batch).where(Batch.id == second).values(lease_until=ran_out))
        db.session.commit()
        assert bulk.resume_running(utcnow()) == ""  # handed over, not run here
        assert queue.job_ids == [f"batch-{second}"]
        worker.Loop(queue.connection, [queue.name], threading.Event()).work(burst=True)
        assert bulk.progress(db.session, db.session.get(Batch, second)).state == "done"
        assert len(posts(fake)) == 11
    finally:
        queue.empty()


def test_a_draft_nobody_sends_is_deleted_after_a_day(app, world) -> None:
    ids = people(world, 3)
    subjects = bulk.recipients(db.session, world["user"], "application", ids)
    old = bulk.draft(db.session, world["user"], "application", subjects, "sms", "Hi", now=NOW)
    new = bulk.draft(
        db.session, world["user"], "application", subjects, "sms", "Hi", now=NOW + timedelta(hours=2)
    )
    old_id, new_id = old.id, new.id
    bulk.resume_running(NOW + bulk.DRAFT_KEPT + timedelta(minutes=1))
    assert db.session.scalars(sa.select(Batch.id)).all() == [new_id]
    left = set(db.session.scalars(sa.select(BatchRecipient.batch_id)))
    assert left == {new_id} and old_id not in left


def test_the_progress_follows_a_verdict_that_comes_after_the_hand_over(app, world, fake) -> None:
    """A delivery report that says undeliverable makes the person "failed" in the progress; a message
    thought refused and confirmed after all is "sent" again (the rows follow their messages)."""
    from webapp.messaging import status

    ids = people(world, 3)
    f.credits(world["org"], 100)
    batch = start(world, ids)
    bulk.run(batch.id, now=lambda: NOW)
    assert bulk.progress(db.session, batch).counts == {"sent": 3}
    first, second = (db.session.get(Message, r.message_id) for r in rows(batch)[:2])
    status.apply(first, "undeliverable", failure=status.Failure("4", "Invalid number", "No such number."))
    status.apply(second, "rejected", failure=status.unconfirmed(900))
    db.session.commit()
    assert bulk.progress(db.session, batch).counts == {"sent": 1, "failed": 2}
    assert [line[1] for line in bulk.report(db.session, batch)] == ["failed", "failed", "sent"]
    status.apply(second, "delivered")  # the provider confirmed it after all
    db.session.commit()
    assert bulk.progress(db.session, batch).counts == {"sent": 2, "failed": 1}
    assert [line[1] for line in bulk.report(db.session, batch)] == ["failed", "sent", "sent"]


def test_the_preview_refuses_those_past_what_the_numbers_take_today(app, world, fake) -> None:
    """Routing gives no new conversation to a number at its daily guidance (webapp.numbers.health): the
    preview says so for the people past it, instead of the send refusing them one by one."""
    ids = people(world, 8)
    world["org"].number_daily_cap = 5  # the customer's own cap: 5 SMS a number a day
    f.credits(world["org"], 100)
    db.session.commit()
    subjects = bulk.recipients(db.session, world["user"], "application", ids)
    plan = bulk.preview(db.session, world["user"], subjects, "sms", "Hi %FIRSTNAME%", now=NOW)
    assert plan.totals.sendable == 5 and plan.totals.credits == 5
    assert [line.refusal is None for line in plan.lines] == [True] * 5 + [False] * 3
    assert "Your United States numbers take no more new conversations today" in (plan.lines[5].refusal or "")
    batch = start(world, ids)
    assert bulk.run(batch.id, now=lambda: NOW) == 5
    assert bulk.progress(db.session, batch).counts == {"sent": 5, "refused": 3}
    assert len(posts(fake)) == 5
