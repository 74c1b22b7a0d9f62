"""Our config loads in a real Asterisk 22, and the AMI link reads its call outcomes."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from dialer.ami.link import AmiLink, OriginateRequest
from dialer.calls.state import Outcome
from tests.real_asterisk import kit
from tests.real_asterisk.kit import Real

pytestmark = kit.MARKS


def test_our_config_loads_cleanly(real: Real) -> None:
    recent = real.log()
    assert " ERROR[" not in recent, recent
    assert "Unable to register extension" not in recent, recent
    assert "DIALER_AMD" in kit.cli("dialplan show dialer-connect")  # ours, not the kit's reference version


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

    ended = await kit.outcomes(
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
