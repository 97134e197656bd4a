"""Bulk messages' pages (issue 22 §1): Message selected → composer → Preview (lines, totals, refusal)
→ Send → the progress page and its poll, Cancel the rest, the CSV report; another's batch is a 404."""

from __future__ import annotations

import pytest

from tests import factories as f
from tests.conftest import csrf_from
from webapp.accounts import permissions
from webapp.extensions import db


@pytest.fixture
def app_config(fake) -> dict[str, object]:
    return {
        **fake.app_settings(),
        "QUIET_HOURS": False,
        "VONAGE_RATE_PER_SECOND": 0.0,
        "SEND_RATE_PER_NUMBER": 0.0,
    }


@pytest.fixture
def world(app):
    acme = f.messaging_org("Acme", sender_name="Acme")
    recruiter = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    other = f.user(acme, "other@acme.test", codes=[permissions.RECRUITMENT_SMS])
    f.number(acme, "+4915123456700")
    job = f.job(acme, team=[recruiter, other], title="Backend Engineer")
    apps = [
        f.application(job, f.candidate(acme, f"Cand{i}", "Test", mobile=f"+49151234567{i:02d}")).id
        for i in range(12)
    ]
    apps.append(f.application(job, f.candidate(acme, "Nomo", "Bile", mobile=None)).id)
    f.credits(acme, 20)
    db.session.commit()
    return {"job": job.id, "apps": apps, "org": acme}


def form(client, world, **extra):
    return {
        "csrf_token": csrf_from(client, "/jobs"),
        "application": [str(i) for i in world["apps"]],
        "channel": "sms",
        "body": "Hi %FIRSTNAME%, news about %JOBTITLE%.",
        **extra,
    }


def test_message_selected_preview_send_progress_report(client, auth, world, fake) -> None:
    auth.login("recruiter@acme.test")
    job = world["job"]
    listing = client.get(f"/jobs/{job}")
    assert b'id="message-selected"' in listing.data
    page = client.get(f"/jobs/{job}/message", query_string={"application": world["apps"]})
    assert page.status_code == 200 and b"Message 13 people" in page.data

    drafted = client.post(f"/jobs/{job}/message/preview", data=form(client, world))
    assert drafted.status_code == 303
    progress_url = drafted.headers["Location"]  # the draft's page: a reload shows it again, checks nothing
    preview = client.get(progress_url)
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200, text
    assert "Hi Cand0, news about Backend Engineer." in text
    assert "Nomo Bile has no mobile number." in text
    assert "12 will be sent; 1 skipped" in text and "12 credits; your balance is 20" in text

    # "Change the message" opens the composer as it was left: the same people, the same text.
    change = text.split('id="bulk-change" href="')[1].split('"')[0].replace("&amp;", "&")
    again = client.get(change).get_data(as_text=True)
    assert "Message 13 people" in again and "Hi %FIRSTNAME%, news about %JOBTITLE%.</textarea>" in again
    assert client.get(f"/jobs/{job}/message", query_string={"draft": 10**6}).status_code == 404

    searched = client.get(progress_url, query_string={"q": "cand1"}, headers={"HX-Request": "true"})
    body = searched.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="bulk-lines">') and "Cand10" in body and "Cand2 " not in body
    assert "3 of 13 people matching" in body

    auth.logout()
    auth.login("other@acme.test")  # a colleague on the team: neither sees nor sends another's draft
    token = csrf_from(client, "/jobs")
    assert client.get(progress_url).status_code == 404
    assert client.post(progress_url + "/send", data={"csrf_token": token}).status_code == 404
    auth.logout()
    auth.login("recruiter@acme.test")

    token = csrf_from(client, "/jobs")
    sent = client.post(progress_url + "/send", data={"csrf_token": token})
    assert sent.status_code == 303 and sent.headers["Location"] == progress_url
    assert len({r.body.get("client_ref") for r in fake.requests if r.body}) == 12
    again = client.post(progress_url + "/send", data={"csrf_token": token}, follow_redirects=True)
    assert again.status_code == 422 and "was sent already" in again.get_data(as_text=True)
    assert len([r for r in fake.requests if r.body and r.body.get("client_ref")]) == 12
    progress = client.get(progress_url).get_data(as_text=True)
    assert "Done" in progress and "13 of 13 handled (100%)" in progress
    poll = client.get(progress_url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert poll.lstrip().startswith("<section") and "hx-trigger" not in poll
    # The poll sends back what it shows: unchanged, it is answered 204 and nothing is drawn.
    stamp = "done-12-0-1-0-0"  # state, then sent, scheduled, refused, failed, cancelled
    hx = {"HX-Request": "true"}
    assert client.get(progress_url, query_string={"seen": stamp}, headers=hx).status_code == 204
    assert (
        client.get(progress_url, query_string={"seen": "running-11-0-1-0-0"}, headers=hx).status_code == 200
    )
    report = client.get(progress_url + "/report.csv")
    assert report.headers["Content-Type"].startswith("text/csv")
    lines = report.get_data(as_text=True).splitlines()
    assert lines[0] == "Name,Outcome,Reason" and len(lines) == 14
    assert lines[-1].startswith("Nomo Bile,refused,")

    auth.logout()
    auth.login("other@acme.test")
    assert client.get(progress_url).status_code == 404
    assert client.get(progress_url + "/report.csv").status_code == 404


def test_credits_that_do_not_cover_refuse_on_the_preview_and_at_send(client, auth, world, fake) -> None:
    auth.login("recruiter@acme.test")
    job = world["job"]
    body = "x" * 161  # two segments each: 24 credits, 20 in the balance
    preview = client.post(f"/jobs/{job}/message/preview", data=form(client, world, body=body))
    text = client.get(preview.headers["Location"]).get_data(as_text=True)
    assert "cost 24 credits and your balance is 20" in text and 'id="bulk-send"' not in text
    token = csrf_from(client, "/jobs")
    refused = client.post(
        preview.headers["Location"] + "/send", data={"csrf_token": token}, follow_redirects=True
    )
    assert refused.status_code == 422 and "cost 24 credits" in refused.get_data(as_text=True)
    assert not fake.requests


def test_a_communitys_members_are_messaged_each_in_their_own_conversation(client, auth, world, fake) -> None:
    acme = world["org"]
    acme.has_crm = True
    sourcer = f.user(acme, "sourcer@acme.test", codes=[permissions.SOURCING_MESSAGING])
    community = f.community(acme, "Rust people", team=[sourcer])
    members = [
        f.membership(community, f.prospect(acme, f"Pro{i}", "Spect", mobile=f"+49151234568{i:02d}")).id
        for i in range(4)
    ]
    other = f.community(acme, "Not theirs")
    hidden = f.membership(other, f.prospect(acme, "Hid", "Den", mobile="+4915123456900")).id
    db.session.commit()
    auth.login("sourcer@acme.test")
    listing = client.get(f"/communities/{community.id}").get_data(as_text=True)
    assert 'id="message-selected-members"' in listing and 'form="message-members"' in listing
    data = {
        "csrf_token": csrf_from(client, "/communities"),
        "membership": [str(i) for i in [*members, hidden]],
        "channel": "sms",
        "body": "Hi %FIRSTNAME%, about %JOBTITLE%.",
    }
    drafted = client.post(f"/communities/{community.id}/message/preview", data=data)
    preview = client.get(drafted.headers["Location"]).get_data(as_text=True)
    assert (
        "Preview: 4 messages" in preview
        and "Hi Pro0, about Rust people." in preview
        and "Hid Den" not in preview
    )
    sent = client.post(drafted.headers["Location"] + "/send", data={"csrf_token": data["csrf_token"]})
    assert sent.status_code == 303
    assert len({r.body.get("client_ref") for r in fake.requests if r.body}) == 4
    import sqlalchemy as sa

    from webapp.models import Conversation

    talked = set(db.session.scalars(sa.select(Conversation.community_membership_id)))
    assert talked == set(members)
    assert (
        client.get(f"/communities/{other.id}/message", query_string={"membership": hidden}).status_code == 404
    )


def test_a_line_moved_out_of_their_night_says_when_it_leaves_on_both_clocks(client, auth, app, monkeypatch):
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from webapp.messaging import bulk, compose

    app.config["QUIET_HOURS"] = True
    night = datetime(2026, 12, 8, 23, 10, tzinfo=ZoneInfo("America/Chicago")).astimezone(UTC)
    for module in (bulk, compose):
        monkeypatch.setattr(module, "utcnow", lambda: night)
    acme = f.messaging_org("Acme", sender_name="Acme", time_zone="Europe/Berlin")
    riley = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS])
    f.number(acme, "+15125550100")
    job = f.job(acme, team=[riley], title="Backend Engineer")
    texan = f.application(job, f.candidate(acme, "Tex", "Ritter", mobile="+15125550123"))
    f.credits(acme, 5)
    db.session.commit()
    auth.login("recruiter@acme.test")
    fields = {
        "csrf_token": csrf_from(client, "/jobs"),
        "application": [str(texan.id)],
        "channel": "sms",
        "body": "Hi",
    }
    drafted = client.post(f"/jobs/{job.id}/message/preview", data=fields)
    assert drafted.status_code == 303
    text = client.get(drafted.headers["Location"]).get_data(as_text=True)
    # 09:00 in Austin is 16:00 in Berlin, where the organisation reads.
    assert "Outside their hours now: leaves Wed 09 Dec 16:00 CET your time (Wed 09:00 in Texas)" in text
