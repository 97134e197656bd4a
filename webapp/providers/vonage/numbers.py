"""The Vonage account's numbers, through the SDK's Numbers API: those it owns (GET /account/numbers),
those on offer (GET /number/search) and buying one (POST /number/buy).

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
from webapp.providers.base import AvailableNumber, NumberNotBought, NumbersUnavailable, OwnedNumber

if TYPE_CHECKING:
    from vonage_http_client import HttpClientOptions
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

    def search(self, country: str, features: Collection[str] = ("SMS",)) -> list[AvailableNumber]:
        return search_numbers(self.config, country, features)

    def buy(self, number: AvailableNumber) -> OwnedNumber:
        return buy_number(self.config, number)


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
    config: Mapping[str, Any], country: str, features: Collection[str] = ("SMS",)
) -> list[AvailableNumber]:
    """The first page of numbers on offer in the country with all these features (SMS, VOICE, MMS)."""
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise ValueError(f"Vonage numbers have no feature {', '.join(sorted(unknown))}")
    wanted = ",".join(f for f in FEATURES if f in features) or None
    with _numbers_api(config, "search") as client:
        from vonage_numbers import SearchAvailableNumbersFilter

        numbers, _count, _next = client.search_available_numbers(
            SearchAvailableNumbersFilter(country=country.upper(), features=wanted, size=PAGE_SIZE)
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
            raise NumberNotBought(f"Vonage would not sell {shown}{f' ({label})' if label else ''}.") from None
        except NumbersError as error:
            raise NumberNotBought(f"Vonage would not sell {shown}: {error}.") from None
    log.info("bought %s from the Vonage account", number.e164)
    return OwnedNumber(number.e164, number.country, number.features, number.type)


@contextmanager
def _numbers_api(config: Mapping[str, Any], what: str) -> Iterator[Numbers]:
    """The Numbers API client; every way it fails becomes NumbersUnavailable, in words for staff."""
    if not configured(config):
        raise NumbersUnavailable("VONAGE_API_KEY and VONAGE_API_SECRET are not set", set_up=False)
    import requests
    from pydantic import ValidationError
    from vonage_http_client import Auth
    from vonage_http_client.errors import AuthenticationError, HttpRequestError
    from vonage_numbers import Numbers

    from webapp.providers.vonage.http import http_client

    client = Numbers(
        http_client(
            Auth(api_key=config["VONAGE_API_KEY"], api_secret=config["VONAGE_API_SECRET"]),
            _options(config),
        )
    )
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
