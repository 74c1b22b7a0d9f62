"""`dialer users`: an administrator adds, lists and changes the people who log in, and switches a
leaver's login off; every change is in the audit log, and the leaver's open page closes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import asyncpg

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from dialer.store import lockouts, users
from tests import factory
from tests.client import PageClient, until
from tests.test_cli import _env, _one_clear_line, _run


async def test_an_administrator_adds_lists_and_changes_users(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    await factory.department(pool, "nhi")
    await factory.department(pool, "tax")
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    add = (
        "users",
        "add",
        "--login",
        "op1",
        "--name",
        "山田 花子",
        "--role",
        "operator",
        "--department",
        "nhi",
    )
    code, out, err = await _run(env, *add, "--extension", "1001", stdin=b"a-long-password\n")
    assert (code, out.strip()) == (0, "created user op1 (operator)"), err
    code, _, err = await _run(env, *add, stdin=b"a-long-password\n")
    assert code == 2
    _one_clear_line(err, r"a user with login 'op1' already exists \(`dialer users set`")
    for bad, message in (
        (["--login", "op 11", "--department", "nhi"], "a login ID is 2-64 letters"),
        (["--login", "op12", "--department", "police"], "no such department"),
        (["--login", "op13"], "only an administrator may belong to no department"),
        (
            ["--login", "op14", "--department", "nhi", "--extension", "1001"],
            "extension '1001' belongs to another",
        ),
    ):
        code, _, err = await _run(
            env, "users", "add", "--name", "x", "--role", "operator", *bad, stdin=b"a-long-password\n"
        )
        assert code == 2, (bad, err)
        _one_clear_line(err, message)

    code, _, err = await _run(
        env, "users", "add", "--login", "adm2", "--name", "x", "--role", "admin", "--department", "nhi",
        stdin=b"a-long-password\n",
    )  # fmt: skip
    assert code == 2, err
    _one_clear_line(err, "an administrator belongs to no department")
    code, _, err = await _run(env, "users", "set", "op1", "--role", "admin")  # still in nhi
    assert code == 2, err
    _one_clear_line(err, "an administrator belongs to no department: they see every one \\(--department ''")
    code, out, err = await _run(env, "users", "set", "ｏｐ１", "--extension", "1002", "--name", "ﾔﾏﾀﾞ　花")
    assert code == 0, err
    assert out.split()[:5] == ["changed", "op1", "operator", "nhi", "ext"]
    # as imported names are: half-width kana whole, the ideographic space one space (staff QA)
    assert await pool.fetchval("select display_name from app_user where login = 'op1'") == "ヤマダ 花"
    for bad, message in (
        (["op9", "--name", "x"], "no user 'op9'"),
        (["op1"], "nothing to change"),
        (["op1", "--department", ""], "only an administrator may belong to no department"),
        (["op1", "--department", "police"], "no such department"),
        (["op1", "--extension", "12345678901"], "2-8 digits"),
        (["op1", "--name", " "], "display name"),
    ):
        code, _, err = await _run(env, "users", "set", *bad)
        assert code == 2, (bad, err)
        _one_clear_line(err, message)
    await factory.user(pool, "op2", "operator", "tax", "2001")
    code, _, err = await _run(env, "users", "set", "op1", "--extension", "2001")
    assert code == 2
    _one_clear_line(err, "extension '2001' belongs to another user")
    code, _, err = await _run(env, "users", "set", "op1", "--password", stdin=b"short\n")
    assert code == 2
    _one_clear_line(err, "at least 8 characters")

    code, out, err = await _run(env, "users", "disable", "op1")
    assert code == 0, err
    code, out, _ = await _run(env, "users", "list", "--department", "nhi")
    assert [line.split()[:6] for line in out.splitlines()] == [
        ["op1", "operator", "nhi", "ext", "1002", "DISABLED"]
    ]
    row = await pool.fetchrow("select display_name, extension, active from app_user where login = 'op1'")
    assert tuple(row) == ("ヤマダ 花", "1002", False)
    entries = await pool.fetch(
        "select action, object_id, detail from audit_log where object_type = 'app_user' order by id"
    )
    assert [(e["action"], e["object_id"]) for e in entries] == [
        ("user.add", "op1"), ("user.set", "op1"), ("user.disable", "op1")
    ]  # fmt: skip
    changed = json.loads(entries[1]["detail"])
    assert (changed["before"]["extension"], changed["after"]["extension"]) == ("1001", "1002")
    assert changed["password_changed"] is False
    assert "os_user" in changed
    assert all(
        "password" not in k or k == "password_changed" for e in entries for k in json.loads(e["detail"])
    )
    await pool.execute(  # given a department by an older version: a leaver is still switched off at once
        "insert into app_user (login, display_name, role, department_id, password_hash) "
        "values ('oldadm', 'x', 'admin', 'nhi', 'x')"
    )
    code, _, err = await _run(env, "users", "disable", "oldadm")
    assert code == 0, err


async def test_a_leavers_login_is_switched_off_at_once(
    tmp_path: Path, settings: Settings, db_dsn: str, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """A disabled login is refused, and the page the leaver still has open closes (no resident's
    record reaches it any more); a new password ends the old sessions too."""
    w = await factory.world(pool)
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    async with runtime.started(replace(settings, session_check_s=0.3)) as running:
        page, again = PageClient(running.url), PageClient(running.url)
        try:
            await page.ready_as("op1", w.campaign_id)
            code, out, err = await _run(env, "users", "disable", "op1")
            assert code == 0, err
            assert out.startswith("disabled (sessions ended) op1")
            await page.wait_closed()
            assert (await page.get("/operator"))[0] in (302, 303)  # to the login page
            assert await again.login("op1", factory.PASSWORD) != 200
            code, _, err = await _run(env, "users", "enable", "op1")
            assert code == 0, err
            assert await again.login("op1", factory.PASSWORD) == 200
            code, _, err = await _run(env, "users", "set", "op1", "--password", stdin=b"another-long-one\n")
            assert code == 0, err
            assert (await again.get("/operator"))[0] in (302, 303)
            fresh = PageClient(running.url)
            try:
                assert await fresh.login("op1", factory.PASSWORD) != 200
                assert await fresh.login("op1", "another-long-one") == 200
            finally:
                await fresh.close()
        finally:
            await page.close()
            await again.close()


async def test_a_leaver_switched_off_mid_call_gets_no_record_and_no_next_call(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """Their page closes only at its next session check (30 s); meanwhile the call ringing for
    them is answered: its record is neither read nor pushed (privacy QA: a record reached a
    disabled operator 3 s after `dialer users disable`)."""
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550871", Behaviour("answer", ring_s=1.0, talk_s=0.5, amd_s=0.1)
    )
    async with runtime.started(settings) as running:  # session_check_s: 30 s
        page = PageClient(running.url)
        try:
            await page.ready_as("op1", w.campaign_id)
            await until(lambda: len(sim.actions("Originate")) >= 2)  # the operator's phone, then the resident
            async with pool.acquire() as conn:
                await users.change(conn, "op1", {}, active=False, via={"test": True})
            await page.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
            await asyncio.sleep(1)  # (a record pushed would have come by now)
            assert not [m for m in page.messages if m["type"] == "record"]
            views = "select count(*) from audit_log where action = 'record.view'"
            assert await pool.fetchval(views) == 0
        finally:
            await page.close()


async def test_a_leaver_switched_off_while_ready_is_paused_at_the_next_heartbeat(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """Ready on a predictive campaign, their page open (checked every 30 s): from the next heartbeat
    no call is put through to them, as none may show them a resident (privacy QA)."""
    w = await factory.world(pool, mode="predictive")
    async with runtime.started(replace(settings, heartbeat_s=1)) as running:
        page = PageClient(running.url)
        try:
            await page.ready_as("op1", w.campaign_id)
            await page.wait_state("ready")
            async with pool.acquire() as conn:
                await users.change(conn, "op1", {}, active=False, via={"test": True})
            paused = await page.wait(lambda m: m["type"] == "agent" and m["state"] == "paused", within=5)
            assert paused["notice"] == "notice.login_disabled"
        finally:
            await page.close()


async def test_a_locked_login_is_lifted_by_an_administrator_or_a_new_password(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool, product: runtime.Running
) -> None:
    """Five mistyped passwords lock a user ID for 15 minutes: the administrators' list says so, and
    `dialer users unlock` (or a new password) lets the person in at once, in the audit log."""
    await factory.world(pool)
    await factory.user(pool, "ad1", "admin", None)
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    page, admin = PageClient(product.url), PageClient(product.url)
    try:
        code, out, err = await _run(env, "users", "unlock", "op1")
        assert (code, out.strip()) == (
            0,
            "user op1 was not locked (0 failed logins in the last 15 minutes); recorded anyway",
        ), err
        for _ in range(5):
            assert await page.login("op1", "wrong-password") == 401
        assert await page.login("op1", factory.PASSWORD) == 429
        assert await admin.login("ad1", factory.PASSWORD, page="/admin") == 200
        status, html = await admin.get("/admin")
        assert (status, 'data-testid="locked-op1"' in html, 'data-testid="locked-sv1"' in html) == (
            200,
            True,
            False,
        )
        code, out, _ = await _run(env, "users", "list")
        assert [line.split()[5] for line in out.splitlines() if line.split()[0] in ("op1", "sv1")] == [
            "active,LOCKED",
            "active",
        ]

        code, out, err = await _run(
            env, "users", "unlock", "ｏｐ１"
        )  # typed full-width, as at the login form
        assert (code, out.strip()) == (
            0,
            "unlocked user op1 (5 failed logins in the last 15 minutes set aside)",
        ), err
        assert await page.login("op1", factory.PASSWORD) == 200
        assert 'data-testid="locked-op1"' not in (await admin.get("/admin"))[1]
        entry = await pool.fetchrow(
            "select detail, user_id from audit_log where action = 'login.unlocked' order by id desc limit 1"
        )
        assert (json.loads(entry["detail"])["failures"], entry["user_id"]) == (5, None)
        assert "os_user" in json.loads(entry["detail"])

        for _ in range(5):  # locked again; the person forgot it: a new password lifts the lock too
            assert await page.login("sv1", "wrong-password") == 401
        assert await page.login("sv1", factory.PASSWORD, page="/supervisor") == 429
        code, _, err = await _run(env, "users", "set", "sv1", "--password", stdin=b"another-long-one\n")
        assert code == 0, err
        assert await page.login("sv1", "another-long-one", page="/supervisor") == 200
        lifted = await pool.fetchval(
            "select detail from audit_log where action = 'login.unlocked' and object_id = 'sv1'"
        )
        assert (json.loads(lifted)["new_password"], json.loads(lifted)["failures"]) == (True, 5)

        for bad, message in (
            ((), "give a user ID, or --address"),
            (("op1", "--address", "10.0.0.7"), "give a user ID, or --address"),
            (("nobody",), "no user 'nobody'"),
            (("--address", "10.0.0.300"), "'10.0.0.300' is not an IP address"),
        ):
            code, _, err = await _run(env, "users", "unlock", *bad)
            assert code == 2, (bad, err)
            _one_clear_line(err, message)
    finally:
        await page.close()
        await admin.close()


async def test_an_address_locked_by_failed_logins_is_lifted_by_an_administrator(
    settings: Settings, tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    await factory.world(pool)
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning", LOGIN_FAILURES_PER_ADDRESS="3")
    async with runtime.started(replace(settings, login_failures_per_address=3)) as running:
        page = PageClient(running.url)
        try:
            for login in ("op1", "sv1", "op1"):
                assert await page.login(login, "wrong-password") == 401
            assert await page.login("sv1", factory.PASSWORD, page="/supervisor") == 429
            code, out, _ = await _run(env, "users", "list")
            assert (
                out.splitlines()[-1] == "logins refused from: 127.0.0.1 (dialer users unlock --address ...)"
            )
            code, out, err = await _run(env, "users", "unlock", "sv1")  # the ID is not what is locked: said
            assert "logins are refused from: 127.0.0.1" in out, err
            code, out, err = await _run(env, "users", "unlock", "--address", " 127.0.0.1 ")
            assert (code, out.strip()) == (
                0,
                "unlocked address 127.0.0.1 (3 failed logins in the last 15 minutes set aside)",
            ), err
            assert await page.login("sv1", factory.PASSWORD, page="/supervisor") == 200
            assert await lockouts.address_failures(pool, "127.0.0.1") == 0
            assert await lockouts.recent_failures(pool, "op1") == 2  # the IDs' own counts are their own
        finally:
            await page.close()
