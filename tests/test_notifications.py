"""Notifications (issue 21 §1): the top bar's count of what waits for me, carried by the poll a page has,
and the emails that tell whom a conversation concerns that a reply waits unread — through the real SMTP
sink (aiosmtpd), the clock given to the sweep (nobody sleeps), on SQLite and PostgreSQL; two sweeps at
once on PostgreSQL. The browser's side (the count live in Chromium, no second poll) is in
tests/test_browser.py.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.smtp_sink import SmtpSink, running_smtp_sink
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.inbox import changes as activity
from webapp.messaging import reads
from webapp.models import Conversation, Message, Notification, User
from webapp.notifications import emails, waiting
from webapp.scheduling import tasks

BASE = "https://relay.example"
# Monday 7 December 2026, 10:00 in Berlin (09:00 UTC): within everyone's default working hours.
MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
WAIT = timedelta(minutes=10)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with running_smtp_sink() as sink:
        yield sink


@pytest.fixture
def app_config(sink) -> dict[str, object]:
    return {"PUBLIC_BASE_URL": BASE, "SMTP_URL": sink.url, "NOTIFY_WAIT_MINUTES": 10}


@pytest.fixture
def world(app):
    org = f.messaging_org("Acme", time_zone="Europe/Berlin")
    riley = f.user(org, "riley@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    sam = f.user(org, "sam@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Sam Park")
    admin = f.user(org, "admin@acme.test", admin=True, name="Ada Admin")
    job = f.job(org, team=[riley, sam], title="Backend Engineer")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile="+4915123456789"))
    jonas = f.application(job, f.candidate(org, "Jonas", "Weber", mobile="+4915123456790"))
    db.session.commit()
    return {"org": org, "riley": riley, "sam": sam, "admin": admin, "job": job, "lena": lena, "jonas": jonas}


def conversation_of(application) -> Conversation:
    found = db.session.scalar(sa.select(Conversation).where(Conversation.application_id == application.id))
    if found is None:
        found = Conversation(organization_id=application.job.organization_id, application_id=application.id)
        db.session.add(found)
        db.session.flush()
    return found


def say(
    application,
    text: str = "Hello",
    at: datetime = MONDAY,
    direction: str = "inbound",
    author=None,
    channel="sms",
):
    """A message joins the conversation as a webhook (or compose) would have it join, committed."""
    conversation = conversation_of(application)
    message = Message(
        conversation_id=conversation.id,
        channel=channel,
        direction=direction,
        author_id=author.id if author else None,
        body=text,
        status="received" if direction == "inbound" else "delivered",
        created_at=at,
        updated_at=at,
    )
    db.session.add(message)
    db.session.flush()
    activity.record(db.session, conversation, message)
    db.session.commit()
    return message


def sweep(at: datetime) -> str:
    """The clock's task, at that moment."""
    return tasks.notify_by_email(at)


def mails(sink: SmtpSink, to: str | None = None) -> list:
    return [m.message for m in sink.messages if to is None or to in m.rcpt_tos]


def set_user(user: User, **values) -> None:
    for key, value in values.items():
        setattr(user, key, value)
    db.session.commit()


# --- The wait, the batch, the email ------------------------------------------------------------------


def test_a_reply_unread_for_the_wait_is_emailed_once_naming_who_where_what_and_the_link(world, sink) -> None:
    say(world["lena"], "Yes, Tuesday works for me\nBest, Lena")
    assert sweep(MONDAY + WAIT - timedelta(seconds=1)) == ""
    assert mails(sink) == []

    assert "2 notification email(s) sent" in sweep(MONDAY + WAIT)
    # Nobody assigned, nobody wrote: the hiring team (not the administrator, who only sees it).
    assert sorted(r for m in sink.messages for r in m.rcpt_tos) == ["riley@acme.test", "sam@acme.test"]
    [email] = mails(sink, "riley@acme.test")
    body = email.get_content()
    conversation = conversation_of(world["lena"])
    assert email["Subject"] == "Lena Müller wrote about Backend Engineer"
    assert "Lena Müller (the job Backend Engineer) wrote a message" in body
    assert "“Yes, Tuesday works for me”" in body and "Best, Lena" not in body  # the first line
    assert f"{BASE}/inbox?c={conversation.id}" in body
    header = email["List-Unsubscribe"]
    unsubscribe = re.search(r"<(https://relay\.example/notifications/unsubscribe/[^>]+)>", header)
    assert unsubscribe and unsubscribe.group(1) in body
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # As the mail client reads them, raw: a folded header turned into RFC 2047 words (=?utf-8?q?=3Chttps…)
    # is a header no mail client offers to unsubscribe with.
    [raw] = [m.raw for m in sink.messages if "riley@acme.test" in m.rcpt_tos]
    assert f"\r\nList-Unsubscribe: <{unsubscribe.group(1)}>\r\n".encode() in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw

    # Told once: later sweeps send nothing more about it.
    assert sweep(MONDAY + WAIT * 3) == ""
    assert len(sink.messages) == 2


def test_several_replies_within_the_wait_make_one_email_and_a_later_one_another(world, sink) -> None:
    world["sam"].notify_email = "off"
    db.session.commit()
    for minute, text in [(0, "First"), (2, "Second"), (5, "Third")]:
        say(world["lena"], text, at=MONDAY + timedelta(minutes=minute))
    sweep(MONDAY + WAIT)
    [email] = mails(sink)
    body = email.get_content()
    assert "wrote 3 messages" in body
    assert body.index("“First”") < body.index("“Second”") < body.index("“Third”")

    # A new reply waits its own wait, from when it came.
    say(world["lena"], "Fourth", at=MONDAY + timedelta(minutes=30))
    sweep(MONDAY + timedelta(minutes=39))
    assert len(mails(sink)) == 1
    sweep(MONDAY + timedelta(minutes=40))
    assert len(mails(sink)) == 2
    later = mails(sink)[1].get_content()
    assert "“Fourth”" in later and "“First”" not in later
    rows = db.session.scalars(sa.select(Notification).order_by(Notification.id)).all()
    assert [(n.messages, n.sent_at is not None) for n in rows] == [(3, True), (1, True)]


def test_at_once_everything_due_in_one_sweep_is_one_email_per_person(world, sink) -> None:
    set_user(world["sam"], notify_email="off")
    mia = f.application(world["job"], f.candidate(world["org"], "Mia", "Fischer", mobile="+4915123456791"))
    db.session.commit()
    say(world["lena"], "From Lena")
    say(world["jonas"], "From Jonas", at=MONDAY + timedelta(minutes=1))
    say(mia, "From Mia", at=MONDAY + timedelta(minutes=2))
    # Sam's note mentions Riley in Lena's conversation, due in the same sweep: the same email.
    mention(world, by="sam", text="@Riley Chen she asked about the salary", at=MONDAY + timedelta(minutes=3))

    assert "1 notification email(s) sent" in sweep(MONDAY + timedelta(minutes=13))
    [email] = mails(sink)
    assert email["To"] == "riley@acme.test"
    assert (
        email["Subject"] == "3 conversations wait for you on Relay: Lena Müller, Jonas Weber and Mia Fischer"
    )
    body = email.get_content()
    ids = [conversation_of(a).id for a in (world["lena"], world["jonas"], mia)]
    links = [f"{BASE}/inbox?c={i}\n" for i in ids]
    # Each conversation once, the earliest waiting first: who wrote, where, the first line, the link.
    assert [body.count(link) for link in links] == [1, 1, 1]
    assert body.index("Lena Müller (the job Backend Engineer) wrote a message") < body.index(links[0])
    assert body.index("“From Lena”") < body.index("Sam Park mentioned you in a note about Lena Müller")
    assert body.index("Sam Park mentioned you") < body.index(links[0]) < body.index("“From Jonas”")
    assert (
        body.index("Jonas Weber (the job Backend Engineer)") < body.index(links[1]) < body.index("“From Mia”")
    )
    # Each conversation was claimed before the email left, and is told once.
    rows = db.session.scalars(sa.select(Notification).order_by(Notification.id)).all()
    assert [(n.conversation_id, n.kind, n.sent_at is not None) for n in rows] == [
        (i, "now", True) for i in ids
    ]
    assert sweep(MONDAY + timedelta(minutes=30)) == ""
    assert len(mails(sink)) == 1

    # The next sweep's news is the next email: one conversation, named in the subject.
    say(world["jonas"], "Jonas again", at=MONDAY + timedelta(minutes=31))
    sweep(MONDAY + timedelta(minutes=41))
    assert mails(sink)[1]["Subject"] == "Jonas Weber wrote about Backend Engineer"


def test_a_reply_and_a_mention_in_one_conversation_name_both_in_the_subject(world, sink) -> None:
    set_user(world["sam"], notify_email="off")
    say(world["lena"], "From Lena")
    mention(world, by="sam", text="@Riley Chen call her", at=MONDAY + timedelta(minutes=1))
    sweep(MONDAY + timedelta(minutes=11))
    [email] = mails(sink)
    assert email["Subject"] == "Lena Müller wrote about Backend Engineer, and Sam Park mentioned you"
    assert email.get_content().count(f"{BASE}/inbox?c=") == 1


# --- Who is told --------------------------------------------------------------------------------------


def test_the_assignee_alone_is_told(world, sink) -> None:
    conversation_of(world["lena"]).assignee_id = world["sam"].id
    say(world["lena"], "Hi")
    sweep(MONDAY + WAIT)
    assert [m.rcpt_tos for m in sink.messages] == [["sam@acme.test"]]


def test_with_nobody_assigned_those_who_wrote_are_told(world, sink) -> None:
    earlier = MONDAY - timedelta(hours=1)
    say(world["lena"], "Hello Lena", at=earlier, direction="outbound", author=world["riley"])
    say(world["lena"], "Hi Riley")
    sweep(MONDAY + WAIT)
    assert [m.rcpt_tos for m in sink.messages] == [["riley@acme.test"]]


def test_a_writer_who_left_the_team_is_passed_over_for_the_team(world, sink) -> None:
    from webapp.models import HiringTeamMember

    earlier = MONDAY - timedelta(hours=1)
    say(world["lena"], "Hello Lena", at=earlier, direction="outbound", author=world["riley"])
    say(world["lena"], "Hi Riley")
    db.session.execute(sa.delete(HiringTeamMember).where(HiringTeamMember.user_id == world["riley"].id))
    db.session.commit()
    sweep(MONDAY + WAIT)
    # The writers' rule named Riley, who may no longer see it: the team (Sam) is told.
    assert [m.rcpt_tos for m in sink.messages] == [["sam@acme.test"]]


def test_with_nobody_assigned_and_no_writer_the_team_with_the_right_is_told(world, sink) -> None:
    outsider = f.user(world["org"], "other@acme.test", codes=[permissions.RECRUITMENT_SMS])
    f.job(world["org"], team=[outsider])  # another job's team
    db.session.commit()
    say(world["lena"], "Hi")
    sweep(MONDAY + WAIT)
    assert sorted(r for m in sink.messages for r in m.rcpt_tos) == ["riley@acme.test", "sam@acme.test"]


def test_no_email_for_what_the_person_read_or_wrote(world, sink) -> None:
    say(world["lena"], "Hi")
    reads.mark_conversation_read(db.session, world["riley"].id, conversation_of(world["lena"]))
    db.session.commit()
    say(world["jonas"], "Our own message", direction="outbound", author=world["riley"])
    sweep(MONDAY + WAIT * 2)
    # Riley read Lena's reply; Jonas's conversation has only Riley's own message.
    assert [m.rcpt_tos for m in sink.messages] == [["sam@acme.test"]]


def test_read_on_one_channel_a_reply_on_another_still_waits(world, sink) -> None:
    set_user(world["sam"], notify_email="off")
    whatsapp = say(world["lena"], "On WhatsApp", channel="whatsapp")
    sms = say(world["lena"], "On SMS", at=MONDAY + timedelta(minutes=1))
    # Riley read the SMS tab only (past the WhatsApp reply's id): the WhatsApp reply is still unread.
    reads.mark_read(db.session, world["riley"].id, conversation_of(world["lena"]).id, "sms", sms.id)
    db.session.commit()
    assert whatsapp.id < sms.id
    sweep(MONDAY + WAIT * 2)
    [email] = mails(sink)
    body = email.get_content()
    assert "“On WhatsApp”" in body and "“On SMS”" not in body


def test_off_means_no_email(world, sink) -> None:
    for user in (world["riley"], world["sam"]):
        user.notify_email = "off"
    db.session.commit()
    say(world["lena"], "Hi")
    assert sweep(MONDAY + WAIT) == ""
    assert mails(sink) == []


# --- The digest and the hours ------------------------------------------------------------------------


def test_the_hourly_digest_gathers_conversations_and_comes_at_most_once_an_hour(world, sink) -> None:
    set_user(world["riley"], notify_email="hourly")
    set_user(world["sam"], notify_email="off")
    say(world["lena"], "From Lena")
    say(world["jonas"], "From Jonas", at=MONDAY + timedelta(minutes=1))
    sweep(MONDAY + timedelta(minutes=11))
    [digest] = mails(sink)
    assert digest["Subject"] == "2 conversations wait for you on Relay: Lena Müller and Jonas Weber"
    body = digest.get_content()
    assert "“From Lena”" in body and "“From Jonas”" in body

    say(world["lena"], "Again", at=MONDAY + timedelta(minutes=20))
    sweep(MONDAY + timedelta(minutes=40))  # due, but the last digest was under an hour ago
    assert len(mails(sink)) == 1
    sweep(MONDAY + timedelta(minutes=71))
    assert len(mails(sink)) == 2
    assert "“Again”" in mails(sink)[1].get_content()


def test_outside_working_hours_the_email_waits_for_the_morning(world, sink) -> None:
    set_user(world["sam"], notify_email="off")
    evening = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)  # Monday 22:00 in Berlin
    say(world["lena"], "Late question", at=evening)
    # Held, nothing sent: the task says nothing, so the clock logs nothing (it logged "0 notification
    # email(s) sent, 1 person(s) held" every pass of the night).
    assert sweep(evening + WAIT) == ""
    assert mails(sink) == []
    assert sweep(datetime(2026, 12, 8, 6, 59, tzinfo=UTC)) == ""  # Tuesday 07:59 in Berlin
    assert mails(sink) == []
    # 08:00: the first sweep of the morning sends it.
    assert sweep(datetime(2026, 12, 8, 7, 0, tzinfo=UTC)) == "1 notification email(s) sent"
    assert len(mails(sink)) == 1
    assert emails.next_at_work(world["riley"], evening) == datetime(2026, 12, 8, 7, 0, tzinfo=UTC)


def test_replies_older_than_the_horizon_are_not_news(world, sink) -> None:
    set_user(world["sam"], notify_email="off")
    say(world["lena"], "Long ago", at=MONDAY - emails.HORIZON - timedelta(minutes=1))
    assert sweep(MONDAY) == ""
    say(world["lena"], "Today")
    sweep(MONDAY + WAIT)
    [email] = mails(sink)
    assert "“Today”" in email.get_content() and "Long ago" not in email.get_content()


def test_the_persons_own_zone_and_hours_count_not_the_organisations(world, sink) -> None:
    set_user(world["sam"], notify_email="off")
    # Riley works from New York, 09:00-17:00: 10:00 in Berlin is 04:00 there.
    set_user(world["riley"], time_zone="America/New_York", work_from=time(9), work_until=time(17))
    say(world["lena"], "Hi")
    sweep(MONDAY + WAIT)
    assert mails(sink) == []
    sweep(datetime(2026, 12, 7, 14, 0, tzinfo=UTC))  # 09:00 in New York
    assert len(mails(sink)) == 1


# --- Unsubscribe --------------------------------------------------------------------------------------


def unsubscribe_path(sink: SmtpSink, to: str) -> str:
    [email] = mails(sink, to)
    return re.search(r"<https://relay\.example(/[^>]+)>", email["List-Unsubscribe"]).group(1)


def test_one_click_unsubscribe_without_signing_in(world, sink, client) -> None:
    say(world["lena"], "Hi")
    sweep(MONDAY + WAIT)
    path = unsubscribe_path(sink, "riley@acme.test")

    page = client.get(path)  # a mail scanner opening the link changes nothing
    assert page.status_code == 200 and b"Stop these emails" in page.data
    db.session.expire_all()
    assert db.session.get(User, world["riley"].id).notify_email == "now"

    # The mail client's one-click POST (RFC 8058): no session, no CSRF token.
    answer = client.post(path, data={"List-Unsubscribe": "One-Click"})
    done = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "gets no more notification emails" in done
    assert "neither about waiting replies nor about notes that mention you" in done
    assert '<a href="/settings/notifications">notification settings</a>' in done
    db.session.expire_all()
    assert db.session.get(User, world["riley"].id).notify_email == "off"
    assert db.session.get(User, world["sam"].id).notify_email == "now"

    say(world["lena"], "Again", at=MONDAY + timedelta(minutes=30))
    sweep(MONDAY + timedelta(minutes=45))
    assert len(mails(sink, "riley@acme.test")) == 1
    assert len(mails(sink, "sam@acme.test")) == 2


def test_a_tampered_unsubscribe_link_is_refused(world, sink, client) -> None:
    say(world["lena"], "Hi")
    sweep(MONDAY + WAIT)
    path = unsubscribe_path(sink, "riley@acme.test")
    token = path.rsplit("/", 1)[1]
    # Another person's id under Riley's signature, and a signature cut short.
    forged = emails.unsubscribe_token("not-our-secret-key-0123456789abcdef", world["sam"].id)
    for bad in (forged, token[:-2], token.replace(".", "x", 1)):
        assert client.post(emails.UNSUBSCRIBE_PATH + bad).status_code == 404
        assert client.get(emails.UNSUBSCRIBE_PATH + bad).status_code == 404
    db.session.expire_all()
    assert {u.notify_email for u in db.session.scalars(sa.select(User))} == {"now"}


# --- The person's settings ----------------------------------------------------------------------------


def test_the_settings_page_keeps_the_choice_and_refuses_bad_input_by_the_field(world, client, auth) -> None:
    auth.login("riley@acme.test")
    page = client.get("/settings/notifications")
    assert page.status_code == 200 and b"Email me when a reply waits" in page.data
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page.get_data(as_text=True)).group(1)
    form = {"csrf_token": token, "mode": "hourly", "time_zone": "America/New_York", "work_from": "09:00"}
    bad = client.post("/settings/notifications", data={**form, "work_until": "7pm", "work_days": ["1", "2"]})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'id="work_until-error"' in html and "Write a time like 08:00." in html
    assert 'value="America/New_York"' in html  # what was typed stays
    form["work_days"] = ["1", "2"]
    good = client.post("/settings/notifications", data={**form, "work_until": "17:30"})
    assert good.status_code == 303
    db.session.expire_all()
    riley = db.session.get(User, world["riley"].id)
    assert (riley.notify_email, riley.time_zone, riley.work_from, riley.work_until, riley.work_days) == (
        "hourly",
        "America/New_York",
        time(9),
        time(17, 30),
        "12",
    )


def test_the_settings_page_says_every_wrong_field_at_once(world, client, auth) -> None:
    auth.login("riley@acme.test")
    page = client.get("/settings/notifications").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1)
    # A zone that is none, a day that ends before it starts, no day ticked: said together, each by its field.
    form = {"csrf_token": token, "mode": "now", "time_zone": "Mars/Olympus", "work_from": "18:00"}
    bad = client.post("/settings/notifications", data={**form, "work_until": "08:00"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'id="time_zone-error"' in html and "Choose a time zone from the list" in html
    assert 'id="work_until-error"' in html and "Your working day must end after it starts." in html
    assert 'id="work_days-error"' in html and "Tick at least one working day." in html
    # Two times that are not times: each said beside its own field.
    bad = client.post("/settings/notifications", data={**form, "work_from": "8am", "work_until": "6pm"})
    html = bad.get_data(as_text=True)
    assert 'id="work_from-error"' in html and 'id="work_until-error"' in html
    db.session.expire_all()
    assert db.session.get(User, world["riley"].id).time_zone is None  # nothing kept


# --- The top bar's count ------------------------------------------------------------------------------


def test_the_top_bar_counts_unread_conversations_mine_or_on_my_teams(world, client, auth) -> None:
    say(world["lena"], "Hi")
    say(world["jonas"], "Hello")
    other_job = f.job(world["org"], team=[world["sam"]])
    elsewhere = f.application(other_job, f.candidate(world["org"], "Mia", "Fischer"))
    db.session.commit()
    say(elsewhere, "Not Riley's team")
    db.session.expire_all()
    assert waiting.waiting(db.session, db.session.get(User, world["riley"].id)).count == 2
    assert waiting.waiting(db.session, db.session.get(User, world["sam"].id)).count == 3
    # The administrator sees every conversation, but none is theirs until one is assigned to them.
    admin = db.session.get(User, world["admin"].id)
    assert waiting.waiting(db.session, admin).count == 0
    conversation_of(world["lena"]).assignee_id = admin.id
    db.session.commit()
    assert waiting.waiting(db.session, admin).count == 1

    auth.login("riley@acme.test")
    page = client.get("/jobs").get_data(as_text=True)
    assert re.search(r'<a id="waiting"[^>]*data-count="2"', page)
    assert 'id="waiting-poll"' in page  # the jobs page has no poll of its own: the light one


def test_the_count_rides_on_a_poll_only_when_it_may_have_moved(world, client, auth) -> None:
    say(world["lena"], "Hi")
    auth.login("riley@acme.test")
    page = client.get("/inbox").get_data(as_text=True)
    assert 'id="waiting-poll"' not in page  # the Inbox polls already
    stamp = re.search(r'<a id="waiting"[^>]*data-stamp="(\d+)"', page).group(1)
    poll = re.search(r'hx-get="(/inbox/changes\?[^"]+)"', page).group(1).replace("&amp;", "&")
    hx = {"HX-Request": "true", "X-Relay-Waiting": stamp}

    unchanged = client.get(poll, headers=hx)
    assert unchanged.status_code == 204 and "X-Relay-Waiting" not in unchanged.headers

    jonas = say(world["jonas"], "Another")
    changed = client.get(poll, headers=hx)
    count, new_stamp, reply, mention = changed.headers["X-Relay-Waiting"].split()
    assert count == "2" and new_stamp != stamp and (reply, mention) == (str(jonas.id), "0")

    # The light poll of a page without one: 204 always, the count only when behind.
    light = client.get("/notifications/waiting", headers={**hx, "X-Relay-Waiting": new_stamp})
    assert light.status_code == 204 and "X-Relay-Waiting" not in light.headers
    behind = client.get("/notifications/waiting", headers=hx)
    assert behind.status_code == 204 and behind.headers["X-Relay-Waiting"] == f"2 {new_stamp} {jonas.id} 0"


def test_a_second_reply_in_an_unread_conversation_is_news_though_the_count_stays(world, client, auth) -> None:
    """What the desktop alert follows (static/js/app.js): the newest reply waiting, and the newest mention."""
    first = say(world["lena"], "Hi")
    riley = db.session.get(User, world["riley"].id)
    now = waiting.waiting(db.session, riley)
    assert (now.count, now.reply, now.mention) == (1, first.id, 0)
    second = say(world["lena"], "Are you there?", at=MONDAY + timedelta(minutes=1))
    now = waiting.waiting(db.session, riley)
    assert (now.count, now.reply) == (1, second.id)
    assert now.header().split()[2] == str(second.id)
    # Read, then marked unread by Riley: nothing new arrived, so no reply waits to be told of.
    reads.mark_conversation_read(db.session, riley.id, conversation_of(world["lena"]))
    reads.mark_unread(db.session, riley.id, conversation_of(world["lena"]).id)
    db.session.commit()
    now = waiting.waiting(db.session, riley)
    assert (now.count, now.reply) == (1, 0)
    # A colleague's mention of Riley is news; Riley's own mention of themselves is not.
    mention(world, by="sam", text="@Riley Chen look", at=MONDAY + timedelta(minutes=2))
    mentioned = waiting.waiting(db.session, riley).mention
    assert mentioned > 0
    mention(world, by="riley", text="@Riley Chen note to self", at=MONDAY + timedelta(minutes=3))
    assert waiting.waiting(db.session, riley).mention == mentioned


# --- Two clocks at once (PostgreSQL) -------------------------------------------------------------------


def test_two_sweeps_at_once_send_each_email_once(world, sink, app, backend) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite lets one writer at a time: the race only exists on a real server")
    job = world["job"]
    apps = [world["lena"], world["jonas"]]
    for i in range(10):
        candidate = f.candidate(world["org"], f"Cand{i}", "Test", mobile=f"+49151234500{i:02d}")
        apps.append(f.application(job, candidate))
    db.session.commit()
    for i, application in enumerate(apps):
        say(application, f"Reply {i}")
    start = threading.Barrier(3)
    outcomes: list[str] = []

    def run() -> None:
        with app.app_context():
            start.wait()
            try:
                outcomes.append(sweep(MONDAY + WAIT))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # 12 conversations, two team members each: each person told of each conversation once, in the one
    # email of whichever clock claimed it (one email a person, unless two clocks split their claims).
    told = [
        (m.rcpt_tos[0], c)
        for m in sink.messages
        for c in re.findall(r"/inbox\?c=(\d+)", m.message.get_content())
    ]
    assert len(told) == 24 and len(set(told)) == 24, outcomes
    assert 2 <= len(sink.messages) <= 2 * 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 24


# --- Mentions (issue 21 §3): a note that names someone is emailed to them, under their choice ---------


def mention(world, by: str = "riley", text: str = "@Sam Park can you call Lena back?", at: datetime = MONDAY):
    from webapp.messaging import notes

    conversation = conversation_of(world["lena"])
    note = notes.add_note(db.session, world[by], conversation, text, at)
    db.session.commit()
    return conversation, note


def test_a_mention_not_opened_within_the_wait_is_emailed_to_that_person_once(world, sink) -> None:
    say(world["lena"], "Hello", direction="outbound", author=world["riley"], at=MONDAY - timedelta(hours=1))
    conversation, _ = mention(world, text="@Sam Park can you call Lena back?\nShe prefers mornings.")
    assert sweep(MONDAY + WAIT - timedelta(seconds=1)) == ""
    assert "1 notification email(s) sent" in sweep(MONDAY + WAIT)
    [email] = mails(sink)
    assert email["To"] == "sam@acme.test"
    assert email["Subject"] == "Riley Chen mentioned you about Lena Müller"
    body = email.get_content()
    assert "Riley Chen mentioned you in a note about Lena Müller (Backend Engineer):" in body
    assert "  @Sam Park can you call Lena back?\n  She prefers mornings." in body
    assert f"{BASE}/inbox?c={conversation.id}" in body and email["List-Unsubscribe"]
    assert sweep(MONDAY + WAIT * 3) == ""
    assert len(mails(sink)) == 1


def test_no_mention_email_once_opened_or_when_off_or_for_oneself(world, sink) -> None:
    say(world["lena"], "Hello", direction="outbound", author=world["riley"], at=MONDAY - timedelta(hours=1))
    conversation, _ = mention(world, text="@Sam Park and @Riley Chen, see this")
    reads.mark_conversation_read(db.session, world["sam"].id, conversation)
    db.session.commit()
    assert sweep(MONDAY + WAIT) == ""  # Sam opened it; Riley wrote it

    set_user(world["sam"], notify_email="off")
    mention(world, text="@Sam Park again", at=MONDAY + WAIT)
    assert sweep(MONDAY + WAIT * 3) == ""
    assert mails(sink) == []


def test_a_mention_joins_the_hourly_digest(world, sink) -> None:
    set_user(world["sam"], notify_email="hourly")
    set_user(world["riley"], notify_email="off")
    say(world["jonas"], "From Jonas")
    mention(world, text="@Sam Park have a look")
    sweep(MONDAY + WAIT)
    [digest] = mails(sink, "sam@acme.test")
    # Both waiting since the same minute: the older conversation first. (Python's folder leaves two spaces
    # before an encoded word it moves to the next line: "Lena \r\n =?utf-8?q?M=C3=BCller?=".)
    subject = " ".join(digest["Subject"].split())
    assert subject == "2 conversations wait for you on Relay: Jonas Weber and Lena Müller"
    body = digest.get_content()
    assert "“From Jonas”" in body and "Riley Chen mentioned you in a note about Lena Müller" in body


def test_a_mention_is_claimed_once_whoever_sweeps(world, sink) -> None:
    mention(world)
    due = emails.mentions_due(db.session, MONDAY + WAIT)[world["sam"].id]
    assert [m.mention_id for m in emails._claim_mentions(db.session, due, MONDAY + WAIT)] == [
        due[0].mention_id
    ]
    # A second clock that read the same mention before the first marked it: nothing left to send.
    assert emails._claim_mentions(db.session, due, MONDAY + WAIT) == []
    assert emails.mentions_due(db.session, MONDAY + WAIT) == {}
