"""Pure rules that keep residents' data and logins safe: skipping through previews, passwords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from campaigns import previewing
from dialer.store import lockouts, users


@pytest.mark.parametrize(
    ("shown_s_ago", "skips_s_ago", "why"),
    [
        (5, [], None),  # read for the time asked: skipped
        (4.9, [], "error.skip_too_soon"),
        (60, [3599] * 30, "error.too_many_skips"),  # thirty in the last hour
        (60, [3600] * 30, None),  # an hour old: no longer counted
        (60, [10] * 29, None),
        (1, [10] * 30, "error.skip_too_soon"),  # too soon is said first
    ],
)
def test_when_a_preview_may_be_skipped(shown_s_ago: float, skips_s_ago: list[float], why: str | None) -> None:
    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    skipped = [now - timedelta(seconds=s) for s in skips_s_ago]
    rule = previewing.SkipRule()
    assert previewing.refusal(rule, now - timedelta(seconds=shown_s_ago), now, skipped) == why
    assert len(previewing.recent(skipped, now)) == sum(1 for s in skips_s_ago if s < 3600)


@pytest.mark.parametrize(
    ("password", "login", "refused"),
    [
        ("short1", "op1", "at least 8"),
        ("Password1", "op1", "first a guesser tries"),
        ("aaaaaaaa", "op1", "first a guesser tries"),
        ("abababab", "op1", "first a guesser tries"),
        ("tanaka.hanako", "tanaka.hanako", "must not be the login ID"),
        ("okanah.akanat", "tanaka.hanako", "must not be the login ID"),
        ("correct-horse-1", "op1", None),
        ("demo-op1-pass", "op1", None),
    ],
)
def test_which_passwords_are_refused(password: str, login: str, refused: str | None) -> None:
    problem = users.password_problem(password, login)
    assert (problem is None) if refused is None else (refused in (problem or ""))


@pytest.mark.parametrize(
    ("remote", "counted_as"),
    [
        ("10.0.0.7", "10.0.0.7"),
        ("::ffff:10.0.0.7", "10.0.0.7"),  # IPv4 through a dual-stack socket (HTTP_HOST=::)
        (" 10.0.0.7 ", "10.0.0.7"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("", ""),
        ("/run/dialer.sock", "/run/dialer.sock"),  # not an address: as it is
    ],
)
def test_a_computers_address_is_counted_one_way(remote: str, counted_as: str) -> None:
    """The address `dialer users unlock --address` is given matches the one failures were recorded under."""
    assert lockouts.address_of(remote) == counted_as
