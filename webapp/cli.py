"""Commands for operators: `flask --app wsgi seed-demo`, `flask --app wsgi permissions sync`."""

from __future__ import annotations

import click
from flask import Flask

from webapp.extensions import db


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    @click.option("--if-empty", is_flag=True, help="Only when the database has no organisation yet.")
    def seed_demo_command(if_empty: bool) -> None:
        """Load the demo customers, users, jobs and candidates (running it twice changes nothing)."""
        from webapp import demo

        if if_empty and not demo.database_is_empty(db.session):
            click.echo("The database already has data; demo data not loaded.")
            return
        summary = demo.seed(db.session)
        db.session.commit()
        click.echo("Demo data ready: " + ", ".join(f"{n} {what}" for what, n in summary.items()))
        click.echo("Sign in at http://127.0.0.1:5000 as recruiter@acme.example, password relay-demo.")

    @app.cli.group("permissions")
    def permissions_group() -> None:
        """The permission catalogue."""

    @permissions_group.command("sync")
    def permissions_sync() -> None:
        """Write the catalogue of permissions into the database."""
        from webapp import permissions

        permissions.sync(db.session)
        db.session.commit()
        click.echo(f"{len(permissions.CATALOGUE)} permissions in the catalogue.")
