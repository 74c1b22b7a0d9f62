"""Reading an export's layout: encodings, mapping files, and batches converted as rows would be."""

from __future__ import annotations

import io
import random
import re
from typing import Any

import pytest

from dialer.errors import ConfigError, ImportFileError
from dialer.imports import mapping, rows
from dialer.imports.csvfile import detect_encoding


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("世帯番号,氏名\r\n1,山田\r\n".encode("cp932"), "cp932"),
        ("世帯番号,氏名\r\n1,山田\r\n".encode(), "utf-8-sig"),
        ("世帯番号,氏名\r\n1,山田\r\n".encode("utf-8-sig"), "utf-8-sig"),
        ("世帯番号,氏名\r\n1,山田\r\n".encode("utf-16"), "utf-16"),
        ("ab,cd\r\n".encode("utf-16-le"), "utf-16-le"),
        ("ab,cd\r\n".encode("utf-16-be"), "utf-16-be"),
        (b"a,b\r\n1,2\r\n", "utf-8-sig"),
        (b"a,b\r\n" + b"1,2\r\n" * 500_000 + "山田".encode("cp932"), "cp932"),  # past the first megabyte
        ("ｶﾅ,ﾃｽﾄ\r\n".encode("cp932"), "cp932"),  # half-width kana are single bytes in cp932
        ("世帯番号,氏名\r\n1,山田\r\n".encode("utf-16-le"), "utf-16-le"),  # no BOM, Japanese from the start
        ("世帯番号,氏名\r\n1,山田\r\n".encode("utf-16-be"), "utf-16-be"),
        (  # UTF-8 with one row in another encoding: still UTF-8 (the row alone is reported)
            "世帯番号,氏名\r\n".encode() + "1,山田太郎\r\n".encode() * 5 + "2,鈴木\r\n".encode("cp932"),
            "utf-8-sig",
        ),
    ],
)
def test_encoding_detection(data: bytes, encoding: str) -> None:
    f = io.BytesIO(data)
    assert detect_encoding(f) == encoding
    assert f.tell() == 0


def test_a_layout_for_one_department_is_refused_for_another() -> None:
    nhi = mapping.load("nhi-sample")
    mapping.check_department(nhi, "nhi")
    with pytest.raises(ImportFileError) as refused:
        mapping.check_department(nhi, "tax")
    assert (refused.value.reason, refused.value.params["departments"]) == ("wrong_department", "nhi")
    own = mapping.parse({**_minimal(), "departments": []}, "own.toml")  # left out or empty: any
    mapping.check_department(own, "tax")
    with pytest.raises(ConfigError, match="departments must be a list"):
        mapping.parse({**_minimal(), "departments": "nhi"}, "own.toml")


def _minimal() -> dict[str, Any]:
    return {
        "kind": "households",
        "columns": {"household_no": "世帯番号", "atena_no": "宛名番号", "name_kanji": "氏名"},
    }


def test_shipped_mappings_load() -> None:
    names = mapping.shipped()
    assert {"nhi-sample", "tax-sample", "payments-sample"} <= set(names)
    for name in names:
        assert mapping.load(name).name == name


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "people"}, "kind must be one of"),
        (
            {"kind": "households", "columns": {"atena_no": "宛名番号", "name_kanji": "氏名"}},
            "household_no is required",
        ),
        ({"kind": "households", "columns": {"houshold_no": "世帯番号"}}, "houshold_no: not a field"),
        ({"kind": "households", "file": {"encoding": "euc-jp"}}, "encoding must be one of"),
        ({"kind": "households", "file": {"delimiter": "x"}}, "delimiter must be"),
        (
            {"kind": "households", "file": {"header": False}, "columns": {"household_no": "世帯番号"}},
            "position",
        ),
        (
            {"kind": "households", "columns": {"fiscal_year": "年度"}},
            "debt_type is required when fiscal_year",
        ),
        ({"kind": "households", "values": {"sex": {"1": "male"}}}, "not mapped"),
        ({"kind": "households", "columns": {"household_no": 0}}, "position"),
        ({"kind": "payments", "columns": {"atena_no": "宛名番号"}}, "amount_yen is required"),
        ({"kind": "households", "colums": {}}, "colums: unknown setting"),
        ({"kind": "households", "columns": "世帯番号"}, "columns must be a table"),
        ({**_minimal(), "file": "cp932"}, "file must be a table"),
        ({**_minimal(), "values": "01=nhi"}, "values must be a table"),
        (
            {**_minimal(), "columns": {**_minimal()["columns"], "sex": "性別"}, "values": {"sex": "1"}},
            "[values.sex] must be a table of codes",
        ),
        ({**_minimal(), "constants": {"debt_type": {"a": 1}}}, "debt_type: give a text or a number"),
        ({"kind": "payments", "columns": {"phones": ["電話番号"]}}, "phones: not a field of a payments file"),
        ({**_minimal(), "complete": "yes"}, "complete must be true or false"),
        ({**_minimal(), "complete": True}, "complete = true is for a households layout with debts"),
        ({**_minimal(), "complete_closes_at_most": 2}, "complete_closes_at_most must be a share above 0"),
    ],
)
def test_mapping_mistakes_are_all_reported(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        mapping.parse(data, "test.toml")


def test_a_column_named_in_a_file_without_names_is_told_once_and_why() -> None:
    data = {
        "kind": "households",
        "file": {"header": False},
        "columns": {"household_no": "世帯番号", "atena_no": 2},
    }
    with pytest.raises(ConfigError) as bad:
        mapping.parse({**data, "columns": {**data["columns"], "name_kanji": 3}}, "own.toml")
    message = str(bad.value)
    assert "household_no: give a column position (1, 2, …): [file] header = false" in message
    assert "household_no is required" not in message  # it is mapped, wrongly: said once


def test_unknown_mapping_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="nhi-sample"):
        mapping.load("no-such-layout")


def test_batch_conversion_gives_what_row_by_row_conversion_gives() -> None:
    """The column-by-column fast path and the row path agree, on good rows and on every kind of bad one."""
    from dialer.imports.csvfile import Row
    from dialer.imports.records import household_batch, household_row
    from dialer.imports.rows import Converter
    from dialer.imports.sample import NHI_HEADER, household_rows

    header = list(NHI_HEADER)
    col = {h: i for i, h in enumerate(header)}
    rng = random.Random(5)
    edits = [
        ("生年月日", "平成32年1月1日"),
        ("生年月日", "平成31年5月1日"),
        ("納期限", "令和0年4月1日"),
        ("調定額", "-5"),
        ("調定額", "１２，３４５"),
        ("未納額", "1"),
        ("氏名", ""),
        ("氏名", "渡\ue000辺"),
        ("氏名", "ﾔﾏﾀﾞ　ﾀﾛｳ"),
        ("住所", "  見本町  1-2 "),
        ("電話番号1", "03-1234"),
        ("電話番号1", "0120-123-456"),
        ("電話番号2", "０９０－１２３４－５６７８"),
        ("電話番号2", "+81 90 1234 5678"),
        ("電話番号1", "03-1234-5678(自宅)"),
        ("電話番号1", "(自宅)03\t1234 5678"),
        ("電話番号1", "03-1234-5678 内線12"),
        ("電話番号1", "0570-123-456"),
        ("携帯電話番号", "090-1234-567"),
        ("携帯電話番号", "携帯なし"),
        ("郵便番号", "1234"),
        ("性別", "X"),
        ("期別", "第3期"),
        ("期別", "13"),
        ("年度", ""),
        ("宛名番号", "a b"),
        ("口座振替", "有"),
        ("滞納区分", "\x00"),
        ("住所", "\ufffd"),
        # whitespace and controls in columns that are otherwise plain ASCII
        ("宛名番号", "A\t1"),
        ("世帯番号", " 000000001 "),
        ("調定額", "43000 "),
        ("調定額", "43\x0b000"),
        ("年度", "R07\x1f"),
        ("通知書番号", "N1  2"),
        ("郵便番号", "975-9623\u00a0"),
        ("生年月日", "S33.02.19\r"),
        ("未納額", "4\x0730"),  # our column separator inside a cell
        ("延滞金", "1\x070"),
        ("宛名番号", "A\x07B"),
    ]
    rows = []
    for line, fields in enumerate(household_rows(600, seed=9), start=2):
        if rng.random() < 0.3:
            name, value = rng.choice(edits)
            fields[col[name]] = value
        if rng.random() < 0.02:
            fields = fields[:10]
        rows.append(Row(line, line, fields))
    conv = Converter(
        mapping.load("nhi-sample"), header, lambda ref: header.index(ref) if ref in header else None
    )
    one_by_one = [household_row(conv, r) for r in rows]
    staged, phones, problems = [], [], []
    for i in range(0, len(rows), 40):  # small batches: a column is plain in some, edited in others
        s, ph, pr = household_batch(conv, rows[i : i + 40])
        staged += s
        phones += ph
        problems += pr

    def key(p: object) -> tuple[object, ...]:
        return (p.line, p.column, p.severity, p.message, p.value, p.household_no, p.atena_no)  # type: ignore[attr-defined]

    assert sorted(staged) == sorted(s for s, _, _ in one_by_one if s is not None)
    assert sorted(phones) == sorted(p for _, ph, _ in one_by_one for p in ph)
    assert sorted(map(key, problems)) == sorted(key(p) for _, _, pr in one_by_one for p in pr)
    assert len(problems) > 50  # the edits did reach both paths


def test_a_binary_files_header_is_named_short_and_printable() -> None:
    """A file that is no CSV at all (a spreadsheet, an image) decodes to a "header" of garbage: the
    message names the missing columns and shows only the start of it, nothing that moves a terminal."""
    header = ["PK\x03\x04\x14\x00\x06\x00" + "謎" * 3000, "\x1b[2J"]
    with pytest.raises(ImportFileError) as refused:
        rows.Converter(mapping.load("nhi-sample"), header, lambda ref: None)
    assert refused.value.reason == "no_columns"
    assert len(refused.value.message) < 600
    assert "\x1b" not in refused.value.message
    assert "\x00" not in refused.value.message
