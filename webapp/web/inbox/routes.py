"""The inbox's pages: the list (filters, search, pages as you scroll), the poll, the selected pane.

Routes parse the query string and call webapp.inbox.queries; nothing here knows SQL.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from webapp import ids, zones
from webapp.accounts import access
from webapp.extensions import db
from webapp.inbox import queries
from webapp.messaging import checks, subjects
from webapp.web.conversation_panel import pane_html
from webapp.web.inbox.forms import InboxFilterForm
from webapp.web.pages import render, wants_fragment

bp = Blueprint("inbox", __name__, template_folder="templates")


def _filters(shown: bool = True) -> tuple[InboxFilterForm | None, queries.Filters | None]:
    """The form from the query string, and its filters (None when it does not validate). A form that is
    not shown (shown=False: the poll, the next page) reads the user's jobs only to check a job filter,
    and is not built at all when no filter is set (most polls: the form costs more than their rows)."""
    if not shown and not any(request.args.get(name) for name in queries.Filters.names()):
        return None, queries.Filters()
    form = InboxFilterForm(request.args)
    org = current_user.organization
    wanted = shown or bool(request.args.get("job"))
    jobs = queries.job_choices(db.session, current_user) if wanted else []
    form.set_choices(org.channels if org else ["email"], jobs)
    if not form.validate():
        return form, None
    job = ids.parse(form.job.data) if form.job.data else None
    return form, queries.Filters(
        q=form.q.data or "",
        channel=form.channel.data or "",
        unread=bool(form.unread.data),
        job=job,
        reply=bool(form.reply.data),
        mine=bool(form.mine.data),
        unassigned=bool(form.unassigned.data),
        who=form.who.data or "" if access.entitled(current_user, "crm") else "",
    )


def _urls(filters: queries.Filters) -> dict[str, str]:
    """The addresses rows and polls are built from, made once per response: url_for for every row of a
    page would cost more than the rest of the row."""
    params = filters.params()
    page = url_for("inbox.index", **params)
    return {
        "page_url": page,
        "row_prefix": page + ("&" if "?" in page else "?") + "c=",
        "pane_prefix": url_for("inbox.conversation", conversation_id=1)[:-1],
        "application_prefix": url_for("jobs.application", application_id=1)[:-1],
        "membership_prefix": url_for("crm.membership", membership_id=1)[:-1],
    }


def _texting() -> bool:
    """Email-only customers (ATS only) see no channel filter and no channel marks."""
    org = current_user.organization
    return len(org.channels if org else ["email"]) > 1


def _context(
    filters: queries.Filters | None,
    scope: queries.Scope,
    marker: queries.Marker,
    count_unread: bool = True,
    **more: Any,
) -> dict[str, Any]:
    """What the list and its poll show around the rows. count_unread=False (a poll's answer when none of
    the user's own states moved, so neither did their unread total): no title, and the page keeps its
    own (inbox/_poll.html)."""
    unread = queries.unread_total(db.session, scope) if count_unread else 0
    label = queries.unread_label(unread)
    # A page that starts further down the list (after) keeps that start in its poll.
    start = {"after": more["after"].encode()} if more.get("after") else {}
    context = {
        "filters": filters or queries.Filters(),
        "valid": filters is not None,
        "marker": marker,
        "poll_url": url_for(
            "inbox.poll", since=marker.encode(), **start, **(filters or queries.Filters()).params()
        ),
        "unread_total": unread,
        "inbox_title": (f"Inbox ({label})" if unread else "Inbox") if count_unread else None,
        "texting": _texting(),
        "crm": access.entitled(current_user, "crm"),
        "zone": zones.of_reader(current_user),
        **_urls(filters or queries.Filters()),
        **more,
    }
    return context


@bp.get("/inbox")
@login_required
def index() -> Response:
    form, filters = _filters()
    context = _page_context(form, filters)
    response = render("inbox/index.html", "inbox/_list.html", status=200 if filters else 400, **context)
    db.session.commit()  # the read markers of the open conversation
    return response


def _page_context(form: InboxFilterForm, filters: queries.Filters | None) -> dict[str, Any]:
    """The list's first page (or the page after `after`), the open conversation and the poll."""
    scope = queries.scope_for(db.session, current_user)
    # The marker before the rows: what is shown is never older than what the poll compares with.
    marker = queries.marker(db.session, current_user)
    chosen = _chosen(scope)
    after = queries.Cursor.decode(request.args.get("after"))
    listing = queries.page(db.session, scope, filters, after) if filters else queries.Page([], None)
    more = {"form": form, "listing": listing, "after": after, "filters_out_of_band": wants_fragment()}
    return _context(filters, scope, marker, **more, **chosen)


def _chosen(scope: queries.Scope) -> dict[str, Any]:
    """The conversation the address names (c=): on a whole page opened first, so that the list below
    shows it read; when the filters changed (a fragment), only its row, marked in the list (its pane
    stays)."""
    chosen = request.args.get("c")
    number = ids.parse(chosen) if chosen else None
    if chosen and number is None:
        abort(404)
    if number is None:
        return {"selected": None, "pane": None, "ours": False}
    if not wants_fragment():
        return _open(scope, number)
    found = queries.rows_by_id(db.session, scope, [number])
    return {"selected": found[0] if found else None, "pane": None, "ours": False}


def _open(scope: queries.Scope, conversation_id: int) -> dict[str, Any]:
    """The list's row of the conversation ("selected"), its pane, and whether it is the user's
    organisation's ("ours": a sub-organisation's, which its parent's administrators read, has no page of
    theirs to link to); 404 if the user may not see it."""
    conversation = access.get_conversation(db.session, current_user, conversation_id) or abort(404)
    about = subjects.of_conversation(conversation)
    pane = pane_html(conversation, about)
    db.session.flush()
    found = queries.rows_by_id(db.session, scope, [conversation_id])
    if not found:
        abort(404)
    return {"selected": found[0], "pane": pane, "ours": checks.not_ours(current_user, about) is None}


@bp.get("/inbox/more")
@login_required
def more() -> str:
    """The next page of the list (the sentinel at its end asks when it scrolls into view)."""
    _, filters = _filters(shown=False)
    after = queries.Cursor.decode(request.args.get("after"))
    if filters is None or after is None:
        abort(400)
    listing = queries.page(db.session, queries.scope_for(db.session, current_user), filters, after)
    return render_template("inbox/_rows.html", listing=listing, **_rows_context(filters))


def _rows_context(filters: queries.Filters) -> dict[str, Any]:
    """What rows alone need, without the list's counts around them."""
    zone = zones.of_reader(current_user)
    return {"filters": filters, "selected": None, "texting": _texting(), "zone": zone, **_urls(filters)}


@bp.get("/inbox/changes")
@login_required
def poll() -> Response:
    """The one poll of an open inbox. Unchanged: 204 from one statement (queries.marker); it never marks
    anything read. Changed: swaps for htmx (inbox/_changes.html) that take the changed rows out and put
    them in place, and the next poll; or, after too many changes, the list again. The page says how far
    its list is loaded (after, until) and which conversation is open (c): that one's thread is told.
    Changed only where the list shows nothing (a status report) and not in the open conversation: 204
    too, and the page keeps its marker (what it has not seen is still after it)."""
    since = queries.Marker.decode(request.args.get("since"))
    marker = queries.marker(db.session, current_user)
    # The top bar's stamp is the marker's own (webapp.web.notifications): not read a second time.
    g.waiting_stamp = str(marker.stamp)
    if since == marker:
        return Response(status=204)
    return _changes(since, marker)


def _changes(since: queries.Marker | None, marker: queries.Marker) -> Response:
    _, filters = _filters(shown=False)
    if filters is None:
        return Response(status=204)
    scope = queries.scope_for(db.session, current_user)
    after, until = (queries.Cursor.decode(request.args.get(name)) for name in ("after", "until"))
    if since is None:
        found = queries.Changes(reload=True)
    else:
        found = queries.changes(db.session, scope, filters, since, after, until)
    told = _thread_changed(scope, since)
    if found.none and not told:
        return Response(status=204)
    response = _changes_answer(filters, scope, since, marker, found, after, loaded_all=until is None)
    if told:
        response.headers["HX-Trigger"] = "conversation-changed"
    response.vary.add("HX-Request")
    return response


def _thread_changed(scope: queries.Scope, since: queries.Marker | None) -> bool:
    """Whether the open conversation's (c) thread changed since the page's marker: a message or a
    status, not the user's own read marks (which the thread of every channel does not show)."""
    open_id = ids.parse(request.args.get("c"))
    if open_id is None or since is None:
        return False
    return queries.thread_changed(db.session, scope, open_id, since)


def _changes_answer(
    filters: queries.Filters,
    scope: queries.Scope,
    since: queries.Marker | None,
    marker: queries.Marker,
    found: queries.Changes,
    after: queries.Cursor | None,
    loaded_all: bool,
) -> Response:
    if found.reload:
        # The list's first page, as the filters would fetch it, in place of the list.
        listing = queries.page(db.session, scope, filters)
        context = _context(filters, scope, marker, listing=listing, after=None, selected=None)
        response = Response(render_template("inbox/_list.html", **context))
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    # Every change of the user's unread counts moves their own state (ConversationState.changed_at), so
    # the marker's stamp: unmoved, the total the page shows is still right.
    own_moved = since is None or since.stamp != marker.stamp
    context = _context(
        filters,
        scope,
        marker,
        count_unread=own_moved,
        changes=found,
        after=after,
        loaded_all=loaded_all,
        selected=None,
    )
    return Response(render_template("inbox/_changes.html", **context))


@bp.get("/inbox/conversations/<id:conversation_id>")
@login_required
def conversation(conversation_id: int) -> Response:
    """The pane of one conversation (a row was opened); the address bar shows the inbox with it."""
    filters = _filters()[1] or queries.Filters()
    if not wants_fragment():
        return redirect(url_for("inbox.index", c=conversation_id, **filters.params()))
    opened = _open(queries.scope_for(db.session, current_user), conversation_id)
    body = render_template("inbox/_thread.html", oob=True, **opened, **_urls(filters))
    db.session.commit()  # the read markers of what the pane shows
    return Response(body)
