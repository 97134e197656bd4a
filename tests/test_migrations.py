"""`flask db upgrade` on an empty database gives exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

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
