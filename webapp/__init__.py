"""Relay: texting candidates and prospects from the ATS. `create_app` is the application factory."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, abort, redirect, request, url_for
from flask_login import current_user

from webapp import config as settings
from webapp import database, logs
from webapp.extensions import csrf, db, htmx, login_manager, migrate
from webapp.ids import IdConverter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
        instance_path=os.path.join(ROOT, "instance"),
    )
    app.config.from_mapping(settings.from_environment(app.instance_path))
    if config:
        app.config.update(config)
    settings.check(app.config)
    settings.size_pool(app.config)
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        proxies = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    # Every process of the app (web, worker, clock, a command) logs in the format its settings ask for.
    logs.configure(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    os.makedirs(app.instance_path, exist_ok=True)
    # Before the blueprints: their rules look the converter up when they are added.
    app.url_map.converters["id"] = IdConverter

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            if not engine.pool._pre_ping:  # an engine given pool_pre_ping keeps SQLAlchemy's own
                database.ping_when_idle(engine)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)

    from webapp import cli, web

    web.register(app, login_manager)
    cli.register(app)

    @app.get("/")
    def home() -> Any:
        if current_user.is_authenticated:
            # The page that fits the user's work (webapp.accounts.landing); staff's is the staff area.
            from webapp.accounts import landing

            return redirect(url_for(landing.start_endpoint(db.session, current_user)))
        return redirect(url_for("auth.login"))

    @app.before_request
    def refuse_nul() -> None:
        # PostgreSQL text cannot hold NUL and no keyboard types one: a clear 400, not a database error.
        for values in (request.args, request.form if request.mimetype != "application/json" else {}):
            for value in values.values():
                if "\x00" in value:
                    abort(400, description="The request contains a NUL character.")

    @app.get("/favicon.ico")
    def favicon() -> Any:
        # Browsers and tools ask for it at the root whatever the page links; the same icon, not a 404.
        return app.send_static_file("favicon.svg")

    @app.get("/healthz")
    def healthz() -> tuple[str, int]:
        return "ok", 200

    @app.get("/readyz")
    def readyz() -> tuple[dict[str, str], int]:
        from webapp import readiness

        found = readiness.check(app.config)
        return found, 200 if all(state == "ok" for state in found.values()) else 503

    return app
