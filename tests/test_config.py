"""Settings: safe development defaults, and no start outside development with a development secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import FILE_KEY
from webapp import create_app
from webapp.config import DEV_SECRET_KEY, DEV_SIGNATURE_SECRET, ConfigError, from_environment

SETTINGS = (
    "RELAY_ENV",
    "SECRET_KEY",
    "MESSAGING_PROVIDER",
    "VONAGE_SIGNATURE_SECRET",
    "VONAGE_APPLICATION_ID",
    "VONAGE_PRIVATE_KEY_PATH",
    "ALLOW_SIMULATOR_IN_PRODUCTION",
    "SESSION_LIFETIME_SECONDS",
    "SESSION_IDLE_SECONDS",
    "RELAY_FILE_KEY",
    "VONAGE_API_KEY",
    "VONAGE_API_SECRET",
)
REAL_KEY = "k" * 64
REAL_SIGNATURE = "s" * 40
PEM = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def start(monkeypatch):
    """create_app() with exactly these environment variables of ours set (None: unset)."""

    def start(**env: str | None) -> Flask:
        for name in SETTINGS:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            if value is not None:
                monkeypatch.setenv(name, value)
        return create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})

    return start


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "vonage.key"
    path.write_text(PEM)
    return str(path)


def test_development_defaults(tmp_path) -> None:
    cfg = from_environment(str(tmp_path), {})
    assert cfg["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/relay.db"
    assert cfg["MESSAGING_PROVIDER"] == "simulator"
    assert cfg["REDIS_URL"] is None
    assert cfg["SESSION_COOKIE_HTTPONLY"] and cfg["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert cfg["SESSION_COOKIE_SECURE"] is False
    assert (cfg["SESSION_LIFETIME_SECONDS"], cfg["SESSION_IDLE_SECONDS"]) == (12 * 3600, 30 * 60)


def test_development_starts_on_its_defaults(start) -> None:
    app = start()
    assert app.config["SECRET_KEY"] == DEV_SECRET_KEY
    assert app.config["VONAGE_SIGNATURE_SECRET"] == DEV_SIGNATURE_SECRET


def test_postgres_urls_use_psycopg(tmp_path) -> None:
    cfg = from_environment(str(tmp_path), {"DATABASE_URL": "postgres://u@db/relay"})
    assert cfg["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/relay"


@pytest.mark.parametrize("relay_env", ["testing", "production"])
@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (None, "not set"),
        (DEV_SECRET_KEY, "development value"),
        (DEV_SIGNATURE_SECRET, "development value"),  # the other public one is no better
        ("short", "only 5 characters"),
    ],
)
def test_outside_development_a_weak_secret_key_refuses_to_start(start, relay_env, secret, problem) -> None:
    with pytest.raises(ConfigError, match=f"RELAY_ENV={relay_env} needs a real SECRET_KEY .*{problem}"):
        start(
            RELAY_ENV=relay_env,
            SECRET_KEY=secret,
            VONAGE_SIGNATURE_SECRET=REAL_SIGNATURE,
            ALLOW_SIMULATOR_IN_PRODUCTION="1",
        )


@pytest.mark.parametrize("relay_env", ["testing", "production"])
@pytest.mark.parametrize("secret", [None, DEV_SIGNATURE_SECRET, "s" * 31])
def test_outside_development_a_weak_signature_secret_refuses_to_start(start, relay_env, secret) -> None:
    with pytest.raises(ConfigError, match=f"RELAY_ENV={relay_env} needs a real VONAGE_SIGNATURE_SECRET"):
        start(
            RELAY_ENV=relay_env,
            SECRET_KEY=REAL_KEY,
            VONAGE_SIGNATURE_SECRET=secret,
            ALLOW_SIMULATOR_IN_PRODUCTION="1",
        )


@pytest.mark.parametrize(
    ("setting", "env"),
    [
        ("SECRET_KEY", {"VONAGE_SIGNATURE_SECRET": REAL_SIGNATURE}),
        ("VONAGE_SIGNATURE_SECRET", {"SECRET_KEY": REAL_KEY}),
    ],
)
def test_development_with_real_vonage_refuses_development_secrets(start, key_file, setting, env) -> None:
    vonage = {
        "MESSAGING_PROVIDER": "vonage",
        "VONAGE_APPLICATION_ID": "app",
        "VONAGE_PRIVATE_KEY_PATH": key_file,
    }
    with pytest.raises(ConfigError, match=f"MESSAGING_PROVIDER=vonage needs a real {setting}"):
        start(**vonage, **env)
    app = start(**vonage, SECRET_KEY=REAL_KEY, VONAGE_SIGNATURE_SECRET=REAL_SIGNATURE)
    assert app.config["VONAGE_SIGNATURE_SECRET"] == REAL_SIGNATURE


def test_testing_starts_with_real_secrets_and_the_simulator(start) -> None:
    app = start(RELAY_ENV="testing", SECRET_KEY=REAL_KEY, VONAGE_SIGNATURE_SECRET=REAL_SIGNATURE)
    assert app.config["MESSAGING_PROVIDER"] == "simulator"


def test_production_refuses_the_simulator_unless_asked_for(start) -> None:
    secrets = {
        "RELAY_ENV": "production",
        "SECRET_KEY": REAL_KEY,
        "VONAGE_SIGNATURE_SECRET": REAL_SIGNATURE,
        "RELAY_FILE_KEY": FILE_KEY,
    }
    with pytest.raises(ConfigError, match="ALLOW_SIMULATOR_IN_PRODUCTION=1"):
        start(**secrets)
    with pytest.raises(ConfigError, match="ALLOW_SIMULATOR_IN_PRODUCTION=1"):
        start(**secrets, MESSAGING_PROVIDER="simulator", ALLOW_SIMULATOR_IN_PRODUCTION="0")
    app = start(**secrets, ALLOW_SIMULATOR_IN_PRODUCTION="1")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


def test_production_with_vonage_starts_with_its_credentials(start, key_file) -> None:
    app = start(
        RELAY_ENV="production",
        RELAY_FILE_KEY=FILE_KEY,
        SECRET_KEY=REAL_KEY,
        VONAGE_SIGNATURE_SECRET=REAL_SIGNATURE,
        MESSAGING_PROVIDER="vonage",
        VONAGE_APPLICATION_ID="0b3f9a5c-app",
        VONAGE_PRIVATE_KEY_PATH=key_file,
    )
    assert app.config["MESSAGING_PROVIDER"] == "vonage"
    # The provider itself is built on first use, not at start-up.
    assert "relay.providers" not in app.extensions
    # The simulator carries nothing in production: no number can be given to it, its webhooks are closed.
    assert "simulator" not in app.config["TEXTING_PROVIDERS"]
    client = app.test_client()
    assert client.post("/webhooks/simulator/inbound", data=b"{}").status_code == 404


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"VONAGE_APPLICATION_ID": None}, "needs VONAGE_APPLICATION_ID$"),
        ({"VONAGE_PRIVATE_KEY_PATH": None}, "needs VONAGE_PRIVATE_KEY_PATH$"),
        (
            {"VONAGE_PRIVATE_KEY_PATH": "/nonexistent/vonage.key"},
            "cannot be read \\(No such file or directory\\)",
        ),
        ({"VONAGE_PRIVATE_KEY_PATH": "/"}, "cannot be read \\(Is a directory\\)"),
        ({"VONAGE_PRIVATE_KEY_PATH": "NOT-A-KEY"}, "not a PEM private key"),
    ],
)
@pytest.mark.parametrize("relay_env", ["production", "development"])
def test_vonage_refuses_to_start_without_its_credentials(
    start, key_file, tmp_path, relay_env, change, complaint
) -> None:
    if change.get("VONAGE_PRIVATE_KEY_PATH") == "NOT-A-KEY":  # a public key, say
        (tmp_path / "vonage.pub").write_text("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n")
        change = {"VONAGE_PRIVATE_KEY_PATH": str(tmp_path / "vonage.pub")}
    env = {
        "RELAY_ENV": relay_env,
        "SECRET_KEY": REAL_KEY,
        "VONAGE_SIGNATURE_SECRET": REAL_SIGNATURE,
        "MESSAGING_PROVIDER": "vonage",
        "VONAGE_APPLICATION_ID": "0b3f9a5c-app",
        "VONAGE_PRIVATE_KEY_PATH": key_file,
        **change,
    }
    with pytest.raises(ConfigError, match=complaint):
        start(**env)


def test_the_key_itself_may_stand_in_for_its_path(start) -> None:
    app = start(
        SECRET_KEY=REAL_KEY,
        VONAGE_SIGNATURE_SECRET=REAL_SIGNATURE,
        MESSAGING_PROVIDER="vonage",
        VONAGE_APPLICATION_ID="0b3f9a5c-app",
        VONAGE_PRIVATE_KEY_PATH=PEM,
    )
    assert app.config["VONAGE_PRIVATE_KEY_PATH"] == PEM


def test_unknown_environment_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="RELAY_ENV"):
        from_environment(str(tmp_path), {"RELAY_ENV": "prod"})


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"SESSION_LIFETIME_SECONDS": "12h"}, "SESSION_LIFETIME_SECONDS must be a whole number, not '12h'"),
        ({"SEND_BACKOFF_SECONDS": "soon"}, "SEND_BACKOFF_SECONDS must be a number"),
        # Seconds that no date can be moved by would fail every sweep, later, with a traceback.
        *(
            (
                {"SEND_LEASE_SECONDS": value},
                "SEND_LEASE_SECONDS must be a number of seconds from 0 to 316224000",
            )
            for value in ("nan", "inf", "1e308", "-1")
        ),
        # A setting counted in minutes says minutes (it said "seconds", and 600 then meant ten hours).
        *(
            (
                {"NOTIFY_WAIT_MINUTES": value},
                "NOTIFY_WAIT_MINUTES must be a number of minutes from 0 to 5270400",
            )
            for value in ("ten", "-1", "nan", "5270401")
        ),
        ({"SESSION_LIFETIME_SECONDS": "0"}, "SESSION_LIFETIME_SECONDS must be more than 0"),
        ({"SESSION_IDLE_SECONDS": "-1"}, "SESSION_IDLE_SECONDS must be 0"),
    ],
)
def test_numbers_that_are_not_say_which_setting(start, env, complaint) -> None:
    with pytest.raises(ConfigError, match=complaint):
        start(**env)


def test_production_refuses_to_start_without_a_file_key(start) -> None:
    secrets = {"SECRET_KEY": REAL_KEY, "VONAGE_SIGNATURE_SECRET": REAL_SIGNATURE}
    with pytest.raises(ConfigError, match="RELAY_ENV=production needs RELAY_FILE_KEY"):
        start(RELAY_ENV="production", ALLOW_SIMULATOR_IN_PRODUCTION="1", **secrets)
    app = start(RELAY_ENV="production", ALLOW_SIMULATOR_IN_PRODUCTION="1", RELAY_FILE_KEY=FILE_KEY, **secrets)
    assert app.config["RELAY_FILE_KEY"] == FILE_KEY


@pytest.mark.parametrize("value", ["not-a-key", "k" * 44, f"{FILE_KEY},short"])
def test_a_file_key_that_is_not_a_fernet_key_is_refused_everywhere(start, value) -> None:
    with pytest.raises(ConfigError, match=r"RELAY_FILE_KEY: key [12] is not a Fernet key"):
        start(RELAY_FILE_KEY=value)


def test_development_keeps_a_generated_file_key_in_the_instance_folder(tmp_path) -> None:
    from webapp.compliance.files import _development_key

    first = _development_key(str(tmp_path))
    assert _development_key(str(tmp_path)) == first  # kept, not made again
    assert (tmp_path / "relay-file.key").stat().st_mode & 0o777 == 0o600


def test_the_vonage_api_key_and_secret_go_together(start) -> None:
    with pytest.raises(ConfigError, match="VONAGE_API_KEY and VONAGE_API_SECRET go together"):
        start(VONAGE_API_KEY="abc123")
    app = start(VONAGE_API_KEY="abc123", VONAGE_API_SECRET="s3cret")
    assert (app.config["VONAGE_API_KEY"], app.config["VONAGE_REST_HOST"]) == ("abc123", "rest.nexmo.com")


@pytest.mark.parametrize(
    ("value", "on"), [(None, True), ("", True), ("yes", True), ("of", True), ("off", False), ("0", False)]
)
def test_quiet_hours_are_off_only_when_said_so(value, on) -> None:
    env = {} if value is None else {"QUIET_HOURS": value}
    assert from_environment("/tmp", env)["QUIET_HOURS"] is on
