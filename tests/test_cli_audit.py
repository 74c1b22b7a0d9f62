"""`dialer audit`: the privacy officer reads one department's audit log (who viewed a resident's
record, what a user did, every export), as a table or CSV, never another department's entries;
the reading is itself recorded."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg

from dialer.store import attempts, audit, targets
from tests import factory
from tests.test_cli import _env, _one_clear_line, _run


async def _entries(pool: asyncpg.Pool) -> dict[str, int]:
    """A day of one department's log, with the other department's and a failed login beside it."""
    w = await factory.world(pool)
    await factory.department(pool, "tax")
    await factory.household(pool, w.campaign_id, "0355552001", no="H2001")
    await factory.household(pool, w.campaign_id, "0355552002", no="H2002")
    lease = await targets.lease_next(pool, w.campaign_id, "me", 600)
    assert lease is not None
    mine = lease.household_id
    other = await pool.fetchval("select id from household where id <> $1 and department_id = 'nhi'", mine)
    call = await attempts.create(pool, lease, operator_id=w.operator.id, dial_mode="progressive", link="pbx1")
    tax_op = await factory.user(pool, "tx1", "operator", "tax")
    tax_campaign = await factory.campaign(pool, "tax", "progressive")
    tax_house = await factory.household(pool, tax_campaign, "0355552003", dept="tax", no="H2001")
    for action, user, dept, otype, oid, detail in (
        ("record.view", w.operator.id, "nhi", "household", mine, {"reason": "progressive"}),
        ("disposition.save", w.operator.id, "nhi", "attempt", call.id, {"code": "promise"}),
        ("inbound.identify", w.operator.id, "nhi", "attempt", 999, {"found": True, "household_id": mine}),
        (
            "listen",
            w.supervisor.id,
            "nhi",
            "operator",
            w.operator.id,
            {"mode": "listen", "attempt_id": call.id},
        ),
        ("record.view", w.supervisor.id, "nhi", "household", other, {"reason": "listen"}),
        ("export", w.supervisor.id, "nhi", "results", "", {"rows": 2}),
        ("login.failed", None, None, "", "", {"login": "op1"}),
        ("login.unlocked", None, None, "app_user", "op1", {"login": "op1"}),  # done to op1, not by them
        ("login.failed", None, None, "", "", {"login": "tx1"}),  # another department's user
        ("login.failed", None, None, "", "", {"login": "?ab"}),  # an ID that is nobody's
        ("record.view", tax_op.id, "tax", "household", tax_house, {"reason": "preview"}),
    ):
        await audit.record(
            pool, action=action, user_id=user, department_id=dept, object_type=otype, object_id=oid,
            detail=detail, remote_addr="=10.0.0.9" if action == "export" else "10.0.0.8",
        )  # fmt: skip
    await audit.record(  # two days ago: outside today's log
        pool, action="record.view", user_id=w.operator.id, department_id="nhi", object_type="household",
        object_id=mine, detail={"reason": "preview"},
    )  # fmt: skip
    await pool.execute(
        "update audit_log set at = now() - interval '2 days' where id = (select max(id) from audit_log)"
    )
    return {"mine": mine, "other": other}


async def test_the_privacy_officer_reads_who_did_what_about_a_household(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    ids = await _entries(pool)
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")

    def actions(out: str) -> list[str]:
        return [line.split("  ")[3] for line in out.splitlines()[1:-1]]  # (under the headings)

    code, out, err = await _run(
        env, "audit", "--department", "nhi", "--household", "Ｈ２００１"
    )  # full-width
    assert code == 0, err
    assert actions(out) == ["record.view", "disposition.save", "inbound.identify", "listen"], out
    assert out.splitlines()[0].split("  ") == [
        "日時",
        "ユーザーID",
        "氏名",
        "操作",
        "対象",
        "対象番号",
        "世帯番号",
        "詳細",
        "端末",
    ]
    assert out.splitlines()[1].split("  ")[1:] == [
        "op1",
        "テスト op1",
        "record.view",
        "household",
        str(ids["mine"]),
        "H2001",  # (the household's number beside its internal one, while it is kept)
        '{"reason": "progressive"}',
        "10.0.0.8",
    ]
    assert out.splitlines()[-1].startswith("4 entries (nhi, ")
    assert "tx1" not in out
    assert [line.split("  ")[6] for line in out.splitlines()[1:-1]] == ["H2001"] * 4  # (the listen-in too)
    code, out, err = await _run(env, "audit", "--department", "nhi", "--resident", "AH2001")
    assert (code, actions(out)) == (0, ["record.view", "disposition.save", "inbound.identify", "listen"]), err

    code, out, err = await _run(env, "audit", "--department", "nhi", "--user", "sv1")
    assert (code, actions(out)) == (0, ["listen", "record.view", "export"]), err
    code, out, err = await _run(env, "audit", "--department", "nhi", "--action", "record.,export")
    assert (code, actions(out)) == (0, ["record.view", "record.view", "export"]), err
    code, out, err = await _run(env, "audit", "--department", "nhi", "--action", "record")  # as record.
    assert (code, actions(out)) == (0, ["record.view", "record.view"]), err
    code, out, err = await _run(
        env, "audit", "--department", "nhi", "--action", "rec"
    )  # not a part of a name
    assert (code, out.startswith("0 entries (nhi, ")) == (0, True), err
    code, out, err = await _run(
        env, "audit", "--department", "nhi", "--from", "2000-01-01", "--to", "2100-01-01"
    )
    assert (code, actions(out).count("record.view")) == (0, 3), err  # the one two days ago too
    code, out, err = await _run(env, "audit", "--department", "nhi", "--action", "login.")
    assert (code, out.startswith("0 entries")) == (0, True), err  # a failed login belongs to no department
    code, out, err = await _run(
        env, "audit", "--department", "nhi", "--user", "op1", "--unscoped", "--action", "login"
    )
    assert (code, actions(out)) == (0, ["login.failed"]), err  # their failed login names them by the ID typed
    code, out, err = await _run(env, "audit", "--department", "nhi", "--user", "tx1")
    assert (code, out.startswith("0 entries"), "belongs to department tax" in err) == (0, True, True), err
    code, out, err = await _run(env, "audit", "--department", "nhi", "--unscoped", "--action", "login.")
    assert (code, actions(out)) == (0, ["login.failed", "login.unlocked"]), err
    assert out.splitlines()[1].split("  ")[1:3] == ["-", "-"]  # (no user: an empty cell is shown as -)
    code, out, err = await _run(env, "audit", "--department", "nhi", "--action", "audit")
    earlier = await pool.fetchval("select count(*) from audit_log where action = 'audit.read'") - 1
    assert (code, actions(out)) == (0, ["audit.read"] * earlier), err  # (not this reading's own)

    csv_file = tmp_path / "監査.csv"
    code, out, err = await _run(
        env, "audit", "--department", "nhi", "--output", str(csv_file), "--lang", "en", "--action", "export"
    )
    assert (code, out.strip()) == (0, f"1 entry written to {csv_file}"), err
    data = csv_file.read_bytes()
    assert data.startswith(b"\xef\xbb\xbftime (Tokyo),user ID,")
    assert data.decode("utf-8-sig").splitlines()[1].endswith(",'=10.0.0.9")  # no formula for Excel
    assert oct(csv_file.stat().st_mode & 0o777) == "0o600"

    reads = await pool.fetch(
        "select department_id, detail from audit_log where action = 'audit.read' order by id"
    )
    assert len(reads) == 13
    first = json.loads(reads[0]["detail"])
    assert (reads[0]["department_id"], first["asked"]["by"], first["asked"]["household_ids"]) == (
        "nhi", "household", [ids["mine"]]
    )  # fmt: skip
    assert "os_user" in first
    assert not any("2001" in r["detail"] for r in reads)  # the number typed outlives no erasure (review)


async def test_bad_audit_options_say_what_is_wrong(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    await _entries(pool)
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    for args, message in (
        (("--department", "police"), "police"),
        (("--department", "nhi", "--user", "nobody"), "no user 'nobody'"),
        (
            ("--department", "nhi", "--household", "H9999"),
            r"no household \(世帯番号\) 'H9999' in department nhi",
        ),
        (
            ("--department", "tax", "--household", "H2002"),
            r"no household \(世帯番号\) 'H2002' in department tax",
        ),
        (("--department", "nhi", "--from", "2026-12-07", "--to", "2026-12-01"), "--to is before --from"),
        (("--department", "nhi", "--from", "令和0年1月1日"), "Not a date"),
    ):
        code, _, err = await _run(env, "audit", *args)
        assert code == 2, (args, err)
        _one_clear_line(err, message)
    kept = tmp_path / "kept.csv"
    kept.write_text("an earlier export")
    code, _, err = await _run(env, "audit", "--department", "nhi", "--household", "H9", "--output", str(kept))
    assert (code, kept.read_text()) == (2, "an earlier export"), err  # a typo empties no file (review)
    code, _, err = await _run(
        env, "audit", "--department", "nhi", "--household", "H2001", "--resident", "AH2001"
    )
    assert (code, "not allowed with argument" in err) == (2, True), err
    refused = await pool.fetch("select detail from audit_log where action = 'audit.read'")
    # a look-up that found nobody is a reading too, recorded without the number typed
    assert [
        (json.loads(r["detail"])["asked"]["found"], "H9" in r["detail"] or "2002" in r["detail"])
        for r in refused
    ] == [(False, False)] * 3


async def test_a_day_is_a_tokyo_day(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    for at in ("2026-04-30 14:59:59+00", "2026-04-30 15:00:00+00"):  # 23:59:59 and 0:00 in Tokyo
        await pool.execute(
            """insert into audit_log (at, user_id, department_id, action, object_type, object_id)
               values ($1::text::timestamptz, $2, 'nhi', 'record.view', 'household', $1)""",
            at,
            w.operator.id,
        )
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    for first, last, shown in (
        ("2026-04-30", "2026-04-30", ["2026-04-30 23:59:59"]),
        ("2026-05-01", "R8.5.1", ["2026-05-01 00:00:00"]),
        ("令和8年4月30日", "2026-05-01", ["2026-04-30 23:59:59", "2026-05-01 00:00:00"]),
    ):
        code, out, err = await _run(env, "audit", "--department", "nhi", "--from", first, "--to", last)
        assert code == 0, err
        assert [line.split("  ")[0] for line in out.splitlines()[1:-1]] == shown, (first, last)
