"""The predictive pacer: decisions at edge states, from tables (pure, no I/O)."""

from __future__ import annotations

import random

import pytest

from campaigns import forecast, pacer
from campaigns.forecast import Busy, Call, Operator, Phase
from campaigns.pacer import Snapshot, Window

READY = Operator()


def history(hit: float = 0.25, calls: int = 200, talk_s: float = 180.0) -> forecast.Model:
    """A campaign's recent calls: `hit` of them reached a person after 8 s (+2.4 s detection),
    5 % reached machines, the rest rang out after 28 s; conversations of about `talk_s`."""
    live = round(hit * calls)
    machines = round(0.05 * calls)
    dialed = [forecast.Dialed(6.0 + 4.0 * i / live, True, True, 2.4) for i in range(live)]
    dialed += [forecast.Dialed(8.0, True, False, 4.0)] * machines
    dialed += [forecast.Dialed(28.0, False, False)] * (calls - live - machines)
    handled = [forecast.Handled(talk_s * (0.5 + i / 50), 15.0 + i % 10) for i in range(50)]
    return forecast.Model.learn(dialed, handled)


THIN = forecast.Model.learn([forecast.Dialed(8.0, True, True, 2.4)] * 5, [forecast.Handled(100.0, 20.0)] * 3)
DEFAULT = pacer.Settings()


WARM_DAY = Window(60, 0)  # live calls enough for one abandon to stay under 3 % (pacer._room_for_one)


def snap(
    ops: list[Operator], calls: list[Call] | None = None, waiting: int = 0, **windows: Window
) -> Snapshot:
    return Snapshot(ops, calls or [], waiting=waiting, **{"day": WARM_DAY, **windows})


@pytest.mark.parametrize(
    ("name", "snapshot", "model", "settings", "place", "mode", "reason"),
    [
        ("nobody logged in", snap([]), history(), DEFAULT, 0, "progressive", "no_operators"),
        ("start of day: one call per ready operator", snap([READY] * 3), THIN, DEFAULT, 3, "progressive", "thin_history"),
        ("start of day: calls in flight count", snap([READY] * 3, [Call(Phase.RINGING, 1)]), THIN, DEFAULT, 2, "progressive", "thin_history"),
        ("start of day: more in flight than ready", snap([READY], [Call(Phase.RINGING, 1)] * 2), THIN, DEFAULT, 0, "progressive", "thin_history"),
        ("hour's budget spent (2 of 60)", snap([READY] * 4, hour=Window(60, 2)), history(), DEFAULT, 4, "progressive", "budget_spent"),
        ("day's budget spent (7 of 200)", snap([READY] * 4, day=Window(200, 7)), history(), DEFAULT, 4, "progressive", "budget_spent"),
        ("new day: one abandon would be 1 of 33 (3.03 %)", snap([READY] * 4, day=Window(32, 0)), history(), DEFAULT, 4, "progressive", "few_live_calls"),
        ("new day: 40 live calls carry one abandon", snap([READY] * 4, day=Window(40, 0)), history(), DEFAULT, 6, "predictive", "risk"),
        ("a second abandon waits for ~70 live calls", snap([READY] * 4, day=Window(60, 1)), history(), DEFAULT, 4, "progressive", "few_live_calls"),
        ("target 0 %: never beyond progressive", snap([READY] * 4), history(), pacer.Settings(target_abandon=0), 4, "progressive", "budget_spent"),
        ("a person waiting takes the one ready operator", snap([READY], [Call(Phase.WAITING)]), history(), DEFAULT, 0, "predictive", "risk"),
        ("a resident calling in is given the one ready operator first", snap([READY], waiting=1), history(), DEFAULT, 0, "predictive", "risk"),
        ("start of day: callers waiting take ready operators first", snap([READY] * 3, waiting=1), THIN, DEFAULT, 2, "progressive", "thin_history"),
        ("start of day: more callers waiting than operators ready", snap([READY] * 2, waiting=3), THIN, DEFAULT, 0, "progressive", "thin_history"),
        ("everyone just started talking", snap([Operator(Busy.TALKING, 1.0)] * 10), history(), DEFAULT, 0, "predictive", "risk"),
        ("lines cap: 1 line per operator, 8 of 10 in flight", snap([READY] * 10, [Call(Phase.RINGING, 1)] * 8), history(hit=0.1), pacer.Settings(max_lines_per_operator=1), 2, "predictive", "lines_cap"),
        ("lines cap already reached", snap([READY] * 2, [Call(Phase.RINGING, 1)] * 6), history(hit=0.1), DEFAULT, 0, "predictive", "lines_cap"),
    ],
)  # fmt: skip
def test_decisions_at_edge_states(
    name: str,
    snapshot: Snapshot,
    model: forecast.Model,
    settings: pacer.Settings,
    place: int,
    mode: str,
    reason: str,
) -> None:
    d = pacer.decide(snapshot, model, settings)
    assert (d.place, d.mode.value, d.reason) == (place, mode, reason), name


def _calls(rates: list[tuple[float, int]], seed: int = 3) -> list[forecast.Dialed]:
    """Calls oldest first: for each (answer rate, n), n calls answered by a person at that rate."""
    rng = random.Random(seed)
    return [
        forecast.Dialed(8.0, True, True, 2.4) if rng.random() < rate else forecast.Dialed(28.0, False, False)
        for rate, n in rates
        for _ in range(n)
    ]


@pytest.mark.parametrize(
    ("rates", "learnt_from"),
    [
        ([(0.15, 600)], 600),  # steady: every call
        ([(0.15, 450), (0.45, 150)], 150),  # people started answering more: the latest calls only
        ([(0.45, 450), (0.15, 150)], 600),  # fewer answer now: all (the older calls err on the safe side)
        ([(0.15, 200), (0.45, 50)], 250),  # too few calls to tell a change from chance
    ],
)
def test_the_model_follows_a_rise_in_answers_not_chance(
    rates: list[tuple[float, int]], learnt_from: int
) -> None:
    model = forecast.Model.learn(_calls(rates), [forecast.Handled(100.0, 20.0)] * 20)
    assert model.dialed == learnt_from
    if learnt_from == 150:
        assert model.hit_rate == pytest.approx(0.45, abs=0.1)


def test_a_steady_answer_rate_rarely_looks_like_a_rise() -> None:
    histories = [_calls([(0.3, 600)], seed) for seed in range(200)]
    mistaken = sum(forecast.Model.learn(h, []).dialed != 600 for h in histories)
    assert mistaken <= 2  # a 2.5-spread rise by chance: well under 1 in 100 histories


def test_more_calls_than_ready_operators_when_few_answer() -> None:
    d = pacer.decide(snap([READY] * 10), history(hit=0.3), DEFAULT)
    assert d.mode is pacer.Mode.PREDICTIVE
    assert 10 < d.place < 30  # beyond progressive, within 3 lines per operator
    assert d.risk > d.threshold  # stopped by the risk of the next call, not by the cap


@pytest.mark.parametrize(("low", "high"), [(0.10, 0.20), (0.20, 0.35), (0.35, 0.50)])
def test_a_higher_answer_rate_places_fewer_calls(low: float, high: float) -> None:
    s = snap([READY] * 10 + [Operator(Busy.WRAP_UP, 10.0)] * 10)
    assert (
        pacer.decide(s, history(hit=high), DEFAULT).place < pacer.decide(s, history(hit=low), DEFAULT).place
    )


def test_operators_about_to_finish_are_dialled_for_before_they_are_free() -> None:
    model = history()
    starting = pacer.decide(snap([Operator(Busy.WRAP_UP, 0.0)] * 10), model, DEFAULT)
    finishing = pacer.decide(snap([Operator(Busy.WRAP_UP, 20.0)] * 10), model, DEFAULT)
    assert starting.place < finishing.place


def test_callers_waiting_get_the_operators_about_to_finish_before_the_campaign() -> None:
    """Residents calling in are given the first operators freed (campaigns.inbound): the pacer
    does not dial for those operators, and with more callers than it expects to free, not at all."""
    model = history()
    finishing = snap([Operator(Busy.WRAP_UP, 20.0)] * 10)
    places = [pacer.decide(snap(finishing.operators, waiting=w), model, DEFAULT).place for w in (0, 1, 3, 10)]
    assert places[0] > places[1] > places[2] > 0
    assert places[3] == 0
    # with one ready operator too, a caller waiting leaves the campaign what it had with none ready
    with_ready = snap([READY, *finishing.operators], waiting=1)
    assert pacer.decide(with_ready, model, DEFAULT).place == places[0]


def test_calls_ringing_past_every_answer_do_not_hold_back_new_ones() -> None:
    model = history()
    fresh = pacer.decide(snap([READY] * 5, [Call(Phase.RINGING, 1.0)] * 5), model, DEFAULT)
    stale = pacer.decide(snap([READY] * 5, [Call(Phase.RINGING, 27.0)] * 5), model, DEFAULT)
    assert model.live_chance(Call(Phase.RINGING, 27.0)) == 0.0
    assert stale.place > fresh.place


def test_live_chance_falls_as_a_call_rings_on_and_detection_uses_the_person_share() -> None:
    model = history(hit=0.25)
    assert model.live_chance(Call(Phase.RINGING, 0.0)) == pytest.approx(0.25)
    assert model.live_chance(Call(Phase.RINGING, 8.0)) < model.live_chance(Call(Phase.RINGING, 0.0))
    assert model.live_chance(Call(Phase.DETECTING, 1.0)) == pytest.approx(50 / 60)
    assert model.live_chance(Call(Phase.WAITING)) == 1.0


def test_release_chance_from_the_talk_time_already_spent() -> None:
    model = history(talk_s=100.0)  # talk 50..148 s, wrap 15..24 s
    assert model.release_chance(Operator(Busy.TALKING, 10.0), 5.0) == 0.0
    assert model.release_chance(Operator(Busy.TALKING, 140.0), 40.0) == 1.0
    assert 0 < model.release_chance(Operator(Busy.TALKING, 100.0), 30.0) < 1
    assert model.release_chance(Operator(Busy.WRAP_UP, 30.0), 5.0) == 0.0  # longer than ever seen
    assert model.release_chance(Operator(Busy.WRAP_UP, 20.0), 10.0) == 1.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_live_answer_added_carries_at_most_the_threshold_in_abandons(seed: int) -> None:
    """The rule's claim checked by brute force: draw the snapshot's chances many times and
    compare expected abandons with and without the calls the pacer placed."""
    rng = random.Random(seed)
    model = history(hit=0.2)
    while True:  # a busy floor on which the pacer places calls
        ops = [READY] * rng.randint(0, 3)
        ops += [Operator(Busy.TALKING, rng.uniform(0, 300)) for _ in range(rng.randint(3, 12))]
        ops += [Operator(Busy.WRAP_UP, rng.uniform(0, 25)) for _ in range(rng.randint(0, 5))]
        calls = [Call(Phase.RINGING, rng.uniform(0, 27)) for _ in range(rng.randint(0, 8))]
        waiting = rng.randint(0, 2)  # residents calling in: the first operators freed are theirs
        d = pacer.decide(snap(ops, calls, waiting), model, DEFAULT)
        if d.place > 1:
            break
    assert d.mode is pacer.Mode.PREDICTIVE
    ready = sum(op.busy is None for op in ops)
    x_p = [model.live_chance(c) for c in calls]
    y_p = [model.release_chance(op, model.horizon_s) for op in ops if op.busy is not None]
    trials, without, with_new = 40_000, 0, 0
    for _ in range(trials):
        x = sum(rng.random() < p for p in x_p)
        y = max(0, ready + sum(rng.random() < q for q in y_p) - waiting)
        new = sum(rng.random() < model.hit_rate for _ in range(d.place))
        without += max(0, x - y)
        with_new += max(0, x + new - y)
    added_live = d.place * model.hit_rate
    assert (with_new - without) / trials / added_live <= d.threshold + 0.01


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"target_abandon": 0.05}, "target_abandon"),
        ({"target_abandon": -0.01}, "target_abandon"),
        ({"max_lines_per_operator": 0.5}, "max_lines_per_operator"),
        ({"max_lines_per_operator": 11}, "max_lines_per_operator"),
        ({"max_lines_per_operator": True}, "max_lines_per_operator"),
        ({"target_abandon": "3%"}, "target_abandon"),
        ({"lines": 2}, "lines"),
    ],
)
def test_settings_out_of_range_are_refused_by_name(raw: dict[str, object], key: str) -> None:
    with pytest.raises(pacer.PacerError) as err:
        pacer.Settings.parse(raw)
    assert err.value.key == key


def test_settings_parse_defaults_and_values() -> None:
    assert pacer.Settings.parse(None) == pacer.Settings()
    assert pacer.Settings.parse({"target_abandon": 0.02, "max_lines_per_operator": 2}) == pacer.Settings(
        target_abandon=0.02, max_lines_per_operator=2.0
    )


def test_people_amd_takes_for_machines_are_charged_to_the_budget() -> None:
    """They are hung up on unseen: with more of them assumed, the same hour leaves less budget."""
    s = snap([READY] * 10 + [Operator(Busy.WRAP_UP, 10.0)] * 10, hour=Window(100, 2))
    unseen = [pacer.threshold(s, pacer.Settings(amd_false_machine=f)) for f in (0.0, 0.005, 0.02)]
    assert unseen[0] > unseen[1] > unseen[2] == 0.0  # 2 seen + 2 unseen of 102: over 3 %
    assert pacer.decide(s, history(), pacer.Settings(amd_false_machine=0.02)).reason == "budget_spent"
    assert pacer.decide(s, history(), pacer.Settings(amd_false_machine=0.0)).mode is pacer.Mode.PREDICTIVE


WRAP_10, WRAP_2 = Operator(Busy.WRAP_UP, 10.0), Operator(Busy.WRAP_UP, 2.0)
TALK_5, TALK_300 = Operator(Busy.TALKING, 5.0), Operator(Busy.TALKING, 300.0)


@pytest.mark.parametrize(
    ("waiting", "groups", "shares"),
    [
        (0, [[WRAP_10], [TALK_5]], [0, 0]),
        (1, [[], []], [0, 0]),  # nobody to wait for
        (1, [[WRAP_10], [TALK_5, TALK_300]], [1, 0]),  # the one wrapping up is freed first
        (1, [[TALK_300], [WRAP_2]], [0, 1]),
        (1, [[TALK_5], [TALK_300]], [0, 1]),  # the longer talk ends first
        (1, [[WRAP_2], [WRAP_10]], [0, 1]),
        (1, [[READY], [WRAP_10]], [1, 0]),  # a ready operator takes the caller now
        (1, [[WRAP_10], [WRAP_10], []], [1, 0, 0]),  # a tie to the earlier group: one share in all
        (2, [[WRAP_10, TALK_5], [WRAP_2]], [1, 1]),
        (3, [[WRAP_10, TALK_5], [WRAP_2]], [2, 1]),
        (3, [[WRAP_10], []], [3, 0]),  # more callers than operators: all of them wait for the one
        (5, [[WRAP_10], [TALK_5]], [3, 2]),  # the extra callers take them again, in the same order
    ],
)
def test_callers_waiting_take_the_operators_freed_first_in_a_department(
    waiting: int, groups: list[list[Operator]], shares: list[int]
) -> None:
    assert pacer.share(waiting, groups) == shares


def test_callers_waiting_shares_sum_to_the_callers() -> None:
    rng = random.Random(7)
    kinds = [READY, WRAP_10, WRAP_2, TALK_5, TALK_300]
    for _ in range(2000):
        groups = [[rng.choice(kinds) for _ in range(rng.randrange(0, 5))] for _ in range(rng.randrange(1, 5))]
        waiting = rng.randrange(0, 15)
        shares = pacer.share(waiting, groups)
        operators = sum(map(len, groups))
        assert sum(shares) == (waiting if operators else 0)
        for ops, n in zip(groups, shares, strict=True):
            assert n <= len(ops) * -(-waiting // max(1, operators))  # no group takes more than its turns
