"""Send later and quiet hours in the composer over HTTP (issue #20): the counter says before Send what
will happen (moved to their morning, sent at a picked time on both clocks, refused at night), Send stores
it scheduled and hands nothing to dispatch, and the thread's Edit and Cancel change it until it leaves.
The clock is injected (the modules' `utcnow`); nothing sleeps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.conftest import csrf_from
from webapp.accounts import permissions
from webapp.billing import credits
from webapp.extensions import db
from webapp.messaging import compose, scheduled
from webapp.models import Conversation, ConversationEvent, Message
from webapp.web import composer

HX = {"HX-Request": "true"}
# Tuesday 8 Dec 2026, 23:10 in Austin (06:10 in Berlin, the organisation's zone, on Wednesday).
NIGHT = datetime(2026, 12, 8, 23, 10, tzinfo=ZoneInfo("America/Chicago")).astimezone(UTC)


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"QUIET_HOURS": True}


@pytest.fixture
def clock(monkeypatch):
    """The app's clock, where the composer and compose read it."""
    now = {"at": NIGHT}
    for module in (compose, composer, scheduled):
        monkeypatch.setattr(module, "utcnow", lambda: now["at"])
    return now


@pytest.fixture
def tex(app, auth, clock):
    acme = f.messaging_org("Acme", sender_name="Acme", time_zone="Europe/Berlin")
    riley = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.number(acme, "+15125550100")
    job = f.job(acme, team=[riley])
    application = f.application(job, f.candidate(acme, "Tex", "Ritter", mobile="+15125550123"))
    f.credits(acme, 10)
    db.session.commit()
    auth.login("recruiter@acme.test")
    return {"org": acme, "application": application, "c": f.conversation_url(application)}


def post(client, url, data, htmx=True):
    token = csrf_from(client, "/jobs")
    return client.post(url, data={**data, "csrf_token": token}, headers=HX if htmx else {})


def counter(client, tex, **data) -> str:
    html = post(client, f"{tex['c']}/preview", {"channel": "sms", "body": "Hi", **data}).get_data(
        as_text=True
    )
    found = re.search(r'data-counter="hours" data-hours="(\w+)">(.*?)</p>', html, re.S)
    assert found, html
    return f"{found.group(1)}: {unescape(re.sub(r'<[^>]+>', '', found.group(2)))}"


def test_the_counter_says_before_send_that_a_text_at_night_waits_for_their_morning(client, tex) -> None:
    # On both clocks, and which law holds it: Texas's (09:00), not the federal one (08:00), is named.
    assert counter(client, tex) == (
        "moved: It is 23:10 in Texas. Sends tomorrow at 09:00 their time · Wed 16:00 your time. "
        "Texas law allows texts 09:00–21:00 their time, Sun 12:00–21:00; it cannot be set aside."
    )


def test_held_by_the_organisations_days_alone_the_counter_says_a_reason_sends_it_now(
    client, tex, clock
) -> None:
    clock["at"] = datetime(2026, 12, 12, 10, 0, tzinfo=ZoneInfo("America/Chicago")).astimezone(UTC)  # Sat
    assert counter(client, tex) == (
        "moved: It is 10:00 in Texas. Sends Mon 14 Dec at 09:00 their time · Mon 16:00 your time. "
        "To send now, give a reason under Send later."
    )


def test_held_by_the_law_then_by_the_organisations_days_the_counter_names_both(client, tex, clock) -> None:
    # Sunday 09:15 in Austin: Texas allows texts from 12:00 on Sundays, the organisation Monday to Friday.
    clock["at"] = datetime(2026, 12, 13, 9, 15, tzinfo=ZoneInfo("America/Chicago")).astimezone(UTC)
    assert counter(client, tex) == (
        "moved: It is 09:15 in Texas. Sends tomorrow at 09:00 their time · Mon 16:00 your time. "
        "Texas law allows texts 09:00–21:00 their time, Sun 12:00–21:00; it cannot be set aside. "
        "After that, your organisation's hours hold it (Mon–Fri 08:00–20:00 their time)."
    )


def test_whatsapp_free_text_whose_window_closes_before_their_morning_is_refused_before_send_as_at_send(
    client, tex
) -> None:
    conversation = db.session.get(Conversation, int(tex["c"].rsplit("/", 1)[1]))
    conversation.whatsapp_window_ends_at = NIGHT.replace(hour=8)  # 02:10 in Austin, 09:10 in Berlin
    db.session.commit()
    said = counter(client, tex, channel="whatsapp")
    assert said.startswith(
        "refused: Their hours open after the WhatsApp window closes (Wed 09 Dec 09:10 CET)."
    )
    assert said.endswith("Send an approved WhatsApp template instead.")  # the law holds it: no reason helps
    response = post(client, f"{tex['c']}/messages", {"channel": "whatsapp", "body": "Hi"})
    assert response.status_code == 422
    assert "Their hours open after the WhatsApp window closes" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_the_counter_gives_a_picked_time_on_both_clocks_or_says_why_not(client, tex) -> None:
    # Wednesday 16:00 in Berlin is 09:00 in Austin; 14:00 in Berlin is 07:00 there.
    assert counter(client, tex, send_at="2026-12-09T16:00") == (
        "later: Sends Wed 09:00 in Texas · Wed 16:00 your time."
    )
    refused = counter(client, tex, send_at="2026-12-09T14:00")
    assert refused.startswith("refused: At that time it is Wed 07:00 for them: Texas law")
    assert "The first time it can go: Wed 09:00 in Texas." in refused
    assert counter(client, tex, send_at="not a time").startswith("refused: Pick a date and a time")


def test_each_count_brings_the_quick_choices_as_of_now_out_of_band(client, tex, clock) -> None:
    def quick() -> list[str]:
        html = post(client, f"{tex['c']}/preview", {"channel": "sms", "body": "Hi"}).get_data(as_text=True)
        assert re.search(r'<p class="quick-times" id="quick-times-\d+" hx-swap-oob="true">', html), html
        return re.findall(r'data-send-at="([^"]*)"', html)

    # Tuesday 23:10 in Austin (Wednesday 06:10 in Berlin): their morning, in an hour, now.
    assert quick() == ["2026-12-09T16:00", "2026-12-09T07:10", ""]
    clock["at"] = datetime(2026, 12, 9, 16, 0, tzinfo=UTC)  # a page left open until 10:00 in Austin
    assert quick() == ["2026-12-10T16:00", "2026-12-09T18:00", ""]


def test_send_at_night_stores_it_for_their_morning_and_hands_nothing_to_dispatch(client, tex) -> None:
    response = post(client, f"{tex['c']}/messages", {"channel": "sms", "body": "Hi %FIRSTNAME%"})
    assert response.status_code == 200
    message = db.session.scalar(sa.select(Message))
    assert message.status == "scheduled" and message.body == "Hi Tex"
    assert message.send_at == datetime(2026, 12, 9, 15, 0, tzinfo=UTC)  # 09:00 in Austin
    html = response.get_data(as_text=True)
    assert "Scheduled for Wed 09 Dec 16:00 CET (Wed 09:00 in Texas)" in html  # on both clocks
    assert f'id="scheduled-at-{message.id}"' in html
    assert credits.balance(db.session, tex["org"]) == 9  # paid when scheduled


def test_the_composer_after_a_text_that_waits_for_the_morning_says_so_not_nothing_written(client, tex):
    post(client, f"{tex['c']}/messages", {"channel": "sms", "body": "Hi %FIRSTNAME%"})
    page = client.get(f"/applications/{tex['application'].id}").get_data(as_text=True)
    reason = re.search(r'class="hint reply-reason"[^>]*data-reply-channel="(\w+)">([^<]*)<', page)
    assert reason and reason.groups() == ("sms", "By SMS, like the message to Tex that waits for its time.")


def test_a_reason_against_the_law_is_refused_beside_its_field_and_the_text_kept(client, tex) -> None:
    response = post(
        client, f"{tex['c']}/messages", {"channel": "sms", "body": "Hi there", "override_reason": "Urgent"}
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(r'id="override-reason-error-\d+">Texas law', html)
    assert (
        "Hi there</textarea>" in html
        and 'value="Urgent"' in html
        and '<details class="send-later" open>' in html
    )
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_edit_and_cancel_a_scheduled_message_from_the_thread(client, tex, clock) -> None:
    post(client, f"{tex['c']}/messages", {"channel": "sms", "body": "Hi %FIRSTNAME%"})
    message = db.session.scalar(sa.select(Message))
    url = f"{tex['c']}/scheduled/{message.id}"
    edited = post(client, url, {"send_at": "2026-12-09T17:30", "body": "Hi Tex, are you free at 11?"})
    assert edited.status_code == 204 and edited.headers["HX-Trigger"] == "messages-changed"
    db.session.expire_all()
    new = db.session.scalar(sa.select(Message).where(Message.status == "scheduled"))
    assert new.body == "Hi Tex, are you free at 11?" and new.send_at == datetime(
        2026, 12, 9, 16, 30, tzinfo=UTC
    )
    # The thread, and its SMS tab's count, show the new version only.
    page = client.get(f"/applications/{tex['application'].id}?tab=sms").get_data(as_text=True)
    assert "are you free at 11?" in page and ">Hi Tex</div>" not in page
    assert re.search(r'data-tab-channel="sms"[^>]*>\s*SMS <span class="tab-count">1</span>', page), page
    # A time at night for them is refused under the message, and nothing changes.
    night = post(client, f"{tex['c']}/scheduled/{new.id}", {"send_at": "2026-12-10T05:00", "body": new.body})
    assert f'id="scheduled-error-{new.id}"' in night.get_data(as_text=True) and "Texas law" in night.get_data(
        as_text=True
    )
    assert post(client, f"{tex['c']}/scheduled/{new.id}/cancel", {}).status_code == 204
    db.session.expire_all()
    assert db.session.get(Message, new.id).status == "cancelled"
    assert credits.balance(db.session, tex["org"]) == 10  # both given back
    again = post(client, f"{tex['c']}/scheduled/{new.id}/cancel", {}).get_data(as_text=True)
    assert "It was cancelled." in again


def test_the_thread_ends_with_what_waits_soonest_first_and_a_sent_one_says_when_it_left(
    client, tex, clock
) -> None:
    url = tex["c"] + "/messages"
    post(client, url, {"channel": "sms", "body": "Later one", "send_at": "2026-12-09T17:30"})
    post(client, url, {"channel": "sms", "body": "Sooner one", "send_at": "2026-12-09T16:00"})
    conversation_id = db.session.scalar(sa.select(Message.conversation_id))
    db.session.add(
        Message(
            conversation_id=conversation_id,
            channel="sms",
            direction="inbound",
            body="Hello?",
            status="received",
            from_addr="+15125550123",
            to_addr="+15125550100",
        )
    )
    db.session.commit()

    riley = db.session.scalar(sa.select(f.User).where(f.User.email == "recruiter@acme.test"))
    db.session.add(
        ConversationEvent(conversation_id=conversation_id, kind="note", author_id=riley.id, body="Note")
    )
    db.session.commit()

    def bodies() -> list[str]:
        page = client.get(f"/applications/{tex['application'].id}").get_data(as_text=True)
        return re.findall(r'<div class="msg-body">([^<]*)</div>', page)

    # Written first, then the person wrote, then a colleague's note; what waits comes after them all,
    # soonest first.
    assert bodies() == ["Hello?", "Note", "Sooner one", "Later one"]

    clock["at"] = datetime(2026, 12, 9, 15, 1, tzinfo=UTC)
    assert len(scheduled.send_due(clock["at"], hand_over=False).queued) == 1
    page = client.get(f"/applications/{tex['application'].id}").get_data(as_text=True)
    assert bodies() == ["Sooner one", "Hello?", "Note", "Later one"]
    # Gone: when it left (Berlin's clock, the organisation's), and when it was written.
    assert 'data-left>09 Dec 16:00 CET</time> <span class="muted">(written <time' in page


def test_the_jobs_place_is_where_a_number_of_several_zones_is_read(client, tex, clock) -> None:
    # Tuesday 08:30 in Madrid, 07:30 in the Canaries: a Spanish mobile may be on either clock.
    clock["at"] = datetime(2026, 12, 8, 7, 30, tzinfo=UTC)
    acme = tex["org"]
    riley = db.session.scalar(sa.select(f.User).where(f.User.email == "recruiter@acme.test"))
    f.number(acme, "+34910000000")
    applications = {}
    for place in (None, "Europe/Madrid"):
        job = f.job(acme, team=[riley], title=f"Job in {place}", time_zone=place)
        applications[place] = f.application(job, f.candidate(acme, "Pilar", "Ruiz", mobile="+34612345678"))
    db.session.commit()
    for place, moved in ((None, "moved"), ("Europe/Madrid", None)):
        url = f.conversation_url(applications[place])
        html = post(client, f"{url}/preview", {"channel": "sms", "body": "Hi"}).get_data(as_text=True)
        found = re.search(r'data-counter="hours" data-hours="(\w+)"', html)
        assert (found.group(1) if found else None) == moved, place


def test_the_edit_form_says_its_time_on_both_clocks_offers_the_quick_choices_and_says_a_new_one(
    client, tex
) -> None:
    post(client, f"{tex['c']}/messages", {"channel": "sms", "body": "Hi %FIRSTNAME%"})
    message = db.session.scalar(sa.select(Message))
    page = client.get(f"/applications/{tex['application'].id}").get_data(as_text=True)
    form = page[page.index(f'id="scheduled-at-{message.id}"') :]
    form = form[: form.index("</form>")]
    # Wednesday 09:00 in Austin, 16:00 in Berlin: both clocks, as the composer says them.
    when = re.search(rf'id="scheduled-when-{message.id}" class="hint"[^>]*>([^<]*)<', form)
    assert when and when.group(1) == "Sends Wed 09:00 in Texas · Wed 16:00 your time."
    assert 'Their morning <span class="muted">(Wed 09:00 in Texas)</span>' in form and "In 1 hour" in form
    assert f'data-send-at-for="scheduled-at-{message.id}"' in form
    # A time picked: what Save would do, before Save, and nothing changes.
    url = f"{tex['c']}/scheduled/{message.id}/when"
    later = post(client, url, {"send_at": "2026-12-09T17:30"}).get_data(as_text=True)
    assert "Sends Wed 10:30 in Texas · Wed 17:30 your time." in later and 'class="hint"' in later
    night = post(client, url, {"send_at": "2026-12-10T05:00"}).get_data(as_text=True)
    assert 'class="field-error"' in night
    assert "Pick a time within their hours: the first is Thu 09:00 in Texas · Thu 16:00 your time." in night
    assert "reason" not in night
    db.session.expire_all()
    assert db.session.get(Message, message.id).send_at == datetime(2026, 12, 9, 15, 0, tzinfo=UTC)
