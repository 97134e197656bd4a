"""Number health (issue 23 §2): the figures against a fixture computed by hand, the 80 % notice once per
number and day (in the app, and one email to staff through a real SMTP sink), the pause over the guidance
or past the failure threshold, routing under those rules (new conversations only; a conversation keeps
its number), staff's action with its audit row, the rights, and each admin seeing their own pool only.
The clock is given (NOW), nobody sleeps; SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.conftest import Auth, csrf_from
from tests.smtp_sink import SmtpSink, running_smtp_sink
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import compose, conversations
from webapp.messaging.checks import SendRefused
from webapp.messaging.subjects import of_application
from webapp.models import (
    ComplianceEvent,
    Message,
    NumberDay,
    NumberDayFailure,
    NumberHealth,
    NumberNotice,
    OptOut,
    SendingNumber,
    User,
)
from webapp.numbers import guidance, health, health_report
from webapp.scheduling import tasks

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
SMS = [permissions.RECRUITMENT_SMS]
US1, US2, US3, GB = "+12015550101", "+12015550102", "+12015550103", "+447400123400"
GLOBEX_US = "+12015550199"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with running_smtp_sink() as sink:
        yield sink


@pytest.fixture
def app_config(sink) -> dict[str, object]:
    return {"SMTP_URL": sink.url, "PUBLIC_BASE_URL": "https://relay.test"}


@pytest.fixture
def world(app):
    # A cap of 100 SMS per number and day: the fixture's figures stay small (below the US 2,000).
    acme = f.messaging_org("Acme", number_daily_cap=100)
    globex = f.messaging_org("Globex")
    f.user(None, "csm@relay.test", is_staff=True, name="Casey Moore")
    f.user(None, "gone@relay.test", is_staff=True, active=False)
    f.user(acme, "admin@acme.test", admin=True, codes=SMS)
    recruiter = f.user(acme, "recruiter@acme.test", codes=SMS)
    f.user(globex, "admin@globex.test", admin=True)
    numbers = {
        e164: f.number(org, e164, whatsapp=True, status="active")
        for e164, org in ((US1, acme), (US2, acme), (US3, acme), (GB, acme), (GLOBEX_US, globex))
    }
    job = f.job(acme, team=[recruiter], title="Backend Engineer")
    people = {
        name: f.application(job, f.candidate(acme, name.title(), "X", mobile=mobile))
        for name, mobile in (
            ("ava", "+12025550143"),
            ("ben", "+12025550144"),
            ("cai", "+12025550145"),
            ("sven", "+46701234567"),
        )
    }
    f.credits(acme, 100)
    db.session.commit()
    return {"acme": acme, "globex": globex, "recruiter": recruiter, **numbers, **people}


def sent(e164: str, n: int, at: datetime, status: str = "delivered", code: str | None = None, **kw) -> None:
    """n outbound messages from our number, written at `at`."""
    number = db.session.scalar(sa.select(SendingNumber).where(SendingNumber.e164 == e164))
    db.session.execute(
        sa.insert(Message),
        [
            {
                "organization_id": number.organization_id,
                "channel": kw.get("channel", "sms"),
                "direction": "outbound",
                "body": "Hello",
                "status": status,
                "error_code": code,
                "from_addr": e164,
                "to_addr": "+12025550100",
                "created_at": at,
                "updated_at": at,
            }
            for _ in range(n)
        ],
    )
    db.session.commit()


def stop(e164: str, person: str, at: datetime) -> None:
    """`person` texted STOP to our number at `at`."""
    number = db.session.scalar(sa.select(SendingNumber).where(SendingNumber.e164 == e164))
    inbound = Message(
        organization_id=number.organization_id,
        channel="sms",
        direction="inbound",
        body="STOP",
        status="received",
        from_addr=person,
        to_addr=e164,
        created_at=at,
    )
    db.session.add(inbound)
    db.session.flush()
    db.session.add(
        OptOut(
            organization_id=number.organization_id, e164=person, source_message_id=inbound.id, created_at=at
        )
    )
    db.session.commit()


def figures(e164: str) -> NumberHealth:
    db.session.expire_all()
    number = db.session.scalar(sa.select(SendingNumber).where(SendingNumber.e164 == e164))
    return db.session.get(NumberHealth, number.id)


def number(e164: str) -> SendingNumber:
    db.session.expire_all()
    return db.session.scalar(sa.select(SendingNumber).where(SendingNumber.e164 == e164))


def days_ago(n: int, hour: int = 10) -> datetime:
    return (NOW - timedelta(days=n)).replace(hour=hour)


def the_fixture() -> None:
    """US1, by hand (its guidance: Acme's cap of 100, below the US 2,000):
    today        80 SMS delivered, 5 rejected (1240), 3 WhatsApp delivered; not counted: 2 scheduled,
                 1 cancelled, 1 held, and the STOPs' inbound messages
    3 days ago   40 SMS delivered, 6 undeliverable (1320)
    10 days ago  50 SMS delivered, 20 undeliverable (1320)      (outside the 7 days, inside the 30)
    40 days ago  100 SMS delivered                              (outside both)
    STOPs        5 and 20 days ago (inside the 30), 35 days ago (outside); one STOP to US2 today
    → SMS today 85 (85 % of 100); 7 days: 88 + 46 = 134 sent, 5 + 6 = 11 failed (8.2 %: under the 10 %);
      30 days: 134 + 70 = 204 sent, 2 opt-outs (0.98 %). US2: 10 SMS today, 1 opt-out."""
    sent(US1, 80, NOW.replace(hour=9))
    sent(US1, 5, NOW.replace(hour=9), status="rejected", code="1240")
    sent(US1, 3, NOW.replace(hour=1), channel="whatsapp")
    sent(US1, 2, NOW.replace(hour=8), status="scheduled")
    sent(US1, 1, NOW.replace(hour=8), status="cancelled")
    sent(US1, 1, NOW.replace(hour=8), status="held")
    sent(US1, 40, days_ago(3))
    sent(US1, 6, days_ago(3, 23), status="undeliverable", code="1320")
    sent(US1, 50, days_ago(10))
    sent(US1, 20, days_ago(10), status="undeliverable", code="1320")
    sent(US1, 100, days_ago(40))
    stop(US1, "+12025550301", days_ago(5))
    stop(US1, "+12025550302", days_ago(20))
    stop(US1, "+12025550303", days_ago(35))
    sent(US2, 10, NOW.replace(hour=0, minute=30))
    stop(US2, "+12025550304", NOW.replace(hour=12))


# --- The figures ---------------------------------------------------------------------------------------


def test_the_figures_match_the_hand_computed_fixture_and_a_recount_changes_nothing(world) -> None:
    the_fixture()
    health.refresh(db.session, NOW, health.RECOUNT_DAYS)
    us1 = figures(US1)
    assert (us1.sms_today, us1.guidance, us1.share) == (85, 100, pytest.approx(0.85))
    assert (us1.sent_7d, us1.failed_7d, us1.failure_rate) == (134, 11, pytest.approx(11 / 134))
    assert (us1.sent_30d, us1.opt_outs_30d, us1.opt_out_rate) == (204, 2, pytest.approx(2 / 204))
    today = db.session.get(NumberDay, (number(US1).id, NOW.date()))
    assert (today.sent, today.sms, today.failed, today.opt_outs) == (88, 85, 5, 0)
    codes = {
        (row.day, row.error_code): row.count
        for row in db.session.scalars(
            sa.select(NumberDayFailure).where(NumberDayFailure.number_id == number(US1).id)
        )
    }
    assert codes == {
        (NOW.date(), "1240"): 5,
        (days_ago(3).date(), "1320"): 6,
        (days_ago(10).date(), "1320"): 20,
    }
    us2 = figures(US2)
    assert (us2.sms_today, us2.share, us2.sent_30d, us2.opt_outs_30d) == (10, pytest.approx(0.1), 10, 1)
    gb = figures(GB)
    assert (gb.sms_today, gb.guidance, gb.failure_rate, gb.opt_out_rate) == (0, 100, 0.0, 0.0)
    # Globex has no cap: the US guidance, from the data with its source.
    assert figures(GLOBEX_US).guidance == guidance.for_country("US").daily == 2000
    assert guidance.for_country("US").source.startswith("https://")
    assert guidance.daily("SE", None) == guidance.table()[""].daily
    # Idempotent: the same recount again, and the everyday recount of two days, change nothing.
    health.refresh(db.session, NOW, health.RECOUNT_DAYS)
    health.refresh(db.session, NOW + timedelta(minutes=1))
    again = figures(US1)
    assert (again.sms_today, again.sent_7d, again.failed_7d, again.sent_30d, again.opt_outs_30d) == (
        85,
        134,
        11,
        204,
        2,
    )
    # The page's failures by code over 7 days (the 10-days-ago ones are out).
    rows, total = health_report.overview(db.session, organization_id=world["acme"].id)
    assert total == 4
    assert next(r for r in rows if r.number.e164 == US1).failures == [("1320", 6), ("1240", 5)]


def test_a_late_report_is_counted_by_the_next_recount(world) -> None:
    sent(US2, 10, NOW.replace(hour=9), status="submitted")
    health.refresh(db.session, NOW)
    assert figures(US2).failed_7d == 0
    db.session.execute(
        sa.update(Message)
        .where(Message.from_addr == US2)
        .values(status="undeliverable", error_code="1320")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    health.refresh(db.session, NOW + timedelta(minutes=1))
    assert (figures(US2).sent_7d, figures(US2).failed_7d) == (10, 10)


def test_two_passes_at_once_count_notify_and_pause_once(app, world) -> None:
    """Two clocks' passes meeting (a run that outlasted its interval): the same figures, one notice of
    each kind, one pause and its one audit row."""
    sent(US1, 100, NOW.replace(hour=9))
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def one_pass() -> None:
        with app.app_context():
            try:
                start.wait()
                health.refresh(db.session, NOW, health.RECOUNT_DAYS)
            except BaseException as error:  # said by the assertion below
                failures.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert (figures(US1).sms_today, figures(US1).share) == (100, 1.0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(NumberDay)) == 1
    kinds = sorted(db.session.scalars(sa.select(NumberNotice.kind)))
    assert kinds == ["near_guidance", "paused"]
    paused = sa.select(sa.func.count()).where(ComplianceEvent.action == "number_paused")
    assert db.session.scalar(paused) == 1


# --- The 80 % notice -----------------------------------------------------------------------------------


def test_at_80_percent_admins_and_staff_are_told_once_per_number_and_day(app, client, world, sink) -> None:
    sent(US1, 79, NOW.replace(hour=9))
    assert str(tasks.number_health(NOW)) == ""  # 79 %: nothing to tell
    assert sink.messages == []
    sent(US1, 1, NOW.replace(hour=10))
    told = tasks.number_health(NOW + timedelta(minutes=1))
    assert "near their guidance: +1 201-555-0101" in told and "1 notice(s) emailed to staff" in told
    [email] = sink.messages
    assert email.rcpt_tos == ["csm@relay.test"]  # staff only, and active staff only
    text = email.message.get_content()
    said = (
        "+1 201-555-0101 (Acme, US): near its daily guidance: 80 SMS today, 80% of its daily guidance of 100"
    )
    assert said in text
    assert "https://relay.test/staff/numbers/health" in text
    # Again later that day, and higher: no new notice, no new email.
    sent(US1, 5, NOW.replace(hour=11))
    assert tasks.number_health(NOW + timedelta(minutes=2)) == ""
    assert len(sink.messages) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(NumberNotice)) == 1
    # In the app: the admin's Sending numbers page, and the staff's page.
    Auth(client).login("admin@acme.test")
    page = client.get("/admin/numbers").get_data(as_text=True)
    assert "+1 201-555-0101 (US) is near its daily guidance: 80 SMS today" not in page  # notices are of today
    # (the pages read the real clock; the notice was made for NOW's day) — today's notice for today:
    db.session.execute(sa.update(NumberNotice).values(day=datetime.now(UTC).date()))
    db.session.commit()
    page = client.get("/admin/numbers").get_data(as_text=True)
    assert "+1 201-555-0101 (US) is near its daily guidance: 80 SMS today" in page
    # The next day, near again: told again.
    sent(US1, 90, NOW.replace(hour=9) + timedelta(days=1))
    assert "near their guidance" in tasks.number_health(NOW + timedelta(days=1, hours=1))
    assert len(sink.messages) == 2


# --- Pauses, routing, and staff's action ---------------------------------------------------------------


def new_conversation_number(w, who: str, channel: str = "sms", now: datetime = NOW) -> str:
    conversation = conversations.for_subject(db.session, of_application(w[who]), create=True)
    chosen = compose.sender_number(db.session, conversation, channel, w[who].candidate.mobile, now)
    db.session.commit()
    return chosen.e164


def test_new_conversations_go_to_the_number_furthest_below_its_guidance(world) -> None:
    sent(US1, 70, NOW.replace(hour=9))
    sent(US2, 30, NOW.replace(hour=9))
    sent(US3, 50, NOW.replace(hour=9))
    health.refresh(db.session, NOW)
    assert new_conversation_number(world, "ava") == US2  # 30 % (US3 50 %, US1 70 %)
    # Written since the clock's pass: counted by routing all the same (30 + 40 = 70 % > US3's 50 %).
    sent(US2, 40, NOW + timedelta(seconds=30))
    assert new_conversation_number(world, "ben", now=NOW + timedelta(seconds=45)) == US3
    # A Swedish candidate (no SE number) is routed over the US numbers by the same rule.
    assert new_conversation_number(world, "sven", now=NOW + timedelta(seconds=45)) == US3


def test_a_number_over_its_guidance_is_paused_keeps_its_conversations_until_staff_let_it_in(
    app, client, world
) -> None:
    assert new_conversation_number(world, "ava") == US1  # the first of three at 0 %
    sent(US1, 100, NOW.replace(hour=9))
    sent(US2, 100, NOW.replace(hour=9))  # US2 is over too; US3 is left
    said = str(health.refresh(db.session, NOW))
    assert "paused: +1 201-555-0101, +1 201-555-0102" in said
    us1 = number(US1)
    assert us1.paused_at == NOW and us1.status == "active"
    assert us1.pause_reason == "over its daily guidance: 100 SMS today of 100"
    event = db.session.scalar(sa.select(ComplianceEvent).where(ComplianceEvent.action == "number_paused"))
    assert event.actor_id is None and "takes no new conversations" in event.detail
    # New conversations go to US3; Ava's conversation keeps US1, so that her replies thread.
    assert new_conversation_number(world, "ben") == US3
    assert new_conversation_number(world, "ava") == US1
    # With US3 paused as well, a new US conversation is refused rather than sent from another country.
    us3 = number(US3)
    us3.paused_at, us3.pause_reason = NOW, "test"
    db.session.commit()
    with pytest.raises(SendRefused, match="Every US number of your organisation is paused"):
        new_conversation_number(world, "cai")
    db.session.rollback()
    # Staff let US1 in: an audit row; today's figures do not pause it again.
    Auth(client).login("csm@relay.test")
    token = csrf_from(client, "/staff/numbers/health")
    answer = client.post(f"/staff/numbers/{us1.id}/let-in", data={"csrf_token": token})
    assert answer.status_code == 303
    assert number(US1).paused_at is None
    let_in = db.session.scalar(sa.select(ComplianceEvent).where(ComplianceEvent.action == "number_let_in"))
    assert let_in.actor.email == "csm@relay.test" and "takes new conversations again" in let_in.detail
    # Its figures of another day pause it again (NOW's day is not the day staff let it in) …
    health.refresh(db.session, NOW)
    assert number(US1).paused_at == NOW
    # … those of the day staff let it in do not.
    staff = db.session.scalar(sa.select(User).where(User.email == "csm@relay.test"))
    health.let_in(db.session, staff, number(US1), NOW)
    db.session.commit()
    health.refresh(db.session, NOW + timedelta(minutes=1))
    assert number(US1).paused_at is None
    twice = client.post(f"/staff/numbers/{us1.id}/let-in", data={"csrf_token": token})
    assert "is not paused" in client.get(twice.location).get_data(as_text=True)


def test_a_number_failing_past_the_threshold_is_paused(world) -> None:
    sent(US2, 45, days_ago(2))
    sent(US2, 4, days_ago(2), status="undeliverable", code="1320")
    health.refresh(db.session, NOW, health.RECOUNT_DAYS)
    assert number(US2).paused_at is None  # 4 of 49: fewer than 50 sent, proves nothing
    sent(US2, 2, days_ago(1), status="rejected", code="1250")
    health.refresh(db.session, NOW, health.RECOUNT_DAYS)
    paused = number(US2)  # 6 of 51 = 11.8 %
    assert paused.paused_at == NOW
    assert paused.pause_reason == "failure rate 12% over 7 days (6 of 51; the threshold is 10%)"


def test_the_composer_says_when_a_conversation_s_number_changes(world) -> None:
    conversation = conversations.for_subject(db.session, of_application(world["ava"]), create=True)
    conversation.sms_number = number(US1)
    db.session.commit()
    assert compose.number_change(conversation, "sms", "Ava") is None
    us1 = number(US1)
    us1.paused_at = NOW  # paused for its health: the conversation keeps it, nothing to say
    db.session.commit()
    assert compose.number_change(conversation, "sms", "Ava") is None
    us1.status, us1.suspension = "suspended", "staff"
    db.session.commit()
    words = compose.number_change(conversation, "sms", "Ava")
    assert words.startswith("This conversation was on +1 201-555-0101, which is suspended")


# --- The pages and the rights ----------------------------------------------------------------------------


def test_staff_see_every_customer_s_numbers_riskiest_first(client, world) -> None:
    the_fixture()
    sent(GLOBEX_US, 1000, NOW.replace(hour=9))  # 50 % of the US 2,000
    health.refresh(db.session, NOW, health.RECOUNT_DAYS)
    Auth(client).login("csm@relay.test")
    page = client.get("/staff/numbers/health").get_data(as_text=True)
    order = re.findall(r'<tr id="health-(\d+)"', page)
    ids = {e: str(number(e).id) for e in (US1, US2, US3, GB, GLOBEX_US)}
    assert order[:3] == [ids[US1], ids[GLOBEX_US], ids[US2]]  # 85 %, 50 %, 10 %
    assert "Globex" in page and "Acme" in page
    assert "85 of 100" in page and "1,000 of 2,000" in page
    by_failures = client.get("/staff/numbers/health?sort=failures").get_data(as_text=True)
    assert re.findall(r'<tr id="health-(\d+)"', by_failures)[0] == ids[US1]
    by_opt_outs = client.get("/staff/numbers/health?sort=opt_outs").get_data(as_text=True)
    assert re.findall(r'<tr id="health-(\d+)"', by_opt_outs)[0] == ids[US2]  # 1 of 10
    assert "https://infobip.com/docs/10dlc/throughput" in page  # the guidance's source


def test_staff_set_a_customer_s_cap_and_bad_input_is_told_next_to_the_field(client, world) -> None:
    Auth(client).login("csm@relay.test")
    token = csrf_from(client, "/staff/numbers/health")
    path = f"/staff/organizations/{world['globex'].id}/number-cap"
    bad = client.post(path, data={"csrf_token": token, "cap": "lots"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert re.search(r'id="cap-error">“lots” is not a number of SMS from 1 to 1,000,000', html)
    assert 'value="lots"' in html
    assert client.post(path, data={"csrf_token": token, "cap": "1,500"}).status_code == 303
    db.session.expire_all()
    assert world["globex"].number_daily_cap == 1500
    health.refresh(db.session, NOW)
    assert figures(GLOBEX_US).guidance == 1500


@pytest.mark.parametrize(
    ("who", "method", "path", "status"),
    [
        (None, "get", "/staff/numbers/health", 302),
        ("admin@acme.test", "get", "/staff/numbers/health", 403),
        ("recruiter@acme.test", "get", "/staff/numbers/health", 403),
        ("admin@acme.test", "post", "/staff/numbers/{us1}/let-in", 403),
        ("admin@acme.test", "post", "/staff/organizations/{acme}/number-cap", 403),
        ("csm@relay.test", "post", "/staff/numbers/999999/let-in", 404),
    ],
)
def test_only_staff_see_and_act(client, world, who, method, path, status) -> None:
    number(US1).paused_at = NOW
    db.session.commit()
    if who:
        Auth(client).login(who)
    token_page = {None: "/login", "csm@relay.test": "/staff/"}.get(who, "/settings/notifications")
    token = csrf_from(client, token_page)
    url = path.format(us1=number(US1).id, acme=world["acme"].id)
    response = (
        client.get(url) if method == "get" else client.post(url, data={"csrf_token": token, "cap": "5"})
    )
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert number(US1).paused_at is not None and world["acme"].number_daily_cap == 100


def test_admins_see_their_own_pool_s_health_only(client, world) -> None:
    sent(US1, 100, NOW.replace(hour=9))
    sent(US2, 85, NOW.replace(hour=9))
    sent(GLOBEX_US, 20, NOW.replace(hour=9))
    health.refresh(db.session, NOW)
    Auth(client).login("admin@acme.test")
    page = client.get("/admin/numbers").get_data(as_text=True)
    section = page[page.index('id="pool-health"') :]
    assert "+1 201-555-0102" in section and "85 of 100" in section and "near its guidance" in section
    assert "Paused" in section and "over its daily guidance: 100 SMS today of 100" in section
    assert "+1 201-555-0199" not in page
    assert "Let it take new conversations again" not in page  # staff's action, not theirs


# --- The routing rule alone ------------------------------------------------------------------------------


def test_the_routing_rule_prefers_the_most_room_skips_closed_numbers_and_never_leaves_the_country() -> None:
    from dataclasses import dataclass as plain

    from webapp.messaging import routing

    @plain(frozen=True)
    class N:
        country: str
        e164: str

    us1, us2, us3, gb = N("US", US1), N("US", US2), N("US", US3), N("GB", GB)
    pool = [us1, us2, us3, gb]
    asked: list[list[N]] = []

    def load(shares):
        def answer(tier):
            asked.append(list(tier))
            return {n.e164: shares.get(n.e164, 0.0) for n in tier}

        return answer

    # Furthest below its guidance first; only the chosen tier is asked about.
    assert routing.choose_number(pool, "+12025550143", load=load({US1: 0.5, US2: 0.2, US3: 0.7})) is us2
    assert asked == [[us1, us2, us3]]
    # Equal room: the caller's order (least recently used first) decides.
    assert routing.choose_number(pool, "+12025550143", load=load({})) is us1
    # A closed number (None) is skipped; `avoid` still comes last within what is left.
    shares = {US1: 0.1, US2: None, US3: 0.3}
    assert routing.choose_number(pool, "+12025550143", avoid={US1}, load=load(shares)) is us3
    # Every number of the tier closed: refused, not sent from the GB number.
    with pytest.raises(routing.AllPaused) as paused:
        routing.choose_number(pool, "+12025550143", load=load({US1: None, US2: None, US3: None}))
    assert paused.value.country == "US"
    assert routing.choose_number(pool, "+447400123456", load=load({})) is gb
