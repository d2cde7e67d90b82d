"""Per-account pacing, applied to every request the portal counts toward its rate limit, at the moment the
browser sends it (the guard route holds the request until the pacer lets it go). Many lookups in flight on
one account then share one budget and the "unusual activity" challenge never fires.

The portal counts a sliding minute. The pacer keeps the same books: the send times of the last minute, and
a request goes only while fewer than `limit - margin` were sent in the minute before it, so no minute ever
holds more (the rule itself, not an estimate of it). Inside that, a token bucket (`burst` tokens refilled
at `(limit - margin) / 60` a second) spreads the requests out: a lookup's few requests at once (a search
and its detail cards) go without waiting, a sweep's hundreds go at the steady rate, never as a burst the
portal could call unusual. The sustained rate is the limit less the margin; the margin covers the gap
between sending and arrival (the portal counts a request when it arrives, after up to the page latency:
80-400 ms under realistic latency, 100-600 ms faulty, so at most rate x 0.5 s ~ 2-3 requests move into a
minute). The page a redirect leads to never passes the route (the browser follows it): the guard debits it
when it sees it (`debit`), so no hidden margin is kept for it.

An on-demand check joined to a sweep goes first among the waiting requests and, while it is under way, the
sweep leaves it `reserve` tokens and places; but a sweep at the limit keeps the portal's minute full, so the
check still waits for each place to free up (one every 60 / cap s). `standing` (Settings.on_demand_reserve,
0 by default) makes the sweep leave that many free at all times: the check's first requests go at once, and a
sweep longer than a minute runs that many requests a minute under the limit.

One pacer per (portal address, username) in this process, shared by every context of that account (a
sweep and an on-demand check of the same account). Across processes the pacer is not shared: the
scale-out runner must keep it in Redis (DESIGN: distributed task queue).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.clock import Clock, Timer, portal_clock


@dataclass
class TokenBucket:
    limit_per_minute: int
    burst: int = 6
    margin: int = 4  # requests kept free under the limit: the portal counts on arrival, we on sending
    window_s: float = 60.0  # the portal's counting window (a minute; shorter only in tests)
    # tokens (and places in the window) other requests leave to an urgent lookup under way: as many as a
    # lookup may ask at once (a search, then a detail's cards read ahead together), at most burst - 1
    reserve: int = 5
    # tokens and places in the window the non-urgent requests (a sweep's) ALWAYS leave free, so that an
    # on-demand check arriving while a sweep runs at the limit finds its requests' budget at once. 0 by
    # default: the sweep then runs at the limit, and a check joined to it waits for the tokens it needs
    # (the portal's minute is full). With it, a long sweep's sustained rate is (cap - standing) a minute.
    standing: int = 0
    # the portal's time: its windows and refills (core.clock.portal_clock(); a ManualClock in unit tests)
    clock: Clock = field(default_factory=portal_clock, repr=False)
    _tokens: float = field(init=False)
    _at: float = field(init=False)
    _sent_at: deque = field(init=False)  # send times within the last window (debited ones included)
    _waiting: tuple[deque, deque] = field(init=False)  # (urgent, others): futures of waiting requests
    _timer: Timer | None = field(init=False, default=None)
    _urgent_lookups: int = field(init=False, default=0)
    waited_s: float = 0.0  # total time requests waited with none let through (for benchmarks)
    sent: int = 0

    def __post_init__(self) -> None:
        self.burst = max(1, min(self.burst, self.limit_per_minute // 4 or 1))
        self._tokens = float(self.burst)
        self._at = self.clock.monotonic()
        self._sent_at = deque()
        self._waiting = (deque(), deque())
        self.reserve = max(0, min(self.reserve, self.burst - 1))
        self.keep_free(self.standing)

    def keep_free(self, standing: int) -> None:
        """Set `standing` (at most burst - 1 and below the cap); the books are kept."""
        self.standing = max(0, min(standing, self.burst - 1, self.cap - 1))

    @property
    def cap(self) -> int:
        """Requests sent in any one window, at most."""
        return max(self.limit_per_minute - self.margin, 1)

    @property
    def rate_per_s(self) -> float:
        return self.cap / self.window_s

    async def acquire(self, urgent: bool = False) -> None:
        """Wait for one token. Waiters are served in arrival order, urgent ones first: the requests of an
        on-demand check someone is waiting for do not queue behind a sweep's (the budget is the same)."""
        fut = asyncio.get_running_loop().create_future()
        self._waiting[0 if urgent else 1].append(fut)
        self._serve()
        await fut

    @contextlib.contextmanager
    def urgent_lookup(self) -> Iterator[None]:
        """While an on-demand check someone waits for is under way on this account, the other requests (a
        sweep's) leave `reserve` tokens and places in the window to it: its next request finds one at once
        instead of the next token the sweep would have taken. Same budget; the sweep waits a moment."""
        self._urgent_lookups += 1
        try:
            yield
        finally:
            self._urgent_lookups -= 1
            if self._timer is None and any(self._waiting):
                self._serve()

    def debit(self) -> None:
        """Count a request that went without a token: the page a redirect leads to, which the browser
        follows without asking the route (the portal counts it all the same). The bucket goes into debt
        and the next waiters wait it out; it is in the window's books like any other."""
        now = self._refill()
        self._tokens -= 1
        self._sent_at.append(now)
        self.sent += 1

    def full_in_s(self) -> float:
        """Seconds until the bucket holds its whole burst again (0: it does now)."""
        self._refill()
        return max(self.burst - self._tokens, 0.0) / self.rate_per_s

    def _refill(self) -> float:
        now = self.clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        while self._sent_at and self._sent_at[0] <= now - self.window_s:
            self._sent_at.popleft()
        return now

    def _serve(self) -> None:
        now = self._refill()
        holds = (0, max(self.standing, self.reserve if self._urgent_lookups else 0))  # (urgent, others)
        for queue, hold in zip(self._waiting, holds, strict=True):
            while queue and self._tokens >= 1 + hold - 1e-9 and len(self._sent_at) < self.cap - hold:
                fut = queue.popleft()
                if fut.done():  # its request was cancelled while waiting
                    continue
                fut.set_result(None)
                self._tokens -= 1
                self._sent_at.append(now)
                self.sent += 1
            while queue and queue[0].done():
                queue.popleft()
        if self._timer is None and any(self._waiting):
            wait = min(self._wait_s(now, hold) for queue, hold in zip(self._waiting, holds, strict=True) if queue)
            wait = max(wait, 0.001)
            self.waited_s += wait
            self._timer = self.clock.call_later(wait, self._tick)

    def _wait_s(self, now: float, hold: int) -> float:
        """Seconds until a request that must leave `hold` tokens and places free may go."""
        wait = max(1 + hold - self._tokens, 0.0) / self.rate_per_s
        room = self.cap - hold
        if len(self._sent_at) >= room:  # the window is full: until enough of its oldest sends leave it
            wait = max(wait, self._sent_at[len(self._sent_at) - room] + self.window_s - now)
        return wait

    def _tick(self) -> None:
        self._timer = None
        self._serve()


_PACERS: dict[tuple[str, str, int], TokenBucket] = {}


def pacer_for(base_url: str, username: str, limit_per_minute: int | None, margin: int = 4,
              standing: int = 0) -> TokenBucket | None:
    """The account's shared bucket (created on first use); None when the portal declares no limit."""
    if not limit_per_minute:
        return None
    key = _key(base_url, username)
    bucket = _PACERS.get(key)
    if bucket is None or bucket.limit_per_minute != limit_per_minute or bucket.margin != margin:
        bucket = _PACERS[key] = TokenBucket(limit_per_minute, margin=margin, standing=standing)
    else:  # a setting may have changed: same books, the new share kept free
        bucket.keep_free(standing)
    return bucket


def existing_pacer(base_url: str, username: str) -> TokenBucket | None:
    """The account's bucket in this event loop, if something has used it (benchmarks read its state)."""
    return _PACERS.get(_key(base_url, username))


def _key(base_url: str, username: str) -> tuple[str, str, int]:
    return base_url.rstrip("/"), username, id(asyncio.get_running_loop())


def reset_pacers() -> None:
    """Forget every bucket (tests and benchmarks that restart a sandbox)."""
    _PACERS.clear()
