"""The open candidate-application page: cheap polling, unread counts, the opt-out banner, the WhatsApp
window, Simulate a reply, and Unmatched messages for admins."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests import factories as f
from tests.conftest import csrf_from
from tests.webhook_support import inbound, post
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.messaging import compose
from webapp.messaging.subjects import of_application
from webapp.models import Message, User, WhatsappTemplate

OUR, LENA = "+4915123456700", "+4915123456789"


@pytest.fixture
def page(app, auth):
    org = f.messaging_org("Acme", sender_name="Acme")
    recruiter = f.user(org, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS])
    colleague = f.user(org, "colleague@acme.test", codes=[permissions.RECRUITMENT_SMS])
    admin = f.user(org, "admin@acme.test", admin=True)
    f.number(org, OUR)
    job = f.job(org, team=[recruiter, colleague], title="Backend Engineer")
    lena = f.application(job, f.candidate(org, "Lena", "Müller", mobile=LENA))
    f.whatsapp_template(org)
    f.credits(org, 20)
    db.session.commit()
    compose.compose(db.session, recruiter, of_application(lena), "sms", "Hi Lena")
    db.session.commit()
    auth.login("recruiter@acme.test")
    conversation = f.conversation_url(lena)
    return {"org": org, "lena": lena, "url": f"/applications/{lena.id}", "c": conversation, "admin": admin}


def version_of(html: str) -> str:
    return re.search(r'data-version="([^"]+)"', html).group(1)


def poll(client, page, tab: str, since: str):
    return client.get(
        f"{page['c']}/thread", query_string={"tab": tab, "since": since}, headers={"HX-Request": "true"}
    )


def test_polling_answers_204_until_something_changes(client, page) -> None:
    html = client.get(page["url"] + "?tab=sms").get_data(as_text=True)
    since = version_of(html)
    assert 'hx-trigger="every 2s' in html
    assert poll(client, page, "sms", since).status_code == 204
    post(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, "Tuesday works"))
    fresh = poll(client, page, "sms", since)
    assert fresh.status_code == 200 and "Tuesday works" in fresh.get_data(as_text=True)
    assert version_of(fresh.get_data(as_text=True)) != since
    # A status change is a change too.
    since = version_of(fresh.get_data(as_text=True))
    message = db.session.query(Message).filter_by(direction="outbound").one()
    message.status = "delivered"
    db.session.commit()
    assert poll(client, page, "sms", since).status_code == 200


def test_the_whatsapp_window_is_part_of_what_the_poll_compares(client, page) -> None:
    """A page rendered with a window read just before a reply opened it must not be told "nothing new"."""
    since = version_of(client.get(page["url"] + "?tab=sms").get_data(as_text=True))
    f.open_whatsapp_window(page["lena"])
    db.session.commit()
    assert poll(client, page, "sms", since).status_code == 200


def test_unread_count_per_user_and_channel(client, auth, page) -> None:
    client.get(page["url"] + "?tab=email")
    post(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, "One"))
    post(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, "Two"))
    html = client.get(page["url"] + "?tab=email").get_data(as_text=True)
    assert 'data-unread="2"' in html
    client.get(page["url"] + "?tab=sms")  # reading the SMS tab …
    assert "data-unread" not in client.get(page["url"] + "?tab=email").get_data(as_text=True)
    auth.logout()
    auth.login("colleague@acme.test")  # … is this user's; the colleague has still not read them
    assert 'data-unread="2"' in client.get(page["url"] + "?tab=email").get_data(as_text=True)


def test_stop_shows_a_banner_and_start_removes_it(client, page) -> None:
    post(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, "Stop."))
    html = client.get(page["url"] + "?tab=sms").get_data(as_text=True)
    assert 'id="opt-out-banner-' in html and "“Stop.”" in html
    token = csrf_from(client, page["url"])
    refused = client.post(
        f"{page['c']}/messages",
        data={"channel": "sms", "body": "Hi?", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 422 and "opted out" in refused.get_data(as_text=True)
    post(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, "start"))
    assert 'id="opt-out-banner-' not in client.get(page["url"] + "?tab=sms").get_data(as_text=True)


def test_whatsapp_window_in_the_composer(client, page) -> None:
    html = client.get(page["url"] + "?tab=whatsapp").get_data(as_text=True)
    assert "outside the 24-hour window" in html and 'class="wa-window wa-closed"' in html
    assert "interview_invite (en_GB)" in html
    token = csrf_from(client, page["url"])
    template_id = re.search(r'<option value="(\d+)">interview_invite', html).group(1)
    sent = client.post(
        f"{page['c']}/messages",
        data={"channel": "whatsapp", "body": "", "whatsapp_template_id": template_id, "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert sent.status_code == 200 and "can we talk about Backend Engineer" in sent.get_data(as_text=True)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    post(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, "Hi!", channel="whatsapp", timestamp=now))
    html = client.get(page["url"] + "?tab=whatsapp").get_data(as_text=True)
    assert "free text allowed for 23 h" in html and "wa-closed" not in html


def test_a_whatsapp_reply_reaches_the_composer_through_the_poll(client, page) -> None:
    """The composer's window note is not in the thread: the poll brings it out of band, by its id."""
    template = db.session.query(WhatsappTemplate).one()
    recruiter = db.session.query(User).filter_by(email="recruiter@acme.test").one()
    compose.compose(
        db.session, recruiter, of_application(page["lena"]), "whatsapp", "", whatsapp_template_id=template.id
    )
    db.session.commit()
    html = client.get(page["url"] + "?tab=sms").get_data(as_text=True)
    note = f'id="wa-window-{page["c"].split("/")[-1]}"'
    assert note in html and "wa-closed" in html
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    post(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, "Hi!", channel="whatsapp", timestamp=now))
    fresh = poll(client, page, "sms", version_of(html))
    body = fresh.get_data(as_text=True)
    assert fresh.status_code == 200 and fresh.headers["HX-Trigger"] == "thread-refreshed"
    oob = re.search(rf"<p {note}[^>]*>", body).group(0)
    assert 'hx-swap-oob="true"' in oob and "wa-open" in oob


def test_simulate_a_reply_runs_the_signed_webhook(client, page, app) -> None:
    token = csrf_from(client, page["url"])
    response = client.post(
        f"{page['c']}/simulate-reply",
        data={"channel": "sms", "text": "Sounds good", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    # The form answers for itself (with a fresh box); the thread refreshes itself on the event.
    assert response.status_code == 200 and response.get_data(as_text=True).lstrip().startswith("<form")
    assert response.headers["HX-Trigger-After-Settle"] == "messages-changed"
    assert "Sounds good" in client.get(page["url"] + "?tab=sms").get_data(as_text=True)
    reply = db.session.query(Message).filter_by(direction="inbound").one()
    assert reply.provider_id and reply.conversation_id is not None and reply.to_addr == OUR
    app.config["MESSAGING_PROVIDER"] = "vonage"  # never in production
    assert (
        client.post(f"{page['c']}/simulate-reply", data={"channel": "sms", "csrf_token": token}).status_code
        == 404
    )
    assert "Simulate a reply" not in client.get(page["url"]).get_data(as_text=True)


def test_simulate_a_reply_says_why_not_beside_the_form(client, page) -> None:
    token = csrf_from(client, page["url"])
    url = f"{page['c']}/simulate-reply"
    htmx = {"HX-Request": "true"}
    # No WhatsApp sent yet: no number to reply to. Said here, now, in words — not flashed for later.
    refused = client.post(url, data={"channel": "whatsapp", "text": "Hi", "csrf_token": token}, headers=htmx)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and html.lstrip().startswith("<form")
    assert "Send a WhatsApp message first" in html and 'role="alert"' in html and 'value="Hi"' in html
    assert "first: a reply" not in client.get(page["url"]).get_data(as_text=True)
    # A channel it cannot simulate is an error in the form too, not an error page inside it.
    odd = client.post(url, data={"channel": "email", "csrf_token": token}, headers=htmx)
    assert odd.status_code == 422 and "<html" not in odd.get_data(as_text=True)
    assert db.session.query(Message).filter_by(direction="inbound").count() == 0


def test_unmatched_messages_are_assigned_by_an_admin(client, auth, page) -> None:
    post(client, "/webhooks/vonage/inbound", inbound(OUR, "+447400123456", "Is the job still open?"))
    auth.logout()
    auth.login("admin@acme.test")
    html = client.get("/admin/unmatched").get_data(as_text=True)
    assert "Is the job still open?" in html
    message = db.session.query(Message).filter_by(conversation_id=None).one()
    token = csrf_from(client, "/admin/unmatched")
    url = f"/admin/unmatched/{message.id}/assign"
    bad = client.post(url, data={"application_id": "999999", "csrf_token": token}, follow_redirects=True)
    assert "no application 999999" in bad.get_data(as_text=True)
    ok = client.post(
        url, data={"application_id": str(page["lena"].id), "csrf_token": token}, follow_redirects=True
    )
    assert "assigned" in ok.get_data(as_text=True) and "No unmatched messages" in ok.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Message, message.id).conversation_id is not None
    auth.logout()
    auth.login("recruiter@acme.test")
    assert client.get("/admin/unmatched").status_code == 403


def test_an_assigned_message_keeps_its_number_and_who_assigned_it(client, auth, page) -> None:
    """Assigned to Lena's application, a text from another number is not shown as Lena's: the thread
    names the number it came from and the administrator who put it there."""
    page["admin"].name = "Ada Lovelace"
    db.session.commit()
    stranger = "+447700900555"
    post(client, "/webhooks/vonage/inbound", inbound(OUR, stranger, "Is the job still open?"))
    message = db.session.query(Message).filter_by(conversation_id=None).one()
    auth.logout()
    auth.login("admin@acme.test")
    token = csrf_from(client, "/admin/unmatched")
    client.post(
        f"/admin/unmatched/{message.id}/assign",
        data={"application_id": str(page["lena"].id), "csrf_token": token},
    )
    db.session.expire_all()
    stored = db.session.get(Message, message.id)
    assert stored.from_addr == stranger and stored.assigned_by_id == page["admin"].id
    assert stored.assigned_at is not None

    auth.logout()
    auth.login("recruiter@acme.test")
    html = client.get(page["url"] + "?tab=sms").get_data(as_text=True)
    item = html[html.index(f'id="message-{message.id}"') :]
    item = re.sub(r"\s+", " ", item[: item.index("</li>")])
    assert "Is the job still open?" in item
    assert re.search(r"From \+44 7700 900555, assigned by Ada Lovelace on \d\d \w{3} \d\d:\d\d", item)
    assert "Lena Müller" not in item  # not shown as written by Lena
    assert "<strong>+44 7700 900555</strong>" in item
    # The Inbox's pane says the same.
    conversation_id = page["c"].rsplit("/", 1)[1]
    pane = client.get(f"/inbox/conversations/{conversation_id}", headers={"HX-Request": "true"})
    assert "From +44 7700 900555, assigned by Ada Lovelace" in re.sub(
        r"\s+", " ", pane.get_data(as_text=True)
    )


def test_the_thread_costs_the_same_queries_for_3_or_30_messages(client, page, app) -> None:
    from sqlalchemy import event

    def queries_for_thread() -> int:
        count = 0

        def counter(*args, **kwargs) -> None:
            nonlocal count
            count += 1

        event.listen(db.engine, "before_cursor_execute", counter)
        try:
            assert (
                client.get(f"{page['c']}/thread?tab=sms", headers={"HX-Request": "true"}).status_code == 200
            )
        finally:
            event.remove(db.engine, "before_cursor_execute", counter)
        return count

    for i in range(2):
        post(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, f"Reply {i}"))
    few = queries_for_thread()
    for i in range(27):
        post(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, f"More {i}"))
    assert queries_for_thread() == few
