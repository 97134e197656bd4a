"""Administrators ask for a sending number; customer success searches the provider's offer for it, buys
one, links it to our application and puts it in the customer's pool, in one step.

    open ──search finds numbers──▶ offered ──buy, link, pool──▶ done
      └──────────────┴──────────decline, with a reason──────────▶ declined

A purchase cannot be rolled back, so buying is a few transactions, each committed here:

1. the request is claimed, by one conditional UPDATE (two staff buying at once: one claim, one refusal
   that names who is buying); a claim older than LEASE is free again;
2. the provider sells the number (or says why not: the refusal is recorded and said);
3. the bought number is recorded on the request at once, before anything else can fail;
4. the provider points it at our application; if that fails, the request keeps the bought number and
   staff retry the link (`finish`), never a second purchase;
5. it joins the pool through `pool.add`, the one way a number enters a pool (so the documents rule holds:
   a DE or FR number waits for approved documents), and the request is done.

Every step, refused or not, leaves an audit row (webapp.compliance.audit) tied to the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from webapp import phones
from webapp.compliance import audit
from webapp.models import NumberRequest, Organization, User, utcnow
from webapp.models.number_requests import REASONS
from webapp.numbers import matching, pool
from webapp.providers.base import (
    AvailableNumber,
    NumberNotBought,
    NumberNotLinked,
    NumbersAccount,
    NumbersUnavailable,
    OwnedNumber,
)
from webapp.refusals import Refused

# Longer than a purchase and a link can take (each is one request to the provider, with its timeouts).
LEASE = timedelta(minutes=2)
# A number for WhatsApp is verified by a code sent to it: every number asked for must take SMS.
FEATURES = ("SMS",)
LIVE = ("open", "offered")


class RequestRefused(Refused):
    """The request cannot be made, or the step cannot be taken; about the request unless it says."""


# --- Administrators ask ------------------------------------------------------------------------------


def create(
    session: Session,
    actor: User,
    organization: Organization,
    *,
    country: str,
    sms: bool,
    whatsapp: bool,
    reason: str,
    area_code: str = "",
    locality: str = "",
    prefix: str = "",
    note: str = "",
) -> NumberRequest:
    """A new open request of the organisation. Raises RequestRefused, naming the field."""
    country = (country or "").strip().upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        raise RequestRefused("Choose the country the number is for.", "country")
    if not (sms or whatsapp):
        raise RequestRefused("Choose what the number sends: SMS, WhatsApp or both.", "sms")
    area_code, locality, prefix, note = (
        " ".join((v or "").split()) for v in (area_code, locality, prefix, note)
    )
    area_digits = matching.digits(area_code)
    if area_code and (area_code.startswith("+") or len(area_digits) > matching.AREA_CODE_DIGITS):
        raise RequestRefused("An area code is a few digits as dialled in the country, e.g. 030.", "area_code")
    for value, field in ((area_code, "area_code"), (prefix, "prefix")):
        try:
            matching.international(country, value)
        except matching.NotAPattern as error:
            raise RequestRefused(str(error), field) from None
    if len(matching.digits(prefix)) > matching.PREFIX_DIGITS:
        raise RequestRefused("A prefix is the first digits of the number, not more than a number.", "prefix")
    if reason not in REASONS:
        raise RequestRefused("Say why you need the number.", "reason")
    if reason == "other" and not note:
        raise RequestRefused("Say in a few words why you need the number.", "note")
    request = NumberRequest(
        organization_id=organization.id,
        country=country,
        sms=sms,
        whatsapp=whatsapp,
        area_code=area_digits or None,
        locality=locality or None,
        prefix=prefix or None,
        reason=reason,
        note=note,
        requested_by_id=actor.id,
    )
    session.add(request)
    session.flush()
    _record(session, actor, request, "number_requested", _summary(request))
    return request


def of_organization(session: Session, organization_id: int) -> list[NumberRequest]:
    """The organisation's requests, newest first."""
    return list(
        session.scalars(
            sa.select(NumberRequest)
            .where(NumberRequest.organization_id == organization_id)
            .options(selectinload(NumberRequest.number), selectinload(NumberRequest.requested_by))
            .order_by(NumberRequest.created_at.desc(), NumberRequest.id.desc())
        )
    )


# --- Staff fulfil ------------------------------------------------------------------------------------


def waiting(session: Session) -> list[NumberRequest]:
    """Every customer's requests still to fulfil (open, offered), oldest first."""
    return list(
        session.scalars(
            sa.select(NumberRequest)
            .where(NumberRequest.state.in_(LIVE))
            .options(selectinload(NumberRequest.organization), selectinload(NumberRequest.requested_by))
            .order_by(NumberRequest.created_at, NumberRequest.id)
        )
    )


def get(session: Session, request_id: int) -> NumberRequest | None:
    return session.get(NumberRequest, request_id)


@dataclass(frozen=True)
class Search:
    pattern: str | None  # what the provider was asked for (digits with the calling code)
    fits: list[matching.Fit]
    note: str | None = None  # said above the results: nothing matched the pattern, the provider failed …


def suggested_pattern(request: NumberRequest) -> str:
    return matching.search_pattern(request.country, request.area_code, request.prefix) or ""


def search(
    session: Session, actor: User, request: NumberRequest, account: NumbersAccount, pattern: str | None
) -> Search:
    """The numbers on offer for the request, those that fit its preferences first. With a pattern that
    finds nothing, the country's other numbers, said so. An open request that gets numbers is offered."""
    if request.state not in LIVE:
        raise RequestRefused(
            f"This request is {request.state_label.lower()}: there is nothing to search for."
        )
    pattern = matching.digits(pattern) or None
    note = None
    try:
        found = account.search(request.country, FEATURES, pattern)
        if pattern and not found:
            note = f"Nothing on offer starting with {pattern}; the other numbers of {_country(request)}:"
            found = account.search(request.country, FEATURES)
    except NumbersUnavailable as error:
        _record(session, actor, request, "numbers_searched", f"Not searched: {error}")
        return Search(pattern, [], f"{error}")
    fits = matching.ranked(found, request.country, request.area_code, request.locality, request.prefix)
    matched = sum(f.matches for f in fits)
    asked = f"starting with {pattern}" if pattern else "any"
    _record(session, actor, request, "numbers_searched", f"{asked}: {len(fits)} on offer, {matched} fit")
    if fits and request.state == "open":
        request.state = "offered"
    if not fits:
        note = f"The provider has no number with SMS on offer in {_country(request)} now."
    return Search(pattern, fits, note)


def buy(
    session: Session,
    actor: User,
    request: NumberRequest,
    account: NumbersAccount,
    provider: str,
    e164: str,
    monthly_cost: str | None = None,
) -> NumberRequest:
    """Buy the number for the request, link it to our application and put it in the customer's pool:
    the request is done. Commits each step (see the module). Raises RequestRefused with what happened."""
    try:
        e164 = phones.normalise(e164)
    except phones.InvalidPhoneNumber as error:
        raise RequestRefused(str(error)) from None
    if phones.country_of(e164) != request.country:
        raise RequestRefused(f"{phones.display(e164)} is not a number of {_country(request)}.")
    _claim(session, actor, request, bought=False)
    shown = phones.display(e164)
    offer = AvailableNumber(e164, request.country, FEATURES, "", monthly_cost=monthly_cost or None)
    try:
        account.buy(offer)
    except NumberNotBought as error:
        _give_up(session, actor, request, "number_not_bought", str(error))
    except NumbersUnavailable as error:
        _give_up(
            session,
            actor,
            request,
            "number_not_bought",
            f"{error} Whether {shown} was bought is not known: if it was, the customer's page lists it "
            "under Add a number.",
        )
    request.bought_e164, request.bought_at = e164, utcnow()
    cost = f", {monthly_cost} € a month" if monthly_cost else ""
    _record(session, actor, request, "number_bought", f"{shown}{cost}")
    session.commit()  # bought is bought: recorded before the link can fail
    return _link_and_pool(session, actor, request, account, provider)


def finish(
    session: Session, actor: User, request: NumberRequest, account: NumbersAccount, provider: str
) -> NumberRequest:
    """Link the number bought for the request and put it in the pool (after a link that failed)."""
    _claim(session, actor, request, bought=True)
    return _link_and_pool(session, actor, request, account, provider)


def decline(session: Session, actor: User, request: NumberRequest, reason: str) -> NumberRequest:
    """Staff say no, and why (the administrator reads it on their Sending numbers page)."""
    reason = " ".join((reason or "").split())
    if request.state not in LIVE:
        raise RequestRefused(f"This request is {request.state_label.lower()} already.")
    if request.bought_e164:
        raise RequestRefused(
            f"{phones.display(request.bought_e164)} was bought for this request: retry its link instead."
        )
    if _held_by_other(request, actor):
        raise RequestRefused(_busy(request))
    if not reason:
        raise RequestRefused("Say why, for the customer.", "reason")
    request.state, request.decline_reason = "declined", reason[:500]
    request.decided_by_id, request.decided_at = actor.id, utcnow()
    _record(session, actor, request, "request_declined", reason)
    return request


# --- The steps -------------------------------------------------------------------------------------------


def _claim(session: Session, actor: User, request: NumberRequest, *, bought: bool) -> None:
    """Take the request for this purchase (or retried link), committed; RequestRefused if someone else
    holds it, or it is done, declined, or (not) bought already."""
    now = utcnow()
    has_bought = NumberRequest.bought_e164.is_not(None) if bought else NumberRequest.bought_e164.is_(None)
    taken = session.execute(
        sa.update(NumberRequest)
        .where(
            NumberRequest.id == request.id,
            NumberRequest.state.in_(LIVE),
            has_bought,
            sa.or_(NumberRequest.claimed_at.is_(None), NumberRequest.claimed_at < now - LEASE),
        )
        .values(claimed_by_id=actor.id, claimed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    session.refresh(request)
    if taken != 1:
        raise RequestRefused(_busy(request))


def _busy(request: NumberRequest) -> str:
    """Why the request cannot be taken now, as it stands."""
    if request.state == "done" and request.number is not None:
        who = f" by {request.decided_by.name}" if request.decided_by else ""
        return f"This request is done already: {phones.display(request.number.e164)} was added{who}."
    if request.state == "declined":
        who = f" by {request.decided_by.name}" if request.decided_by else ""
        return f"This request was declined{who}: {request.decline_reason}"
    if request.claimed_at is not None and request.claimed_at >= utcnow() - LEASE:
        who = request.claimed_by.name if request.claimed_by else "Someone"
        return f"{who} is buying a number for this request right now. Reload the page in a moment."
    if request.bought_e164:
        return f"{phones.display(request.bought_e164)} was bought for this request already: retry its link."
    return "Nothing was bought for this request yet: buy a number first."


def _held_by_other(request: NumberRequest, actor: User) -> bool:
    fresh = request.claimed_at is not None and request.claimed_at >= utcnow() - LEASE
    return fresh and request.claimed_by_id != actor.id


def _give_up(session: Session, actor: User, request: NumberRequest, action: str, why: str) -> NoReturn:
    """A step failed: said in the audit, the claim let go, committed; then refused with the same words."""
    request.claimed_by_id = request.claimed_at = None
    _record(session, actor, request, action, why)
    session.commit()
    raise RequestRefused(why)


def _link_and_pool(
    session: Session, actor: User, request: NumberRequest, account: NumbersAccount, provider: str
) -> NumberRequest:
    e164 = request.bought_e164
    assert e164 is not None
    shown = phones.display(e164)
    if request.linked_at is None:
        try:
            account.link(OwnedNumber(e164, request.country, FEATURES, ""))
        except (NumberNotLinked, NumbersUnavailable) as error:
            _give_up(
                session,
                actor,
                request,
                "number_link_failed",
                f"{shown} is bought and kept on this request, but not linked to our application: {error} "
                "Retry the link.",
            )
        request.linked_at = utcnow()
        _record(session, actor, request, "number_linked", shown)
        session.commit()
    try:
        number = pool.add(
            session,
            actor,
            request.organization,
            e164,
            sms=request.sms,
            whatsapp=request.whatsapp,
            provider=provider,
        )
    except pool.NumberRefused as refusal:
        session.rollback()
        _give_up(
            session,
            actor,
            request,
            "number_not_pooled",
            f"{shown} is bought and linked, but not in the pool: {refusal.message}",
        )
    request.number_id = number.id
    request.state = "done"
    request.decided_by_id, request.decided_at = actor.id, utcnow()
    request.claimed_by_id = request.claimed_at = None
    _record(
        session,
        actor,
        request,
        "request_done",
        f"{shown} in {request.organization.name}'s pool ({number.status_label.lower()})",
    )
    session.commit()
    return request


def _record(session: Session, actor: User, request: NumberRequest, action: str, detail: str) -> None:
    audit.record(
        session,
        organization_id=request.organization_id,
        country=request.country,
        action=action,
        actor=actor,
        detail=detail,
        number_request=request,
    )


def _country(request: NumberRequest) -> str:
    return phones.region_name(request.country)


def _summary(request: NumberRequest) -> str:
    wishes = [
        f"area code {request.area_code}" if request.area_code else "",
        request.locality or "",
        f"prefix {request.prefix}" if request.prefix else "",
    ]
    parts = [", ".join(request.capabilities), ", ".join(w for w in wishes if w), request.reason_label]
    if request.note:
        parts.append(request.note)
    return " · ".join(p for p in parts if p)
