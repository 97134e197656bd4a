"""Smart encoding over HTTP (issue 22 §2): the composer's counter and the template editor offer plain quotes
and dashes when look-alikes alone make an SMS UCS-2; the click is the page's (tests/test_browser.py), and
nothing changes a text at sending. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.conftest import Auth, csrf_from
from webapp.accounts import permissions
from webapp.extensions import db
from webapp.models import Message, MessageTemplate

# 147 characters with the name filled in ("Hi Lena, …"): 3 UCS-2 segments as written, 1 with plain ones.
CURLY = (
    "Hi %FIRSTNAME%, the hiring manager loved your answer to “why logistics?” – would you like to move "
    "forward? Can we book 30 minutes this week? Thanks, Riley"
)
PLAIN = CURLY.replace("“", '"').replace("”", '"').replace("–", "-")


@pytest.fixture
def world(app):
    acme = f.messaging_org("Acme", sender_name="Acme")
    recruiter = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Chen")
    f.user(acme, "templates@acme.test", codes=[permissions.ADMIN_TEMPLATES])
    f.number(acme, "+4915123456700")
    job = f.job(acme, team=[recruiter], title="Backend Engineer")
    lena = f.application(job, f.candidate(acme, "Lena", "Müller", mobile="+4915123456789"))
    pawel = f.application(job, f.candidate(acme, "Paweł", "Nowak", mobile="+48512345678"))
    f.credits(acme, 10)
    db.session.commit()
    return {
        "lena": f.conversation_url(lena),
        "pawel": f.conversation_url(pawel),
        "acme": acme,
        "application": lena.id,
        "job": job.id,
    }


def post(client, url: str, data: dict, htmx: bool = True):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(url, data={**data, "csrf_token": csrf_from(client, "/jobs")}, headers=headers)


def offer_in(page: str) -> dict[str, str] | None:
    """The offer's button: its words and data attributes (unescaped), or None when there is none."""
    found = re.findall(r"<button ([^>]*data-fix-to=[^>]*)>([^<]*)</button>", page)
    offers = [(attrs, label) for attrs, label in found if label.startswith("Use plain quotes and dashes")]
    if not offers:
        return None
    assert len(offers) == 1
    attrs, label = offers[0]
    fields = {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', attrs)}
    return {**fields, "label": html.unescape(label).strip()}


def counter(client, url: str, body: str, channel: str = "sms") -> str:
    response = post(client, f"{url}/preview", {"channel": channel, "body": body})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_counter_offers_plain_quotes_with_the_numbers(client, world) -> None:
    Auth(client).login("recruiter@acme.test")
    page = counter(client, world["lena"], CURLY)
    assert re.search(r'<div id="counter-\d+" class="counter" aria-live="polite">', page)
    assert "3 segments" in page and "3 credits" in page
    offer = offer_in(page)
    assert offer is not None
    assert offer["label"] == "Use plain quotes and dashes: 3 segments → 1, saves 2 credits"
    assert offer["type"] == "button"
    # What the click puts into the field: the text as typed, the placeholder kept, only the look-alikes
    # replaced; and only while the field holds the text the offer was made for.
    assert (offer["data-fix-into"], offer["data-fix-from"], offer["data-fix-to"]) == ("body", CURLY, PLAIN)
    assert re.search(r'data-counter="plain-changes">[^<]*<code>“</code> and <code>”</code> become', page)
    # The text as the click makes it: GSM-7, one segment, no offer.
    after = counter(client, world["lena"], PLAIN)
    assert "1 segment" in after and "GSM-7" in after and offer_in(after) is None


def test_no_offer_when_something_else_makes_it_ucs2_or_it_is_gsm7(client, world) -> None:
    Auth(client).login("recruiter@acme.test")
    # An emoji keeps it UCS-2: named as today, nothing replaced, no offer.
    emoji = counter(client, world["lena"], "Hi %FIRSTNAME% 🎉 we’re thrilled – you got the job!")
    assert "UCS-2 because of" in emoji and "<code>🎉</code>" in emoji
    assert offer_in(emoji) is None
    assert offer_in(counter(client, world["lena"], "Cześć %FIRSTNAME%, it’s Riley")) is None
    # GSM-7 already, its own letters (é, ü, ñ, Ä) included.
    gsm = counter(client, world["lena"], "Hi %FIRSTNAME%, café Müller, mañana? Är du ledig? €10 [ok]")
    assert "GSM-7" in gsm and offer_in(gsm) is None
    # The person's own name keeps it UCS-2 (Paweł): the body's look-alikes alone would not help.
    pawel = counter(client, world["pawel"], CURLY)
    assert "<code>ł</code>" in pawel and offer_in(pawel) is None


@pytest.mark.parametrize("channel", ["email", "whatsapp"])
def test_no_offer_on_other_channels(client, world, channel) -> None:
    Auth(client).login("recruiter@acme.test")
    assert offer_in(counter(client, world["lena"], CURLY, channel)) is None


def test_sending_never_changes_the_text(client, world) -> None:
    """The offer is the writer's to take: a text sent as typed goes as typed, UCS-2 and its price."""
    Auth(client).login("recruiter@acme.test")
    response = post(client, f"{world['lena']}/messages", {"channel": "sms", "body": CURLY})
    assert response.status_code == 200
    sent = db.session.scalar(sa.select(Message).where(Message.direction == "outbound"))
    assert sent.body == CURLY.replace("%FIRSTNAME%", "Lena")
    assert (sent.encoding, sent.segments, sent.credits) == ("UCS-2", 3, 3)


def test_the_follow_up_gets_its_own_offer(client, world) -> None:
    Auth(client).login("recruiter@acme.test")
    follow = "Hi %FIRSTNAME%, just checking you saw my message – we’d love to hear back from you this week!"
    data = {"channel": "sms", "body": "Hi %FIRSTNAME%", "follow_up_body": follow, "follow_up_days": "3"}
    page = post(client, f"{world['lena']}/preview", data).get_data(as_text=True)
    offer = offer_in(page)
    assert offer is not None
    assert offer["label"] == "Use plain quotes and dashes in the follow-up: 2 segments → 1, saves 1 credit"
    assert (offer["data-fix-into"], offer["data-fix-from"]) == ("follow_up_body", follow)
    assert offer["data-fix-to"] == follow.replace("–", "-").replace("’", "'")
    data["channel"] = "whatsapp"
    assert offer_in(post(client, f"{world['lena']}/preview", data).get_data(as_text=True)) is None


def test_the_invitation_counter_offers_it_with_the_booking_link_counted(client, world) -> None:
    Auth(client).login("recruiter@acme.test")
    body = "Hi %FIRSTNAME%, pick a time for your interview – it’s 45 minutes: %INVITELINK% Thanks"
    data = {"channel": "sms", "body": body, "application": world["application"], "job": world["job"]}
    page = post(client, "/interviews/preview", data).get_data(as_text=True)
    assert "2 segments" in page  # the real link makes it longer than 70 UCS-2 units
    offer = offer_in(page)
    assert offer is not None
    assert offer["label"] == "Use plain quotes and dashes: 2 segments → 1, saves 1 credit"
    assert offer["data-fix-to"] == body.replace("–", "-").replace("’", "'")  # %INVITELINK% kept as typed


# --- Templates ----------------------------------------------------------------------------------------------


def template(**kw) -> dict:
    return {"name": "Second interview", "channel": "sms", "kind": "general", "body": CURLY, **kw}


def test_the_template_editor_offers_it_beside_the_text(client, world) -> None:
    Auth(client).login("templates@acme.test")
    preview = post(client, "/admin/templates/preview", template()).get_data(as_text=True)
    offer = offer_in(preview)
    assert offer is not None
    # Counted for the sample candidate, Alex: "Hi Alex, …" is as long as "Hi Lena, …".
    assert offer["label"] == "Use plain quotes and dashes: 3 segments → 1, saves 2 credits"
    # The preview stands beside the form: the button belongs to the editor's form, and fills its text.
    assert (offer["form"], offer["data-fix-into"], offer["data-fix-to"]) == ("template-form", "body", PLAIN)
    for other in ("email", "whatsapp"):
        data = template(channel=other, subject="Interview" if other == "email" else "")
        answer = post(client, "/admin/templates/preview", data).get_data(as_text=True)
        assert offer_in(answer) is None, other
    plain = post(client, "/admin/templates/preview", template(body=PLAIN)).get_data(as_text=True)
    assert offer_in(plain) is None


def test_a_template_is_saved_as_written_and_the_offer_follows_it(client, world) -> None:
    Auth(client).login("templates@acme.test")
    saved = post(client, "/admin/templates/new", template(), htmx=False)
    assert saved.status_code == 303  # saving as it is stays allowed
    kept = db.session.scalar(sa.select(MessageTemplate).where(MessageTemplate.name == "Second interview"))
    assert kept.body == CURLY
    listing = client.get(saved.headers["Location"]).get_data(as_text=True)
    note = re.search(
        rf'<span class="cell-sub plain-note" data-plain="{kept.id}">(.*?)</span></span>', listing
    )
    assert note, "the list says what the template's look-alikes cost"
    words = html.unescape(re.sub(r"<[^>]+>", "", note.group(1)))
    assert words.startswith("UCS-2 only because of “, ” and –: 3 segments, 1 with plain quotes and dashes.")
    assert f'href="/admin/templates/{kept.id}"' in note.group(1)
    editor = client.get(f"/admin/templates/{kept.id}").get_data(as_text=True)
    offer = offer_in(editor)
    assert offer is not None and offer["data-fix-to"] == PLAIN and offer["data-fix-from"] == CURLY
    # Saved with plain characters, the note goes.
    post(client, f"/admin/templates/{kept.id}", template(body=PLAIN), htmx=False)
    assert "plain-note" not in client.get("/admin/templates").get_data(as_text=True)
