"""The conversation panel's own routes, keyed by the conversation: its thread's polls and tabs, the whole
panel for a region that loads it, earlier messages as the reader scrolls up, the composer's counter and
sends, Mark unread, and Simulate a reply. What they draw is the panel's (webapp.web.conversation_panel)
and the composer's (webapp.web.composer), which the pages showing a conversation include too."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import Length, Optional

from webapp import ids, zones
from webapp.accounts import access
from webapp.extensions import db
from webapp.messaging import assignment, notes, reads, scheduled, simulate, subjects, timing
from webapp.messaging.subjects import Subject
from webapp.models import CHANNEL_LABELS, Conversation, Message, OptOut, User, utcnow
from webapp.web import composer, conversation_panel, refusals
from webapp.web.composer import ComposeForm
from webapp.web.conversation_panel import (
    ALL,
    MESSAGES_CHANGED,
    SIMULATED_REPLY,
    THREAD_REFRESHED,
    AssignForm,
    NoteForm,
    page_url,
)
from webapp.web.forms import FlaskForm
from webapp.web.pages import wants_fragment

bp = Blueprint("conversations", __name__, template_folder="templates")


def _conversation(conversation_id: int) -> tuple[Conversation, Subject]:
    conversation = access.get_conversation(db.session, current_user, conversation_id) or abort(404)
    return conversation, subjects.of_conversation(conversation)


def _fragment(
    template: str, context: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A part of the panel for htmx to swap. Rendered before the commit (of the read markers of what it
    shows), which would expire every loaded message and reload each one."""
    response = make_response(render_template(template, **context), status, headers or {})
    db.session.commit()
    response.vary.add("HX-Request")
    return response


@bp.get("/conversations/<id:conversation_id>/thread")
@login_required
def thread(conversation_id: int) -> Response:
    conversation, about = _conversation(conversation_id)
    opted_out = conversation_panel.opt_out(about)
    if _unchanged(conversation, opted_out):
        return Response(status=204)
    context = _thread_as_asked(conversation, about, opted_out)
    if not wants_fragment():
        db.session.commit()
        return redirect(page_url(conversation, about, context["tab"]))
    return _fragment("conversations/_thread_update.html", context, headers={"HX-Trigger": THREAD_REFRESHED})


def _thread_as_asked(conversation: Conversation, about: Subject, opted_out: OptOut | None) -> dict[str, Any]:
    """The thread on the tab asked for, from the message the reader had scrolled up to (`from`)."""
    tab, from_id = request.args.get("tab"), ids.parse(request.args.get("from"))
    return conversation_panel.thread_context(conversation, about, tab, from_id=from_id, opted_out=opted_out)


def _unchanged(conversation: Conversation, opted_out: OptOut | None) -> bool:
    """The poll: the conversation (read by key) and one indexed query answer "nothing new" without
    rendering anything."""
    since = request.args.get("since")
    return (
        since is not None
        and wants_fragment()
        and conversation_panel.thread_version(conversation, opted_out) == since
    )


@bp.get("/conversations/<id:conversation_id>")
@login_required
def panel(conversation_id: int) -> Response:
    """The whole panel (thread, Simulate a reply, composer), for a page that loads it into a region:
    the Inbox's thread pane shows every channel interleaved (tab "all")."""
    conversation, about = _conversation(conversation_id)
    tab = request.args.get("tab") or ALL
    if not wants_fragment():
        return redirect(page_url(conversation, about, None if tab == ALL else tab))
    return _fragment(
        "conversation_panel/_panel.html", conversation_panel.panel_context(conversation, about, tab)
    )


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
    tab, before = request.args.get("tab") or ALL, ids.parse(request.args.get("before"))
    context = conversation_panel.older_context(conversation, about, tab, before)
    return _fragment("conversation_panel/_messages.html", context)


@bp.post("/conversations/<id:conversation_id>/preview")
@login_required
def preview(conversation_id: int) -> str:
    """The composer's counter, as the user types."""
    conversation, about = _conversation(conversation_id)
    setup = conversation_panel.composer_setup(conversation, about)
    return composer.counter_response(setup, request.form, CHANNEL_LABELS)


@bp.post("/conversations/<id:conversation_id>/messages")
@login_required
def send(conversation_id: int) -> Response:
    conversation, about = _conversation(conversation_id)
    form = ComposeForm()
    setup = conversation_panel.composer_setup(conversation, about)
    composer.send(form, setup, composer.write_to(about), lambda: _refused(conversation, about, form))
    if not wants_fragment():
        flash(f"{CHANNEL_LABELS[form.channel.data]} message queued.", "success")
        return redirect(page_url(conversation, about, form.channel.data), 303)
    return _sent(conversation, about, form)


def _sent(conversation: Conversation, about: Subject, form: ComposeForm) -> Response:
    """A fresh composer on the channel just used, and the thread with the message out of band."""
    channel = form.channel.data
    view = ALL if form.view.data == ALL else channel
    fresh = ComposeForm(formdata=None, channel=channel, view=form.view.data)
    context = conversation_panel.panel_context(conversation, about, view, fresh, follow_newest=True)
    # The thread came with this answer; the event is for other regions, after the swap.
    headers = {"HX-Trigger-After-Settle": MESSAGES_CHANGED}
    if view != ALL:  # the tab shown is in the page's address; the Inbox keeps its own
        headers["HX-Push-Url"] = page_url(conversation, about, context["tab"])
    return _fragment("conversations/_sent.html", context, headers=headers)


def _refused(conversation: Conversation, about: Subject, form: ComposeForm) -> Response:
    """Refused or invalid: the composer again, with the text as typed and the reason beside its field;
    without htmx, the whole page around it."""
    channel = form.channel.data or ""
    if not wants_fragment():
        return conversation_panel.whole_page(about, channel, form, status=422)
    context = conversation_panel.composer_context(conversation, about, form, channel)
    return _fragment("conversation_panel/_composer.html", context, 422)


class ScheduledForm(FlaskForm):
    """A scheduled message's Edit (a new time, a new text) or Cancel (neither field)."""

    send_at = StringField(validators=[Optional()])
    body = TextAreaField(validators=[Optional(), Length(max=60_000)])


@bp.post("/conversations/<id:conversation_id>/scheduled/<id:message_id>/cancel")
@login_required
def cancel_scheduled(conversation_id: int, message_id: int) -> Response:
    """Cancel a message scheduled for later; its credits come back."""
    conversation, about = _conversation(conversation_id)
    message = _scheduled(conversation, message_id)
    form = ScheduledForm()
    refusals.submit(
        form,
        lambda: scheduled.cancel(db.session, current_user, message),
        lambda: _not_changed(conversation, about, message, form),
    )
    return _changed(conversation, about)


@bp.post("/conversations/<id:conversation_id>/scheduled/<id:message_id>")
@login_required
def edit_scheduled(conversation_id: int, message_id: int) -> Response:
    """A scheduled message's new time and, unless it is an approved WhatsApp template, its new text."""
    conversation, about = _conversation(conversation_id)
    message = _scheduled(conversation, message_id)
    form = ScheduledForm()
    zone = zones.name_of_reader(current_user)

    def change() -> Message:
        send_at = (form.send_at.data or "")[:40].strip()
        body = form.body.data
        return scheduled.reschedule(
            db.session,
            current_user,
            message,
            send_at=timing.local_time(send_at, zone) if send_at else None,
            body=body if body is not None and body != message.body else None,
            reader_zone=zone,
        )

    refusals.submit(form, change, lambda: _not_changed(conversation, about, message, form))
    return _changed(conversation, about)


@bp.post("/conversations/<id:conversation_id>/scheduled/<id:message_id>/when")
@login_required
def scheduled_when(conversation_id: int, message_id: int) -> str:
    """What the Edit form's Save would do with the time picked, as it is picked: on both clocks, or why
    not. Changes nothing."""
    conversation, about = _conversation(conversation_id)
    message = _scheduled(conversation, message_id)
    typed = (request.form.get("send_at") or "")[:40]
    if message.status != "scheduled" or message.send_at is None:
        return render_template(
            "conversation_panel/_scheduled_when.html", message_id=message.id, said="", refused=False
        )
    text, refused = scheduled.time_said(
        db.session, about, message, typed, zones.name_of_reader(current_user), utcnow()
    )
    return render_template(
        "conversation_panel/_scheduled_when.html", message_id=message.id, said=text, refused=refused
    )


def _scheduled(conversation: Conversation, message_id: int) -> Message:
    message = scheduled.find(db.session, current_user, message_id)
    if message is None or message.conversation_id != conversation.id:
        abort(404)
    return message


def _changed(conversation: Conversation, about: Subject) -> Response:
    """Done and committed: the thread asks again, and shows what changed."""
    if not wants_fragment():
        return redirect(page_url(conversation, about, None), 303)
    return Response(status=204, headers={"HX-Trigger": MESSAGES_CHANGED})


def _not_changed(conversation: Conversation, about: Subject, message: Message, form: ScheduledForm) -> str:
    """Why not, under the message (nothing changed); without htmx, with a way back to the conversation."""
    return render_template(
        "conversation_panel/_scheduled_error.html",
        message_id=message.id,
        reason=refusals.first_error(form),
        back=None if wants_fragment() else page_url(conversation, about, None),
    )


@bp.post("/conversations/<id:conversation_id>/simulate-reply")
@login_required
def simulate_reply(conversation_id: int) -> Response:
    conversation, about = _conversation(conversation_id)
    if current_app.config["MESSAGING_PROVIDER"] != "simulator":
        abort(404)
    channel, text = request.form.get("channel", ""), (request.form.get("text") or SIMULATED_REPLY)[:500]
    error = _simulate(conversation, about, channel, text)
    return _simulated(conversation, about, channel, text, error)


def _simulate(conversation: Conversation, about: Subject, channel: str, text: str) -> str | None:
    """Post the contact's reply to our own webhook; the reason it could not, or None."""
    if channel not in conversation_panel.simulate_channels(about):
        return "Choose SMS or WhatsApp: replies can be simulated on those."
    db.session.rollback()  # the webhook writes in a session of its own
    try:
        status = simulate.reply(current_app._get_current_object(), about, conversation, channel, text)
    except simulate.CannotSimulate as exc:
        return str(exc)
    finally:
        db.session.expire_all()
    return None if status == 200 else f"The inbound webhook answered {status}."


def _simulated(
    conversation: Conversation, about: Subject, channel: str, text: str, error: str | None
) -> Response:
    """The form answers for itself, the error beside it; the thread refreshes itself on the event. Without
    htmx: the page again, on the channel's tab, the error said at its top."""
    if not wants_fragment():
        if error:
            flash(error, "error")
        return redirect(page_url(conversation, about, channel if channel in CHANNEL_LABELS else "sms"), 303)
    context = conversation_panel.simulate_context(
        conversation, about, channel, text if error else SIMULATED_REPLY, error
    )
    headers = {"HX-Trigger-After-Settle": MESSAGES_CHANGED} if not error else {}
    return _fragment("conversation_panel/_simulate.html", context, 422 if error else 200, headers)


# --- Assignment and internal notes (issue 21) ----------------------------------------------------------


@bp.post("/conversations/<id:conversation_id>/assignee")
@login_required
def assign(conversation_id: int) -> Response:
    """Assign the conversation to one of its team, or to nobody. The form answers for itself (what was
    done said beside it); the thread and the Inbox's list follow on the event, with the change's line."""
    conversation, about = _conversation(conversation_id)
    form = AssignForm()

    def change() -> object:
        chosen = ids.parse(form.assignee.data) if form.assignee.data else None
        if form.assignee.data and chosen is None:
            raise assignment.AssignRefused(f"Choose someone of the {about.team}.", "assignee")
        person = db.session.get(User, chosen) if chosen is not None else None
        if chosen is not None and person is None:
            raise assignment.AssignRefused(f"Choose someone of the {about.team}.", "assignee")
        expected = ids.parse(form.expected.data) if form.expected.data else None
        return assignment.assign(db.session, current_user, conversation, person, utcnow(), expected=expected)

    refusals.submit(
        form,
        change,
        lambda: _team_refused(conversation, about, "conversation_panel/_assign.html", assign_form=form),
    )
    if not wants_fragment():
        return redirect(page_url(conversation, about, None), 303)
    name = conversation.assignee.name if conversation.assignee else None
    said = f"Assigned to {name}." if name else "Not assigned to anyone."
    context = conversation_panel.team_context(conversation, about, assigned=said)
    return _fragment("conversation_panel/_assign.html", context, headers={"HX-Trigger": MESSAGES_CHANGED})


@bp.post("/conversations/<id:conversation_id>/notes")
@login_required
def add_note(conversation_id: int) -> Response:
    """An internal note (never sent), with its @mentions. A fresh form answers; the thread shows the note
    on the event. Refused: the form again, the text as typed and the reason under it."""
    conversation, about = _conversation(conversation_id)
    form = NoteForm()
    refusals.submit(
        form,
        lambda: notes.add_note(db.session, current_user, conversation, form.note.data or "", utcnow()),
        lambda: _team_refused(conversation, about, "conversation_panel/_note.html", note_form=form),
    )
    if not wants_fragment():
        flash("Note added.", "success")
        return redirect(page_url(conversation, about, None), 303)
    context = conversation_panel.team_context(conversation, about)
    return _fragment("conversation_panel/_note.html", context, headers={"HX-Trigger": MESSAGES_CHANGED})


def _team_refused(conversation: Conversation, about: Subject, template: str, **forms: Any) -> Response:
    """The form again with what was typed and the reason beside its field; without htmx, the whole page
    around it (conversation_panel.team_context takes the forms from `g`)."""
    if not wants_fragment():
        g.team_forms = forms
        return conversation_panel.whole_page(about, None, None, status=422)
    return make_response(
        render_template(template, **conversation_panel.team_context(conversation, about, **forms))
    )
