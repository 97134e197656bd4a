"""The domain's own rules: phone numbers, emails, organisations, UTC times, schema constraints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tests import factories as f
from webapp import phones
from webapp.extensions import db
from webapp.models import Candidate, SendingNumber, User


@pytest.mark.parametrize(
    ("raw", "e164", "country"),
    [
        ("+49 151 23456789", "+4915123456789", "DE"),
        ("+1 (647) 555-0123", "+16475550123", "CA"),
        ("+1 201 555 0123", "+12015550123", "US"),
        ("+44 7400 123456", "+447400123456", "GB"),
        ("+46 70 123 45 67", "+46701234567", "SE"),
    ],
)
def test_mobile_is_normalised_and_gives_the_country(app, raw, e164, country) -> None:
    c = f.candidate(f.org(), mobile=raw)
    db.session.commit()
    stored = db.session.scalar(sa.select(Candidate).where(Candidate.id == c.id))
    assert (stored.mobile, stored.country) == (e164, country)


@pytest.mark.parametrize("raw", ["0701234567", "+1 555", "not a number", "+4915"])
def test_invalid_mobiles_are_refused(raw: str) -> None:
    with pytest.raises(phones.InvalidPhoneNumber):
        Candidate(first_name="A", last_name="B", mobile=raw)


def test_clearing_the_mobile_clears_the_country() -> None:
    c = Candidate(first_name="A", last_name="B", mobile="+4915123456789")
    c.mobile = ""
    assert (c.mobile, c.country) == (None, None)


def test_sending_number_country_comes_from_the_number() -> None:
    assert SendingNumber(e164="+1 506 234 5678").country == "CA"


def test_emails_are_stored_lowercase(app) -> None:
    u = f.user(f.org(), email=" Mixed@Case.Test ")
    assert u.email == "mixed@case.test"


def test_user_email_is_unique(app) -> None:
    org = f.org()
    f.user(org, email="same@x.test")
    with pytest.raises(IntegrityError):
        f.user(org, email="SAME@x.test")
    db.session.rollback()


def test_only_staff_may_stand_outside_an_organisation(app) -> None:
    f.user(None, email="csm@x.test", is_staff=True)
    with pytest.raises(IntegrityError):
        f.user(None, email="lost@x.test")
    db.session.rollback()


def test_unknown_stage_is_refused_by_the_database(app) -> None:
    org = f.org()
    with pytest.raises(IntegrityError):
        f.application(f.job(org), f.candidate(org), stage="limbo")
    db.session.rollback()


def test_top_organisation_and_products(app) -> None:
    parent = f.messaging_org("Acme")
    child = f.org("Acme Nordics", parent_id=parent.id)
    grandchild = f.org("Acme Oslo", parent_id=child.id)
    db.session.commit()
    assert grandchild.top is parent and parent.top is parent
    assert parent.has_product("ats") and parent.has_product("messaging") and not parent.has_product("crm")
    with pytest.raises(ValueError):
        parent.has_product("fax")


def test_times_come_back_aware_in_utc(app) -> None:
    u = f.user(f.org())
    db.session.commit()
    db.session.expire_all()
    created = db.session.get(User, u.id).created_at
    assert created.tzinfo is UTC
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60


def test_naive_times_are_refused(app) -> None:
    f.user(f.org()).created_at = datetime(2026, 1, 1)
    with pytest.raises(sa.exc.StatementError):
        db.session.flush()
    db.session.rollback()


def test_display_and_country_name() -> None:
    assert phones.display("+46701234567") == "+46 70 123 45 67"
    assert phones.country_name("+46701234567") == "Sweden"
    assert phones.country_name("+61412345641") == "Australia"  # +61 mobiles are valid in AU, CC and CX
