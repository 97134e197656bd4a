"""The messaging panel over HTTP: tabs per channel, the composer, its errors, the counter."""

from __future__ import annotations

import re

import pytest

from tests import factories as f
from tests.conftest import csrf_from
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.models import Message


@pytest.fixture
def pages(app, auth):
    acme = f.messaging_org("Acme", sender_name="Acme")
    globex = f.org("Globex")
    recruiter = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    manager = f.user(acme, "manager@acme.test", name="Morgan Patel")
    g_recruiter = f.user(globex, "recruiter@globex.test", codes=[permissions.RECRUITMENT_SMS])
    f.number(acme, "+4915123456700")
    job = f.job(acme, team=[recruiter, manager], title="Backend Engineer")
    lena = f.application(job, f.candidate(acme, "Lena", "Müller", mobile="+4915123456789"))
    g_app = f.application(f.job(globex, team=[g_recruiter]), f.candidate(globex, "Homer", "Jay"))
    f.credits(acme, 10)
    db.session.commit()
    # A conversation's routes and the ids in its partials carry the conversation's id, not the
    # application's: the numbers differ here so that a test mixing them up fails.
    g_conversation = f.conversation_url(g_app)
    conversation = f.conversation_url(lena)
    assert conversation != f"/conversations/{lena.id}"
    return {
        "lena": lena,
        "g_app": g_app,
        "c": conversation,
        "g_c": g_conversation,
        "uid": conversation.split("/")[-1],
    }


def post(client, url, data, htmx=True):
    token = csrf_from(client, "/jobs")
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(url, data={**data, "csrf_token": token}, headers=headers)


def test_recruiter_sends_an_sms_and_sees_it_in_the_sms_tab(client, auth, pages) -> None:
    auth.login("recruiter@acme.test")
    url = f"/applications/{pages['lena'].id}"
    page = client.get(url).get_data(as_text=True)
    lena = pages["uid"]
    assert re.findall(rf'id="tab-{lena}-(\w+)"', page) == ["email", "sms", "whatsapp"]
    assert 'name="channel" value="sms" checked' in page

    response = post(client, f"{pages['c']}/messages", {"channel": "sms", "body": "Hi %FIRSTNAME% 😀"})
    assert response.status_code == 200
    # The thread comes with the answer; other regions hear of it after the swap.
    assert response.headers["HX-Trigger-After-Settle"] == "messages-changed"
    assert response.headers["HX-Push-Url"] == f"{url}?tab=sms"
    html = response.get_data(as_text=True)
    assert "Hi Lena 😀" in html and "Riley Chen" in html
    assert re.search(rf'id="tab-{lena}-sms"[^>]*aria-selected="true"', html)
    # A fresh composer (the form swaps itself), and the thread out of band.
    assert re.search(rf'<form id="composer-{lena}"[^>]*hx-target="this"', html)
    assert re.search(rf'<div id="thread-{lena}"[^>]*hx-swap-oob="true"', html)
    assert 'data-follow="newest"' in html  # the thread shows the message just sent
    assert db.session.query(Message).one().status in ("submitted", "delivered")


def test_no_js_send_redirects_back_to_the_tab(client, auth, pages) -> None:
    auth.login("recruiter@acme.test")
    response = post(client, f"{pages['c']}/messages", {"channel": "sms", "body": "Hello"}, htmx=False)
    assert response.status_code == 303 and response.headers["Location"].endswith("?tab=sms")
    assert "SMS message queued." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_refused_send_keeps_the_text_and_says_why(client, auth, pages) -> None:
    auth.login("recruiter@acme.test")
    url = f"{pages['c']}/messages"
    typed = "A long careful message that must not be lost. " * 40
    response = post(client, url, {"channel": "sms", "body": typed})
    assert response.status_code == 422
    assert "HX-Retarget" not in response.headers  # the form swaps itself
    assert response.get_data(as_text=True).lstrip().startswith(f'<form id="composer-{pages["uid"]}"')
    html = response.get_data(as_text=True)
    assert "the limit is 10" in html and typed.strip() in html
    # Without htmx the whole page comes back, text and reason included.
    page = post(client, url, {"channel": "sms", "body": typed}, htmx=False).get_data(as_text=True)
    assert "the limit is 10" in page and typed.strip() in page and "<html" in page
    assert db.session.query(Message).count() == 0


def test_manager_sees_history_but_no_texting_composer(client, auth, pages) -> None:
    auth.login("recruiter@acme.test")
    post(client, f"{pages['c']}/messages", {"channel": "sms", "body": "From Riley"})
    auth.logout()
    auth.login("manager@acme.test")
    html = client.get(f"/applications/{pages['lena'].id}?tab=sms").get_data(as_text=True)
    assert "From Riley" in html
    assert re.findall(r'type="radio" name="channel" value="(\w+)"', html) == ["email"]
    assert "needs the permission “Recruitment – SMS” (Candidate management)" in html
    forced = post(client, f"{pages['c']}/messages", {"channel": "sms", "body": "x"})
    assert forced.status_code == 422 and "Recruitment – SMS" in forced.get_data(as_text=True)


def test_globex_has_email_only(client, auth, pages) -> None:
    auth.login("recruiter@globex.test")
    html = client.get(f"/applications/{pages['g_app'].id}").get_data(as_text=True)
    assert re.findall(rf'id="tab-{pages["g_c"].split("/")[-1]}-(\w+)"', html) == ["email"]
    assert re.findall(r'type="radio" name="channel" value="(\w+)"', html) == ["email"]
    assert "Recruitment – SMS" not in html and "credits left" not in html


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Hello %FIRSTNAME%", ["10 of 160 GSM-7 units", "1 segment", "1 credit"]),
        (
            "Price 10 € " + "a" * 150,
            ["162 of 160 GSM-7 units", "2 segments", "2 credits", "up to 153 units each"],
        ),
        ("Hej ç 😀", ["UCS-2", "UCS-2 because of <code>ç</code> and <code>😀</code>"]),
        # The units that decide the segments, and the character that counts double, named.
        ("a" * 69 + "👍", ["71 of 70 UCS-2 units", "2 segments", "<code>👍</code> counts 2 units"]),
        ("a" * 159 + "€", ["161 of 160 GSM-7 units", "2 segments", "<code>€</code> counts 2 units"]),
    ],
)
def test_live_counter(client, auth, pages, body, expected) -> None:
    auth.login("recruiter@acme.test")
    response = post(client, f"{pages['c']}/preview", {"channel": "sms", "body": body})
    html = re.sub(r"\s+", " ", response.get_data(as_text=True))
    for piece in expected:
        assert piece in html
    assert "10 credits left" in html


def test_thread_fragment_and_other_organisations(client, auth, pages) -> None:
    auth.login("recruiter@acme.test")
    fragment = client.get(f"{pages['c']}/thread?tab=email", headers={"HX-Request": "true"})
    assert fragment.get_data(as_text=True).lstrip().startswith(f'<div id="thread-{pages["uid"]}"')
    # Without htmx, the thread's address leads to the page it lives on.
    assert (
        client.get(f"{pages['c']}/thread?tab=email")
        .headers["Location"]
        .endswith(f"/applications/{pages['lena'].id}?tab=email")
    )
    assert client.get(f"{pages['g_c']}/thread?tab=email").status_code == 404
    other = post(client, f"{pages['g_c']}/messages", {"channel": "email", "body": "x"})
    assert other.status_code == 404


def counter_of(html: str) -> str:
    """The counter's text, tags and runs of spaces removed."""
    start = html.index('<div id="counter-')
    block = html[start : html.index("</div>", start)]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", block)).strip()


def version_of(html: str) -> str:
    return re.search(r'data-version="([^"]+)"', html).group(1)


def test_a_send_shows_what_the_dispatcher_did_meanwhile(client, auth, pages, monkeypatch) -> None:
    """The dispatcher (another thread or process) may mark the email sent before the answer is rendered:
    the screen must then say Sent, or at least poll with a version that brings it."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from webapp.messaging import dispatch

    def dispatcher_elsewhere(message_id: int) -> None:
        with db.engine.begin() as conn:  # not the request's session
            conn.execute(
                sa.update(Message)
                .where(Message.id == message_id)
                .values(status="sent", updated_at=datetime.now(UTC))
            )

    monkeypatch.setattr(dispatch, "enqueue", dispatcher_elsewhere)
    auth.login("recruiter@acme.test")
    url = pages["c"]
    sent = post(client, f"{url}/messages", {"channel": "email", "subject": "Hello", "body": "Hi %FIRSTNAME%"})
    html = sent.get_data(as_text=True)
    shown = re.search(r'data-status="(\w+)"', html).group(1)
    poll = client.get(
        f"{url}/thread",
        query_string={"tab": "email", "since": version_of(html)},
        headers={"HX-Request": "true"},
    )
    caught_up = poll.status_code == 200 and 'data-status="sent"' in poll.get_data(as_text=True)
    assert shown == "sent" or caught_up


def test_an_opted_out_number_is_refused_before_send(client, auth, pages) -> None:
    from webapp.messaging import optouts

    lena = pages["lena"]
    stop = Message(channel="sms", direction="inbound", body="STOP", status="received", provider_id="stop-1")
    db.session.add(stop)
    db.session.flush()
    optouts.opt_out(db.session, lena.job.organization_id, lena.candidate.mobile, stop)
    db.session.commit()
    auth.login("recruiter@acme.test")
    page = client.get(f"/applications/{lena.id}?tab=sms").get_data(as_text=True)
    counter = counter_of(page)
    assert "has opted out of texts" in counter and "credit" not in counter
    preview = post(client, f"{pages['c']}/preview", {"channel": "whatsapp", "body": "Hi"})
    assert "has opted out of texts" in counter_of(preview.get_data(as_text=True))
    email = post(client, f"{pages['c']}/preview", {"channel": "email", "body": "Hi"})
    assert "email is free" in counter_of(email.get_data(as_text=True))


def test_an_opt_out_refusal_is_said_once(client, auth, pages) -> None:
    """A send refused because the number opted out says so once: the counter's line under the text
    becomes the error, and "Send as" does not repeat it."""
    from webapp.messaging import optouts

    lena = pages["lena"]
    stop = Message(channel="sms", direction="inbound", body="STOP", status="received", provider_id="stop-1")
    db.session.add(stop)
    db.session.flush()
    optouts.opt_out(db.session, lena.job.organization_id, lena.candidate.mobile, stop)
    db.session.commit()
    auth.login("recruiter@acme.test")
    for channel in ("sms", "whatsapp"):
        refused = post(client, f"{pages['c']}/messages", {"channel": channel, "body": "Hi"})
        assert refused.status_code == 422
        html = refused.get_data(as_text=True)
        assert html.count("has opted out of texts from your organisation") == 1, channel
        error = re.search(r'<p class="[^"]*field-error[^"]*" data-counter="blocked"[^>]*role="alert"', html)
        assert error, channel
    # Before any send, the counter says it without alarm.
    preview = post(client, f"{pages['c']}/preview", {"channel": "sms", "body": "Hi"}).get_data(as_text=True)
    assert preview.count("has opted out") == 1 and 'role="alert"' not in preview
    assert db.session.query(Message).filter_by(direction="outbound").count() == 0


def test_whatsapp_counter_says_the_price_on_an_empty_box(client, auth, pages) -> None:
    f.open_whatsapp_window(pages["lena"])
    db.session.commit()
    auth.login("recruiter@acme.test")
    url = f"{pages['c']}/preview"
    empty = post(client, url, {"channel": "whatsapp", "body": ""})
    assert "0 characters · 1 credit per WhatsApp message" in counter_of(empty.get_data(as_text=True))


def test_an_approved_template_shows_what_the_candidate_will_read(client, auth, pages) -> None:
    template = f.whatsapp_template(pages["lena"].job.organization)
    db.session.commit()
    auth.login("recruiter@acme.test")
    url = f"{pages['c']}/preview"
    chosen = post(client, url, {"channel": "whatsapp", "body": "", "whatsapp_template_id": str(template.id)})
    counter = counter_of(chosen.get_data(as_text=True))
    assert "Lena will read: Hi Lena, can we talk about Backend Engineer? Reply here." in counter
    assert "1 credit per WhatsApp message" in counter
    none = counter_of(post(client, url, {"channel": "whatsapp", "body": ""}).get_data(as_text=True))
    assert "Choose an approved template to see what Lena will read" in none
    # Another organisation's template id shows nothing of it.
    other = f.whatsapp_template(f.org("Initech"), name="secret", body="Secret {{1}}")
    db.session.commit()
    foreign = post(client, url, {"channel": "whatsapp", "body": "", "whatsapp_template_id": str(other.id)})
    assert "Secret" not in foreign.get_data(as_text=True)


def test_the_missing_right_is_said_once(client, auth, pages) -> None:
    auth.login("manager@acme.test")
    url = f"{pages['c']}/messages"
    refused = post(client, url, {"channel": "sms", "body": "x"}).get_data(as_text=True)
    assert refused.count("needs the permission “Recruitment – SMS”") == 1
    assert 'class="notice notice-error"' in refused and 'role="alert"' in refused
