"""The Vonage SDK's HTTP client, built without importing the whole SDK.

`vonage.Vonage` imports every API package of the SDK (voice, video, verify, users… fifteen of them)
and builds a client for each; Relay calls two APIs, Messages and Numbers, and the other thirteen cost
about 0.2 s to import. So it builds the SDK's `HttpClient` and hands it to the one API object it needs,
as `Vonage` does.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

from vonage_http_client import Auth, HttpClient, HttpClientOptions


def http_client(auth: Auth, options: HttpClientOptions) -> HttpClient:
    return HttpClient(auth, options, _sdk_version())


@cache
def _sdk_version() -> str:
    # Named in the User-Agent, as `vonage.Vonage` does with its own version.
    try:
        return metadata.version("vonage")
    except metadata.PackageNotFoundError:
        return "unknown"
