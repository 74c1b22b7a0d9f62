"""The real-Asterisk test kit: our asterisk-conf/ as Asterisk's whole config, plus test callees.

Used only when REAL_ASTERISK_PREFIX names an Asterisk installed for the test kit in
../shared/tools/asterisk (see its README and docs/development.md); CI has none and skips.
The kit is started in replace mode with our files, plus an extensions-local.conf that holds the
simulated residents and operator phones from the reference dialplan (../shared/reference).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dialer import runtime
from dialer.ami.link import AmiLink, OriginateRequest
from dialer.calls.tracker import CallChange, CallTracker, SessionChange
from dialer.config import AmiSettings
from tests.client import PageClient

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT.parent / "shared" / "tools" / "asterisk"
REFERENCE = ROOT.parent / "shared" / "reference" / "asterisk-22"
PREFIX = os.environ.get("REAL_ASTERISK_PREFIX", "")
SECRET = "real-asterisk-test-secret"

MARKS = [
    pytest.mark.real_ami,
    pytest.mark.skipif(not PREFIX, reason="set REAL_ASTERISK_PREFIX to run against a real Asterisk"),
]


def _section(text: str, name: str) -> str:
    m = re.search(rf"^\[{re.escape(name)}\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert m, name
    return f"[{name}]\n{m.group(1)}"


def overlay(directory: Path) -> Path:
    """Our config files, made loopback-only and given a known AMI secret, plus test callees."""
    for f in (ROOT / "asterisk-conf").glob("*.conf"):
        shutil.copy(f, directory / f.name)
    pjsip = directory / "pjsip.conf"
    text = re.sub(r"^bind = \S+", "bind = 127.0.0.1:5060", pjsip.read_text(), flags=re.M)
    # No carrier here: the trunk points at loopback (the shipped trunk is not qualified, as here)
    text = re.sub(r"^contact = \S+", "contact = sip:127.0.0.1:5099", text, flags=re.M)
    pjsip.write_text(text)
    manager = directory / "manager.conf"
    manager.write_text(re.sub(r"^secret = .*$", f"secret = {SECRET}", manager.read_text(), flags=re.M))
    added = (REFERENCE / "raw" / "extensions-added.conf").read_text()
    used = (REFERENCE / "extensions-used-for-transcripts.conf").read_text()
    (directory / "extensions-local.conf").write_text(
        "; test callees (from ../shared/reference), not part of the product\n"
        + _section(added, "sim-resident")
        + _section(added, "dialer-phone")
        + _section(used, "sim-callee").replace("AGI(hello-agi.sh)", "NoOp()")
        + "[sim-trunk]\n"
        "; a number ending in 9 hangs up after 2 s of talk; any other talks until hung up;\n"
        "; one ending in 7 rings 4 s (else 2 s); one ending in 8 is an answering machine\n"
        "exten => _X.,1,Set(TALKSEC=${IF($[${EXTEN:-1} = 9]?2:120)})\n"
        " same => n,Set(RINGSEC=${IF($[${EXTEN:-1} = 7]?4:2)})\n"
        " same => n,GotoIf($[${EXTEN:-1} = 8]?sim-resident,machine,1)\n"
        " same => n,Goto(sim-resident,human,1)\n"
    )
    return directory


LOG = Path(PREFIX, "var/log/asterisk/messages.log")


def run_kit(script: str, **env: str) -> None:
    """Run a kit script; a reload cannot swap SIP transports on one port, so configs change by restart."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASTERISK_CONF_")}
    done = subprocess.run(
        [str(KIT / script), PREFIX], env={**base, **env}, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stdout + done.stderr


def cli(command: str) -> str:
    done = subprocess.run([str(KIT / "cli.sh"), PREFIX, command], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@dataclass(frozen=True)
class Real:
    ami: AmiSettings
    log_from: int  # where this run's part of Asterisk's log starts

    def log(self) -> str:
        with LOG.open("rb") as f:
            f.seek(self.log_from)
            return f.read().decode(errors="replace")


async def outcomes(ami: AmiSettings, calls: dict[str, OriginateRequest]) -> dict[str, CallChange]:
    ended: dict[str, CallChange] = {}
    done = asyncio.Event()
    ids = {req.channel_id: key for key, req in calls.items()}

    async def on_call(change: CallChange) -> None:
        if change.state.outcome is not None:
            ended[ids[change.state.channel_id]] = change
            if len(ended) == len(calls):
                done.set()

    async def on_session(change: SessionChange) -> None:
        pass

    tracker = CallTracker(on_call, on_session)
    link = AmiLink(ami)
    link.subscribe(tracker.on_event)
    await link.start()
    try:
        for n, req in enumerate(calls.values()):
            tracker.track_call(n, req.channel_id)
            await link.originate(req)
        await asyncio.wait_for(done.wait(), 30)
    finally:
        await link.close()
    return ended


async def talk_and_hang_up(product: runtime.Running, campaign_id: int) -> dict[str, Any]:
    """op1 presses Ready, gets a resident (the record pops, the call connects) and hangs up."""
    op = PageClient(product.url)
    try:
        await op.ready_as("op1", campaign_id)
        pop = await op.wait(lambda m: m["type"] == "record", within=20)
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within=20)
        ended = await op.hang_up(within=20)
        assert (ended["outcome"], ended["hangup_by"]) == ("connected", "operator")
        return pop
    finally:
        await op.close()


async def kinds(pool: asyncpg.Pool, attempt_id: int) -> list[str]:
    rows = await pool.fetch("select kind from attempt_event where attempt_id = $1 order by id", attempt_id)
    return [r["kind"] for r in rows]


async def call_in(product: runtime.Running, line: str, caller: str) -> None:
    """A resident calls the line: a Local channel into from-trunk, as a trunk would deliver it."""
    reply = await product.link.action(
        {
            "Action": "Originate",
            "Channel": f"Local/{line}@from-trunk",
            "Application": "Wait",
            "Data": "30",
            "CallerID": f"<{caller}>",
            "Async": "true",
        }
    )
    assert reply.get("Response") == "Success"
