"""Call flows of the simulated PBX on the product's paths (PJSIP trunk + operator phones)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable

import pytest

from dialer.simpbx import Behaviour, CalleeModel, SimConfig, SimulatedPbx
from dialer.simpbx.probe import AmiProbe, Msg

USER, SECRET = "dialer", "dialer-secret"


@pytest.fixture
async def pbx() -> AsyncIterator[SimulatedPbx]:
    sim = SimulatedPbx(SimConfig(port=0, time_scale=0.05, operator_answer_s=0.02))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def ami(pbx: SimulatedPbx) -> AsyncIterator[AmiProbe]:
    probe = await AmiProbe.connect("127.0.0.1", pbx.port)
    assert (await probe.login(USER, SECRET)).name == "Success"
    try:
        yield probe
    finally:
        await probe.close()


async def operator(ami: AmiProbe, ext: str = "1001") -> Msg:
    await ami.action(
        "Originate",
        ("Channel", f"PJSIP/{ext}"),
        ("Context", "dialer-agent"),
        ("Exten", ext),
        ("Async", "true"),
        ("ChannelId", f"op-{ext}"),
        ("Variable", f"DIALER_ATTEMPT=op-{ext}"),
    )
    return await ami.until(lambda m: m.is_event("ConfbridgeJoin") and m.get("Uniqueid") == f"op-{ext}")


async def resident(
    ami: AmiProbe, number: str, uid: str, *variables: str, ext: str = "1001", **kw: str
) -> str:
    fields = [
        ("Channel", f"PJSIP/{number}@trunk"),
        ("Context", kw.get("context", "dialer-connect")),
        ("Exten", ext),
        ("Priority", "1"),
        ("Timeout", kw.get("timeout", "2000")),
        ("CallerID", '"City" <0312345678>'),
        ("ChannelId", uid),
        ("Variable", f"DIALER_ATTEMPT={uid}"),
        *(("Variable", v) for v in variables),
    ]
    if kw.get("sync") != "yes":
        fields.append(("Async", "true"))
    return await ami.action("Originate", *fields)


def trail(ami: AmiProbe, uid: str) -> list[str]:
    """Dialer-relevant events about one channel, in order."""
    keep = {
        "DialEnd",
        "UserEvent",
        "ConfbridgeJoin",
        "ConfbridgeLeave",
        "BridgeLeave",
        "HangupRequest",
        "Hangup",
    }
    keep |= {"SoftHangupRequest", "OriginateResponse"}
    out = []
    for m in ami.log:
        if m.kind == "Event" and m.name in keep and uid in (m.get("Uniqueid"), m.get("DestUniqueid")):
            detail = m.get("DialStatus") or m.get("AMDStatus") or m.get("UserEvent") or m.get("Cause") or ""
            out.append(f"{m.name}:{detail}" if detail else m.name)
    return out


def hangup(uid: str) -> Callable[[Msg], bool]:
    return lambda m: m.is_event("Hangup") and m.get("Uniqueid") == uid


async def test_human_joins_the_operator_and_the_dialer_hangs_up(pbx: SimulatedPbx, ami: AmiProbe) -> None:
    pbx.script("0311110001", Behaviour("answer", ring_s=0.05, amd_s=0.05))
    await operator(ami)
    await resident(ami, "0311110001", "a-1")
    join = await ami.until(lambda m: m.is_event("ConfbridgeJoin") and m.get("Uniqueid") == "a-1")
    assert (join["Conference"], join["BridgeNumChannels"]) == ("agent-1001", "3")
    aid = await ami.action("Hangup", ("Channel", "a-1"), ("Cause", "16"))
    assert (await ami.response(aid))["Message"] == "Channel Hungup"
    await ami.until(hangup("a-1"))
    assert trail(ami, "a-1") == [
        "DialEnd:ANSWER",
        "OriginateResponse",
        "UserEvent:HUMAN",
        "ConfbridgeJoin",
        "SoftHangupRequest:16",
        "ConfbridgeLeave",
        "BridgeLeave",
        "Hangup:16",
    ]
    aid = await ami.action("ConfbridgeList", ("Conference", "agent-1001"))
    await ami.response(aid)
    members = await ami.until(lambda m: m.is_event("ConfbridgeListComplete"))
    assert members["ListItems"] == "1"


async def test_machine_is_hung_up_after_amd(pbx: SimulatedPbx, ami: AmiProbe) -> None:
    pbx.script("0311110002", Behaviour("machine", ring_s=0.05, amd_s=0.05))
    await operator(ami)
    await resident(ami, "0311110002", "a-2")
    await ami.until(hangup("a-2"))
    amd = next(m for m in ami.log if m.is_event("UserEvent") and m.get("Uniqueid") == "a-2")
    assert [k for k, _ in amd.pairs[-4:]] == ["UserEvent", "Attempt", "AMDStatus", "AMDCause"]
    assert (amd["Attempt"], amd["AMDStatus"], amd["AMDCause"]) == ("a-2", "MACHINE", "LONGGREETING-1500-1500")
    assert trail(ami, "a-2")[-2:] == ["SoftHangupRequest:16", "Hangup:16"]
    assert "ConfbridgeJoin" not in trail(ami, "a-2")


async def test_nobody_in_the_bridge_means_abandon(pbx: SimulatedPbx, ami: AmiProbe) -> None:
    pbx.script("0311110003", Behaviour("answer", ring_s=0.05, amd_s=0.05))
    await resident(ami, "0311110003", "a-3", ext="1002")
    await ami.until(hangup("a-3"))
    assert trail(ami, "a-3") == [
        "DialEnd:ANSWER",
        "OriginateResponse",
        "UserEvent:HUMAN",
        "UserEvent:DialerAbandon",
        "SoftHangupRequest:16",
        "Hangup:16",
    ]


async def test_preview_mode_skips_amd(pbx: SimulatedPbx, ami: AmiProbe) -> None:
    pbx.script("0311110004", Behaviour("answer", ring_s=0.05, talk_s=0.2))
    await operator(ami)
    await resident(ami, "0311110004", "a-4", "DIALER_AMD=off")
    await ami.until(hangup("a-4"))
    assert trail(ami, "a-4") == [
        "DialEnd:ANSWER",
        "OriginateResponse",
        "ConfbridgeJoin",
        "HangupRequest",
        "ConfbridgeLeave",
        "BridgeLeave",
        "SoftHangupRequest:16",
        "Hangup:0",
    ]


async def test_operator_leaving_ends_the_room_and_kicks_the_resident(
    pbx: SimulatedPbx, ami: AmiProbe
) -> None:
    pbx.script("0311110005", Behaviour("answer", ring_s=0.05, amd_s=0.05))
    await operator(ami)
    await resident(ami, "0311110005", "a-5")
    await ami.until(lambda m: m.is_event("ConfbridgeJoin") and m.get("Uniqueid") == "a-5")
    await pbx.hangup_from_phone("1001")
    await ami.until(hangup("a-5"))
    names = [
        m.name for m in ami.log if m.name in ("ConfbridgeLeave", "ConfbridgeEnd", "BridgeDestroy", "Hangup")
    ]
    assert names == [
        "ConfbridgeLeave",
        "ConfbridgeLeave",
        "ConfbridgeEnd",
        "BridgeDestroy",
        "Hangup",
        "Hangup",
    ]
    kicked = next(m for m in ami.log if m.is_event("VarSet") and m.get("Value") == "ENDMARKED")
    assert kicked["Uniqueid"] == "a-5"
    assert [m["Cause"] for m in ami.log if m.is_event("Hangup")] == ["16", "16"]
    assert pbx.live_channels() == []


async def test_channel_actions_on_a_held_call(pbx: SimulatedPbx, ami: AmiProbe) -> None:
    pbx.script("0311110006", Behaviour("answer", ring_s=0.02))
    await resident(ami, "0311110006", "a-6", "HOLDSEC=40", context="dialer-hold", ext="s")
    await ami.until(lambda m: m.is_event("OriginateResponse"))
    aid = await ami.action("Getvar", ("Channel", "a-6"), ("Variable", "DIALER_ATTEMPT"))
    assert (await ami.response(aid))["Value"] == "a-6"
    aid = await ami.action("Getvar", ("Channel", "a-6"), ("Variable", "NOPE"))
    reply = await ami.response(aid)
    assert reply.pairs[-1] == ("Value", "")
    aid = await ami.action("Setvar", ("Channel", "a-6"), ("Variable", "MARK"), ("Value", "x"))
    assert (await ami.response(aid))["Message"] == "Variable Set"
    aid = await ami.action("Getvar", ("Channel", "PJSIP/trunk-00000000"), ("Variable", "CHANNEL(state)"))
    assert (await ami.response(aid))["Value"] == "Up"
    aid = await ami.action("Status", ("Channel", "a-6"), ("Variables", "DIALER_ATTEMPT,HOLDSEC"))
    await ami.response(aid)
    item = await ami.until(lambda m: m.is_event("Status"))
    assert (item["Privilege"], item.keys()[-1], item["Application"]) == ("Call", "ActionID", "Wait")
    assert [v for k, v in item.pairs if k == "Variable"] == ["DIALER_ATTEMPT=a-6", "HOLDSEC=40"]
    done = await ami.until(lambda m: m.is_event("StatusComplete"))
    assert (done["ListItems"], done["Items"]) == ("1", "1")
    aid = await ami.action("CoreShowChannels")
    await ami.response(aid)
    item = await ami.until(lambda m: m.is_event("CoreShowChannel"))
    assert item.keys()[1] == "ActionID"
    assert item["Uniqueid"] == "a-6"
    aid = await ami.action(
        "Redirect", ("Channel", "PJSIP/trunk-00000000"), ("Context", "dialer-abandon"), ("Exten", "s")
    )
    assert (await ami.response(aid))["Message"] == "Redirect successful"
    event = await ami.until(lambda m: m.is_event("UserEvent"))
    assert (event["UserEvent"], event["Context"]) == ("DialerAbandon", "dialer-abandon")
    await ami.until(hangup("a-6"))
    aid = await ami.action("Hangup", ("Channel", "a-6"))
    assert (await ami.response(aid))["Message"] == "No such channel"


async def test_duplicate_channel_id_fails_at_once(pbx: SimulatedPbx, ami: AmiProbe) -> None:
    pbx.script("0311110007", Behaviour("answer", ring_s=0.02))
    await resident(ami, "0311110007", "a-7", context="dialer-hold", ext="s")
    await ami.until(lambda m: m.is_event("OriginateResponse"))
    count = len(ami.log)
    aid = await resident(ami, "0311110007", "a-7", context="dialer-hold", ext="s")
    assert (await ami.response(aid))["Message"] == "Originate successfully queued"
    failed = await ami.until(lambda m: m.is_event("OriginateResponse"))
    assert (failed["Response"], failed["Reason"], failed["Uniqueid"]) == ("Failure", "0", "a-7")
    assert failed["Channel"] == "PJSIP/0311110007@trunk"
    assert [m.name for m in ami.log[count:]] == ["Success", "OriginateResponse"]


async def test_synchronous_originate_answers_after_the_outcome(pbx: SimulatedPbx, ami: AmiProbe) -> None:
    pbx.script("0311110008", Behaviour("busy", ring_s=0.05))
    pbx.script("0311110009", Behaviour("answer", ring_s=0.05))
    aid = await resident(ami, "0311110008", "s-1", context="dialer-hold", ext="s", sync="yes")
    reply = await ami.response(aid)
    assert (reply.name, reply["Message"]) == ("Error", "Originate failed")
    assert any(m.is_event("Hangup") and m.get("Uniqueid") == "s-1" for m in ami.log)
    aid = await resident(ami, "0311110009", "s-2", context="dialer-hold", ext="s", sync="yes")
    reply = await ami.response(aid)
    assert reply["Message"] == "Originate successfully queued"
    assert any(m.is_event("DialEnd") and m.get("DestUniqueid") == "s-2" for m in ami.log)
    assert not any(m.is_event("OriginateResponse") for m in ami.log)


async def test_generated_ids_and_unknown_uniqueid_on_failure(pbx: SimulatedPbx, ami: AmiProbe) -> None:
    pbx.script("0311110010", Behaviour("congestion"))
    await ami.action(
        "Originate", ("Channel", "PJSIP/0311110010@trunk"), ("Context", "dialer-hold"), ("Async", "yes")
    )
    new = await ami.until(lambda m: m.is_event("Newchannel"))
    seconds, _, n = new["Uniqueid"].partition(".")
    assert seconds.isdigit()
    assert n.isdigit()
    assert new["Linkedid"] == new["Uniqueid"]
    failed = await ami.until(lambda m: m.is_event("OriginateResponse"))
    assert failed["Uniqueid"] == "<unknown>"


async def test_local_operator_phone_hangs_up_like_recorded(pbx: SimulatedPbx, ami: AmiProbe) -> None:
    await ami.action(
        "Originate",
        ("Channel", "Local/1003@dialer-phone"),
        ("Context", "dialer-agent"),
        ("Exten", "1003"),
        ("Async", "true"),
        ("ChannelId", "op-1003"),
        ("OtherChannelId", "op-1003-phone"),
    )
    await ami.until(lambda m: m.is_event("ConfbridgeJoin"))
    await pbx.hangup_from_phone("1003")
    await ami.until(hangup("op-1003"))
    assert [c.uniqueid for c in pbx.live_channels()] == []
    assert any(m.is_event("BridgeDestroy") for m in ami.log)


def test_callee_model_is_seeded_and_covers_every_outcome() -> None:
    model = CalleeModel(seed=7)
    picks = [model.pick(random.Random(7)) for _ in range(3)]
    assert picks[0] == picks[1] == picks[2]
    rng = random.Random(1)
    results = {model.pick(rng).result for _ in range(500)}
    assert results == {"answer", "machine", "busy", "congestion", "noanswer"}
    answered = next(b for b in (model.pick(rng) for _ in range(100)) if b.result == "answer")
    assert answered.talk_s is not None
    assert 60 <= answered.talk_s <= 240


# ---- predictive: the resident is nobody's until the dialer Redirects them ---------------------
async def predictive(ami: AmiProbe, number: str, uid: str) -> None:
    await resident(ami, number, uid, context="dialer-predictive", ext="s")
    await ami.until(lambda m: m.is_event("UserEvent") and m.get("Uniqueid") == uid)


async def redirect(ami: AmiProbe, uid: str, context: str, exten: str) -> None:
    aid = await ami.action(
        "Redirect", ("Channel", uid), ("Context", context), ("Exten", exten), ("Priority", "1")
    )
    assert (await ami.response(aid))["Message"] == "Redirect successful"


async def test_predictive_person_redirected_to_a_free_operator_joins_their_bridge(
    pbx: SimulatedPbx, ami: AmiProbe
) -> None:
    pbx.script("0311110101", Behaviour("answer", ring_s=0.05, amd_s=0.05))
    await operator(ami)
    await predictive(ami, "0311110101", "p-1")
    await redirect(ami, "p-1", "dialer-join", "1001")
    join = await ami.until(lambda m: m.is_event("ConfbridgeJoin") and m.get("Uniqueid") == "p-1")
    assert join["Conference"] == "agent-1001"
    await ami.action("Hangup", ("Channel", "p-1"), ("Cause", "16"))
    await ami.until(hangup("p-1"))
    assert trail(ami, "p-1") == [
        "DialEnd:ANSWER",
        "OriginateResponse",
        "UserEvent:HUMAN",
        "ConfbridgeJoin",
        "SoftHangupRequest:16",
        "ConfbridgeLeave",
        "BridgeLeave",
        "Hangup:16",
    ]


@pytest.mark.parametrize(
    ("how", "operator_there"),
    [("redirected to the message", True), ("redirected to an empty bridge", False), ("no redirect", True)],
)
async def test_predictive_person_without_an_operator_hears_the_abandon_message(
    pbx: SimulatedPbx, ami: AmiProbe, how: str, operator_there: bool
) -> None:
    pbx.script("0311110102", Behaviour("answer", ring_s=0.05, amd_s=0.05))
    if operator_there:
        await operator(ami)
    await predictive(ami, "0311110102", "p-2")
    if how == "redirected to the message":
        await redirect(ami, "p-2", "dialer-abandon", "s")
    elif how == "redirected to an empty bridge":
        await redirect(ami, "p-2", "dialer-join", "1001")
    await ami.until(hangup("p-2"))
    assert trail(ami, "p-2") == [
        "DialEnd:ANSWER",
        "OriginateResponse",
        "UserEvent:HUMAN",
        "UserEvent:DialerAbandon",
        "SoftHangupRequest:16",
        "Hangup:16",
    ]


async def test_predictive_machine_is_hung_up_without_a_redirect(pbx: SimulatedPbx, ami: AmiProbe) -> None:
    pbx.script("0311110103", Behaviour("machine", ring_s=0.05, amd_s=0.05))
    await predictive(ami, "0311110103", "p-3")
    await ami.until(hangup("p-3"))
    assert trail(ami, "p-3")[-3:] == ["UserEvent:MACHINE", "SoftHangupRequest:16", "Hangup:16"]


@pytest.mark.parametrize("context", ["dialer-connect", "dialer-predictive"])
async def test_a_machine_is_left_the_campaigns_message_when_it_has_one(
    pbx: SimulatedPbx, ami: AmiProbe, context: str
) -> None:
    pbx.script("0311110104", Behaviour("machine", ring_s=0.05, amd_s=0.05))
    ext = "1001" if context == "dialer-connect" else "s"
    await resident(
        ami, "0311110104", "m-1", "DIALER_MACHINE_PROMPT=custom/nhi-call-back", context=context, ext=ext
    )
    await ami.until(hangup("m-1"))
    steps = [
        (m["Application"], m["AppData"])
        for m in ami.log
        if m.is_event("Newexten") and m.get("Uniqueid") == "m-1" and m.get("Context") == "dialer-machine"
    ]
    assert steps == [
        ("NoOp", "machine, attempt=m-1"),
        ("GotoIf", "0?done"),
        ("WaitForSilence", "1500,1,20"),
        ("Playback", "custom/nhi-call-back"),
        ("Hangup", "16"),
    ]
    assert "ConfbridgeJoin" not in trail(ami, "m-1")
    assert trail(ami, "m-1")[-2:] == ["SoftHangupRequest:16", "Hangup:16"]


async def test_amd_can_take_a_person_for_a_machine_and_a_machine_for_a_person(
    pbx: SimulatedPbx, ami: AmiProbe
) -> None:
    pbx.script("0311110011", Behaviour("answer", ring_s=0.05, amd_s=0.05, amd_status="MACHINE"))
    pbx.script("0311110012", Behaviour("machine", ring_s=0.05, amd_s=0.05, amd_status="HUMAN"))
    await operator(ami)
    await resident(ami, "0311110011", "a-11")
    await ami.until(hangup("a-11"))
    assert "ConfbridgeJoin" not in trail(ami, "a-11")  # the person was hung up on
    await resident(ami, "0311110012", "a-12")
    await ami.until(lambda m: m.is_event("ConfbridgeJoin") and m.get("Uniqueid") == "a-12")
    verdicts = {m.get("Uniqueid"): m["AMDStatus"] for m in ami.log if m.is_event("UserEvent")}
    assert (verdicts["a-11"], verdicts["a-12"]) == ("MACHINE", "HUMAN")
