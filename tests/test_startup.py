"""What a process start loads: `import webapp` and `create_app()` leave the heavy libraries (the
geocoder's data, Alembic, the Vonage SDK) to the code that uses them. Each check runs in a fresh
interpreter, because this one has imported everything the other tests needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import FILE_KEY, WEBHOOK_SECRET
from webapp import create_app
from webapp.extensions import db

ROOT = Path(__file__).resolve().parent.parent

# Loaded where they are used: a page naming a country, `flask db …`, a send or the staff numbers page.
HEAVY = ("phonenumbers.geocoder", "phonenumbers.geodata", "alembic", "flask_migrate", "vonage")


def loaded_after(code: str) -> list[str]:
    """The heavy modules in sys.modules after running `code` in a new interpreter."""
    report = f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))"
    script = f"{code}\nimport json, sys\n{report}"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_webapp_loads_no_heavy_module() -> None:
    assert loaded_after("import webapp") == []


def test_create_app_loads_no_heavy_module() -> None:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        "VONAGE_SIGNATURE_SECRET": WEBHOOK_SECRET,
        "RELAY_FILE_KEY": FILE_KEY,
    }
    assert loaded_after(f"from webapp import create_app\ncreate_app({config!r})") == []


def test_sending_through_vonage_loads_the_messages_api_alone() -> None:
    # The provider builds its client at once; the umbrella `vonage` package would import every API.
    code = """
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from webapp.providers.vonage import numbers as vonage_account
from webapp.providers.vonage.sending import VonageSender as VonageProvider

key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
VonageProvider("app-id", key.decode(), "api.example.test")
vonage_account._options({})
"""
    loaded = {name.split(".")[0] for name in loaded_after(code)}
    assert loaded == {"vonage_http_client", "vonage_messages", "vonage_utils", "vonage_jwt"}


def test_flask_db_still_migrates(tmp_path: Path) -> None:
    # `flask db` is registered without importing Flask-Migrate; its commands load when one runs.
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/cli.db",
            "VONAGE_SIGNATURE_SECRET": WEBHOOK_SECRET,
            "RELAY_FILE_KEY": FILE_KEY,
        }
    )
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["db", "--help"])
    assert listed.exit_code == 0, listed.output
    assert "upgrade" in listed.output and "--directory" in listed.output
    upgraded = runner.invoke(args=["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    with app.app_context():
        with db.engine.connect() as conn:
            assert {"alembic_version", "organization", "message"} <= set(sa.inspect(conn).get_table_names())
            assert len(conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()) == 1
        db.engine.dispose()
