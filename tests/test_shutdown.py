"""The product stops when told to, whatever it was doing at that moment."""

from __future__ import annotations

import asyncio
import contextlib

from dialer import runtime
from dialer.aio import within


async def test_the_engine_stops_when_its_dial_loop_was_woken_at_the_same_moment(
    product: runtime.Running,
) -> None:
    # The dial loop waits for the floor's wake-up or a second, whichever comes first. A wake-up in
    # the same moment as the stop (an operator turning ready as the dialer shuts down) must not
    # swallow the stop: asyncio.wait_for does on Python 3.11 when its inner wait completes as the
    # task is cancelled, and the loop then ran on, leaving `stop` (and the shutdown) waiting forever.
    await asyncio.sleep(0.2)  # the dial loop is idle, waiting
    product.engine.floor.wake.set()
    stopping = asyncio.ensure_future(product.engine.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5.0)
    assert stopping in done, "the engine did not stop"
    stopping.result()


async def test_a_deadline_never_swallows_a_cancellation() -> None:
    """dialer.aio.within, which every loop of ours waits with: cancelled in the same moment as what
    it awaits completes, the task still stops."""
    woken = asyncio.Event()

    async def loop() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await within(1.0, woken.wait())
            woken.clear()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.05)
    woken.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=3.0)
    assert task in done
    assert task.cancelled()
