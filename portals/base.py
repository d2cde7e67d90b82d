"""The adapter contract: capabilities, request patterns, the adapter Protocol, the registry.

The queries, results and errors an adapter speaks are the shared vocabulary of core/ (core.claims,
core.credentials, core.errors): no browser types, so an HTTP/FHIR adapter can sit behind the same methods.
"""

from __future__ import annotations

import enum
import re
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from core.claims import ClaimQuery, ClaimStatusResult
from core.credentials import Credentials


class Capability(enum.StrEnum):
    CLAIM_STATUS = "claim_status"
    PRIOR_AUTH = "prior_auth"
    ENROLLMENT = "enrollment"


class RequestPattern(BaseModel):
    """A request by method ("*" = any) and URL regex. Used for the state-changing requests an adapter may
    send (login, MFA, search: all others are blocked) and for the requests a portal counts toward its
    rate limit (paced by the agent)."""

    method: str
    url_regex: str

    def matches(self, method: str, url: str) -> bool:
        return (self.method == "*" or method.upper() == self.method.upper()) \
            and re.search(self.url_regex, url) is not None

    @classmethod
    def post(cls, path: str) -> RequestPattern:
        """A POST to exactly `path` on the portal's host (any query string)."""
        return cls(method="POST", url_regex=rf"^https?://[^/?#]+{re.escape(path)}(?:\?[^#]*)?$")

    @classmethod
    def under(cls, path_prefix: str, method: str = "*") -> RequestPattern:
        """Any request (or `method`) whose path starts with `path_prefix`."""
        return cls(method=method, url_regex=rf"^https?://[^/?#]+{re.escape(path_prefix)}")


# ---------------------------------------------------------------- contract + registry
@runtime_checkable
class PortalAdapter(Protocol):
    key: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]
    allowed_writes: ClassVar[tuple[RequestPattern, ...]]
    max_in_flight: ClassVar[int]  # lookups one logged-in session can have in flight (each on its own page)
    # The portal's per-account rate limit (requests a minute it tolerates before its "unusual activity"
    # challenge) and which requests it counts; the agent paces counted requests under the limit.
    rate_limit_per_minute: ClassVar[int | None]
    counted_requests: ClassVar[tuple[RequestPattern, ...]]
    requests_per_lookup: ClassVar[int]  # fewest counted requests one claim lookup needs (from the fixture)
    # optional: `rate_margin` (requests kept free under the limit, default 4: more where the portal counts
    # requests the browser cannot see; a redirect's next page is seen and debited);
    # `claim_number_key(text) -> str | None`, the portal's
    # claim-number normalization (prefixes, separators, leading zeros), used by the runner's own proof
    # check; `affinity(query) -> Hashable`, what a page must be set up for to look the claim up without
    # reloading (the runner gives each lookup a page last used for the same affinity when it can, and
    # hands each lookup slot claims of the same affinity in a row); `resume(session, creds)`, called on a
    # session restored from saved state once `verify` said it is signed in: the adapter keeps (in memory, in
    # session.state) what it needs of the credentials to answer a prompt inside a signed-in session, such as a
    # step-up code, as `login` does; it sends nothing

    async def login(self, session: Any, creds: Credentials) -> None: ...

    async def verify(self, session: Any) -> bool:
        """True when a restored session is still logged in (checked before trusting saved state)."""
        ...

    async def claim_status(self, session: Any, q: ClaimQuery) -> ClaimStatusResult: ...


_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: adds an adapter to the registry under its `key`."""
    if cls.key in _REGISTRY and _REGISTRY[cls.key] is not cls:
        raise ValueError(f"adapter key {cls.key!r} registered twice")
    _REGISTRY[cls.key] = cls
    return cls


def registry() -> dict[str, type]:
    return dict(_REGISTRY)
