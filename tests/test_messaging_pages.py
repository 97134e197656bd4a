"""The messaging panel over HTTP: tabs per channel, the composer, its errors, the counter."""

from __future__ import annotations

import re

import pytest

from tests import factories as f
from tests.conftest import csrf_from
from webapp import permissions
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
    return {"lena": lena, "g_app": g_app}


def post(client, url, data, htmx=True):
    token = csrf_from(client, "/jobs")
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(url, data={**data, "csrf_token": token}, headers=headers)


def test_recruiter_sends_an_sms_and_sees_it_in_the_sms_tab(client, auth, pages) -> None:
    auth.login("recruiter@acme.test")
    url = f"/applications/{pages['lena'].id}"
    page = client.get(url).get_data(as_text=True)
    assert re.findall(r'id="tab-(\w+)"', page) == ["email", "sms", "whatsapp"]
    assert 'name="channel" value="sms" checked' in page

    response = post(client, f"{url}/messages", {"channel": "sms", "body": "Hi %FIRSTNAME% 😀"})
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "messages-changed"
    html = response.get_data(as_text=True)
    assert "Hi Lena 😀" in html and "Riley Chen" in html and 'aria-selected="true" id="tab-sms"' in html
    assert 'hx-swap-oob="true"' in html  # a fresh composer
    assert db.session.query(Message).one().status in ("submitted", "delivered")


def test_no_js_send_redirects_back_to_the_tab(client, auth, pages) -> None:
    auth.login("recruiter@acme.test")
    url = f"/applications/{pages['lena'].id}"
    response = post(client, f"{url}/messages", {"channel": "sms", "body": "Hello"}, htmx=False)
    assert response.status_code == 303 and response.headers["Location"].endswith("?tab=sms")
    assert "SMS message queued." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_refused_send_keeps_the_text_and_says_why(client, auth, pages) -> None:
    auth.login("recruiter@acme.test")
    url = f"/applications/{pages['lena'].id}/messages"
    typed = "A long careful message that must not be lost. " * 40
    response = post(client, url, {"channel": "sms", "body": typed})
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#composer"
    html = response.get_data(as_text=True)
    assert "the limit is 10" in html and typed.strip() in html
    # Without htmx the whole page comes back, text and reason included.
    page = post(client, url, {"channel": "sms", "body": typed}, htmx=False).get_data(as_text=True)
    assert "the limit is 10" in page and typed.strip() in page and "<html" in page
    assert db.session.query(Message).count() == 0


def test_manager_sees_history_but_no_texting_composer(client, auth, pages) -> None:
    auth.login("recruiter@acme.test")
    post(client, f"/applications/{pages['lena'].id}/messages", {"channel": "sms", "body": "From Riley"})
    auth.logout()
    auth.login("manager@acme.test")
    html = client.get(f"/applications/{pages['lena'].id}?tab=sms").get_data(as_text=True)
    assert "From Riley" in html
    assert re.findall(r'type="radio" name="channel" value="(\w+)"', html) == ["email"]
    assert "needs the permission “Recruitment – SMS” (Candidate management)" in html
    forced = post(client, f"/applications/{pages['lena'].id}/messages", {"channel": "sms", "body": "x"})
    assert forced.status_code == 422 and "Recruitment – SMS" in forced.get_data(as_text=True)


def test_globex_has_email_only(client, auth, pages) -> None:
    auth.login("recruiter@globex.test")
    html = client.get(f"/applications/{pages['g_app'].id}").get_data(as_text=True)
    assert re.findall(r'id="tab-(\w+)"', html) == ["email"]
    assert re.findall(r'type="radio" name="channel" value="(\w+)"', html) == ["email"]
    assert "Recruitment – SMS" not in html and "credits left" not in html


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Hello %FIRSTNAME%", ["10 characters", "GSM-7", "1 segment", "1 credit"]),
        ("Price 10 € " + "a" * 150, ["GSM-7", "2 segments", "2 credits", "153 per segment"]),
        ("Hej ç 😀", ["UCS-2", "UCS-2 because of <code>ç</code>, <code>😀</code>"]),
    ],
)
def test_live_counter(client, auth, pages, body, expected) -> None:
    auth.login("recruiter@acme.test")
    response = post(
        client, f"/applications/{pages['lena'].id}/compose/preview", {"channel": "sms", "body": body}
    )
    html = re.sub(r"\s+", " ", response.get_data(as_text=True))
    for piece in expected:
        assert piece in html
    assert "10 credits left" in html


def test_thread_fragment_and_other_organisations(client, auth, pages) -> None:
    auth.login("recruiter@acme.test")
    fragment = client.get(
        f"/applications/{pages['lena'].id}/messages?tab=email", headers={"HX-Request": "true"}
    )
    assert fragment.get_data(as_text=True).lstrip().startswith('<div id="thread"')
    assert client.get(f"/applications/{pages['g_app'].id}/messages?tab=email").status_code == 404
    other = post(client, f"/applications/{pages['g_app'].id}/messages", {"channel": "email", "body": "x"})
    assert other.status_code == 404
