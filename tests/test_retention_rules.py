"""Retention's pure parts: cut-offs counted in Tokyo, bounds, the daily hour, the record's text."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from dialer import retention
from dialer.errors import ConfigError
from dialer.retention import TOKYO, Policy


@pytest.mark.parametrize(
    ("now", "closed", "audit"),
    [
        # counted back from the start of the day in Tokyo, whatever the hour of the run
        (
            datetime(2026, 12, 5, 3, 30, tzinfo=TOKYO),
            datetime(2025, 12, 5, tzinfo=TOKYO),
            datetime(2021, 12, 5, tzinfo=TOKYO),
        ),
        (
            datetime(2026, 12, 5, 23, 59, tzinfo=TOKYO),
            datetime(2025, 12, 5, tzinfo=TOKYO),
            datetime(2021, 12, 5, tzinfo=TOKYO),
        ),
        # 2026-12-04 16:00 UTC is already the 5th in Tokyo
        (
            datetime(2026, 12, 4, 16, 0, tzinfo=UTC),
            datetime(2025, 12, 5, tzinfo=TOKYO),
            datetime(2021, 12, 5, tzinfo=TOKYO),
        ),
        (
            datetime(2026, 12, 4, 14, 59, tzinfo=UTC),
            datetime(2025, 12, 4, tzinfo=TOKYO),
            datetime(2021, 12, 4, tzinfo=TOKYO),
        ),
        # a leap day inside the window
        (
            datetime(2028, 3, 1, 9, 0, tzinfo=TOKYO),
            datetime(2027, 3, 2, tzinfo=TOKYO),
            datetime(2023, 3, 2, tzinfo=TOKYO),
        ),
    ],
)
def test_cutoffs_count_days_back_from_midnight_in_tokyo(
    now: datetime, closed: datetime, audit: datetime
) -> None:
    c = Policy().cutoffs(now)
    assert (c.closed, c.audit) == (closed, audit)
    assert c.import_report == datetime.combine(now.astimezone(TOKYO).date(), time(0), TOKYO) - timedelta(
        days=90
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"closed_days": 29}, "closed data is kept between 30 and 3650 days, got 29"),
        ({"closed_days": 3651}, "between 30 and 3650"),
        ({"import_report_days": 6}, "import_report data is kept between 7 and 3650 days, got 6"),
        ({"audit_days": 364}, "audit data is kept between 365 and 3650 days, got 364"),
    ],
)
def test_a_policy_out_of_bounds_is_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy(**kwargs)


@pytest.mark.parametrize(
    ("at", "now", "expected"),
    [
        (time(3, 30), datetime(2026, 12, 5, 1, 0, tzinfo=TOKYO), datetime(2026, 12, 5, 3, 30, tzinfo=TOKYO)),
        (time(3, 30), datetime(2026, 12, 5, 3, 30, tzinfo=TOKYO), datetime(2026, 12, 6, 3, 30, tzinfo=TOKYO)),
        (time(3, 30), datetime(2026, 12, 31, 22, 0, tzinfo=TOKYO), datetime(2027, 1, 1, 3, 30, tzinfo=TOKYO)),
        # a UTC clock: 18:00 UTC on the 4th is 03:00 on the 5th in Tokyo
        (time(3, 30), datetime(2026, 12, 4, 18, 0, tzinfo=UTC), datetime(2026, 12, 5, 3, 30, tzinfo=TOKYO)),
        (time(0, 0), datetime(2026, 12, 5, 0, 0, 1, tzinfo=TOKYO), datetime(2026, 12, 6, 0, 0, tzinfo=TOKYO)),
    ],
)
def test_the_daily_purge_runs_next_at_its_hour_in_tokyo(at: time, now: datetime, expected: datetime) -> None:
    assert retention.next_run(at, now) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("03:30", time(3, 30)), ("3:05", time(3, 5)), ("23:59", time(23, 59)), ("off", None), (" OFF ", None)],
)
def test_purge_at_is_read(raw: str, expected: time | None) -> None:
    assert retention.parse_purge_at(raw) == expected


@pytest.mark.parametrize("raw", ["24:00", "3", "03:60", "soon", "03:30:00", ""])
def test_a_bad_purge_at_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="PURGE_AT must be HH:MM"):
        retention.parse_purge_at(raw)


def test_the_audit_log_outside_departments_is_kept_as_long_as_the_longest_department_keeps_its_own() -> None:
    assert retention.server_audit_days([Policy(audit_days=400), Policy(audit_days=2000)]) == 2000
    assert retention.server_audit_days([]) == 1826


def test_the_certificate_names_the_rule_the_cutoff_and_the_counts() -> None:
    text = retention.certificate(
        run_id=7, department="国民健康保険課 / NHI (nhi)", started=datetime(2026, 12, 5, 3, 30, tzinfo=TOKYO),
        finished=datetime(2026, 12, 5, 3, 31, tzinfo=TOKYO), status="done", trigger="schedule", user_name="",
        policy={"closed": 365}, cutoffs={"closed": "2025-12-05T00:00:00+09:00"}, counts={"households": 1234},
        vacuumed=True,
    )  # fmt: skip
    assert "No. 7" in text
    assert "完納・活動なしの世帯 / closed households: 365 日 / days, 2025-12-05 00:00:00 より前" in text
    assert "世帯 / households: 1,234" in text
    assert "2026-12-05 03:30:00 – 2026-12-05 03:31:00" in text
    assert "定時消去" in text
    assert "VACUUM: 実施済み" in text


def test_purge_at_comes_from_the_environment() -> None:
    from dialer import config

    assert config.load({}).purge_at == time(3, 30)
    assert config.load({"PURGE_AT": "off"}).purge_at is None
    assert config.load({"PURGE_AT": "22:15"}).purge_at == time(22, 15)
    with pytest.raises(ConfigError, match="PURGE_AT"):
        config.load({"PURGE_AT": "25:00"})
