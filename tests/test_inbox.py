"""The inbox: what is kept on the conversation with every message, who sees which conversation, the list
(ordering, unread per user, filters, search, keyset pages), the email-only inbox, and the poll."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests import factories as f
from tests.webhook_support import inbound, post, status
from webapp.accounts import access, permissions
from webapp.extensions import db
from webapp.inbox import changes as activity
from webapp.inbox import queries
from webapp.messaging import compose, dispatch, reads
from webapp.messaging.subjects import of_application
from webapp.models import (
    ActivityClock,
    CommunityMembership,
    Conversation,
    ConversationState,
    Message,
    Prospect,
    SourcingTeamMember,
    User,
    utcnow,
)

OUR = "+4915123456700"
LENA = "+4915123456789"
HX = {"HX-Request": "true"}


@pytest.fixture
def world(app):
    acme = f.messaging_org("Acme", sender_name="Acme", has_crm=True)
    nordics = f.messaging_org("Acme Nordics", parent_id=acme.id)
    globex = f.org("Globex")
    admin = f.user(acme, "admin@acme.test", admin=True, name="Ada Admin")
    recruiter = f.user(
        acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Riley Recruiter"
    )
    manager = f.user(acme, "manager@acme.test", name="Morgan Manager")
    sourcer = f.user(acme, "sourcer@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Sam Sourcer")
    nordic = f.user(nordics, "nordic@acme.test", name="Nils Nordic")
    outsider = f.user(globex, "globex@globex.test", admin=True, name="Gloria Globex")
    staff = f.user(None, "csm@relay.test", is_staff=True)
    f.number(acme, OUR)
    f.credits(acme, 100)
    backend = f.job(acme, team=[recruiter, manager], title="Backend Engineer")
    design = f.job(acme, team=[recruiter], title="Designer")
    nordic_job = f.job(nordics, team=[nordic], title="Sales Sweden")
    globex_job = f.job(globex, team=[outsider], title="Accountant")
    lena = f.application(backend, f.candidate(acme, "Lena", "Müller", mobile=LENA))
    jonas = f.application(backend, f.candidate(acme, "Jonas", "Schmidt", mobile="+4915111122233"))
    mia = f.application(design, f.candidate(acme, "Mia", "Schneider", mobile="+447400900111"))
    astrid = f.application(nordic_job, f.candidate(nordics, "Astrid", "Lund", mobile="+46701234567"))
    homer = f.application(globex_job, f.candidate(globex, "Homer", "Jay", mobile="+12015550188"))
    community = f.community(acme, "Engineering pool")
    db.session.add(SourcingTeamMember(community_id=community.id, user_id=sourcer.id))
    prospect = Prospect(
        organization_id=acme.id, first_name="Paul", last_name="Becker", mobile="+4915199988877"
    )
    db.session.add(prospect)
    db.session.flush()
    membership = CommunityMembership(community_id=community.id, prospect_id=prospect.id)
    db.session.add(membership)
    db.session.flush()
    db.session.commit()
    return {
        "acme": acme,
        "nordics": nordics,
        "globex": globex,
        "admin": admin,
        "recruiter": recruiter,
        "manager": manager,
        "sourcer": sourcer,
        "nordic": nordic,
        "outsider": outsider,
        "staff": staff,
        "backend": backend,
        "design": design,
        "lena": lena,
        "jonas": jonas,
        "mia": mia,
        "astrid": astrid,
        "homer": homer,
        "membership": membership,
    }


def conversation_of(subject) -> Conversation:
    """The subject's conversation (an application or a community membership), made if needed."""
    if isinstance(subject, CommunityMembership):
        found = db.session.scalar(
            sa.select(Conversation).where(Conversation.community_membership_id == subject.id)
        )
        if found is None:
            org_id = subject.community.organization_id
            found = Conversation(organization_id=org_id, community_membership_id=subject.id)
            db.session.add(found)
            db.session.flush()
        return found
    found = db.session.scalar(sa.select(Conversation).where(Conversation.application_id == subject.id))
    if found is None:
        found = Conversation(organization_id=subject.job.organization_id, application_id=subject.id)
        db.session.add(found)
        db.session.flush()
    return found


def say(subject, direction: str = "inbound", channel: str = "sms", text: str = "Hello", author=None, at=None):
    """A message joins the subject's conversation (as compose or a webhook would), committed."""
    conversation = conversation_of(subject)
    message = Message(
        conversation_id=conversation.id,
        channel=channel,
        direction=direction,
        author_id=author.id if author else None,
        body=text,
        status="received" if direction == "inbound" else "delivered",
        created_at=at or utcnow(),
        updated_at=at or utcnow(),
    )
    db.session.add(message)
    db.session.flush()
    activity.record(db.session, conversation, message)
    db.session.commit()
    return message


def listed(user, filters: queries.Filters | None = None, size: int = 100) -> list[str]:
    db.session.expire_all()
    scope = queries.scope_for(db.session, user)
    return [r.contact for r in queries.page(db.session, scope, filters or queries.Filters(), size=size).rows]


def state(user, subject) -> ConversationState | None:
    db.session.expire_all()
    return db.session.get(ConversationState, (user.id, conversation_of(subject).id))


def unread(user, subject) -> int:
    found = state(user, subject)
    return found.unread if found else 0


# --- Who sees which conversation ---------------------------------------------------------------------


@pytest.fixture
def talking(world):
    """One message in each conversation of the world, oldest first in this order."""
    start = utcnow() - timedelta(hours=1)
    for i, name in enumerate(["lena", "jonas", "mia", "astrid", "homer", "membership"]):
        say(world[name], text=f"Message {i}", at=start + timedelta(minutes=i))
    return world


def test_each_user_sees_their_teams_conversations_only(talking) -> None:
    w = talking
    assert listed(w["manager"]) == ["Jonas Schmidt", "Lena Müller"]
    assert listed(w["recruiter"]) == ["Mia Schneider", "Jonas Schmidt", "Lena Müller"]
    assert listed(w["sourcer"]) == ["Paul Becker"]
    assert listed(w["nordic"]) == ["Astrid Lund"]
    assert listed(w["outsider"]) == ["Homer Jay"]
    assert listed(w["staff"]) == []


def test_an_admin_sees_the_organisation_and_its_sub_organisations_never_another(talking) -> None:
    w = talking
    assert listed(w["admin"]) == [
        "Paul Becker",
        "Astrid Lund",
        "Mia Schneider",
        "Jonas Schmidt",
        "Lena Müller",
    ]
    homer = conversation_of(w["homer"])
    assert access.get_conversation(db.session, w["admin"], homer.id) is None
    assert access.get_conversation(db.session, w["manager"], conversation_of(w["mia"]).id) is None
    assert access.get_conversation(db.session, w["manager"], conversation_of(w["lena"]).id) is not None


def test_the_viewers_of_a_conversation_are_exactly_who_may_see_it(talking) -> None:
    """The rule both ways (reading: conversation_visible_to; a new message: conversation_viewers)."""
    users = db.session.scalars(sa.select(User)).all()
    for conversation in db.session.scalars(sa.select(Conversation)).all():
        viewers = set(db.session.scalars(access.conversation_viewers(conversation)))
        seeing = {u.id for u in users if access.get_conversation(db.session, u, conversation.id) is not None}
        assert viewers == seeing, conversation.id


def test_the_page_answers_404_for_a_conversation_of_another_organisation(client, auth, talking) -> None:
    w = talking
    auth.login("manager@acme.test")
    homer, mia = conversation_of(w["homer"]).id, conversation_of(w["mia"]).id
    lena = conversation_of(w["lena"]).id
    for other in (homer, mia, 999999):
        assert client.get(f"/inbox?c={other}").status_code == 404
        assert client.get(f"/inbox/conversations/{other}", headers=HX).status_code == 404
    page = client.get(f"/inbox?c={lena}").get_data(as_text=True)
    assert f'data-conversation="{lena}"' in page and ">Application</a>" in page
    assert f'id="messaging-panel-{lena}"' in page and 'role="tablist"' not in page  # every channel
    assert "Homer" not in page and "Mia" not in page


def test_a_sub_organisations_conversation_is_read_only_for_the_parents_admin(client, auth, talking) -> None:
    """The parent's administrator sees Acme Nordics' conversations; its own team writes in them."""
    from tests.conftest import CSRF_RE

    w = talking
    astrid = conversation_of(w["astrid"])
    before = db.session.scalar(sa.select(sa.func.count(Message.id)))
    auth.login("admin@acme.test")
    page = client.get(f"/inbox?c={astrid.id}").get_data(as_text=True)
    assert f'id="messaging-panel-{astrid.id}"' in page and "Astrid Lund" in page
    assert f'id="read-only-{astrid.id}"' in page and "belongs to Acme Nordics" in page
    assert f'id="composer-{astrid.id}" class="composer"' in page and "<textarea" not in page
    assert ">Application</a>" not in page  # its application page is Acme Nordics' people's
    token = CSRF_RE.search(page).group(1)
    sent = client.post(
        f"/conversations/{astrid.id}/messages",
        data={"csrf_token": token, "channel": "email", "subject": "Hi", "body": "Hello Astrid"},
        headers=HX,
    )
    assert sent.status_code == 422 and f'id="read-only-{astrid.id}"' in sent.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == before
    # Their own conversations they write in as before.
    lena = conversation_of(w["lena"]).id
    own = client.get(f"/inbox?c={lena}").get_data(as_text=True)
    assert f'id="composer-{lena}"' in own and "<textarea" in own and f'id="read-only-{lena}"' not in own


# --- Ordering and unread --------------------------------------------------------------------------------


def test_newest_first_and_a_new_message_moves_its_conversation_to_the_top(talking) -> None:
    w = talking
    assert listed(w["recruiter"])[0] == "Mia Schneider"
    say(w["lena"], "outbound", author=w["recruiter"], text="Are you free tomorrow?")
    assert listed(w["recruiter"]) == ["Lena Müller", "Mia Schneider", "Jonas Schmidt"]


def test_unread_is_per_user(world) -> None:
    w = world
    say(w["lena"], text="One")
    say(w["lena"], text="Two")
    assert unread(w["recruiter"], w["lena"]) == 2
    assert unread(w["manager"], w["lena"]) == 2
    assert unread(w["admin"], w["lena"]) == 2
    assert unread(w["sourcer"], w["lena"]) == 0 and state(w["outsider"], w["lena"]) is None

    reads.mark_conversation_read(db.session, w["recruiter"].id, conversation_of(w["lena"]))
    db.session.commit()
    assert unread(w["recruiter"], w["lena"]) == 0
    assert unread(w["manager"], w["lena"]) == 2
    # The application page marks one channel: the inbox's count follows the markers.
    say(w["lena"], channel="whatsapp", text="Three")
    say(w["lena"], channel="sms", text="Four")
    assert unread(w["manager"], w["lena"]) == 4
    conversation = conversation_of(w["lena"])
    reads.mark_read(db.session, w["manager"].id, conversation.id, "sms", conversation.last_message_id)
    db.session.commit()
    assert unread(w["manager"], w["lena"]) == 1  # the WhatsApp one
    assert reads.unread_by_channel(db.session, w["manager"].id, conversation.id) == {"whatsapp": 1}

    # Outbound messages are never unread (writing does not read the rest either: opening does).
    say(w["lena"], "outbound", author=w["recruiter"], text="Thanks")
    assert unread(w["recruiter"], w["lena"]) == 2 and unread(w["manager"], w["lena"]) == 1


def test_mark_unread_and_the_unread_total(talking) -> None:
    w = talking
    scope = queries.scope_for(db.session, w["recruiter"])
    assert queries.unread_total(db.session, scope) == 3
    for name in ("lena", "jonas", "mia"):
        reads.mark_conversation_read(db.session, w["recruiter"].id, conversation_of(w[name]))
    db.session.commit()
    assert queries.unread_total(db.session, scope) == 0
    reads.mark_unread(db.session, w["recruiter"].id, conversation_of(w["jonas"]).id)
    db.session.commit()
    assert queries.unread_total(db.session, scope) == 1
    assert listed(w["recruiter"], queries.Filters(unread=True)) == ["Jonas Schmidt"]
    # Reading it again counts from the markers: nothing new.
    reads.mark_conversation_read(db.session, w["recruiter"].id, conversation_of(w["jonas"]))
    db.session.commit()
    assert listed(w["recruiter"], queries.Filters(unread=True)) == []


def test_the_title_says_the_unread_count(client, auth, talking) -> None:
    auth.login("recruiter@acme.test")
    assert "<title>Inbox (3) · Relay</title>" in client.get("/inbox").get_data(as_text=True)
    assert queries.unread_label(150) == "99+"


# --- Filters and search ---------------------------------------------------------------------------------


@pytest.fixture
def varied(world):
    w = world
    t = utcnow() - timedelta(hours=2)
    say(w["lena"], "outbound", "sms", "Can you come on Thursday?", author=w["recruiter"], at=t)
    say(w["lena"], "inbound", "sms", "Thursday works", at=t + timedelta(minutes=1))
    say(w["jonas"], "outbound", "email", "Your application", author=w["manager"], at=t + timedelta(minutes=2))
    say(w["mia"], "outbound", "whatsapp", "Hi Mia", author=w["recruiter"], at=t + timedelta(minutes=3))
    say(w["mia"], "inbound", "whatsapp", "Hello!", at=t + timedelta(minutes=4))
    reads.mark_conversation_read(db.session, w["recruiter"].id, conversation_of(w["mia"]))
    # *Mine* is what is assigned to the user (issue 21), whoever wrote: Jonas's is nobody's.
    conversation_of(w["lena"]).assignee_id = w["recruiter"].id
    conversation_of(w["mia"]).assignee_id = w["recruiter"].id
    db.session.commit()
    return w


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (queries.Filters(), ["Mia Schneider", "Jonas Schmidt", "Lena Müller"]),
        (queries.Filters(channel="sms"), ["Lena Müller"]),
        (queries.Filters(channel="email"), ["Jonas Schmidt"]),
        (queries.Filters(channel="whatsapp"), ["Mia Schneider"]),
        (queries.Filters(unread=True), ["Lena Müller"]),
        (queries.Filters(reply=True), ["Mia Schneider", "Lena Müller"]),
        (queries.Filters(mine=True), ["Mia Schneider", "Lena Müller"]),
        (queries.Filters(reply=True, unread=True), ["Lena Müller"]),
        (queries.Filters(mine=True, channel="whatsapp"), ["Mia Schneider"]),
        (queries.Filters(unassigned=True), ["Jonas Schmidt"]),
    ],
)
def test_each_filter(varied, filters, expected) -> None:
    assert listed(varied["recruiter"], filters) == expected


def test_the_job_filter(varied) -> None:
    w = varied
    assert listed(w["recruiter"], queries.Filters(job=w["backend"].id)) == ["Jonas Schmidt", "Lena Müller"]
    assert listed(w["recruiter"], queries.Filters(job=w["design"].id)) == ["Mia Schneider"]
    # Another organisation's job filters to nothing, it does not widen anything.
    assert listed(w["recruiter"], queries.Filters(job=w["homer"].job_id)) == []


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("muller", ["Lena Müller"]),  # accents and case aside
        ("MÜLLER lena", ["Lena Müller"]),  # every word, either order
        ("schn", ["Mia Schneider"]),
        ("+49 151 111", ["Jonas Schmidt"]),  # the start of a number, typed with spaces
        ("4915123456789", ["Lena Müller"]),
        # Two digits are enough for the start of a number (a country code), with or without +:
        ("+49", ["Jonas Schmidt", "Lena Müller"]),
        ("49", ["Jonas Schmidt", "Lena Müller"]),
        (" +44 ", ["Mia Schneider"]),
        ("(+49) 1512", ["Lena Müller"]),
        ("00", []),  # but only at the start: Mia's +44 7400 900111 holds 00
        ("+4", []),
        ("74 009", ["Mia Schneider"]),  # three digits or more: anywhere in the number
        ("+74", []),  # a + says it is the start
        ("49+151", []),  # not a number (a + inside): nobody's name or words either
        ("thursday", ["Lena Müller"]),  # message text, case aside
        ("Your application", ["Jonas Schmidt"]),
        ("hello!", ["Mia Schneider"]),
        ("nobody here", []),
        ("100%", []),  # LIKE's own characters are plain text
        ("_", []),
    ],
)
def test_search(varied, q, expected) -> None:
    assert listed(varied["recruiter"], queries.Filters(q=q)) == expected


def test_search_finds_prospects_by_name_and_number(world) -> None:
    w = world
    say(w["membership"], text="Interested in the pool")
    assert listed(w["sourcer"], queries.Filters(q="becker")) == ["Paul Becker"]
    assert listed(w["sourcer"], queries.Filters(q="99988")) == ["Paul Becker"]
    assert listed(w["sourcer"], queries.Filters(q="+49")) == ["Paul Becker"]
    assert listed(w["sourcer"], queries.Filters(q="49 15")) == ["Paul Becker"]
    assert listed(w["sourcer"], queries.Filters(q="+44")) == []
    assert listed(w["sourcer"], queries.Filters(q="the pool")) == ["Paul Becker"]


def test_filters_through_the_page_and_a_bad_filter_is_a_400(client, auth, varied) -> None:
    auth.login("recruiter@acme.test")
    html = client.get("/inbox?q=thursday&channel=sms", headers=HX).get_data(as_text=True)
    assert html.startswith('<div id="inbox-list"')  # htmx gets the list only
    assert re.findall(r'class="inbox-name">([^<]+)<', html) == ["Lena Müller"]
    page = client.get("/inbox?q=thursday&channel=sms").get_data(as_text=True)
    assert 'value="thursday"' in page and '<option selected value="sms">' in page
    bad = client.get("/inbox?channel=fax")
    assert bad.status_code == 400 and "Channel" in bad.get_data(as_text=True)
    assert client.get("/inbox?q=" + "x" * 101).status_code == 400


# --- Keyset pages -------------------------------------------------------------------------------------


def test_pages_follow_each_other_with_ties_in_time(world) -> None:
    """Eleven conversations with the same time: pages of four give each once, by id within the time."""
    w = world
    job = w["backend"]
    same = utcnow() - timedelta(minutes=5)
    for i in range(11):
        application = f.application(job, f.candidate(w["acme"], f"Tie{i:02d}", "Same", mobile=None))
        say(application, text=f"tie {i}", at=same)
    scope = queries.scope_for(db.session, w["recruiter"])
    seen, after, pages = [], None, 0
    while True:
        got = queries.page(db.session, scope, queries.Filters(), after, size=4)
        seen += [r.id for r in got.rows]
        pages += 1
        if got.next is None:
            break
        after = got.next
    assert pages == 3 and len(seen) == 11 == len(set(seen))
    assert seen == sorted(seen, reverse=True)  # the same time: newest id first


def test_the_next_page_through_http_and_without_javascript(client, auth, world) -> None:
    w = world
    start = utcnow() - timedelta(hours=3)
    for i in range(queries.PAGE_SIZE + 5):
        application = f.application(w["backend"], f.candidate(w["acme"], f"P{i:02d}", "Page", mobile=None))
        say(application, text=f"page {i}", at=start + timedelta(minutes=i))
    auth.login("recruiter@acme.test")
    html = client.get("/inbox").get_data(as_text=True)
    first = re.findall(r'id="inbox-row-(\d+)"', html)
    assert len(first) == queries.PAGE_SIZE
    more = (
        re.search(r'hx-get="(/inbox/more\?[^"]+)" hx-trigger="revealed"', html).group(1).replace("&amp;", "&")
    )
    rest = client.get(more, headers=HX).get_data(as_text=True)
    second = re.findall(r'id="inbox-row-(\d+)"', rest)
    assert len(second) == 5 and not set(first) & set(second) and "inbox-more" not in rest
    # Without JavaScript the sentinel is a link to the same page of the list.
    link = (
        re.search(r'<a href="(/inbox\?after=[^"]+)">Older conversations', html).group(1).replace("&amp;", "&")
    )
    assert re.findall(r'id="inbox-row-(\d+)"', client.get(link).get_data(as_text=True)) == second
    assert client.get("/inbox/more?after=nonsense", headers=HX).status_code == 400


# --- The page's script ----------------------------------------------------------------------------------


def scripts(html: str) -> list[str]:
    return re.findall(r'<script src="([^"]+)"', html)


def test_only_the_inbox_page_loads_the_inbox_script(client, auth, talking) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    inbox = client.get("/inbox").get_data(as_text=True)
    assert scripts(inbox) == ["/static/vendor/htmx.min.js", "/static/js/app.js", "/static/js/inbox.js"]
    with_pane = client.get(f"/inbox?c={conversation_of(w['lena']).id}").get_data(as_text=True)
    assert "/static/js/inbox.js" in scripts(with_pane)
    for path in ("/jobs", f"/jobs/{w['backend'].id}", f"/applications/{w['lena'].id}", "/login"):
        if path == "/login":
            auth.logout()
        html = client.get(path).get_data(as_text=True)
        assert scripts(html)[:2] == ["/static/vendor/htmx.min.js", "/static/js/app.js"], path
        assert "/static/js/inbox.js" not in scripts(html), path


# --- Email only ---------------------------------------------------------------------------------------


def test_an_email_only_inbox_has_no_texting_controls(client, auth, world) -> None:
    w = world
    say(w["homer"], "outbound", "email", "Dear Homer", author=w["outsider"])
    auth.login("globex@globex.test")
    html = client.get("/inbox").get_data(as_text=True)
    assert "Homer Jay" in html
    assert 'id="inbox-channel"' not in html and 'class="ch ' not in html
    assert "SMS" not in html and "WhatsApp" not in html
    auth.logout()
    say(w["lena"], "outbound", "sms", "Hi", author=w["recruiter"])
    auth.login("recruiter@acme.test")
    html = client.get("/inbox").get_data(as_text=True)
    assert 'id="inbox-channel"' in html and 'class="ch ch-sms"' in html


# --- The poll -----------------------------------------------------------------------------------------


class Statements:
    """Counts the SQL statements the app sends (a SQLAlchemy event on the engine)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __enter__(self) -> Statements:
        sa.event.listen(db.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(db.engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.seen.append(statement)


def poll_url(html: str) -> str:
    return re.search(r'hx-get="(/inbox/changes\?[^"]+)"', html).group(1).replace("&amp;", "&")


def test_the_unchanged_poll_is_a_204_from_two_statements(client, auth, talking) -> None:
    auth.login("recruiter@acme.test")
    url = poll_url(client.get("/inbox").get_data(as_text=True))
    db.session.remove()
    with Statements() as counted:
        response = client.get(url, headers=HX)
    assert response.status_code == 204
    # The session check (one row, by its key) and the marker (two index lookups in one statement).
    assert len(counted.seen) <= 2, counted.seen
    assert any("activity_clock" in s for s in counted.seen)


def test_a_change_comes_with_the_next_poll_and_the_poll_marks_nothing_read(client, auth, talking) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    url = poll_url(client.get("/inbox").get_data(as_text=True))
    before = {s.conversation_id: s.unread for s in db.session.scalars(sa.select(ConversationState))}
    say(w["jonas"], text="A new reply")
    answer = client.get(url, headers=HX)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    jonas = conversation_of(w["jonas"]).id
    assert re.findall(r'id="inbox-row-(\d+)"', html) == [str(jonas)]
    assert "A new reply" in html and 'data-title="Inbox (3) · Relay"' in html
    # The next poll, from the marker this answer carries, is unchanged again.
    assert client.get(poll_url(html), headers=HX).status_code == 204
    db.session.expire_all()
    after = {s.conversation_id: s.unread for s in db.session.scalars(sa.select(ConversationState))}
    assert after[jonas] == before[jonas] + 1
    assert all(after[c] == n for c, n in before.items() if c != jonas)


def test_a_status_change_moves_the_marker_and_a_row_that_leaves_the_filter_is_removed(
    client, auth, talking
) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    html = client.get("/inbox?unread=1").get_data(as_text=True)
    url = poll_url(html)
    # Reading Mia's conversation (elsewhere) takes it out of "unread".
    reads.mark_conversation_read(db.session, w["recruiter"].id, conversation_of(w["mia"]))
    db.session.commit()
    changed = client.get(url, headers=HX).get_data(as_text=True)
    assert f'data-removed="{conversation_of(w["mia"]).id}"' in changed


def settled(client, url: str) -> str:
    """The poll's address once it answers 204 (what the page has loaded since it is in)."""
    for _ in range(3):
        answer = client.get(url, headers=HX)
        if answer.status_code == 204:
            return url
        url = poll_url(answer.get_data(as_text=True))
    raise AssertionError("the poll did not settle")


def test_a_status_report_tells_the_open_thread_and_leaves_the_list_quiet(client, auth, talking) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    sent = say(w["lena"], "outbound", author=w["recruiter"], text="Hi")
    sent.status, sent.provider_id = "submitted", "uuid-1"
    db.session.commit()
    lena, mia = conversation_of(w["lena"]).id, conversation_of(w["mia"]).id
    page = client.get(f"/inbox?c={lena}").get_data(as_text=True)
    url = settled(client, f"{poll_url(page)}&c={lena}").removesuffix(f"&c={lena}")
    thread = re.search(rf'id="thread-{lena}"[^>]*?hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert client.get(thread, headers=HX).status_code == 204

    post(client, "/webhooks/vonage/status", status("uuid-1", "delivered"))
    # A list row shows no status: the list's poll stays quiet, with another conversation open or none.
    assert client.get(url, headers=HX).status_code == 204
    assert client.get(f"{url}&c={mia}", headers=HX).status_code == 204
    # Lena's open: her thread is told (and draws the status), no row changes.
    answer = client.get(f"{url}&c={lena}", headers=HX)
    html = answer.get_data(as_text=True)
    assert answer.headers.get("HX-Trigger") == "conversation-changed"
    assert put_in(html) == [] and taken_out(html) == ["#inbox-poll"]
    assert client.get(thread, headers=HX).status_code == 200
    # The marker that answer carries has seen it.
    url = poll_url(html)
    assert client.get(f"{url}&c={lena}", headers=HX).status_code == 204

    # A reply moves both: her row, and her open thread.
    say(w["lena"], text="Thanks, see you")
    answer = client.get(f"{url}&c={lena}", headers=HX)
    assert answer.headers.get("HX-Trigger") == "conversation-changed"
    assert [who for _, who in put_in(answer.get_data(as_text=True))] == [str(lena)]
    assert [who for _, who in put_in(client.get(url, headers=HX).get_data(as_text=True))] == [str(lena)]


def taken_out(html: str) -> list[str]:
    """What a poll's answer takes out of the page (its htmx delete swap)."""
    return [part.strip() for part in re.search(r'hx-swap-oob="delete:([^"]+)"', html).group(1).split(",")]


def put_in(html: str) -> list[tuple[str, str]]:
    """The rows a poll's answer puts in, in order: where (its htmx swap) and whose."""
    return re.findall(r'<ol hx-swap-oob="([^"]+)"><li class="inbox-row[^"]*" id="inbox-row-(\d+)"', html)


def cursor_of(subject) -> str:
    conversation = conversation_of(subject)
    db.session.refresh(conversation)
    return queries.Cursor(conversation.last_message_at, conversation.id).encode()


def test_the_poll_puts_a_changed_row_before_the_first_row_below_it_that_did_not_change(
    client, auth, talking
) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    html = client.get("/inbox").get_data(as_text=True)
    lena, jonas, mia = (str(conversation_of(w[name]).id) for name in ("lena", "jonas", "mia"))
    assert re.findall(r'id="inbox-row-(\d+)"', html) == [mia, jonas, lena]
    url = poll_url(html)
    say(w["lena"], text="Back to you")
    say(w["jonas"], text="Me too")
    answer = client.get(url, headers=HX).get_data(as_text=True)
    # Out: the poll that asked and both rows; in: both, newest first, above Mia's (unchanged); then the
    # next poll, added to the list as the answer itself.
    assert taken_out(answer) == ["#inbox-poll", f"#inbox-row-{lena}", f"#inbox-row-{jonas}", "#inbox-empty"]
    above_mia = f"beforebegin:#inbox-row-{mia}"
    assert put_in(answer) == [(above_mia, jonas), (above_mia, lena)]
    assert re.search(r'<div id="inbox-poll"[^>]+hx-target="#inbox-list" hx-swap="beforeend"', answer)
    # Jonas's row, now the first, changes where it is (it is read): before the row below it.
    url = poll_url(answer)
    reads.mark_conversation_read(db.session, w["recruiter"].id, conversation_of(w["jonas"]))
    db.session.commit()
    answer = client.get(url, headers=HX).get_data(as_text=True)
    assert put_in(answer) == [(f"beforebegin:#inbox-row-{lena}", jonas)]


def test_the_poll_puts_rows_only_among_those_the_page_has_loaded(client, auth, talking) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    lena, jonas = (str(conversation_of(w[name]).id) for name in ("lena", "jonas"))
    url = poll_url(client.get("/inbox").get_data(as_text=True))
    # Lena's row, the oldest, changes where it is.
    reads.mark_conversation_read(db.session, w["recruiter"].id, conversation_of(w["lena"]))
    db.session.commit()
    # The list is loaded to its end: at the end.
    assert put_in(client.get(url, headers=HX).get_data(as_text=True)) == [("beforeend:#inbox-rows", lena)]
    # Loaded down to Lena, more to come: before the sentinel of the next page.
    answer = client.get(f"{url}&until={cursor_of(w['lena'])}", headers=HX).get_data(as_text=True)
    assert put_in(answer) == [("beforebegin:#inbox-rows > .inbox-more", lena)]
    # Loaded down to Jonas only: her row waits for the page that loads it (the old one goes all the same).
    answer = client.get(f"{url}&until={cursor_of(w['jonas'])}", headers=HX).get_data(as_text=True)
    assert put_in(answer) == [] and f"#inbox-row-{lena}" in taken_out(answer)
    # A page that starts below Mia (after): a reply from Lena goes to its top, before Jonas.
    html = client.get(f"/inbox?after={cursor_of(w['mia'])}").get_data(as_text=True)
    assert re.findall(r'id="inbox-row-(\d+)"', html) == [jonas, lena]
    url = poll_url(html)
    assert f"after={cursor_of(w['mia'])}" in url
    say(w["lena"], text="Back to you")
    answer = client.get(url, headers=HX).get_data(as_text=True)
    assert put_in(answer) == [(f"beforebegin:#inbox-row-{jonas}", lena)]


def test_the_poll_tells_the_open_conversation_when_it_changed(client, auth, talking) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    lena, mia = conversation_of(w["lena"]).id, conversation_of(w["mia"]).id
    url = poll_url(client.get("/inbox").get_data(as_text=True))
    say(w["lena"], text="Back to you")
    assert client.get(f"{url}&c={lena}", headers=HX).headers.get("HX-Trigger") == "conversation-changed"
    assert "HX-Trigger" not in client.get(f"{url}&c={mia}", headers=HX).headers
    assert "HX-Trigger" not in client.get(url, headers=HX).headers


def test_the_users_own_read_marks_move_the_row_not_the_open_thread(client, auth, talking) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    lena = conversation_of(w["lena"]).id
    url = poll_url(client.get("/inbox").get_data(as_text=True))
    # Read elsewhere (another tab): the row changes (no longer unread); the thread shows no read marks.
    reads.mark_conversation_read(db.session, w["recruiter"].id, conversation_of(w["lena"]))
    db.session.commit()
    answer = client.get(f"{url}&c={lena}", headers=HX)
    assert [who for _, who in put_in(answer.get_data(as_text=True))] == [str(lena)]
    assert "HX-Trigger" not in answer.headers


def test_the_poll_counts_the_unread_total_only_when_the_users_own_state_moved(client, auth, talking) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    url = poll_url(client.get("/inbox").get_data(as_text=True))
    # A colleague's message moves Jonas's row, not the recruiter's unread counts: no count, no title
    # (the page keeps its own).
    say(w["jonas"], direction="outbound", text="On it", author=w["manager"])
    db.session.remove()
    with Statements() as counted:
        html = client.get(url, headers=HX).get_data(as_text=True)
    assert "On it" in html and "data-title" not in html
    assert not any("count(" in s for s in counted.seen), counted.seen
    # Read elsewhere (another tab): the user's own state moved, and the title follows.
    reads.mark_conversation_read(db.session, w["recruiter"].id, conversation_of(w["lena"]))
    db.session.commit()
    html = client.get(poll_url(html), headers=HX).get_data(as_text=True)
    assert 'data-title="Inbox (2) · Relay"' in html


def test_a_poll_with_changed_rows_reads_them_and_their_place_in_the_list_in_three_statements(
    client, auth, talking
) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    url = poll_url(client.get("/inbox").get_data(as_text=True))
    say(w["lena"], direction="outbound", text="On it", author=w["manager"])
    db.session.remove()
    with Statements() as counted:
        html = client.get(url, headers=HX).get_data(as_text=True)
    assert "On it" in html
    # Which conversations changed, with whether each is in the list (one statement); their rows; the
    # unchanged rows they go before. Besides: the session, the user's organisation and permissions (the
    # scope), and the marker.
    about_the_list = [s for s in counted.seen if "conversation" in s and "activity_clock" not in s]
    assert len(about_the_list) == 3, about_the_list


def test_after_too_many_changes_the_poll_answers_the_list_again(client, auth, talking, monkeypatch) -> None:
    w = talking
    auth.login("recruiter@acme.test")
    url = poll_url(client.get("/inbox").get_data(as_text=True))
    monkeypatch.setattr(queries, "CHANGES_CAP", 1)
    say(w["lena"], text="Back to you")
    say(w["jonas"], text="Me too")
    answer = client.get(url, headers=HX)
    html = answer.get_data(as_text=True)
    # The list in place of the list (the poll's target), its first page, with its own next poll.
    assert answer.headers["HX-Reswap"] == "outerHTML"
    assert html.startswith('<div id="inbox-list"') and "hx-swap-oob" not in html
    names = re.findall(r'class="inbox-name">([^<]+)<', html)
    assert names == ["Jonas Schmidt", "Lena Müller", "Mia Schneider"]
    assert client.get(poll_url(html), headers=HX).status_code == 204


# --- What is kept on the conversation -----------------------------------------------------------------


def clock(org) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(ActivityClock.seq).where(ActivityClock.organization_id == org.id)) or 0


def test_compose_keeps_the_latest_message_and_mine(world) -> None:
    w = world
    before = clock(w["acme"])
    message = compose.compose(
        db.session, w["recruiter"], of_application(w["lena"]), "sms", "Hi %FIRSTNAME%,\nsee you soon"
    )
    db.session.commit()
    c = conversation_of(w["lena"])
    db.session.refresh(c)
    assert (c.last_message_id, c.last_direction, c.last_channel) == (message.id, "outbound", "sms")
    assert c.last_author_id == w["recruiter"].id and c.last_preview == "Hi Lena,"
    assert c.has_sms and not c.has_email and not c.has_whatsapp
    assert c.last_message_at == message.created_at
    assert state(w["recruiter"], w["lena"]).wrote
    assert clock(w["acme"]) == before + 1 == c.change_seq == c.list_seq
    email = compose.compose(
        db.session, w["manager"], of_application(w["lena"]), "email", "Dear Lena", subject="Interview"
    )
    db.session.commit()
    db.session.refresh(c)
    assert c.last_message_id == email.id and c.has_email and c.last_preview == "Interview"
    assert state(w["manager"], w["lena"]).wrote and c.change_seq == c.list_seq == before + 2


def test_an_inbound_reply_and_the_help_answer_are_kept(client, world) -> None:
    w = world
    sent = compose.compose(db.session, w["recruiter"], of_application(w["lena"]), "sms", "Hi Lena")
    db.session.commit()
    seq = conversation_of(w["lena"]).change_seq
    assert post(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, "Yes, Thursday")).status_code == 200
    c = conversation_of(w["lena"])
    db.session.refresh(c)
    assert (c.last_direction, c.last_preview, c.last_author_id) == ("inbound", "Yes, Thursday", None)
    assert c.last_message_id > sent.id and c.change_seq > seq
    assert unread(w["recruiter"], w["lena"]) == 1 and unread(w["manager"], w["lena"]) == 1
    assert unread(w["admin"], w["lena"]) == 1 and state(w["nordic"], w["lena"]) is None

    assert post(client, "/webhooks/vonage/inbound", inbound(OUR, LENA, "HELP")).status_code == 200
    db.session.refresh(c)
    answer = db.session.get(Message, c.last_message_id)
    assert answer.direction == "outbound" and answer.author_id is None and "Reply STOP" in answer.body
    assert c.last_direction == "outbound" and c.last_preview.startswith("Acme: this number")
    assert unread(w["recruiter"], w["lena"]) == 2  # HELP itself is a message from her


def test_status_changes_and_the_dispatchers_sweep_move_the_marker(app, world) -> None:
    w = world
    message = compose.compose(db.session, w["recruiter"], of_application(w["lena"]), "sms", "Hi")
    db.session.commit()
    seq = conversation_of(w["lena"]).change_seq
    assert conversation_of(w["lena"]).list_seq == seq
    from webapp.messaging import status as status_rules

    status_rules.receive_report(db.session, "none", "delivered", client_ref=str(message.id))
    db.session.commit()
    after_report = conversation_of(w["lena"]).change_seq
    assert after_report > seq
    # A status is the thread's, not the list row's: the list's marker stays.
    assert conversation_of(w["lena"]).list_seq == seq
    # The sweep's bulk UPDATEs (a claim whose lease ran out) move it too.
    other = compose.compose(db.session, w["recruiter"], of_application(w["lena"]), "sms", "Again")
    other.status, other.attempts, other.claimed_at = "sending", 1, utcnow() - timedelta(hours=1)
    db.session.commit()
    before_sweep = conversation_of(w["lena"]).change_seq
    found = dispatch.recover(now=utcnow(), hand_over=False)
    assert other.id in found.unknown
    db.session.expire_all()
    assert conversation_of(w["lena"]).change_seq > before_sweep
    assert conversation_of(w["lena"]).list_seq == before_sweep  # "Again" joined; the sweep is a status


def test_a_rolled_back_change_moves_nothing(world) -> None:
    w = world
    before = clock(w["acme"])
    conversation = conversation_of(w["lena"])
    db.session.commit()
    activity.touch(db.session, conversation.id)
    db.session.rollback()
    db.session.commit()
    assert clock(w["acme"]) == before


def test_a_sub_organisations_change_moves_its_clock_and_its_parents(world) -> None:
    w = world
    say(w["astrid"], text="Hej")
    seq = conversation_of(w["astrid"]).change_seq
    assert clock(w["nordics"]) == seq == clock(w["acme"])
    say(w["lena"], text="Hi")
    assert (
        clock(w["acme"]) == seq + 1 and clock(w["nordics"]) == seq
    )  # the parent's change is not the child's


def test_one_commit_over_several_customers_moves_each_clock_once(world) -> None:
    """Conversations of two customers changed in one commit (a batch of webhooks): each customer's clock
    moves once and its conversations take its value; with a sub-organisation's among them, its family's
    clocks move too (PostgreSQL takes the first case in one statement, the second in several)."""
    w = world
    lena, jonas, homer, astrid = (conversation_of(w[k]) for k in ("lena", "jonas", "homer", "astrid"))
    db.session.commit()
    acme, globex, nordics = clock(w["acme"]), clock(w["globex"]), clock(w["nordics"])
    for conversation in (lena, jonas, homer):
        activity.touch(db.session, conversation.id)
    db.session.commit()
    assert (clock(w["acme"]), clock(w["globex"]), clock(w["nordics"])) == (acme + 1, globex + 1, nordics)
    assert lena.change_seq == jonas.change_seq == acme + 1 and homer.change_seq == globex + 1

    for conversation in (lena, homer, astrid):
        activity.touch(db.session, conversation.id)
    db.session.commit()
    assert (clock(w["acme"]), clock(w["globex"])) == (acme + 2, globex + 2)
    assert clock(w["nordics"]) == acme + 2  # set to its customer's value, as every change of it does
    assert lena.change_seq == astrid.change_seq == acme + 2 and homer.change_seq == globex + 2

    # The list's marker moves only for a change its row shows (listed), in either statement.
    listed = {c.id: c.list_seq for c in (lena, jonas, homer, astrid)}
    for conversation in (lena, jonas, homer):
        activity.touch(db.session, conversation.id, listed=conversation is not jonas)
    db.session.commit()
    assert lena.list_seq == lena.change_seq == acme + 3 and jonas.list_seq == listed[jonas.id]
    assert homer.list_seq == homer.change_seq == globex + 3
    activity.touch(db.session, astrid.id, listed=True)
    activity.touch(db.session, jonas.id)
    db.session.commit()
    assert astrid.list_seq == astrid.change_seq == acme + 4 and jonas.list_seq == listed[jonas.id]
    db.session.expire_all()
    assert (lena.list_seq, astrid.list_seq, jonas.list_seq) == (acme + 3, acme + 4, listed[jonas.id])


# --- Jobs and applications show unread and last activity -------------------------------------------


def test_the_jobs_and_a_jobs_applications_show_unread_and_last_activity(client, auth, varied) -> None:
    w = varied
    auth.login("recruiter@acme.test")
    jobs = client.get("/jobs").get_data(as_text=True)
    backend = re.search(rf'<tr id="job-{w["backend"].id}">.*?</tr>', jobs, re.S).group(0)
    design = re.search(rf'<tr id="job-{w["design"].id}">.*?</tr>', jobs, re.S).group(0)
    assert 'data-unread="1"' in backend and "<time" in backend  # Lena's reply
    assert "data-unread" not in design and "<time" in design  # Mia's, read
    detail = client.get(f"/jobs/{w['backend'].id}").get_data(as_text=True)
    lena = re.search(rf'<tr id="application-{w["lena"].id}">.*?</tr>', detail, re.S).group(0)
    jonas = re.search(rf'<tr id="application-{w["jonas"].id}">.*?</tr>', detail, re.S).group(0)
    assert 'data-unread="1"' in lena and "<time" in lena
    assert "data-unread" not in jonas and "<time" in jonas
    # Unread is the reader's: the manager has not read Mia's (not theirs) nor Lena's.
    auth.logout()
    auth.login("manager@acme.test")
    jobs = client.get("/jobs").get_data(as_text=True)
    assert 'data-unread="1"' in re.search(rf'<tr id="job-{w["backend"].id}">.*?</tr>', jobs, re.S).group(0)


def test_times_read_in_the_organisations_zone(client, auth, world) -> None:
    w = world
    w["acme"].time_zone = "Europe/Berlin"
    db.session.commit()
    at = datetime(2026, 1, 15, 12, 5, tzinfo=UTC)  # winter: 13:05 in Berlin
    say(w["lena"], text="Noon in London", at=at)
    auth.login("recruiter@acme.test")
    inbox = client.get("/inbox").get_data(as_text=True)
    row = re.search(rf'<li [^>]*id="inbox-row-{conversation_of(w["lena"]).id}".*?</li>', inbox, re.S).group(0)
    assert "15 Jan 13:05 CET" in row
    detail = client.get(f"/jobs/{w['backend'].id}").get_data(as_text=True)
    lena = re.search(rf'<tr id="application-{w["lena"].id}">.*?</tr>', detail, re.S).group(0)
    assert "15 Jan 13:05 CET" in lena
    # Someone of an organisation in UTC reads the same moment in UTC.
    auth.logout()
    w["acme"].time_zone = "UTC"
    db.session.commit()
    auth.login("recruiter@acme.test")
    assert "15 Jan 12:05 UTC" in client.get("/inbox").get_data(as_text=True)
