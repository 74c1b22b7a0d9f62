"""Operators assigned to a campaign: only they see it, press Ready on it and get its calls; taking an
operator off applies at once; none assigned means every operator of the department."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest

from dialer import runtime
from dialer.simpbx import SimulatedPbx
from tests import factory
from tests.client import PageClient, until
from tests.test_cli import _env, _one_clear_line, _run


def _operators_only(sv: PageClient, mode: str, operator_id: int) -> list[tuple[str, str]]:
    """The campaign form as a supervisor saves it, with one operator assigned."""
    return [("csrf", sv.csrf), ("action", "save"), ("name", "テスト催告"), ("status", "active"),
            ("dial_mode", mode), ("caller_id", "0312340001"), ("operators", str(operator_id))]  # fmt: skip


async def _posted(sv: PageClient, campaign_id: int, fields: list[tuple[str, str]]) -> int:
    async with sv.http.post(
        f"{sv.base}/supervisor/campaigns/{campaign_id}", data=fields, allow_redirects=False
    ) as r:
        return r.status


async def test_assigned_operators_only(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool)
    op2 = await factory.user(pool, "op2", "operator", "nhi", "1002")
    sv, op1, second = PageClient(product.url), PageClient(product.url), PageClient(product.url)
    try:
        assert await sv.login("sv1", factory.PASSWORD, page="/supervisor") == 200
        await op1.ready_as("op1", w.campaign_id)
        await op1.wait_state("ready")
        _, page = await sv.get(f"/supervisor/campaigns/{w.campaign_id}")
        assert f'name="operators" value="{op2.id}"' in page
        fields = _operators_only(sv, "progressive", op2.id)
        assert await _posted(sv, w.campaign_id, fields) == 303
        assert await pool.fetchval("select array_agg(user_id) from campaign_operator") == [op2.id]
        _, page = await sv.get(f"/supervisor/campaigns/{w.campaign_id}")
        assert f'name="operators" value="{op2.id}" checked' in page
        assert f'name="operators" value="{w.operator.id}" checked' not in page
        # op1, ready on it, is told, paused (not counted as waiting for calls: QA) and gets no call
        state = await op1.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.not_assigned")
        if state["state"] != "paused":
            state = await op1.wait_state("paused")
        assert state["notice"] == "notice.not_assigned"
        await factory.household(pool, w.campaign_id, "0355550951")
        await asyncio.sleep(1.5)  # turns of the dialling loop
        assert not [a for a in sim.actions("Originate") if a.get("Context") == "dialer-connect"]

        status, body = await op1.post("/api/agent/ready", {"campaign_id": w.campaign_id})
        assert (status, body["error"]) == (409, "error.not_assigned")
        _, page = await op1.get("/operator")
        assert "テスト催告" not in page  # not offered to op1 any more

        await second.ready_as("op2", w.campaign_id)
        await until(lambda: [a for a in sim.actions("Originate") if a.get("Context") == "dialer-connect"])
        # someone from another department cannot be assigned
        await factory.department(pool, "tax")
        tax_op = await factory.user(pool, "op-tax", "operator", "tax", "2001")
        fields[-1] = ("operators", str(tax_op.id))
        async with sv.http.post(
            f"{sv.base}/supervisor/campaigns/{w.campaign_id}", data=fields, allow_redirects=False
        ) as r:
            assert r.status == 422
            assert "この課のオペレーターから選んでください" in await r.text()
        assert await pool.fetchval("select array_agg(user_id) from campaign_operator") == [op2.id]
    finally:
        for c in (sv, op1, second):
            await c.close()


async def test_operators_from_the_command_line(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    code, out, err = await _run(env, "campaign", "set", str(w.campaign_id), "--operators", "op1")
    assert code == 0, err
    assert json.loads(out)["operators"] == [w.operator.id]
    code, _, err = await _run(
        env, "campaign", "set", str(w.campaign_id), "--operators", "op1,sv1", "--status", "paused"
    )
    assert code == 2
    _one_clear_line(err, r"operators: not operators of nhi: sv1 \(nothing changed\)$")
    assert await pool.fetchval("select status from campaign where id = $1", w.campaign_id) == "active"
    code, out, err = await _run(env, "campaign", "set", str(w.campaign_id), "--operators", "all")
    assert code == 0, err
    assert json.loads(out)["operators"] == []
    message = ("campaign", "set", str(w.campaign_id), "--machine-message")
    code, out, err = await _run(env, *message, "custom/nhi-call-back")
    assert code == 0, err
    assert json.loads(out)["machine_message"] == "custom/nhi-call-back"
    code, _, err = await _run(env, *message, "../secret")
    assert code == 2
    _one_clear_line(err, r"machine message: '\.\./secret' is not a sound file name")
    code, out, err = await _run(env, *message, "none")
    assert json.loads(out)["machine_message"] is None


@pytest.mark.parametrize("pbx_away", [False, True], ids=["pbx_up", "pbx_link_down"])
async def test_an_operator_taken_off_while_previewing_loses_the_record_at_once(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx, pbx_away: bool
) -> None:
    """Preview: the record on the page is the campaign's. Taken off it by a supervisor, the operator
    is paused and the household given back at once, not when they press 発信 (QA: they could keep
    reading a record of a campaign they no longer work on); also while the PBX link is down (review:
    reading a record needs no PBX)."""
    w = await factory.world(pool, mode="preview")
    op2 = await factory.user(pool, "op2", "operator", "nhi", "1002")
    hid = await factory.household(pool, w.campaign_id, "0355550961")
    sv, op1 = PageClient(product.url), PageClient(product.url)
    try:
        assert await sv.login("sv1", factory.PASSWORD, page="/supervisor") == 200
        await op1.ready_as("op1", w.campaign_id)
        record = await op1.wait(lambda m: m["type"] == "record")
        assert record["record"]["household_id"] == hid
        await op1.wait_state("preview")
        if pbx_away:
            sim.freeze(True)  # no answer to its Pings: the link is taken for down
            await until(lambda: not product.engine.link.up, within=15)
        assert await _posted(sv, w.campaign_id, _operators_only(sv, "preview", op2.id)) == 303
        state = await op1.wait(lambda m: m["type"] == "agent" and m["state"] == "paused", within=5)
        assert state["notice"] == "notice.not_assigned"
        target = await pool.fetchrow(
            "select state, lease_owner from campaign_target where household_id = $1", hid
        )
        assert tuple(target) == ("pending", None)  # back for the operators still on the campaign
    finally:
        for c in (sv, op1):
            await c.close()
