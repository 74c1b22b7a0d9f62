"""A campaign's settings as `dialer campaign` takes them: each value checked by the code that
will read it (a bad one raises BadValue naming it), turned into the columns to write, and shown
back with the product's defaults filled in."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from campaigns import pacer, retry, scripts, segments, windows
from campaigns.hours import TOKYO
from dialer.jpformat import is_japanese_number, phone_digits
from dialer.store.campaigns import SOUND, clean_name


class BadValue(Exception):
    pass


def caller_id(text: str) -> str:
    """A Japanese number as digits: full-width digits and hyphens accepted (０３-１２３４-５６７８);
    empty: none yet (a draft)."""
    digits = phone_digits(text)
    if digits is None or (digits and not is_japanese_number(digits)):
        raise BadValue(f"caller ID {text!r} is not a Japanese telephone number such as 03-1234-5678")
    return digits


def check_caller_id_for(status: str, number: str) -> None:
    """An active campaign places calls: it needs a caller ID the resident can see and call back
    (the engine would otherwise Originate with an empty CallerID)."""
    if status == "active" and not is_japanese_number(number):
        raise BadValue(
            "caller ID: a campaign cannot be active without a Japanese caller ID (--caller-id 03-1234-5678)"
        )


def campaign_name(text: str) -> str:
    name = clean_name(text)
    if name is None:
        raise BadValue("name: 1 to 100 characters, no control characters")
    return name


def sound_name(text: str) -> str | None:
    """A sound file as Asterisk names it (custom/nhi-call-back, without extension); 'none': no message."""
    text = text.strip()
    if text in ("", "none"):
        return None
    if not SOUND.fullmatch(text):
        raise BadValue(f"machine message: {text!r} is not a sound file name such as custom/nhi-call-back")
    return text


def script_file(path_text: str) -> str:
    """A talk script from a UTF-8 text file (campaigns/scripts.py); 'none': no script."""
    if path_text == "none":
        return ""
    path = Path(path_text)
    most = 8 * scripts.MAX_CHARS  # (UTF-8, CRs, a BOM: a script is short; /dev/zero is not read whole)
    try:
        with path.open("rb") as f:
            data = f.read(most + 1)
        if len(data) > most:
            raise BadValue(f"script: {path}: at most {scripts.MAX_CHARS} characters")
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise BadValue(f"script: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadValue(f"script: {path} is not UTF-8") from None
    try:
        return scripts.clean(text)
    except scripts.ScriptError as exc:
        why = {
            "long": f"at most {scripts.MAX_CHARS} characters",
            "control": "it holds control characters " + " ".join(exc.names),
            "unknown": "unknown placeholders "
            + " ".join("{" + n + "}" for n in exc.names)
            + " (known: "
            + " ".join("{" + n + "}" for n in scripts.FIELDS)
            + ")",
        }[exc.reason]
        raise BadValue(f"script: {path}: {why}") from None


def read_file(path_text: str, what: str) -> dict[str, Any] | None:
    if path_text == "default":
        return None
    path = Path(path_text)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadValue(f"{what}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadValue(f"{what}: {path} is not UTF-8") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise BadValue(f"{what}: {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise BadValue(f"{what}: {path} must hold a table of settings")
    return data


def changes_from(args: argparse.Namespace, current: Any) -> dict[str, Any]:
    """The settings to write to the campaign `current`, each checked by the code that will read it."""
    current_pacing: dict[str, Any] | None = current.pacing
    out: dict[str, Any] = {}
    if args.name is not None:
        out["name"] = campaign_name(args.name)
    if args.mode is not None:
        out["dial_mode"] = args.mode
    if args.status is not None:
        out["status"] = args.status
    if args.caller_id is not None:
        out["caller_id"] = caller_id(args.caller_id)
    if "status" in out or "caller_id" in out:
        check_caller_id_for(out.get("status", current.status), out.get("caller_id", current.caller_id))
    if getattr(args, "machine_message", None) is not None:
        out["machine_message"] = sound_name(args.machine_message)
    if getattr(args, "script", None) is not None:
        out["script"] = script_file(args.script)
    if args.window is not None:
        raw = read_file(args.window, "window")
        try:
            window = windows.parse(raw)
        except windows.WindowError as exc:
            raise BadValue(f"window: {exc}") from None
        if window.clipped:
            print(f"note: cut back to 8:00-21:00 on {', '.join(sorted(window.clipped))}", file=sys.stderr)
            spans = window.to_dict()
            if emptied := [day for day in sorted(window.clipped) if not spans[day]]:
                print(
                    f"note: nothing left to call on {', '.join(emptied)} (no calls those days)",
                    file=sys.stderr,
                )
        out["calling_window"] = raw
    if args.retry is not None:
        raw = read_file(args.retry, "retry")
        try:
            retry.parse(raw)
        except ValueError as exc:
            raise BadValue(f"retry: {exc}") from None
        out["retry_policy"] = raw
    pacing: dict[str, Any] | None = current_pacing
    touched = False
    if args.pacing is not None:
        pacing, touched = read_file(args.pacing, "pacing"), True
    given = (
        ("target_abandon", args.target_abandon),
        ("max_lines_per_operator", args.max_lines),
        ("amd_false_machine", getattr(args, "amd_false_machine", None)),
    )
    for key, value in given:
        if value is not None:
            pacing, touched = {**(pacing or {}), key: value}, True
    if touched:
        try:
            pacer.Settings.parse(pacing)
        except pacer.PacerError as exc:
            raise BadValue(f"pacing: {exc}") from None
        out["pacing"] = pacing
    if getattr(args, "segment", None) is not None:
        raw = read_file(args.segment, "segment")
        read_segment(raw)
        out["segment"] = raw
    return out


def read_segment(raw: dict[str, Any] | None) -> segments.Segment:
    try:
        return segments.parse(raw)
    except segments.SegmentError as exc:
        raise BadValue(f"segment: {exc}") from None


def tokyo_today() -> date:
    """Today's date in Tokyo (segments are judged by the calendar day there)."""
    return datetime.now(TOKYO).date()


def describe(c: Any) -> dict[str, Any]:
    """A campaign's settings with the defaults filled in (what the engine will do)."""
    p = pacer.Settings.parse(c.pacing) if c.pacing is not None else pacer.Settings()
    return {
        "id": c.id,
        "department": c.department_id,
        "name": c.name,
        "dial_mode": c.dial_mode,
        "caller_id": c.caller_id,
        "status": c.status,
        "calling_window": windows.of_campaign(c.calling_window).to_dict(),
        "calling_window_is_default": c.calling_window is None,
        "retry_policy": retry.to_dict(retry.of_campaign(c.retry_policy)),
        "retry_policy_is_default": c.retry_policy is None,
        "pacing": {
            "target_abandon": p.target_abandon,
            "max_lines_per_operator": p.max_lines_per_operator,
            "amd_false_machine": p.amd_false_machine,
        },
        "pacing_is_default": c.pacing is None,
        "segment": _segment_view(c.segment),
        "segment_is_default": c.segment is None,
        "operators": list(c.operators),  # user ids; [] = every operator of the department
        "machine_message": c.machine_message,  # None: machines are hung up on
        "script": c.script,  # "": none
    }


def _segment_view(raw: dict[str, Any] | None) -> dict[str, Any] | str:
    try:
        return segments.to_dict(segments.parse(raw))
    except segments.SegmentError as exc:
        return f"unreadable: {exc}"
