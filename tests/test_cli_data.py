"""`dialer import`, `dialer import-payments`, `dialer imports`, `dialer export` as an integrator runs them."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import asyncpg

from dialer.imports import mapping
from dialer.imports.sample import write_households
from tests import factory
from tests.test_cli import _env, _one_clear_line, _run
from tests.test_imports import enc, row
from tests.test_payments_import import payments_file


async def test_import_report_payments_and_export_from_the_command_line(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    await factory.department(pool, "nhi")
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    data = tmp_path / "滞納者一覧.csv"
    code, out, err = await _run(env, "imports", "sample", "--households", "30", "--output", str(data))
    assert code == 0, err
    owed = row(
        世帯番号="H001",
        宛名番号="A001",
        年度="R07",
        相当年度="2025",
        期別="1",
        調定額="30000",
        収納額="0",
        未納額="30000",
    )
    data.write_bytes(data.read_bytes() + enc(owed) + b"\r\n")
    code, out, err = await _run(env, "import", "--department", "nhi", "--as-of", "R07.11.01", str(data))
    assert code == 0, err
    assert "rejected 0" in out
    # a broken line: exit 1, the good rows stored, the report written
    data.write_bytes(
        data.read_bytes() + enc(row(世帯番号="HX", 宛名番号="AX", 生年月日="令和0年1月1日")) + b"\r\n"
    )
    report = tmp_path / "errors.csv"
    code, out, err = await _run(env, "import", "--department", "nhi", "--report", str(report), str(data))
    assert code == 1, err
    assert "rejected 1" in out
    lines = list(csv.reader(io.StringIO(report.read_bytes().decode("utf-8-sig"))))
    assert lines[1][1] == "生年月日"
    run_id = out.split("import #", 1)[1].split()[0]
    code, again, err = await _run(env, "imports", "report", run_id)  # the same report, on stdout
    assert code == 0, err
    assert again == report.read_bytes().decode("utf-8")
    read = await pool.fetchrow("select department_id, detail from audit_log where action = 'import.report'")
    assert read["department_id"] == "nhi"
    assert json.loads(read["detail"])["via"] == "cli"
    assert json.loads(read["detail"])["os_user"]  # the rejected lines quote residents: who read them
    failed = await pool.fetchval(
        """insert into import_run (department_id, kind, file_name, file_sha256, file_bytes, mapping, status,
                                   finished_at, message)
           values ('nhi', 'households', '途中.csv', '', 0, 'nhi-sample', 'failed', now(),
                   'interrupted: DatabaseUnavailable') returning id"""
    )
    code, out, _ = await _run(env, "imports", "list", "--department", "nhi")
    assert code == 0
    assert out.count("滞納者一覧.csv") == 2
    assert "途中.csv" in out
    assert "interrupted: DatabaseUnavailable" in out  # why a failed run stored nothing
    code, _, err = await _run(env, "imports", "report", str(failed))
    assert code == 0
    assert f"import #{failed} failed: interrupted: DatabaseUnavailable" in err
    # payments: H001 pays its one debt in full
    pay = payments_file(tmp_path / "収納.csv", [{"収納番号": "R1", "宛名番号": "A001", "収納額": "30000"}])
    code, out, err = await _run(env, "import-payments", "--department", "nhi", str(pay))
    assert code == 0, err
    assert "households paid off: 1" in out
    assert await pool.fetchval("select unpaid_yen from household where household_no = 'H001'") == 0
    # export: staff only
    await factory.user(pool, "staff1", "staff", "nhi")
    await factory.user(pool, "op1", "operator", "nhi", "1001")
    out_file = tmp_path / "history.csv"
    args = [
        "export",
        "--department",
        "nhi",
        "--kind",
        "history",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
    ]
    code, _, err = await _run(env, *args, "--user", "op1", "--output", str(out_file))
    assert code == 2
    _one_clear_line(err, "only staff export")
    code, out, err = await _run(env, *args, "--user", "staff1", "--output", str(out_file))
    assert code == 0, err
    assert out_file.read_bytes().decode("cp932").startswith("日時,世帯番号")
    assert await pool.fetchval("select count(*) from audit_log where action = 'export'") == 1
    exported = json.loads(await pool.fetchval("select detail from audit_log where action = 'export'"))
    assert exported["via"] == "cli"
    assert exported["os_user"]  # who ran it, beside the staff member named
    # a path that cannot be written: refused before the export is made or audited
    code, _, err = await _run(env, *args, "--user", "staff1", "--output", str(tmp_path / "no" / "x.csv"))
    assert code == 2
    _one_clear_line(err, "Cannot write")
    assert await pool.fetchval("select count(*) from audit_log where action = 'export'") == 1
    # a refused export leaves yesterday's file at that path as it was
    before = out_file.read_bytes()
    code, _, _ = await _run(env, *args, "--user", "op1", "--output", str(out_file))
    assert code == 2
    assert out_file.read_bytes() == before
    assert not list(tmp_path.glob(".*.part"))  # nothing half-written  # noqa: ASYNC240
    # --report always writes the run's report: an old one is never left in its place
    code, out, err = await _run(
        env, "import-payments", "--department", "nhi", "--report", str(report), str(pay)
    )
    assert code == 0, err
    assert len(list(csv.reader(io.StringIO(report.read_bytes().decode("utf-8-sig"))))) == 1  # the header


async def test_import_errors_a_user_can_act_on(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    await factory.department(pool, "nhi")
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    code, _, err = await _run(env, "import", "--department", "nhi", str(tmp_path / "missing.csv"))
    assert code == 7
    _one_clear_line(err, "Cannot open")
    bad_mapping = tmp_path / "m.toml"
    bad_mapping.write_text('kind = "households"\n[columns]\nhousehold_no = "世帯番号"\n', encoding="utf-8")
    code, _, err = await _run(env, "import", "--department", "nhi", "--mapping", str(bad_mapping), "x.csv")
    assert code == 2
    assert "atena_no is required" in err
    code, _, err = await _run(env, "import", "--department", "police", str(tmp_path / "x.csv"))
    assert code == 2
    _one_clear_line(err, "No shipped mapping")
    other = tmp_path / "other.csv"
    other.write_text("番号,名前\r\n1,2\r\n", encoding="cp932")
    code, _, err = await _run(env, "import", "--department", "nhi", str(other))
    assert code == 7
    _one_clear_line(err, "世帯番号")
    # mistakes in a mapping that shows only against a file: refused before any row is read
    sample = tmp_path / "sample.csv"
    write_households(sample, 3, encoding="cp932")
    runs = await pool.fetch("select id, status from import_run")
    code, _, err = await _run(env, "import", "--department", "nhi", "--as-of", "2099-01-01", str(sample))
    assert code == 2  # a date typed a year ahead would make every later export "older"
    _one_clear_line(err, "after today")
    shipped = (mapping.SHIPPED / "nhi-sample.toml").read_text(encoding="utf-8")
    bad_constant = tmp_path / "constant.toml"
    bad_constant.write_text(
        shipped.replace('debt_type = "nhi"', 'debt_type = "NHI 保険料"'),
        encoding="utf-8",
    )
    code, _, err = await _run(
        env, "import", "--department", "nhi", "--mapping", str(bad_constant), str(sample)
    )
    assert code == 2
    _one_clear_line(err, r"\[constants\] debt_type")
    far = tmp_path / "far.toml"
    far.write_text(shipped.replace('household_no = "世帯番号"', "household_no = 99"), encoding="utf-8")
    code, _, err = await _run(env, "import", "--department", "nhi", "--mapping", str(far), str(sample))
    assert code == 7
    _one_clear_line(err, "「99」")
    assert await pool.fetch("select id, status from import_run") == runs


async def test_the_results_export_gives_codes_and_their_names(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    """Each call: the codes the delinquency system reads, and the same in words for people."""
    w = await factory.world(pool)
    await factory.call_history(pool, w.campaign_id, w.operator.id, dialed=3, live=1)
    await factory.user(pool, "staff1", "staff", "nhi")
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    today = await pool.fetchval("select (now() at time zone 'Asia/Tokyo')::date")
    out_file = tmp_path / "results.csv"
    code, _, err = await _run(
        env, "export", "--department", "nhi", "--kind", "results", "--from", str(today - timedelta(days=1)),
        "--to", str(today), "--user", "staff1", "--output", str(out_file),
    )  # fmt: skip
    assert code == 0, err
    lines = list(csv.reader(io.StringIO(out_file.read_bytes().decode("cp932"))))
    header = lines[0]
    assert header[5:7] == ["発信結果", "応対結果コード"]
    assert header[-2:] == ["発信結果名", "応対結果"]
    rows = {(r[5], r[6], r[-2], r[-1]) for r in lines[1:]}
    assert rows == {("connected", "refused", "通話", "拒否"), ("no_answer", "", "応答なし", "")}


async def test_a_file_without_its_header_line_is_refused_without_printing_a_residents_values(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    """Its first line is a resident's: the message (stderr, kept by cron and journald) says which
    columns are missing and how many cells the line has, never its values."""
    await factory.department(pool, "nhi")
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    data = tmp_path / "noheader.csv"
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerow(row(氏名="秘密 花子", 住所="見本県秘密町1-2-3"))
    data.write_bytes(buf.getvalue().encode("cp932"))
    code, out, err = await _run(env, "import", "--department", "nhi", str(data))
    assert code != 0
    assert "no column" in err
    assert "秘密" not in err + out
