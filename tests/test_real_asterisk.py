"""Against a real Asterisk 22 (opt-in): our asterisk-conf/ loaded as the whole config, the AMI link,
the call state machine, and the product end to end.

Runs only when REAL_ASTERISK_PREFIX names an Asterisk installed for the test kit in
../shared/tools/asterisk (see its README and docs/development.md); CI has none and skips.
The kit is started in replace mode with our files, plus an extensions-local.conf that holds the
simulated residents and operator phones from the reference dialplan (../shared/reference).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dialer import config, runtime
from dialer.ami.link import AmiLink, OriginateRequest
from dialer.calls.state import Outcome
from dialer.calls.tracker import CallChange, CallTracker, SessionChange
from dialer.config import AmiSettings, DialPlan
from tests import factory
from tests.client import PageClient, fetched, until

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT.parent / "shared" / "tools" / "asterisk"
REFERENCE = ROOT.parent / "shared" / "reference" / "asterisk-22"
PREFIX = os.environ.get("REAL_ASTERISK_PREFIX", "")
SECRET = "real-asterisk-test-secret"

pytestmark = [
    pytest.mark.real_ami,
    pytest.mark.skipif(not PREFIX, reason="set REAL_ASTERISK_PREFIX to run against a real Asterisk"),
]


def _section(text: str, name: str) -> str:
    m = re.search(rf"^\[{re.escape(name)}\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert m, name
    return f"[{name}]\n{m.group(1)}"


def _overlay(directory: Path) -> Path:
    """Our config files, made loopback-only and given a known AMI secret, plus test callees."""
    for f in (ROOT / "asterisk-conf").glob("*.conf"):
        shutil.copy(f, directory / f.name)
    pjsip = directory / "pjsip.conf"
    text = re.sub(r"^bind = \S+", "bind = 127.0.0.1:5060", pjsip.read_text(), flags=re.M)
    # No carrier here: the trunk points at loopback and is not qualified (a qualify of the
    # placeholder carrier from a loopback socket logs an ERROR at random moments).
    text = re.sub(r"^contact = \S+", "contact = sip:127.0.0.1:5099", text, flags=re.M)
    text = re.sub(r"^qualify_frequency = 60", "qualify_frequency = 0", text, flags=re.M)
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


def _kit(script: str, **env: str) -> None:
    """Run a kit script; a reload cannot swap SIP transports on one port, so configs change by restart."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASTERISK_CONF_")}
    done = subprocess.run(
        [str(KIT / script), PREFIX], env={**base, **env}, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _cli(command: str) -> str:
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


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Real]:
    overlay = _overlay(tmp_path_factory.mktemp("asterisk-overlay"))
    _kit("stop.sh")
    log_from = LOG.stat().st_size if LOG.exists() else 0
    _kit("start.sh", ASTERISK_CONF_DIR=str(overlay), ASTERISK_CONF_MODE="replace")
    try:
        yield Real(AmiSettings(host="127.0.0.1", port=5038, username="dialer", secret=SECRET), log_from)
    finally:
        _kit("stop.sh")
        _kit("start.sh")  # the kit's own set again


def test_our_config_loads_cleanly(real: Real) -> None:
    recent = real.log()
    assert " ERROR[" not in recent, recent
    assert "Unable to register extension" not in recent, recent
    assert "DIALER_AMD" in _cli("dialplan show dialer-connect")  # ours, not the kit's reference version


async def _outcomes(ami: AmiSettings, calls: dict[str, OriginateRequest]) -> dict[str, CallChange]:
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


async def test_outcomes_from_a_real_asterisk(real: Real) -> None:
    def call(exten: str, timeout_ms: int = 10_000) -> OriginateRequest:
        return OriginateRequest(
            channel=f"Local/{exten}@sim-callee",
            context="dialer-abandon",
            exten="s",
            channel_id=f"dlr-real-{exten}-{os.getpid()}",
            caller_id="0312340001",
            timeout_ms=timeout_ms,
            variables={"DIALER_ATTEMPT": "0"},
        )

    ended = await _outcomes(
        real.ami, {"busy": call("busy"), "congestion": call("congestion"), "noanswer": call("noanswer", 3000)}
    )
    assert {k: c.state.outcome for k, c in ended.items()} == {
        "busy": Outcome.BUSY,
        "congestion": Outcome.CONGESTION,
        "noanswer": Outcome.NO_ANSWER,
    }


async def test_a_wrong_secret_is_refused_by_asterisk(real: Real) -> None:
    from dialer.errors import AmiAuthFailed

    link = AmiLink(replace(real.ami, secret="wrong"))
    with pytest.raises(AmiAuthFailed):
        await link.start()
    await link.close()


@pytest.fixture
async def product(real: Real, db_dsn: str, tmp_path: Path) -> AsyncIterator[runtime.Running]:
    plan = replace(
        DialPlan(),
        trunk_template="Local/{number}@sim-trunk",
        operator_template="Local/{extension}@dialer-phone",
        ring_timeout_s=15,
    )
    settings = replace(
        config.load({"DIALER_VAR_DIR": str(tmp_path)}),
        database_url=db_dsn,
        ami=real.ami,
        http_port=0,
        dialplan=plan,
        simulated_callees=True,  # sim-trunk in the test dialplan: nobody real is called
    )
    async with runtime.started(settings) as running:
        yield running
    # The product leaves calls and operator sessions up when it stops (a restarted dialer takes
    # them over); the next test's database numbers its attempts from 1 again, and Asterisk refuses
    # a channel id still in use ("dlr-a1"), so nothing of this test may outlive it.
    _cli("channel request hangup all")


async def _talk_and_hang_up(product: runtime.Running, campaign_id: int) -> dict[str, Any]:
    """op1 presses Ready, gets a resident (the record pops, the call connects) and hangs up."""
    op = PageClient(product.url)
    try:
        await op.ready_as("op1", campaign_id)
        pop = await op.wait(lambda m: m["type"] == "record", within=20)
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within=20)
        assert (await op.post("/api/agent/hangup"))[0] == 200
        ended = await op.wait(lambda m: m["type"] == "call_ended", within=20)
        assert (ended["outcome"], ended["hangup_by"]) == ("connected", "operator")
        return pop
    finally:
        await op.close()


async def test_progressive_call_end_to_end_on_real_asterisk(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    hid = await factory.household(pool, w.campaign_id, "0355550120")
    pop = await _talk_and_hang_up(product, w.campaign_id)
    assert pop["record"]["household_id"] == hid
    row = await pool.fetchrow("select amd_status, hangup_cause from attempt where id = $1", pop["attempt_id"])
    assert row["amd_status"] == "HUMAN"
    kinds = [
        r["kind"]
        for r in await pool.fetch(
            "select kind from attempt_event where attempt_id = $1 order by id", pop["attempt_id"]
        )
    ]
    # Asterisk raises the AMD UserEvent before the bridge join, but the two reach AMI on different
    # internal topics and arrive in either order (seen here); every other step is in sequence.
    assert kinds.count("amd") == 1, kinds
    assert [k for k in kinds if k != "amd"] == [
        "originated",
        "channel",
        "ringing",
        "answered",
        "connected",
        "ended",
    ]
    assert kinds.index("amd") > kinds.index("answered")


async def test_resident_hangs_up_on_real_asterisk(product: runtime.Running, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355550129")  # ends in 9: talks 2 s, then hangs up
    op = PageClient(product.url)
    try:
        assert await op.login("op1", factory.PASSWORD) == 200
        await op.connect()
        assert (await op.post("/api/agent/ready", {"campaign_id": w.campaign_id}))[0] == 200
        ended = await op.wait(lambda m: m["type"] == "call_ended", within=30)
        assert (ended["outcome"], ended["hangup_by"]) == ("connected", "resident")
        await op.wait_state("wrap_up")
    finally:
        await op.close()


async def _kinds(pool: asyncpg.Pool, attempt_id: int) -> list[str]:
    rows = await pool.fetch("select kind from attempt_event where attempt_id = $1 order by id", attempt_id)
    return [r["kind"] for r in rows]


async def test_predictive_person_is_redirected_to_the_operator_on_real_asterisk(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    """dialer-predictive on the real thing: AMD's UserEvent, then our Redirect by channel name
    into dialer-join and the operator's ConfBridge."""
    w = await factory.world(pool, mode="predictive")
    hid = await factory.household(pool, w.campaign_id, "0355550130")
    pop = await _talk_and_hang_up(product, w.campaign_id)
    assert (pop["reason"], pop["record"]["household_id"]) == ("screen_pop", hid)
    row = await pool.fetchrow(
        "select amd_status, dial_mode, operator_id from attempt where id = $1", pop["attempt_id"]
    )
    assert dict(row) == {"amd_status": "HUMAN", "dial_mode": "predictive", "operator_id": w.operator.id}
    kinds = await _kinds(pool, pop["attempt_id"])
    assert kinds == ["originated", "channel", "ringing", "answered", "amd", "assigned", "connected", "ended"]


async def test_predictive_person_with_nobody_free_gets_the_message_on_real_asterisk(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool, mode="predictive")
    await factory.user(pool, "op2", "operator", "nhi", "1002")
    await factory.household(pool, w.campaign_id, "0355550137", priority=1)  # both ring 4 s
    await factory.household(pool, w.campaign_id, "0355550147", priority=2)
    op1, op2 = PageClient(product.url), PageClient(product.url)
    try:
        await op1.ready_as("op1", w.campaign_id)
        await op1.wait_state("ready")
        await op2.ready_as("op2", w.campaign_id)
        await op2.wait_state("ready")
        # both placed (one per ready operator: the pacer has no history yet), and still ringing
        await fetched(pool, "select count(*) = 2 from attempt")
        assert (await op2.post("/api/agent/pause"))[0] == 200
        await op2.wait_state("paused")
        pop = await op1.wait(lambda m: m["type"] == "record", within=20)
        abandoned = await fetched(pool, "select id from attempt where outcome = 'abandoned'")
        assert abandoned != pop["attempt_id"]
        assert "abandoned" in await _kinds(pool, abandoned)  # dialer-abandon's UserEvent
        # after the hang-up, the h extension tells the FastAGI service what was played (here the
        # message is not installed: Playback's status FAILED is what residents "heard")
        played = await fetched(
            pool,
            "select detail from attempt_event where kind = 'message_played' and attempt_id = $1",
            abandoned,
        )
        assert json.loads(played) == {"message": "abandon", "status": "FAILED"}
        row = await pool.fetchrow("select operator_id, hangup_by from attempt where id = $1", abandoned)
        assert (row["operator_id"], row["hangup_by"]) == (None, "system")
        assert not [m for m in op2.messages if m["type"] == "record"]
    finally:
        await op1.close()
        await op2.close()


async def test_predictive_machine_is_hung_up_on_real_asterisk(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool, mode="predictive")
    await factory.household(pool, w.campaign_id, "0355550138")  # ends in 8: an answering machine
    op = PageClient(product.url)
    try:
        await op.ready_as("op1", w.campaign_id)
        await op.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets", within=30)
        row = await pool.fetchrow("select outcome, operator_id, amd_status from attempt")
        assert dict(row) == {"outcome": "machine", "operator_id": None, "amd_status": "MACHINE"}
        assert not [m for m in op.messages if m["type"] == "record"]
    finally:
        await op.close()


async def _call_in(product: runtime.Running, line: str, caller: str) -> None:
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


async def test_an_inbound_caller_is_recognised_and_put_through_on_real_asterisk(
    real: Real, product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    await pool.execute("update department set callback_number = '03-1234-0001' where id = 'nhi'")
    hid = await factory.household(pool, w.campaign_id, "0355550160")
    await _call_in(product, "0312340001", "0355550160")
    # no menu recordings installed here: the service sends the caller to a person at once
    content = await fetched(
        pool,
        "select content from contact_history where household_id = $1 and method = 'phone_in'",
        hid,
        within=20,
    )
    assert content == "入電(自動応答)、オペレーターを希望"
    assert "gave no answer" not in real.log()


async def test_with_the_fastagi_service_unreachable_the_caller_still_goes_somewhere(
    real: Real, product: runtime.Running, pool: asyncpg.Pool
) -> None:
    await factory.world(pool)
    set_global = {"Action": "Setvar", "Variable": "DIALER_AGI"}
    assert (await product.link.action({**set_global, "Value": "127.0.0.1:1"})).get("Response") == "Success"
    try:
        await _call_in(product, "0312340001", "0355550161")
        await until(lambda: "gave no answer (AGISTATUS=FAILURE)" in real.log(), within=20)
        assert await pool.fetchval("select count(*) from contact_history") == 0
    finally:
        await product.link.action({**set_global, "Value": "127.0.0.1:4573"})


async def test_a_supervisor_listens_in_on_real_asterisk(
    real: Real, product: runtime.Running, pool: asyncpg.Pool
) -> None:
    from dialer.simpbx.probe import AmiProbe

    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355550130")
    await pool.execute("update app_user set extension = '9001' where login = 'sv1'")
    probe = await AmiProbe.connect(real.ami.host, real.ami.port)
    op, sup = PageClient(product.url), PageClient(product.url)
    try:
        assert (await probe.login(real.ami.username, real.ami.secret))["Response"] == "Success"
        await op.ready_as("op1", w.campaign_id)
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within=20)
        assert await sup.login("sv1", factory.PASSWORD, page="/supervisor") == 200
        status, body = await sup.post(
            "/api/supervisor/listen", {"operator_id": w.operator.id, "mode": "whisper"}
        )
        assert (status, body) == (200, {"ok": True})
        start = await probe.until(lambda m: m.is_event("ChanSpyStart"), within=20)
        assert (start["SpyerContext"], start["SpyeeContext"]) == ("dialer-listen", "dialer-agent")
        assert str(start["SpyerUniqueid"]).startswith("dlr-l")
        assert str(start["SpyeeUniqueid"]).startswith("dlr-s")
        assert "ChanSpy" in _cli("core show channels concise")
    finally:
        await sup.close()
        await op.close()
        await probe.close()
