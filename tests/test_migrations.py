"""`flask db upgrade` on an empty database gives exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from tests.conftest import create_postgres_database, drop_postgres_database, need, test_config
from webapp import create_app
from webapp.extensions import db
from webapp.models.base import include_object_for, render_item


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/migrated.db"
        return
    from tests.conftest import POSTGRES_URL

    if not POSTGRES_URL:
        need("PostgreSQL (TEST_POSTGRES_URL)")
    url = create_postgres_database("relay_migrate")
    yield url
    drop_postgres_database(url)


def test_upgrade_gives_the_models_schema(empty_database: str) -> None:
    app = create_app(test_config(empty_database))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "render_item": render_item,
                    "include_object": include_object_for(conn.dialect.name),
                },
            )
            diff = compare_metadata(context, db.metadata)
        assert diff == [], f"the models and the migrations differ: {diff}"
        # And back down again, so every migration can be undone.
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == ["alembic_version"]
        db.engine.dispose()


def test_candidates_stored_before_the_search_column_get_their_folded_names(empty_database: str) -> None:
    app = create_app(test_config(empty_database))
    with app.app_context():
        upgrade(revision="2c282b64e31e")
        now = datetime.now(UTC).replace(tzinfo=None)
        org = {"name": "Acme", "has_messaging": False, "has_crm": False, "sms_enabled": False}
        org |= {"whatsapp_enabled": False, "sender_name": "Acme", "created_at": now}
        with db.engine.begin() as conn:
            tables = sa.MetaData()
            tables.reflect(conn, only=["organization", "candidate"])
            org_id = conn.execute(tables.tables["organization"].insert().values(org)).inserted_primary_key[0]
            people = [("Lena", "Müller"), ("Søren", "Æbelø")]
            conn.execute(
                tables.tables["candidate"].insert(),
                [
                    {"organization_id": org_id, "first_name": first, "last_name": last, "created_at": now}
                    for first, last in people
                ],
            )
        upgrade()
        with db.engine.connect() as conn:
            folded = conn.execute(sa.text("SELECT search_name FROM candidate ORDER BY id")).scalars().all()
        assert folded == ["lena muller", "soren aebelo"]
        db.engine.dispose()


def test_conversations_stored_before_the_inbox_get_what_it_keeps(empty_database: str) -> None:
    app = create_app(test_config(empty_database))
    with app.app_context():
        upgrade(revision="6b6ff4898ea0")
        now = datetime.now(UTC).replace(tzinfo=None)
        with db.engine.begin() as conn:
            t = sa.MetaData()
            t.reflect(conn)

            def add(table: str, **values: object) -> int:
                return conn.execute(t.tables[table].insert().values(values)).inserted_primary_key[0]

            org = add(
                "organization",
                name="Acme",
                has_messaging=True,
                has_crm=False,
                sms_enabled=True,
                whatsapp_enabled=False,
                sender_name="Acme",
                whatsapp_price=1,
                help_reply="",
                created_at=now,
            )
            user = add(
                "user",
                email="r@acme.test",
                name="Riley",
                password_hash="x",
                organization_id=org,
                is_staff=False,
                active=True,
                created_at=now,
            )
            job = add("job", organization_id=org, title="Engineer", location="", is_open=True, created_at=now)
            add("hiring_team_member", job_id=job, user_id=user, title="Recruiter")
            cand = add(
                "candidate",
                organization_id=org,
                first_name="Lena",
                last_name="Müller",
                mobile="+4915123456789",
                created_at=now,
                search_name="lena muller",
            )
            application = add("application", job_id=job, candidate_id=cand, stage="new", created_at=now)
            conversation = add(
                "conversation",
                organization_id=org,
                application_id=application,
                last_message_at=now,
                created_at=now,
            )
            common = {
                "conversation_id": conversation,
                "segments": 1,
                "credits": 0,
                "attempts": 0,
                "from_addr": "",
                "to_addr": "",
                "created_at": now,
                "updated_at": now,
            }
            add(
                "message",
                channel="sms",
                direction="outbound",
                author_id=user,
                body="Hi Lena\nsee you",
                status="delivered",
                **common,
            )
            last = add(
                "message",
                channel="sms",
                direction="inbound",
                body="\n  Yes,   Thursday  ",
                status="received",
                **common,
            )
        upgrade()
        with db.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT last_message_id, last_direction, last_preview, has_sms, has_email"
                    " FROM conversation"
                )
            ).one()
            state = conn.execute(sa.text("SELECT user_id, unread, wrote FROM conversation_state")).all()
        assert tuple(row) == (last, "inbound", "Yes, Thursday", True, False)
        assert [tuple(s) for s in state] == [(user, 1, True)]
        db.engine.dispose()


def test_prospects_stored_twice_with_one_number_are_merged_into_the_oldest(empty_database: str) -> None:
    """Before the unique index, two adds at once could store one person twice. The upgrade keeps the
    number on the oldest, moves the others' memberships (and conversations) to it, keeps a history it
    cannot merge on a removed membership, and leaves people without a number alone."""
    app = create_app(test_config(empty_database))
    with app.app_context():
        upgrade(revision="4abe26707d12")
        now = datetime.now(UTC).replace(tzinfo=None)
        mobile = "+4915123456789"
        with db.engine.begin() as conn:
            t = sa.MetaData()
            t.reflect(conn)

            def add(table: str, **values: object) -> int:
                return conn.execute(t.tables[table].insert().values(values)).inserted_primary_key[0]

            def organization(name: str) -> int:
                return add(
                    "organization",
                    name=name,
                    has_messaging=True,
                    has_crm=True,
                    sms_enabled=True,
                    whatsapp_enabled=False,
                    sender_name=name,
                    created_at=now,
                )

            org, other_org = organization("Acme"), organization("Globex")
            nordic, designers, data = (
                add("community", organization_id=org, name=name, description="", created_at=now)
                for name in ("Nordic", "Designers", "Data")
            )

            def prospect(first: str, organization_id: int = org, **values: object) -> int:
                return add(
                    "prospect",
                    organization_id=organization_id,
                    first_name=first,
                    last_name="Berg",
                    search_name=f"{first.lower()} berg",
                    created_at=now,
                    **values,
                )

            def member(community: int, prospect_id: int, talked: bool = False) -> tuple[int, int | None]:
                membership = add(
                    "community_membership", community_id=community, prospect_id=prospect_id, created_at=now
                )
                conversation = (
                    add(
                        "conversation",
                        organization_id=org,
                        community_membership_id=membership,
                        created_at=now,
                    )
                    if talked
                    else None
                )
                return membership, conversation

            first = prospect("Lena", mobile=mobile, country="DE")
            second = prospect("Lena", mobile=mobile, country="DE", email="lena@example.com")
            third = prospect("Lena", mobile=mobile, country="DE")
            fourth = prospect("Lena", mobile=mobile, country="DE")
            email_only = [prospect(name, email=f"{name}@example.com") for name in ("Ada", "Alan")]
            elsewhere = prospect("Lena", other_org, mobile=mobile, country="DE")
            first_nordic, first_nordic_talk = member(nordic, first, talked=True)
            first_data, _ = member(data, first)
            second_nordic, second_nordic_talk = member(nordic, second, talked=True)  # two histories
            second_designers, _ = member(designers, second)  # the first is not there yet
            member(nordic, third)  # nothing to keep
            _, fourth_data_talk = member(data, fourth, talked=True)  # a history the first lacks
        upgrade()
        with db.engine.connect() as conn:
            prospects = dict(conn.execute(sa.text("SELECT id, mobile FROM prospect")).all())
            email = conn.execute(sa.text(f"SELECT email FROM prospect WHERE id = {first}")).scalar()
            memberships = {
                row.id: (row.community_id, row.prospect_id, row.removed_at is not None)
                for row in conn.execute(
                    sa.text("SELECT id, community_id, prospect_id, removed_at FROM community_membership")
                )
            }
            conversations = dict(
                conn.execute(sa.text("SELECT id, community_membership_id FROM conversation")).all()
            )
            duplicate = sa.text(
                "INSERT INTO prospect (organization_id, first_name, last_name, mobile, search_name,"
                " created_at) VALUES (:org, 'X', 'Y', :mobile, '', :now)"
            )
            with pytest.raises(sa.exc.IntegrityError):
                conn.execute(duplicate, {"org": org, "mobile": mobile, "now": now})
            conn.rollback()
        assert prospects == {
            first: mobile,
            second: None,  # keeps its history, not the number
            email_only[0]: None,
            email_only[1]: None,
            elsewhere: mobile,
        }
        assert email == "lena@example.com"
        assert memberships == {
            first_nordic: (nordic, first, False),
            first_data: (data, first, False),
            second_nordic: (nordic, second, True),
            second_designers: (designers, first, False),
        }
        assert conversations == {
            first_nordic_talk: first_nordic,
            second_nordic_talk: second_nordic,
            fourth_data_talk: first_data,
        }
        downgrade(revision="4abe26707d12")
        db.engine.dispose()


def test_slots_stored_before_the_overlap_rule_are_made_to_fit(empty_database: str) -> None:
    """Overlapping slots of one interviewer, as the old code accepted them: the migration keeps every
    booked one (the later of two booked ones loses its interviewer), deletes free ones that overlap,
    and fills the end, the zone of each slot and of jobs whose location is a city of the tz database."""
    app = create_app(test_config(empty_database))
    with app.app_context():
        upgrade(revision="4abe26707d12")
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        at = now.replace(hour=9, minute=0, second=0) + timedelta(days=3)
        with db.engine.begin() as conn:
            t = sa.MetaData()
            t.reflect(conn)

            def add(table: str, **values: object) -> int:
                return conn.execute(t.tables[table].insert().values(values)).inserted_primary_key[0]

            org = add(
                "organization",
                name="Acme",
                has_messaging=True,
                has_crm=False,
                sms_enabled=True,
                whatsapp_enabled=False,
                sender_name="Acme",
                whatsapp_price=1,
                help_reply="",
                time_zone="Europe/Berlin",
                created_at=now,
            )

            def person(email: str) -> int:
                return add(
                    "user",
                    email=email,
                    name=email,
                    password_hash="x",
                    organization_id=org,
                    is_staff=False,
                    active=True,
                    created_at=now,
                )

            riley, morgan = person("riley@acme.test"), person("morgan@acme.test")
            berlin = add(
                "job", organization_id=org, title="A", location="Berlin", is_open=True, created_at=now
            )
            newark = add(
                "job", organization_id=org, title="B", location="Newark, NJ", is_open=True, created_at=now
            )

            def slot(job: int, hour: float, minutes: int, who: int | None) -> int:
                return add(
                    "interview_slot",
                    job_id=job,
                    starts_at=at + timedelta(hours=hour),
                    minutes=minutes,
                    place="Room 1",
                    interviewer_id=who,
                    created_at=now,
                )

            twin_booked, twin_free = slot(berlin, 0, 30, riley), slot(berlin, 0, 30, riley)
            first_free, later_free = slot(berlin, 2, 60, riley), slot(newark, 2.5, 30, riley)
            both_booked = [slot(berlin, 4, 60, riley), slot(newark, 4.5, 60, riley)]
            adjacent = slot(berlin, 5.5, 30, riley)  # begins as the second booked one ends
            morgans = slot(berlin, 0, 30, morgan)  # another interviewer at the same time
            unnamed = [slot(berlin, 0, 30, None), slot(berlin, 0, 30, None)]

            for n, held in enumerate([twin_booked, *both_booked]):
                candidate = add(
                    "candidate", organization_id=org, first_name="L", last_name=str(n), created_at=now
                )
                application = add(
                    "application", job_id=berlin, candidate_id=candidate, stage="new", created_at=now
                )
                conversation = add(
                    "conversation",
                    organization_id=org,
                    application_id=application,
                    last_message_at=now,
                    created_at=now,
                )
                message = add(
                    "message",
                    conversation_id=conversation,
                    channel="email",
                    direction="outbound",
                    body="Book",
                    status="sent",
                    segments=1,
                    credits=0,
                    attempts=0,
                    from_addr="",
                    to_addr="",
                    created_at=now,
                    updated_at=now,
                )
                add(
                    "invitation",
                    application_id=application,
                    message_id=message,
                    token_hash=f"{n:064d}",
                    channel="email",
                    state="booked",
                    slot_id=held,
                    expires_at=now + timedelta(days=14),
                    created_at=now,
                )
        upgrade()
        with db.engine.connect() as conn:
            rows = {
                r.id: r
                for r in conn.execute(
                    sa.text("SELECT id, interviewer_id, starts_at, ends_at, time_zone FROM interview_slot")
                )
            }
            zones = dict(conn.execute(sa.text("SELECT title, time_zone FROM job")).all())
        assert set(rows) == {twin_booked, first_free, *both_booked, adjacent, morgans, *unnamed}
        assert {twin_free, later_free}.isdisjoint(rows)
        assert rows[both_booked[0]].interviewer_id == riley and rows[both_booked[1]].interviewer_id is None
        assert rows[adjacent].interviewer_id == riley
        assert {r.time_zone for r in rows.values()} == {"Europe/Berlin"}
        first = rows[first_free]
        ends = first.ends_at if isinstance(first.ends_at, datetime) else datetime.fromisoformat(first.ends_at)
        assert ends == at + timedelta(hours=3)
        assert zones == {"A": "Europe/Berlin", "B": None}
        if db.engine.dialect.name == "postgresql":
            # From now on the database itself refuses an overlap.
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO interview_slot (job_id, starts_at, minutes, ends_at, place,"
                        " interviewer_id, created_at) VALUES (:job, :at, 30, :end, 'Room', :who, :at)"
                    ),
                    {
                        "job": berlin,
                        "at": at + timedelta(minutes=15),
                        "end": at + timedelta(minutes=45),
                        "who": riley,
                    },
                )
        db.engine.dispose()


@pytest.mark.parametrize("provider", ["vonage", "simulator"])
def test_numbers_stored_before_providers_were_recorded_get_the_configured_one(
    empty_database: str, provider: str
) -> None:
    app = create_app(test_config(empty_database, MESSAGING_PROVIDER="simulator"))
    with app.app_context():
        upgrade(revision="215c0637e0a7")
        now = datetime.now(UTC).replace(tzinfo=None)
        org = {"name": "Acme", "has_messaging": True, "has_crm": False, "sms_enabled": True}
        org |= {"whatsapp_enabled": False, "sender_name": "Acme", "created_at": now}
        with db.engine.begin() as conn:
            tables = sa.MetaData()
            tables.reflect(conn, only=["organization", "sending_number"])
            org_id = conn.execute(tables.tables["organization"].insert().values(org)).inserted_primary_key[0]
            conn.execute(
                tables.tables["sending_number"].insert(),
                [
                    {"organization_id": org_id, "e164": e164, "country": country, "sms": True}
                    | {"whatsapp": False, "status": "active", "created_at": now}
                    for e164, country in (("+4915123456700", "DE"), ("+12015550100", "US"))
                ],
            )
        # The deployment's setting when it migrates is what its numbers were sent through until now.
        app.config["MESSAGING_PROVIDER"] = provider
        upgrade()
        with db.engine.connect() as conn:
            recorded = conn.execute(sa.text("SELECT provider FROM sending_number")).scalars().all()
        assert recorded == [provider, provider]
        db.engine.dispose()


def test_organisations_stored_before_their_hours_for_texts_send_08_00_to_20_00_monday_to_friday(
    empty_database: str,
) -> None:
    from webapp.messaging import quiet_hours
    from webapp.models import Organization

    app = create_app(test_config(empty_database))
    with app.app_context():
        upgrade(revision="9c41d7e2a5b8")
        now = datetime.now(UTC).replace(tzinfo=None)
        org = {"name": "Acme", "has_messaging": True, "has_crm": False, "sms_enabled": True}
        org |= {"whatsapp_enabled": False, "sender_name": "Acme", "created_at": now}
        with db.engine.begin() as conn:
            tables = sa.MetaData()
            tables.reflect(conn, only=["organization"])
            conn.execute(tables.tables["organization"].insert().values(org))
        upgrade()
        acme = db.session.scalars(sa.select(Organization)).one()
        hours = quiet_hours.OrganizationHours.of(acme)
        assert (hours.start, hours.end, hours.days) == (time(8), time(20), frozenset({1, 2, 3, 4, 5}))
        db.session.remove()
        db.engine.dispose()


def test_prepare_migrates_and_loads_the_demo_into_an_empty_database_only(empty_database: str) -> None:
    # `make run`'s one command before serving: `db upgrade` and `seed-demo --if-empty` in one process.
    from alembic.script import ScriptDirectory

    from webapp import ROOT
    from webapp.models import Candidate, Organization

    head = ScriptDirectory(f"{ROOT}/migrations").get_current_head()
    app = create_app(test_config(empty_database))
    runner = app.test_cli_runner()

    def state() -> tuple[list[str], int, int]:
        with app.app_context(), db.engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
            orgs = conn.scalar(sa.select(sa.func.count()).select_from(Organization))
            candidates = conn.scalar(sa.select(sa.func.count()).select_from(Candidate))
            return versions, orgs, candidates

    plain = runner.invoke(args=["prepare"])
    assert plain.exit_code == 0, plain.output
    assert state() == ([head], 0, 0)  # migrated; demo data only when asked

    seeded = runner.invoke(args=["prepare", "--demo"])
    assert seeded.exit_code == 0, seeded.output
    assert "Demo data ready" in seeded.output
    versions, orgs, candidates = state()
    assert versions == [head] and orgs == 3 and candidates == 78

    again = runner.invoke(args=["prepare", "--demo"])
    assert again.exit_code == 0, again.output
    assert "already has data" in again.output
    assert state() == ([head], 3, 78)
    with app.app_context():
        db.engine.dispose()
