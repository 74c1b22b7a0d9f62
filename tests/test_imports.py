"""Imports against the embedded PostgreSQL, from real files in the encodings municipalities send.

Files are written by the tests, broken ones included; every check reads what the database holds.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dialer.errors import ImportFileError
from dialer.imports import mapping, report
from dialer.imports.run import ImportRequest, import_file
from dialer.imports.sample import NHI_HEADER, household_rows, write_households
from dialer.store import imports
from tests import factory

NHI = mapping.load("nhi-sample")


def row(**values: str) -> list[str]:
    """One line of the nhi-sample layout; unnamed columns are filled with a valid person's values."""
    base = dict(zip(NHI_HEADER, next(household_rows(1, seed=3)), strict=True))
    base.update({"世帯番号": "H001", "宛名番号": "A001", "期別": "1", "電話番号1": "03-1234-5678"})
    base.update(values)
    return [base[h] for h in NHI_HEADER]


def write(
    path: Path, rows: list[list[str]], encoding: str = "cp932", header: tuple[str, ...] = NHI_HEADER
) -> Path:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


async def run(pool: asyncpg.Pool, path: Path, m: mapping.Mapping = NHI, **kw: Any) -> imports.RunInfo:
    return await import_file(pool, ImportRequest(path=path, department_id="nhi", mapping=m, **kw))


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value an import writes (timestamps included: an unchanged row keeps its updated_at)."""
    return {
        "household": [tuple(r) for r in await pool.fetch("select * from household order by household_no")],
        "person": [tuple(r) for r in await pool.fetch("select * from person order by atena_no")],
        "phone": [tuple(r) for r in await pool.fetch("select * from phone order by household_id, key")],
        "debt": [tuple(r) for r in await pool.fetch("select * from debt order by source_key")],
    }


@pytest.fixture
async def nhi(pool: asyncpg.Pool, app_pool: asyncpg.Pool) -> asyncpg.Pool:
    """Departments nhi and tax; imports run as the product runs them (dialer_app, under RLS)."""
    await factory.department(pool, "nhi")
    await factory.department(pool, "tax")
    return app_pool


async def test_sample_export_lands_whole(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    path = tmp_path / "kokuho.csv"
    rows = write_households(path, 200, encoding="cp932")
    info = await run(nhi, path)
    assert info.status == "done"
    assert info.encoding == "cp932"
    assert (info.rows_read, info.rows_stored, info.rows_rejected) == (rows, rows, 0)
    assert await nhi.fetchval("select count(*) from household where department_id = 'nhi'") == 200
    assert info.counts["households"] == {"inserted": 200, "updated": 0}
    persons = await nhi.fetchval("select count(*) from person")
    assert info.counts["persons"]["inserted"] == persons >= 200
    assert await nhi.fetchval("select count(*) from debt") == rows
    # half-width kana arrive full-width; the ideographic space is a space; 和暦 became dates
    head = await nhi.fetchrow("select * from person where atena_no = '0000000010'")
    assert " " in head["name_kanji"]
    assert "　" not in head["name_kanji"]
    assert all(ch < "\uff61" or ch > "\uff9f" for ch in head["name_kana"])  # no half-width kana left
    assert head["birth_date"] is not None
    assert head["is_head"]
    assert head["sex"] == "male"
    # the household summary follows its debts and phones
    mismatched = await nhi.fetchval(
        """select count(*) from household h where unpaid_yen <> (select coalesce(sum(unpaid_yen), 0) from debt where household_id = h.id)
              or dialable <> exists (select 1 from phone p where p.household_id = h.id and p.valid)"""
    )
    assert mismatched == 0


async def test_reimporting_the_same_file_changes_nothing(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    path = tmp_path / "kokuho.csv"
    write_households(path, 50)
    await run(nhi, path)
    before = await snapshot(nhi)
    again = await run(nhi, path)
    assert again.status == "done"
    for table in ("households", "persons", "phones", "debts"):
        assert again.counts[table] == {"inserted": 0, "updated": 0}, table
    assert await snapshot(nhi) == before


async def test_a_newer_export_updates_in_place(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    first = write(
        tmp_path / "v1.csv", [row(住所="見本市見本町1-1", 調定額="30000", 収納額="0", 未納額="30000")]
    )
    await run(nhi, first, as_of=date(2025, 10, 1))
    await nhi.execute("update person set nationality = 'JP' where atena_no = 'A001'")  # not in this layout
    newer = write(
        tmp_path / "v2.csv",
        [
            row(
                住所="見本市試験台2-2",
                調定額="30000",
                収納額="10000",
                未納額="20000",
                電話番号2="090-1111-2222",
            )
        ],
    )
    info = await run(nhi, newer, as_of=date(2025, 11, 1))
    assert info.counts["households"] == {"inserted": 0, "updated": 1}
    assert info.counts["debts"] == {"inserted": 0, "updated": 1}
    assert info.counts["phones"] == {"inserted": 1, "updated": 0}
    assert await nhi.fetchval("select count(*) from household") == 1
    assert await nhi.fetchval("select address from household") == "見本市試験台2-2"
    assert await nhi.fetchval("select nationality from person") == "JP"  # unmapped: left alone
    assert await nhi.fetchval("select unpaid_yen from household") == 20000
    # an older export arriving late never overwrites the newer figures
    await run(nhi, first, as_of=date(2025, 10, 1))
    assert await nhi.fetchval("select paid_yen from debt") == 10000


async def test_the_newest_export_is_right_about_residents_and_their_numbers(
    nhi: asyncpg.Pool, tmp_path: Path
) -> None:
    """A number the newer export no longer gives is set aside (not dialed) until one gives it again;
    an older export arriving late adds what it alone has and changes nobody stored."""
    v1 = [row(氏名="山田 太郎", 住所="見本町1-1", 電話番号1="03-1234-5678", 電話番号2="", 携帯電話番号="")]
    await run(nhi, write(tmp_path / "v1.csv", v1), as_of=date(2025, 10, 1))
    staff_number = await nhi.fetchval(  # a number staff added: theirs, whatever the exports say
        """insert into phone (household_id, department_id, number, kind, source, priority)
           select id, 'nhi', '0312349999', 'landline', 'staff', 9 from household returning id"""
    )
    v2 = [
        row(
            氏名="山田 次郎",
            住所="見本町2-2",
            死亡日="2025-10-20",
            電話番号1="03-1111-3333",
            電話番号2="",
            携帯電話番号="",
        )
    ]
    info = await run(nhi, write(tmp_path / "v2.csv", v2), as_of=date(2025, 11, 1))
    assert info.counts["phones_set_aside"] == 1
    phones = {r["number"]: r for r in await nhi.fetch("select * from phone")}
    assert not phones["0312345678"]["valid"]
    assert phones["0312345678"]["invalid_reason"] == "最新の取込データにない番号です"
    assert phones["0311113333"]["valid"]
    assert phones["0312349999"]["valid"]
    assert phones["0312349999"]["id"] == staff_number

    late = [
        *v1,
        row(世帯番号="H002", 宛名番号="A002", 電話番号1="03-2222-4444", 電話番号2="", 携帯電話番号=""),
    ]
    info = await run(nhi, write(tmp_path / "late.csv", late), as_of=date(2025, 10, 1))
    assert info.counts["older_than"] == "2025-11-01"
    assert "older than the export of 2025-11-01" in report.summary(info)
    person = await nhi.fetchrow("select * from person where atena_no = 'A001'")
    assert (person["name_kanji"], person["death_date"]) == ("山田 次郎", date(2025, 10, 20))
    assert await nhi.fetchval("select address from household where household_no = 'H001'") == "見本町2-2"
    assert not await nhi.fetchval("select valid from phone where number = '0312345678'")
    assert await nhi.fetchval("select count(*) from person where atena_no = 'A002'") == 1  # new: added
    assert await nhi.fetchval("select valid from phone where number = '0322224444'")

    v3 = [row(氏名="山田 次郎", 死亡日="2025-10-20", 電話番号1="03-1234-5678", 電話番号2="", 携帯電話番号="")]
    info = await run(nhi, write(tmp_path / "v3.csv", v3), as_of=date(2025, 12, 1))
    phones = {r["number"]: r for r in await nhi.fetch("select * from phone")}
    assert (phones["0312345678"]["valid"], phones["0312345678"]["invalid_reason"]) == (True, None)
    assert not phones["0311113333"]["valid"]
    assert info.counts["phones_set_aside"] == 1
    # another layout (another system's export) knows other numbers: it sets none of these aside
    other_layout = mapping.parse({**_nhi_toml(), "name": "another-system"}, "another-system")
    v4 = [
        row(氏名="山田 次郎", 死亡日="2025-10-20", 電話番号1="090-5555-6666", 電話番号2="", 携帯電話番号="")
    ]
    info = await run(nhi, write(tmp_path / "v4.csv", v4), m=other_layout, as_of=date(2025, 12, 2))
    assert info.counts["phones_set_aside"] == 0
    assert await nhi.fetchval("select valid from phone where number = '0312345678'")


async def test_a_head_reported_deceased_leaves_every_campaign_at_once(
    nhi: asyncpg.Pool, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    both = [row(世帯番号="H001", 宛名番号="A001"), row(世帯番号="H002", 宛名番号="A002")]
    await run(nhi, write(tmp_path / "v1.csv", both), as_of=date(2025, 10, 1))
    cid = await factory.campaign(pool, "nhi")
    await pool.execute(
        """insert into campaign_target (campaign_id, household_id, department_id, state, lease_owner,
                                        lease_expires_at)
           select $1, id, 'nhi', case household_no when 'H001' then 'leased' else 'pending' end,
                  case household_no when 'H001' then 'dialer-1' end,
                  case household_no when 'H001' then now() + interval '1 minute' end
           from household""",
        cid,
    )
    newer = [
        row(世帯番号="H001", 宛名番号="A001", 死亡日="R07.10.20"),
        row(世帯番号="H002", 宛名番号="A002", 区民でなくなった日="R07.10.31"),
    ]
    info = await run(nhi, write(tmp_path / "v2.csv", newer), as_of=date(2025, 11, 1))
    assert info.counts["targets_excluded"] == 2
    targets = await pool.fetch(
        """select h.household_no, t.state, t.last_outcome, t.lease_owner from campaign_target t
           join household h on h.id = t.household_id order by 1"""
    )
    assert [tuple(t) for t in targets] == [
        ("H001", "excluded", "deceased", None),  # its queued call is taken back
        ("H002", "excluded", "moved_out", None),
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
async def test_every_encoding_gives_the_same_data(nhi: asyncpg.Pool, tmp_path: Path, encoding: str) -> None:
    rows = [
        row(
            氏名="ﾔﾏﾀﾞ　太郎",
            調定額="１２，０００",
            収納額="0",
            未納額="12000",
            電話番号1="０３－１２３４－５６７８",
        )
    ]
    info = await run(nhi, write(tmp_path / "f.csv", rows, encoding=encoding))
    assert info.rows_stored == 1
    assert info.encoding.startswith("utf-")
    person = await nhi.fetchrow("select name_kanji from person")
    assert person["name_kanji"] == "ヤマダ 太郎"
    assert await nhi.fetchval("select assessed_yen from debt") == 12000
    assert await nhi.fetchval("select number from phone where priority = 1") == "0312345678"  # 電話番号1


async def test_names_keep_their_ibm_extension_kanji(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    """CP932's IBM-extension 塚 and 神 are compatibility ideographs: NFKC would write another
    character; the name is stored as the register wrote it (half-width kana still normalised)."""
    path = write(tmp_path / "ibm.csv", [row(氏名="\ufa10本 \ufa19子", カナ氏名="ﾂｶﾓﾄ ｶﾐｺ")], "cp932")
    info = await run(nhi, path)
    assert (info.rows_stored, info.rows_warned) == (1, 0)
    person = await nhi.fetchrow("select name_kanji, name_kana from person")
    assert tuple(person) == ("\ufa10本 \ufa19子", "ツカモト カミコ")


async def test_one_row_in_another_encoding_spoils_only_that_row(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    """A UTF-8 export with one row pasted in from a CP932 file (auto-detected), and a UTF-16 export
    without a BOM declared as utf-16 in the mapping."""
    path = write(
        tmp_path / "mixed.csv", [row(世帯番号=f"H{i}", 宛名番号=f"A{i}") for i in range(1, 4)], "utf-8"
    )
    path.write_bytes(path.read_bytes() + enc(row(世帯番号="H4", 宛名番号="A4", 氏名="鈴木 一郎")) + b"\r\n")
    info = await run(nhi, path)
    assert info.encoding == "utf-8-sig"
    assert (info.rows_stored, info.rows_rejected) == (3, 1)
    problems = await imports.problems(nhi, info.id)
    assert {r["line"] for r in problems} == {5}  # each of its Japanese cells, by column
    assert "氏名" in {r["column_name"] for r in problems}
    assert all("文字コード" in r["message"] for r in problems)
    big_endian = write(tmp_path / "be.csv", [row(世帯番号="H9", 宛名番号="A9")], "utf-16-be")
    info = await run(nhi, big_endian, m=mapping.parse({**_nhi_toml(), "file": {"encoding": "utf-16"}}, "be"))
    assert (info.encoding, info.rows_stored) == ("utf-16-be", 1)


async def test_broken_rows_are_reported_and_good_rows_still_land(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    good = [row(世帯番号=f"H{i}", 宛名番号=f"A{i}") for i in range(1, 4)]
    lines = [
        enc(list(NHI_HEADER)),
        *(enc(r) for r in good),  # lines 2-4
        enc(row(世帯番号="H5", 宛名番号="A5", 納期限="令和0年4月1日")),  # 5: era year 0
        enc(row(世帯番号="H6", 宛名番号="A6", 生年月日="平成32年1月1日")),  # 6: 平成32年
        enc(row(世帯番号="H7", 宛名番号="A7")[:10]),  # 7: truncated line
        enc(row(世帯番号="H8", 宛名番号="A8")).replace(
            "見本".encode("cp932"), b"\x85\x40", 1
        ),  # 8: not cp932
        enc(row(世帯番号="H9", 宛名番号="A9", 氏名="渡\ue000辺 一")),  # 9: 外字 (F040 in cp932)
        enc(row(世帯番号="H1", 宛名番号="A1")),  # 10: the same debt as line 2
        enc(row(世帯番号="H11", 宛名番号="A11", 調定額="-5")),  # 11: negative amount
        enc(
            row(世帯番号="H12", 宛名番号="A12", 電話番号1="03-1234", 携帯電話番号="")
        ),  # 12: bad phone: kept, flagged
        b"",  # 13: a blank line
        enc(row(世帯番号="H14", 宛名番号="A14", 氏名="")),  # 14: required name empty
        enc(row(世帯番号="H15", 宛名番号="A15", 氏名="a\x00b")),  # 15: NUL
        enc(row(世帯番号="H16", 宛名番号="A1")),  # 16: A1 already in household H1
        enc(row(世帯番号="H\x0017", 宛名番号="A17")),  # 17: NUL in the key itself
        enc(row(世帯番号="HX18", 宛名番号="A18")).replace(
            b"HX18", b"H\x85\x4018"
        ),  # 18: not cp932, in the key
        b'H19,"A19,unterminated',  # 19: the file ends inside a quote
    ]
    assert b"\xf0\x40" in lines[8]
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\r\n".join(lines))
    info = await run(nhi, path, m=mapping.parse({**_nhi_toml(), "file": {"encoding": "cp932"}}, "nhi-cp932"))
    problems = {(r["line"], r["severity"]): r for r in await imports.problems(nhi, info.id)}
    expect_errors = {
        5: "令和0年",
        6: "平成32年",
        7: "列数が足りません",
        8: "文字コード",
        10: "行 2",
        11: "負",
        14: "必須",
        15: "制御文字",
        16: "世帯番号 H1",
        17: "制御文字",
        18: "文字コード",
        19: "引用符",
    }
    for line, fragment in expect_errors.items():
        assert (line, "error") in problems, (line, problems.keys())
        assert fragment in problems[(line, "error")]["message"], problems[(line, "error")]
    assert problems[(5, "error")]["column_name"] == "納期限"
    assert problems[(6, "error")]["column_name"] == "生年月日"
    assert problems[(9, "warning")]["column_name"] == "氏名"
    assert "外字" in problems[(9, "warning")]["message"]
    assert problems[(12, "warning")]["column_name"] == "電話番号1"
    # each line is marked with whose row it is, as far as its cells could be read (erase finds them)
    keys = {
        (r["line"], r["severity"]): (r["household_no"], r["atena_no"])
        for r in await nhi.fetch("select * from import_problem where import_id = $1", info.id)
    }
    assert keys[(5, "error")] == ("H5", "A5")  # the row path
    assert keys[(9, "warning")] == ("H9", "A9")
    assert keys[(10, "error")] == ("H1", "A1")  # rejected after staging
    assert keys[(12, "warning")] == ("H12", "A12")
    assert keys[(15, "error")] == ("H15", "A15")
    assert keys[(16, "error")] == ("H16", "A1")
    assert keys[(7, "error")] == ("H7", "A7")  # truncated after its keys
    assert keys[(8, "error")] == ("H8", "A8")  # the undecodable bytes are in another cell
    assert keys[(17, "error")] == ("", "A17")  # a key that cannot be read is not kept
    assert keys[(18, "error")] == ("", "A18")
    assert keys[(19, "error")] == ("", "")  # the CSV reader could not split the line
    assert info.rows_read == 17  # every non-blank line after the header, broken or not
    assert info.rows_rejected == len(expect_errors)
    assert info.rows_stored == info.rows_read - info.rows_rejected == 5
    assert info.counts["blank_lines"] == 1
    stored = {r["household_no"] for r in await nhi.fetch("select household_no from household")}
    assert stored == {"H1", "H2", "H3", "H9", "H12"}
    assert await nhi.fetchval("select name_kanji from person where atena_no = 'A9'") == "渡〓辺 一"
    bad_phone = await nhi.fetchrow(
        "select * from phone p join household h on h.id = p.household_id where household_no = 'H12'"
    )
    assert (bad_phone["valid"], bad_phone["raw"], bad_phone["invalid_reason"] is not None) == (
        False,
        "03-1234",
        True,
    )
    assert not await nhi.fetchval("select dialable from household where household_no = 'H12'")
    # the downloadable report names line, column and reason for each
    text = (await _report(nhi, info.id, page_size=5000)).decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == list(report.HEADER)
    assert parsed[1][:3] == ["5", "納期限", "エラー(取り込まず)"]
    assert [r[:4] for r in parsed[1:]] == [
        [str(r["line"]), r["column_name"], report.SEVERITY[r["severity"]], r["message"]]
        for r in await imports.problems(nhi, info.id)
    ]
    # a page of a few problems at a time (whole lines each), it is the same file
    for size in (1, 2, 3):
        assert (await _report(nhi, info.id, page_size=size)).decode("utf-8-sig") == text
    assert len(parsed) - 1 == await imports.count_problems(nhi, info.id) > 3


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


async def _report(pool: asyncpg.Pool, run_id: int, page_size: int) -> bytes:
    page = partial(imports.problem_page, pool, run_id, size=page_size)
    return b"".join([chunk async for chunk in report.stream(page)])


def enc(fields: list[str]) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue().encode("cp932")


def _nhi_toml() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((mapping.SHIPPED / "nhi-sample.toml").read_text(encoding="utf-8"))


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


async def test_a_file_that_does_not_match_its_mapping_stores_nothing(
    nhi: asyncpg.Pool, tmp_path: Path
) -> None:
    path = write(tmp_path / "other.csv", [["1", "2"]], header=("番号", "名前"))
    with pytest.raises(ImportFileError, match="「世帯番号」"):
        await run(nhi, path)
    run_row = await nhi.fetchrow("select status, message from import_run")
    assert run_row["status"] == "failed"
    assert "世帯番号" in run_row["message"]
    assert await nhi.fetchval("select count(*) from household") == 0


async def test_wrong_declared_encoding_is_refused_at_the_header(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    path = write(tmp_path / "utf16.csv", [row()], encoding="utf-16")
    wrong = mapping.parse({**_nhi_toml(), "file": {"encoding": "cp932"}}, "nhi-cp932")
    with pytest.raises(ImportFileError):
        await run(nhi, path, m=wrong)
    assert await nhi.fetchval("select count(*) from household") == 0


async def test_unknown_department_and_missing_file(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="No department"):
        await import_file(nhi, ImportRequest(path=tmp_path / "x.csv", department_id="police", mapping=NHI))
    with pytest.raises(ImportFileError, match="Cannot read"):
        await run(nhi, tmp_path / "missing.csv")


async def test_departments_keep_their_own_residents(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    """The same 宛名番号 in two departments is two people: one import never touches the other's."""
    path = write(tmp_path / "f.csv", [row()])
    await run(nhi, path)
    await import_file(nhi, ImportRequest(path=path, department_id="tax", mapping=NHI))
    assert await nhi.fetchval("select count(*) from person where atena_no = 'A001'") == 2
    assert {r[0] for r in await nhi.fetch("select department_id from debt")} == {"nhi", "tax"}


async def test_two_imports_at_once_for_one_department_take_turns(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "f.csv"
    write_households(path, 300)
    first, second = await asyncio.gather(run(nhi, path), run(nhi, path))
    assert {first.status, second.status} == {"done"}
    counts = sorted((first.counts["households"]["inserted"], second.counts["households"]["inserted"]))
    assert counts == [0, 300]  # one stored them, the other found them unchanged
    assert await nhi.fetchval("select count(*) from household") == 300


async def test_a_large_import_leaves_fresh_planner_statistics(nhi: asyncpg.Pool, tmp_path: Path) -> None:
    """The import analyzes the tables it filled (dialer_app may: MAINTAIN), so the planner knows their size."""
    path = tmp_path / "kokuho.csv"
    rows = write_households(path, 700)
    await run(nhi, path)
    stats = dict(
        await nhi.fetch(
            "select relname, reltuples::bigint from pg_class where relname in ('household', 'person', 'debt')"
        )
    )
    persons = await nhi.fetchval("select count(*) from person")
    assert stats == {"household": 700, "person": persons, "debt": rows}
