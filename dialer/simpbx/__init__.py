"""A simulated Asterisk 22 that speaks the real AMI wire protocol over TCP.

Used by the demo, operator training, the test suite and the pacing benchmark. It reproduces
the event sequences recorded from Asterisk 22.10.1 (shared/reference/asterisk-22/raw) and
imitates the product's dialplan (asterisk-conf/extensions.conf). Stdlib and asyncio only.
"""

from .behaviour import Behaviour, CalleeModel, Callees
from .config import SimConfig
from .server import ChannelInfo, SimulatedPbx

__all__ = ["Behaviour", "CalleeModel", "Callees", "ChannelInfo", "SimConfig", "SimulatedPbx"]
