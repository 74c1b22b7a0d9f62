"""`dialer campaign` as a supervisor or administrator runs it: create, tune, refuse bad values."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import asyncpg
import pytest

from dialer import who
from tests import factory
from tests.test_cli import _env, _one_clear_line, _run


async def test_create_tune_and_show_a_campaign(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    await factory.department(pool, "tax")
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    code, out, err = await _run(
        env, "campaign", "create", "--department", "tax", "--name", "住民税 12月", "--mode", "progressive",
        "--caller-id", "０３-１２３４-５６７８",
    )  # fmt: skip
    assert code == 0, err
    cid = int(out.split()[1])
    row = await pool.fetchrow("select status, caller_id, dial_mode from campaign where id = $1", cid)
    assert tuple(row) == ("draft", "0312345678", "progressive")
    made = await pool.fetchrow("select department_id, detail from audit_log where action = 'campaign.create'")
    assert (made["department_id"], json.loads(made["detail"])["name"]) == ("tax", "住民税 12月")

    window = tmp_path / "window.toml"
    window.write_text(
        'mon = ["09:30-12:00", "13:00-22:00"]\nsun = ["21:00-23:00"]\nholiday = []\n', encoding="utf-8"
    )
    policy = tmp_path / "retry.json"
    policy.write_text('{"busy_after_minutes": 15, "max_total": 6}', encoding="utf-8")
    code, out, err = await _run(
        env, "campaign", "set", str(cid), "--status", "active", "--window", str(window),
        "--retry", str(policy), "--target-abandon", "0.02",
    )  # fmt: skip
    assert code == 0, err
    assert "cut back to 8:00-21:00 on mon, sun" in err
    assert "nothing left to call on sun (no calls those days)" in err
    shown = json.loads(out)
    assert shown["status"] == "active"
    assert shown["calling_window"]["mon"] == ["09:30-12:00", "13:00-21:00"]
    assert shown["calling_window"]["tue"] == ["09:00-20:00"]  # days not given keep the defaults
    assert shown["retry_policy"]["busy_after_minutes"] == 15
    assert shown["retry_policy"]["max_total"] == 6
    assert shown["pacing"] == {
        "target_abandon": 0.02,
        "max_lines_per_operator": 3.0,
        "amd_false_machine": 0.005,
    }
    assert not shown["calling_window_is_default"]

    code, out, err = await _run(env, "campaign", "list", "--department", "tax")
    assert code == 0, err
    assert "住民税 12月" in out
    assert "own window, retry, pacing" in out

    code, out, err = await _run(
        env,
        "campaign",
        "set",
        str(cid),
        "--window",
        "default",
        "--max-lines",
        "2",
        "--amd-false-machine",
        "0.02",
    )
    assert code == 0, err
    shown = json.loads(out)
    assert shown["calling_window_is_default"]
    # the target is kept
    assert shown["pacing"] == {
        "target_abandon": 0.02,
        "max_lines_per_operator": 2.0,
        "amd_false_machine": 0.02,
    }


async def test_bad_values_are_refused_and_change_nothing(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    await factory.department(pool, "nhi")
    cid = await factory.campaign(pool, "nhi", name="国保 催告")
    before = await pool.fetchrow("select * from campaign where id = $1", cid)
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    broken = tmp_path / "broken.toml"
    broken.write_text('mon = ["9時から"]\n', encoding="utf-8")
    unsafe = tmp_path / "unsafe.json"
    unsafe.write_text('{"abandoned_after_minutes": 0}', encoding="utf-8")
    huge = tmp_path / "huge.toml"
    huge.write_text("busy_after_minutes = 9999999999999\n", encoding="utf-8")
    cases = [
        (
            ("--target-abandon", "0.05", "--status", "paused"),
            r"pacing: target_abandon must be between 0 and 0.03",
        ),
        (("--max-lines", "0.5"), r"max_lines_per_operator"),
        (("--amd-false-machine", "0.5"), r"amd_false_machine must be between 0 and 0.2"),
        (("--window", str(broken)), r"window: mon: '9時から' is not a span"),
        (("--window", str(tmp_path / "missing.toml")), r"window: cannot read"),
        (("--caller-id", "03-1234-ABCD"), r"caller ID '03-1234-ABCD' is not a Japanese telephone number"),
        (("--caller-id", "0000-00-0000"), r"caller ID '0000-00-0000' is not a Japanese telephone number"),
        (("--name", "国保\x1b催告"), r"name: 1 to 100 characters, no control characters"),
        (("--retry", str(unsafe)), r"retry: abandoned_after_minutes must be between 4320 and 43200, not 0"),
        (("--retry", str(huge)), r"retry: busy_after_minutes must be between 5 and 1440"),
    ]
    for args, pattern in cases:
        code, _, err = await _run(env, "campaign", "set", str(cid), *args)
        assert code == 2, (args, err)
        _one_clear_line(err, pattern)
    assert await pool.fetchrow("select * from campaign where id = $1", cid) == before
    code, out, err = await _run(env, "campaign", "create", "--department", "nhi", "--name", "番号なし")
    assert code == 0, err
    blank = int(out.split()[1])
    code, _, err = await _run(env, "campaign", "set", str(blank), "--status", "active")
    assert code == 2
    _one_clear_line(err, r"caller ID: a campaign cannot be active without a Japanese caller ID")
    code, _, err = await _run(env, "campaign", "set", str(cid), "--caller-id", "", "--status", "active")
    assert code == 2
    _one_clear_line(err, r"cannot be active without a Japanese caller ID")
    assert await pool.fetchval("select status from campaign where id = $1", blank) == "draft"
    code, _, err = await _run(
        env, "campaign", "set", str(blank), "--status", "active", "--caller-id", "03-1234-5678"
    )
    assert code == 0, err
    code, _, err = await _run(env, "campaign", "show", "999999")
    assert code == 2  # as an unknown user is; 3 is the database unreachable
    _one_clear_line(err, r"no campaign 999999")
    code, _, err = await _run(env, "campaign", "create", "--department", "nhi", "--name", "国保 催告")
    assert code == 2
    _one_clear_line(err, r"already has a campaign named")


async def test_a_segment_is_previewed_then_filled(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    await pool.execute("delete from campaign_target")
    amounts = (30_000, 120_000, 250_000, 400_000)
    await factory.households_for_a_segment(pool, w.campaign_id, "03555520", "S", amounts)
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    rules = tmp_path / "segment.toml"
    rules.write_text(
        '# 滞納繰越 10万〜30万円\nyears = "carried_over"\nunpaid_min_yen = 100000\nunpaid_max_yen = 300000\n',
        encoding="utf-8",
    )
    code, out, err = await _run(env, "campaign", "preview", str(w.campaign_id), "--segment", str(rules))
    assert code == 0, err
    assert "2 households match, arrears ¥370,000 together; 0 already on its list, 0 waiting in another" in out
    assert "(rules from the file, not stored)" in out
    assert await pool.fetchval("select segment from campaign where id = $1", w.campaign_id) is None

    code, out, err = await _run(env, "campaign", "set", str(w.campaign_id), "--segment", str(rules))
    assert code == 0, err
    assert json.loads(out)["segment"]["unpaid_max_yen"] == 300_000
    code, out, err = await _run(env, "campaign", "fill", str(w.campaign_id))
    assert code == 0, err
    assert "2 households match; 2 added, 0 no longer matching set aside" in out
    listed = await pool.fetch(
        "select h.household_no from campaign_target t join household h on h.id = t.household_id "
        "where t.campaign_id = $1 order by t.priority",
        w.campaign_id,
    )
    assert [r["household_no"] for r in listed] == ["S2", "S1"]  # the largest arrears first

    bad = tmp_path / "bad.json"
    bad.write_text('{"years": "last", "unpaid_min_yen": 1}', encoding="utf-8")
    code, out, err = await _run(env, "campaign", "set", str(w.campaign_id), "--segment", str(bad))
    assert code == 2
    _one_clear_line(
        err,
        r"^dialer: error: segment: years must be one of 'any', 'current_only', 'carried_over', got 'last' "
        r"\(nothing changed\)$",
    )
    assert json.loads(await pool.fetchval("select segment from campaign where id = $1", w.campaign_id)) == {
        "years": "carried_over", "unpaid_min_yen": 100_000, "unpaid_max_yen": 300_000,
    }  # fmt: skip
    code, _, err = await _run(env, "campaign", "fill", "999")
    assert (code, err.strip()) == (2, "dialer: error: no campaign 999")
    logged = await pool.fetch(
        "select action, detail from audit_log where object_type = 'campaign' and object_id = $1 order by id",
        str(w.campaign_id),
    )  # every count, change and fill, as the console's are; nothing for the refused change
    assert [(r["action"], json.loads(r["detail"]).get("os_user") is not None) for r in logged] == [
        ("campaign.preview", True), ("campaign.update", True), ("campaign.fill", True),
    ]  # fmt: skip
    assert json.loads(logged[1]["detail"])["changed"] == ["segment"]
    # narrower rules: the count says who on the list a fill would set aside
    narrower = tmp_path / "narrower.toml"
    narrower.write_text('years = "carried_over"\nunpaid_min_yen = 200000\nunpaid_max_yen = 300000\n')
    code, out, err = await _run(env, "campaign", "preview", str(w.campaign_id), "--segment", str(narrower))
    assert code == 0, err
    assert "1 household matches" in out
    assert "; 1 of those waiting on its list outside them (a fill with these rules sets them aside)" in out


def test_a_command_run_by_a_uid_with_no_login_name_is_audited_by_its_uid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A container started with an arbitrary uid and no USER: getpass cannot name it (the uid has
    no passwd entry), and the command must still work and say who ran it."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid: int) -> None:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    assert who.os_user() == f"uid {os.getuid()}"
