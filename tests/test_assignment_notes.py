"""Issue 21 §2 and §3: assigning a conversation to one of its team, internal notes and @mentions, on
SQLite and PostgreSQL. The races of two assigns at once are in tests/test_assignment_races.py."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests import test_inbox
from tests.conftest import csrf_from
from tests.smtp_sink import running_smtp_sink
from tests.test_inbox import conversation_of, listed, say
from webapp.accounts import people, permissions
from webapp.extensions import db
from webapp.inbox import queries
from webapp.messaging import assignment, conversations, notes
from webapp.models import (
    ConversationEvent,
    ConversationState,
    Message,
    NoteMention,
    utcnow,
)

HX = {"HX-Request": "true"}
# Issue 21 plays in the Inbox's world: Acme with a sub-organisation, its teams, Globex.
world = test_inbox.world


@pytest.fixture
def app_config(request) -> dict[str, object]:
    """The real providers when a test asks for them: the fake Vonage over HTTPS, the SMTP sink."""
    config: dict[str, object] = {}
    if "fake" in request.fixturenames:
        fake = request.getfixturevalue("fake")
        config.update(
            MESSAGING_PROVIDER="vonage",
            VONAGE_API_HOST=fake.api_host,
            VONAGE_APPLICATION_ID=fake.application_id,
            VONAGE_PRIVATE_KEY_PATH=str(fake.private_key_path),
            VONAGE_TIMEOUT=0.5,
        )
    if "sink" in request.fixturenames:
        config["SMTP_URL"] = request.getfixturevalue("sink").url
    return config


@pytest.fixture
def sink():
    with running_smtp_sink() as running:
        yield running


def fresh(obj):
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def events_of(conversation) -> list[ConversationEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(ConversationEvent)
            .where(ConversationEvent.conversation_id == conversation.id)
            .order_by(ConversationEvent.id)
        )
    )


# --- Assignment -------------------------------------------------------------------------------------------


def test_assign_reassign_and_unassign_each_a_line_in_the_thread_not_a_message(world) -> None:
    w = world
    say(w["lena"], "inbound", "sms", "Thursday works")
    c = conversation_of(w["lena"])
    before = (c.last_message_id, c.last_preview, c.list_seq, c.change_seq)
    now = utcnow()
    recruiter, manager = w["recruiter"], w["manager"]

    assignment.assign(db.session, recruiter, c, manager, now)
    db.session.commit()
    assert fresh(c).assignee_id == manager.id
    assignment.assign(db.session, recruiter, c, recruiter, now + timedelta(minutes=1))
    db.session.commit()
    # Assigned to whom it is already: nothing changes, no line.
    assert assignment.assign(db.session, recruiter, c, recruiter, now + timedelta(minutes=2)) is None
    assignment.assign(db.session, manager, c, None, now + timedelta(minutes=3))
    db.session.commit()

    c = fresh(c)
    assert c.assignee_id is None
    assert [assignment.line(e) for e in events_of(c)] == [
        "Riley Recruiter assigned this to Morgan Manager",
        "Riley Recruiter took this",
        "Morgan Manager unassigned Riley Recruiter",
    ]
    # Not a message: the latest message and its preview are as they were; the list and the thread moved.
    assert (c.last_message_id, c.last_preview) == before[:2]
    assert c.list_seq > before[2] and c.change_seq > before[3]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 1


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        # Another team's member (the sourcing team of a community, not this job's hiring team).
        ("sourcer", "Sam Sourcer is not on the hiring team of this job: only its members can be assigned."),
        # An administrator sees and writes in every conversation, but is on no team of this one.
        ("admin", "Ada Admin is not on the hiring team of this job: only its members can be assigned."),
        # A sub-organisation's person, another customer's: not named.
        ("nordic", "Choose someone of the hiring team of this job."),
        ("outsider", "Choose someone of the hiring team of this job."),
    ],
)
def test_only_the_conversations_own_team_may_be_assigned(world, who, reason) -> None:
    w = world
    c = conversation_of(w["lena"])
    db.session.commit()
    with pytest.raises(assignment.AssignRefused) as refused:
        assignment.assign(db.session, w["recruiter"], c, w[who], utcnow())
    assert (refused.value.message, refused.value.field) == (reason, "assignee")
    db.session.rollback()
    assert fresh(c).assignee_id is None and events_of(c) == []


def test_the_application_and_prospect_pages_carry_the_forms(client, auth, world) -> None:
    w = world
    lena, paul = conversation_of(w["lena"]), conversation_of(w["membership"])
    assignment.assign(db.session, w["recruiter"], lena, w["recruiter"], utcnow())
    assignment.assign(db.session, w["recruiter"], lena, None, utcnow())
    db.session.commit()
    auth.login("recruiter@acme.test")
    page = client.get(f"/applications/{w['lena'].id}").get_data(as_text=True)
    assert f'id="assignee-{lena.id}"' in page and f'id="note-form-{lena.id}"' in page
    assert "Riley Recruiter unassigned themselves" in page
    auth.logout()
    auth.login("sourcer@acme.test")
    page = client.get(f"/memberships/{w['membership'].id}").get_data(as_text=True)
    assert f'id="assignee-{paul.id}"' in page and f'id="note-form-{paul.id}"' in page


def test_leaving_a_team_or_being_deactivated_unassigns(world) -> None:
    w = world
    lena, mia, paul = (conversation_of(w[k]) for k in ("lena", "mia", "membership"))
    db.session.commit()
    assignment.assign(db.session, w["recruiter"], lena, w["recruiter"], utcnow())
    assignment.assign(db.session, w["recruiter"], mia, w["recruiter"], utcnow())
    assignment.assign(db.session, w["manager"], lena, w["manager"], utcnow(), expected=w["recruiter"].id)
    assignment.assign(db.session, w["sourcer"], paul, w["sourcer"], utcnow())
    db.session.commit()
    before = fresh(lena).list_seq
    # The manager leaves Backend Engineer's team (the admin's Teams form): Lena's is nobody's again.
    people.set_teams(db.session, w["manager"], [], [])
    db.session.commit()
    assert fresh(lena).assignee_id is None and fresh(lena).list_seq > before
    assert fresh(mia).assignee_id == w["recruiter"].id
    # Deactivated: nothing is theirs any more.
    f.user(w["acme"], "people@acme.test", codes=[permissions.ADMIN_USERS])  # someone keeps the right
    people.deactivate(db.session, w["admin"], w["sourcer"])
    db.session.commit()
    assert fresh(paul).assignee_id is None
    assert listed(w["recruiter"], queries.Filters(mine=True)) == []  # no messages: not listed anyway


def test_an_inactive_member_may_not_be_assigned(world) -> None:
    w = world
    w["manager"].active = False
    c = conversation_of(w["lena"])
    db.session.commit()
    assert [u.name for u in assignment.assignable(db.session, c)] == ["Riley Recruiter"]
    with pytest.raises(assignment.AssignRefused):
        assignment.assign(db.session, w["recruiter"], c, w["manager"], utcnow())


def test_who_may_assign_is_who_may_write_in_it(world) -> None:
    w = world
    mia, astrid = conversation_of(w["mia"]), conversation_of(w["astrid"])
    db.session.commit()
    # The manager is not on the Designer's team: without the right to write in it, no assigning.
    with pytest.raises(assignment.AssignRefused, match="Only the hiring team of this job"):
        assignment.assign(db.session, w["manager"], mia, w["recruiter"], utcnow())
    # The sub-organisation's rule: the parent's administrator reads Acme Nordics' conversation, its own
    # team writes in it and assigns it.
    with pytest.raises(assignment.AssignRefused, match="belongs to Acme Nordics"):
        assignment.assign(db.session, w["admin"], astrid, w["nordic"], utcnow())
    db.session.rollback()
    assignment.assign(db.session, w["nordic"], astrid, w["nordic"], utcnow())
    # An administrator of the organisation writes in its conversations, so assigns them.
    assignment.assign(db.session, w["admin"], mia, w["recruiter"], utcnow())
    db.session.commit()
    assert fresh(astrid).assignee_id == w["nordic"].id and fresh(mia).assignee_id == w["recruiter"].id


def test_a_prospects_conversation_is_assigned_within_its_sourcing_team(world) -> None:
    w = world
    c = conversation_of(w["membership"])
    db.session.commit()
    assert [u.name for u in assignment.assignable(db.session, c)] == ["Sam Sourcer"]
    with pytest.raises(assignment.AssignRefused, match="not on the sourcing team of this community"):
        assignment.assign(db.session, w["sourcer"], c, w["recruiter"], utcnow())
    db.session.rollback()
    assignment.assign(db.session, w["sourcer"], c, w["sourcer"], utcnow())
    db.session.commit()
    assert fresh(c).assignee_id == w["sourcer"].id


def test_assigning_from_the_pane_and_mine_and_unassigned(client, auth, world) -> None:
    w = world
    say(w["lena"], "inbound", "sms", "Thursday works")
    say(w["jonas"], "inbound", "sms", "Hello")
    lena = conversation_of(w["lena"]).id
    auth.login("recruiter@acme.test")
    pane = client.get(f"/inbox/conversations/{lena}", headers=HX).get_data(as_text=True)
    # One form per conversation, its ids after it; the team offered, the user named as such.
    assert f'id="assign-{lena}"' in pane and f'<select id="assignee-{lena}" name="assignee"' in pane
    options = re.findall(
        r'<option value="(\d*)"[^>]*>([^<]*)</option>', pane.split(f'id="assignee-{lena}"')[1]
    )
    assert [name for _, name in options[:3]] == ["Nobody", "Morgan Manager", "Riley Recruiter (you)"]

    token = csrf_from(client, "/inbox")
    answer = client.post(
        f"/conversations/{lena}/assignee",
        data={"csrf_token": token, "assignee": str(w["manager"].id), "expected": ""},
        headers=HX,
    )
    assert answer.status_code == 200 and answer.headers["HX-Trigger"] == "messages-changed"
    assert "Assigned to Morgan Manager." in answer.get_data(as_text=True)
    thread = client.get(f"/conversations/{lena}/thread", query_string={"tab": "all"}, headers=HX)
    assert "Riley Recruiter assigned this to Morgan Manager" in thread.get_data(as_text=True)

    assert listed(w["manager"], queries.Filters(mine=True)) == ["Lena Müller"]
    assert listed(w["recruiter"], queries.Filters(mine=True)) == []
    assert listed(w["recruiter"], queries.Filters(unassigned=True)) == ["Jonas Schmidt"]
    page = client.get("/inbox").get_data(as_text=True)
    assert "Assigned to Morgan Manager" in page.split(f'id="inbox-row-{lena}"')[1].split("</li>")[0]
    assert 'name="unassigned"' in page
    assert "Jonas Schmidt" in client.get("/inbox?unassigned=1").get_data(as_text=True)
    assert "Jonas Schmidt" not in client.get("/inbox?mine=1").get_data(as_text=True)
    assignment.assign(db.session, w["recruiter"], conversation_of(w["jonas"]), w["recruiter"], utcnow())
    db.session.commit()
    page = client.get("/inbox").get_data(as_text=True)
    row = page.split(f'id="inbox-row-{conversation_of(w["jonas"]).id}"')[1].split("</li>")[0]
    assert "Assigned to you" in row


def test_a_form_that_saw_an_older_assignee_is_told_who_has_it_now(client, auth, world) -> None:
    w = world
    lena = conversation_of(w["lena"])
    auth.login("recruiter@acme.test")
    token = csrf_from(client, "/inbox")
    # Between the page's drawing and the click, a colleague took it.
    assignment.assign(db.session, w["manager"], lena, w["manager"], utcnow())
    db.session.commit()
    answer = client.post(
        f"/conversations/{lena.id}/assignee",
        data={"csrf_token": token, "assignee": str(w["recruiter"].id), "expected": ""},
        headers=HX,
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "Someone has just assigned this conversation to Morgan Manager: choose again." in html
    assert f'aria-describedby="assign-error-{lena.id}"' in html
    # The form now knows who has it: the next try goes through.
    assert f'name="expected" value="{w["manager"].id}"' in html
    assert fresh(lena).assignee_id == w["manager"].id and len(events_of(lena)) == 1


def test_an_assignee_of_another_team_through_the_route_and_another_customers_conversation(
    client, auth, world
) -> None:
    w = world
    lena, homer = conversation_of(w["lena"]), conversation_of(w["homer"])
    db.session.commit()
    auth.login("recruiter@acme.test")
    token = csrf_from(client, "/inbox")
    answer = client.post(
        f"/conversations/{lena.id}/assignee",
        data={"csrf_token": token, "assignee": str(w["sourcer"].id), "expected": ""},
        headers=HX,
    )
    assert answer.status_code == 422
    assert "Sam Sourcer is not on the hiring team of this job" in answer.get_data(as_text=True)
    for bad in ("999999", "x"):
        answer = client.post(
            f"/conversations/{lena.id}/assignee",
            data={"csrf_token": token, "assignee": bad, "expected": ""},
            headers=HX,
        )
        assert answer.status_code == 422
        assert "Choose someone of the hiring team of this job." in answer.get_data(as_text=True)
    answer = client.post(
        f"/conversations/{homer.id}/assignee",
        data={"csrf_token": token, "assignee": str(w["recruiter"].id), "expected": ""},
    )
    assert answer.status_code == 404
    assert fresh(lena).assignee_id is None and fresh(homer).assignee_id is None


def test_the_parents_admin_sees_who_has_a_sub_organisations_conversation_without_a_form(
    client, auth, world
) -> None:
    w = world
    say(w["astrid"], "inbound", "sms", "Hej")
    astrid = conversation_of(w["astrid"])
    assignment.assign(db.session, w["nordic"], astrid, w["nordic"], utcnow())
    db.session.commit()
    auth.login("admin@acme.test")
    pane = client.get(f"/inbox/conversations/{astrid.id}", headers=HX).get_data(as_text=True)
    assert "Assigned to Nils Nordic" in pane
    assert f'id="assignee-{astrid.id}"' not in pane and f'id="note-form-{astrid.id}"' not in pane


# --- Internal notes ---------------------------------------------------------------------------------------


def test_a_note_never_reaches_a_provider_and_is_not_a_message(client, auth, world, fake, sink) -> None:
    w = world
    lena_app = w["lena"]
    lena_app.candidate.email = "lena@example.test"
    say(lena_app, "inbound", "sms", "Thursday works")
    c = conversation_of(lena_app)
    auth.login("recruiter@acme.test")
    token = csrf_from(client, f"/applications/{lena_app.id}")
    note = client.post(
        f"/conversations/{c.id}/notes",
        data={"csrf_token": token, "note": "Secret: salary band B, see https://wiki.example/bands"},
        headers=HX,
    )
    assert note.status_code == 200 and note.headers["HX-Trigger"] == "messages-changed"
    state = fresh(c)
    assert (state.last_direction, state.last_preview) == ("inbound", "Thursday works")
    assert fake.requests == [] and sink.messages == []

    # Then a text and an email: each provider gets its message, and only it.
    for channel, body in (("sms", "See you Thursday"), ("email", "Confirming Thursday")):
        sent = client.post(
            f"/conversations/{c.id}/messages",
            data={"csrf_token": token, "channel": channel, "body": body, "subject": "Thursday"},
            headers=HX,
        )
        assert sent.status_code == 200, sent.get_data(as_text=True)
    assert [r.body["text"] for r in fake.requests] == ["See you Thursday"]
    [email] = sink.messages
    assert b"Confirming Thursday" in email.raw and b"Secret" not in email.raw
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 3
    assert conversations.counts_by_channel(db.session, c) == {"sms": 2, "email": 1}
    # Not searchable as a message, not the latest one, not counted as a reply.
    assert listed(w["recruiter"], queries.Filters(q="salary band")) == []
    assert fresh(c).last_preview != "Secret: salary band B, see https://wiki.example/bands"

    page = client.get(f"/applications/{lena_app.id}?tab=sms").get_data(as_text=True)
    box = page.split('class="thread-note"')[1].split("</li>")[0]
    assert "Internal note" in box and "Riley Recruiter" in box
    assert '<a href="https://wiki.example/bands" rel="noopener noreferrer nofollow">' in box


def test_a_note_does_not_change_unread_or_needs_a_reply(world) -> None:
    w = world
    say(w["lena"], "inbound", "sms", "Thursday works")
    c = conversation_of(w["lena"])
    unread_before = {
        u: queries.unread_total(db.session, queries.scope_for(db.session, w[u]))
        for u in ("recruiter", "manager")
    }
    notes.add_note(db.session, w["recruiter"], c, "I'll call her tomorrow.", utcnow())
    db.session.commit()
    for user, total in unread_before.items():
        assert queries.unread_total(db.session, queries.scope_for(db.session, w[user])) == total
    assert listed(w["recruiter"], queries.Filters(reply=True)) == ["Lena Müller"]
    assert fresh(c).last_direction == "inbound"


def test_notes_and_names_are_escaped(client, auth, world) -> None:
    w = world
    evil = "<img src=x onerror=alert(1)>"
    w["manager"].name = f"Mallory {evil}"
    say(w["lena"], "inbound", "sms", "Hi")
    c = conversation_of(w["lena"])
    assignment.assign(db.session, w["manager"], c, w["manager"], utcnow())
    notes.add_note(
        db.session,
        w["manager"],
        c,
        f'<script>alert("x")</script> {evil} http://x.test/"onmouseover="alert(1) javascript:alert(1)',
        utcnow(),
    )
    db.session.commit()
    auth.login("recruiter@acme.test")
    for path in (f"/inbox?c={c.id}", f"/applications/{w['lena'].id}"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert 'href="http://x.test/"' in html and 'onmouseover="alert' not in html
        assert 'href="javascript' not in html
    # The mention list and the assignment select carry the name escaped too.
    pane = client.get(f"/inbox/conversations/{c.id}", headers=HX).get_data(as_text=True)
    assert 'data-name="Mallory &lt;img src=x onerror=alert(1)&gt;"' in pane


def test_an_empty_note_is_refused_keeping_nothing(client, auth, world) -> None:
    w = world
    c = conversation_of(w["lena"])
    db.session.commit()
    auth.login("recruiter@acme.test")
    token = csrf_from(client, "/inbox")
    answer = client.post(f"/conversations/{c.id}/notes", data={"csrf_token": token, "note": "  "}, headers=HX)
    assert answer.status_code == 422 and "Write the note first." in answer.get_data(as_text=True)
    assert events_of(c) == []


# --- @mentions --------------------------------------------------------------------------------------------


def test_mentioning_someone_who_cannot_see_it_is_refused_next_to_the_field(client, auth, world) -> None:
    w = world
    c = conversation_of(w["mia"])  # the Designer's: the recruiter's team, not the manager's
    db.session.commit()
    auth.login("recruiter@acme.test")
    token = csrf_from(client, "/inbox")
    typed = "@Morgan Manager can you look at her portfolio?"
    answer = client.post(
        f"/conversations/{c.id}/notes", data={"csrf_token": token, "note": typed}, headers=HX
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert f'<p class="field-error" id="note-error-{c.id}" role="alert">Morgan Manager cannot see' in html
    assert f"{typed}</textarea>" in html and 'aria-invalid="true"' in html
    assert events_of(c) == []
    # Those who may see it are offered (the admin, the team), nobody else.
    offered = re.findall(r'role="option" id="mention-\d+-\d+" data-name="([^"]+)"', html)
    assert offered == ["Ada Admin", "Riley Recruiter"]
    # Without htmx: the whole page, the reason under the field, the text kept.
    page = client.post(f"/conversations/{c.id}/notes", data={"csrf_token": token, "note": typed})
    assert page.status_code == 422 and f"{typed}</textarea>" in page.get_data(as_text=True)


def test_an_at_that_names_nobody_is_plain_text(world) -> None:
    w = world
    c = conversation_of(w["lena"])
    event = notes.add_note(db.session, w["recruiter"], c, "Mail lena@example.test @home @ 5pm", utcnow())
    db.session.commit()
    assert event.mentions == []


def test_a_mention_makes_it_unread_for_them_until_they_open_it(client, auth, world) -> None:
    w = world
    say(w["lena"], "outbound", "sms", "Hi Lena", author=w["recruiter"])
    c = conversation_of(w["lena"])
    manager_scope = queries.scope_for(db.session, w["manager"])
    assert queries.unread_total(db.session, manager_scope) == 0
    since = utcnow() - timedelta(seconds=1)
    event = notes.add_note(
        db.session, w["recruiter"], c, "@morgan manager, @Riley Recruiter: call her?", utcnow()
    )
    db.session.commit()
    assert sorted(m.user_id for m in event.mentions) == sorted([w["manager"].id, w["recruiter"].id])
    # Waiting for the manager (the count the top bar reads); the author's own mention changes nothing.
    assert queries.unread_total(db.session, manager_scope) == 1
    assert listed(w["manager"], queries.Filters(unread=True)) == ["Lena Müller"]
    assert listed(w["recruiter"], queries.Filters(unread=True)) == []
    # For the mention emails (wired by whoever sends them): not emailed yet, then marked.
    waiting = notes.unnotified(db.session, since)
    assert {(m.user.name, m.event.author.name) for m in waiting} == {
        ("Morgan Manager", "Riley Recruiter"),
        ("Riley Recruiter", "Riley Recruiter"),
    }
    assert notes.mark_emailed(db.session, [m.id for m in waiting], utcnow()) == 2
    db.session.commit()
    assert notes.unnotified(db.session, since) == []

    auth.login("manager@acme.test")
    client.get(f"/inbox/conversations/{c.id}", headers=HX)
    db.session.expire_all()
    assert queries.unread_total(db.session, manager_scope) == 0


def test_a_mention_in_a_conversation_without_messages_is_read_when_opened(client, auth, world) -> None:
    w = world
    c = conversation_of(w["lena"])
    notes.add_note(db.session, w["recruiter"], c, "@Morgan Manager before we write to her: ok?", utcnow())
    db.session.commit()
    state = db.session.get(ConversationState, (w["manager"].id, c.id))
    assert state is not None and state.unread == 1
    auth.login("manager@acme.test")
    page = client.get(f"/applications/{w['lena'].id}").get_data(as_text=True)
    assert "before we write to her" in page
    db.session.expire_all()
    assert db.session.get(ConversationState, (w["manager"].id, c.id)).unread == 0


# --- The thread: events among the messages, page by page ---------------------------------------------------


def test_notes_and_lines_fall_among_the_messages_on_the_page_of_their_time(client, auth, world) -> None:
    w = world
    start = utcnow() - timedelta(hours=5)
    shown = conversations.PAGE
    sent = [
        say(w["lena"], "inbound", "sms", f"Message {n}", at=start + timedelta(minutes=n))
        for n in range(shown + 5)
    ]
    c = conversation_of(w["lena"])
    notes.add_note(db.session, w["recruiter"], c, "Early note", start + timedelta(minutes=2, seconds=30))
    assignment.assign(
        db.session, w["recruiter"], c, w["manager"], start + timedelta(minutes=shown + 2, seconds=30)
    )
    notes.add_note(db.session, w["manager"], c, "Latest note", utcnow())
    db.session.commit()
    auth.login("recruiter@acme.test")
    newest = client.get(f"/inbox/conversations/{c.id}", headers=HX).get_data(as_text=True)
    thread = newest.split('class="messages"')[1]
    assert "Early note" not in thread  # its time is on the page before
    order = [
        thread.index(s) for s in (f"Message {shown + 2}<", "assigned this to Morgan", f"Message {shown + 3}<")
    ]
    assert order == sorted(order)
    assert thread.index("Latest note") > thread.index(f"Message {shown + 4}<")
    first_shown = sent[5].id
    older = client.get(
        f"/conversations/{c.id}/older", query_string={"tab": "all", "before": first_shown}, headers=HX
    ).get_data(as_text=True)
    assert older.count("Early note") == 1 and "Latest note" not in older and "assigned this" not in older
    assert older.index("Message 2<") < older.index("Early note") < older.index("Message 3<")


def test_the_people_offered_for_a_mention_are_those_who_may_see_it(world) -> None:
    w = world
    lena = conversation_of(w["lena"])
    # The admin of the organisation, and the hiring team; not the sourcer, not another customer's.
    assert [u.name for u in notes.mentionable(db.session, lena)] == [
        "Ada Admin",
        "Morgan Manager",
        "Riley Recruiter",
    ]
    astrid = conversation_of(w["astrid"])
    # A sub-organisation's: its team, and its parent's administrators.
    assert [u.name for u in notes.mentionable(db.session, astrid)] == ["Ada Admin", "Nils Nordic"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(NoteMention)) == 0


def test_open_copies_follow_a_note_and_an_assignment_made_elsewhere(client, auth, world) -> None:
    """The thread's poll and the Inbox's poll: unchanged, 204; after a colleague's note or assignment,
    the thread comes again with it, and the list's row with its assignee."""
    w = world
    say(w["lena"], "inbound", "sms", "Thursday works")
    c = conversation_of(w["lena"])
    auth.login("recruiter@acme.test")
    client.get(f"/inbox?c={c.id}")  # opened: read (the user's own change, before the page's marker)
    page = client.get(f"/inbox?c={c.id}").get_data(as_text=True)
    version = re.search(rf'id="thread-{c.id}"[^>]*data-version="([^"]+)"', page).group(1)
    inbox_poll = test_inbox.poll_url(page) + f"&c={c.id}"  # the open conversation (#inbox-c)

    def thread():
        return client.get(
            f"/conversations/{c.id}/thread", query_string={"tab": "all", "since": version}, headers=HX
        )

    assert thread().status_code == 204 and client.get(inbox_poll, headers=HX).status_code == 204
    notes.add_note(db.session, w["manager"], c, "I spoke to her on the phone", utcnow())
    db.session.commit()
    answer = thread()
    assert answer.status_code == 200 and "I spoke to her on the phone" in answer.get_data(as_text=True)
    assignment.assign(db.session, w["manager"], c, w["manager"], utcnow())
    db.session.commit()
    changed = client.get(inbox_poll, headers=HX)
    assert changed.status_code == 200 and changed.headers.get("HX-Trigger") == "conversation-changed"
    assert "Assigned to Morgan Manager" in changed.get_data(as_text=True)
