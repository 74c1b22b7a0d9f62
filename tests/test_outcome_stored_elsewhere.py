"""An outcome stored without the dialer that holds the operator knowing it: resent by the page as
a restarted dialer took the call over, or saved through another dialer's web app. The operator
must not be left in wrap-up for good (QA: stuck until the dialer was restarted). Two dialers on the
embedded PostgreSQL and the simulated PBX, real HTTP and WebSocket."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.client import PageClient


async def _talking(op: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx) -> tuple[int, int]:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355552101", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1)
    )
    await op.ready_as("op1", w.campaign_id)
    pop = await op.wait(lambda m: m["type"] == "record")
    await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    return w.campaign_id, int(pop["attempt_id"])


@pytest.fixture
async def pages(settings: Settings) -> AsyncIterator[tuple[PageClient, PageClient]]:
    """A page on one dialer (the one that will hold op1) and a page on another."""
    async with runtime.started(settings) as a, runtime.started(settings) as b:
        op, other = PageClient(a.url), PageClient(b.url)
        try:
            yield op, other
        finally:
            await op.close()
            await other.close()


async def test_an_outcome_stored_elsewhere_during_the_call_skips_wrap_up(
    pages: tuple[PageClient, PageClient], pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    op, other = pages
    _, attempt = await _talking(op, pool, sim)
    await other.open_as("op1")
    await other.save(attempt, "refused")  # the slot on A does not know
    op.forget()
    ended = await op.hang_up()
    assert ended["needs_disposition"] is True
    await op.wait_state("ready")  # not wrap-up: the outcome is stored


async def test_saving_again_an_outcome_stored_elsewhere_ends_wrap_up(
    pages: tuple[PageClient, PageClient], pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    op, other = pages
    _, attempt = await _talking(op, pool, sim)
    op.forget()
    await op.hang_up()
    await op.wait_state("wrap_up")
    await other.open_as("op1")
    await other.save(attempt, "refused")
    body = {"attempt_id": attempt, "token": str(uuid.uuid4()), "code": "refused"}
    before = len(op.messages)
    status, reply = await op.post("/api/dispositions", body)
    assert (status, reply["error"]) == (409, "error.already_recorded")
    await op.wait(lambda m: m["type"] == "agent" and m["state"] == "ready", since=before)
    assert await pool.fetchval("select code from disposition where attempt_id = $1", attempt) == "refused"


async def test_a_conversation_left_open_by_a_dead_dialer_is_asked_for_before_ready(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """A dialer died mid-conversation and the resident hung up while none ran: the call is still
    open in the database (not swept yet), its channel gone at Asterisk. The page is asked for its
    outcome at once, and Ready waits for it (it went through, and the call was forgotten)."""
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355552201")
    attempt = await pool.fetchval(
        """insert into attempt (campaign_id, target_id, household_id, department_id, dial_mode, channel_id,
                                operator_id, originated_at, answered_at, connected_at)
           select campaign_id, id, household_id, department_id, 'progressive', 'dlr-a-gone', $1,
                  now() - interval '2 minutes', now() - interval '110 seconds', now() - interval '108 seconds'
           from campaign_target returning id""",
        w.operator.id,
    )
    op = PageClient(product.url)
    try:
        await op.open_as("op1")
        ended = await op.wait(lambda m: m["type"] == "call_ended")
        assert (ended["attempt_id"], ended["outcome"], ended["needs_disposition"]) == (attempt, "lost", True)
        status, body = await op.post("/api/agent/ready", {"campaign_id": w.campaign_id})
        assert (status, body["error"]) == (409, "error.outcome_owed")
        await op.save(attempt, "refused")
        assert (await op.post("/api/agent/ready", {"campaign_id": w.campaign_id}))[0] == 200
    finally:
        await op.close()
