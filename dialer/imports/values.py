"""Cell values from municipal exports, made uniform. Pure.

Every text cell is NFKC-normalised: full-width digits and letters become ASCII, half-width kana
become full-width kana (ﾔﾏﾀﾞ → ヤマダ), the ideographic space becomes a space. Kana names are kept
as kana (never converted to or from kanji). The CJK compatibility ideographs are kept as they are
(NFKC would turn the IBM-extension 塚 into 塚, 神 into 神): a name is written as the register
writes it.

外字 (characters a municipality defined for itself, in Unicode's private-use area) cannot be shown
or sent anywhere else; they are replaced by 〓 (the customary placeholder) and reported as a
warning, so staff can correct the name at the source. The row is still imported.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import time

GETA = "〓"
PUA = re.compile("[\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]")
_COMPAT_IDEOGRAPH = re.compile("([\uf900-\ufaff\U0002f800-\U0002fa1f]+)")


# In a note (a 経過記録's 内容, 場所) the symbols NFKC would spell out mean something as they are:
# ①5,000円 ②3,000円 became 15,000円 23,000円, ㈱ (株), № No, ㎡ m2 (staff QA). Kept there.
_NOTE_SYMBOLS = re.compile(
    "([\uf900-\ufaff\U0002f800-\U0002fa1f\u2100-\u214f\u2150-\u218f\u2460-\u24ff\u2776-\u2793\u3200-\u33ff]+)"
)


def nfkc(text: str, note: bool = False) -> str:
    """NFKC, but for the CJK compatibility ideographs (kept: they are how a name is spelt); in a
    note (`note`), for the circled, parenthesized and squared symbols too (they carry its sense)."""
    kept = _NOTE_SYMBOLS if note else _COMPAT_IDEOGRAPH
    if kept.search(text) is None:
        return unicodedata.normalize("NFKC", text)
    parts = kept.split(text)  # text, kept, text, … (odd places: kept)
    return "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(parts))


class ValueProblem(ValueError):
    """The cell cannot be read as what the column holds; the message says why."""


class Warned(Exception):
    """Raised by a parser to attach a warning to a value it still returns."""

    def __init__(self, value: object, message: str) -> None:
        self.value, self.message = value, message


def clean(text: str, note: bool = False) -> tuple[str, int]:
    """NFKC (a note's symbols kept: `nfkc`), trimmed, runs of spaces collapsed; 外字 replaced.
    Returns (text, 外字 count)."""
    s = nfkc(text, note) if not text.isascii() else text
    s = " ".join(s.split())  # runs of any whitespace (the ideographic space too) become one space
    if s.isascii():
        return s, 0
    s, n = PUA.subn(GETA, s)
    return s, n


_AMOUNT = re.compile(r"[¥\\]?(-?)(\d{1,3}(?:,\d{3})+|\d+)(?:円)?")


def parse_yen(text: str) -> int:
    """Integer yen: '12345', '12,345', '¥12,345', '12345円' (after NFKC). Negative or fractional: refused."""
    m = _AMOUNT.fullmatch(text.replace(" ", ""))
    if m is None:
        raise ValueProblem(f"金額として読めません(円単位の整数): {text!r}")
    if m[1]:
        raise ValueProblem(f"金額が負です: {text!r}")
    value = int(m[2].replace(",", ""))
    if value > 10**12:
        raise ValueProblem(f"金額が大きすぎます: {text!r}")
    return value


_INSTALLMENT = re.compile(r"第?(\d{1,2})期?")


def parse_installment(text: str) -> int:
    """期別: '3', '03', '第3期', '3期'; '随時' and '0' are 0 (billed outside the regular periods)."""
    if text in ("随時", "0", "00"):
        return 0
    m = _INSTALLMENT.fullmatch(text.replace(" ", ""))
    if m is None or not 0 <= int(m[1]) <= 12:
        raise ValueProblem(f"期別として読めません(0〜12): {text!r}")
    return int(m[1])


_TRUE = {"1", "true", "yes", "y", "有", "あり", "○", "〇", "済", "はい"}
_FALSE = {"0", "false", "no", "n", "無", "なし", "×", "いいえ", "-"}


def parse_flag(text: str) -> bool:
    """有無 columns (口座振替の有無 …): 1/0, 有/無, あり/なし, ○/×, true/false."""
    t = text.lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise ValueProblem(f"有無として読めません(1/0、有/無、○/×): {text!r}")


_KEY = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,31}")


def parse_key(text: str) -> str:
    """宛名番号, 世帯番号, 通知書番号: letters, digits, '-', '.', '_'; at most 32 characters."""
    if not _KEY.fullmatch(text):
        raise ValueProblem(f"番号として読めません(英数字32文字まで): {text!r}")
    return text


_SEQ = re.compile(r"第?(\d{1,3})回?")


def parse_seq(text: str) -> int:
    """分納の回: '3', '03', '第3回', '3回' (1–999)."""
    m = _SEQ.fullmatch(text.replace(" ", ""))
    if m is None or not 1 <= int(m[1]) <= 999:
        raise ValueProblem(f"回数として読めません(1〜999): {text!r}")
    return int(m[1])


# A plan's state as delinquency systems word it ([values.status] translates other codes).
PLAN_STATUSES = {
    **dict.fromkeys(("active", "履行中", "分納中", "継続", "継続中", "承認", "承認済"), "active"),
    **dict.fromkeys(("broken", "不履行", "履行遅滞", "遅延", "中断"), "broken"),
    **dict.fromkeys(("completed", "完了", "完納", "履行済", "履行完了", "終了"), "completed"),
    **dict.fromkeys(("cancelled", "取消", "取消し", "取り消し", "解除", "破棄", "失効"), "cancelled"),
}


def parse_plan_status(text: str) -> str:
    """分納の状態: 履行中 → active, 不履行 → broken, 完了 → completed, 取消 → cancelled."""
    status = PLAN_STATUSES.get(text.lower())
    if status is None:
        raise ValueProblem(
            f"分納の状態として読めません(履行中・不履行・完了・取消。[values.status]で変換できます): {text!r}"
        )
    return status


_TIMES = (
    re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?"),
    re.compile(r"(\d{1,2})時(?:(\d{1,2})分(?:(\d{1,2})秒)?)?"),
    re.compile(r"(\d{2})(\d{2})(\d{2})?"),
)


_FRACTION_AND_JST = re.compile(r"(?<=\d)(?:\.\d{1,9})?(?:\+09:?00)?$")  # 10:30:00.000, 10:30+09:00
_HALF_DAY = re.compile(r"(午前|午後|AM|PM)(.+)|(.+?)(AM|PM)", re.I)


def parse_time(text: str) -> time:
    """A time of day: '9:05', '09:05:30', '9時5分', '9時', '0905', '090530' (24-hour clock, to
    23:59:59); '午後3時30分', '3:30PM'; '10:30:00.000' and '10:30:00+09:00' as databases write them."""
    s = _FRACTION_AND_JST.sub("", text.replace(" ", ""), count=1)
    afternoon = None
    if m := _HALF_DAY.fullmatch(s):
        half, s = (m[1], m[2]) if m[1] else (m[4], m[3])
        afternoon = half.upper() in ("午後", "PM")
    for form in _TIMES:
        if m := form.fullmatch(s):
            hour, minute, second = int(m[1]), int(m[2] or 0), int(m[3] or 0)
            if afternoon is not None:  # 12 hours a half: 午前12時 is midnight, 午後12時 noon
                hour = hour % 12 + (12 if afternoon else 0) if hour <= 12 else 99
            if hour < 24 and minute < 60 and second < 60:
                return time(hour, minute, second)
            break
    raise ValueProblem(f"時刻として読めません(9:05、09:05:30、9時5分、午後3時、0905): {text!r}")


# How a delinquency system words a 経過記録 entry's method ([values.method] translates other codes).
CONTACT_METHODS = {
    **dict.fromkeys(
        ("phone_out", "電話", "架電", "電話(架電)", "電話(発信)", "発信", "電話催告", "電話連絡", "tel"),
        "phone_out",
    ),
    **dict.fromkeys(
        ("phone_in", "受電", "入電", "着信", "電話(受電)", "電話(受信)", "電話(入電)"), "phone_in"
    ),
    **dict.fromkeys(("visit", "訪問", "臨戸", "臨戸訪問", "訪問催告", "戸別訪問", "自宅訪問"), "visit"),
    **dict.fromkeys(("letter", "文書", "文書催告", "催告書", "督促状", "通知", "郵送", "送付"), "letter"),
    **dict.fromkeys(("counter", "窓口", "来庁", "来所", "来訪", "窓口相談", "納付相談", "面談"), "counter"),
    **dict.fromkeys(("other", "その他"), "other"),
}


def parse_contact_method(text: str) -> str:
    """経過記録の方法: 電話/架電 → phone_out, 入電 → phone_in, 訪問/臨戸 → visit, 文書/催告書 → letter,
    窓口/来庁 → counter, その他 → other."""
    method = CONTACT_METHODS.get(text.lower())
    if method is None:
        raise ValueProblem(
            f"経過記録の方法として読めません(電話・入電・訪問・窓口・文書・その他。[values.method]で変換できます): {text!r}"
        )
    return method
