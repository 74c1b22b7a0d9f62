"""Which dialer is alive, whose operator sessions are whose, and what the sweep gives back when
a dialer died: table by table, against the embedded PostgreSQL (the processes themselves, killed
mid-call, are in test_dialer_crash.py)."""

from __future__ import annotations

import asyncpg
import pytest

from campaigns import dialing
from dialer.store import attempts, processes, targets
from tests import factory

# ---- the sweep, table by table --------------------------------------------------------------
LIVE, ENDED = "live", "ended"


@pytest.mark.parametrize(
    ("owner_seen", "call", "link", "listed", "given_back"),
    [
        (True, None, "pbx1", True, False),  # a live dialer's household is its own
        (False, None, "pbx1", True, True),  # a dead dialer's preview: back at once
        (False, LIVE, "pbx1", True, False),  # its call is still up at our Asterisk: kept
        (False, ENDED, "pbx1", True, True),  # its call is gone from Asterisk: closed, back
        (False, ENDED, "pbx2", True, False),  # a call through another Asterisk: not ours to judge
        (False, ENDED, "pbx1", False, False),  # channels unknown (our link is down): kept
    ],
)
async def test_a_dead_dialers_households_come_back_unless_a_call_may_still_be_up(
    pool: asyncpg.Pool,
    owner_seen: bool,
    call: str | None,
    link: str,
    listed: bool,
    given_back: bool,
) -> None:
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355551501")
    lease = await targets.lease_next(pool, w.campaign_id, "dead-one", 600)
    assert lease is not None
    if owner_seen:
        await processes.register(pool, "dead-one", "pbx1", 60)
    channel = None
    if call is not None:
        made = await attempts.create(pool, lease, operator_id=None, dial_mode="progressive", link=link)
        channel = made.channel_id
    live = ({channel} if call == LIVE and channel else {"dlr-a999999"}) if listed else None

    swept = await targets.sweep_expired(pool, owner="me", dead_after_s=60, link="pbx1", live_channels=live)

    state = await pool.fetchval("select state from campaign_target")
    assert (state == "pending") is given_back
    assert swept.returned == (1 if given_back else 0)
    if call is not None:
        ended = await pool.fetchval("select ended_at is not null from attempt")
        assert ended is given_back
        assert len(swept.closed) == int(given_back)


async def test_a_dialer_not_seen_for_a_while_is_dead_and_one_seen_lately_is_not(pool: asyncpg.Pool) -> None:
    await processes.register(pool, "old", "pbx1", 60)
    await processes.register(pool, "fresh", "pbx1", 60)
    await pool.execute("update dialer_process set seen_at = now() - interval '2 minutes' where owner = 'old'")
    assert await processes.forget_dead(pool, 60) == ["old"]
    assert [r["owner"] for r in await pool.fetch("select owner from dialer_process")] == ["fresh"]


@pytest.mark.parametrize(
    ("own_dead_after_s", "silent_s", "looker_dead_after_s", "dead"),
    [
        (180, 100, 12, False),  # beats every 30 s: silent 100 s is three beats missed, not dead
        (180, 200, 12, True),  # six of its beats missed
        (12, 100, 180, False),  # a looker that waits longer (or just saw the database back) waits
        (None, 100, 60, True),  # a dialer of an earlier version: the looker's setting, as before
        (None, 30, 60, False),
    ],
)
async def test_each_dialer_is_taken_for_dead_by_its_own_heartbeat(
    pool: asyncpg.Pool, own_dead_after_s: float | None, silent_s: int, looker_dead_after_s: float, dead: bool
) -> None:
    """Dialers with different DIALER_HEARTBEAT_S share a database: a slow-beating one is not taken
    for dead by a fast one (QA: its households were returned, its operators' phones taken)."""
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355551511")
    owner = "dialer-h-1-0a1b2c3d"
    assert await targets.lease_next(pool, w.campaign_id, owner, 600) is not None
    await processes.register(pool, owner, "pbx1", own_dead_after_s or 60)
    await pool.execute(
        "update dialer_process set seen_at = now() - make_interval(secs => $1), dead_after_s = $2",
        silent_s,
        own_dead_after_s,
    )
    assert await processes.alive(pool, "0a1b2c3d", looker_dead_after_s) is not dead
    assert (
        await processes.claim_phone(pool, w.operator.id, "me", looker_dead_after_s) is True
    )  # (nobody holds it)
    await pool.execute("update operator_phone set owner = $1", owner)
    assert await processes.claim_phone(pool, w.operator.id, "me", looker_dead_after_s) is dead
    swept = await targets.sweep_expired(
        pool, owner="me", dead_after_s=looker_dead_after_s, link="pbx1", live_channels=set()
    )
    assert swept.returned == int(dead)
    assert await processes.forget_dead(pool, looker_dead_after_s) == ([owner] if dead else [])


@pytest.mark.parametrize(
    ("channel_id", "mark"),
    [
        (dialing.session_id("dlr", 7, "dialer-host-a-b-12-0a1b2c3d"), "0a1b2c3d"),  # hostnames have dashes
        ("dlr-s7-0a1b2c3d-18c2f3a4b5", "0a1b2c3d"),
        ("dlr-s7-18c2f3a4b5", None),  # opened before sessions were marked
        ("dlr-s77-0a1b2c3d-18c2f3a4b5", None),  # another operator's
        ("city2-s7-0a1b2c3d-18c2f3a4b5", None),  # another deployment's
        ("dlr-s7-0A1B2C3D-18c2f3a4b5", None),
        ("dlr-s7-0a1b2c3d-", None),
        ("dlr-s7-0a1b2c3d-18c2f3a4b5-x", None),
    ],
)
def test_a_session_names_the_dialer_that_opened_it(channel_id: str, mark: str | None) -> None:
    assert dialing.session_mark(channel_id, "dlr", 7) == mark


async def test_a_marked_dialer_is_alive_only_while_seen(pool: asyncpg.Pool) -> None:
    await processes.register(pool, "dialer-h-1-0a1b2c3d", "pbx1", 60)
    await processes.register(pool, "dialer-h-2-ffff0000", "pbx1", 60)
    await pool.execute(
        "update dialer_process set seen_at = now() - interval '2 minutes' where owner like '%ffff0000'"
    )
    assert await processes.alive(pool, "0a1b2c3d", 60)
    assert not await processes.alive(pool, "ffff0000", 60)  # not seen for two minutes
    assert not await processes.alive(pool, "1b2c3d", 60)  # only the whole mark names a dialer


async def test_an_unmarked_session_waits_only_for_the_older_dialers(pool: asyncpg.Pool) -> None:
    """A rolling upgrade: sessions opened by the previous version have no mark; they are free once
    no dialer of that version (registered without marks_sessions) is alive on the Asterisk."""
    await processes.register(pool, "dialer-h-1-0a1b2c3d", "pbx1", 60)  # this version, another process
    assert not await processes.unmarked_owner_alive(pool, "me", "pbx1", 60)
    await pool.execute(  # as the previous version registers (sql/0015's columns only)
        "insert into dialer_process (owner, host, pid, link) values ('dialer-h-2-ffff0000', 'h', 2, 'pbx1')"
    )
    assert await processes.unmarked_owner_alive(pool, "me", "pbx1", 60)
    assert not await processes.unmarked_owner_alive(pool, "me", "pbx2", 60)  # another Asterisk's
    await pool.execute("update dialer_process set seen_at = now() - interval '2 minutes' where pid = 2")
    assert not await processes.unmarked_owner_alive(pool, "me", "pbx1", 60)
