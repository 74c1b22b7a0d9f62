"""Configuration of the simulated PBX."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .behaviour import CalleeModel, Callees


@dataclass(frozen=True)
class SimConfig:
    """How the simulated PBX listens and how its callees behave."""

    host: str = "127.0.0.1"
    port: int = 5038  # 0 = ephemeral
    users: Mapping[str, str] = field(default_factory=lambda: {"dialer": "dialer-secret"})
    callees: Callees = field(default_factory=CalleeModel)
    operator_answer_s: float = 0.5  # operator phones auto-answer after this
    failed_login_delay_s: float = 1.0  # real Asterisk waits 1 s before "Authentication failed"
    # Multiplies the simulated dialplan's own waits (Answer() delay, AMD of the sim-resident
    # contexts, RINGSEC/TALKSEC/HOLDSEC, the abandon message): tests and demos run it faster.
    # Behaviour times, operator_answer_s and the Originate Timeout are never scaled.
    time_scale: float = 1.0
