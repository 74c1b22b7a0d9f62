"""What an operator records after a conversation, and the checks on it. Pure.

Input comes from a web form (hostile until checked): full-width digits and commas are accepted
for amounts (NFKC), dates and times are read in Asia/Tokyo, and every error names its field.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaigns.windows import CallingWindow
from dialer.imports import dates

TOKYO = ZoneInfo("Asia/Tokyo")
NOTE_MAX = 2000
AMOUNT_MAX_YEN = 100_000_000
# Never call between 21:00 and 8:00, whatever anyone asked for (see DOMAIN.md).
CALL_HOURS = (time(8, 0), time(21, 0))
OTHER_PARTY = "other_party"  # 本人以外応答: a person answered who is not the one owing


@dataclass(frozen=True)
class Code:
    code: str
    label_ja: str
    label_en: str
    reached: bool
    needs_promise: bool
    needs_callback: bool
    closes_target: bool
    to_staff: bool = False  # opens a case on the staff's list (分納相談希望: web/handovers.py)

    def label(self, lang: str) -> str:
        return self.label_en if lang == "en" else self.label_ja

    @property
    def needs_a_person(self) -> bool:
        """Whether recording it says somebody spoke: the resident (reached, a promise, a call-back
        asked for) or someone else (本人以外応答). Not so for a call only a machine answered."""
        return self.reached or self.needs_promise or self.needs_callback or self.code == OTHER_PARTY


@dataclass(frozen=True)
class DispositionInput:
    attempt_id: int
    token: uuid.UUID
    code: str
    note: str
    promise_date: date | None = None
    promise_amount_yen: int | None = None
    callback_at: datetime | None = None
    then_pause: bool = False


@dataclass(frozen=True)
class FieldError:
    field: str
    key: str  # a message key, translated by the page (web/i18n.py)
    detail: str = ""  # in any language, shown after it: the calling hours of the day asked for


def _text(raw: Mapping[str, object], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    return str(value) if not isinstance(value, str) else value


def clean_note(text: str) -> str:
    """NFC, control characters other than newline and tab removed, CRLF folded, trimmed."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()


def parse_amount(text: str) -> int | None:
    """'１２，０００' / '12,000' / '12000円' / '￥12,000' -> 12000; None if it is not a whole number of yen."""
    text = unicodedata.normalize("NFKC", text).strip().removesuffix("円").replace(",", "").strip()
    text = text.removeprefix("¥").removeprefix("\\").strip()  # ￥ (NFKC: ¥), or a backslash in CP932
    if not re.fullmatch(r"[0-9]{1,12}", text):
        return None
    return int(text)


SAVED_AT_WINDOW = timedelta(days=3)


def reference_time(raw: Mapping[str, object], now: datetime) -> datetime:
    """The time the operator pressed Save (sent by the page), if it is plausible; else now.

    A disposition that waited out a network or database outage is checked against the moment
    it was written, so that "today" or "in the future" do not turn false while it waited.
    """
    try:
        saved = datetime.fromisoformat(_text(raw, "saved_at"))
    except ValueError:
        return now
    if saved.tzinfo is None or not now - SAVED_AT_WINDOW <= saved <= now + timedelta(minutes=5):
        return now
    return min(saved, now)


def attempt_of(raw: Mapping[str, object]) -> int:
    """The form's attempt id; 0 when it is not one (ASCII digits only: ids are not typed by hand)."""
    text = _text(raw, "attempt_id")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else 0


def validate(
    raw: Mapping[str, object], codes: Mapping[str, Code], now: datetime, window: CallingWindow | None = None
) -> DispositionInput | list[FieldError]:
    """The checked input, or every error by field. `window`: the call's campaign calling window,
    which a call-back must fall in (it could not be placed otherwise)."""
    errors: list[FieldError] = []
    attempt_id = attempt_of(raw)
    if attempt_id <= 0:
        errors.append(FieldError("attempt_id", "error.attempt"))
    try:
        token = uuid.UUID(_text(raw, "token"))
    except ValueError:
        token = uuid.UUID(int=0)
        errors.append(FieldError("token", "error.token"))
    code = codes.get(_text(raw, "code"))
    if code is None:
        errors.append(FieldError("code", "error.code"))
    note = clean_note(_text(raw, "note"))
    if len(note) > NOTE_MAX:
        errors.append(FieldError("note", "error.note_too_long"))
    today = now.astimezone(TOKYO).date()
    promise_date = promise_amount = callback_at = None
    if code is not None and code.needs_promise:
        promise_date = _date(_text(raw, "promise_date"))
        if promise_date is None:
            errors.append(FieldError("promise_date", "error.date"))
        elif not today <= promise_date <= today + timedelta(days=366):
            errors.append(FieldError("promise_date", "error.promise_date_range"))
        promise_amount = parse_amount(_text(raw, "promise_amount"))
        if promise_amount is None or not 0 < promise_amount <= AMOUNT_MAX_YEN:
            errors.append(FieldError("promise_amount", "error.amount"))
    if code is not None and code.needs_callback:
        callback_at = _local_datetime(_text(raw, "callback_at"))
        if callback_at is None:
            errors.append(FieldError("callback_at", "error.datetime"))
        elif not now < callback_at <= now + timedelta(days=90):
            errors.append(FieldError("callback_at", "error.callback_range"))
        elif not CALL_HOURS[0] <= callback_at.astimezone(TOKYO).time() < CALL_HOURS[1]:
            errors.append(FieldError("callback_at", "error.callback_hours"))
        elif window is not None and not window.is_open(callback_at):
            hours = window.spans_on(callback_at.astimezone(TOKYO).date())
            errors.append(
                FieldError("callback_at", "error.callback_window", ", ".join(map(str, hours)) or "-")
            )
    if errors:
        return errors
    assert code is not None
    return DispositionInput(
        attempt_id=attempt_id,
        token=token,
        code=code.code,
        note=note,
        promise_date=promise_date,
        promise_amount_yen=promise_amount,
        callback_at=callback_at,
        then_pause=_text(raw, "then_pause") in ("1", "true", "on"),
    )


def _date(text: str) -> date | None:
    """The page's date picker sends 2026-12-24; a script (or a person) may write 和暦 or 西暦 as
    the municipal systems do: R8.12.24, 令和8年12月24日, 2026/12/24 (dialer.imports.dates)."""
    try:
        return dates.parse_date(unicodedata.normalize("NFKC", text).strip()).value
    except dates.DateProblem:
        return None


_DAY_AND_TIME = re.compile(r"(.+?)[T\s]+(\d{1,2}):(\d{2})")


def _local_datetime(text: str) -> datetime | None:
    """An <input type=datetime-local> value (2026-12-24T14:00), or a date as `_date` reads it and
    a time (R8.12.24 14:00), read as Tokyo time."""
    cleaned = unicodedata.normalize("NFKC", text).strip()
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        m = _DAY_AND_TIME.fullmatch(cleaned)
        day = _date(m[1]) if m else None
        if m is None or day is None or int(m[2]) > 23 or int(m[3]) > 59:
            return None
        value = datetime.combine(day, time(int(m[2]), int(m[3])))
    return value.replace(tzinfo=TOKYO) if value.tzinfo is None else value
