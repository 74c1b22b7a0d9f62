"""Two real Asterisk 22 servers driven by one dialer (AMI_SERVERS): each operator's calls go
through the server their phone is on, and one server stopping leaves the other's operators working.

Opt-in twice over: REAL_ASTERISK_PREFIX (the kit's Asterisk, pbx1) and REAL_ASTERISK_PREFIX2, a
second installed prefix prepared for the kit (a copy of the first with configure-kit.sh run on
it). The kit runs one Asterisk per machine, so the second one is started here directly, with
our config on other ports (AMI 5039, SIP 5062).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from dialer import runtime
from dialer.config import AmiSettings
from tests import factory
from tests.client import PageClient
from tests.real_asterisk import kit
from tests.real_asterisk.conftest import product_settings
from tests.real_asterisk.kit import Real

PREFIX2 = os.environ.get("REAL_ASTERISK_PREFIX2", "")
pytestmark = [
    *kit.MARKS,
    pytest.mark.skipif(not PREFIX2, reason="set REAL_ASTERISK_PREFIX2 to a second Asterisk prefix"),
]
AMI2 = 5039


def _rx(command: str) -> str:
    conf = Path(PREFIX2, "etc/asterisk/asterisk.conf")
    done = subprocess.run(
        [f"{PREFIX2}/sbin/asterisk", "-C", str(conf), "-rx", command],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout


@pytest.fixture(scope="module")
def second(real: Real, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AmiSettings]:
    etc = Path(PREFIX2, "etc/asterisk")
    staged = kit.overlay(tmp_path_factory.mktemp("asterisk2"))
    for f in staged.glob("*.conf"):
        text = f.read_text()
        if f.name == "manager.conf":
            text = re.sub(r"^port = 5038", f"port = {AMI2}", text, flags=re.M)
        if f.name == "pjsip.conf":
            text = text.replace("bind = 127.0.0.1:5060", "bind = 127.0.0.1:5062")
        (etc / f.name).write_text(text)
    conf = etc / "asterisk.conf"  # its own directories (the kit's file is a template: built-in ones)
    conf.write_text(conf.read_text().replace("[directories](!)", "[directories]"))
    subprocess.run([f"{PREFIX2}/sbin/asterisk", "-C", str(conf)], check=True, timeout=30)
    try:
        for _ in range(300):
            if _rx("core waitfullybooted").strip().startswith("Asterisk has fully booted"):
                break
            subprocess.run(["sleep", "0.1"], check=True)
        yield replace(real.ami, port=AMI2, name="pbx2")
    finally:
        _rx("core stop now")


@pytest.fixture
async def two(real: Real, second: AmiSettings, db_dsn: str, tmp_path: Path) -> AsyncIterator[runtime.Running]:
    settings = replace(
        product_settings(real, db_dsn, tmp_path), ami=replace(real.ami, name="pbx1"), more_ami=(second,)
    )
    async with runtime.started(settings) as running:
        yield running
    kit.cli("channel request hangup all")
    _rx("channel request hangup all")


async def test_two_real_servers_each_carry_their_own_operators_calls(
    two: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    await factory.user(pool, "op2", "operator", "nhi", "1002", pbx="pbx2")
    for n in ("0355550192", "0355550193", "0355550194", "0355550195"):
        await factory.household(pool, w.campaign_id, n)
    op1, op2 = PageClient(two.url), PageClient(two.url)
    try:
        await op1.ready_as("op1", w.campaign_id)
        pop1 = await op1.wait(lambda m: m["type"] == "record", within=20)
        await op2.ready_as("op2", w.campaign_id)
        pop2 = await op2.wait(lambda m: m["type"] == "record", within=20)
        for op in (op1, op2):
            await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within=20)
        on1, on2 = kit.cli("core show channels concise"), _rx("core show channels concise")
        assert f"dlr-a{pop1['attempt_id']}" in on1
        assert f"dlr-a{pop1['attempt_id']}" not in on2
        assert f"dlr-a{pop2['attempt_id']}" in on2
        assert f"dlr-a{pop2['attempt_id']}" not in on1
        # pbx2's operator hangs up and goes on to the next household, through pbx2 again
        nxt = await op2.next_call(pop2["attempt_id"])
        await asyncio.sleep(0.5)
        assert f"dlr-a{nxt['attempt_id']}" in _rx("core show channels concise")
        # pbx2 stops: its operator is told; pbx1's operator goes on to the next household
        _rx("core stop now")
        await op2.wait(lambda m: m == {"type": "pbx", "up": False, "pbx": "pbx2"}, within=20)
        last = await op1.next_call(pop1["attempt_id"])
        assert not [m for m in op1.messages if m["type"] == "pbx" and not m["up"]]
    finally:
        await op1.close()
        await op2.close()
    links = {r["id"]: r["link"] for r in await pool.fetch("select id, link from attempt")}
    assert links == {
        pop1["attempt_id"]: "pbx1", pop2["attempt_id"]: "pbx2", nxt["attempt_id"]: "pbx2", last["attempt_id"]: "pbx1",
    }  # fmt: skip
