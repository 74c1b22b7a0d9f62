"""Skipping through the preview queue (スキップ) to read records without calling anyone is refused:
over real HTTP, with the simulated PBX and the embedded PostgreSQL (the rule: campaigns.previewing)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import asyncpg

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import SimulatedPbx
from tests import factory
from tests.client import PageClient


async def test_a_preview_skipped_too_soon_or_too_often_is_refused_and_audit_logged(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """Skipping through the preview queue reads records without calling anyone (the QA's script read
    65 households in 7 s): a record is on screen PREVIEW_LOOK_S before it may be skipped, and an
    operator skips at most PREVIEW_SKIPS_PER_HOUR; the first refusal of the hour is audit-logged."""
    w = await factory.world(pool, mode="preview")
    for i in range(4):
        await factory.household(pool, w.campaign_id, f"035555032{i}", name=f"見本 {i}", priority=i + 1)
    strict = replace(settings, preview_look_s=1, preview_skips_per_hour=2)
    async with runtime.started(strict) as product:
        op = PageClient(product.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            await op.wait(lambda m: m["type"] == "record")
            status, reply = await op.post("/api/agent/skip")
            assert (status, reply["error"]) == (409, "error.skip_too_soon")
            for n in (1, 2):
                await asyncio.sleep(1.1)
                op.forget()
                assert (await op.post("/api/agent/skip"))[0] == 200
                shown = await op.wait(lambda m: m["type"] == "record")
                assert shown["record"]["name_kanji"] == f"見本 {n}"
            assert (await op.post("/logout", {}))[0] == 302  # and logging out starts no new hour
        finally:
            await op.close()
        op = PageClient(product.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            await op.wait(lambda m: m["type"] == "record")
            await asyncio.sleep(1.1)
            for _ in range(2):
                status, reply = await op.post("/api/agent/skip")
                assert (status, reply["error"]) == (409, "error.too_many_skips")
        finally:
            await op.close()
    refused = await pool.fetch("select user_id, detail from audit_log where action = 'preview.skips_refused'")
    assert [(r["user_id"], json.loads(r["detail"])) for r in refused] == [
        (w.operator.id, {"skips_last_hour": 2})
    ]


async def test_pausing_and_coming_back_shows_the_same_record_not_the_next(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """休憩 then 受付開始 again (or logging out and in) gave the next household each time: 40 records
    in 44 s read that way, round the skip limits (privacy QA). The record given back is theirs again."""
    w = await factory.world(pool, mode="preview")
    for i in range(3):  # one priority: a household given back goes behind the others waiting
        await factory.household(pool, w.campaign_id, f"035555033{i}", name=f"見本 {i}")
    async with runtime.started(replace(settings, preview_look_s=0)) as product:
        op = PageClient(product.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            assert (await op.wait(lambda m: m["type"] == "record"))["record"]["name_kanji"] == "見本 0"
            for _ in range(3):
                assert (await op.post("/api/agent/pause"))[0] == 200
                await op.wait(lambda m: m["type"] == "agent" and m["state"] == "paused")
                op.forget()
                assert (await op.post("/api/agent/ready", {"campaign_id": w.campaign_id}))[0] == 200
                shown = await op.wait(lambda m: m["type"] == "record")
                assert shown["record"]["name_kanji"] == "見本 0"
            assert (await op.post("/logout", {}))[0] == 302
        finally:
            await op.close()
        op = PageClient(product.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            assert (await op.wait(lambda m: m["type"] == "record"))["record"]["name_kanji"] == "見本 0"
            op.forget()
            assert (await op.post("/api/agent/skip"))[0] == 200  # a skip moves on, as it counts
            assert (await op.wait(lambda m: m["type"] == "record"))["record"]["name_kanji"] == "見本 1"
        finally:
            await op.close()
    shown = "select count(*) from audit_log where action = 'record.view'"
    assert await pool.fetchval(shown) == 6  # each showing is a view, of two households in all
