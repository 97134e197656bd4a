"""The Flask extensions, created unbound here and bound to the app in create_app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from flask import Flask
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx

from webapp import database  # noqa: F401  # SQLite's settings on every connection (its listeners)
from webapp.models.base import Base, render_item


class Migrations:
    """Flask-Migrate, loaded when something migrates.

    Importing Flask-Migrate imports Alembic (about a third of a second), which no request and no command
    but `flask db …` uses, and every process start would pay it. So `init_app` gives the app a `db`
    command group that loads Flask-Migrate's commands when one is run, and an `extensions["migrate"]`
    that binds Flask-Migrate to the app when first read (its functions and migrations/env.py read it).
    """

    def __init__(self, **options: Any) -> None:
        self.options = options

    def init_app(self, app: Flask, db: SQLAlchemy, directory: str) -> None:
        def bind() -> Any:
            from flask_migrate import Migrate

            # Puts Flask-Migrate's own config in app.extensions["migrate"] and its `db` group on app.cli.
            Migrate(app, db, directory=directory, **self.options)
            return app.extensions["migrate"]

        app.extensions["migrate"] = _BoundOnFirstUse(bind)
        app.cli.add_command(_MigrationCommands())


class _BoundOnFirstUse:
    def __init__(self, bind: Callable[[], Any]) -> None:
        self._bind = bind
        self._bound: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and friends probing: not a reason to load Alembic
            raise AttributeError(name)
        if self._bound is None:
            self._bound = self._bind()
        return getattr(self._bound, name)


class _MigrationCommands(click.Group):
    """`flask db`: hands the command line to Flask-Migrate's group, imported only now."""

    def __init__(self) -> None:
        super().__init__("db", help="Perform database migrations.")

    @staticmethod
    def _loaded() -> click.Group:
        from flask_migrate.cli import db

        return db

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        return self._loaded().make_context(info_name, args, parent=parent, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._loaded().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._loaded().get_command(ctx, cmd_name)


# A commit does not expire what the request already loaded: the request goes on rendering with the
# objects it has (reloading the user, its roles and the page's objects after every commit doubled the
# queries of a send); code that must see other transactions' writes refreshes explicitly.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrations(render_as_batch=True, compare_type=True, render_item=render_item)
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
