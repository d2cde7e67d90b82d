"""Policy that wraps every adapter the same way: the lockout guard and the per-portal circuit breaker.

Pure logic with an injected clock; the sweep runner persists what must survive a process (the account's
status and last failed login live on the PortalAccount row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class LockoutGuard:
    """Never send a password again after a failed login for that account, until a human clears the
    account or the lockout window has passed. Portals lock after 3 bad passwords; we stop after 1."""

    window: timedelta = timedelta(minutes=60)
    clock: Callable[[], datetime] = _now

    def password_allowed(self, status: str, last_failed_login_at: datetime | None) -> tuple[bool, str | None]:
        if status == "disabled":
            return False, "account disabled by an administrator"
        if last_failed_login_at is None:
            return True, None
        if last_failed_login_at.tzinfo is None:
            last_failed_login_at = last_failed_login_at.replace(tzinfo=UTC)
        if status == "needs_attention" and self.clock() - last_failed_login_at < self.window:
            return False, "a login failed; waiting for a human or the lockout window"
        return True, None


@dataclass
class CircuitBreaker:
    """Per portal: `threshold` consecutive portal-level failures open the circuit (the sweep of that
    portal stops and an alert is raised); after `cooldown` one trial call is let through (half-open)."""

    threshold: int = 5
    cooldown: timedelta = timedelta(minutes=15)
    clock: Callable[[], datetime] = _now
    failures: int = 0
    opened_at: datetime | None = None
    trips: int = 0
    _log: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        if self.opened_at is not None:
            self._log.append("recovered")
        self.failures = 0
        self.opened_at = None

    def failure(self) -> bool:
        """Record a failure; True when this failure opened (or re-opened) the circuit."""
        self.failures += 1
        if self.state == "half_open" or (self.opened_at is None and self.failures >= self.threshold):
            self.opened_at = self.clock()
            self.trips += 1
            self._log.append("opened")
            return True
        return False
