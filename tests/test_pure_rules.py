"""Table tests of the pure parts: agent transitions, disposition checks, Japanese formats, config."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns import windows
from campaigns.agent import Action, AgentState, InvalidTransition, next_state
from campaigns.dispositions import Code, FieldError, clean_note, parse_amount, validate
from campaigns.hours import callable_now
from dialer import config
from dialer.errors import ConfigError
from dialer.imports.sample import NHI_HEADER, household_rows, overdue_installments
from dialer.jpformat import is_japanese_number, phone_digits, phone_display, wareki, wareki_fiscal_year, yen
from dialer.store.campaigns import clean_name

S, A = AgentState, Action
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        (S.OFFLINE, A.READY, S.CONNECTING),
        (S.CONNECTING, A.SESSION_UP, S.READY),
        (S.READY, A.DIAL, S.DIALING),
        (S.READY, A.CONNECT, S.TALKING),  # predictive: a person is given to a waiting operator
        (S.READY, A.RESERVE, S.PREVIEW),
        (S.PREVIEW, A.DIAL, S.DIALING),
        (S.PREVIEW, A.RELEASE, S.READY),
        (S.DIALING, A.ANSWERED, S.TALKING),
        (S.DIALING, A.UNANSWERED, S.READY),
        (S.TALKING, A.ENDED, S.WRAP_UP),
        (S.TALKING, A.UNANSWERED, S.READY),
        (S.WRAP_UP, A.DISPOSED, S.READY),
        (S.WRAP_UP, A.DISPOSED_PAUSE, S.PAUSED),
        (S.PAUSED, A.READY, S.READY),
        (S.TALKING, A.SESSION_DOWN, S.WRAP_UP),  # the call still needs its outcome
        (S.READY, A.SESSION_DOWN, S.OFFLINE),
        (S.WRAP_UP, A.LOGOUT, S.OFFLINE),
    ],
)
def test_agent_transitions(state: AgentState, action: Action, expected: AgentState) -> None:
    assert next_state(state, action) is expected


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (S.OFFLINE, A.DIAL),
        (S.TALKING, A.DIAL),
        (S.WRAP_UP, A.READY),
        (S.DIALING, A.RESERVE),
        (S.READY, A.ENDED),
        (S.PAUSED, A.CONNECT),  # a person is never given to an operator who is not ready
        (S.WRAP_UP, A.CONNECT),
        (S.TALKING, A.CONNECT),
    ],
)
def test_agent_refuses_impossible_moves(state: AgentState, action: Action) -> None:
    with pytest.raises(InvalidTransition):
        next_state(state, action)


CODES = {
    "promise": Code("promise", "納付約束", "Promise", True, True, False, True),
    "callback": Code("callback", "折り返し希望", "Call back", True, False, True, False),
    "refused": Code("refused", "拒否", "Refused", True, False, False, True),
}
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=TOKYO)
TOKEN = str(uuid.uuid4())


def _form(**kw: str) -> dict[str, str]:
    return {"attempt_id": "7", "token": TOKEN, "code": "refused", "note": "", **kw}


@pytest.mark.parametrize(
    ("form", "errors"),
    [
        (_form(), []),
        (_form(code="promise", promise_date="2026-12-10", promise_amount="１２，０００円"), []),
        (_form(code="promise", promise_date="2026-11-22", promise_amount="1000"), ["promise_date"]),
        (_form(code="promise", promise_date="2028-01-01", promise_amount="1000"), ["promise_date"]),
        (_form(code="promise", promise_date="令和8年12月1日", promise_amount="0"), ["promise_amount"]),
        (_form(code="promise", promise_date="R8.12.10", promise_amount="1000"), []),  # 和暦, as on the record
        (_form(code="promise", promise_date="令和８年１２月１０日", promise_amount="1000"), []),
        (_form(code="promise", promise_date="2026/12/10", promise_amount="1000"), []),
        (_form(code="promise", promise_date="R8.13.10", promise_amount="1000"), ["promise_date"]),
        (_form(code="callback", callback_at="R8.11.24 14:30"), []),
        (_form(code="callback", callback_at="令和8年11月24日 14:30"), []),
        (_form(code="callback", callback_at="R8.11.24 24:30"), ["callback_at"]),
        (_form(code="promise", promise_date="2026-12-01", promise_amount="-5"), ["promise_amount"]),
        (_form(code="promise", promise_date="2026-12-01", promise_amount="1.5"), ["promise_amount"]),
        (_form(code="callback", callback_at="2026-11-24T14:30"), []),
        (_form(code="callback", callback_at="2026-11-24T21:30"), ["callback_at"]),  # never 21:00-8:00
        (_form(code="callback", callback_at="2026-11-24T07:59"), ["callback_at"]),
        (_form(code="callback", callback_at="2026-11-23T09:00"), ["callback_at"]),  # in the past
        (_form(code="nonsense"), ["code"]),
        (_form(attempt_id="abc"), ["attempt_id"]),
        (_form(attempt_id="１２"), ["attempt_id"]),
        (_form(token="not-a-uuid"), ["token"]),
        (_form(note="あ" * 2001), ["note"]),
    ],
)
def test_disposition_validation(form: dict[str, str], errors: list[str]) -> None:
    result = validate(form, CODES, NOW)
    if errors:
        assert isinstance(result, list)
        assert [e.field for e in result] == errors
        assert all(isinstance(e, FieldError) and e.key.startswith("error.") for e in result)
    else:
        assert not isinstance(result, list), result


@pytest.mark.parametrize(
    ("callback_at", "errors"),
    [
        ("2026-11-24T14:30", []),  # a Tuesday afternoon: inside 9:00-17:00
        ("2026-11-24T18:30", ["callback_at"]),  # allowed by the 8-21 rule, not by this campaign
        ("2026-11-24T08:30", ["callback_at"]),
        ("2026-11-28T10:00", ["callback_at"]),  # a Saturday: this campaign calls on weekdays only
    ],
)
def test_a_call_back_must_fall_in_the_campaigns_calling_window(callback_at: str, errors: list[str]) -> None:
    days = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    weekdays = windows.parse(days | {"sat": [], "sun": []})
    result = validate(_form(code="callback", callback_at=callback_at), CODES, NOW, weekdays)
    if errors:
        assert isinstance(result, list)
        assert [(e.field, e.key) for e in result] == [("callback_at", "error.callback_window")]
    else:
        assert not isinstance(result, list), result


def test_promise_amount_is_integer_yen() -> None:
    result = validate(
        _form(code="promise", promise_date="2026-12-10", promise_amount="１２，０００円"), CODES, NOW
    )
    assert not isinstance(result, list)
    assert result.promise_amount_yen == 12000
    assert result.promise_date == date(2026, 12, 10)


def test_hostile_input_types_are_rejected_not_crashing() -> None:
    result = validate({"attempt_id": ["1"], "token": {"a": 1}, "code": None, "note": 5}, CODES, NOW)
    assert isinstance(result, list)
    assert {e.field for e in result} == {"attempt_id", "token", "code"}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  こんにちは\r\n世界 ", "こんにちは\n世界"),
        ("a\x00b\x1bc", "abc"),
        ("ｶﾞ", "ｶﾞ"),
        ("tab\tok", "tab\tok"),
    ],
)
def test_note_cleaning(raw: str, clean: str) -> None:
    assert clean_note(raw) == clean


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("12000", 12000),
        ("１２,０００", 12000),
        ("12,000円", 12000),
        ("￥12,000", 12000),
        ("¥ 12000", 12000),
        ("\\12,000", 12000),  # the ¥ key of a JIS keyboard on Windows types a backslash
        ("3万", None),
        ("¥", None),
        ("", None),
    ],
)
def test_parse_amount(text: str, amount: int | None) -> None:
    assert parse_amount(text) == amount


@pytest.mark.parametrize(
    ("d", "text"),
    [
        (date(1980, 4, 1), "昭和55年4月1日"),
        (date(1989, 1, 7), "昭和64年1月7日"),
        (date(1989, 1, 8), "平成元年1月8日"),
        (date(2019, 4, 30), "平成31年4月30日"),
        (date(2019, 5, 1), "令和元年5月1日"),
        (date(2026, 11, 23), "令和8年11月23日"),
        (date(1926, 12, 25), "昭和元年12月25日"),
    ],
)
def test_wareki(d: date, text: str) -> None:
    assert wareki(d) == text


@pytest.mark.parametrize(
    ("fy", "text"),
    [
        (2024, "令和6年度"),
        (2019, "令和元年度"),
        (1989, "平成元年度"),
        (1988, "昭和63年度"),
        (2018, "平成30年度"),
    ],
)
def test_fiscal_year(fy: int, text: str) -> None:
    assert wareki_fiscal_year(fy) == text


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("0312345678", "03-1234-5678"),
        ("09012345678", "090-1234-5678"),
        ("0120000123", "0120-000-123"),
        ("031234567", "031234567"),  # not a number in use: as given, its 0 kept
        ("0800123456", "0800123456"),
        ("", ""),
    ],
)
def test_phone_display(number: str, shown: str) -> None:
    assert phone_display(number) == shown


@pytest.mark.parametrize(
    ("digits", "ok"),
    [
        ("0312345678", True),
        ("09012345678", True),
        ("0120123456", True),
        ("0570012345", True),
        ("", False),  # no caller ID
        ("110", False),
        ("0000000000", False),
        ("81312345678", False),  # written with the country code, not nationally
        ("0312345", False),
        ("031234567890", False),
    ],
)
def test_a_caller_id_is_a_japanese_number(digits: str, ok: bool) -> None:
    assert is_japanese_number(digits) is ok


@pytest.mark.parametrize(
    "typed",
    [
        "03-1234-5678",
        "０３－１２３４－５６７８",
        "03−1234−5678",
        "03‒1234‒5678",
        "03ー1234ー5678",
        "(03) 1234 5678",
    ],
)
def test_a_number_is_read_whatever_hyphen_was_typed(typed: str) -> None:
    """As the importer reads numbers (dialer.imports.phones): U+2212 is what many IMEs give for －."""
    assert phone_digits(typed) == "0312345678"


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("  国保 繰越  ", "国保 繰越"),
        ("ＡＢＣ１２", "ABC12"),  # NFKC, as everything typed on the console
        ("", None),
        ("   ", None),
        ("x" * 101, None),
        ("国保\x00催告", None),  # PostgreSQL text holds no NUL (was a 500)
        ("国保\n催告", None),
        ("国保\u200b催告", None),  # zero-width space: looks the same as another name
    ],
)
def test_a_campaign_name(typed: str, name: str | None) -> None:
    assert clean_name(typed) == name


@pytest.mark.parametrize(
    ("code", "person"),
    [
        (Code("promise", "納付約束", "Promise", True, True, False, True), True),
        (Code("refused", "拒否", "Refused", True, False, False, True), True),
        (Code("callback", "折り返し希望", "Call back", True, False, True, False), True),
        (Code("other_party", "本人以外応答", "Someone else", False, False, False, False), True),
        (Code("wrong_number", "番号誤り", "Wrong number", False, False, False, False), False),
        (Code("no_conversation", "無言・通話不成立", "No conversation", False, False, False, False), False),
    ],
)
def test_which_outcomes_need_a_person(code: Code, person: bool) -> None:
    """What an answering machine's call may not be recorded as."""
    assert code.needs_a_person is person


def test_yen() -> None:
    assert yen(1234567) == "1,234,567円"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HTTP_PORT": "eighty"}, "HTTP_PORT must be a whole number"),
        ({"AMI_HOST": "pbx", "AMI_PORT": "70000"}, "AMI_PORT must be between"),
        ({"AMI_HOST": "pbx"}, "AMI_SECRET is empty"),
        ({"AMI_SERVERS": "pbx1=a,pbx2=b", "AMI_SECRET_PBX1": "s"}, "AMI_SECRET_PBX2 or AMI_SECRET is empty"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"DIAL_TRUNK_TEMPLATE": "PJSIP/trunk"}, "{number}"),
        ({"DIAL_RING_TIMEOUT_S": "5"}, "DIAL_RING_TIMEOUT_S must be between 15"),
        ({"DIAL_CHANNEL_PREFIX": "dlr-a"}, "DIAL_CHANNEL_PREFIX must be 1-12 lower-case"),
        ({"DIAL_CHANNEL_PREFIX": "9nhi"}, "starting with a letter"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL must be one of debug, info"),
        ({"AGI_ALLOW": "10.0.0.5, pbx.example"}, "AGI_ALLOW: each entry is an IP address or a network"),
        ({"HTTP_COOKIE_SECURE": "enabled"}, "HTTP_COOKIE_SECURE must be 1/true/yes/on or 0/false/no/off"),
        (
            {"DATABASE_URL": "postgresql://u:p@h:abc/db"},
            "DATABASE_URL cannot be read: Port could not be cast",
        ),
        ({"DATABASE_URL": "postgresql://u:p@[::1/db"}, "DATABASE_URL cannot be read: Invalid IPv6 URL"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL must start with postgresql://"),
    ],
)
def test_config_errors_are_clear(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        config.load(env)


def test_config_flags_and_urls_as_written() -> None:
    assert config.load({"HTTP_COOKIE_SECURE": "on"}).cookie_secure
    assert not config.load({"HTTP_COOKIE_SECURE": "off"}).cookie_secure
    assert config.load({"LOG_LEVEL": "WARNING"}).log_level == "warning"
    socket_dsn = "postgresql://postgres@/dialer?host=/srv/pg"  # a Unix socket, as the embedded one
    assert config.load({"DATABASE_URL": socket_dsn}).database_url == socket_dsn


def test_config_defaults() -> None:
    s = config.load({})
    assert s.ami is None
    assert s.database_url is None
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8080)
    assert s.dialplan.ring_timeout_s >= 15


@pytest.mark.parametrize(
    ("local", "ok"),
    [
        ("07:59:59", False),
        ("08:00:00", True),
        ("12:00:00", True),
        ("20:59:59", True),
        ("21:00:00", False),
        ("23:30:00", False),
        ("03:00:00", False),
    ],
)
def test_residents_are_never_called_between_21_and_8(local: str, ok: bool) -> None:
    now = datetime.fromisoformat(f"2026-11-23T{local}+09:00")
    assert callable_now(now) is ok
    assert callable_now(now.astimezone(ZoneInfo("UTC"))) is ok  # whatever zone the clock reports in


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        callable_now(datetime(2026, 11, 23, 12, 0))


@pytest.mark.parametrize(
    "today", [date(y, m, d) for y in (2026, 2027, 2031) for m in range(1, 13) for d in (1, 28)]
)
def test_sample_debts_follow_the_calendar(today: date) -> None:
    """The demo's and the benchmark's debts are overdue on the day they are made and none is
    time-barred (保険料: 2 years), whatever year the demo is started in."""
    due = overdue_installments(today)
    assert len(due) >= 7, due  # a household's head takes up to three, three instalments apart
    assert all(today - timedelta(days=700) < d.due < today - timedelta(days=14) for d in due)
    assert all(d.due <= date(d.fiscal_year + 1, 3, 31) for d in due)
    assert len({(d.fiscal_year, d.installment) for d in due}) == len(due)
    tax = overdue_installments(today, per_year=4)
    assert len(tax) >= 3
    assert all(d.installment <= 4 for d in tax)


def test_sample_export_rows_are_due_before_the_day_given() -> None:
    today = date(2031, 5, 10)
    rows = list(household_rows(200, today=today))
    dues = {r[NHI_HEADER.index("納期限")] for r in rows}
    assert {d[:3] for d in dues} <= {"R11", "R12", "R13"}  # FY2029–2031 in 令和
    assert {r[NHI_HEADER.index("相当年度")] for r in rows} <= {"2029", "2030"}
