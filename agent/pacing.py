"""Per-account pacing: a token bucket just under the portal's rate limit, applied to every request the
portal counts, at the moment the browser sends it (the guard route holds the request until a token is
free). Many lookups in flight on one account then share one budget and the "unusual activity" challenge
never fires.

The portal counts a sliding minute; a bucket of `burst` tokens refilled at `r` per second lets through at
most `burst + 60 r` requests in any minute, so r = (limit - burst - margin) / 60. The margin covers the
gap between sending and arrival (the portal counts a request when it arrives, after up to the page
latency: 80-400 ms under realistic latency, 100-600 ms faulty, so at most r x 0.5 s ~ 2-3 requests move
into a window). A small burst (2): a larger one lets a few requests go at once, at the price of a lower
sustained rate for the whole sweep. The page a redirect leads to never passes the route (the browser
follows it); the guard debits it from the bucket when it sees it (`debit`), so no hidden margin is kept for
it.

One pacer per (portal address, username) in this process, shared by every context of that account (a
sweep and an on-demand check of the same account). Across processes the pacer is not shared: the
scale-out runner must keep it in Redis (DESIGN: distributed task queue).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    limit_per_minute: int
    burst: int = 2
    margin: int = 4  # requests kept free under the limit: the portal counts on arrival, we on sending
    _tokens: float = field(init=False)
    _at: float = field(init=False)
    _waiting: tuple[deque, deque] = field(init=False)  # (urgent, others): futures of waiting requests
    _timer: asyncio.TimerHandle | None = field(init=False, default=None)
    waited_s: float = 0.0  # total time the bucket was empty with requests waiting (for benchmarks)
    sent: int = 0

    def __post_init__(self) -> None:
        self.burst = max(1, min(self.burst, self.limit_per_minute // 4 or 1))
        self._tokens = float(self.burst)
        self._at = time.monotonic()
        self._waiting = (deque(), deque())

    @property
    def rate_per_s(self) -> float:
        return max(self.limit_per_minute - self.burst - self.margin, 1) / 60.0

    async def acquire(self, urgent: bool = False) -> None:
        """Wait for one token. Waiters are served in arrival order, urgent ones first: the requests of an
        on-demand check someone is waiting for do not queue behind a sweep's (the budget is the same)."""
        fut = asyncio.get_running_loop().create_future()
        self._waiting[0 if urgent else 1].append(fut)
        self._serve()
        await fut

    def debit(self) -> None:
        """Count a request that went without a token: the page a redirect leads to, which the browser
        follows without asking the route (the portal counts it all the same). The bucket goes into debt
        and the next waiters wait it out, so sent + debited stays within `burst + 60 r` a minute."""
        self._refill()
        self._tokens -= 1
        self.sent += 1

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now

    def _serve(self) -> None:
        self._refill()
        for queue in self._waiting:
            while queue and self._tokens >= 1 - 1e-9:
                fut = queue.popleft()
                if fut.done():  # its request was cancelled while waiting
                    continue
                fut.set_result(None)
                self._tokens -= 1
                self.sent += 1
            while queue and queue[0].done():
                queue.popleft()
        if self._timer is None and any(self._waiting):
            wait = max(1 - self._tokens, 0.0) / self.rate_per_s
            self.waited_s += wait
            self._timer = asyncio.get_running_loop().call_later(wait, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._serve()


_PACERS: dict[tuple[str, str, int], TokenBucket] = {}


def pacer_for(base_url: str, username: str, limit_per_minute: int | None, margin: int = 4) -> TokenBucket | None:
    """The account's shared bucket (created on first use); None when the portal declares no limit."""
    if not limit_per_minute:
        return None
    key = (base_url.rstrip("/"), username, id(asyncio.get_running_loop()))
    bucket = _PACERS.get(key)
    if bucket is None or bucket.limit_per_minute != limit_per_minute or bucket.margin != margin:
        bucket = _PACERS[key] = TokenBucket(limit_per_minute, margin=margin)
    return bucket


def reset_pacers() -> None:
    """Forget every bucket (tests and benchmarks that restart a sandbox)."""
    _PACERS.clear()
