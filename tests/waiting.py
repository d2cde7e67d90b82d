"""Waits in tests: every one has a bound and says what it waited for when the bound passes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(predicate: Callable[[], object], *, within_s: float, what: str, every_s: float = 0.1) -> None:
    """Poll `predicate` (sync) every `every_s` until it is true; AssertionError naming `what` after `within_s`."""
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within_s:g} s for {what}")
        await asyncio.sleep(every_s)


def until_sync(predicate: Callable[[], object], *, within_s: float, what: str, every_s: float = 0.1) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within_s:g} s for {what}")
        time.sleep(every_s)
