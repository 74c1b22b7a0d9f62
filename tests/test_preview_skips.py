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
