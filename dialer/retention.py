"""How long each kind of personal data is kept, and when the daily purge runs (pure: no I/O).

The councils' approvals ask that data no longer needed is deleted, with a record of the deletion.
A department keeps (days, per department, bounded so that a typing mistake cannot wipe what is
still needed, nor keep it for ever):
  closed        a household that owes nothing and has had no activity for this long
  import_report an import's error report (it quotes rejected cells: names, numbers, amounts)
  audit         the audit log (who looked at which record, who exported what)
The store (dialer/store/retention.py) turns a policy and an instant into the deletions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from dialer.errors import ConfigError

TOKYO = ZoneInfo("Asia/Tokyo")

# (least, most, default) days for each kind
BOUNDS: dict[str, tuple[int, int, int]] = {
    "closed": (30, 3650, 365),
    "import_report": (7, 3650, 90),
    "audit": (365, 3650, 1826),
}
# An upload the web app did not delete (its import was killed with the process) is an orphan once
# this old: no import of even a 2 GiB file takes a day.
ORPHAN_UPLOAD_AGE = timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    closed_days: int = BOUNDS["closed"][2]
    import_report_days: int = BOUNDS["import_report"][2]
    audit_days: int = BOUNDS["audit"][2]

    def __post_init__(self) -> None:
        for kind, days in self.as_dict().items():
            check_days(kind, days)

    def as_dict(self) -> dict[str, int]:
        return {
            "closed": self.closed_days,
            "import_report": self.import_report_days,
            "audit": self.audit_days,
        }

    def with_days(self, days: Mapping[str, int]) -> Policy:
        """This policy with some kinds' days changed (kinds as in BOUNDS; checked like any policy)."""
        unknown = set(days) - set(BOUNDS)
        if unknown:
            raise ConfigError(f"unknown kind of data {sorted(unknown)[0]!r} (one of {', '.join(BOUNDS)})")
        return Policy(**{f"{kind}_days": d for kind, d in (self.as_dict() | dict(days)).items()})

    def cutoffs(self, now: datetime) -> Cutoffs:
        """Data older than these instants goes. Days are counted back from the start of today in
        Tokyo, so a purge run at 03:00 or at 23:00 deletes the same things."""
        midnight = datetime.combine(now.astimezone(TOKYO).date(), time(0), TOKYO)
        return Cutoffs(
            closed=midnight - timedelta(days=self.closed_days),
            import_report=midnight - timedelta(days=self.import_report_days),
            audit=midnight - timedelta(days=self.audit_days),
        )


@dataclass(frozen=True)
class Cutoffs:
    closed: datetime
    import_report: datetime
    audit: datetime

    def as_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in vars(self).items()}


def check_days(kind: str, days: int) -> int:
    if kind not in BOUNDS:
        raise ConfigError(f"unknown kind of data {kind!r} (one of {', '.join(BOUNDS)})")
    lo, hi, _ = BOUNDS[kind]
    if not lo <= days <= hi:
        raise ConfigError(f"{kind} data is kept between {lo} and {hi} days, got {days}")
    return days


def server_audit_days(policies: list[Policy]) -> int:
    """The audit log of actions outside any department (logins, administrators' work) is kept as
    long as the department that keeps its own the longest: no department loses part of its trail."""
    return max((p.audit_days for p in policies), default=BOUNDS["audit"][2])


_AT = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_purge_at(raw: str) -> time | None:
    """PURGE_AT: HH:MM in Tokyo time for the daily purge (default 03:30), or 'off'."""
    text = raw.strip().lower()
    if text in ("off", "none", "no"):
        return None
    m = _AT.match(text)
    if m is None:
        raise ConfigError(f"PURGE_AT must be HH:MM (Tokyo time) or off, got {raw!r}")
    return time(int(m.group(1)), int(m.group(2)))


def next_run(at: time, now: datetime) -> datetime:
    """The next instant the clock in Tokyo reads `at`, strictly after `now`."""
    local = now.astimezone(TOKYO)
    candidate = datetime.combine(local.date(), at, TOKYO)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, TOKYO)
    return candidate


# What each count of a purge record is, in both languages (CLI, page, certificate).
KIND_LABELS: dict[str, tuple[str, str]] = {
    "households": ("世帯", "households"),
    "persons": ("個人", "residents"),
    "related_parties": ("関係者（納税管理人・相続人・勤務先等）", "related parties"),
    "phones": ("電話番号", "phone numbers"),
    "debts": ("滞納明細", "debts"),
    "payments": ("収納", "payments"),
    "installment_plans": ("分納計画", "installment plans"),
    "handovers": ("職員への引継ぎ", "cases handed to staff"),
    "promises": ("納付約束", "promises"),
    "contact_history": ("経過記録", "contact history entries"),
    "campaign_targets": ("架電リスト行", "campaign list entries"),
    "calls_made_anonymous": ("匿名化した通話記録", "call records made anonymous"),
    "notes_emptied": ("消去した会話記録", "conversation notes erased"),
    "import_problems": ("取込エラー一覧の行", "import error report lines"),
    "audit_entries": ("監査ログ", "audit log entries"),
    "expired_sessions": ("期限切れのログインセッション", "expired login sessions"),
    "upload_files": ("残っていたアップロードファイル", "orphaned upload files"),
}
POLICY_LABELS: dict[str, tuple[str, str]] = {
    "closed": ("完納・活動なしの世帯", "closed households"),
    "import_report": ("取込エラー一覧", "import error reports"),
    "audit": ("監査ログ", "audit log"),
}


def certificate(
    *,
    run_id: int,
    department: str,
    started: datetime,
    finished: datetime | None,
    status: str,
    trigger: str,
    user_name: str,
    policy: dict[str, int],
    cutoffs: dict[str, str],
    counts: dict[str, int],
    vacuumed: bool,
    message: str = "",
) -> str:
    """The deletion record as plain text (消去記録): what rule, when, how much; no resident named."""

    def tokyo(at: datetime | str) -> str:
        value = datetime.fromisoformat(at) if isinstance(at, str) else at
        return value.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M:%S")

    by = {
        "schedule": "定時消去 (schedule)",
        "command": f"コマンド (command) {user_name}".rstrip(),
        "request": f"個別消去の依頼 (request) {user_name}".rstrip(),
    }.get(trigger, trigger)
    lines = [
        f"データ消去記録 / Record of deletion  No. {run_id}",
        f"部署 / Department: {department}",
        f"実施 / Run: {tokyo(started)} – {tokyo(finished) if finished else '…'} (Asia/Tokyo)",
        f"契機 / Started by: {by}",
        f"状態 / Status: {status}",
    ]
    if message:
        label = "依頼の参照番号 / Reference" if trigger == "request" else "理由 / Reason"
        lines.append(f"{label}: {message}")
    if policy:
        lines.append("保存期間と基準日時 / Retention and cut-off (data older than this went):")
    for kind, days in policy.items():
        ja, en = POLICY_LABELS.get(kind, (kind, kind))
        cut = f", {tokyo(cutoffs[kind])} より前 / before" if kind in cutoffs else ""
        lines.append(f"  {ja} / {en}: {days} 日 / days{cut}")
    lines.append("件数 / Counts:")
    for kind, n in nonzero(counts):
        ja, en = KIND_LABELS.get(kind, (kind, kind))
        lines.append(f"  {ja} / {en}: {n:,}")
    if not nonzero(counts):
        lines.append("  なし / none")
    lines.append(
        "方法 / Method: PostgreSQL DELETE (通話記録は統計のため残し、世帯・番号・会話記録を消去 / "
        "call records kept for statistics without household, number or note)"
    )
    lines.append(
        "VACUUM: 実施済み。削除した行は表から除かれ、その領域は再利用される(物理的な上書きではない) / "
        "done: the rows are removed from the tables and their space is reused (not a physical overwrite)"
        if vacuumed
        else "VACUUM: 自動 (autovacuum) に委ねた / left to autovacuum"
    )
    return "\n".join(lines) + "\n"


def nonzero(counts: dict[str, int]) -> list[tuple[str, int]]:
    """The counts that are not zero, in the order of KIND_LABELS (households first)."""
    order = {k: i for i, k in enumerate(KIND_LABELS)}
    return sorted(((k, n) for k, n in counts.items() if n), key=lambda kv: order.get(kv[0], len(order)))
