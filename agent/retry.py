"""What a lookup that failed does next: one pure decision (no browser, no store), the runner's retry policy.

`decide(error, attempts, max_attempts, breaker_allows)` says retry (after the backoff), relogin (the session
expired: log in again, then look up again), account (stop the account: a human must look) or fail (the
claim fails with the error, and its page is kept). The runner (agent/sweep.py `_check`) records the failure
on the portal's circuit breaker first (`counts_against_breaker`), then asks; it counts each retry under the
decision's `reason` (the error's type name) as well as in the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.errors import AccountError, PortalDrift, PortalError, SessionExpired

Action = Literal["retry", "relogin", "account", "fail"]


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str  # the error's type name: what retries are counted by
    why: str  # a few words for the logs and the tests


def counts_against_breaker(error: PortalError) -> bool:
    """A failure of the portal itself (drift, or a retryable error other than an expired session): one
    more towards opening the portal's circuit. Account-level errors say nothing about the portal."""
    if isinstance(error, (SessionExpired, AccountError)):
        return False
    return isinstance(error, PortalDrift) or error.retryable


def decide(error: PortalError, attempts: int, max_attempts: int, breaker_allows: bool) -> Decision:
    """After the `attempts`-th lookup of a claim failed with `error`: what next. `breaker_allows`: the
    portal's circuit breaker lets calls through (asked after this failure was counted against it)."""
    reason = type(error).__name__
    if isinstance(error, SessionExpired):
        if attempts < max_attempts:
            return Decision("relogin", reason, "the session expired: log in again")
        return Decision("fail", reason, f"the session expired on each of {attempts} attempts")
    if isinstance(error, AccountError):
        return Decision("account", reason, "account-level: stop the account")
    if not error.retryable:
        return Decision("fail", reason, "not retryable")
    if attempts >= max_attempts:
        return Decision("fail", reason, f"still failing after {attempts} attempts")
    if not breaker_allows:
        return Decision("fail", reason, "the portal's circuit is open")
    return Decision("retry", reason, f"attempt {attempts} of {max_attempts} failed")
