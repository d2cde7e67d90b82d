from datetime import UTC, datetime, timedelta

import pytest

from agent.guards import CircuitBreaker, LockoutGuard


class Clock:
    def __init__(self):
        self.t = datetime(2026, 11, 2, 10, tzinfo=UTC)

    def __call__(self):
        return self.t


def test_lockout_guard_blocks_password_until_window_or_human():
    clock = Clock()
    g = LockoutGuard(window=timedelta(minutes=60), clock=clock)
    assert g.password_allowed("active", None) == (True, None)
    failed = clock.t
    ok, why = g.password_allowed("needs_attention", failed)
    assert not ok and "human" in why
    clock.t += timedelta(minutes=59)
    assert not g.password_allowed("needs_attention", failed)[0]
    clock.t += timedelta(minutes=2)
    assert g.password_allowed("needs_attention", failed)[0]
    assert g.password_allowed("active", failed)[0]  # a human cleared it
    assert not g.password_allowed("disabled", None)[0]


@pytest.mark.parametrize("threshold", [1, 3, 5])
def test_breaker_opens_after_consecutive_failures_then_half_opens(threshold):
    clock = Clock()
    b = CircuitBreaker(threshold=threshold, cooldown=timedelta(minutes=10), clock=clock)
    for _ in range(threshold - 1):
        assert not b.failure()
    b.success()  # a success resets the count
    for _ in range(threshold - 1):
        b.failure()
    assert b.allow()
    assert b.failure() and b.state == "open" and not b.allow()
    clock.t += timedelta(minutes=10)
    assert b.state == "half_open" and b.allow()
    assert b.failure() and b.state == "open"  # the trial failed: open again
    clock.t += timedelta(minutes=10)
    b.success()
    assert b.state == "closed" and b.trips == 2
