"""Notifications on the web: the person's own settings, the one-click unsubscribe of the emails, the
top bar's poll for a page that has none, and the count that rides on every poll's answer.

The count: a page sends the stamp its top bar shows (X-Relay-Waiting, static/js/app.js) with its htmx
requests; when the person's own side of their conversations moved since, the answer carries the count
and the new stamp back in the same header, whatever else it is (the Inbox's 204 included). So the top
bar lives on the poll the page already has, and an unchanged poll costs one index probe more.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, current_app, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from webapp import zones
from webapp.extensions import csrf, db
from webapp.notifications import emails, waiting
from webapp.web import refusals
from webapp.web.notifications.forms import NotificationSettingsForm, UnsubscribeForm

bp = Blueprint("notifications", __name__, template_folder="templates")

HEADER = "X-Relay-Waiting"


@bp.get("/notifications/waiting")
@login_required
def poll() -> Response:
    """The top bar's own poll, on a page without another: always 204, the count in its header."""
    return Response(status=204)


@bp.after_app_request
def carry_the_count(response: Response) -> Response:
    """Put the top bar's count on the answer when the page's stamp is behind (see the module)."""
    seen = request.headers.get(HEADER)
    if seen is None or request.method != "GET" or not current_user.is_authenticated:
        return response
    if current_user.organization_id is None or (response.status_code >= 300 and response.status_code != 304):
        return response
    # The Inbox's poll read the stamp already (its marker); anything else probes it.
    now = g.get("waiting_stamp") or waiting.stamp(db.session, current_user.id)
    if now != seen.strip():
        response.headers[HEADER] = waiting.waiting(db.session, current_user).header()
    return response


@bp.route("/settings/notifications", methods=["GET", "POST"])
@login_required
def settings() -> Response | str:
    user = current_user._get_current_object()
    form = NotificationSettingsForm(
        data={
            "mode": user.notify_email,
            "time_zone": user.time_zone or "",
            "work_from": f"{user.work_from:%H:%M}",
            "work_until": f"{user.work_until:%H:%M}",
            "work_days": list(user.work_days),
        }
        if request.method == "GET"
        else None
    )

    def page() -> str:
        return _settings_page(form)

    if request.method == "POST":
        refusals.submit(
            form,
            lambda: emails.save_settings(
                db.session,
                user,
                form.mode.data or "",
                form.time_zone.data or "",
                form.work_from.data or "",
                form.work_until.data or "",
                form.work_days.data or [],
            ),
            page,
        )
        return redirect(url_for("notifications.settings", saved=1), 303)
    return page()


def _settings_page(form: NotificationSettingsForm) -> str:
    user = current_user._get_current_object()
    return render_template(
        "notifications/settings.html",
        form=form,
        zones=zones.names(),
        organization_zone=zones.name_of_reader(user),
        saved=request.args.get("saved") == "1",
        wait=current_app.config["NOTIFY_WAIT_MINUTES"],
    )


@bp.route(emails.UNSUBSCRIBE_PATH + "<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Response | str:
    """GET: a page with one button (a link opened by a mail scanner changes nothing). POST: the one
    click (RFC 8058), from that button or from the mail client itself; no sign-in needed."""
    user = emails.user_of_token(db.session, current_app.config["SECRET_KEY"], token)
    if user is None:
        abort(404)
    form = UnsubscribeForm()
    done = False
    if request.method == "POST":
        emails.unsubscribe(db.session, user)
        done = True
    return render_template("notifications/unsubscribe.html", form=form, person=user, done=done, token=token)


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    csrf.exempt(unsubscribe)
