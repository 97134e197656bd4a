"""Send later in the interview invitation's composer (issue #20 §1): a picked time schedules the
invitation (its link valid from when it leaves), the page says so; for several candidates one picked
time that is night for some of them moves, for those, to their next allowed moment, and the report
says who waits for when. The clock is injected (the modules' `utcnow`); nothing sleeps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.conftest import csrf_from
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.interviews import invitations
from webapp.messaging import compose
from webapp.models import InterviewSlot, Invitation, Message
from webapp.web import composer
from webapp.web.interviews import routes

# Tuesday 8 Dec 2026, 10:00 in Berlin (the organisation's zone), 03:00 in Austin.
NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
# Wednesday 14:00 in Berlin: 07:00 in Austin, before Texas's 09:00.
PICKED, PICKED_UTC = "2026-12-09T14:00", datetime(2026, 12, 9, 13, 0, tzinfo=UTC)
TEX_MORNING = datetime(2026, 12, 9, 15, 0, tzinfo=UTC)  # Wednesday 09:00 in Austin
BODY = "Hi %FIRSTNAME%, book here: %INVITELINK%"


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"QUIET_HOURS": True, "PUBLIC_BASE_URL": "https://relay.example"}


@pytest.fixture
def world(app, auth, monkeypatch):
    for module in (compose, composer, routes):
        monkeypatch.setattr(module, "utcnow", lambda: NOW)
    acme = f.messaging_org("Acme", sender_name="Acme", time_zone="Europe/Berlin")
    riley = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    for e164 in ("+4915123456700", "+15125550100"):
        f.number(acme, e164)
    job = f.job(acme, team=[riley], title="Backend Engineer")
    lena = f.application(job, f.candidate(acme, "Lena", "Müller", mobile="+4915123456789"))
    tex = f.application(job, f.candidate(acme, "Tex", "Ritter", mobile="+15125550123"))
    f.credits(acme, 20)
    db.session.add(
        InterviewSlot(job_id=job.id, starts_at=NOW + timedelta(days=3), minutes=30, place="Room 3")
    )
    db.session.commit()
    auth.login("recruiter@acme.test")
    return {"org": acme, "job": job, "lena": lena, "tex": tex}


def html(response) -> str:
    return response.get_data(as_text=True)


def test_one_invitation_at_a_picked_time_waits_for_it_its_link_valid_from_then(client, world) -> None:
    lena = world["lena"]
    path = f"/applications/{lena.id}/invite"
    page = html(client.get(path))
    assert "<summary>Send later</summary>" in page and "Their morning" in page
    assert "Follow up if no reply" not in page
    data = {"csrf_token": csrf_from(client, path), "channel": "sms", "body": BODY, "send_at": PICKED}
    response = client.post(path, data=data, follow_redirects=True)
    message = db.session.scalar(sa.select(Message))
    assert (message.status, message.send_at) == ("scheduled", PICKED_UTC)
    invitation = db.session.scalar(sa.select(Invitation))
    assert invitation.expires_at == PICKED_UTC + invitations.VALID_FOR
    assert credits.balance(db.session, world["org"]) == 19  # paid when scheduled
    assert "Invitation by SMS scheduled for Wed 09 Dec 14:00 CET (your time)" in html(response)
    assert "Scheduled for Wed 09 Dec 14:00" in html(response)


def test_a_picked_time_at_night_for_one_candidate_is_refused_beside_send_at(client, world) -> None:
    tex = world["tex"]
    path = f"/applications/{tex.id}/invite"
    data = {"csrf_token": csrf_from(client, path), "channel": "sms", "body": BODY, "send_at": PICKED}
    response = client.post(path, data=data)
    assert response.status_code == 422
    assert re.search(r'id="send-at-error">At that time it is Wed 07:00 for them: Texas law', html(response))
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_one_time_for_many_moves_for_those_asleep_then_and_the_report_says_when(client, world) -> None:
    job, lena, tex = world["job"], world["lena"], world["tex"]
    path = f"/jobs/{job.id}/invite"
    page = html(client.get(f"{path}?application={lena.id}&application={tex.id}"))
    assert "<summary>Send later</summary>" in page and "Their morning" not in page
    token = csrf_from(client, f"{path}?application={lena.id}&application={tex.id}")
    counter = html(
        client.post(
            "/interviews/preview",
            data={
                "csrf_token": token,
                "channel": "sms",
                "body": BODY,
                "send_at": PICKED,
                "job": job.id,
                "application": [lena.id, tex.id],
            },
        )
    )
    line = re.search(r'data-counter="hours" data-hours="later">([^<]*)</p>', counter)
    assert line and line.group(1) == (
        "Sends Wed 14:00 your time. Anyone for whom it is night then gets it at the next time their hours "
        "allow."
    )
    data = {
        "csrf_token": token,
        "channel": "sms",
        "body": BODY,
        "send_at": PICKED,
        "application": [lena.id, tex.id],
    }
    report = html(client.post(path, data=data))
    sent = {m.to_addr: m for m in db.session.scalars(sa.select(Message))}
    assert sent["+4915123456789"].send_at == PICKED_UTC
    assert sent["+15125550123"].send_at == TEX_MORNING
    assert {m.status for m in sent.values()} == {"scheduled"}
    assert "2 of 2 sent (2 of them wait for their time)." in report
    assert "Scheduled for Wed 09 Dec 14:00" in report and "Scheduled for Wed 09 Dec 16:00" in report
