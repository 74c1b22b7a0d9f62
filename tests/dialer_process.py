"""A whole dialer in a process of its own, for tests that kill it (SIGKILL) mid-campaign.

    python -m tests.dialer_process '{"dsn": ..., "var_dir": ..., "ami": {...}, "heartbeat_s": 1}'

Prints {"url": ..., "agi_port": ...} on one line once it serves, then runs until killed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from dialer import config, logs, runtime
from dialer.config import AmiSettings, Settings

ROOT = Path(__file__).resolve().parents[1]


async def spawn(
    settings: Settings, var_dir: Path, heartbeat_s: int = 1
) -> tuple[asyncio.subprocess.Process, str]:
    """Start a dialer in a child process against these settings' database and PBX (its own
    `var_dir`); returns the process, to kill, and the URL its pages are served on."""
    assert settings.ami is not None
    assert settings.database_url is not None
    spec = {
        "dsn": settings.database_url,
        "var_dir": str(var_dir),
        "ami": dataclasses.asdict(settings.ami),
        "heartbeat_s": heartbeat_s,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.dialer_process", json.dumps(spec),
        cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    started = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
    proc.agi_port = started["agi_port"]  # type: ignore[attr-defined]  # where its FastAGI listens
    return proc, started["url"]


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
        print(json.dumps({"url": running.url, "agi_port": running.agi_port}), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
