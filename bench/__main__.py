"""Run every benchmark and write bench/results/latest.json."""

from __future__ import annotations

import asyncio
import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import ami_pipeline, engine, engine_day, imports, pacing
from dialer import logs

RESULTS = Path(__file__).parent / "results"


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> int:
    logs.configure("warning")
    RESULTS.mkdir(exist_ok=True)
    results = {
        "pacing": pacing.run(log=_log),
        "engine": asyncio.run(engine.run(log=_log)),
        "engine_day": asyncio.run(engine_day.run(log=_log)),
        "ami_pipeline": asyncio.run(ami_pipeline.run()),
        "imports": asyncio.run(imports.run()),
    }
    pacing.plot(results["pacing"], RESULTS / "pacing.png")
    results["pacing"]["plot"] = "bench/results/pacing.png"
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "results": results,
    }
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


raise SystemExit(main())
