"""The messaging panel of the candidate-application page: threads per channel, composer, counter."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from webapp import access
from webapp.extensions import db
from webapp.jobs import bp
from webapp.jobs.message_forms import ComposeForm
from webapp.messaging import (
    checks,
    compose,
    conversations,
    credits,
    dispatch,
    optouts,
    reads,
    simulate,
    whatsapp,
)
from webapp.messaging.status import PENDING
from webapp.models import CHANNEL_LABELS, Application, Message, OptOut
from webapp.pages import wants_fragment


def _application(application_id: int) -> Application:
    return access.get_application(db.session, current_user, application_id) or abort(404)


def default_tab(application: Application) -> str:
    channels = application.job.organization.channels
    texting = [c for c in channels if c != "email"]
    return texting[0] if texting else "email"


def _opt_out(application: Application) -> OptOut | None:
    mobile = application.candidate.mobile
    return optouts.active(db.session, application.job.organization_id, mobile) if mobile else None


def thread_version(conversation_id: int | None, opt_out: OptOut | None) -> str:
    """What the open page shows changes with the conversation and with the candidate's opt-out."""
    return f"{reads.version(db.session, conversation_id)}.{opt_out.id if opt_out else 0}"


def thread_context(application: Application, tab: str | None) -> dict[str, Any]:
    org = application.job.organization
    conversation = conversations.for_application(db.session, application)
    counts = conversations.counts_by_channel(db.session, conversation)
    # A channel switched off later keeps its tab while it has history.
    channels = [c for c in CHANNEL_LABELS if c in org.channels or counts.get(c)]
    tab = tab if tab in channels else default_tab(application)
    items = conversations.messages(db.session, conversation, tab)
    opted_out = _opt_out(application)
    source = (
        db.session.get(Message, opted_out.source_message_id)
        if opted_out and opted_out.source_message_id
        else None
    )
    left = whatsapp.time_left(conversation)
    if conversation is not None and items:
        # What is on screen is read; the commit is the caller's (the page or the poll).
        reads.mark_read(db.session, current_user.id, conversation.id, tab, max(m.id for m in items))
    return {
        "application": application,
        "tabs": [(c, CHANNEL_LABELS[c]) for c in channels],
        "tab": tab,
        "thread": items,
        "refunded": credits.refunded_ids(db.session, [m.id for m in items]),
        "counts": counts,
        "unread": reads.unread_by_channel(
            db.session, current_user.id, conversation.id if conversation else None
        ),
        "version": thread_version(conversation.id if conversation else None, opted_out),
        "opted_out": opted_out,
        "opted_out_text": source.body if source else "STOP",
        "wa_left": left,
        "wa_left_text": whatsapp.describe(left) if left else "",
        "conversation": conversation,
        "pending": any(m.status in PENDING for m in items),
        "simulator": current_app.config["MESSAGING_PROVIDER"] == "simulator",
    }


def composer_context(
    application: Application, form: ComposeForm | None, channel: str | None, conversation: Any = False
) -> dict[str, Any]:
    allowed = checks.allowed_channels(current_user)
    form = form or ComposeForm()
    form.channel.choices = [SelectChoice(c, CHANNEL_LABELS[c]) for c in allowed]
    if form.channel.data not in allowed:
        # Start on the open tab's channel when the user may write on it, else on their first texting one.
        texting = [c for c in allowed if c != "email"]
        form.channel.data = channel if channel in allowed else (texting[0] if texting else "email")
    templates = compose.templates_for(db.session, current_user, allowed)
    form.template_id.choices = [SelectChoice("", "No template")] + [
        SelectChoice(str(t.id), t.name) for t in templates
    ]
    org = application.job.organization
    wa_templates = whatsapp.approved_templates(db.session, org.id) if "whatsapp" in allowed else []
    form.whatsapp_template_id.choices = [SelectChoice("", "Choose an approved template")] + [
        SelectChoice(str(t.id), f"{t.name} ({t.locale})") for t in wa_templates
    ]
    if conversation is False:  # not looked up by the caller yet
        conversation = conversations.for_application(db.session, application)
    left = whatsapp.time_left(conversation)
    return {
        "application": application,
        "form": form,
        "wa_templates": wa_templates,
        "wa_left": left,
        "wa_left_text": whatsapp.describe(left) if left else "",
        "templates": templates,
        "allowed": allowed,
        "missing_right": checks.missing_right(current_user),
        "balance": credits.balance(db.session, org) if org.texts else None,
        "preview": compose.preview(
            application, current_user, form.channel.data or "email", form.body.data or ""
        ),
    }


def panel_context(
    application: Application, tab: str | None, form: ComposeForm | None = None
) -> dict[str, Any]:
    context = thread_context(application, tab)
    context.update(composer_context(application, form, context["tab"], context["conversation"]))
    return context


@bp.get("/applications/<id:application_id>/messages")
@login_required
def thread(application_id: int) -> Response:
    application = _application(application_id)
    since = request.args.get("since")
    if since is not None and wants_fragment():
        # The poll: one indexed query answers "nothing new" without rendering anything.
        conversation = conversations.for_application(db.session, application)
        if thread_version(conversation.id if conversation else None, _opt_out(application)) == since:
            return Response(status=204)
    context = thread_context(application, request.args.get("tab"))
    if not wants_fragment():
        db.session.commit()
        return redirect(url_for("jobs.application", application_id=application_id, tab=context["tab"]))
    # Render before the commit (which would expire every loaded message and reload each one).
    response = make_response(render_template("jobs/_thread.html", **context))
    db.session.commit()
    response.vary.add("HX-Request")
    return response


@bp.post("/applications/<id:application_id>/compose/preview")
@login_required
def preview(application_id: int) -> str:
    application = _application(application_id)
    channel = request.form.get("channel", "email")
    if channel not in CHANNEL_LABELS:
        channel = "email"
    body = request.form.get("body", "")[:60_000]
    org = application.job.organization
    return render_template(
        "jobs/_counter.html",
        preview=compose.preview(application, current_user, channel, body),
        channel=channel,
        balance=credits.balance(db.session, org) if org.texts else None,
    )


@bp.post("/applications/<id:application_id>/messages")
@login_required
def send(application_id: int) -> Response:
    application = _application(application_id)
    form = ComposeForm()
    channel = form.channel.data or ""
    if form.validate_on_submit():
        try:
            template_id = form.whatsapp_template_id.data
            message = compose.compose(
                db.session,
                current_user,
                application,
                channel,
                form.body.data or "",
                subject=form.subject.data if channel == "email" else None,
                whatsapp_template_id=int(template_id) if channel == "whatsapp" and template_id else None,
            )
        except checks.SendRefused as refused:
            db.session.rollback()
            target = getattr(form, refused.field, None) if refused.field else None
            if target is not None:
                target.errors = [*target.errors, refused.message]
            else:
                form.form_errors.append(refused.message)
        else:
            db.session.commit()
            dispatch.enqueue(message.id)
            if not wants_fragment():
                flash(f"{CHANNEL_LABELS[channel]} message queued.", "success")
                return redirect(url_for("jobs.application", application_id=application_id, tab=channel), 303)
            context = panel_context(application, channel, ComposeForm(formdata=None, channel=channel))
            response = make_response(render_template("jobs/_sent.html", **context))
            response.headers["HX-Trigger"] = "messages-changed"
            return response
    # Refused or invalid: the composer again, with the text as typed and the reason beside the field.
    if wants_fragment():
        context = composer_context(application, form, channel)
        response = make_response(render_template("jobs/_composer.html", **context), 422)
        response.headers["HX-Retarget"] = "#composer"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    context = panel_context(application, channel, form)
    others = access.other_applications(db.session, current_user, application)
    return make_response(render_template("jobs/application.html", others=others, **context), 422)


@bp.post("/applications/<id:application_id>/simulate-reply")
@login_required
def simulate_reply(application_id: int) -> Response:
    application = _application(application_id)
    if current_app.config["MESSAGING_PROVIDER"] != "simulator":
        abort(404)
    channel = request.form.get("channel", "sms")
    if channel not in ("sms", "whatsapp"):
        abort(400, description="Replies can be simulated on SMS and WhatsApp.")
    text = (request.form.get("text") or "Yes, that works for me!")[:500]
    conversation = conversations.for_application(db.session, application)
    db.session.rollback()  # the webhook writes in a session of its own
    try:
        simulate.reply(current_app._get_current_object(), application, conversation, channel, text)
    except simulate.CannotSimulate as exc:
        flash(str(exc), "error")
    db.session.expire_all()
    if not wants_fragment():
        return redirect(url_for("jobs.application", application_id=application_id, tab=channel), 303)
    context = thread_context(application, channel)
    response = make_response(render_template("jobs/_thread.html", **context))
    db.session.commit()
    response.headers["HX-Trigger"] = "messages-changed"
    return response
