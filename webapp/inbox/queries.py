"""Reading the inbox for one user: the list, its filters and search, its pages, and what changed.

Every query starts from the user's organisations and team rule (webapp.accounts.access) and reads what
webapp.inbox.changes keeps on the conversation and per user, never the messages (except the
search by message text, which has its own index). A page is two statements: the ids in order (keyset:
`(last_message_at, id) < cursor`, one ordered index range per organisation), then those rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from webapp import search
from webapp.accounts import access
from webapp.models import (
    ActivityClock,
    Application,
    Candidate,
    Community,
    CommunityMembership,
    Conversation,
    ConversationState,
    Job,
    Message,
    OptOut,
    Prospect,
    User,
    utcnow,
)

PAGE_SIZE = 30
# The unread total counts this far and then says "99+": it never costs more than reading 100 rows.
UNREAD_CAP = 99
# More changed conversations than this since a page's marker: the page reloads its list instead.
CHANGES_CAP = 100
CHANNELS = ("email", "sms", "whatsapp")
# Search by message text needs three characters: a trigram index cannot help with fewer.
MIN_TEXT_SEARCH = 3
# A number is found by its first two digits (a country code: "+49", "49") or by any three in a row.
MIN_NUMBER_PREFIX = 2
MIN_NUMBER_PART = 3

C = Conversation
S = ConversationState


@dataclass(frozen=True)
class Filters:
    q: str = ""
    channel: str = ""
    unread: bool = False
    job: int | None = None
    reply: bool = False  # needs a reply: the last message came in
    mine: bool = False  # assigned to the user
    unassigned: bool = False  # assigned to nobody
    who: str = ""  # "candidates" or "prospects" (the CRM's), or both

    def params(self) -> dict[str, Any]:
        """The filters as query-string parameters (those that are set), for links and the poll."""
        values = {
            "q": self.q,
            "channel": self.channel,
            "unread": "1" if self.unread else "",
            "job": str(self.job) if self.job else "",
            "reply": "1" if self.reply else "",
            "mine": "1" if self.mine else "",
            "unassigned": "1" if self.unassigned else "",
            "who": self.who,
        }
        return {k: v for k, v in values.items() if v}

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The query-string parameters of the filters (params' keys: the fields' names)."""
        return tuple(f.name for f in fields(cls))

    @property
    def any(self) -> bool:
        return bool(self.params())

    @property
    def count(self) -> int:
        """How many filters are on besides the search (the Filters control says it while folded)."""
        return len(self.params()) - (1 if self.q else 0)


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last row's time and id (keyset pagination)."""

    at: datetime
    id: int

    def encode(self) -> str:
        return f"{_micros(self.at)}-{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        match = re.fullmatch(r"(\d{1,17})-(\d{1,10})", text or "")
        if not match:
            return None
        micros, id_ = int(match[1]), int(match[2])
        try:
            at = datetime.fromtimestamp(micros / 1_000_000, UTC).replace(microsecond=micros % 1_000_000)
        except (OverflowError, OSError, ValueError):
            return None
        return cls(at, id_) if id_ <= 2**31 - 1 else None


@dataclass(frozen=True)
class Marker:
    """What an open inbox has seen: its customer's activity clock, and the time of the user's own last
    change (read, mark unread). Equal markers: nothing to show has changed. A later clock: something
    changed, perhaps only in a thread (a status), which the list's rows do not show (`changes`)."""

    seq: int
    stamp: int  # microseconds

    def encode(self) -> str:
        return f"{self.seq}-{self.stamp}"

    @classmethod
    def decode(cls, text: str | None) -> Marker | None:
        match = re.fullmatch(r"(\d{1,19})-(\d{1,17})", text or "")
        return cls(int(match[1]), int(match[2])) if match else None

    @property
    def stamp_time(self) -> datetime:
        return datetime.fromtimestamp(self.stamp // 1_000_000, UTC).replace(
            microsecond=self.stamp % 1_000_000
        )


@dataclass(frozen=True)
class Scope:
    """Where the user's conversations are: their organisations, and the team rule within them."""

    user_id: int
    organization_ids: list[int]
    team: sa.ColumnElement[bool]
    admin: bool
    crm: bool  # the team rule reads it: prospects' conversations are the CRM product's
    # Opt-outs are kept on the customer's top organisation (webapp.messaging.optouts).
    top_id: int | None

    @property
    def key(self) -> tuple[Any, ...]:
        """Everything the statements built for the scope are built from (_once): a customer given (or
        losing) the CRM product sees its prospects' conversations (or stops seeing them) at once, not
        after a restart."""
        return (self.user_id, tuple(self.organization_ids), self.top_id, self.admin, self.crm)


def scope_for(session: Session, user: User) -> Scope:
    org = user.organization
    return Scope(
        user_id=user.id,
        organization_ids=access.conversation_organization_ids(session, user),
        team=access.conversation_team_condition(user),
        admin=access.is_org_admin(user),
        crm=access.entitled(user, "crm"),
        top_id=org.top.id if org is not None else None,
    )


@dataclass(frozen=True)
class Row:
    id: int
    contact: str
    first_name: str
    mobile: str | None
    about: str  # the job's title, or the community's name
    application_id: int | None
    membership_id: int | None
    channels: tuple[str, ...]
    preview: str
    direction: str
    channel: str
    author: str | None  # who wrote the last message, for an outbound one (None: Relay itself)
    at: datetime
    unread: int
    opted_out: bool
    whatsapp_open: bool
    change_seq: int
    assignee: str | None = None  # who it is assigned to (None: nobody)
    assignee_id: int | None = None

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.id)


@dataclass
class Page:
    rows: list[Row]
    next: Cursor | None


@dataclass
class Changes:
    rows: list[Row] = field(default_factory=list)  # changed, in the list, not below the rows loaded: put in
    removed: list[int] = field(default_factory=list)  # changed and no longer matching the filters
    changed: list[int] = field(default_factory=list)  # every conversation that changed: out with their rows
    # Where each of the rows goes: before this row, one that did not change (absent: at the end).
    before: dict[int, int] = field(default_factory=dict)
    reload: bool = False  # too many to apply one by one

    @property
    def none(self) -> bool:
        """No row of the list looks different (only what a thread shows may have moved: a status)."""
        return not self.changed and not self.reload


def _micros(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000 + at.microsecond


# --- Filters and search --------------------------------------------------------------------------------


def _conditions(scope: Scope, filters: Filters) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [C.last_message_at.is_not(None), scope.team]
    if filters.channel in CHANNELS:
        conditions.append(getattr(C, f"has_{filters.channel}").is_(True))
    if filters.unread:
        conditions.append(
            C.id.in_(sa.select(S.conversation_id).where(S.user_id == scope.user_id, S.unread > 0))
        )
    if filters.mine:
        conditions.append(C.assignee_id == scope.user_id)
    if filters.unassigned:
        conditions.append(C.assignee_id.is_(None))
    if filters.reply:
        conditions.append(C.last_direction == "inbound")
    if filters.who == "candidates":
        conditions.append(C.application_id.is_not(None))
    elif filters.who == "prospects":
        conditions.append(C.community_membership_id.is_not(None))
    if filters.job:
        conditions.append(
            C.application_id.in_(sa.select(Application.id).where(Application.job_id == filters.job))
        )
    matched = search_condition(filters.q)
    if matched is not None:
        conditions.append(matched)
    return conditions


def _like(text: str) -> str:
    """A LIKE pattern for `text` anywhere, with LIKE's own characters escaped (escape character \\)."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


def number_pattern(q: str) -> str | None:
    """How a query typed as a phone number finds mobiles (stored in E.164, "+4915123456789"): a LIKE
    pattern, or None when the query is not a number. Spaces, brackets, dots, dashes and slashes are
    ignored. A query that starts with "+", or has only MIN_NUMBER_PREFIX digits, is the start of the
    number ("+49", "49", "+49 1512" → "+49…", "+491512…"): two digits anywhere would match nearly every
    number. Three digits or more without "+" are part of the number, anywhere ("900 555")."""
    typed = re.fullmatch(r"[\s(]*(\+?)([0-9\s()./-]*)", q)
    if typed is None:
        return None
    digits = re.sub(r"[^0-9]", "", typed[2])
    if len(digits) < MIN_NUMBER_PREFIX:
        return None
    if typed[1] or len(digits) < MIN_NUMBER_PART:
        return f"+{digits}%"  # on PostgreSQL the trigram index finds a number's first digits too
    return f"%{digits}%"


def search_condition(q: str) -> sa.ColumnElement[bool] | None:
    """The contact's name (every word, accents and case aside), their number (its start from two
    digits, a part of it from three; number_pattern), or a message's text (case aside)."""
    words = search.words(q)
    if not words:
        return None
    found: list[sa.ColumnElement[bool]] = []
    by_name = sa.and_(*(Candidate.search_name.like(_like(w), escape="\\") for w in words))
    prospect_by_name = sa.and_(*(Prospect.search_name.like(_like(w), escape="\\") for w in words))
    number = number_pattern(q)
    if number is not None:  # digits and % only: nothing to escape
        by_name = sa.or_(by_name, Candidate.mobile.like(number))
        prospect_by_name = sa.or_(prospect_by_name, Prospect.mobile.like(number))
    found.append(C.application_id.in_(sa.select(Application.id).join(Candidate).where(by_name)))
    found.append(
        C.community_membership_id.in_(
            sa.select(CommunityMembership.id).join(Prospect).where(prospect_by_name)
        )
    )
    text = " ".join(q.split())
    if len(text) >= MIN_TEXT_SEARCH:
        found.append(
            C.id.in_(
                sa.select(Message.conversation_id).where(
                    Message.body.ilike(_like(text), escape="\\"), Message.conversation_id.is_not(None)
                )
            )
        )
    return sa.or_(*found)


# --- The list -----------------------------------------------------------------------------------------


def _ordered_ids(
    session: Session, scope: Scope, conditions: list[sa.ColumnElement[bool]], after: Cursor | None, limit: int
) -> list[tuple[int, datetime]]:
    """Ids and times of the newest conversations that meet the conditions, after the cursor."""
    if not scope.organization_ids:
        return []
    return [(id_, at) for id_, at in session.execute(_ordered(scope, conditions, after, limit))]


def _ordered(
    scope: Scope, conditions: list[sa.ColumnElement[bool]], after: Cursor | str | None, limit: int
) -> sa.Select[Any]:
    """The statement of _ordered_ids (the user has at least one organisation).

    One ordered index range (organisation, last_message_at, id) per organisation, merged: an IN over
    an administrator's organisations would make the database sort them all before the first row.
    `after` a name: the cursor is given when the statement runs, as bind parameters <name>_at, <name>_id.
    """

    def branch(organization_id: int) -> sa.Select[Any]:
        query = sa.select(C.id.label("id"), C.last_message_at.label("at")).where(
            C.organization_id == organization_id, *conditions
        )
        if after is not None:
            query = query.where(sa.tuple_(C.last_message_at, C.id) < _cursor_value(after))
        return query.order_by(C.last_message_at.desc(), C.id.desc()).limit(limit)

    if len(scope.organization_ids) == 1:
        return branch(scope.organization_ids[0])
    merged = sa.union_all(*(sa.select(branch(o).subquery()) for o in scope.organization_ids)).subquery()
    return sa.select(merged.c.id, merged.c.at).order_by(merged.c.at.desc(), merged.c.id.desc()).limit(limit)


def _cursor_value(cursor: Cursor | str) -> sa.ColumnElement[Any]:
    """A cursor as SQL: its values, or (a name) bind parameters <name>_at, <name>_id."""
    if isinstance(cursor, str):
        return sa.tuple_(
            sa.bindparam(f"{cursor}_at", type_=C.last_message_at.type),
            sa.bindparam(f"{cursor}_id", type_=sa.Integer()),
        )
    return sa.tuple_(sa.literal(cursor.at, C.last_message_at.type), sa.literal(cursor.id))


def _cursor_params(name: str, cursor: Cursor) -> dict[str, Any]:
    return {f"{name}_at": cursor.at, f"{name}_id": cursor.id}


# Statements built once per scope (and filters) and then run with their values as bind parameters:
# building one and SQLAlchemy's cache key of it cost more than running it (the poll runs a few every
# two seconds for every open inbox), and the cache key of a statement object is computed once.
_STATEMENTS: dict[tuple[Any, ...], Any] = {}


def _once(key: tuple[Any, ...], build: Any) -> Any:
    """The statement kept under `key`, built by build() the first time."""
    found = _STATEMENTS.get(key)
    if found is None:
        if len(_STATEMENTS) > 2000:  # users and their filters come and go: a bound, not a leak
            _STATEMENTS.clear()
        found = _STATEMENTS[key] = build()
    return found


def page(
    session: Session, scope: Scope, filters: Filters, after: Cursor | None = None, size: int = PAGE_SIZE
) -> Page:
    found = _ordered_ids(session, scope, _conditions(scope, filters), after, size + 1)
    more = len(found) > size
    rows = rows_by_id(session, scope, [id_ for id_, _ in found[:size]])
    return Page(rows, rows[-1].cursor if more and rows else None)


def rows_by_id(session: Session, scope: Scope, ids: list[int]) -> list[Row]:
    """The list's rows for these conversations (the ones the user may see), in the order given."""
    if not ids:
        return []
    now = utcnow()
    query = _rows_statement(scope)
    found = {}
    for r in session.execute(query, {"ids": ids}):
        first, last = r[12] or "", r[13] or ""
        found[r[0]] = Row(
            id=r[0],
            contact=f"{first} {last}".strip(),
            first_name=first,
            mobile=r[14],
            about=r[15] or "",
            application_id=r[1],
            membership_id=r[2],
            channels=tuple(c for c, on in zip(CHANNELS, (r[7], r[8], r[9]), strict=True) if on),
            preview=r[6] or "",
            direction=r[4] or "",
            channel=r[5] or "",
            author=r[16],
            at=r[3],
            unread=r[17] or 0,
            opted_out=r[18] is not None,
            whatsapp_open=r[10] is not None and r[10] > now,
            change_seq=r[11],
            assignee=r[19],
            assignee_id=r[20],
        )
    return [found[i] for i in ids if i in found]


def _rows_statement(scope: Scope) -> sa.Select[Any]:
    """The row statement (a dozen joins), once per scope (_once), the ids a bind parameter."""
    return _once(("rows", *scope.key), lambda: _build_rows_statement(scope))


def _build_rows_statement(scope: Scope) -> sa.Select[Any]:
    author = aliased(User)
    assignee = aliased(User)
    mobile = sa.func.coalesce(Candidate.mobile, Prospect.mobile)
    query = (
        sa.select(
            C.id,
            C.application_id,
            C.community_membership_id,
            C.last_message_at,
            C.last_direction,
            C.last_channel,
            C.last_preview,
            C.has_email,
            C.has_sms,
            C.has_whatsapp,
            C.whatsapp_window_ends_at,
            C.change_seq,
            sa.func.coalesce(Candidate.first_name, Prospect.first_name),
            sa.func.coalesce(Candidate.last_name, Prospect.last_name),
            mobile,
            sa.func.coalesce(Job.title, Community.name),
            author.name,
            S.unread,
            OptOut.id,
            assignee.name,
            C.assignee_id,
        )
        .outerjoin(Application, Application.id == C.application_id)
        .outerjoin(Job, Job.id == Application.job_id)
        .outerjoin(Candidate, Candidate.id == Application.candidate_id)
        .outerjoin(CommunityMembership, CommunityMembership.id == C.community_membership_id)
        .outerjoin(Community, Community.id == CommunityMembership.community_id)
        .outerjoin(Prospect, Prospect.id == CommunityMembership.prospect_id)
        .outerjoin(author, author.id == C.last_author_id)
        .outerjoin(assignee, assignee.id == C.assignee_id)
        .outerjoin(S, sa.and_(S.conversation_id == C.id, S.user_id == scope.user_id))
        .outerjoin(
            OptOut,
            sa.and_(
                OptOut.organization_id == scope.top_id, OptOut.e164 == mobile, OptOut.revoked_at.is_(None)
            ),
        )
        .where(
            C.id.in_(sa.bindparam("ids", expanding=True)),
            C.organization_id.in_(scope.organization_ids or [-1]),
            scope.team,
        )
    )
    return query


def unread_total(session: Session, scope: Scope) -> int:
    """Conversations with something this user has not read, up to UNREAD_CAP + 1 (the title's count)."""
    if not scope.organization_ids:
        return 0

    def build() -> sa.Select[Any]:
        rows = (
            sa.select(S.conversation_id)
            .join(C, C.id == S.conversation_id)
            .where(
                S.user_id == scope.user_id,
                S.unread > 0,
                C.organization_id.in_(scope.organization_ids),
                scope.team,
            )
            .limit(UNREAD_CAP + 1)
            .subquery()
        )
        return sa.select(sa.func.count()).select_from(rows)

    return session.scalar(_once(("unread", *scope.key), build)) or 0


def unread_label(total: int) -> str:
    return f"{UNREAD_CAP}+" if total > UNREAD_CAP else str(total)


# --- What changed (the poll) ---------------------------------------------------------------------------


def marker(session: Session, user: User) -> Marker:
    """The user's change marker: one statement, two index lookups (the clock's row by its key, the
    newest of the user's own changes from ix_conversation_state_user_changed)."""
    seq, stamp = session.execute(
        sa.select(
            sa.select(ActivityClock.seq)
            .where(ActivityClock.organization_id == user.organization_id)
            .scalar_subquery(),
            sa.select(sa.func.max(S.changed_at)).where(S.user_id == user.id).scalar_subquery(),
        )
    ).one()
    return Marker(seq or 0, _micros(stamp) if stamp else 0)


def changes(
    session: Session,
    scope: Scope,
    filters: Filters,
    since: Marker,
    after: Cursor | None = None,
    until: Cursor | None = None,
) -> Changes:
    """The conversations whose row may look different since the marker: changed for everyone (the
    list's marker, Conversation.list_seq: not a status, which only the thread shows) or for this user
    (read, unread, wrote); each either in the list as it is now, or out of it.

    The page has loaded the rows older than `after` (all from the newest, without it) down to `until`
    (to the end of the list, without it). A changed row goes before the first row below it in that
    stretch that did not change (which the page has), or else at the end of the stretch; one newer
    than the stretch goes at its top, one below it waits for the page that loads it.
    """
    if not scope.organization_ids:
        return Changes()
    statement = _once(("changed", *scope.key, filters), lambda: _changed_statement(scope, filters))
    found = session.execute(
        statement, {"since_seq": since.seq, "since_at": since.stamp_time, "cap": CHANGES_CAP + 1}
    ).all()
    if len(found) > CHANGES_CAP:
        return Changes(reload=True)
    if not found:
        return Changes()
    changed = sorted(id_ for id_, _, _ in found)
    matching = [(id_, at) for id_, at, listed in found if listed]
    removed = sorted(set(changed) - {id_ for id_, _ in matching})
    shown = [id_ for id_, at in matching if until is None or (at, id_) >= (until.at, until.id)]
    rows = rows_by_id(session, scope, sorted(shown))
    rows.sort(key=lambda r: (r.at, r.id), reverse=True)  # as the list
    before = _places(session, scope, filters, rows, changed, after, until)
    return Changes(rows=rows, removed=removed, changed=changed, before=before)


def _changed_statement(scope: Scope, filters: Filters) -> sa.Select[Any]:
    """The conversations changed since the marker (bind parameters since_seq, since_at; at most `cap`),
    each with its time and whether it is in the list (the filters, and the organisations rows_by_id
    reads from): only those in the loaded stretch are read whole and sent; one below it only leaves
    the page. One statement."""
    by_everyone = sa.select(C.id.label("id")).where(
        C.organization_id.in_(scope.organization_ids),
        C.list_seq > sa.bindparam("since_seq", type_=C.list_seq.type),
        scope.team,
    )
    by_user = sa.select(S.conversation_id).where(
        S.user_id == scope.user_id, S.changed_at > sa.bindparam("since_at", type_=S.changed_at.type)
    )
    changed = sa.union(by_everyone, by_user).limit(sa.bindparam("cap", type_=sa.Integer())).subquery()
    listed = sa.and_(C.organization_id.in_(scope.organization_ids), *_conditions(scope, filters))
    return sa.select(changed.c.id, C.last_message_at, sa.case((listed, True), else_=False)).select_from(
        changed.outerjoin(C, C.id == changed.c.id)
    )


def thread_changed(session: Session, scope: Scope, conversation_id: int, since: Marker) -> bool:
    """Whether anything the conversation's thread shows (a message, a status) changed since the marker:
    one row by its key (one the user may see; else False)."""

    def build() -> sa.Select[Any]:
        return sa.select(C.change_seq > sa.bindparam("since_seq", type_=C.change_seq.type)).where(
            C.id == sa.bindparam("id", type_=sa.Integer()),
            C.organization_id.in_(scope.organization_ids or [-1]),
            scope.team,
        )

    statement = _once(("thread", *scope.key), build)
    return bool(session.scalar(statement, {"id": conversation_id, "since_seq": since.seq}))


# Unchanged rows of the loaded stretch read in one ordered range to place the changed rows among; a
# stretch longer than this (a page scrolled far) places the rest one index probe each.
PLACES_SCAN = 200


def _places(
    session: Session,
    scope: Scope,
    filters: Filters,
    rows: list[Row],
    changed: list[int],
    after: Cursor | None,
    until: Cursor | None,
) -> dict[int, int]:
    """For each row (newest first), the first row below it among those loaded (older than `after`, down
    to `until`) that did not change. One ordered index range from the newest row down: the first
    unchanged row below each changed one is the next one in it. Only if that range is cut short by
    PLACES_SCAN, one statement with a one-row index range for each row not placed by it."""
    if not rows:
        return {}

    def unchanged(until_named: bool) -> list[sa.ColumnElement[bool]]:
        fixed = [*_conditions(scope, filters), C.id.not_in(sa.bindparam("changed", expanding=True))]
        if until is not None:
            below = _cursor_value("until" if until_named else until)
            fixed.append(sa.tuple_(C.last_message_at, C.id) >= below)
        return fixed

    bounds = [
        row.cursor if after is None or (row.at, row.id) < (after.at, after.id) else after for row in rows
    ]
    scan = _once(
        ("places", *scope.key, filters, until is None, PLACES_SCAN),
        lambda: _ordered(scope, unchanged(True), "bound", PLACES_SCAN),
    )
    values = {"changed": changed, **_cursor_params("bound", bounds[0])}
    if until is not None:
        values.update(_cursor_params("until", until))
    scanned = [(id_, at) for id_, at in session.execute(scan, values)]
    places: dict[int, int] = {}
    unplaced: list[tuple[Row, Cursor]] = []
    at = 0
    for row, bound in zip(rows, bounds, strict=True):
        while at < len(scanned) and (scanned[at][1], scanned[at][0]) >= (bound.at, bound.id):
            at += 1
        if at < len(scanned):
            places[row.id] = scanned[at][0]
        elif len(scanned) == PLACES_SCAN:  # the range was cut short: what is below it is not known
            unplaced.append((row, bound))
    if unplaced:
        fixed = unchanged(False)
        firsts = [
            sa.select(_ordered(scope, fixed, bound, 1).subquery().c.id).scalar_subquery()
            for _, bound in unplaced
        ]
        found = session.execute(sa.select(*firsts), {"changed": changed}).one()
        places.update(
            {row.id: first for (row, _), first in zip(unplaced, found, strict=True) if first is not None}
        )
    return places


# --- For the filters -----------------------------------------------------------------------------------


def job_choices(session: Session, user: User) -> list[tuple[int, str]]:
    """The jobs the user may see, for the job filter, open ones first."""
    return [
        (job.id, job.title)
        for job in session.scalars(access.visible_jobs(user).order_by(Job.is_open.desc(), Job.title, Job.id))
    ]
