"""The one place browser and network failures become the contract's errors, at every adapter's edge.

A Playwright timeout is PortalUnavailable "did not answer in time", any other Playwright error is
PortalUnavailable "browser or network error"; the contract's own errors pass as they are. Messages name
the step, never a value (they may be PHI). An adapter that keeps a tab set up between lookups passes
`reload_key`: after any failure but a claim's own (not found, ambiguous, mismatch: the screen is still
usable) the tab is marked to be set up afresh before its next use.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from core.errors import ClaimError, PortalError, PortalUnavailable

P = ParamSpec("P")
R = TypeVar("R")


@asynccontextmanager
async def portal_errors(what: str, on_failure: Callable[[], None] | None = None) -> AsyncIterator[None]:
    """Translate what the browser raises inside the block; `on_failure` runs on every failure but a
    claim's own."""
    try:
        yield
    except ClaimError:
        raise
    except PortalError:
        if on_failure is not None:
            on_failure()
        raise
    except PlaywrightTimeout as e:
        if on_failure is not None:
            on_failure()
        raise PortalUnavailable(f"{what}: the portal did not answer in time") from e
    except PlaywrightError as e:
        if on_failure is not None:
            on_failure()
        raise PortalUnavailable(f"{what}: browser or network error") from e


def at_the_edge(reload_key: str | None = None) -> Callable[
        [Callable[Concatenate[Any, Any, P], Awaitable[R]]], Callable[Concatenate[Any, Any, P], Awaitable[R]]]:
    """Decorate an adapter method `(self, session, ...)`: its errors translated (named after the method),
    and, with `reload_key`, the tab marked for a fresh set-up (`session.page_state()[reload_key] = True`)."""

    def decorate(fn: Callable[Concatenate[Any, Any, P], Awaitable[R]]) -> Callable[Concatenate[Any, Any, P], Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(self: Any, session: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
            def mark() -> None:
                session.page_state()[reload_key] = True

            async with portal_errors(fn.__name__, mark if reload_key else None):
                return await fn(self, session, *args, **kwargs)

        return wrapper

    return decorate
