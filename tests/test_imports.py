"""Imports against the embedded PostgreSQL, from real files in the encodings municipalities send.

Files are written by the tests, broken ones included; every check reads what the database holds.
"""

from __future__ import annotations

import csv
import dataclasses
import io
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
    with pytest.raises(ImportFileError, match=r"not valid cp932 \(the file looks like utf-16"):
        await run(nhi, path, m=wrong)
    # and the other way round: a CP932 file declared UTF-16 (no BOM, no zero bytes) says what it looks like
    cp932 = write(tmp_path / "cp932.csv", [row()], encoding="cp932")
    utf16 = mapping.parse({**_nhi_toml(), "file": {"encoding": "utf-16"}}, "nhi-utf16")
    with pytest.raises(ImportFileError, match=r"not valid utf-16 \(the file looks like cp932\)") as refused:
        await run(nhi, cp932, m=utf16)
    assert refused.value.reason == "header_encoding"  # (the page's message names the encoding to check)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ImportFileError) as nothing:  # too short to tell its encoding: said empty (review)
        await run(nhi, empty, m=utf16)
    assert nothing.value.reason == "empty"
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
    same_layout = dataclasses.replace(NHI, departments=())  # a municipality's one layout for both
    await import_file(nhi, ImportRequest(path=path, department_id="tax", mapping=same_layout))
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
