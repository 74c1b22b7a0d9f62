"""python -m bench.pacing [SCENARIO.toml ...] [--modes predictive,progressive] [--hours H] [--seeds N] [--json FILE]"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import log
from bench.pacing import __doc__ as DOC
from bench.pacing import scenario
from bench.pacing.day import MODES
from bench.pacing.report import run
from campaigns import pacer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", type=Path)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--hours", type=float)
    ap.add_argument("--boldness", type=float, default=pacer.Settings().boldness)
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument(
        "--no-baselines", action="store_true", help="skip the hand-tuned fixed-ratio baselines (a sweep each)"
    )
    ap.add_argument(
        "--seeds", type=int, default=0,
        help="also run predictive and progressive on N more days of each scenario (seed + 1 … + N)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.seeds < 0:
        ap.error("--seeds must be 0 or more")
    paths = [scenario.find(a) for a in args.scenarios]
    for arg, path in zip(args.scenarios, paths, strict=True):
        if path is None:
            ap.error(f"no scenario {arg}; shipped: {scenario.shipped()}")
    settings = pacer.Settings(boldness=args.boldness)
    results = run(
        [p for p in paths if p] or None, tuple(args.modes.split(",")), settings, args.hours,
        log=log, baselines=not args.no_baselines, seeds=args.seeds,
    )  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results["goals"], indent=2))
    return 0


raise SystemExit(main())
