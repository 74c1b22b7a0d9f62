"""`dialer audit`: read a department's audit log, for the privacy officer and the administrators.

Who viewed a resident's record, what an operator did on a day, every export of a month: the
entries of one department (RLS: its own, never another's), oldest first, as a table or as CSV for
Excel. Reading the log is itself recorded (`audit.read`, with what was asked and the OS user).

Exit codes: 0 done (also when nothing matched); 2 a bad option (an unknown department, user or
household, a date that is not one, --to before --from).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from campaigns.hours import TOKYO
from dialer.config import Settings
from dialer.errors import ConfigError

HEADINGS = {
    "ja": ("日時", "ユーザーID", "氏名", "操作", "対象", "対象番号", "世帯番号", "詳細", "端末"),
    "en": (
        "time (Tokyo)",
        "user ID",
        "name",
        "action",
        "object",
        "object id",
        "household",
        "detail",
        "address",
    ),
}


def register(sub: Any) -> None:
    aud = sub.add_parser(
        "audit", help="read a department's audit log: record views, exports, logins, changes"
    )
    aud.add_argument("--department", required=True)
    aud.add_argument("--from", dest="first", help="first day (YYYY-MM-DD or 和暦); default today")
    aud.add_argument("--to", dest="last", help="last day, inclusive; default the first")
    aud.add_argument("--user", help="only what this user ID did")
    who = aud.add_mutually_exclusive_group()
    who.add_argument("--household", help="only what concerns this household (世帯番号)")
    who.add_argument("--resident", help="only what concerns this resident's household (宛名番号)")
    aud.add_argument(
        "--action",
        help="only these actions, comma-separated, each with those under it (record: record.view; listen)",
    )
    aud.add_argument(
        "--unscoped",
        action="store_true",
        help="also the department's own users' refused logins and lifted locks (entries of no department)",
    )
    aud.add_argument("--output", type=Path, help="write it as CSV (UTF-8, for Excel) instead of a table")
    aud.add_argument("--lang", choices=["ja", "en"], default="ja", help="the headings")
    aud.set_defaults(func=_audit)


def _entries(n: int) -> str:
    return "entry" if n == 1 else "entries"


def _when(at: datetime) -> str:
    return at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M:%S")


def _cells(r: Any) -> list[str]:
    return [
        _when(r["at"]), r["login"] or "", r["user_name"] or "", r["action"], r["object_type"], r["object_id"],
        r["household_no"] or "", "" if r["detail"] in ("{}", None) else r["detail"], r["remote_addr"],
    ]  # fmt: skip


async def _households(conn: Any, args: argparse.Namespace) -> tuple[int, ...] | None:
    """The internal ids of the household asked about (by 世帯番号, or the 宛名番号 of a person in
    it now): () when it is not in the department; None when none was asked about."""
    from dialer.imports.values import clean

    key = args.household if args.household is not None else args.resident
    if key is None:
        return None
    sql = (
        "select id from household where household_no = $1"
        if args.household is not None
        else "select household_id from person where atena_no = $1"
    )
    return tuple(r[0] for r in await conn.fetch(sql, clean(key)[0]))


def _not_found(args: argparse.Namespace) -> ConfigError:
    from dialer.imports.values import clean

    what = "household (世帯番号)" if args.household is not None else "resident (宛名番号)"
    key = clean(args.household if args.household is not None else args.resident)[0]
    return ConfigError(
        f"no {what} {key!r} in department {args.department} (an erased one's entries name it by"
        " its internal number only: search by --user or --action)"
    )


async def _to_csv(conn: Any, sql: str, params: list[Any], out: BinaryIO, lang: str) -> int:
    """The entries as CSV for Excel (UTF-8 with a BOM; no cell starts a formula), a page at a time."""
    from dialer import csvsafe

    text = io.StringIO(newline="")
    w = csv.writer(text, lineterminator="\r\n")
    out.write("\ufeff".encode())
    w.writerow(HEADINGS[lang])
    rows = 0
    async for r in conn.cursor(sql, *params):
        rows += 1
        w.writerow([csvsafe.cell(c) for c in _cells(r)])
        if text.tell() > 1 << 16:
            out.write(text.getvalue().encode())
            text.seek(0)
            text.truncate()
    out.write(text.getvalue().encode())
    return rows


async def _to_table(conn: Any, sql: str, params: list[Any], lang: str) -> int:
    """The entries one a line under the headings, a `-` where a cell is empty."""
    rows = 0
    async for r in conn.cursor(sql, *params):
        rows += 1
        if rows == 1:
            print("  ".join(HEADINGS[lang]))
        print("  ".join(c or "-" for c in _cells(r)))
    return rows


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.cli_data import _date_arg, _output
    from dialer.store import audit, db, departments, users
    from dialer.who import os_user

    today = datetime.now(TOKYO).date()
    first = _date_arg(args.first) or today
    last = _date_arg(args.last) or first
    if last < first:
        raise ConfigError("--to is before --from.")
    actions = tuple(a.strip() for a in (args.action or "").split(",") if a.strip())

    async def body(pool: Any) -> int:
        await departments.require(pool, args.department)
        login, user = None, None
        if args.user is not None:
            login = users.login_id(args.user)
            row = await pool.fetchrow("select id, department_id from app_user where login = $1", login)
            if row is None:
                raise ConfigError(f"no user {login!r} (`dialer users list` shows them)")
            user = (row["id"], login)
            if row["department_id"] not in (None, args.department):
                print(f"note: {login} belongs to department {row['department_id']}: what they did is"
                      f" in its log (--department {row['department_id']})", file=sys.stderr)  # fmt: skip
        async with db.department(pool, args.department) as conn:
            households = await _households(conn, args)
            # The reading is recorded before anything is read, on its own: a read cut short (Ctrl-C,
            # `| head`, a full disk) is still in the log, and so is a look-up that found nobody. The
            # household by its internal number only: the log outlives the resident's erasure, their
            # numbers must not (as inbound.identify).
            asked = {
                "from": first.isoformat(), "to": last.isoformat(), "user": login,
                "by": "household" if args.household is not None else "resident" if args.resident is not None else None,
                "household_ids": list(households) if households else None, "found": False if households == () else None,
                "actions": list(actions), "unscoped": args.unscoped, "to_file": args.output is not None,
            }  # fmt: skip
            reading = await audit.record(
                conn, action="audit.read", user_id=None, department_id=args.department, returning=True,
                detail={"asked": {k: v for k, v in asked.items() if v is not None and v != []}, "os_user": os_user()},
            )  # fmt: skip
        if households == ():
            raise _not_found(args)
        query = audit.Query(
            args.department, first, last, user=user, household_ids=households,
            actions=actions, unscoped=args.unscoped, leave_out=reading,
        )  # fmt: skip
        sql, params = audit.search_sql(query)
        async with db.department(pool, args.department) as conn:
            if args.output is None:
                return await _to_table(conn, sql, params, args.lang)
            with _output(args.output) as out:  # (opened once every option was found good)
                return await _to_csv(conn, sql, params, out, args.lang)

    found: list[int] = []

    async def run(pool: Any) -> None:
        found.append(await body(pool))

    await with_pool(settings, run)
    print(
        f"{found[0]} {_entries(found[0])} written to {args.output}"
        if args.output is not None
        else f"{found[0]} {_entries(found[0])} ({args.department}, {first.isoformat()}〜{last.isoformat()})"
    )
    return 0
