"""A pacing scenario: residents' and operators' behaviour, read from bench/scenarios/*.toml."""

from __future__ import annotations

import math
import random
import tomllib
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).parent.parent / "scenarios"


def find(arg: Path) -> Path | None:
    """A scenario file given on a command line: a path, or a shipped one by file name or name."""
    for path in (arg, SCENARIOS / arg, SCENARIOS / f"{arg}.toml"):
        if path.is_file():
            return path
    return None


def shipped() -> str:
    return ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.toml")))


@dataclass(frozen=True)
class Dist:
    median: float
    sigma: float

    def draw(self, rng: random.Random) -> float:
        return self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0)) if self.sigma else self.median


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    operators: int
    hours: float
    seed: int
    answer: float
    answer_from_hour: tuple[tuple[float, float], ...]
    machine: float
    busy: float
    ring: Dist
    no_answer_s: float
    busy_s: Dist
    detect_human: Dist
    detect_machine: Dist
    false_machine: float
    false_person: float
    talk: Dist
    wrap: Dist
    machine_talk_s: float
    preview_s: float

    @classmethod
    def load(cls, path: Path) -> Scenario:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        title = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
        r, o = raw["residents"], raw["operators_time"]

        def dist(d: dict[str, float]) -> Dist:
            return Dist(float(d["median"]), float(d.get("sigma", 0.0)))

        changes = tuple(sorted((float(h), float(a)) for h, a in r.get("answer_from_hour", {}).items()))
        return cls(
            name=path.stem, title=title, operators=int(raw["operators"]), hours=float(raw["hours"]),
            seed=int(raw.get("seed", 1)), answer=float(r["answer"]), answer_from_hour=changes,
            machine=float(r["machine"]), busy=float(r["busy"]), ring=dist(r["ring_s"]),
            no_answer_s=float(r["no_answer_s"]), busy_s=dist(r["busy_s"]),
            detect_human=dist(r["detect_human_s"]), detect_machine=dist(r["detect_machine_s"]),
            false_machine=float(r["false_machine"]), false_person=float(r["false_person"]),
            talk=dist(o["talk_s"]), wrap=dist(o["wrap_s"]), machine_talk_s=float(o["machine_talk_s"]),
            preview_s=float(o["preview_s"]),
        )  # fmt: skip

    def answer_at(self, t_s: float) -> float:
        rate = self.answer
        for hour, a in self.answer_from_hour:
            if t_s >= hour * 3600:
                rate = a
        return rate
