"""campaigns.breaker (pure): calls through a PBX failing at once stop dialling for a while."""

from __future__ import annotations

from campaigns.breaker import Breaker


def test_five_failures_in_a_row_hold_calls_then_one_probe_doubles_the_hold_while_it_fails() -> None:
    b = Breaker(limit=5, hold_s=30, longest_s=100)
    assert [b.ended(True, 0) for _ in range(4)] == [False] * 4
    assert b.allows(0)
    assert b.ended(True, 1)  # the fifth: open for 30 s
    assert (b.allows(30), b.allows(31), b.is_open) == (False, True, True)
    b.placed(31)  # the probe: nothing else until it ends
    assert not b.allows(32)
    assert b.ended(True, 32)  # it failed too: 60 s more
    assert (b.allows(91), b.allows(92)) == (False, True)
    b.placed(92)
    assert b.ended(True, 93)
    assert b.open_until == 193  # doubled to 120, kept to the longest, 100
    b.placed(193)
    b.ended(False, 200)  # the probe rang (busy, no answer, answered): closed, counting again
    assert (b.is_open, b.failures, b.allows(200)) == (False, 0, True)
    assert [b.ended(True, 201) for _ in range(5)][-1]
    assert b.open_until == 231  # the hold starts again from 30 s


def test_calls_already_in_flight_when_it_opens_do_not_lengthen_the_hold() -> None:
    """Ten calls out when the fifth failure opens it: the other five fail too, and change nothing."""
    b = Breaker(limit=5, hold_s=30)
    for _ in range(5):
        b.ended(True, 0)
    assert [b.ended(True, 0.1) for _ in range(5)] == [False] * 5
    assert b.open_until == 30
    assert b.allows(30)


def test_a_probe_cancelled_or_lost_lets_another_be_tried() -> None:
    b = Breaker(limit=1, hold_s=10)
    assert b.ended(True, 0)
    b.placed(10)
    assert not b.allows(11)
    b.gone()  # cancelled (the window closed), or lost with the link
    assert b.allows(11)


def test_a_call_that_gets_through_between_failures_starts_the_count_again() -> None:
    b = Breaker(limit=3)
    for failed in (True, True, False, True, True):
        assert not b.ended(failed, 0)
    assert b.allows(0)
