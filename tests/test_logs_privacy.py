"""Logs never contain personal data, even at DEBUG, across a whole call (numbers, names, addresses)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from dialer import logs, runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.client import PageClient


@pytest.fixture
def debug_logs(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    logs.configure("debug", "json")  # after capfd, so that the handler writes into the capture
    yield
    logs.configure("warning", "console")


async def test_a_call_logs_ids_not_people(
    debug_logs: None,
    settings: Settings,
    pool: asyncpg.Pool,
    sim: SimulatedPbx,
    capfd: pytest.CaptureFixture[str],
) -> None:
    w, _ = await factory.world_with_callee(
        pool,
        sim,
        "0355550999",
        Behaviour("answer", ring_s=0.2, talk_s=0.5, amd_s=0.1),
        name="個人 情報",
        kana="コジン ジョウホウ",
    )
    async with runtime.started(settings) as running:
        op = PageClient(running.url)
        try:
            await op.open_as("op1")
            await op.post("/api/agent/ready", {"campaign_id": w.campaign_id})
            ended = await op.wait(lambda m: m["type"] == "call_ended")
            await op.post(
                "/api/dispositions",
                {
                    "attempt_id": ended["attempt_id"],
                    "token": str(uuid.uuid4()),
                    "code": "refused",
                    "note": "電話番号 0355550999 を確認",
                },
            )
        finally:
            await op.close()
    out = "".join(capfd.readouterr())
    assert '"engine.originate"' in out  # logging did happen, at DEBUG
    assert '"call.ended"' in out
    for secret in ("0355550999", "03-5555-0999", "個人", "コジン", "見本町", "電話番号"):
        assert secret not in out, secret


async def test_a_server_error_is_logged_with_its_traceback(
    debug_logs: None, settings: Settings, pool: asyncpg.Pool, capfd: pytest.CaptureFixture[str]
) -> None:
    w = await factory.world(pool)
    await pool.execute("alter table campaign rename column machine_message to broken")  # a bug, say
    async with runtime.started(settings) as running:
        sv = PageClient(running.url)
        try:
            assert await sv.login("sv1", factory.PASSWORD, page="/supervisor") == 200
            status, _ = await sv.get(f"/supervisor/campaigns/{w.campaign_id}")
            assert status == 500
        finally:
            await sv.close()
    out = "".join(capfd.readouterr())
    error = next(line for line in out.splitlines() if '"Error handling request' in line)
    assert "<traceback object" not in error
    assert "Traceback (most recent call last)" in error
    assert "UndefinedColumnError" in error


async def test_a_database_errors_values_are_withheld_from_the_log(
    debug_logs: None, settings: Settings, pool: asyncpg.Pool, capfd: pytest.CaptureFixture[str]
) -> None:
    """A key that failed names the row's values (DETAIL), and a value asyncpg could not send is
    repeated in its error: a traceback in the log keeps neither (privacy QA: a 500's traceback
    repeated what was typed)."""
    log = logs.get("test")
    try:
        await pool.execute("select $1::bigint", 99_999_999_999_999_999_999)
    except (asyncpg.DataError, OverflowError):
        log.exception("test.failed")
    await factory.department(pool, "nhi")
    planted = "insert into household (department_id, household_no) values ('nhi', $1)"
    secret = "H-" + "個人" + "情報"  # (not as one word in this file: a traceback shows its lines)
    await pool.execute(planted, secret)
    try:
        await pool.execute(planted, secret)
    except asyncpg.UniqueViolationError as exc:
        log.exception("test.failed")
        log.error("test.detail", detail=str(exc)[:200])  # as store calls log what failed
    try:
        await pool.executemany("select $1::bigint", [(1,), (99_999_999_999_999_999_998,)])
    except (asyncpg.DataError, OverflowError):
        log.exception("test.failed")
    out = "".join(capfd.readouterr())
    assert out.count('"test.failed"') == 3
    assert '"test.detail"' in out
    assert "99999999999999999998" not in out
    assert "99999999999999999999" not in out
    assert "個人情報" not in out
    assert "UniqueViolationError" in out  # the error itself is still there, and where it happened
    assert "duplicate key value violates unique constraint" in out


def test_the_console_format_withholds_them_too(capfd: pytest.CaptureFixture[str]) -> None:
    """LOG_FORMAT=console (a terminal): the traceback is printed by the console renderer."""
    logs.configure("info", "console")
    try:
        try:
            number = "031234" + "5678"  # (not whole in this file: a traceback shows its lines)
            raise ValueError(f"duplicate key value\nDETAIL:  Key (number)=({number}) already exists.")
        except ValueError:
            logs.get("test").exception("test.failed")
    finally:
        logs.configure("warning", "console")
    out = "".join(capfd.readouterr())
    assert "test.failed" in out
    assert "duplicate key value" in out
    assert "0312345678" not in out
