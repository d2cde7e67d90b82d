"""The error hierarchy the runner understands, shared by every source (browser, HTTP, file).

Retryable (timeout, 5xx, session expired, maintenance), account-level (stop the account, never retry
blindly), claim-level (not found, ambiguous, mismatch), drift (the source no longer reads as expected).
Messages never contain PHI or secrets.
"""

from __future__ import annotations

from typing import ClassVar


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
