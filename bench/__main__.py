"""Run every benchmark and write bench/results/latest.json."""

from __future__ import annotations

import asyncio
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import ami_pipeline, engine, log, pacing
from dialer import logs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
OTHER_DAYS = 5  # each pacing scenario's predictive and progressive on five more seeds


def _alone(module: str, *args: str) -> dict[str, object]:
    """A benchmark in a fresh process of its own: its peak memory is its own (ru_maxrss is the
    whole process's peak, and the benchmarks before it here use more than the importer), and
    bench.engine_day --virtual re-executes itself under libfaketime."""
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def main() -> int:
    logs.configure("warning")
    RESULTS.mkdir(exist_ok=True)
    results = {
        "pacing": pacing.run(log=log, seeds=OTHER_DAYS),
        "engine": asyncio.run(engine.run(log=log)),
        "engine_day": _alone("bench.engine_day", "--virtual"),  # the scenario's whole day
        "ami_pipeline": asyncio.run(ami_pipeline.run()),
        "imports": _alone("bench.imports"),
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
