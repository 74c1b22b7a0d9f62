"""The pacing benchmark's simulator: it loads every shipped scenario and its books balance.

Not a speed or pacing goal (those are `make bench`'s): a check that the simulation counts what
PACING.md defines, so that the benchmark's figures can be trusted.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.pacing import day as sim
from bench.pacing import report, scenario
from campaigns import pacer


@pytest.mark.parametrize("path", sorted(scenario.SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_loads(path: Path) -> None:
    sc = scenario.Scenario.load(path)
    assert sc.operators in (5, 20, 50)
    assert sc.title
    assert 0 < sc.answer < 1


@pytest.mark.parametrize("mode", sim.MODES)
def test_a_simulated_hour_balances(mode: str) -> None:
    sc = replace(scenario.Scenario.load(scenario.SCENARIOS / "ops05-answer30-talk3.toml"), hours=1.0)
    day = sim.Day(sc, mode, pacer.Settings())
    res = day.run()
    assert res.placed > 0
    assert res.connected > 0
    assert len(res.live_times) == res.connected + res.abandoned
    assert len(res.waits) == res.connected
    assert not day.calls  # every call ended
    assert all(op.busy is None for op in day.ops)  # every operator finished
    handled = sum(op.handled_s for op in day.ops)
    assert 0 < handled <= sc.operators * 3600 * 1.2  # the last calls may run past the hour
    if mode == "preview":
        assert res.abandoned == 0  # the operator is on the line before the resident answers
    if mode == "predictive":
        assert res.decisions > 3000  # every second, and whenever something frees


def test_worst_hour_is_the_worst_window() -> None:
    live = [(t, False) for t in range(0, 7200, 60)]  # one live call a minute for two hours
    live[90] = (live[90][0], True)  # abandons at 1:30 and 1:31
    live[91] = (live[91][0], True)
    worst, abandoned, n = report.worst_hour(live, 0.0, 7200.0)
    assert (abandoned, n) == (2, 60)
    assert worst == pytest.approx(2 / 60)
