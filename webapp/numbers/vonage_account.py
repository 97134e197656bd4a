"""The numbers the Vonage account owns, through the SDK's Numbers API (GET /account/numbers).

That API signs in with the account's API key and secret (HTTP Basic), not with the application's JWT that
the Messages API uses, and it lives on the REST host (rest.nexmo.com). Both are optional settings:
without them the staff page says so and staff type numbers in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from webapp import phones

if TYPE_CHECKING:
    from vonage_http_client import HttpClientOptions

log = logging.getLogger("relay.vonage")

PAGE_SIZE = 100
MAX_PAGES = 20  # 2,000 numbers: more than any account we serve; a runaway paging loop stops here


class NumbersUnavailable(RuntimeError):
    """The list cannot be had now; the message says why, for the staff page."""


@dataclass(frozen=True)
class OwnedNumber:
    e164: str
    country: str
    features: tuple[str, ...]
    type: str

    @property
    def sms(self) -> bool:
        return "SMS" in self.features


def configured(config: Mapping[str, Any]) -> bool:
    return bool(config.get("VONAGE_API_KEY") and config.get("VONAGE_API_SECRET"))


def owned_numbers(config: Mapping[str, Any]) -> list[OwnedNumber]:
    """Every number on the account, in E.164, sorted by country and number."""
    if not configured(config):
        raise NumbersUnavailable("VONAGE_API_KEY and VONAGE_API_SECRET are not set.")
    # The SDK (with requests and pydantic) loads here, when staff list the account, not with the staff
    # blueprint: every process would pay a quarter of a second for a page staff rarely open.
    import requests
    from pydantic import ValidationError
    from vonage_http_client import Auth
    from vonage_http_client.errors import AuthenticationError, HttpRequestError
    from vonage_numbers import ListOwnedNumbersFilter, Numbers

    from webapp.providers.vonage_http import http_client

    client = Numbers(
        http_client(
            Auth(api_key=config["VONAGE_API_KEY"], api_secret=config["VONAGE_API_SECRET"]),
            _options(config),
        )
    )
    found: list[OwnedNumber] = []
    index: int | None = 1
    pages = 0
    try:
        while index is not None and pages < MAX_PAGES:
            numbers, _count, index = client.list_owned_numbers(
                ListOwnedNumbersFilter(size=PAGE_SIZE, index=index)
            )
            pages += 1
            found += [n for n in (_owned(item) for item in numbers) if n is not None]
    except AuthenticationError:
        raise NumbersUnavailable("Vonage refused VONAGE_API_KEY / VONAGE_API_SECRET (401).") from None
    except HttpRequestError as error:
        status = getattr(error.response, "status_code", "?")
        raise NumbersUnavailable(f"Vonage answered {status} to the numbers list.") from None
    except requests.RequestException as error:
        log.warning("Vonage numbers list failed: %s", error)
        raise NumbersUnavailable("Vonage could not be reached for the numbers list.") from None
    except ValidationError:
        raise NumbersUnavailable("Vonage's numbers list did not have the expected shape.") from None
    return sorted(found, key=lambda n: (n.country, n.e164))


def _owned(item: Any) -> OwnedNumber | None:
    try:
        e164 = phones.normalise("+" + str(item.msisdn or "").lstrip("+"))
    except phones.InvalidPhoneNumber:
        log.warning("Skipping %r from the Vonage numbers list: not a valid number", item.msisdn)
        return None
    country = (item.country or phones.country_of(e164) or "").upper()
    return OwnedNumber(e164=e164, country=country, features=tuple(item.features or ()), type=item.type or "")


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
    # As in providers/vonage.py: requests takes a (connect, read) pair that HttpClientOptions' int refuses.
    return options.model_copy(update={"timeout": (connect, read)})
