"""The messaging panel of the candidate-application page: threads per channel, composer, counter, and
Simulate a reply. The partials' ids carry the application's id, so that two panels could share a page."""

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
from webapp.models import CHANNEL_LABELS, Application, Conversation, Message, OptOut
from webapp.pages import wants_fragment

SIMULATED_REPLY = "Yes, that works for me!"
# Other regions of the page (the thread) refresh themselves on this event (HX-Trigger).
MESSAGES_CHANGED = "messages-changed"
# Sent with a thread that changed, for the composer's counter (opt-out, WhatsApp window) to follow.
THREAD_REFRESHED = "thread-refreshed"


def _application(application_id: int) -> Application:
    return access.get_application(db.session, current_user, application_id) or abort(404)


def default_tab(application: Application) -> str:
    channels = application.job.organization.channels
    texting = [c for c in channels if c != "email"]
    return texting[0] if texting else "email"


def _opt_out(application: Application) -> OptOut | None:
    mobile = application.candidate.mobile
    return optouts.active(db.session, application.job.organization_id, mobile) if mobile else None


def thread_version(conversation: Conversation | None, opt_out: OptOut | None) -> str:
    """What the open page shows changes with the messages, the candidate's opt-out and the WhatsApp
    window. The last two are taken from the objects the page is rendered from: if a webhook committed
    after they were read, the next poll's version differs and brings the change."""
    messages = reads.version(db.session, conversation.id if conversation else None)
    window = conversation.whatsapp_window_ends_at if conversation else None
    stamp = int(window.timestamp()) if window else 0
    return f"{messages}.{opt_out.id if opt_out else 0}.{stamp}"


def page_url(application: Application, tab: str) -> str:
    return url_for("jobs.application", application_id=application.id, tab=tab)


def thread_context(application: Application, tab: str | None, follow_newest: bool = False) -> dict[str, Any]:
    org = application.job.organization
    conversation = conversations.for_application(db.session, application)
    opted_out = _opt_out(application)
    # The version before the messages: what is shown is then never older than the version the page
    # polls with, so a status committed meanwhile (the dispatcher's "sent") comes with the next poll.
    version = thread_version(conversation, opted_out)
    counts = conversations.counts_by_channel(db.session, conversation)
    # A channel switched off later keeps its tab while it has history.
    channels = [c for c in CHANNEL_LABELS if c in org.channels or counts.get(c)]
    tab = tab if tab in channels else default_tab(application)
    items = conversations.messages(db.session, conversation, tab)
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
        "version": version,
        "opted_out": opted_out,
        "opted_out_text": source.body if source else "STOP",
        "wa_left": left,
        "wa_left_text": whatsapp.describe(left) if left else "",
        "conversation": conversation,
        "pending": any(m.status in PENDING for m in items),
        # After a send the thread shows the newest message even if the user had scrolled up.
        "follow_newest": follow_newest,
    }


def counter_context(
    application: Application,
    channel: str,
    body: str,
    whatsapp_template_id: str | None,
    conversation: Any = False,
) -> dict[str, Any]:
    """The line under the text: what it costs, or why it cannot go, before the user presses Send."""
    org = application.job.organization
    if conversation is False:  # not looked up by the caller yet
        conversation = conversations.for_application(db.session, application)
    wa_open = whatsapp.time_left(conversation) is not None
    template = None
    if channel == "whatsapp" and not wa_open and whatsapp_template_id and whatsapp_template_id.isdigit():
        template = whatsapp.approved_template(db.session, org.id, int(whatsapp_template_id))
    return {
        "application": application,
        "channel": channel,
        "preview": compose.preview(application, current_user, channel, body, template),
        "blocked": checks.recipient_refusal(db.session, application.candidate, channel),
        "balance": credits.balance(db.session, org) if org.texts and channel != "email" else None,
        "wa_open": wa_open,
        "wa_template": template,
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
    missing = checks.missing_right(current_user)
    context = {
        "application": application,
        "form": form,
        "wa_templates": wa_templates,
        "wa_left": left,
        "wa_left_text": whatsapp.describe(left) if left else "",
        "templates": templates,
        "allowed": allowed,
        # The missing right is said once, by the notice; when it is why a send was refused, the notice
        # becomes the error instead of being repeated under "Send as".
        "missing_right": missing,
        "refused_for_right": bool(missing) and missing in form.channel.errors,
        "channel_errors": [e for e in form.channel.errors if e != missing],
    }
    context.update(
        counter_context(
            application,
            form.channel.data or "email",
            form.body.data or "",
            form.whatsapp_template_id.data,
            conversation,
        )
    )
    return context


def simulate_context(
    application: Application, channel: str | None, text: str = SIMULATED_REPLY, error: str | None = None
) -> dict[str, Any]:
    """Simulate a reply: development only, on the organisation's texting channels."""
    texting = [c for c in application.job.organization.channels if c != "email"]
    on = current_app.config["MESSAGING_PROVIDER"] == "simulator" and bool(texting)
    return {
        "application": application,
        "simulator": on,
        "simulate_channels": [(c, CHANNEL_LABELS[c]) for c in texting],
        "simulate_channel": channel if channel in texting else (texting[0] if texting else None),
        "simulate_text": text,
        "simulate_error": error,
    }


def panel_context(
    application: Application, tab: str | None, form: ComposeForm | None = None, follow_newest: bool = False
) -> dict[str, Any]:
    context = thread_context(application, tab, follow_newest)
    context.update(composer_context(application, form, context["tab"], context["conversation"]))
    context.update(simulate_context(application, context["tab"]))
    return context


@bp.get("/applications/<id:application_id>/messages")
@login_required
def thread(application_id: int) -> Response:
    application = _application(application_id)
    since = request.args.get("since")
    if since is not None and wants_fragment():
        # The poll: one indexed query answers "nothing new" without rendering anything.
        conversation = conversations.for_application(db.session, application)
        if thread_version(conversation, _opt_out(application)) == since:
            return Response(status=204)
    context = thread_context(application, request.args.get("tab"))
    if not wants_fragment():
        db.session.commit()
        return redirect(page_url(application, context["tab"]))
    # Render before the commit (which would expire every loaded message and reload each one).
    response = make_response(render_template("jobs/_thread_update.html", **context))
    db.session.commit()
    response.vary.add("HX-Request")
    response.headers["HX-Trigger"] = THREAD_REFRESHED
    return response


@bp.post("/applications/<id:application_id>/compose/preview")
@login_required
def preview(application_id: int) -> str:
    application = _application(application_id)
    channel = request.form.get("channel", "email")
    if channel not in CHANNEL_LABELS:
        channel = "email"
    body = request.form.get("body", "")[:60_000]
    context = counter_context(application, channel, body, request.form.get("whatsapp_template_id"))
    return render_template("jobs/_counter.html", **context)


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
                return redirect(page_url(application, channel), 303)
            context = panel_context(
                application, channel, ComposeForm(formdata=None, channel=channel), follow_newest=True
            )
            response = make_response(render_template("jobs/_sent.html", **context))
            db.session.commit()  # the read marker of the thread just rendered
            # The thread came with this answer; the event is for other regions, after the swap.
            response.headers["HX-Trigger-After-Settle"] = MESSAGES_CHANGED
            response.headers["HX-Push-Url"] = page_url(application, context["tab"])
            return response
    # Refused or invalid: the composer again, with the text as typed and the reason beside the field.
    if wants_fragment():
        context = composer_context(application, form, channel)
        response = make_response(render_template("jobs/_composer.html", **context), 422)
        response.headers["HX-Retarget"] = f"#composer-{application.id}"
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
    channel = request.form.get("channel", "")
    text = (request.form.get("text") or SIMULATED_REPLY)[:500]
    error = _simulate(application, channel, text)
    if not wants_fragment():
        if error:
            flash(error, "error")
        return redirect(page_url(application, channel if channel in CHANNEL_LABELS else "sms"), 303)
    # The form answers for itself, the error beside it; the thread refreshes itself on the event.
    context = simulate_context(application, channel, text if error else SIMULATED_REPLY, error)
    response = make_response(render_template("jobs/_simulate.html", **context), 422 if error else 200)
    if not error:
        response.headers["HX-Trigger-After-Settle"] = MESSAGES_CHANGED
    return response


def _simulate(application: Application, channel: str, text: str) -> str | None:
    """Post the candidate's reply to our own webhook; the reason it could not, or None."""
    if channel not in [c for c in application.job.organization.channels if c != "email"]:
        return "Choose SMS or WhatsApp: replies can be simulated on those."
    conversation = conversations.for_application(db.session, application)
    db.session.rollback()  # the webhook writes in a session of its own
    try:
        status = simulate.reply(current_app._get_current_object(), application, conversation, channel, text)
    except simulate.CannotSimulate as exc:
        return str(exc)
    finally:
        db.session.expire_all()
    return None if status == 200 else f"The inbound webhook answered {status}."
