"""Clocks for the agent's own waits (the pacer's timers, backoff sleeps).

`ScaledClock` is real time (`REAL_CLOCK`), or real time sped up for a sped-up portal. `ManualClock` is
virtual time for tests and benches of pure timing logic: it reads a number that moves only when told
(`advance`), or jumps from one timer to the next while a workload waits (`run`), so a test of a one-minute
window takes no wall time and never depends on how busy the machine is. Both offer the same three calls.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Timer: ...

    async def sleep(self, seconds: float) -> None: ...




class ScaledClock:
    """Real time (time.monotonic(), the running loop's timers, asyncio.sleep) sped up `scale` times: 1 is real
    time; more, a portal whose clock runs faster (the sandbox started with --time-scale, or sped up through
    its control API). A wait of d seconds takes d / scale real seconds."""

    def __init__(self, scale: float) -> None:
        if not scale > 0:
            raise ValueError("scale must be > 0")
        self.scale = float(scale)

    def monotonic(self) -> float:
        return time.monotonic() * self.scale

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Timer:
        return asyncio.get_running_loop().call_later(delay / self.scale, callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.scale)


REAL_CLOCK = ScaledClock(1)
_PORTAL_CLOCK: list[Clock] = [REAL_CLOCK]


def portal_clock() -> Clock:
    """The clock the portals' time runs on, as this process sees it: their rate-limit windows (the pacer) and
    their own delays (an inquiry's response time). Real time in life; the tests speed it up together with the
    sandbox's running clock, so no test waits out a portal's minute."""
    return _PORTAL_CLOCK[0]


def set_portal_clock(clock: Clock) -> None:
    _PORTAL_CLOCK[0] = clock


@dataclass(order=True)
class _ManualTimer:
    due: float
    seq: int
    callback: Callable[[], Any] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Virtual time: `monotonic()` stays put until the test moves it; timers fire in due order as it does."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[_ManualTimer] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Timer:
        timer = _ManualTimer(self.now + max(delay, 0.0), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self.call_later(seconds, lambda: fut.done() or fut.set_result(None))
        await fut

    @staticmethod
    async def settle(rounds: int = 50) -> None:
        """Let every task that can run without time passing run (bounded: `rounds` loop iterations)."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    def _next_due(self) -> float | None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0].due if self._timers else None

    async def _fire_next(self) -> None:
        timer = heapq.heappop(self._timers)
        self.now = max(self.now, timer.due)
        timer.callback()
        await self.settle()

    async def advance(self, seconds: float) -> None:
        """Move time `seconds` ahead, firing each timer due on the way at its own time."""
        end = self.now + seconds
        await self.settle()
        while (due := self._next_due()) is not None and due <= end:
            await self._fire_next()
        self.now = end
        await self.settle()

    async def run(self, work: Awaitable[T], limit_s: float = 3600.0) -> T:
        """Run `work` to its end, jumping from timer to timer whenever nothing can run without time
        passing. Fails (never hangs) if `work` waits on something no timer will bring, or past `limit_s`."""
        task = asyncio.ensure_future(work)
        end = self.now + limit_s
        await self.settle()
        while not task.done():
            due = self._next_due()
            if due is None:
                task.cancel()
                raise RuntimeError("the work waits on something no timer of this clock will bring")
            if due > end:
                task.cancel()
                raise TimeoutError(f"the work did not finish within {limit_s} s of clock time")
            await self._fire_next()
        return task.result()
