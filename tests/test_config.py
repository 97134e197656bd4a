"""Settings: safe development defaults, and no production start without a real secret."""

from __future__ import annotations

import pytest

from webapp import create_app
from webapp.config import DEV_SECRET_KEY, ConfigError, from_environment


def test_development_defaults(tmp_path) -> None:
    cfg = from_environment(str(tmp_path), {})
    assert cfg["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/relay.db"
    assert cfg["MESSAGING_PROVIDER"] == "simulator"
    assert cfg["REDIS_URL"] is None
    assert cfg["SESSION_COOKIE_HTTPONLY"] and cfg["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert cfg["SESSION_COOKIE_SECURE"] is False


def test_postgres_urls_use_psycopg(tmp_path) -> None:
    cfg = from_environment(str(tmp_path), {"DATABASE_URL": "postgres://u@db/relay"})
    assert cfg["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/relay"


@pytest.mark.parametrize("secret", [None, DEV_SECRET_KEY, "short"])
def test_production_refuses_a_weak_secret(monkeypatch, secret) -> None:
    monkeypatch.setenv("RELAY_ENV", "production")
    if secret is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_production_with_a_real_secret_sets_secure_cookies(monkeypatch) -> None:
    monkeypatch.setenv("RELAY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 64)
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


def test_unknown_environment_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="RELAY_ENV"):
        from_environment(str(tmp_path), {"RELAY_ENV": "prod"})


def test_real_vonage_never_runs_with_the_public_development_signature_secret(monkeypatch) -> None:
    monkeypatch.setenv("MESSAGING_PROVIDER", "vonage")
    monkeypatch.delenv("VONAGE_SIGNATURE_SECRET", raising=False)
    monkeypatch.delenv("RELAY_ENV", raising=False)
    with pytest.raises(ConfigError, match="VONAGE_SIGNATURE_SECRET"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    monkeypatch.setenv("VONAGE_SIGNATURE_SECRET", "s" * 40)
    assert create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).config["VONAGE_SIGNATURE_SECRET"] == "s" * 40
