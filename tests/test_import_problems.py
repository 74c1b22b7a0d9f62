"""What an import reports about the rows it reads: a cell once, a person written two ways, quotes
left open, dates that stand for none. Files written by the tests, read into the embedded PostgreSQL."""

from __future__ import annotations

import csv
import io
from functools import partial
from pathlib import Path

import asyncpg

from dialer.imports import mapping, report
from dialer.imports.sample import NHI_HEADER
from dialer.store import imports
from tests.test_imports import _nhi_toml, _report, enc, row, run, write


async def test_a_cell_that_cannot_be_read_is_reported_once(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    """Not also as the empty field or the disagreeing amounts that follow from it."""
    path = write(
        tmp_path / "once.csv",
        [
            row(世帯番号="H1", 宛名番号="A1", 調定額="-500"),
            row(世帯番号="H2", 宛名番号="A2", 年度="平成32年度"),
            row(世帯番号="H3", 宛名番号="A3", 未納額="百円"),
        ],
    )
    info = await run(nhi, path)
    problems = [(r["line"], r["column_name"], r["message"]) for r in await imports.problems(nhi, info.id)]
    assert [(line, column) for line, column, _ in problems] == [(2, "調定額"), (3, "年度"), (4, "未納額")]
    assert "負" in problems[0][2]
    assert "平成32年度" in problems[1][2]


async def test_one_person_written_two_ways_in_one_file_is_pointed_out(
    nhi: asyncpg.Pool, tmp_path: Path
) -> None:
    """A person has a line per debt; when those lines disagree on the name or the birth date, the
    first line's are kept and each other line says so (stored, with a warning)."""
    path = write(
        tmp_path / "twice.csv",
        [
            row(宛名番号="A1", 氏名="山田 太郎", 期別="1"),
            row(宛名番号="A1", 氏名="山田 次郎", 期別="2"),
            row(宛名番号="A1", 氏名="山田 太郎", 期別="3"),
        ],
    )
    info = await run(nhi, path)
    assert (info.rows_stored, info.rows_warned) == (3, 1)
    problems = await imports.problems(nhi, info.id)
    assert [(r["line"], r["severity"]) for r in problems] == [(3, "warning")]
    assert "行 2" in problems[0]["message"]
    assert await nhi.fetchval("select name_kanji from person") == "山田 太郎"


async def test_a_quote_left_open_costs_only_its_own_line(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    """A quote never closed (or closed in the wrong place) would carry the reader over the lines after
    it: those are read again, each a row of its own, and only the broken line is reported."""
    plain = partial(row, 調定額="56000")  # no quoted cell
    lines = [
        enc(list(NHI_HEADER)),
        enc(plain(世帯番号="H2", 宛名番号="A2")),  # 2
        enc(plain(世帯番号="H3", 宛名番号="A3")).replace(b"A3,", b'A3,"', 1),  # 3: opens a quote
        enc(plain(世帯番号="H4", 宛名番号="A4")),  # 4
        enc(plain(世帯番号="H5", 宛名番号="A5", 住所="大字北,1番地")),  # 5: its quoted cell closes 3's quote
        enc(plain(世帯番号="H6", 宛名番号="A6")),  # 6
        enc(plain(世帯番号="H7", 宛名番号="A7", 住所="QADDRQ")).replace(
            b"QADDRQ", '"北町\r\n1番地"'.encode("cp932")
        ),  # 7-8
        enc(plain(世帯番号="H9", 宛名番号="A9")).replace(b"A9,", b'A9,"', 1),  # 9: opens a quote
        enc(plain(世帯番号="H10", 宛名番号="A10")),  # 10
        b",,,,",  # 11: nothing but delimiters: a blank line
        enc(plain(世帯番号="H12", 宛名番号="A12")),  # 12
        enc(plain(世帯番号="H13", 宛名番号="A13", 住所="QADDRQ")).replace(
            b"QADDRQ", '"南町\r\n2番地"'.encode("cp932")
        )
        + b",",  # 13-14: a line break, and an empty cell past the header's last (as on one line: fine)
    ]
    path = tmp_path / "quotes.csv"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    info = await run(nhi, path, m=mapping.parse({**_nhi_toml(), "file": {"encoding": "cp932"}}, "nhi-cp932"))
    problems = {r["line"]: r["message"] for r in await imports.problems(nhi, info.id)}
    assert set(problems) == {3, 9}, problems
    assert "引用符" in problems[3]
    assert "次の行から読み直しました" in problems[3]
    assert "次の行から読み直しました" in problems[9]  # its quote runs on to line 13's
    stored = {r["household_no"] for r in await nhi.fetch("select household_no from household")}
    assert stored == {"H2", "H4", "H5", "H6", "H7", "H10", "H12", "H13"}
    assert await nhi.fetchval("select address from household where household_no = 'H7'") == "北町 1番地"
    assert (info.rows_read, info.rows_rejected, info.counts["blank_lines"]) == (10, 2, 1)


async def test_a_quote_left_open_to_the_end_of_the_file_costs_only_its_line(
    nhi: asyncpg.Pool, tmp_path: Path
) -> None:
    plain = partial(row, 調定額="56000")  # no quoted cell
    lines = [
        enc(list(NHI_HEADER)),
        enc(plain(世帯番号="H2", 宛名番号="A2")),
        enc(plain(世帯番号="H3", 宛名番号="A3")).replace(b"A3,", b'A3,"', 1),  # never closed
        enc(plain(世帯番号="H4", 宛名番号="A4")),
        enc(plain(世帯番号="H5", 宛名番号="A5")),
    ]
    path = tmp_path / "open.csv"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    info = await run(nhi, path, m=mapping.parse({**_nhi_toml(), "file": {"encoding": "cp932"}}, "nhi-cp932"))
    problems = {r["line"]: r["message"] for r in await imports.problems(nhi, info.id)}
    assert list(problems) == [3]
    assert "閉じられていません" in problems[3]
    stored = {r["household_no"] for r in await nhi.fetch("select household_no from household")}
    assert stored == {"H2", "H4", "H5"}


async def test_placeholder_dates_are_read_as_empty(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    """0001-01-01 or 9999-12-31 for "none" (区民でなくなった日 9999/12/31: still a resident) is not a
    date (asyncpg would store ±infinity): an optional column reads it as empty, with a warning; a
    required one (納期限) refuses the row."""
    path = write(
        tmp_path / "placeholders.csv",
        [
            row(世帯番号="H1", 宛名番号="A1", 区民でなくなった日="9999/12/31"),
            row(世帯番号="H2", 宛名番号="A2", 生年月日="0001-01-01"),
            row(世帯番号="H3", 宛名番号="A3", 納期限="99991231"),
        ],
    )
    info = await run(nhi, path)
    problems = [
        (r["line"], r["column_name"], r["severity"], r["message"])
        for r in await imports.problems(nhi, info.id)
    ]
    assert sorted(p[:3] for p in problems) == [
        (2, "区民でなくなった日", "warning"),
        (3, "生年月日", "warning"),
        (4, "納期限", "error"),  # required: missing
        (4, "納期限", "warning"),
    ]
    assert all("範囲外" in p[3] for p in problems if p[2] == "warning")
    assert (info.rows_stored, info.rows_warned, info.rows_rejected) == (2, 2, 1)
    stored = {r["atena_no"]: r for r in await nhi.fetch("select * from person")}
    assert stored["A1"]["resident_until"] is None
    assert stored["A2"]["birth_date"] is None


async def test_a_warning_on_a_rejected_line_does_not_say_stored(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    """The report's 警告(取り込み済み) means the line was stored: not said of a line an error kept out."""
    lines = [
        row(世帯番号="H1", 宛名番号="A1", 納期限="R07.02.30", 電話番号1="03-1234"),  # an error and a warning
        row(世帯番号="H2", 宛名番号="A2", 電話番号1="03-1234"),  # a warning alone
    ]
    info = await run(nhi, write(tmp_path / "both.csv", lines))
    assert (info.rows_rejected, info.rows_warned) == (1, 1)
    text = (await _report(nhi, info.id, page_size=5000)).decode("utf-8-sig")
    labels = {(r[0], r[2]) for r in csv.reader(io.StringIO(text))}
    assert labels >= {
        ("2", "エラー(取り込まず)"),
        ("2", report.WARNING_ON_REJECTED),
        ("3", "警告(取り込み済み)"),
    }
    assert ("2", "警告(取り込み済み)") not in labels


async def test_a_last_line_cut_short_is_refused_not_stored_as_it_stands(
    nhi: asyncpg.Pool, tmp_path: Path
) -> None:
    """A copy stopped part-way: the last line has lost its end (and its line break). Stored, its
    last field cut to '' overwrote a good value; now it is refused and says why."""
    plain = partial(row, 調定額="56000")
    lines = [
        enc(list(NHI_HEADER)),
        enc(plain(世帯番号="H2", 宛名番号="A2")),
        enc(plain(世帯番号="H3", 宛名番号="A3")),
    ]
    path = tmp_path / "cut.csv"
    path.write_bytes(b"\r\n".join(lines)[:-1])  # the last character and the line break gone
    info = await run(nhi, path, m=mapping.parse({**_nhi_toml(), "file": {"encoding": "cp932"}}, "nhi-cp932"))
    problems = {r["line"]: r["message"] for r in await imports.problems(nhi, info.id)}
    assert list(problems) == [3]
    assert "途中で終わっています" in problems[3]
    assert {r["household_no"] for r in await nhi.fetch("select household_no from household")} == {"H2"}
    lenient = mapping.parse({**_nhi_toml(), "file": {"encoding": "cp932", "last_line_break": False}}, "nhi-x")
    await run(nhi, path, m=lenient)  # a source that never ends its last line: told so in its mapping
    assert {r["household_no"] for r in await nhi.fetch("select household_no from household")} == {"H2", "H3"}
    whole = tmp_path / "whole.csv"  # the same lines, each with its line break: all stored
    whole.write_bytes(b"\r\n".join(lines) + b"\r\n")
    await run(nhi, whole, m=mapping.parse({**_nhi_toml(), "file": {"encoding": "cp932"}}, "nhi-cp932"))
    assert {r["household_no"] for r in await nhi.fetch("select household_no from household")} == {"H2", "H3"}
