"""The supervisor's campaign form: its fields read into campaign settings, and settings shown as
fields. Pure: each value is checked by the code that will use it (windows, retry, pacer, segments),
so the console can never store what the engine would refuse, nor accept less than the CLI does.

People type Japanese input: full-width digits, 〜 between times, 、 between items, ¥ and commas in
amounts, percentages for the abandon target. An empty field means the product's default.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from campaigns import pacer, retry, scripts, segments, windows
from dialer.jpformat import DASHES, is_japanese_number, phone_digits, phone_display
from dialer.store.campaigns import SOUND, CampaignInfo, clean_name
from dialer.store.db import is_id

MODES = ("preview", "progressive", "predictive")
STATUSES = ("draft", "active", "paused", "finished")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday", "year_end")
RETRY_KEYS = tuple(retry.to_dict(retry.DEFAULT))
CLOSED = {"-", "なし", "休", "休み", "none", "closed"}
TRISTATE = {"": None, "only": True, "never": False}


@dataclass
class Parsed:
    changes: dict[str, Any] = field(default_factory=dict)  # campaign columns to write
    operators: list[int] = field(default_factory=list)  # assigned operators (none: everyone)
    errors: dict[str, str] = field(default_factory=dict)  # field -> message key (with the detail below)
    details: dict[str, str] = field(default_factory=dict)  # field -> a range, in any language (0〜100)
    english: dict[str, str] = field(default_factory=dict)  # field -> what the checking code said (English)


def norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _int(text: str) -> int:
    """A whole number as typed (full-width, 1,000, ¥, 円). One too long to be any setting is read as
    too large, so that its range is said (not that it is no whole number)."""
    cleaned = re.sub(r"[,¥円\s]", "", norm(text))
    if not re.fullmatch(r"\d+", cleaned):
        raise ValueError(f"not a whole number: {text!r}")
    return int(cleaned) if len(cleaned) <= 18 else 10**18


def _items(text: str) -> list[str]:
    return [item for item in re.split(r"[,、\s]+", norm(text)) if item]


def _hours(m: re.Match[str]) -> str:
    minutes = "30" if m.group(3) else f"{int(m.group(2) or 0):02d}"
    return f"{int(m.group(1))}:{minutes}"


def _spans(text: str) -> list[str]:
    # 9時〜12時, 13時30分〜20時, 9時半: as people write times (QA: refused before)
    timed = re.sub(r"(\d{1,2})時(?:(\d{1,2})分|(半))?", _hours, norm(text))
    cleaned = re.sub(r"\s*-\s*", "-", re.sub(f"[〜~{DASHES}]", "-", timed))  # 09:00 - 12:00 too (QA)
    return [] if cleaned.lower() in CLOSED else _items(cleaned)


def read(form: Mapping[str, Sequence[str]]) -> Parsed:
    """Read a posted form (every field as a list of its values)."""

    def one(name: str) -> str:
        values = form.get(name) or [""]
        return str(values[0])

    out = Parsed()
    name = clean_name(one("name"))
    if name is None:
        out.errors["name"] = "camp.err.name"
    else:
        out.changes["name"] = name
    if one("dial_mode") in MODES:
        out.changes["dial_mode"] = one("dial_mode")
    else:
        out.errors["dial_mode"] = "camp.err.choice"
    if one("status") in STATUSES:
        out.changes["status"] = one("status")
    else:
        out.errors["status"] = "camp.err.choice"
    number = phone_digits(one("caller_id"))
    if number is None or (number and not is_japanese_number(number)):
        out.errors["caller_id"] = "camp.err.caller_id"
    elif not number and out.changes.get("status") == "active":  # it would call with no caller ID
        out.errors["caller_id"] = "camp.err.caller_id_needed"
    else:
        out.changes["caller_id"] = number

    message = norm(one("machine_message"))
    if message and not SOUND.fullmatch(message):
        out.errors["machine_message"] = "camp.err.machine_message"
    else:
        out.changes["machine_message"] = message or None
    try:
        out.changes["script"] = scripts.clean(one("script"))
    except scripts.ScriptError as exc:  # the placeholders it does not know, named
        out.errors["script"] = f"camp.err.script_{exc.reason}"
        if exc.names:  # the placeholders it does not know, or the codes of the characters refused
            named = exc.names if exc.reason == "control" else ["{" + n + "}" for n in exc.names]
            out.details["script"] = " ".join(named)
    try:
        out.operators = sorted({int(x) for x in form.get("operators", [])})
    except ValueError:
        out.errors["operators"] = "camp.err.operators"
    if not all(is_id(i) for i in out.operators):  # no such user (and beyond what asyncpg can send)
        out.errors["operators"] = "camp.err.operators"
    _window(one, out)
    _retry(one, out)
    _pacing(one, out)
    _segment(form, one, out)
    return out


def _window(one: Any, out: Parsed) -> None:
    raw = {day: _spans(one(f"w_{day}")) for day in DAYS if one(f"w_{day}").strip()}
    try:
        window = windows.parse(raw or None)
    except windows.WindowError as exc:  # marked at the day it is about, with what was typed there
        where = f"w_{exc.key}" if exc.key in DAYS else "window"
        out.errors[where], out.english[where] = f"camp.err.window_{exc.reason}", str(exc)
        if where != "window":
            out.details[where] = norm(one(where))
        return
    out.changes["calling_window"] = raw or None
    out.details.update(_clipped(window))


def _clipped(window: windows.CallingWindow) -> dict[str, str]:
    """The days whose spans were cut back to 8:00-21:00, and of them those left with no span at all."""
    if not window.clipped:
        return {}
    spans = window.to_dict()
    emptied = [day for day in sorted(window.clipped) if not spans[day]]
    return {"window_clipped": ", ".join(sorted(window.clipped)), "window_emptied": ", ".join(emptied)}


def notes(c: CampaignInfo) -> dict[str, str]:
    """What the page says about a stored campaign's settings, as it said when they were typed: the
    form shows the window as written (21:00-23:00), the engine calls only within 8:00-21:00."""
    try:
        return _clipped(windows.parse(c.calling_window))
    except windows.WindowError:
        return {}


def _retry(one: Any, out: Parsed) -> None:
    raw: dict[str, int] = {}
    for key in RETRY_KEYS:
        text = one(f"r_{key}")
        if not text.strip():
            continue
        low, high = retry.LIMITS[key]
        try:
            raw[key] = _int(text)
        except ValueError:  # the range too: 0 would be refused next (QA)
            out.errors[f"r_{key}"], out.details[f"r_{key}"] = "camp.err.whole_in_range", f"{low}〜{high}"
            continue
        if not low <= raw[key] <= high:
            out.errors[f"r_{key}"] = (
                "camp.err.abandoned" if key == "abandoned_after_minutes" else "camp.err.range"
            )
            out.details[f"r_{key}"] = f"{low}〜{high}"
    if any(k.startswith("r_") for k in out.errors):
        return
    try:
        retry.parse(raw or None)
    except ValueError as exc:
        out.errors["retry"], out.english["retry"] = "camp.err.retry", str(exc)
        return
    out.changes["retry_policy"] = raw or None


# The console's pacing fields: form field, pacer setting, and whether it is typed in per cent.
PACING_FIELDS = (
    ("target_abandon_pct", "target_abandon", True),
    ("max_lines", "max_lines_per_operator", False),
    ("amd_false_machine_pct", "amd_false_machine", True),
)


# What each pacing field takes, as its error says it (per cent fields in per cent).
PACING_RANGES = {"target_abandon_pct": "0〜3", "max_lines": "1〜10", "amd_false_machine_pct": "0〜20"}


def _pacing(one: Any, out: Parsed) -> None:
    """Each field read as a plain decimal (2.5, ２．５, 2.5%), then checked by the pacer's own
    settings; a mistake is marked at its field with the range it takes."""
    raw: dict[str, float] = {}
    for name, key, per_cent in PACING_FIELDS:
        text = norm(one(name))
        if per_cent:
            text = text.removesuffix("%").strip()
        if not text:
            continue
        if not re.fullmatch(r"\d{1,3}(\.\d{1,6})?", text):  # not 1_0, 1e-9, inf or nan
            out.errors[name], out.details[name] = "camp.err.decimal", PACING_RANGES[name]
            continue
        value = round(float(text) / 100, 8) if per_cent else float(text)
        try:  # each field against its own range: every mistake is marked at once, not one a save
            pacer.Settings.parse({key: value})
        except pacer.PacerError as exc:
            out.errors[name], out.details[name], out.english[name] = (
                "camp.err.range",
                PACING_RANGES[name],
                str(exc),
            )
            continue
        raw[key] = value
    if any(name in out.errors for name in PACING_RANGES):
        return
    try:
        pacer.Settings.parse(raw or None)
    except pacer.PacerError as exc:  # (the fields together)
        out.errors["pacing"], out.english["pacing"] = "camp.err.pacing", str(exc)
        return
    out.changes["pacing"] = raw or None


SEGMENT_FIELDS = {
    "s_debt_types", "s_years", "s_unpaid_min_yen", "s_unpaid_max_yen", "s_overdue_months", "s_not_contacted_days",
    "s_promise_broken", "s_installment_broken", "s_classes", "s_exclude_classes", "s_order",
}  # fmt: skip


def _segment(form: Mapping[str, Sequence[str]], one: Any, out: Parsed) -> None:
    raw: dict[str, Any] = {}
    types = [str(v) for v in form.get("s_debt_types", []) if str(v).strip()]
    if types:
        raw["debt_types"] = types
    if one("s_years") and one("s_years") != "any":
        raw["years"] = one("s_years")
    for key in ("unpaid_min_yen", "unpaid_max_yen", "overdue_months", "not_contacted_days"):
        text = one(f"s_{key}")
        if text.strip():
            try:
                raw[key] = _int(text)
            except ValueError:
                out.errors[f"s_{key}"] = "camp.err.number"
                continue
            if raw[key] > segments.AT_MOST.get(key, segments.MAX_YEN):
                out.errors[f"s_{key}"] = "camp.err.range"
                out.details[f"s_{key}"] = f"0〜{segments.AT_MOST.get(key, segments.MAX_YEN):,}"
    for key in ("promise_broken", "installment_broken"):
        choice = one(f"s_{key}")
        if choice not in TRISTATE:
            out.errors[f"s_{key}"] = "camp.err.choice"
        elif TRISTATE[choice] is not None:
            raw[key] = TRISTATE[choice]
    for key in ("classes", "exclude_classes"):
        if _items(one(f"s_{key}")):
            raw[key] = _items(one(f"s_{key}"))
    if one("s_order") and one("s_order") != "unpaid":
        raw["order"] = one("s_order")
    low, high = raw.get("unpaid_min_yen", segments.DEFAULT.unpaid_min_yen), raw.get("unpaid_max_yen")
    if high is not None and high <= low:  # the field to correct, named (the minimum: ¥1 when not given)
        out.errors["s_unpaid_max_yen"] = "camp.err.min_max"
    if any(k.startswith("s_") for k in out.errors):
        return
    try:
        segments.parse(raw or None)
    except segments.SegmentError as exc:  # marked at its field when the form has one
        where = f"s_{exc.key}" if f"s_{exc.key}" in SEGMENT_FIELDS else "segment"
        if exc.key == "unpaid_min_yen":  # its message says it all (in English too)
            out.errors[where] = "camp.err.unpaid_min"
        else:
            out.errors[where], out.english[where] = "camp.err.segment", str(exc)
        return
    out.changes["segment"] = raw or None


def values(c: CampaignInfo) -> dict[str, Any]:
    """The form's fields for a stored campaign (what the supervisor set, not the defaults)."""
    v: dict[str, Any] = {
        "name": c.name,
        "dial_mode": c.dial_mode,
        "status": c.status,
        "caller_id": phone_display(c.caller_id) if c.caller_id else "",  # 03-1234-0001, as people write it
    }
    v["operators"] = [str(i) for i in c.operators]
    v["machine_message"] = c.machine_message or ""
    v["script"] = c.script
    win = c.calling_window or {}
    for day in DAYS:
        spans = win.get(day)
        v[f"w_{day}"] = "" if spans is None else ("-" if spans == [] else ", ".join(spans))
    pol = c.retry_policy or {}
    for key in RETRY_KEYS:
        v[f"r_{key}"] = str(pol[key]) if key in pol else ""
    pace = c.pacing or {}
    for name, key, per_cent in PACING_FIELDS:
        v[name] = f"{pace[key] * (100 if per_cent else 1):g}" if key in pace else ""
    seg = c.segment or {}
    v["s_debt_types"] = list(seg.get("debt_types", []))
    v["s_years"] = seg.get("years", "any")
    for key in ("unpaid_min_yen", "unpaid_max_yen", "overdue_months", "not_contacted_days"):
        v[f"s_{key}"] = "" if seg.get(key) is None else str(seg[key])
    for key in ("promise_broken", "installment_broken"):
        v[f"s_{key}"] = {True: "only", False: "never"}.get(seg.get(key), "")  # type: ignore[arg-type]
    for key in ("classes", "exclude_classes"):
        v[f"s_{key}"] = "、".join(seg.get(key, []))
    v["s_order"] = seg.get("order", "unpaid")
    return v


def submitted(form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The fields as posted (to show them again next to their errors)."""
    lists = ("s_debt_types", "operators")
    v: dict[str, Any] = {k: str(vs[0]) if vs else "" for k, vs in form.items() if k not in lists}
    for key in lists:
        v[key] = [str(x) for x in form.get(key, [])]
    return v


def base_of(text: str) -> dict[str, list[str]] | None:
    """The fields as the page showed them when the supervisor opened it (the form's `base`), as a
    posted form; None when it is missing or not what a page sends."""
    try:
        shown = json.loads(text)
    except ValueError:
        return None
    if not isinstance(shown, dict):
        return None
    form: dict[str, list[str]] = {}
    for key, value in shown.items():
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(x, str) for x in items):
            return None
        form[str(key)] = [str(x) for x in items]
    return form


def as_form(fields: Mapping[str, Any]) -> dict[str, list[str]]:
    """`values` as a posted form (to read a stored campaign the way a post is read)."""
    return {k: [str(x) for x in v] if isinstance(v, list) else [str(v)] for k, v in fields.items()}


def _setting(p: Parsed, key: str) -> Any:
    return frozenset(p.operators) if key == "operators" else p.changes.get(key)


def merge(posted: Parsed, base: Parsed | None, stored: Parsed) -> tuple[list[str], list[str]]:
    """(settings the supervisor changed, settings someone else changed differently meanwhile).

    A page left open while someone else paused the campaign must not set it active again when only
    the lines per operator were changed on it: only what differs between the page as it was opened
    (`base`) and as it was posted is written. Where another change came in between (`stored` is the
    campaign now, read as a form) and the two disagree, nothing is written and both are shown.
    Without a base (a form from before this check), everything posted is taken as meant."""
    keys = sorted({*posted.changes, "operators"})
    mine = [k for k in keys if base is None or _setting(posted, k) != _setting(base, k)]
    clash = [
        k for k in mine
        if base is not None and _setting(stored, k) != _setting(base, k) and _setting(stored, k) != _setting(posted, k)
    ]  # fmt: skip
    return [k for k in mine if k not in clash], clash


def fields_of(key: str) -> Callable[[str], bool]:
    """Which of the form's fields make up a setting (to show the stored ones after a clash)."""
    prefix = {"calling_window": "w_", "retry_policy": "r_", "segment": "s_"}.get(key)
    if prefix is not None:
        return lambda name: name.startswith(prefix)
    if key == "pacing":
        return lambda name: name in {f for f, _, _ in PACING_FIELDS}
    return lambda name: name == key
