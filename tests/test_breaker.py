"""campaigns.breaker (pure): calls through a PBX failing at once stop dialling for a while."""

from __future__ import annotations

from campaigns.breaker import Breaker


def test_five_failures_in_a_row_hold_calls_and_the_hold_doubles_while_they_go_on_failing() -> None:
    b = Breaker(limit=5, hold_s=30, longest_s=100)
    assert [b.ended(True, 0) for _ in range(4)] == [False] * 4
    assert b.allows(0)
    assert b.ended(True, 1)  # the fifth: open
    assert (b.allows(30), b.allows(31), b.is_open) == (False, True, True)
    assert b.ended(True, 31)  # the call tried after the hold failed too: 60 s more
    assert (b.allows(90), b.allows(91)) == (False, True)
    assert b.ended(True, 91)
    assert b.open_until == 191  # doubled to 120, kept to the longest, 100
    b.ended(False, 200)  # a call that rang (busy, no answer, answered): closed, counting again
    assert (b.is_open, b.failures, b.allows(200)) == (False, 0, True)
    assert [b.ended(True, 201) for _ in range(5)][-1]
    assert b.open_until == 231  # the hold starts again from 30 s


def test_a_call_that_gets_through_between_failures_starts_the_count_again() -> None:
    b = Breaker(limit=3)
    for failed in (True, True, False, True, True):
        assert not b.ended(failed, 0)
    assert b.allows(0)
