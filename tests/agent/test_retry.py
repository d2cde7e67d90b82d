"""What a failed lookup does next (agent/retry.py): a pure decision, tested without a browser or a store."""

from __future__ import annotations

import pytest

from agent.retry import Decision, counts_against_breaker, decide
from core.errors import (
    AccountLocked,
    AmbiguousClaim,
    BlockedAction,
    ChallengePresented,
    ClaimMismatch,
    ClaimNotFound,
    LoginRejected,
    Maintenance,
    MfaFailed,
    NeedsAttention,
    PortalDrift,
    PortalUnavailable,
    RetryableError,
    SessionExpired,
)

MAX = 3


class RetryableDrift(PortalDrift):
    """A drift an adapter marks retryable (e.g. a page that rendered half way)."""

    retryable = True


@pytest.mark.parametrize("attempts", [1, MAX - 1])
def test_an_expired_session_with_attempts_left_logs_in_again(attempts):
    d = decide(SessionExpired("expired"), attempts, MAX, breaker_allows=True)
    assert d == Decision("relogin", "SessionExpired", d.why) and "log in again" in d.why


@pytest.mark.parametrize("breaker_allows", [True, False])
def test_an_expired_session_logs_in_again_whatever_the_breaker_says(breaker_allows):
    assert decide(SessionExpired("expired"), 1, MAX, breaker_allows).action == "relogin"


def test_an_expired_session_on_the_last_attempt_fails():
    d = decide(SessionExpired("expired"), MAX, MAX, breaker_allows=True)
    assert d.action == "fail" and d.reason == "SessionExpired" and f"{MAX} attempts" in d.why


@pytest.mark.parametrize("error", [LoginRejected("no"), MfaFailed("no"), AccountLocked("locked"),
                                   ChallengePresented("captcha"), NeedsAttention("terms")])
@pytest.mark.parametrize("attempts", [1, MAX])
def test_an_account_error_stops_the_account_never_retried(error, attempts):
    d = decide(error, attempts, MAX, breaker_allows=True)
    assert d.action == "account" and d.reason == type(error).__name__


@pytest.mark.parametrize("error", [PortalUnavailable("503"), Maintenance("window"), RetryableError("drop")])
def test_a_retryable_error_with_attempts_left_and_the_breaker_allowing_is_retried(error):
    d = decide(error, 1, MAX, breaker_allows=True)
    assert d == Decision("retry", type(error).__name__, d.why)
    assert decide(error, MAX - 1, MAX, breaker_allows=True).action == "retry"


def test_a_retryable_error_fails_once_the_circuit_is_open():
    d = decide(PortalUnavailable("503"), 1, MAX, breaker_allows=False)
    assert d.action == "fail" and "circuit" in d.why


def test_a_retryable_error_fails_on_the_last_attempt():
    d = decide(PortalUnavailable("503"), MAX, MAX, breaker_allows=True)
    assert d.action == "fail" and f"{MAX} attempts" in d.why
    assert decide(PortalUnavailable("503"), 1, 1, breaker_allows=True).action == "fail"  # max_attempts 1


@pytest.mark.parametrize("error", [ClaimNotFound("none"), AmbiguousClaim("two"), ClaimMismatch("other"),
                                   BlockedAction("POST")])
@pytest.mark.parametrize("breaker_allows", [True, False])
def test_a_non_retryable_error_fails_at_once(error, breaker_allows):
    d = decide(error, 1, MAX, breaker_allows)
    assert d.action == "fail" and d.reason == type(error).__name__ and d.why == "not retryable"


def test_drift_is_not_retried_unless_retryable():
    assert decide(PortalDrift("unknown label"), 1, MAX, breaker_allows=True).action == "fail"
    assert decide(RetryableDrift("half a page"), 1, MAX, breaker_allows=True).action == "retry"
    assert decide(RetryableDrift("half a page"), 1, MAX, breaker_allows=False).action == "fail"


def test_the_reason_is_the_error_type_retries_are_counted_by():
    assert decide(RetryableDrift("x"), 1, MAX, True).reason == "RetryableDrift"
    assert decide(Maintenance("x"), 1, MAX, True).reason == "Maintenance"


@pytest.mark.parametrize(("error", "counts"), [
    (PortalUnavailable("503"), True), (Maintenance("window"), True), (PortalDrift("label"), True),
    (RetryableDrift("half"), True),
    (SessionExpired("expired"), False),  # the account's session, not the portal
    (LoginRejected("no"), False), (ChallengePresented("captcha"), False),
    (ClaimNotFound("none"), False), (ClaimMismatch("other"), False), (BlockedAction("POST"), False),
])
def test_what_counts_against_the_portals_circuit_breaker(error, counts):
    assert counts_against_breaker(error) is counts


def test_evidence_unavailable_is_retried_and_counts_against_the_breaker():
    from agent.outcomes import EvidenceUnavailable

    e = EvidenceUnavailable("no page")
    assert decide(e, 1, MAX, True) == Decision("retry", "EvidenceUnavailable", decide(e, 1, MAX, True).why)
    assert counts_against_breaker(e)
