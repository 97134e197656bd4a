"""The periodic tasks: a name (its row in `scheduled_run`), the setting that says how often, and what it
does. A task is given the pass's moment, changes the database through `db.session`, commits, and says
in a few words what it changed ("" when there was nothing to do). It must be safe to run twice at once
(a run that outlasts its interval may meet the next one): these are, each decision being a conditional
UPDATE or taken under a row lock. Each imports its domain module when it runs, so that importing the
clock (wsgi.py does) costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webapp.extensions import db


@dataclass(frozen=True)
class Task:
    name: str
    interval_setting: str  # seconds between two starts; 0 switches the task off
    run: Callable[[datetime], str]

    def interval(self, config: Mapping[str, Any]) -> float:
        return float(config.get(self.interval_setting) or 0)


def recover_claims(now: datetime) -> str:
    """The dispatch sweep: claims whose lease ran out, and queued messages nobody picked up."""
    from webapp.messaging import dispatch

    found = dispatch.recover(now=now, give_up=False)
    if not (found.requeued or found.unknown):
        return ""
    return (
        f"{len(found.requeued)} message(s) handed to the dispatcher again, "
        f"{len(found.unknown)} left mid-send now waiting for the network's report"
    )


def give_up_unknown(now: datetime) -> str:
    """Sends whose outcome stayed unknown past SEND_UNKNOWN_WAIT_SECONDS: not confirmed, refunded."""
    from webapp.messaging import dispatch

    given_up = dispatch.give_up_unknown(now)
    return f"{len(given_up)} message(s) never confirmed and refunded" if given_up else ""


def send_scheduled(now: datetime) -> str:
    """Messages scheduled for later whose time has come: checked again, and handed to the dispatcher
    or held with the reason (webapp.messaging.scheduled)."""
    from webapp.messaging import scheduled

    return str(scheduled.send_due(now))


def expire_compliance(now: datetime) -> str:
    """Approvals past their expiry date: expired, and their countries' numbers suspended."""
    from webapp.compliance import submissions

    expired = submissions.expire_due(db.session, now)
    db.session.commit()
    return ", ".join(f"{s.organization.name} {s.country} expired" for s in expired)


def apply_stored_webhooks(now: datetime) -> str:
    """Stored webhooks that no worker applied within WEBHOOK_SWEEP_SECONDS (a worker failed, Redis was
    away): applied here, in the clock (webapp.messaging.ingest)."""
    from flask import current_app

    from webapp.messaging import ingest

    return ingest.sweep(now, timedelta(seconds=current_app.config["WEBHOOK_SWEEP_SECONDS"]))


def notify_by_email(now: datetime) -> str:
    """Replies unread past NOTIFY_WAIT_MINUTES: one email to whom each concerns, under their choice and
    within their hours (webapp.notifications.emails)."""
    from flask import current_app

    from webapp.notifications import emails
    from webapp.providers import registry

    config = current_app.config
    swept = emails.sweep(
        db.session,
        now,
        registry.for_channel(current_app._get_current_object(), "email"),
        config["PUBLIC_BASE_URL"],
        config["SECRET_KEY"],
        wait=timedelta(minutes=float(config["NOTIFY_WAIT_MINUTES"])),
    )
    return str(swept)


def resume_bulk(now: datetime) -> str:
    """Bulk messages still running (their worker died, or Redis was away): the rest composed, never one
    person twice (webapp.messaging.bulk)."""
    from webapp.messaging import bulk

    return bulk.resume_running(now)


def number_health(now: datetime) -> str:
    """Number health (webapp.numbers.health): today's and yesterday's messages, failures and opt-outs
    recounted per number, the figures the health pages read, the 80 % notices and the pauses, and the
    email to staff about them."""
    return _number_health(now, 0)


def number_health_recount(now: datetime) -> str:
    """The same over the last 30 days: late delivery reports change days already counted, and days no
    pass counted (a new installation, a stopped clock) are filled."""
    return _number_health(now, 1)


def _number_health(now: datetime, wide: int) -> str:
    from flask import current_app

    from webapp.numbers import health, health_report
    from webapp.providers import registry

    days = health.RECOUNT_DAYS if wide else health.RECENT_DAYS
    done = health.refresh(db.session, now, days)
    emailed = health_report.email_staff(
        db.session,
        now,
        registry.for_channel(current_app._get_current_object(), "email"),
        current_app.config["PUBLIC_BASE_URL"],
    )
    said = str(done)
    return f"{said}; {emailed} notice(s) emailed to staff" if emailed else said


TASKS: tuple[Task, ...] = (
    Task("dispatch-recovery", "DISPATCH_SWEEP_SECONDS", recover_claims),
    Task("unknown-give-up", "DISPATCH_SWEEP_SECONDS", give_up_unknown),
    Task("scheduled-send", "SCHEDULED_SEND_EVERY_SECONDS", send_scheduled),
    Task("compliance-expiry", "COMPLIANCE_EXPIRY_SECONDS", expire_compliance),
    Task("webhook-sweep", "WEBHOOK_SWEEP_SECONDS", apply_stored_webhooks),
    Task("notify-email", "NOTIFY_EVERY_SECONDS", notify_by_email),
    Task("bulk-resume", "DISPATCH_SWEEP_SECONDS", resume_bulk),
    Task("number-health", "HEALTH_EVERY_SECONDS", number_health),
    Task("number-health-recount", "HEALTH_RECOUNT_SECONDS", number_health_recount),
)
