"""Races on PostgreSQL, where writers really meet (issue 17 §3): two requests at once get one result and
one clear refusal, never a 500, and leave the right state behind.

Every request here is a real one, through the app, from a test client of its own in a thread of its own
(so each has its own application context, session and connection). Each race is played in one or both
of two ways:

- a burst: the requests are released at the same moment (a barrier), as a double click or two
  colleagues would send them;
- step by step, which shows that the race really happened: the test holds the first writer's
  transaction open (its change flushed, not committed), starts the second request, sees in
  pg_stat_activity that the second waits on a lock the first holds, then commits the first and reads the
  second's answer.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from tests import factories as f
from tests.conftest import Auth, csrf_from
from webapp.accounts import people, permissions
from webapp.billing import credits
from webapp.compliance import catalogue, files, submissions
from webapp.crm import prospects
from webapp.demo import _demo_pdf
from webapp.extensions import db
from webapp.messaging import templates
from webapp.models import (
    CommunityMembership,
    ComplianceDocument,
    ComplianceEvent,
    CreditAccount,
    HiringTeamMember,
    MessageTemplate,
    Permission,
    Prospect,
    Role,
    SendingNumber,
    User,
    WhatsappTemplate,
)
from webapp.numbers import pool

Answer = tuple[int, str]
CLIENTS = 10
PDF = _demo_pdf("Acme SAS")


@pytest.fixture
def backend() -> str:
    return "postgresql"  # SQLite serialises writers; the race only exists on a real server


@pytest.fixture
def app_config() -> dict[str, object]:
    # A connection for every request in flight, and the test's own.
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": CLIENTS + 2, "max_overflow": 5, "pool_timeout": 30}}


# --- Requests in threads ----------------------------------------------------------------------------------


# A request made in this thread would join the test's application context (its session, and Flask-Login's
# user in `g`): the test's own requests run in a context of their own.


def signed_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    with app.app_context():
        assert Auth(client).login(email).status_code == 302
    return client


def token(client: FlaskClient, path: str) -> str:
    with client.application.app_context():
        return csrf_from(client, path)


def _answer(call: Callable[[], TestResponse]) -> Answer:
    try:
        response = call()
    except Exception as exc:  # the test client raises what the app would answer with a 500
        return 500, repr(exc)
    return response.status_code, response.get_data(as_text=True)


def at_once(calls: list[Callable[[], TestResponse]]) -> list[Answer]:
    """Each call (a prepared request) in a thread of its own, all released at the same moment."""
    start = threading.Barrier(len(calls))
    answers: list[Answer | None] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait(timeout=60)
        answers[i] = _answer(calls[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(a is not None for a in answers), "a request never answered"
    return [a for a in answers if a is not None]


class InFlight:
    """A request started at once in a thread of its own."""

    def __init__(self, call: Callable[[], TestResponse]) -> None:
        self.answer: Answer | None = None

        def run() -> None:
            self.answer = _answer(call)

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def waits_for(self, pid: int, timeout: float = 20) -> None:
        """Returns once a backend of this database waits on a lock that `pid` holds; fails if the request
        answers without ever waiting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.thread.is_alive():
            # A connection of its own each time: pg_stat_activity is read once per transaction.
            with db.engine.connect() as conn:
                waiting = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND :pid = ANY(pg_blocking_pids(pid))"
                    ),
                    {"pid": pid},
                ).scalar_one()
            if waiting:
                return
            time.sleep(0.02)
        self.thread.join(timeout=5)
        status = self.answer[0] if self.answer else None
        raise AssertionError(f"the second request never waited for the first (it answered {status})")

    def result(self) -> Answer:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive() and self.answer is not None
        return self.answer


def holding(first: Callable[[], object], second: Callable[[], TestResponse]) -> tuple[object, Answer]:
    """`first` in the test's transaction (flushed, held open), `second` a request that must wait for it;
    then the first commits, and the second answers."""
    mine = db.session.scalar(sa.select(sa.func.pg_backend_pid()))
    assert mine is not None
    outcome = first()
    db.session.flush()
    request = InFlight(second)
    try:
        request.waits_for(mine)
    finally:
        db.session.commit()
    return outcome, request.result()


def count(model: type, *where: sa.ColumnElement[bool]) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0


def statuses(answers: list[Answer]) -> list[int]:
    return sorted(status for status, _ in answers)


# --- A prospect: one per organisation and number -----------------------------------------------------------

MOBILE = "+4915123456789"


@pytest.fixture
def crm(app: Flask) -> dict:
    org = f.messaging_org("Acme", has_crm=True)
    admin = f.user(org, "admin@acme.test", admin=True)
    nordic = f.community(org, "Nordic engineers")
    designers = f.community(org, "Designers")
    db.session.commit()
    return {"org": org, "admin": admin, "nordic": nordic, "designers": designers}


def add_member(client: FlaskClient, community_id: int, **fields: str) -> Callable[[], TestResponse]:
    """A prepared "Add" on the community's page (without htmx: 303 when added, 422 with the reason)."""
    csrf = token(client, f"/communities/{community_id}")
    data = {"first_name": "Lena", "last_name": "Berg", "mobile": MOBILE, "email": "", **fields}
    return lambda: client.post(f"/communities/{community_id}/members", data={**data, "csrf_token": csrf})


def test_ten_adds_of_one_new_mobile_at_once_make_one_prospect(app, crm) -> None:
    clients = [signed_in(app, "admin@acme.test") for _ in range(CLIENTS)]
    # The same number typed in different ways: one number all the same.
    typed = ["+49 151 23456789", "+4915123456789", "+49 (151) 234-56789", "+49-151-2345-6789"]
    answers = at_once(
        [add_member(c, crm["nordic"].id, mobile=typed[i % len(typed)]) for i, c in enumerate(clients)]
    )

    assert statuses(answers) == [303] + [422] * (CLIENTS - 1), [a[0] for a in answers]
    for status, html in answers:
        if status == 422:
            assert 'id="mobile-error">Lena Berg is already a member of Nordic engineers' in html, re.findall(
                r'id="[a-z_]+-error">[^<]*', html
            )
    assert count(Prospect) == 1 and count(CommunityMembership) == 1
    assert db.session.scalar(sa.select(Prospect.mobile)) == MOBILE


@pytest.mark.parametrize(
    ("where", "name", "status", "told"),
    [
        # The same person in the same community: the second is told they are a member already.
        ("nordic", "Lena", 422, 'id="mobile-error">Lena Berg is already a member of Nordic engineers'),
        # The same person in another community: the prospect the first stored, not a copy.
        ("designers", "Lena", 303, ""),
        # Someone else with that number: told whose number it is.
        ("nordic", "Lara", 422, "is already the number of Lena Berg, a prospect of Acme"),
    ],
)
def test_a_second_add_of_the_number_waits_for_the_first_then_finds_them(
    app, crm, where, name, status, told
) -> None:
    second = add_member(signed_in(app, "admin@acme.test"), crm[where].id, first_name=name)

    _, (answered, html) = holding(
        lambda: prospects.add_member(db.session, crm["nordic"], "Lena", "Berg", MOBILE, ""), second
    )

    assert answered == status, html[:2000]
    assert told in html
    assert count(Prospect) == 1
    prospect = db.session.scalar(sa.select(Prospect))
    communities = set(
        db.session.scalars(
            sa.select(CommunityMembership.community_id).where(CommunityMembership.prospect_id == prospect.id)
        )
    )
    assert communities == {crm["nordic"].id, crm[where].id}


def test_people_reached_by_email_only_may_be_many(app, crm) -> None:
    client = signed_in(app, "admin@acme.test")
    for first, email in (("Ada", "ada@example.com"), ("Alan", "alan@example.com")):
        send = add_member(client, crm["nordic"].id, first_name=first, mobile="", email=email)
        assert statuses(at_once([send])) == [303]
    assert db.session.scalars(sa.select(Prospect.mobile)).all() == [None, None]


# --- A submission's last two documents approved at once ---------------------------------------------------


@pytest.fixture
def compliance(app: Flask) -> dict:
    """Acme's French documents submitted, two of four approved; its French number waits for them."""
    catalogue.sync(db.session)
    acme = f.messaging_org("Acme")
    staff = [f.user(None, f"csm{i}@relay.test", is_staff=True, name=f"Casey {i}") for i in (1, 2)]
    admin = f.user(acme, "admin@acme.test", admin=True, codes=[permissions.ADMIN_NUMBERS])
    fr = pool.add(db.session, staff[0], acme, "+33612345600", sms=True, whatsapp=False)
    store = files.store_for(app)
    submission = submissions.get_or_create(db.session, acme.id, "FR")
    documents = []
    for requirement in catalogue.requirements(db.session, "FR"):
        upload = files.accept("kbis.pdf", io.BytesIO(PDF))
        documents.append(
            submissions.upload(
                db.session,
                store,
                admin,
                submission,
                requirement.id,
                requirement.documents[0].id,
                "Acme",
                upload,
            )
        )
    submissions.submit(db.session, admin, submission)
    for document in documents[:2]:
        submissions.review_document(db.session, staff[0], submission, document.id, "approve")
    db.session.commit()
    assert (submission.status, fr.status) == ("submitted", "pending_documents")
    return {
        "acme": acme,
        "admin": admin,
        "staff": staff[0],
        "submission": submission,
        "documents": documents,
        "fr": fr,
    }


def approve(client: FlaskClient, document: ComplianceDocument) -> Callable[[], TestResponse]:
    path = f"/staff/submissions/{document.submission_id}"
    data = {"csrf_token": token(client, path), f"d{document.id}-reason": ""}
    return lambda: client.post(f"{path}/documents/{document.id}/approve", data=data)


def settled(compliance: dict) -> tuple[str, str, int]:
    db.session.expire_all()
    approvals = count(
        ComplianceEvent,
        ComplianceEvent.submission_id == compliance["submission"].id,
        ComplianceEvent.action == "approved",
    )
    return compliance["submission"].status, compliance["fr"].status, approvals


def test_the_second_approval_waits_for_the_first_and_sees_it(app, compliance) -> None:
    """The decision is taken under the submission's lock, on what the first approval committed."""
    third, fourth = compliance["documents"][2:]
    staff = compliance["staff"]
    second = approve(signed_in(app, "csm2@relay.test"), fourth)

    _, (status, html) = holding(
        lambda: submissions.review_document(db.session, staff, compliance["submission"], third.id, "approve"),
        second,
    )

    assert status == 303, html[:2000]
    assert settled(compliance) == ("approved", "active", 1)
    assert {d.status for d in compliance["documents"]} == {"approved"}


def test_one_document_approved_twice_at_once_is_approved_once(app, compliance) -> None:
    third = compliance["documents"][2]
    staff = compliance["staff"]
    second = approve(signed_in(app, "csm2@relay.test"), third)

    _, (status, html) = holding(
        lambda: submissions.review_document(db.session, staff, compliance["submission"], third.id, "approve"),
        second,
    )

    assert status == 422 and "Already approved." in html
    approvals = count(
        ComplianceEvent,
        ComplianceEvent.document_id == third.id,
        ComplianceEvent.action == "document_approved",
    )
    assert approvals == 1
    assert settled(compliance) == ("submitted", "pending_documents", 0)


# --- Two uploads for one requirement ----------------------------------------------------------------------


@pytest.fixture
def draft(app: Flask) -> dict:
    """Acme's French documents, nothing uploaded yet."""
    catalogue.sync(db.session)
    acme = f.messaging_org("Acme")
    admin = f.user(acme, "admin@acme.test", admin=True, codes=[permissions.ADMIN_NUMBERS])
    submission = submissions.get_or_create(db.session, acme.id, "FR")
    requirement = catalogue.requirements(db.session, "FR")[0]
    db.session.commit()
    return {"acme": acme, "admin": admin, "submission": submission, "requirement": requirement}


def upload(client: FlaskClient, requirement, filename: str) -> Callable[[], TestResponse]:
    prefix = f"r{requirement.id}-"
    form = {
        "csrf_token": token(client, "/admin/compliance/FR"),
        prefix + "value": "Acme SAS",
        prefix + "kind": str(requirement.documents[0].id),
        prefix + "file": FileStorage(io.BytesIO(PDF), filename=filename),
    }
    boundary, body = encode_multipart(form)
    return lambda: client.post(
        f"/admin/compliance/FR/requirements/{requirement.id}",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def stored_files(app: Flask) -> list[Path]:
    folder = Path(app.config["UPLOAD_DIR"]) / "compliance"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_second_upload_for_the_requirement_at_the_same_moment_is_told_beside_the_file(app, draft) -> None:
    requirement = draft["requirement"]
    second = upload(signed_in(app, "admin@acme.test"), requirement, "theirs.pdf")

    _, (status, html) = holding(
        lambda: submissions.upload(
            db.session,
            files.store_for(app),
            draft["admin"],
            draft["submission"],
            requirement.id,
            requirement.documents[0].id,
            "Acme SAS",
            files.accept("mine.pdf", io.BytesIO(PDF)),
        ),
        second,
    )

    assert status == 422, html[:2000]
    assert f'id="r{requirement.id}-file-error"' in html
    assert f"Someone has just uploaded a document for “{requirement.name}”" in html
    documents = db.session.scalars(sa.select(ComplianceDocument)).all()
    assert [(d.filename, d.status) for d in documents] == [("mine.pdf", "pending")]
    assert [p.name for p in stored_files(app)] == [documents[0].stored_name]  # the refused file is gone


def test_ten_uploads_at_once_leave_one_current_document_and_no_stray_file(app, draft) -> None:
    requirement = draft["requirement"]
    calls = [upload(signed_in(app, "admin@acme.test"), requirement, f"{i}.pdf") for i in range(CLIENTS)]

    answers = at_once(calls)

    # Each upload either replaced the one committed before it, or met one in flight and was told.
    assert set(statuses(answers)) <= {303, 422} and 303 in statuses(answers), [a[0] for a in answers]
    for status, html in answers:
        if status == 422:
            assert "Someone has just uploaded a document for" in html
    current = count(ComplianceDocument, ComplianceDocument.status != "replaced")
    assert current == 1 and count(ComplianceDocument) == statuses(answers).count(303)
    stored = set(db.session.scalars(sa.select(ComplianceDocument.stored_name)))
    assert {p.name for p in stored_files(app)} == stored


# --- Roles, teams, templates, credits: every form on a unique constraint -----------------------------------


@pytest.fixture
def admin_world(app: Flask) -> dict:
    acme = f.messaging_org("Acme")
    admin = f.user(
        acme,
        "admin@acme.test",
        admin=True,
        codes=[permissions.ADMIN_USERS, permissions.ADMIN_TEMPLATES, permissions.ADMIN_CREDITS],
        name="Ada Admin",
    )
    recruiter = f.user(acme, "recruiter@acme.test", codes=[permissions.RECRUITMENT_SMS], name="Rob")
    job = f.job(acme, title="Backend engineer")
    db.session.commit()
    return {"acme": acme, "admin": admin, "recruiter": recruiter, "job": job}


def new_role(client: FlaskClient, name: str) -> Callable[[], TestResponse]:
    data = {"csrf_token": token(client, "/admin/roles"), "name": name}
    return lambda: client.post("/admin/roles/new", data=data)


def test_ten_new_roles_of_one_name_at_once_make_one(app, admin_world) -> None:
    calls = [new_role(signed_in(app, "admin@acme.test"), "Sourcers") for _ in range(CLIENTS)]

    answers = at_once(calls)

    assert statuses(answers) == [303] + [422] * (CLIENTS - 1), [a[0] for a in answers]
    for status, html in answers:
        if status == 422:
            assert "There is a role called “Sourcers” already." in html
    assert count(Role, Role.name == "Sourcers") == 1


def test_a_second_new_role_of_the_name_waits_then_is_told_beside_the_name(app, admin_world) -> None:
    second = new_role(signed_in(app, "admin@acme.test"), "Sourcers")

    _, (status, html) = holding(
        lambda: people.create_role(db.session, admin_world["acme"], "Sourcers"), second
    )

    assert status == 422 and 'id="name-error"' in html
    assert "There is a role called “Sourcers” already." in html
    assert count(Role, Role.name == "Sourcers") == 1


def test_ten_invitations_of_one_address_at_once_make_one_account(app, admin_world) -> None:
    def invite(client: FlaskClient) -> Callable[[], TestResponse]:
        data = {"csrf_token": token(client, "/admin/people"), "name": "Jo New", "email": "jo@acme.test"}
        return lambda: client.post("/admin/people/invite", data=data)

    answers = at_once([invite(signed_in(app, "admin@acme.test")) for _ in range(CLIENTS)])

    assert statuses(answers) == [200] + [422] * (CLIENTS - 1), [a[0] for a in answers]
    for status, html in answers:
        if status == 422:
            assert 'id="email-error"' in html and "jo@acme.test already has a Relay account." in html
    assert count(User, User.email == "jo@acme.test") == 1


def test_a_permission_new_to_the_catalogue_stored_by_two_at_once_is_stored_once(app, admin_world) -> None:
    """Saving a role writes the catalogue's permissions that the database lacks (after an upgrade that
    added one): two saves at once both find it missing."""
    db.session.execute(sa.delete(Permission).where(Permission.code == permissions.ADMIN_UNMATCHED))
    db.session.commit()
    second = new_role(signed_in(app, "admin@acme.test"), "Other")

    _, (status, html) = holding(lambda: permissions.sync(db.session), second)

    assert status == 303, html[:2000]
    assert count(Permission) == len(permissions.CATALOGUE) and count(Role, Role.name == "Other") == 1


def save_teams(client: FlaskClient, user_id: int, job_ids: list[int]) -> Callable[[], TestResponse]:
    path = f"/admin/people/{user_id}"
    data = {"csrf_token": token(client, path), "jobs": job_ids}
    return lambda: client.post(f"{path}/teams", data=data)


def test_a_persons_teams_saved_twice_at_once_are_saved_in_turn(app, admin_world) -> None:
    recruiter, job = admin_world["recruiter"], admin_world["job"]
    second = save_teams(signed_in(app, "admin@acme.test"), recruiter.id, [job.id])

    _, (status, html) = holding(lambda: people.set_teams(db.session, recruiter, [job.id], []), second)

    assert status == 303, html[:2000]
    assert count(HiringTeamMember, HiringTeamMember.user_id == recruiter.id) == 1


def test_two_saves_of_a_persons_teams_at_once_never_fail(app, admin_world) -> None:
    recruiter, job = admin_world["recruiter"], admin_world["job"]
    calls = [save_teams(signed_in(app, "admin@acme.test"), recruiter.id, [job.id]) for _ in range(CLIENTS)]

    assert statuses(at_once(calls)) == [303] * CLIENTS
    assert count(HiringTeamMember, HiringTeamMember.user_id == recruiter.id) == 1


def new_template(client: FlaskClient, path: str, data: dict[str, str]) -> Callable[[], TestResponse]:
    form = {"csrf_token": token(client, path), **data}
    return lambda: client.post(path, data=form)


SMS_TEMPLATE = {"name": "Hello", "channel": "sms", "kind": "general", "subject": "", "body": "Hi %FIRSTNAME%"}
WA_TEMPLATE = {
    "name": "hello",
    "locale": "en",
    "body": "Hi {{1}}",
    "parameters": "%FIRSTNAME%",
    "approved": "y",
}


def test_a_second_template_of_the_name_at_the_same_moment_is_told_beside_the_name(app, admin_world) -> None:
    second = new_template(signed_in(app, "admin@acme.test"), "/admin/templates/new", SMS_TEMPLATE)
    draft = templates.Draft("Hello", "sms", "general", None, "Hi %FIRSTNAME%")

    _, (status, html) = holding(
        lambda: templates.save(
            db.session, admin_world["acme"], admin_world["admin"], draft, "https://x.test"
        ),
        second,
    )

    assert status == 422 and "There is already a SMS template called “Hello”." in html
    assert count(MessageTemplate) == 1


def test_a_second_whatsapp_template_of_the_name_at_the_same_moment_is_told(app, admin_world) -> None:
    second = new_template(signed_in(app, "admin@acme.test"), "/admin/templates/whatsapp/new", WA_TEMPLATE)
    draft = templates.WhatsappDraft("hello", "en", "Hi {{1}}", "%FIRSTNAME%", True)

    _, (status, html) = holding(
        lambda: templates.save_whatsapp(db.session, admin_world["acme"], draft), second
    )

    assert status == 422 and "hello (en) is here already." in html
    assert count(WhatsappTemplate) == 1


def test_the_first_views_of_the_credits_page_at_once_make_one_account(app, admin_world) -> None:
    second = signed_in(app, "admin@acme.test")

    _, (status, html) = holding(
        lambda: credits.account_for(db.session, admin_world["acme"]), lambda: second.get("/admin/credits")
    )

    assert status == 200, html[:2000]
    assert count(CreditAccount) == 1


def test_one_number_added_to_two_pools_at_once_is_told_beside_the_number(app, admin_world) -> None:
    globex = f.messaging_org("Globex")
    staff = f.user(None, "csm@relay.test", is_staff=True)
    db.session.commit()
    client = signed_in(app, "csm@relay.test")
    data = {
        "csrf_token": token(client, f"/staff/organizations/{globex.id}"),
        "number": "+12015550100",
        "sms": "y",
    }

    _, (status, html) = holding(
        lambda: pool.add(db.session, staff, admin_world["acme"], "+12015550100", sms=True, whatsapp=False),
        lambda: client.post(f"/staff/organizations/{globex.id}/numbers", data=data),
    )

    assert status == 422 and "+1 201-555-0100 is already in a pool." in html
    assert count(SendingNumber) == 1
