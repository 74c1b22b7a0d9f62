"""When the PBX fails every call at once, stop dialling for a while. Pure.

A misspelt trunk (DIAL_TRUNK_TEMPLATE), an AMI user that may not originate, a carrier that is down:
Asterisk then fails each call the moment it is asked for, and a dialer that simply takes the next
household ran through a whole campaign in a fraction of a second (QA against a real Asterisk: 21
households in 143 ms), each with a failed call to its name. So after `limit` calls in a row on one
PBX that failed before anything rang (outcome failed or congestion), no call is placed through it
for `hold_s`. Then one call, and only one, tries again (the probe): if it fails too, the hold
doubles (up to `longest_s`); if it gets further (it rings, is busy, is answered), the breaker
closes. Calls placed before the breaker opened that fail meanwhile change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Breaker:
    limit: int = 5
    hold_s: float = 30.0
    longest_s: float = 600.0
    failures: int = 0  # in a row, while closed
    open_until: float | None = None  # a loop time; None: closed
    next_hold_s: float = 30.0
    probing: bool = False  # the one call placed after the hold is in flight

    def allows(self, now: float) -> bool:
        """Whether a call may be placed now: closed, or the hold has passed and no probe is out."""
        return self.open_until is None or (now >= self.open_until and not self.probing)

    def placed(self, now: float) -> None:
        """A call was placed; after a hold, it is the probe (no other until it ends)."""
        if self.open_until is not None and now >= self.open_until:
            self.probing = True

    def ended(self, failed_at_once: bool, now: float) -> bool:
        """A call ended; True when this opens the breaker (or keeps it open for longer)."""
        if not failed_at_once:
            self.failures, self.open_until, self.next_hold_s, self.probing = 0, None, self.hold_s, False
            return False
        if self.open_until is not None:
            if not self.probing:
                return False  # placed before the breaker opened: already counted in
            self.probing = False
            self.open_until = now + self.next_hold_s
            self.next_hold_s = min(self.next_hold_s * 2, self.longest_s)
            return True
        self.failures += 1
        if self.failures < self.limit:
            return False
        self.open_until = now + self.hold_s
        self.next_hold_s = min(self.hold_s * 2, self.longest_s)
        return True

    def gone(self) -> None:
        """A call ended neither way (cancelled by us, lost with the link): a probe may be tried again."""
        self.probing = False

    @property
    def is_open(self) -> bool:
        return self.open_until is not None
