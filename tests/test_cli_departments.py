"""`dialer departments`: an administrator sets up the departments sharing the server."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg

from dialer.imports.sample import write_households
from tests.test_cli import _env, _one_clear_line, _run


async def test_an_administrator_adds_lists_and_changes_departments(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    # before the department exists, an import says how to add it (an option: exit 2)
    sample = tmp_path / "sample.csv"
    write_households(sample, 3)
    code, _, err = await _run(env, "import", "--department", "nhi", str(sample))
    assert code == 2
    _one_clear_line(err, "dialer departments add")
    code, out, err = await _run(
        env, "departments", "add", "--id", "nhi", "--ja", "国民健康保険課", "--en", "National Health Insurance",
        "--callback-number", "０３－１２３４－０００１",
    )  # fmt: skip
    assert code == 0, err
    assert "03-1234-0001" in out
    code, _, err = await _run(env, "departments", "add", "--id", "tax", "--ja", "税務課", "--en", "Tax")
    assert code == 0, err
    rows = await pool.fetch(
        "select id, name_ja, callback_number, export_encoding from department order by id"
    )
    assert [tuple(r) for r in rows] == [
        ("nhi", "国民健康保険課", "0312340001", "cp932"),
        ("tax", "税務課", "", "cp932"),
    ]
    for bad, message in (
        (["--id", "nhi", "--ja", "x", "--en", "x"], "exists already"),
        (["--id", "NHI!", "--ja", "x", "--en", "x"], "lower-case"),
        (["--id", "pension", "--ja", " ", "--en", "x"], "--ja"),
        (["--id", "pension", "--ja", "x", "--en", "x", "--callback-number", "110"], "10 or 11 digits"),
        (["--id", "pension", "--ja", "x", "--en", "x", "--callback-number", "0000000000"], "10 or 11 digits"),
    ):
        code, _, err = await _run(env, "departments", "add", *bad)
        assert code == 2, (bad, err)
        _one_clear_line(err, message)
    code, out, err = await _run(
        env, "departments", "set", "tax", "--callback-number", "03-1234-0002", "--export-encoding", "utf-8"
    )
    assert code == 0, err
    code, _, err = await _run(env, "departments", "set", "police", "--ja", "x")
    assert code == 2
    _one_clear_line(err, "No department 'police'")
    code, out, _ = await _run(env, "departments", "list")
    assert code == 0
    assert out.splitlines() == [
        "nhi        国民健康保険課 / National Health Insurance  callback 03-1234-0001  export cp932",
        "tax        税務課 / Tax  callback 03-1234-0002  export utf-8",
    ]
    entries = await pool.fetch("select action, department_id, detail from audit_log order by id")
    assert [(e["action"], e["department_id"]) for e in entries] == [
        ("department.add", "nhi"),
        ("department.add", "tax"),
        ("department.set", "tax"),
    ]
    change = json.loads(entries[2]["detail"])
    assert (change["before"]["callback_number"], change["after"]["callback_number"]) == ("", "0312340002")
    assert change["os_user"]


async def test_a_list_for_a_department_that_does_not_exist_says_so(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    """Not an empty list (exit 0), which reads as "none there" for a mistyped id."""
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    for command in (["codes", "list"], ["users", "list"], ["campaign", "list"], ["retention", "history"]):
        code, _, err = await _run(env, *command, "--department", "nosuch")
        assert code == 2, command
        _one_clear_line(err, r"No department 'nosuch' \(`dialer departments list` shows them\)")
