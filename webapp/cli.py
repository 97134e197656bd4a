"""Commands for operators: seed-demo, prepare, permissions sync, compliance sync/expire, users reset-link,
credits top-up/balance, dispatch requeue, worker, clock."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
import sqlalchemy as sa
from flask import Flask

from webapp import config, ids
from webapp.extensions import db

if TYPE_CHECKING:
    from webapp.models import Organization


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    @click.option("--if-empty", is_flag=True, help="Only when the database has no organisation yet.")
    def seed_demo_command(if_empty: bool) -> None:
        """Load the demo customers, users, jobs and candidates (running it twice changes nothing)."""
        _seed_demo(if_empty)

    @app.cli.command("prepare")
    @click.option("--demo", is_flag=True, help="Then load the demo data, if the database has none yet.")
    def prepare_command(demo: bool) -> None:
        """Migrate the database to the newest revision (`db upgrade`) and, with --demo, load the demo
        data into an empty database (`seed-demo --if-empty`): both in one process, so that starting
        pays for importing the app once, not once a command."""
        from flask_migrate import upgrade

        upgrade()
        if demo:
            _seed_demo(if_empty=True)

    @app.cli.group("permissions")
    def permissions_group() -> None:
        """The permission catalogue."""

    @permissions_group.command("sync")
    def permissions_sync() -> None:
        """Write the catalogue of permissions into the database."""
        from webapp.accounts import permissions

        permissions.sync(db.session)
        db.session.commit()
        click.echo(f"{len(permissions.CATALOGUE)} permissions in the catalogue.")

    @app.cli.group("compliance")
    def compliance_group() -> None:
        """Proof-of-business documents for sending numbers."""

    @compliance_group.command("sync")
    def compliance_sync() -> None:
        """Write the requirements catalogue (webapp/compliance/requirements.json) into the database."""
        from webapp.compliance import catalogue

        try:
            count = catalogue.sync(db.session)
        except catalogue.CatalogueError as error:
            db.session.rollback()
            raise click.ClickException(str(error)) from None
        db.session.commit()
        countries = ", ".join(catalogue.countries(db.session))
        click.echo(f"{count} requirements in the catalogue ({countries}).")

    @compliance_group.command("expire")
    def compliance_expire() -> None:
        """Mark approvals past their expiry date expired and suspend those countries' numbers."""
        from webapp.compliance import submissions

        expired = submissions.expire_due(db.session)
        db.session.commit()
        for s in expired:
            click.echo(f"Expired: {s.organization.name} {s.country}")
        click.echo(f"{len(expired)} approval(s) expired.")

    @app.cli.group("users")
    def users_group() -> None:
        """People's accounts."""

    @users_group.command("reset-link")
    @click.argument("email")
    def users_reset_link(email: str) -> None:
        """Print a new set-password link for EMAIL (its earlier links stop working). Nothing is emailed:
        hand it over yourself. For an organisation whose last administrator is locked out."""
        from flask import current_app

        from webapp.accounts import password_links, people

        user = people.find_by_email(db.session, email)
        if user is None:
            raise click.ClickException(f"No Relay account has the address {email.strip()[:200]!r}.")
        try:
            token = people.new_link(db.session, None, user)
        except people.PeopleRefused as refusal:
            db.session.rollback()
            raise click.ClickException(str(refusal)) from None
        db.session.commit()
        link = password_links.find(db.session, token)
        assert link is not None
        where = user.organization.name if user.organization else "Relay staff"
        click.echo(
            f"Set-password link for {user.name} <{user.email}> ({where}), works once, until "
            f"{link.expires_at:%Y-%m-%d %H:%M} UTC:"
        )
        click.echo(password_links.url(current_app.config["PUBLIC_BASE_URL"], token))

    @app.cli.group("credits")
    def credits_group() -> None:
        """Credit balances (held on the top organisation, shared by its sub-organisations)."""

    # A negative AMOUNT reaches the command (and is refused by the rule) instead of being taken for an
    # option.
    @credits_group.command("top-up", context_settings={"ignore_unknown_options": True})
    @click.argument("organization")
    @click.argument("amount")
    @click.option("--note", required=True, help="Why: the order, ticket or agreement.")
    def credits_top_up(organization: str, amount: str, note: str) -> None:
        """Add AMOUNT credits to ORGANIZATION (its name or id); writes a ledger row."""
        from webapp.billing import credits

        org = _organization(organization)
        try:
            # The staff page's rule for what a number of credits is, and for what a top-up may add.
            row = credits.top_up(db.session, org, credits.parse_amount(amount), note)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        db.session.commit()
        click.echo(f"{org.top.name}: +{row.amount} credits, balance {row.balance_after}.")

    @credits_group.command("balance")
    @click.argument("organization")
    def credits_balance(organization: str) -> None:
        """Show the balance ORGANIZATION (name or id) sends from."""
        from webapp.billing import credits

        org = _organization(organization)
        click.echo(f"{org.top.name}: {credits.balance(db.session, org)} credits.")

    @app.cli.group("dispatch")
    def dispatch_group() -> None:
        """The outbound queue."""

    @dispatch_group.command("requeue")
    @click.option(
        "--older-than",
        metavar="SECONDS",
        default=None,
        help="Seconds a queued message has waited before it is handed over again "
        "[default: SEND_REQUEUE_AFTER_SECONDS, 300].",
    )
    def dispatch_requeue(older_than: str | None) -> None:
        """Hand over again what waits: queued messages nobody picked up, and claims whose lease ran out
        (those become "checking with the network" if a try had begun). Never sends a message twice."""
        from webapp.messaging import dispatch

        queued_after = None if older_than is None else _seconds("--older-than", older_than)
        click.echo(str(dispatch.recover(queued_after)))

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
    @click.option(
        "--queue",
        "queues",
        multiple=True,
        type=click.Choice(["sends", "webhooks"]),
        help="What this worker takes (repeat for both) [default: sends, then webhooks].",
    )
    @click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        help="Jobs in flight at once, each in a thread of this process "
        "[default: SEND_WORKER_THREADS (4) when it takes sends, else 1].",
    )
    def worker(burst: bool, queues: tuple[str, ...], threads: int | None) -> None:
        """Send queued messages, and apply stored webhooks, from Redis (REDIS_URL) until stopped."""
        from webapp.messaging import dispatch, ingest
        from webapp.messaging import worker as rq_worker

        if not app.config.get("REDIS_URL"):
            raise click.UsageError("set REDIS_URL to the Redis that the web processes enqueue on")
        chosen = queues or ("sends", "webhooks")
        if threads is None:
            threads = app.config["SEND_WORKER_THREADS"] if "sends" in chosen else 1
        pool = db.engine.pool
        if (
            db.engine.dialect.name == "postgresql"
            and isinstance(pool, sa.QueuePool)
            and pool.size() < threads
        ):
            # Each thread holds a connection through its transactions; past the pool's size, SQLAlchemy
            # opens one (a PostgreSQL backend) per transaction and closes it after.
            raise click.UsageError(
                f"--threads {threads} needs a database pool of {threads} connections (it keeps "
                f"{pool.size()}): set SEND_WORKER_THREADS={threads}, which sizes the pool, instead"
            )
        if "sends" in chosen:
            # What a killed worker left behind: recovered now; afterwards the clock sweeps (`flask clock`).
            click.echo(f"Recovery: {dispatch.recover()}")
            dispatch.warm_up(app)
        # In the order given: a worker takes from the first queue that has a job.
        found = [dispatch.queue(app) if name == "sends" else ingest.queue(app) for name in chosen]
        # The jobs run in this process, each loop in a thread with its app context: no fork, no copied DB
        # pool; RQ's queues, but a loop of ours instead of RQ's worker (webapp.messaging.worker says why).
        # No RQ scheduler: the periodic work is the clock's (webapp.scheduling.clock says why).
        status = rq_worker.run(app, found, threads, burst)
        if status:
            raise SystemExit(status)

    @app.cli.command("clock")
    @click.option("--once", is_flag=True, help="One pass: run what is due, then stop.")
    def clock_command(once: bool) -> None:
        """Run the periodic work when it is due (the dispatch sweep, unknown outcomes given up,
        compliance expiry) until stopped (SIGTERM, Ctrl-C). Any number of clocks may run: each task runs
        once per interval across them all."""
        from webapp.scheduling import clock

        if once:
            for run in clock.run_due():
                click.echo(str(run))
            return
        tasks = clock.enabled(app.config)
        every = ", ".join(f"{t.name} every {t.interval(app.config):g} s" for t in tasks) or "nothing to run"
        click.echo(f"Clock: {every}.")
        stop = threading.Event()
        # The pass under way finishes (a task is never cut in the middle of its commits), then the loop ends.
        signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
        signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())

        def report(run: clock.Run) -> None:
            click.echo(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {run}")

        clock.run_forever(app, stop, report)
        click.echo("Clock stopped.")


def _seed_demo(if_empty: bool) -> None:
    from flask import current_app

    from webapp import demo

    if if_empty and not demo.database_is_empty(db.session):
        click.echo("The database already has data; demo data not loaded.")
        return
    summary = demo.seed(db.session)
    db.session.commit()
    click.echo("Demo data ready: " + ", ".join(f"{n} {what}" for what, n in summary.items()))
    address = current_app.config["PUBLIC_BASE_URL"]
    click.echo(f"Sign in at {address} as recruiter@acme.example, password relay-demo.")


def _seconds(option: str, text: str) -> float:
    """A number of seconds given to an option (the settings' rule); a one-line error (exit status 1)
    for anything else."""
    try:
        return config.seconds(text)
    except ValueError as exc:
        raise click.ClickException(f"{option} takes {exc}") from None


def _organization(ref: str) -> Organization:
    """The organisation named `ref`, or with `ref` as its id; a one-line error (exit status 1) if none."""
    from webapp.models import Organization

    number = ids.parse(ref)
    if "\x00" in ref:  # PostgreSQL cannot even compare it
        raise click.ClickException(f"no organisation {ref!r}")
    org = db.session.scalar(
        sa.select(Organization).where(Organization.id == number if number else Organization.name == ref)
    )
    if org is None:
        raise click.ClickException(f"no organisation {ref!r}")
    return org
