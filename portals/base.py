"""The adapter contract: capabilities, typed queries/results, the error hierarchy, the registry.

Result and query types carry no browser types, so an HTTP/FHIR adapter can sit behind the same methods.
Results hold what the portal said (raw label, raw reason text/codes) AND the normalized form.
"""

from __future__ import annotations

import enum
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, Field


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


class Credentials(BaseModel):
    username: str
    password: str = Field(repr=False)
    totp_secret: str | None = Field(default=None, repr=False)


class ClaimQuery(BaseModel):
    """What we know of a claim. The adapter searches by payer claim number when known, else by
    member + date of service, and proves the page it read belongs to this claim."""

    claim_ref: str  # our id for the claim (the PMS's), for evidence and logs (not PHI)
    payer_key: str
    payer_claim_number: str | None = None
    member_id: str = Field(repr=False)
    # PHI some portals' search forms require (date of birth, patient name when not the subscriber)
    patient_dob: date | None = Field(default=None, repr=False)
    patient_first_name: str | None = Field(default=None, repr=False)
    patient_last_name: str | None = Field(default=None, repr=False)
    dos_from: date
    dos_to: date
    billing_npi: str
    billed: Decimal
    org_external_id: str | None = None


class LineAdjustment(BaseModel):
    group: str  # CO | PR | OA | PI | CR
    carc: str
    amount: Decimal
    raw: str | None = None  # the portal's own words/code for this reason


class LineResult(BaseModel):
    line_no: int
    cpt: str
    modifiers: list[str] = []
    billed: Decimal
    allowed: Decimal | None = None
    paid: Decimal | None = None
    adjustments: list[LineAdjustment] = []
    rarcs: list[str] = []


class ClaimStatusResult(BaseModel):
    claim_ref: str
    portal_key: str
    observed_at: datetime
    # normalized
    status_category: str  # X12 277 claim status category (A3, P1, F1, F2, ...)
    status_code: str | None = None  # X12 277 claim status code
    payer_claim_number: str | None = None
    billed: Decimal
    allowed: Decimal | None = None
    paid: Decimal | None = None
    patient_responsibility: Decimal | None = None
    check_number: str | None = None
    check_date: date | None = None
    lines: list[LineResult] = []
    rejection_reason: str | None = None
    # what the page showed, verbatim
    raw_label: str
    raw: dict[str, Any] = {}
    # proof: the identifiers the page showed for the claim it read (checked against the query before
    # returning; the runner checks them again and refuses a result that does not prove its claim)
    shown_member_id: str | None = Field(default=None, repr=False)
    shown_dos_from: date | None = None
    shown_dos_to: date | None = None
    shown_claim_number: str | None = None  # as the page printed it (before normalization)
    shown_billed: Decimal | None = None
    evidence_ref: str | None = None

    @property
    def is_rejection(self) -> bool:
        return self.status_category in ("A3", "A6", "A7", "A8")

    @property
    def finalized(self) -> bool:
        return self.status_category.startswith("F") or self.is_rejection


# ---------------------------------------------------------------- errors
class PortalError(Exception):
    """Base of the hierarchy the runner understands. Messages never contain PHI or secrets."""

    retryable: ClassVar[bool] = False
    scope: ClassVar[str] = "claim"  # claim | account | portal

    def __init__(self, message: str, *, evidence_ref: str | None = None) -> None:
        super().__init__(message)
        self.evidence_ref = evidence_ref


class RetryableError(PortalError):
    retryable = True
    scope = "portal"


class PortalUnavailable(RetryableError):
    """Timeout, 5xx, dropped connection, partial page."""


class SessionExpired(RetryableError):
    scope = "account"


class Maintenance(RetryableError):
    """The portal shows its maintenance page; retry after the window."""


class AccountError(PortalError):
    """Stop the account; never retry blindly (a human must look)."""

    scope = "account"


class LoginRejected(AccountError):
    pass


class MfaFailed(AccountError):
    pass


class AccountLocked(AccountError):
    pass


class ChallengePresented(AccountError):
    """CAPTCHA / 'unusual activity' page: never solved by the agent."""


class NeedsAttention(AccountError):
    """A gate only a human should pass: password change, profile re-verification, terms, disabled."""


class ClaimError(PortalError):
    scope = "claim"


class ClaimNotFound(ClaimError):
    pass


class AmbiguousClaim(ClaimError):
    pass


class ClaimMismatch(ClaimError):
    """The page showed another claim than the one asked for."""


class PortalDrift(PortalError):
    """The page no longer looks as the adapter expects, or shows a label/code we do not know."""

    scope = "portal"


class BlockedAction(PortalError):
    """The read-only guard aborted a state-changing request."""

    scope = "claim"


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
