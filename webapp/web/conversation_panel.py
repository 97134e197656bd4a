"""The conversation panel: a conversation's thread per channel, Simulate a reply and the composer, as
every page that shows a conversation includes it (templates/conversation_panel/_panel.html).

Who includes it: the application page (webapp.web.jobs), the prospect page (webapp.web.crm), the
Inbox's thread pane (webapp.web.inbox, through `pane_html`) and the panel's own routes
(webapp.web.conversations: its polls, tabs, sends and simulated replies). None of them imports
another: what they share is here, and the pages that show a conversation register themselves with
`page_of`, so that the panel's routes can draw them again without importing their area.

A conversation is about a subject (an application or a community membership); the partials' ids carry
the conversation's id, so that two panels can share a page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, render_template, url_for
from flask_login import current_user
from markupsafe import Markup
from werkzeug.wrappers import Response
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length

from webapp.billing import credits
from webapp.extensions import db
from webapp.interviews import invitations
from webapp.messaging import assignment, checks, conversations, notes, optouts, reads, reply_channel
from webapp.messaging.reply_channel import ReplyChannel
from webapp.messaging.status import PENDING
from webapp.messaging.subjects import Kind, Subject
from webapp.models import CHANNEL_LABELS, Conversation, ConversationEvent, Message, OptOut
from webapp.web import composer, scheduled_edit
from webapp.web.composer import ComposeForm
from webapp.web.forms import FlaskForm

SIMULATED_REPLY = "Yes, that works for me!"
# The pseudo-tab of every channel interleaved in time.
ALL = "all"
# Other regions of the page (the thread) refresh themselves on this event (HX-Trigger).
MESSAGES_CHANGED = "messages-changed"
# Sent with a thread that changed, for the composer's counter (opt-out, WhatsApp window) to follow.
THREAD_REFRESHED = "thread-refreshed"

# The whole page that shows a conversation about a subject (its application or its membership, the tab,
# the composer's form, the status), by the subject's kind.
PageOf = Callable[[Any, str | None, ComposeForm | None, int], Response]
_pages: dict[str, PageOf] = {}


def page_of(kind: Kind) -> Callable[[PageOf], PageOf]:
    """Register the page that shows conversations about this kind of subject (a decorator), for
    `whole_page`: the area that owns the page registers it when it is imported."""

    def register(page: PageOf) -> PageOf:
        _pages[kind] = page
        return page

    return register


def whole_page(about: Subject, tab: str | None, form: ComposeForm | None, status: int = 200) -> Response:
    """The subject's page again, around this composer form: what a refused send answers without htmx."""
    return _pages[about.kind](about.application or about.membership, tab, form, status)


def page_url(conversation: Conversation, about: Subject, tab: str | None) -> str:
    """Where the conversation lives as a page: its application's page, or its prospect-community page
    (on the reply channel's tab when `tab` is None)."""
    if about.application is not None:
        return url_for("jobs.application", application_id=about.id, tab=tab)
    return url_for("crm.membership", membership_id=about.id, tab=tab)


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
        return ReplyChannel(reply_channel.first_texting(about.organization.channels), "")
    return chosen


def opt_out(about: Subject) -> OptOut | None:
    mobile = about.contact.mobile
    return optouts.active(db.session, about.organization.id, mobile) if mobile else None


def thread_version(conversation: Conversation | None, opted_out: OptOut | None) -> str:
    """What the open page shows changes with the messages, the candidate's opt-out and the WhatsApp
    window. All three are taken from the objects the page is rendered from, read before its messages
    (the conversation by key at the request's start): if a webhook committed after they were read, the
    next poll's version differs and brings the change."""
    messages = reads.version_of(conversation)
    window = conversation.whatsapp_window_ends_at if conversation else None
    stamp = int(window.timestamp()) if window else 0
    return f"{messages}.{opted_out.id if opted_out else 0}.{stamp}"


def identity(conversation: Conversation, about: Subject) -> dict[str, Any]:
    """What every partial of the panel knows: the conversation (its id is in theirs) and its subject."""
    return {
        "conversation": conversation,
        "about": about,
        "contact": about.contact,
        "page_url": lambda tab: page_url(conversation, about, tab),
    }


def messages_context(
    conversation: Conversation,
    about: Subject,
    tab: str,
    items: Sequence[Message],
    older: bool,
    until: datetime | None = None,
    events: bool = True,
) -> dict[str, Any]:
    """A page of messages (templates/conversation_panel/_messages.html): what the thread shows, and what
    scrolling up loads; with the team's notes and assignment lines of the time the page covers (on
    every tab), in time among them. `until`: the time of the first message after the page (None: the
    newest page, which shows every event since its first message)."""
    shown = [m.id for m in items]
    found = (
        notes.for_page(db.session, conversation, items[0].created_at if items and older else None, until)
        if events
        else []
    )
    return {
        **identity(conversation, about),
        "tab": tab,
        "thread": items,
        "entries": interleave(items, found),
        "older": older,
        "refunded": credits.refunded_ids(db.session, shown),
        "invitation_of": invitations.for_messages(db.session, shown),
        # Each message that waits for its time: when, on both clocks, and its Edit form.
        **scheduled_edit.context(about, items, lambda: composer_setup(conversation, about)),
    }


def older_context(conversation: Conversation, about: Subject, tab: str, before: int | None) -> dict[str, Any]:
    """The page of messages before `before` on this tab (or every channel's), as the reader scrolls up;
    it reads nothing as read."""
    channel = None if tab == ALL or tab not in CHANNEL_LABELS else tab
    items, older = (
        conversations.page(db.session, conversation, channel, before_id=before) if before else ([], False)
    )
    # The page ends where the one shown below it begins: its events are the ones before that message.
    until = (
        db.session.scalar(
            sa.select(Message.created_at).where(
                Message.id == before, Message.conversation_id == conversation.id
            )
        )
        if before and items
        else None
    )
    return messages_context(
        conversation,
        about,
        tab if channel or tab == ALL else ALL,
        items,
        older,
        until,
        events=until is not None,
    )


def interleave(
    items: Sequence[Message], events: Sequence[ConversationEvent]
) -> list[tuple[str, Message | ConversationEvent]]:
    """Messages (in their order) and events (in time order) as one thread: each event before the first
    message written after it — except the messages that end the thread waiting for their time
    (conversations.page puts them last): every event comes before those. Each entry is ("message", m)
    or ("event", e)."""
    entries: list[tuple[str, Message | ConversationEvent]] = []
    waiting = len(items)
    while waiting and items[waiting - 1].status == "scheduled":
        waiting -= 1
    at = 0
    for i, message in enumerate(items):
        while at < len(events) and (i >= waiting or events[at].created_at < message.created_at):
            entries.append(("event", events[at]))
            at += 1
        entries.append(("message", message))
    entries.extend(("event", e) for e in events[at:])
    return entries


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
        opted_out = opt_out(about)
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
    known = reads.markers(db.session, current_user.id, conversation.id)
    if items:
        # What is on screen is read; the commit is the caller's (the page or the poll).
        newest = max(m.id for m in items)
        read_channels = channels if channel is None else [channel]
        known = reads.mark_read(db.session, current_user.id, conversation.id, read_channels, newest, known)
    else:
        # No message to read, but a mention in a note made it unread for this user: now seen.
        reads.recount(db.session, current_user.id, conversation.id)
    return {
        **messages_context(conversation, about, tab, items, older),
        "tabs": [(c, CHANNEL_LABELS[c]) for c in channels],
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
        **composer.window_context(conversation),
        "pending": any(m.status in PENDING for m in items),
        # After a send the thread shows the newest message even if the user had scrolled up.
        "follow_newest": follow_newest,
    }


def composer_context(
    conversation: Conversation,
    about: Subject,
    form: ComposeForm | None,
    channel: str | None,
    reply: ReplyChannel | None = None,
) -> dict[str, Any]:
    """The panel's composer (templates/conversation_panel/_composer.html): the composer written in this
    conversation, starting on the open tab's channel when the user may write on it, else on the reply
    channel; or, for someone who may only read, why they cannot write."""
    read_only = checks.not_ours(current_user, about)
    if read_only:
        return {**identity(conversation, about), "read_only": read_only}
    # Why, said under "Send as" while its channel is the one chosen (static/css/app.css hides it else).
    reply = reply or preselected(conversation, about)
    setup = composer_setup(conversation, about, reply)
    start = channel if channel in setup.allowed else reply.channel
    return {**identity(conversation, about), **composer.context(form or ComposeForm(), setup, start)}


def composer_setup(
    conversation: Conversation, about: Subject, reply: ReplyChannel | None = None
) -> composer.Setup:
    """The composer written in this conversation: it posts to the conversation's routes and swaps
    itself; its ids carry the conversation's id."""
    return composer.Setup(
        about=about,
        allowed=checks.allowed_channels(current_user, about),
        ids=composer.Ids.numbered(conversation.id),
        action=url_for("conversations.send", conversation_id=conversation.id),
        preview_url=url_for("conversations.preview", conversation_id=conversation.id),
        conversation=conversation,
        reply=reply,
    )


def simulate_channels(about: Subject) -> list[str]:
    """The channels a reply can be simulated on: the organisation's texting ones."""
    return [c for c in about.organization.channels if c != "email"]


def simulate_context(
    conversation: Conversation,
    about: Subject,
    channel: str | None,
    text: str = SIMULATED_REPLY,
    error: str | None = None,
) -> dict[str, Any]:
    """Simulate a reply: development only, on the organisation's texting channels."""
    texting = simulate_channels(about)
    on = current_app.config["MESSAGING_PROVIDER"] == "simulator" and bool(texting)
    return {
        **identity(conversation, about),
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
    """Everything templates/conversation_panel/_panel.html draws, for a page that includes it. Without a
    tab, the page opens on the reply channel's, and the composer on that channel."""
    reply = preselected(conversation, about)
    context = thread_context(conversation, about, tab, follow_newest, reply=reply)
    if context["tab"] == ALL:
        form = form or ComposeForm(formdata=None, view=ALL)
    context.update(
        composer_context(conversation, about, form, None if context["tab"] == ALL else context["tab"], reply)
    )
    context.update(simulate_context(conversation, about, context["tab"]))
    context.update(team_context(conversation, about))
    return context


def subject_panel(about: Subject, tab: str | None, form: ComposeForm | None = None) -> dict[str, Any]:
    """The panel of an application's or a prospect's page: its conversation, started empty on the first
    view so that the panel (whose ids carry the conversation's id) has one."""
    conversation = conversations.for_subject(db.session, about, create=True)
    assert conversation is not None
    return panel_context(conversation, about, tab, form)


def pane_html(conversation: Conversation, about: Subject) -> Markup:
    """The panel as the Inbox's pane shows it (every channel interleaved), rendered on its own: the pane's
    page has a filter form and addresses of its own, which must not mix with the panel's. Opening it
    marks what it shows read (the caller commits)."""
    return Markup(
        render_template("conversation_panel/_panel.html", **panel_context(conversation, about, ALL))
    )


# --- The team's part: who the conversation is assigned to, and internal notes -------------------------


class AssignForm(FlaskForm):
    """Assign the conversation: a person's id ("": nobody), and the assignee the page showed (`expected`),
    which must still be the one (two people assigning at once: one wins, the other is told)."""

    assignee = StringField("Assigned to")
    expected = HiddenField()


class NoteForm(FlaskForm):
    note = TextAreaField("Internal note", validators=[Length(max=notes.MAX_NOTE_CHARACTERS * 2)])


def team_context(
    conversation: Conversation,
    about: Subject,
    assign_form: AssignForm | None = None,
    note_form: NoteForm | None = None,
    assigned: str | None = None,
) -> dict[str, Any]:
    """The assignment form and the note form (templates/conversation_panel/_assign.html, _note.html), or,
    for someone who may only read, who it is assigned to. `assigned`: what a change just did, said
    beside the form."""
    may_act = assignment.writer_refusal(db.session, current_user, about) is None
    # A refused form drawn in its whole page (no htmx): the forms as typed, from the route.
    refused = g.get("team_forms", {})
    assign_form = assign_form or refused.get("assign_form")
    note_form = note_form or refused.get("note_form")
    return {
        **identity(conversation, about),
        "may_act": may_act,
        "assignable": assignment.assignable(db.session, conversation) if may_act else [],
        "mentionable": notes.mentionable(db.session, conversation) if may_act else [],
        "assign_form": assign_form or AssignForm(formdata=None),
        "note_form": note_form or NoteForm(formdata=None),
        "assigned": assigned,
    }
