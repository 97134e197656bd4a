"""What a process start loads: `import webapp` and `create_app()` leave the heavy libraries (the
geocoder's data, Alembic, the Vonage SDK) to the code that uses them, and a worker that has served pages
and webhooks has not loaded them either (the geocoder's data alone were ~100 MB a worker). Each check
runs in a fresh interpreter, because this one has imported everything the other tests needed."""

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

# Loaded where they are used: `flask db …`, a send or the staff numbers page; the geocoder by nothing
# (countries' names come from webapp.country_names).
HEAVY = (
    "phonenumbers.geocoder",
    "phonenumbers.geodata",
    "phonenumbers.carrier",
    "alembic",
    "flask_migrate",
    "vonage",
)
CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "VONAGE_SIGNATURE_SECRET": WEBHOOK_SECRET,
    "RELAY_FILE_KEY": FILE_KEY,
}


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
    assert loaded_after(f"from webapp import create_app\ncreate_app({CONFIG!r})") == []


def test_a_warm_worker_has_loaded_no_heavy_module(tmp_path: Path) -> None:
    # What a web worker does in its first minutes (bench/worker_memory.py measures its memory): the
    # demo's recruiter and administrator open the pages that name countries, Vonage posts a reply and a
    # delivery report.
    config = {**CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/warm.db", "WTF_CSRF_ENABLED": False}
    code = f"""
import json, re
import sqlalchemy as sa
from tests import webhook_support as hooks
from webapp import create_app, demo
from webapp.extensions import db
from webapp.models import Message

app = create_app({config!r})
with app.app_context():
    db.create_all()
    demo.seed(db.session)
    db.session.commit()
    sent = db.session.scalars(sa.select(Message).where(
        Message.direction == "outbound", Message.channel == "sms", Message.provider_id.is_not(None))).first()

def pages(email, paths):
    client = app.test_client()
    assert client.post("/login", data={{"email": email, "password": "relay-demo"}}).status_code == 302
    for path in paths:
        page = client.get(path)
        assert page.status_code == 200, (path, page.status_code)
        yield page.get_data(as_text=True)

recruiter = pages("recruiter@acme.example", ["/inbox", "/jobs"])
inbox, jobs = next(recruiter), next(recruiter)
job = re.search(r'href="(/jobs/\\d+)"', jobs)[1]
application = re.search(r'href="(/applications/\\d+)', next(pages("recruiter@acme.example", [job])))[1]
assert "Country" in next(pages("recruiter@acme.example", [application]))
list(pages("admin@acme.example", ["/admin/credits", "/admin/compliance", "/admin/compliance/DE"]))
list(pages("csm@relay.example", ["/staff/"]))

client = app.test_client()
reply = hooks.inbound(to=sent.from_addr, sender=sent.to_addr, text="Thanks!")
assert hooks.post(client, "/webhooks/vonage/inbound", reply).status_code == 200
report = hooks.status(sent.provider_id, "delivered")
assert hooks.post(client, "/webhooks/vonage/status", report).status_code in (200, 204)
"""
    assert loaded_after(code) == []


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
