"""Exports back to the delinquency system: contact results and 経過記録, as CSV in the department's encoding.

Only municipal staff export (the web page and the CLI check the role); every export is written to
the audit log with what was exported (kind, period, rows) in the same transaction that read it.
Characters the target encoding cannot hold (CP932 lacks some 人名 kanji) become 〓, as the
municipal systems themselves do.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from dialer.csvsafe import cell
from dialer.store import db

TOKYO = ZoneInfo("Asia/Tokyo")
KINDS = ("history", "results")


# Characters Unicode has twice, of which CP932 holds the other one (the "wave dash problem"): text
# typed on a Mac or pasted from the web, read on Windows. Written as the character CP932 holds.
_CP932_TWINS = str.maketrans(
    {"\u2014": "\u2015", "\u301c": "\uff5e", "\u2016": "\u2225", "\u2212": "\uff0d",
     "\u00a2": "\uffe0", "\u00a3": "\uffe1", "\u00ac": "\uffe2"}
)  # fmt: skip


def _geta(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeEncodeError)
    return "〓" * (exc.end - exc.start), exc.end


codecs.register_error("dialer-geta", _geta)


@dataclass(frozen=True)
class Export:
    kind: str
    department_id: str
    first: date
    last: date
    rows: int
    encoding: str
    data: bytes

    @property
    def filename(self) -> str:
        return f"{self.department_id}-{self.kind}-{self.first:%Y%m%d}-{self.last:%Y%m%d}.csv"


_HISTORY = """
select to_char(c.at at time zone 'Asia/Tokyo', 'YYYY/MM/DD HH24:MI') as at, h.household_no,
       coalesce(head.atena_no, '') as atena_no, c.method, c.place, c.party, c.content,
       coalesce(u.display_name, '') as recorded_by
from contact_history c
join household h on h.id = c.household_id
left join lateral (select atena_no from person where household_id = h.id order by is_head desc, id limit 1) head on true
left join app_user u on u.id = c.recorded_by
where c.department_id = $1 and c.at >= $2 and c.at < $3
  and c.source <> 'imported'  -- the delinquency system's own entries (dialer import-contacts) go back to nobody
order by c.at, c.id
"""
HISTORY_HEADER = ("日時", "世帯番号", "宛名番号", "方法", "場所", "相手", "内容", "記録者")
_METHODS = {
    "phone_out": "電話(架電)",
    "phone_in": "電話(受電)",
    "visit": "訪問",
    "letter": "文書",
    "counter": "窓口",
    "other": "その他",
}

_RESULTS = """
select to_char(a.originated_at at time zone 'Asia/Tokyo', 'YYYY/MM/DD HH24:MI:SS') as at, h.household_no,
       coalesce(head.atena_no, '') as atena_no, coalesce(a.dialed_number, a.caller_number, '') as number,
       coalesce(c.name, '受電') as campaign,
       coalesce(a.outcome, '') as outcome, coalesce(d.code, '') as code,
       coalesce(to_char(d.promise_date, 'YYYY/MM/DD'), '') as promise_date,
       coalesce(d.promise_amount_yen::text, '') as promise_yen,
       coalesce(to_char(d.callback_at at time zone 'Asia/Tokyo', 'YYYY/MM/DD HH24:MI'), '') as callback_at,
       coalesce(u.display_name, '') as operator, coalesce(a.talk_s::int::text, '') as talk_s,
       coalesce(a.outcome, '') as outcome_label, coalesce(dc.label_ja, '') as code_label
from attempt a
join household h on h.id = a.household_id
left join campaign c on c.id = a.campaign_id  -- none: a resident's incoming call
left join lateral (select atena_no from person where household_id = h.id order by is_head desc, id limit 1) head on true
left join disposition d on d.attempt_id = a.id
left join lateral (select label_ja from disposition_code x where x.code = d.code
                   and (x.department_id = a.department_id or x.department_id is null)
                   order by x.department_id nulls last limit 1) dc on true
left join app_user u on u.id = a.operator_id
where a.department_id = $1 and a.originated_at >= $2 and a.originated_at < $3
  and a.ended_at is not null  -- a call still going has no result yet: the next export gives it, once
order by a.originated_at, a.id
"""
RESULTS_HEADER = (
    "架電日時",
    "世帯番号",
    "宛名番号",
    "電話番号",
    "キャンペーン",
    "発信結果",
    "応対結果コード",
    "納付約束日",
    "約束金額",
    "折り返し日時",
    "オペレータ",
    "通話秒数",
    "発信結果名",  # the two codes in words, for people (the codes stay for the systems reading them)
    "応対結果",
)
# the pages' words (web/messages/ja.toml outcome.*, half-width brackets); tests/test_i18n.py keeps them equal
OUTCOME_LABELS = {
    "connected": "通話", "abandoned": "放棄", "dropped": "接続前に切断", "machine": "留守番電話", "busy": "話し中",
    "no_answer": "応答なし", "congestion": "回線混雑", "unavailable": "使われていない番号", "cancelled": "発信取消",
    "failed": "発信失敗", "lost": "不明(PBX接続断)", "": "進行中",
}  # fmt: skip


async def export(
    pool: asyncpg.Pool,
    *,
    kind: str,
    department_id: str,
    first: date,
    last: date,
    user_id: int,
    via: str,
    os_user: str | None = None,
    remote_addr: str = "",
) -> Export:
    """Contact history (kind 'history') or call results ('results') from `first` to `last` (Tokyo dates, inclusive)."""
    if kind not in KINDS:
        raise ValueError(kind)
    start = datetime(first.year, first.month, first.day, tzinfo=TOKYO)
    end = datetime(last.year, last.month, last.day, tzinfo=TOKYO) + timedelta(days=1)
    async with db.department(pool, department_id) as conn:  # RLS: this department's residents only
        encoding = await conn.fetchval("select export_encoding from department where id = $1", department_id)
        rows = await conn.fetch(
            _HISTORY if kind == "history" else _RESULTS, department_id, start, end, timeout=300
        )
        await conn.execute(
            """insert into audit_log (user_id, department_id, action, object_type, object_id, detail, remote_addr)
               values ($1, $2, 'export', $3, '', $4::jsonb, $5)""",
            user_id,
            department_id,
            kind,
            json.dumps(
                {"from": first.isoformat(), "to": last.isoformat(), "rows": len(rows), "via": via}
                | ({"os_user": os_user} if os_user else {})  # the CLI: who ran it, beside whose name
            ),
            remote_addr,
        )
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    if kind == "history":
        w.writerow(HISTORY_HEADER)
        for r in rows:
            method = _METHODS[r["method"]]
            # every cell: an integrator's 経過記録 (source 'external') may hold anything in any of them
            given = (r["at"], r["household_no"], r["atena_no"], method, r["place"], r["party"], r["content"])
            w.writerow([*map(cell, given), cell(r["recorded_by"])])
    else:
        w.writerow(RESULTS_HEADER)
        for r in rows:
            values = list(r)
            values[-2] = OUTCOME_LABELS.get(values[-2], values[-2])
            w.writerow(tuple(cell(v) for v in values))
    return Export(kind, department_id, first, last, len(rows), encoding, encode(buf.getvalue(), encoding))


def encode(text: str, encoding: str) -> bytes:
    """Text for the delinquency system in the department's encoding (CP932: the characters it holds
    of the twins above; 〓 for any it cannot)."""
    if encoding == "cp932":
        text = text.translate(_CP932_TWINS)
    return text.encode(encoding, errors="dialer-geta")
