"""The messaging panel of a conversation: threads per channel, composer, counter, and Simulate a reply.
Routes are keyed by the conversation; what it is about (an application or a community membership) is
its subject. The partials' ids carry the conversation's id, so that two panels can share a page."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from markupsafe import Markup
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from webapp import ids
from webapp.accounts import access
from webapp.billing import credits
from webapp.extensions import db
from webapp.interviews import invitations
from webapp.messaging import (
    checks,
    compose,
    conversations,
    dispatch,
    optouts,
    reads,
    reply_channel,
    simulate,
    subjects,
    whatsapp,
)
from webapp.messaging.reply_channel import ReplyChannel
from webapp.messaging.status import PENDING
from webapp.messaging.subjects import Subject
from webapp.models import CHANNEL_LABELS, Conversation, Message, OptOut
from webapp.web import form_errors
from webapp.web.conversations.forms import ComposeForm
from webapp.web.pages import wants_fragment

bp = Blueprint("conversations", __name__, template_folder="templates")


SIMULATED_REPLY = "Yes, that works for me!"
# The pseudo-tab of every channel interleaved in time.
ALL = "all"
# Other regions of the page (the thread) refresh themselves on this event (HX-Trigger).
MESSAGES_CHANGED = "messages-changed"
# Sent with a thread that changed, for the composer's counter (opt-out, WhatsApp window) to follow.
THREAD_REFRESHED = "thread-refreshed"


def _conversation(conversation_id: int) -> tuple[Conversation, Subject]:
    conversation = access.get_conversation(db.session, current_user, conversation_id) or abort(404)
    return conversation, subjects.of_conversation(conversation)


def preselected(conversation: Conversation, about: Subject) -> ReplyChannel:
    """The channel a reply goes out on unless the user picks another (messaging.reply_channel): the
    composer preselects it and the page opens on its tab. Someone who may only read (another
    organisation's conversation) is shown the tab of the channel its own team would reply on."""
    offered = (
        about.organization.channels
        if checks.not_ours(current_user, about)
        else checks.allowed_channels(current_user, about)
    )
    chosen = reply_channel.for_conversation(db.session, about, conversation, offered)
    if chosen is None:  # nothing to write on: the first texting channel's tab, as before
        texting = [c for c in about.organization.channels if c != "email"]
        return ReplyChannel(texting[0] if texting else "email", "")
    return chosen


def _opt_out(about: Subject) -> OptOut | None:
    mobile = about.contact.mobile
    return optouts.active(db.session, about.organization.id, mobile) if mobile else None


def thread_version(conversation: Conversation | None, opt_out: OptOut | None) -> str:
    """What the open page shows changes with the messages, the candidate's opt-out and the WhatsApp
    window. All three are taken from the objects the page is rendered from, read before its messages
    (the conversation by key at the request's start): if a webhook committed after they were read, the
    next poll's version differs and brings the change."""
    messages = reads.version_of(conversation)
    window = conversation.whatsapp_window_ends_at if conversation else None
    stamp = int(window.timestamp()) if window else 0
    return f"{messages}.{opt_out.id if opt_out else 0}.{stamp}"


def page_url(conversation: Conversation, about: Subject, tab: str | None) -> str:
    """Where the conversation lives as a page: its application's page, or its prospect-community page
    (on the reply channel's tab when `tab` is None)."""
    if about.application is not None:
        return url_for("jobs.application", application_id=about.id, tab=tab)
    return url_for("crm.membership", membership_id=about.id, tab=tab)


def thread_context(
    conversation: Conversation,
    about: Subject,
    tab: str | None,
    follow_newest: bool = False,
    from_id: int | None = None,
    opted_out: OptOut | bool | None = False,
    reply: ReplyChannel | None = None,
) -> dict[str, Any]:
    """The thread on one channel's tab, or every channel interleaved (`tab` ALL, as the Inbox shows
    it): the newest page of messages, or all from `from_id` on when a refresh must keep what the
    reader scrolled up to. Without a tab, the reply channel's (`reply`, computed when not given)."""
    org = about.organization
    if opted_out is False:  # not read yet by the caller
        opted_out = _opt_out(about)
    # The version before the messages: what is shown is then never older than the version the page
    # polls with, so a status committed meanwhile (the dispatcher's "sent") comes with the next poll.
    version = thread_version(conversation, opted_out)
    # A channel switched off later keeps its tab while it has history (kept on the conversation).
    channels = [c for c in CHANNEL_LABELS if c in org.channels or getattr(conversation, f"has_{c}")]
    if tab != ALL and tab not in channels:
        tab = (reply or preselected(conversation, about)).channel
    channel = None if tab == ALL else tab
    # The tabs' counts; every channel interleaved shows no tabs (and need not count a long thread).
    counts = conversations.counts_by_channel(db.session, conversation) if channel else {}
    items, older = conversations.page(db.session, conversation, channel, from_id=from_id)
    source = (
        db.session.get(Message, opted_out.source_message_id)
        if opted_out and opted_out.source_message_id
        else None
    )
    left = whatsapp.time_left(conversation)
    known = reads.markers(db.session, current_user.id, conversation.id)
    if items:
        # What is on screen is read; the commit is the caller's (the page or the poll).
        newest = max(m.id for m in items)
        read_channels = channels if channel is None else [channel]
        known = reads.mark_read(db.session, current_user.id, conversation.id, read_channels, newest, known)
    return {
        **_identity(conversation, about),
        "tabs": [(c, CHANNEL_LABELS[c]) for c in channels],
        "tab": tab,
        "thread": items,
        "older": older,
        "refunded": credits.refunded_ids(db.session, [m.id for m in items]),
        "invitation_of": invitations.for_messages(db.session, [m.id for m in items]),
        "counts": counts,
        "unread": reads.unread_by_channel(
            db.session,
            current_user.id,
            conversation.id,
            known,
            max([conversation.last_message_id or 0, *(m.id for m in items)]),
        ),
        "version": version,
        "opted_out": opted_out,
        "opted_out_text": source.body if source else "STOP",
        "wa_left": left,
        "wa_left_text": whatsapp.describe(left) if left else "",
        "pending": any(m.status in PENDING for m in items),
        # After a send the thread shows the newest message even if the user had scrolled up.
        "follow_newest": follow_newest,
    }


def counter_context(
    conversation: Conversation,
    about: Subject,
    channel: str,
    body: str,
    whatsapp_template_id: int | None,
) -> dict[str, Any]:
    """The line under the text: what it costs, or why it cannot go, before the user presses Send."""
    org = about.organization
    wa_open = whatsapp.time_left(conversation) is not None
    template = None
    if channel == "whatsapp" and not wa_open and whatsapp_template_id is not None:
        template = whatsapp.approved_template(db.session, org.id, whatsapp_template_id)
    return {
        **_identity(conversation, about),
        "channel": channel,
        "preview": compose.preview(about, current_user, channel, body, template),
        "blocked": checks.recipient_refusal(db.session, about.contact, channel),
        "balance": credits.balance(db.session, org) if org.texts and channel != "email" else None,
        "wa_open": wa_open,
        "wa_template": template,
    }


def composer_context(
    conversation: Conversation,
    about: Subject,
    form: ComposeForm | None,
    channel: str | None,
    reply: ReplyChannel | None = None,
) -> dict[str, Any]:
    read_only = checks.not_ours(current_user, about)
    if read_only:
        return {**_identity(conversation, about), "read_only": read_only}
    allowed = checks.allowed_channels(current_user, about)
    form = form or ComposeForm()
    form.channel.choices = [SelectChoice(c, CHANNEL_LABELS[c]) for c in allowed]
    # Why, said under "Send as" while its channel is the one chosen (static/css/app.css hides it else).
    reply = reply or preselected(conversation, about)
    if form.channel.data not in allowed:
        # Start on the open tab's channel when the user may write on it, else on the reply channel.
        form.channel.data = channel if channel in allowed else reply.channel
    templates = compose.templates_for(db.session, current_user, allowed, about.audience)
    form.template_id.choices = [SelectChoice("", "No template")] + [
        SelectChoice(str(t.id), t.name) for t in templates
    ]
    org = about.organization
    wa_templates = (
        whatsapp.approved_templates(db.session, org.id, about.audience) if "whatsapp" in allowed else []
    )
    form.whatsapp_template_id.choices = [SelectChoice("", "Choose an approved template")] + [
        SelectChoice(str(t.id), f"{t.name} ({t.locale})") for t in wa_templates
    ]
    left = whatsapp.time_left(conversation)
    missing = checks.missing_right(current_user, about)
    context = {
        **_identity(conversation, about),
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
        "reply": reply,
    }
    counter = counter_context(
        conversation,
        about,
        form.channel.data or "email",
        form.body.data or "",
        form.whatsapp_template_id.data,
    )
    # Why the person cannot be reached on this channel is said once, by the counter under the text;
    # when it is why a send was refused, that line becomes the error instead of being repeated under
    # "Send as".
    blocked = counter["blocked"]
    context["refused_for_reach"] = bool(blocked) and blocked in form.channel.errors
    context["channel_errors"] = [e for e in form.channel.errors if e not in (missing, blocked)]
    context.update(counter)
    return context


def simulate_context(
    conversation: Conversation,
    about: Subject,
    channel: str | None,
    text: str = SIMULATED_REPLY,
    error: str | None = None,
) -> dict[str, Any]:
    """Simulate a reply: development only, on the organisation's texting channels."""
    texting = [c for c in about.organization.channels if c != "email"]
    on = current_app.config["MESSAGING_PROVIDER"] == "simulator" and bool(texting)
    return {
        **_identity(conversation, about),
        "simulator": on,
        "simulate_channels": [(c, CHANNEL_LABELS[c]) for c in texting],
        "simulate_channel": channel if channel in texting else (texting[0] if texting else None),
        "simulate_text": text,
        "simulate_error": error,
    }


def panel_context(
    conversation: Conversation,
    about: Subject,
    tab: str | None,
    form: ComposeForm | None = None,
    follow_newest: bool = False,
) -> dict[str, Any]:
    """Everything templates/conversations/_panel.html draws, for a page that includes it. Without a
    tab, the page opens on the reply channel's, and the composer on that channel."""
    reply = preselected(conversation, about)
    context = thread_context(conversation, about, tab, follow_newest, reply=reply)
    if context["tab"] == ALL:
        form = form or ComposeForm(formdata=None, view=ALL)
    context.update(
        composer_context(conversation, about, form, None if context["tab"] == ALL else context["tab"], reply)
    )
    context.update(simulate_context(conversation, about, context["tab"]))
    return context


def _identity(conversation: Conversation, about: Subject) -> dict[str, Any]:
    """What every partial of the panel knows: the conversation (its id is in theirs) and its subject."""
    return {
        "conversation": conversation,
        "about": about,
        "contact": about.contact,
        "page_url": lambda tab: page_url(conversation, about, tab),
    }


@bp.get("/conversations/<id:conversation_id>/thread")
@login_required
def thread(conversation_id: int) -> Response:
    conversation, about = _conversation(conversation_id)
    since = request.args.get("since")
    opted_out = _opt_out(about)
    # The poll: the conversation (read by key) and one indexed query answer "nothing new" without
    # rendering anything.
    if since is not None and wants_fragment() and thread_version(conversation, opted_out) == since:
        return Response(status=204)
    context = thread_context(
        conversation,
        about,
        request.args.get("tab"),
        from_id=ids.parse(request.args.get("from")),
        opted_out=opted_out,
    )
    if not wants_fragment():
        db.session.commit()
        return redirect(page_url(conversation, about, context["tab"]))
    # Render before the commit (which would expire every loaded message and reload each one).
    response = make_response(render_template("conversations/_thread_update.html", **context))
    db.session.commit()
    response.vary.add("HX-Request")
    response.headers["HX-Trigger"] = THREAD_REFRESHED
    return response


@bp.get("/conversations/<id:conversation_id>")
@login_required
def panel(conversation_id: int) -> Response:
    """The whole panel (thread, Simulate a reply, composer), for a page that loads it into a region:
    the Inbox's thread pane shows every channel interleaved (tab "all")."""
    conversation, about = _conversation(conversation_id)
    tab = request.args.get("tab") or ALL
    if not wants_fragment():
        return redirect(page_url(conversation, about, None if tab == ALL else tab))
    context = panel_context(conversation, about, tab)
    response = make_response(render_template("conversations/_panel.html", **context))
    db.session.commit()  # the read markers of what is on screen
    response.vary.add("HX-Request")
    return response


def pane_html(conversation: Conversation, about: Subject) -> Markup:
    """The panel as the Inbox's pane shows it (every channel interleaved), rendered on its own: the pane's
    page has a filter form and addresses of its own, which must not mix with the panel's. Opening it
    marks what it shows read (the caller commits)."""
    return Markup(render_template("conversations/_panel.html", **panel_context(conversation, about, ALL)))


@bp.post("/conversations/<id:conversation_id>/unread")
@login_required
def mark_unread(conversation_id: int) -> Response:
    """ "Mark unread": the conversation counts as unread for this user until they open it again."""
    conversation, _ = _conversation(conversation_id)
    reads.mark_unread(db.session, current_user.id, conversation.id)
    db.session.commit()
    if not wants_fragment():
        return redirect(url_for("inbox.index"), 303)
    return make_response(render_template("conversations/_marked_unread.html", conversation=conversation))


@bp.get("/conversations/<id:conversation_id>/older")
@login_required
def older(conversation_id: int) -> Response:
    """The page of messages before `before`, as the reader scrolls up (reads nothing as read)."""
    conversation, about = _conversation(conversation_id)
    before = ids.parse(request.args.get("before"))
    tab = request.args.get("tab") or ALL
    channel = None if tab == ALL or tab not in CHANNEL_LABELS else tab
    items, older = (
        conversations.page(db.session, conversation, channel, before_id=before) if before else ([], False)
    )
    context = {
        **_identity(conversation, about),
        "tab": tab if channel or tab == ALL else ALL,
        "thread": items,
        "older": older,
        "refunded": credits.refunded_ids(db.session, [m.id for m in items]),
        "invitation_of": invitations.for_messages(db.session, [m.id for m in items]),
    }
    response = make_response(render_template("conversations/_messages.html", **context))
    response.vary.add("HX-Request")
    return response


@bp.post("/conversations/<id:conversation_id>/preview")
@login_required
def preview(conversation_id: int) -> str:
    conversation, about = _conversation(conversation_id)
    channel = request.form.get("channel", "email")
    if channel not in CHANNEL_LABELS:
        channel = "email"
    body = request.form.get("body", "")[:60_000]
    template_id = ids.parse(request.form.get("whatsapp_template_id"))
    context = counter_context(conversation, about, channel, body, template_id)
    return render_template("conversations/_counter.html", **context)


@bp.post("/conversations/<id:conversation_id>/messages")
@login_required
def send(conversation_id: int) -> Response:
    conversation, about = _conversation(conversation_id)
    form = ComposeForm()
    channel = form.channel.data or ""
    if form.validate_on_submit():
        try:
            template_id = form.whatsapp_template_id.data
            message = compose.compose(
                db.session,
                current_user,
                about,
                channel,
                form.body.data or "",
                subject=form.subject.data if channel == "email" else None,
                whatsapp_template_id=template_id if channel == "whatsapp" else None,
            )
        except checks.SendRefused as refused:
            db.session.rollback()
            form_errors.put(form, refused.message, refused.field)
        else:
            db.session.commit()
            dispatch.enqueue(message.id)
            if not wants_fragment():
                flash(f"{CHANNEL_LABELS[channel]} message queued.", "success")
                return redirect(page_url(conversation, about, channel), 303)
            view = ALL if form.view.data == ALL else channel
            fresh = ComposeForm(formdata=None, channel=channel, view=form.view.data)
            context = panel_context(conversation, about, view, fresh, follow_newest=True)
            response = make_response(render_template("conversations/_sent.html", **context))
            db.session.commit()  # the read marker of the thread just rendered
            # The thread came with this answer; the event is for other regions, after the swap.
            response.headers["HX-Trigger-After-Settle"] = MESSAGES_CHANGED
            if view != ALL:  # the tab shown is in the page's address; the Inbox keeps its own
                response.headers["HX-Push-Url"] = page_url(conversation, about, context["tab"])
            return response
    # Refused or invalid: the composer again, with the text as typed and the reason beside the field.
    if wants_fragment():
        context = composer_context(conversation, about, form, channel)
        return make_response(render_template("conversations/_composer.html", **context), 422)
    # Without htmx: the whole page again, the text as typed and the reason beside its field.
    if about.application is not None:
        from webapp.web.jobs.routes import application_page

        return application_page(about.application, channel, form, status=422)
    from webapp.web.crm.routes import membership_page

    assert about.membership is not None
    return membership_page(about.membership, channel, form, status=422)


@bp.post("/conversations/<id:conversation_id>/simulate-reply")
@login_required
def simulate_reply(conversation_id: int) -> Response:
    conversation, about = _conversation(conversation_id)
    if current_app.config["MESSAGING_PROVIDER"] != "simulator":
        abort(404)
    channel = request.form.get("channel", "")
    text = (request.form.get("text") or SIMULATED_REPLY)[:500]
    error = _simulate(conversation, about, channel, text)
    if not wants_fragment():
        if error:
            flash(error, "error")
        return redirect(page_url(conversation, about, channel if channel in CHANNEL_LABELS else "sms"), 303)
    # The form answers for itself, the error beside it; the thread refreshes itself on the event.
    context = simulate_context(conversation, about, channel, text if error else SIMULATED_REPLY, error)
    body = render_template("conversations/_simulate.html", **context)
    response = make_response(body, 422 if error else 200)
    if not error:
        response.headers["HX-Trigger-After-Settle"] = MESSAGES_CHANGED
    return response


def _simulate(conversation: Conversation, about: Subject, channel: str, text: str) -> str | None:
    """Post the contact's reply to our own webhook; the reason it could not, or None."""
    if channel not in [c for c in about.organization.channels if c != "email"]:
        return "Choose SMS or WhatsApp: replies can be simulated on those."
    db.session.rollback()  # the webhook writes in a session of its own
    try:
        status = simulate.reply(current_app._get_current_object(), about, conversation, channel, text)
    except simulate.CannotSimulate as exc:
        return str(exc)
    finally:
        db.session.expire_all()
    return None if status == 200 else f"The inbound webhook answered {status}."
