"""The one rule for unique-constraint conflicts (webapp.unique) and the row lock (database.lock_row), on
SQLite and PostgreSQL: each database's error is traced to the constraint's name, a named conflict becomes
the domain's refusal and leaves the transaction usable, anything else stays an error. The races
themselves are in tests/test_races.py."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tests import factories as f
from webapp import unique
from webapp.compliance import catalogue, files, submissions
from webapp.database import lock_row
from webapp.demo import _demo_pdf
from webapp.extensions import db
from webapp.models import (
    ComplianceDocument,
    ComplianceSubmission,
    HiringTeamMember,
    MessageTemplate,
    Permission,
    Prospect,
    Role,
    SendingNumber,
    utcnow,
)

PDF = _demo_pdf("Acme SAS")


def _role(org_id: int) -> None:
    db.session.add(Role(organization_id=org_id, name="Sourcers"))


def _prospect(org_id: int) -> None:
    db.session.add(Prospect(organization_id=org_id, first_name="A", last_name="B", mobile="+4915123456789"))


def _template(org_id: int) -> None:
    db.session.add(MessageTemplate(organization_id=org_id, channel="sms", name="Hello", body="Hi"))


def _number(org_id: int) -> None:
    db.session.add(SendingNumber(organization_id=org_id, e164="+4915123456700", sms=True, whatsapp=False))


def _permission(org_id: int) -> None:
    db.session.add(Permission(code="test.permission", name="x", category="y"))


def _submission(org_id: int) -> None:
    db.session.add(ComplianceSubmission(organization_id=org_id, country="FR"))


WRITES: list[tuple[str, Callable[[int], None]]] = [
    ("uq_role_organization_id_name", _role),
    ("uq_prospect_organization_id_mobile", _prospect),
    ("uq_message_template_organization_id_channel_name", _template),
    ("uq_sending_number_e164", _number),
    ("pk_permission", _permission),
    ("uq_compliance_submission_organization_id_country", _submission),
]


@pytest.mark.parametrize(("name", "write"), WRITES, ids=[name for name, _ in WRITES])
def test_a_conflict_is_traced_to_its_constraint(app, name, write) -> None:
    org = f.org("Acme")
    write(org.id)
    db.session.commit()
    write(org.id)
    with pytest.raises(IntegrityError) as raised:
        db.session.flush()
    db.session.rollback()
    assert unique.constraint_of(raised.value) == name


def test_an_upload_that_missed_anothers_is_refused_beside_the_file(app) -> None:
    """Another upload for the requirement committed after this request read the submission: the partial
    unique index (one current document per requirement) refuses this one, on both databases, and the
    file this one stored is removed."""
    catalogue.sync(db.session)
    org = f.messaging_org("Acme")
    admin = f.user(org, "admin@acme.test", admin=True)
    submission = submissions.get_or_create(db.session, org.id, "FR")
    requirement = catalogue.requirements(db.session, "FR")[0]
    db.session.commit()
    assert submission.documents == []
    store = files.store_for(app)
    other = store.write(PDF)
    with db.engine.begin() as conn:
        conn.execute(
            sa.insert(ComplianceDocument).values(
                submission_id=submission.id,
                requirement_id=requirement.id,
                kind_id=requirement.documents[0].id,
                filename="theirs.pdf",
                content_type="application/pdf",
                size=len(PDF),
                sha256="0" * 64,
                stored_name=other,
                status="pending",
                created_at=utcnow(),
            )
        )
    with pytest.raises(submissions.ComplianceRefused, match="Someone has just uploaded a document") as raised:
        submissions.upload(
            db.session,
            store,
            admin,
            submission,
            requirement.id,
            requirement.documents[0].id,
            "Acme",
            files.accept("mine.pdf", io.BytesIO(PDF)),
        )
    assert raised.value.field == "file"
    assert isinstance(raised.value.__cause__, unique.Conflict)
    db.session.rollback()
    assert [p.name for p in store.path(other).parent.iterdir()] == [other]


def test_a_named_conflict_is_the_refusal_and_the_transaction_goes_on(app) -> None:
    org = f.org("Acme")
    _role(org.id)
    db.session.commit()
    refusal = ValueError("There is a role called “Sourcers” already.")
    with (
        pytest.raises(ValueError) as raised,
        unique.refusing(db.session, {"uq_role_organization_id_name": refusal}),
    ):
        _role(org.id)
    assert raised.value is refusal
    # Only the savepoint was rolled back: the transaction still writes.
    db.session.add(Role(organization_id=org.id, name="Recruiters"))
    db.session.commit()
    assert sorted(db.session.scalars(sa.select(Role.name))) == ["Recruiters", "Sourcers"]


def test_a_conflict_on_another_constraint_stays_an_error(app) -> None:
    org = f.org("Acme")
    _role(org.id)
    db.session.commit()
    with (
        pytest.raises(IntegrityError),
        unique.refusing(db.session, {"uq_prospect_organization_id_mobile": ValueError()}),
    ):
        _role(org.id)
    db.session.rollback()


def test_a_constraint_that_does_not_exist_is_a_mistake_in_the_code(app) -> None:
    with (
        pytest.raises(ValueError, match="no unique constraint called uq_role_name"),
        unique.refusing(db.session, {"uq_role_name": ValueError()}),
    ):
        pass


def test_many_prospects_may_have_no_mobile_and_no_two_one_number(app) -> None:
    org, other = f.org("Acme"), f.org("Globex")
    for email in ("ada@example.com", "alan@example.com"):
        db.session.add(Prospect(organization_id=org.id, first_name="A", last_name="B", email=email))
    _prospect(org.id)
    _prospect(other.id)  # the same number in another organisation is another person
    db.session.commit()
    with pytest.raises(unique.Conflict), unique.savepoint(db.session, "uq_prospect_organization_id_mobile"):
        _prospect(org.id)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Prospect)) == 4


def test_team_rows_are_traced(app) -> None:
    org = f.org("Acme")
    user = f.user(org)
    job = f.job(org)
    db.session.add(HiringTeamMember(job_id=job.id, user_id=user.id, title="x"))
    db.session.commit()
    with (
        pytest.raises(unique.Conflict) as raised,
        unique.savepoint(db.session, "uq_hiring_team_member_job_id_user_id"),
    ):
        db.session.add(HiringTeamMember(job_id=job.id, user_id=user.id, title="x"))
    assert raised.value.constraint == "uq_hiring_team_member_job_id_user_id"


def test_a_locked_row_is_read_as_committed(app) -> None:
    """What the session had loaded is overwritten by what another request committed meanwhile."""
    org = f.org("Acme")
    submission = ComplianceSubmission(organization_id=org.id, country="FR", status="submitted")
    db.session.add(submission)
    db.session.commit()
    assert submission.status == "submitted"
    with db.engine.begin() as other:
        other.execute(sa.text("UPDATE compliance_submission SET status = 'approved'"))
    assert lock_row(db.session, ComplianceSubmission, submission.id) is submission
    assert submission.status == "approved"
    db.session.commit()
