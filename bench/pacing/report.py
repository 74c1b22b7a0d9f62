"""The figures of a pacing run (PACING.md's definitions) and the goals they are judged on."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.pacing.day import BASELINES, MODES, Day
from bench.pacing.scenario import SCENARIOS, Scenario
from campaigns import pacer


def worst_hour(live: list[tuple[float, bool]], start: float, end: float) -> tuple[float, int, int]:
    """The highest abandon rate over any one-hour window ending inside the day (and its counts)."""
    worst, counts = 0.0, (0, 0)
    lo = 0
    abandoned = 0
    for hi, (t, a) in enumerate(live):
        abandoned += a
        while live[lo][0] <= t - 3600:
            abandoned -= live[lo][1]
            lo += 1
        if t < start + 3600 and end - start >= 3600:
            continue
        n = hi - lo + 1
        if abandoned / n > worst:
            worst, counts = abandoned / n, (abandoned, n)
    return worst, counts[0], counts[1]


def summarise(day: Day, wall_s: float) -> dict[str, Any]:
    sc, res = day.sc, day.res
    logged_in_s = sc.operators * sc.hours * 3600
    handled_s = sum(op.handled_s for op in day.ops)  # including the last calls that ran past the end
    live = res.connected + res.abandoned
    waits = sorted(res.waits)
    worst, w_ab, w_live = worst_hour(res.live_times, 0.0, sc.hours * 3600)
    return {
        "abandon_rate": round(res.abandoned / live, 4) if live else 0.0,
        "worst_hour_abandon_rate": round(worst, 4),
        "worst_hour": f"{w_ab}/{w_live}",
        "occupancy": round(handled_s / logged_in_s, 3),
        "busy_minutes_per_hour": round(60 * handled_s / logged_in_s, 1),
        "wait_between_calls_s": {
            "median": round(statistics.median(waits), 1) if waits else None,
            "p90": round(waits[int(0.9 * (len(waits) - 1))], 1) if waits else None,
        },
        "connects_per_operator_hour": round(res.connected / (sc.operators * sc.hours), 2),
        "hit_rate": round(live / res.placed, 3) if res.placed else 0.0,
        "placed": res.placed,
        "connected": res.connected,
        "abandoned": res.abandoned,
        "logged_in_h": round(logged_in_s / 3600, 1),
        "pacer": (
            {
                "decisions": res.decisions,
                "cpu_ms_per_decision": round(1000 * res.pacer_cpu_s / res.decisions, 3),
                "progressive_share": round(res.share("progressive"), 3),
            }
            if res.decisions
            else None
        ),
        "simulated_in_s": round(wall_s, 2),
    }


def run_one(sc: Scenario, mode: str, settings: pacer.Settings) -> dict[str, Any]:
    started = time.perf_counter()
    day = Day(sc, mode, settings)
    day.run()
    return summarise(day, time.perf_counter() - started)


def over_seeds(sc: Scenario, settings: pacer.Settings, n: int) -> dict[str, Any]:
    """Predictive and progressive on `n` more days of the scenario (its seed + 1 … + n): one day's
    worst hour is chance (a handful of abandons in ~60–400 live calls), so a change to the pacer
    is judged by how many days break 3 %, not by the shipped seed's day alone."""
    seeds = [sc.seed + k for k in range(1, n + 1)]
    days = [
        {mode: run_one(replace(sc, seed=seed), mode, settings) for mode in ("predictive", "progressive")}
        for seed in seeds
    ]
    pred = [d["predictive"] for d in days]
    ratios = [d["predictive"]["occupancy"] / d["progressive"]["occupancy"] for d in days]
    return {
        "seeds": seeds,
        "predictive_days_over_3pct": sum(m["abandon_rate"] > 0.03 for m in pred),
        "predictive_days_worst_hour_over_3pct": sum(m["worst_hour_abandon_rate"] > 0.03 for m in pred),
        "progressive_days_worst_hour_over_3pct": sum(
            d["progressive"]["worst_hour_abandon_rate"] > 0.03 for d in days
        ),
        "predictive_abandon_rate": _spread([m["abandon_rate"] for m in pred]),
        "predictive_worst_hour_abandon_rate": _spread([m["worst_hour_abandon_rate"] for m in pred]),
        "predictive_occupancy": _spread([m["occupancy"] for m in pred]),
        "occupancy_predictive_over_progressive": _spread(ratios),
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 4),
        "mean": round(statistics.fmean(values), 4),
        "max": round(max(values), 4),
    }


# The settings a supervisor could choose from, for the hand-tuned baselines (PACING.md)
GRIDS = {
    "ratio": [round(1 + 0.1 * i, 1) for i in range(91)],  # 1.0 … 10.0 calls per ready operator
    "level": [round(1 + 0.1 * i, 1) for i in range(21)],  # VICIdial's dial level 1.0 … 3.0
}


def hindsight(sc: Scenario, baseline: str) -> dict[str, Any]:
    """The baseline tuned with hindsight, from one scan of its settings downwards:

    "best": its highest setting whose day and worst hour stay ≤ 3 % (PACING.md's yardstick);
    "day_rule_only": its highest setting whose day stays ≤ 3 % (the 24-hour rule alone, however
    bad an hour): the most a supervisor could get from it by using the whole legal budget;
    "top": its highest setting, whatever it abandons (how far the baseline goes at all).
    Each is None when no setting meets it.
    """
    found: dict[str, Any] = {"best": None, "day_rule_only": None, "top": None}
    for setting in reversed(GRIDS[baseline]):
        day = Day(sc, baseline, pacer.Settings(), ratio=setting)
        day.run()
        m = {"setting": setting} | {
            k: v for k, v in summarise(day, 0.0).items() if k not in ("pacer", "simulated_in_s")
        }
        found["top"] = found["top"] or m
        if m["abandon_rate"] <= 0.03:
            found["day_rule_only"] = found["day_rule_only"] or m
            if m["worst_hour_abandon_rate"] <= 0.03:
                found["best"] = m
                break
    return found


def run(
    paths: list[Path] | None = None, modes: tuple[str, ...] = MODES, settings: pacer.Settings | None = None,
    hours: float | None = None, log: Callable[[str], None] | None = None, baselines: bool = True,
    seeds: int = 0,
) -> dict[str, Any]:  # fmt: skip
    settings = settings or pacer.Settings()
    paths = paths or sorted(SCENARIOS.glob("*.toml"))
    scenarios: dict[str, Any] = {}
    for path in paths:
        sc = Scenario.load(path)
        if hours is not None:
            sc = replace(sc, hours=hours)
        per_mode = {mode: run_one(sc, mode, settings) for mode in modes}
        entry: dict[str, Any] = {"title": sc.title, "operators": sc.operators, "modes": per_mode}
        if "predictive" in per_mode and "progressive" in per_mode and per_mode["progressive"]["occupancy"]:
            entry["occupancy_predictive_over_progressive"] = round(
                per_mode["predictive"]["occupancy"] / per_mode["progressive"]["occupancy"], 2
            )
        if baselines and "predictive" in per_mode:
            tuned = {b: hindsight(sc, b) for b in BASELINES}
            entry["baselines"] = {b: t["best"] for b, t in tuned.items()}
            entry["baselines_day_rule_only"] = {b: t["day_rule_only"] for b, t in tuned.items()}
            entry["baselines_top_setting"] = {b: _brief(t["top"]) for b, t in tuned.items()}
            best = max((b["occupancy"] for b in entry["baselines"].values() if b), default=None)
            if best:
                entry["occupancy_predictive_over_best_baseline"] = round(
                    per_mode["predictive"]["occupancy"] / best, 3
                )
            progressive = per_mode.get("progressive", {}).get("occupancy")
            legal = max(
                (b["occupancy"] for b in entry["baselines_day_rule_only"].values() if b), default=None
            )
            if legal and progressive:
                entry["occupancy_best_baseline_day_rule_only_over_progressive"] = round(
                    legal / progressive, 2
                )
        if seeds > 0:
            entry["other_days"] = over_seeds(sc, settings, seeds)
        scenarios[sc.name] = entry
        if log:
            log(_line(sc.name, entry))
    return {
        "settings": {
            "target_abandon": settings.target_abandon,
            "max_lines_per_operator": settings.max_lines_per_operator,
            "boldness": settings.boldness,
        },
        "scenarios": scenarios,
        "goals": _goals(scenarios),
        "command": "make bench (or: .venv/bin/python -m bench.pacing)",
    }


def _goals(scenarios: dict[str, Any]) -> dict[str, Any]:
    pred = {n: s["modes"]["predictive"] for n, s in scenarios.items() if "predictive" in s["modes"]}
    if not pred or not all("progressive" in s["modes"] for s in scenarios.values()):
        return {"not_judged": "the goals compare predictive with progressive: run both modes"}
    ratios = {
        n: s.get("occupancy_predictive_over_progressive")
        for n, s in scenarios.items()
        if s["operators"] >= 20 and "occupancy_predictive_over_progressive" in s
    }
    return {
        "predictive_abandon_at_most_3pct_every_scenario": all(
            p["abandon_rate"] <= 0.03 for p in pred.values()
        ),
        "predictive_worst_hour_at_most_3pct_every_scenario": all(
            p["worst_hour_abandon_rate"] <= 0.03 for p in pred.values()
        ),
        # the other days (--seeds): the 24-hour rule on each, and how many break 3 % in some hour
        **(
            {
                "predictive_abandon_at_most_3pct_every_other_day": all(
                    s["other_days"]["predictive_days_over_3pct"] == 0 for s in scenarios.values()
                ),
                "predictive_days_worst_hour_over_3pct": {
                    n: f"{s['other_days']['predictive_days_worst_hour_over_3pct']}/{len(s['other_days']['seeds'])}"
                    for n, s in scenarios.items()
                },
            }
            if all("other_days" in s for s in scenarios.values())
            else {}
        ),
        "occupancy_ratio_at_least_1_3_with_20_or_more_operators": all(
            r is not None and r >= 1.3 for r in ratios.values()
        ),
        "occupancy_ratios_20_or_more_operators": ratios,
        # Where 1.3x is out of reach: more than every minute busy, or more than the best fixed ratio
        # reaches when allowed the whole 24-hour budget (3 % of the day, however bad an hour)
        "occupancy_1_3x_progressive_would_be": {
            n: round(1.3 * s["modes"]["progressive"]["occupancy"], 3)
            for n, s in scenarios.items()
            if n in ratios
        },
        "occupancy_best_baseline_day_rule_only_over_progressive": {
            n: s["occupancy_best_baseline_day_rule_only_over_progressive"]
            for n, s in scenarios.items()
            if n in ratios and "occupancy_best_baseline_day_rule_only_over_progressive" in s
        },
        # PACING.md's own bar: 5 % above the best hand-tuned baseline, and ≥ 0.90 with 20+ operators
        "predictive_5pct_above_best_baseline_every_scenario": all(
            s.get("occupancy_predictive_over_best_baseline", 0.0) >= 1.05
            for s in scenarios.values()
            if "baselines" in s
        ),
        "occupancy_predictive_over_best_baseline": {
            n: s["occupancy_predictive_over_best_baseline"]
            for n, s in scenarios.items()
            if "occupancy_predictive_over_best_baseline" in s
        },
        "predictive_occupancy_at_least_0_90_with_20_or_more_operators": all(
            p["occupancy"] >= 0.90 for n, p in pred.items() if scenarios[n]["operators"] >= 20
        ),
    }


def _brief(m: dict[str, Any] | None) -> dict[str, Any] | None:
    keys = ("setting", "occupancy", "abandon_rate", "worst_hour_abandon_rate")
    return {k: m[k] for k in keys} if m else None


def _line(name: str, entry: dict[str, Any]) -> str:
    parts = [f"{name:28}"]
    for mode, m in entry["modes"].items():
        parts.append(
            f"{mode[:4]} occ {m['occupancy']:.3f} ab {100 * m['abandon_rate']:.2f}% "
            f"worst-h {100 * m['worst_hour_abandon_rate']:.2f}% wait p50 {m['wait_between_calls_s']['median']}s"
        )
    if "occupancy_predictive_over_progressive" in entry:
        parts.append(f"x{entry['occupancy_predictive_over_progressive']}")
    for name, b in entry.get("baselines", {}).items():
        parts.append(f"{name} {b['setting']}: occ {b['occupancy']:.3f}" if b else f"{name}: none legal")
    if "occupancy_predictive_over_best_baseline" in entry:
        parts.append(f"x{entry['occupancy_predictive_over_best_baseline']} over best baseline")
    if other := entry.get("other_days"):
        parts.append(
            f"{len(other['seeds'])} other days: worst-h > 3% on {other['predictive_days_worst_hour_over_3pct']}, "
            f"day max {100 * other['predictive_abandon_rate']['max']:.2f}%, "
            f"x{other['occupancy_predictive_over_progressive']['mean']:.2f} mean"
        )
    return " | ".join(parts)
