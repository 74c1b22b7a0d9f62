"""AMI pipeline throughput: simulated PBX → AmiLink (panoramisk) → typed events → call tracker.

Originates a burst of calls that each answer and hang up quickly, and measures how fast the
whole event path keeps up. The simulated PBX runs in the same process, so the CPU figure covers
both sides; the reference point is the 810 events/s peak recorded from a real Asterisk 22 burst
(../shared/reference/asterisk-22/raw/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from dialer import logs
from dialer.ami.link import AmiLink, LinkEvent, OriginateRequest
from dialer.calls.tracker import CallChange, CallTracker, SessionChange
from dialer.simpbx import Behaviour, SimConfig, SimulatedPbx

CALLS = 300
RECORDED_PEAK_EVENTS_PER_S = 810


async def run(calls: int = CALLS) -> dict[str, Any]:
    pbx = SimulatedPbx(SimConfig(port=0))
    await pbx.start()
    ended = asyncio.Event()
    done: list[int] = []
    events = 0

    async def on_call(change: CallChange) -> None:
        if change.state.outcome is not None:
            done.append(change.attempt_id)
            if len(done) == calls:
                ended.set()

    async def on_session(change: SessionChange) -> None:
        pass

    def count(event: LinkEvent) -> None:
        nonlocal events
        events += 1

    tracker = CallTracker(on_call, on_session)
    link = AmiLink(pbx.ami_settings(action_timeout_s=30.0))
    link.subscribe(count)
    link.subscribe(tracker.on_event)
    await link.start()
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i in range(calls):
            number = f"03{50000000 + i}"
            pbx.script(number, Behaviour("answer", ring_s=0.05, talk_s=0.05))
            tracker.track_call(i, f"dlr-bench-{i}")
            await link.originate(
                OriginateRequest(
                    channel=f"PJSIP/{number}@trunk",
                    context="dialer-hold",
                    exten="s",
                    channel_id=f"dlr-bench-{i}",
                    caller_id="0312340001",
                    timeout_ms=30_000,
                    variables={"DIALER_ATTEMPT": str(i), "HOLDSEC": "0"},
                )
            )
        await asyncio.wait_for(ended.wait(), 120)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        await link.close()
        await pbx.stop()
    rate = events / wall
    return {
        "calls": calls,
        "events": events,
        "wall_s": round(wall, 3),
        "events_per_s": round(rate),
        "ratio_to_recorded_asterisk_peak": round(rate / RECORDED_PEAK_EVENTS_PER_S, 1),
        "cpu_ms_per_1000_calls_incl_simulator": round(cpu / calls * 1000 * 1000),
        "command": "make bench",
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=CALLS, help=f"calls in the burst (default {CALLS})")
    args = ap.parse_args()
    logs.configure("warning")
    if args.calls < 1:
        ap.error("--calls must be at least 1")
    print(json.dumps(asyncio.run(run(args.calls)), indent=2))
