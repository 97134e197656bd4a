"""Admin → Organisation: the organisation's own settings."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from webapp import zones
from webapp.accounts import permissions
from webapp.organizations import settings as organizations
from webapp.web import refusals
from webapp.web.admin.forms import SettingsForm
from webapp.web.admin.routes import bp
from webapp.web.guards import permission_required


def _form(formdata: object = None) -> SettingsForm:
    org = current_user.organization
    if formdata is None:
        form = SettingsForm(
            formdata=None,
            sender_name=org.sender_name,
            channels=organizations.channel_choice(org),
            help_reply=org.help_reply,
            low_credit_threshold=str(org.top.low_credit_threshold),
            time_zone=org.time_zone,
            send_from=f"{org.send_from:%H:%M}",
            send_until=f"{org.send_until:%H:%M}",
            send_days=list(org.send_days),
            bulk_cap=str(org.bulk_cap),
        )
    else:
        form = SettingsForm()
    form.channels.choices = [SelectChoice(k, v) for k, v in organizations.CHANNEL_CHOICES.items()]
    form.send_days.choices = [SelectChoice(k, v) for k, v in organizations.WEEKDAYS.items()]
    return form


def _page(form: SettingsForm) -> str:
    org = current_user.organization
    return render_template("admin/settings.html", org=org, form=form, zones=zones.names())


@bp.get("/settings")
@permission_required(permissions.ADMIN_ORGANIZATION)
def settings() -> str:
    return _page(_form())


@bp.post("/settings")
@permission_required(permissions.ADMIN_ORGANIZATION)
def save_settings() -> Response:
    form = _form(formdata=True)
    refusals.submit(
        form, lambda: organizations.update(current_user.organization, _values(form)), lambda: _page(form)
    )
    flash("Settings saved.", "success")
    return redirect(url_for("admin.settings"), 303)


def _values(form: SettingsForm) -> organizations.Settings:
    """What the form says; what the organisation does not have (Messaging; its own credits, for a
    sub-organisation) is kept as it is."""
    org = current_user.organization
    return organizations.Settings(
        sender_name=form.sender_name.data or "",
        channels=form.channels.data if org.has_messaging else None,
        help_reply=form.help_reply.data or "",
        low_credit_threshold=form.low_credit_threshold.data if org.parent_id is None else None,
        time_zone=(form.time_zone.data or "").strip(),
        send_from=(form.send_from.data or "") if org.texts else None,
        send_until=(form.send_until.data or "") if org.texts else None,
        send_days=(form.send_days.data or []) if org.texts else None,
        bulk_cap=form.bulk_cap.data if form.bulk_cap.data is not None else None,
    )
