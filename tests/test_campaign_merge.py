"""The campaign form's merge (pure): a page left open writes only what was changed on it, and a
setting changed on it and, differently, elsewhere meanwhile is refused (web/campaign_form.merge)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console_forms import everything
from web import campaign_form


def _settings(status: str = "active", lines: str = "", operators: tuple[str, ...] = ()) -> Any:
    form: dict[str, list[str]] = {}
    for k, v in everything(status=status, max_lines=lines):
        form.setdefault(k, []).append(v)
    form["operators"] = list(operators)
    parsed = campaign_form.read(form)
    assert parsed.errors == {}
    return parsed


@pytest.mark.parametrize(
    ("posted", "base", "stored", "written", "clash"),
    [
        # opened active; paused elsewhere; lines changed here: only the lines are written
        (("active", "3"), ("active", ""), ("paused", ""), ["pacing"], []),
        # nothing changed here: nothing written, whatever happened elsewhere
        (("active", ""), ("active", ""), ("paused", "4"), [], []),
        # both changed the lines, differently: refused
        (("active", "3"), ("active", ""), ("active", "4"), [], ["pacing"]),
        # both changed them alike: no clash
        (("active", "3"), ("active", ""), ("active", "3"), ["pacing"], []),
        # no base (a form from before the check): everything posted is meant
        (("active", ""), None, ("paused", ""), [
            "caller_id", "calling_window", "dial_mode", "machine_message", "name", "operators", "pacing",
            "retry_policy", "script", "segment", "status"], []),
    ],
)  # fmt: skip
def test_a_campaign_form_writes_what_its_page_changed(
    posted: tuple[str, str],
    base: tuple[str, str] | None,
    stored: tuple[str, str],
    written: list[str],
    clash: list[str],
) -> None:
    got = campaign_form.merge(
        _settings(*posted), None if base is None else _settings(*base), _settings(*stored)
    )
    assert got == (written, clash)


@pytest.mark.parametrize(
    ("typed", "spans"),
    [
        ("９時〜１２時", ["9:00-12:00"]),
        ("9時〜12時、13時30分〜20時", ["9:00-12:00", "13:30-20:00"]),
        ("9時半-17時", ["9:30-17:00"]),
        ("09:00-12:00", ["09:00-12:00"]),
        ("09:00 - 12:00, 13:00 〜 17:00", ["09:00-12:00", "13:00-17:00"]),  # spaced, as the CLI takes it (QA)
        ("9時 ～ 12時　13時－17時", ["9:00-12:00", "13:00-17:00"]),  # full-width space and dashes
        ("なし", []),
    ],
)
def test_calling_hours_as_people_type_them(typed: str, spans: list[str]) -> None:
    form: dict[str, list[str]] = {}
    for k, v in everything(w_mon=typed):
        form.setdefault(k, []).append(v)
    parsed = campaign_form.read(form)
    assert parsed.errors == {}
    assert parsed.changes["calling_window"]["mon"] == spans
