"""Waiting with a deadline, without losing a cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(seconds: float, aw: Awaitable[T]) -> T:
    """Await `aw`; TimeoutError after `seconds`.

    Use this, not asyncio.wait_for: on Python 3.11, wait_for returns the result instead of
    raising when its task is cancelled in the same moment as the awaited thing completes, so a
    loop built on it can outlive the cancellation meant to stop it (the engine's dial loop did,
    and shutting down then waited forever). asyncio.timeout never swallows a cancellation.
    """
    async with asyncio.timeout(seconds):
        return await aw
