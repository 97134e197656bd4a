"""The Vonage account's numbers, through the SDK's Numbers API: those it owns (GET /account/numbers),
those on offer (GET /number/search, by features and a pattern of digits), buying one (POST /number/buy)
and linking one to our Vonage application (POST /number/update with app_id), so that its inbound
messages and status reports reach our webhooks.

A purchase Vonage refuses is answered 420 "method failed", whatever the reason: the number was taken
meanwhile, or the account's balance cannot pay for it (Vonage says nothing more; nexmo-cli issue #157,
"method failed error when purchasing number" with insufficient credit). To say which, a refused purchase
asks the account's balance (the Account API's GET /account/get-balance) and compares it with the
number's price.

That API signs in with the account's API key and secret (HTTP Basic), not with the application's JWT that
the Messages API uses, and it lives on the REST host (rest.nexmo.com). Both are optional settings:
without them the staff page says so and staff type numbers in.

The SDK loads when the account is first asked, not with this module: most processes never ask.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from webapp import phones
from webapp.providers.base import (
    STARTS_WITH,
    AvailableNumber,
    NumberNotBought,
    NumberNotLinked,
    NumbersUnavailable,
    OwnedNumber,
)

if TYPE_CHECKING:
    from vonage_http_client import HttpClient, HttpClientOptions
    from vonage_numbers import Numbers

log = logging.getLogger("relay.vonage")

PAGE_SIZE = 100
MAX_PAGES = 20  # 2,000 numbers: more than any account we serve; a runaway paging loop stops here
FEATURES = ("SMS", "VOICE", "MMS")  # in the order the Numbers API combines them ("SMS,VOICE")


class VonageNumbers:
    """The port's numbers account for the Vonage account named by VONAGE_API_KEY / VONAGE_API_SECRET."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    def owned(self) -> list[OwnedNumber]:
        return owned_numbers(self.config)

    def search(
        self,
        country: str,
        features: Collection[str] = ("SMS",),
        pattern: str | None = None,
        search_pattern: int = STARTS_WITH,
    ) -> list[AvailableNumber]:
        return search_numbers(self.config, country, features, pattern, search_pattern)

    def buy(self, number: AvailableNumber) -> OwnedNumber:
        return buy_number(self.config, number)

    def link(self, number: OwnedNumber) -> None:
        link_number(self.config, number)


def configured(config: Mapping[str, Any]) -> bool:
    return bool(config.get("VONAGE_API_KEY") and config.get("VONAGE_API_SECRET"))


def owned_numbers(config: Mapping[str, Any]) -> list[OwnedNumber]:
    """Every number on the account, in E.164, sorted by country and number."""
    found: list[OwnedNumber] = []
    with _numbers_api(config, "list") as client:
        from vonage_numbers import ListOwnedNumbersFilter

        index: int | None = 1
        pages = 0
        while index is not None and pages < MAX_PAGES:
            numbers, _count, index = client.list_owned_numbers(
                ListOwnedNumbersFilter(size=PAGE_SIZE, index=index)
            )
            pages += 1
            found += [n for n in (_number(OwnedNumber, item) for item in numbers) if n is not None]
    return sorted(found, key=lambda n: (n.country, n.e164))


def search_numbers(
    config: Mapping[str, Any],
    country: str,
    features: Collection[str] = ("SMS",),
    pattern: str | None = None,
    search_pattern: int = STARTS_WITH,
) -> list[AvailableNumber]:
    """The first page of numbers on offer in the country with all these features (SMS, VOICE, MMS),
    and whose digits match `pattern` as `search_pattern` says (0 starts with, 1 contains, 2 ends with)."""
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"Vonage numbers have no feature {', '.join(sorted(unknown))}")
    if pattern is not None and not pattern.isdigit():
        raise ValueError(f"A search pattern is digits only, not {pattern!r}")
    wanted = ",".join(f for f in FEATURES if f in features) or None
    with _numbers_api(config, "search") as client:
        from vonage_numbers import SearchAvailableNumbersFilter

        numbers, _count, _next = client.search_available_numbers(
            SearchAvailableNumbersFilter(
                country=country.upper(),
                features=wanted,
                size=PAGE_SIZE,
                pattern=pattern or None,
                search_pattern=search_pattern if pattern else None,
            )
        )
        found = [n for n in (_number(AvailableNumber, item) for item in numbers) if n is not None]
    return sorted(found, key=lambda n: n.e164)


def buy_number(config: Mapping[str, Any], number: AvailableNumber) -> OwnedNumber:
    shown = phones.display(number.e164)
    with _numbers_api(config, "purchase") as client:
        from vonage_http_client.errors import AuthenticationError, HttpRequestError
        from vonage_numbers import NumberParams, NumbersError

        try:
            client.buy_number(NumberParams(country=number.country, msisdn=number.e164.lstrip("+")))
        except HttpRequestError as error:
            status = getattr(error.response, "status_code", 0)
            if isinstance(error, AuthenticationError) or not 400 <= status < 500:
                raise  # the account's keys, or Vonage itself, not this number: _numbers_api says so
            # 420 "method failed": taken meanwhile, not for sale to this account, or no balance for it.
            label = _error_label(error.response)
            refused = f"Vonage would not sell {shown}{f' ({label})' if label else ''}"
            raise NumberNotBought(f"{refused}: {_why_not_sold(config, number)}") from None
        except NumbersError as error:
            raise NumberNotBought(f"Vonage would not sell {shown}: {error}.") from None
    log.info("bought %s from the Vonage account", number.e164)
    return OwnedNumber(number.e164, number.country, number.features, number.type)


def _why_not_sold(config: Mapping[str, Any], number: AvailableNumber) -> str:
    """Vonage's 420 does not say why: the account's balance against the number's price does."""
    balance = _balance(config)
    try:
        price = float(number.monthly_cost) if number.monthly_cost else None
    except ValueError:
        price = None
    if balance is not None and price is not None and balance < price:
        return (
            f"the account's balance, €{balance:.2f}, does not pay for it (€{price:.2f} a month). "
            "Top up the Vonage account, then buy it again."
        )
    return "it was taken meanwhile, or is not for sale to this account. Search again."


def _balance(config: Mapping[str, Any]) -> float | None:
    """The account's balance in euros, or None when Vonage does not say (only used to word a refusal)."""
    import requests
    from pydantic import ValidationError
    from vonage_account import Account
    from vonage_http_client.errors import HttpRequestError

    try:
        return float(Account(_http(config)).get_balance().value)
    except (HttpRequestError, requests.RequestException, ValidationError, KeyError, TypeError) as error:
        log.warning("Vonage's balance could not be read: %s", error)
        return None


def link_number(config: Mapping[str, Any], number: OwnedNumber) -> None:
    """Point the number at the application Relay sends through (VONAGE_APPLICATION_ID): its inbound
    messages and status reports then come to that application's webhooks. Setting it again is harmless."""
    shown = phones.display(number.e164)
    app_id = config.get("VONAGE_APPLICATION_ID")
    if not app_id:
        raise NumberNotLinked(f"VONAGE_APPLICATION_ID is not set, so {shown} cannot be linked to it.")
    with _numbers_api(config, "update") as client:
        from vonage_http_client.errors import AuthenticationError, HttpRequestError
        from vonage_numbers import NumbersError, UpdateNumberParams

        try:
            client.update_number(
                UpdateNumberParams(country=number.country, msisdn=number.e164.lstrip("+"), app_id=app_id)
            )
        except HttpRequestError as error:
            status = getattr(error.response, "status_code", 0)
            if isinstance(error, AuthenticationError) or not 400 <= status < 500:
                raise  # _numbers_api says so
            label = _error_label(error.response)
            raise NumberNotLinked(
                f"Vonage would not link {shown} to the application{f' ({label})' if label else ''}."
            ) from None
        except NumbersError as error:
            raise NumberNotLinked(f"Vonage would not link {shown} to the application: {error}.") from None
    log.info("linked %s to the Vonage application %s", number.e164, app_id)


@contextmanager
def _numbers_api(config: Mapping[str, Any], what: str) -> Iterator[Numbers]:
    """The Numbers API client; every way it fails becomes NumbersUnavailable, in words for staff."""
    if not configured(config):
        raise NumbersUnavailable("VONAGE_API_KEY and VONAGE_API_SECRET are not set", set_up=False)
    import requests
    from pydantic import ValidationError
    from vonage_http_client.errors import AuthenticationError, HttpRequestError
    from vonage_numbers import Numbers

    client = Numbers(_http(config))
    try:
        yield client
    except AuthenticationError:
        raise NumbersUnavailable("Vonage refused VONAGE_API_KEY / VONAGE_API_SECRET (401).") from None
    except HttpRequestError as error:
        status = getattr(error.response, "status_code", "?")
        raise NumbersUnavailable(f"Vonage answered {status} to the numbers {what}.") from None
    except requests.RequestException as error:
        log.warning("Vonage numbers %s failed: %s", what, error)
        raise NumbersUnavailable(f"Vonage could not be reached for the numbers {what}.") from None
    except ValidationError:
        raise NumbersUnavailable(f"Vonage's numbers {what} did not have the expected shape.") from None


def _http(config: Mapping[str, Any]) -> HttpClient:
    """The SDK's HTTP client with the account's key and secret (the Numbers and Account APIs' sign-in)."""
    from vonage_http_client import Auth

    from webapp.providers.vonage.http import http_client

    auth = Auth(api_key=config["VONAGE_API_KEY"], api_secret=config["VONAGE_API_SECRET"])
    return http_client(auth, _options(config))


def _number(kind: type[OwnedNumber] | type[AvailableNumber], item: Any) -> Any:
    """The SDK's owned or available number as the port's, or None (logged) if it is not a valid number."""
    try:
        e164 = phones.normalise("+" + str(item.msisdn or "").lstrip("+"))
    except phones.InvalidPhoneNumber:
        log.warning("Skipping %r from the Vonage numbers list: not a valid number", item.msisdn)
        return None
    country = (item.country or phones.country_of(e164) or "").upper()
    features, number_type = tuple(item.features or ()), item.type or ""
    if kind is AvailableNumber:
        return AvailableNumber(e164, country, features, number_type, monthly_cost=item.cost)
    return OwnedNumber(e164, country, features, number_type)


def _error_label(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error-code-label") or "") if isinstance(body, dict) else ""


def _options(config: Mapping[str, Any]) -> HttpClientOptions:
    from vonage_http_client import HttpClientOptions

    connect = float(config.get("VONAGE_CONNECT_TIMEOUT") or 3)
    read = float(config.get("VONAGE_TIMEOUT") or 10)
    options = HttpClientOptions(
        api_host=config.get("VONAGE_API_HOST") or "api.nexmo.com",
        rest_host=config.get("VONAGE_REST_HOST") or "rest.nexmo.com",
        timeout=math.ceil(read),
        max_retries=0,
    )
    # As in sending.py: requests takes a (connect, read) pair that HttpClientOptions' int refuses.
    return options.model_copy(update={"timeout": (connect, read)})
