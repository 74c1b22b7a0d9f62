"""The talk script's pure part: what a supervisor may write, and how it is filled in for a record."""

from __future__ import annotations

import pytest

from campaigns import scripts

VALUES = {
    "name": "見本 太郎", "kana": "ミホン タロウ", "household_no": "H0001", "unpaid": "24,000円",
    "operator": "山田", "department": "国保年金課", "callback": "03-1234-5678",
}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "filled"),
    [
        ("{氏名}様でいらっしゃいますか。", "見本 太郎様でいらっしゃいますか。"),
        ("{課名}の{担当者}です。{未納額}が未納です。", "国保年金課の山田です。24,000円が未納です。"),
        ("{name} ({kana}) {household_no} {callback}", "見本 太郎 (ミホン タロウ) H0001 03-1234-5678"),
        ("｛氏名｝様", "見本 太郎様"),  # full-width braces, as an IME types them
        ("｛ここで一呼吸｝{氏名}様", "｛ここで一呼吸｝見本 太郎様"),  # the script's own braces stay
        ("{氏名}\u200b様\ufeff\u00ad", "見本 太郎様"),  # pasted, unseen: dropped (QA: refused, unfindable)
        ("家族👨\u200d👩\u200d👧で", "家族👨\u200d👩\u200d👧で"),  # an emoji's joiners are kept
        ("{ 氏名 }様", "見本 太郎様"),  # spaces inside the braces
        ("{氏名}{氏名}", "見本 太郎見本 太郎"),
        ("金額は{未納額}です\r\n\r\n以上  \n\n", "金額は24,000円です\n\n以上"),  # line ends, trailing space
        ("{}や{ }はそのまま", "{}や{ }はそのまま"),  # not placeholders
        ("", ""),
    ],
)
def test_a_script_is_filled_in_for_the_record(text: str, filled: str) -> None:
    assert scripts.fill(scripts.clean(text), VALUES) == filled


def test_a_value_the_record_does_not_have_is_left_empty() -> None:
    assert scripts.fill("{フリガナ}様", {**VALUES, "kana": ""}) == "様"


@pytest.mark.parametrize(
    ("text", "reason", "names"),
    [
        (
            "{生年月日}をお聞きします",
            "unknown",
            ("生年月日",),
        ),  # the resident states it (本人確認): not read out
        ("{住所}と{電話番号}と{住所}", "unknown", ("住所", "電話番号")),
        ("{ name}は{Name}", "unknown", ("Name",)),
        ("あ" * (scripts.MAX_CHARS + 1), "long", ()),
        ("本文\x00", "control", ("U+0000",)),
        ("\u202e逆向き\u202e", "control", ("U+202E",)),  # a bidi override would show the text reversed
    ],
)
def test_what_cannot_be_kept_is_refused_with_its_reason(
    text: str, reason: str, names: tuple[str, ...]
) -> None:
    with pytest.raises(scripts.ScriptError) as caught:
        scripts.clean(text)
    assert (caught.value.reason, caught.value.names) == (reason, names)


def test_tabs_and_the_longest_script_are_kept() -> None:
    assert scripts.clean("一\t二") == "一\t二"
    assert len(scripts.clean("あ" * scripts.MAX_CHARS)) == scripts.MAX_CHARS
