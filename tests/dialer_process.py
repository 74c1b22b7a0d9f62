"""A whole dialer in a process of its own, for tests that kill it (SIGKILL) mid-campaign.

    python -m tests.dialer_process '{"dsn": ..., "var_dir": ..., "ami": {...}, "heartbeat_s": 1}'

Prints {"url": ...} on one line once it serves, then runs until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from typing import Any

from dialer import config, logs, runtime
from dialer.config import AmiSettings


async def main(spec: dict[str, Any]) -> None:
    logs.configure("warning", "console")
    base = config.load({"DIALER_VAR_DIR": spec["var_dir"]})
    settings = replace(
        base,
        database_url=spec["dsn"],
        ami=AmiSettings(**spec["ami"]),
        http_port=0,
        agi_port=0,
        simulated_callees=True,
        heartbeat_s=float(spec.get("heartbeat_s", 1.0)),
        dialplan=replace(base.dialplan, ring_timeout_s=2),
    )
    async with runtime.started(settings) as running:
        print(json.dumps({"url": running.url}), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
