"""When the PBX fails every call at once, stop dialling for a while. Pure.

A misspelt trunk (DIAL_TRUNK_TEMPLATE), an AMI user that may not originate, a carrier that is down:
Asterisk then fails each call the moment it is asked for, and a dialer that simply takes the next
household ran through a whole campaign in a fraction of a second (QA against a real Asterisk: 21
households in 143 ms), each with a failed call to its name. So after `limit` calls in a row on one
PBX that failed before anything rang (outcome failed or congestion), no call is placed through it
for `hold`; then one call tries again: if it fails too, the hold doubles (up to `longest`); any
call that gets further (it rings, is busy, is answered) closes the breaker.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Breaker:
    limit: int = 5
    hold_s: float = 30.0
    longest_s: float = 600.0
    failures: int = 0  # in a row
    open_until: float | None = None  # a loop time; None: closed
    next_hold_s: float = 30.0

    def allows(self, now: float) -> bool:
        """Whether a call may be placed now (open: not until its hold has passed)."""
        return self.open_until is None or now >= self.open_until

    def ended(self, failed_at_once: bool, now: float) -> bool:
        """A call ended; True when this opens the breaker (or keeps it open for longer)."""
        if not failed_at_once:
            self.failures, self.open_until, self.next_hold_s = 0, None, self.hold_s
            return False
        self.failures += 1
        if self.failures < self.limit:
            return False
        self.open_until = now + self.next_hold_s
        self.next_hold_s = min(self.next_hold_s * 2, self.longest_s)
        return True

    @property
    def is_open(self) -> bool:
        return self.open_until is not None
