"""`dialer campaign`: create campaigns and tune them from the command line.

A change takes effect at once: the engine reads a campaign's status, mode, window and pacing
again before each call, and its retry policy whenever a call ends. Windows, retry policies and
pacing settings are JSON or TOML files (by suffix) in the forms of docs/supervisor.md; `default`
puts the product's defaults back. Exit codes: 0 done; 2 a bad value or no such campaign (nothing
changed); 3 the database unreachable (as for every command).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from campaigns import segments
from dialer.campaign_settings import (
    BadValue,
    caller_id,
    campaign_name,
    changes_from,
    describe,
    read_file,
    read_segment,
    tokyo_today,
)
from dialer.config import Settings
from dialer.jpformat import phone_display

MODES = ("preview", "progressive", "predictive")


async def _logged(conn: Any, what: str, campaign: Any, detail: dict[str, Any]) -> None:
    """In the audit log as the console's changes are (campaign.create/update/preview/fill), with the
    OS user who ran the command (a command has no login)."""
    from dialer.store import audit
    from dialer.who import os_user

    await audit.record(
        conn, action=f"campaign.{what}", user_id=None, department_id=campaign.department_id,
        object_type="campaign", object_id=campaign.id, detail={**detail, "os_user": os_user()},
    )  # fmt: skip


STATUSES = ("draft", "active", "paused", "finished")


def register(sub: Any) -> None:
    camp = sub.add_parser("campaign", help="create and tune campaigns (window, retries, pacing, mode)")
    csub = camp.add_subparsers(title="campaign commands")
    ls = csub.add_parser("list", help="campaigns and their settings in one line each")
    ls.add_argument("--department")
    ls.set_defaults(func=_list)
    show = csub.add_parser("show", help="one campaign's settings in full (JSON), defaults filled in")
    show.add_argument("id", type=int)
    show.set_defaults(func=_show)
    new = csub.add_parser("create", help="a new campaign (status draft until set active)")
    new.add_argument("--department", required=True)
    new.add_argument("--name", required=True)
    new.add_argument("--mode", choices=MODES, default="preview")
    new.add_argument("--caller-id", default="", help="the number residents see and can call back")
    new.set_defaults(func=_create)
    put = csub.add_parser("set", help="change settings; the engine uses them from its next call")
    put.add_argument("id", type=int)
    put.add_argument("--name")
    put.add_argument("--mode", choices=MODES)
    put.add_argument("--caller-id")
    put.add_argument("--status", choices=STATUSES)
    put.add_argument("--window", help="calling window file (.json/.toml), or 'default'")
    put.add_argument("--retry", help="retry policy file (.json/.toml), or 'default'")
    put.add_argument("--pacing", help="pacing settings file (.json/.toml), or 'default'")
    put.add_argument("--target-abandon", type=float, help="predictive: abandon target, at most 0.03")
    put.add_argument("--max-lines", type=float, help="predictive: most calls in flight per operator")
    put.add_argument(
        "--amd-false-machine",
        type=float,
        help="predictive: share of people AMD takes for machines (counted as abandoned; default 0.005)",
    )
    put.add_argument("--segment", help="segment rules file (.json/.toml): who is called; or 'default'")
    put.add_argument(
        "--operators", help="operators' logins, comma-separated, who take its calls; 'all' for everyone"
    )
    put.add_argument(
        "--machine-message",
        help="sound file left on answering machines (e.g. custom/nhi-call-back); 'none': hang up",
    )
    put.add_argument(
        "--script",
        help="talk script operators read: a UTF-8 text file with {氏名}, {未納額}…; 'none': no script",
    )
    put.set_defaults(func=_set)
    pre = csub.add_parser("preview", help="how many households the segment matches now (nothing changes)")
    pre.add_argument("id", type=int)
    pre.add_argument("--segment", help="try these rules instead of the campaign's own (.json/.toml)")
    pre.set_defaults(func=_preview)
    fill = csub.add_parser(
        "fill", help="put the segment's households on the campaign's list (and set aside the rest)"
    )
    fill.add_argument("id", type=int)
    fill.set_defaults(func=_fill)


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import campaigns, departments

    async def body(pool: Any) -> None:
        await departments.require(pool, args.department)
        for c in await campaigns.listed(pool, args.department):
            own = [
                n
                for n, v in (
                    ("window", c.calling_window),
                    ("retry", c.retry_policy),
                    ("pacing", c.pacing),
                    ("segment", c.segment),
                )
                if v
            ]
            print(
                f"{c.id:>5}  {c.department_id:<6} {c.status:<8} {c.dial_mode:<11} {phone_display(c.caller_id) or '-':<13} "
                f"{c.name}" + (f"  (own {', '.join(own)})" if own else "")
            )

    await with_pool(settings, body)
    return 0


async def _show(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import campaigns

    found: list[Any] = []

    async def body(pool: Any) -> None:
        found.append(await campaigns.by_id(pool, args.id))

    await with_pool(settings, body)
    if found[0] is None:
        print(f"dialer: error: no campaign {args.id}", file=sys.stderr)
        return 2
    print(json.dumps(describe(found[0]), ensure_ascii=False, indent=2))
    return 0


async def _create(settings: Settings, args: argparse.Namespace) -> int:
    import asyncpg

    from dialer.cli import with_pool
    from dialer.store import campaigns, db

    try:
        number = caller_id(args.caller_id)
        name = campaign_name(args.name)
    except BadValue as exc:
        print(f"dialer: error: {exc}", file=sys.stderr)
        return 2
    made: list[int] = []

    async def body(pool: Any) -> None:
        async with db.transaction(pool) as tx:
            made.append(await campaigns.create(tx, args.department, name, args.mode, number))
            created = await campaigns.by_id(tx, made[0])
            await _logged(tx, "create", created, {"name": name, "dial_mode": args.mode})

    try:
        await with_pool(settings, body)
    except asyncpg.UniqueViolationError:
        print(f"dialer: error: {args.department} already has a campaign named {args.name!r}", file=sys.stderr)
        return 2
    except asyncpg.ForeignKeyViolationError:
        print(f"dialer: error: no department {args.department!r}", file=sys.stderr)
        return 2
    print(f"campaign {made[0]} created (draft): dialer campaign set {made[0]} --status active to start it")
    return 0


async def _set(settings: Settings, args: argparse.Namespace) -> int:
    import asyncpg

    from dialer.cli import with_pool
    from dialer.store import campaigns, db

    result: list[Any] = []

    async def body(pool: Any) -> None:
        current = await campaigns.by_id(pool, args.id)
        if current is None:
            return
        changes = changes_from(args, current)
        operators = None
        if args.operators is not None:
            operators = await _operator_ids(pool, current.department_id, args.operators)
        async with db.transaction(pool) as tx:  # all of it, or nothing
            if operators is not None:
                await campaigns.set_operators(tx, args.id, operators)
            result.append(await campaigns.update(tx, args.id, changes))
            changed = sorted([*changes, *(["operators"] if operators is not None else [])])
            detail: dict[str, Any] = {"changed": changed}
            if "script" in changes and changes["script"] != current.script:  # who wrote what
                detail["script"] = {"before": current.script, "after": changes["script"]}
            await _logged(tx, "update", current, detail)

    try:
        await with_pool(settings, body)
    except BadValue as exc:
        print(f"dialer: error: {exc} (nothing changed)", file=sys.stderr)
        return 2
    except asyncpg.UniqueViolationError:
        print(f"dialer: error: the department already has a campaign named {args.name!r}", file=sys.stderr)
        return 2
    if not result or result[0] is None:
        print(f"dialer: error: no campaign {args.id}", file=sys.stderr)
        return 2
    print(json.dumps(describe(result[0]), ensure_ascii=False, indent=2))
    return 0


async def _operator_ids(pool: Any, department_id: str, text: str) -> list[int]:
    """`all` (nobody assigned: every operator of the department) or logins separated by commas."""
    if text.strip() == "all":
        return []
    logins = [x.strip() for x in text.split(",") if x.strip()]
    rows = await pool.fetch(
        "select id, login from app_user where login = any($1::text[]) and role = 'operator' and department_id = $2",
        logins,
        department_id,
    )
    missing = sorted(set(logins) - {r["login"] for r in rows})
    if missing or not logins:
        named = ", ".join(missing) if missing else repr(text)
        raise BadValue(f"operators: not operators of {department_id}: {named}")
    return [r["id"] for r in rows]


async def _with_segment(
    settings: Settings, args: argparse.Namespace, file: str | None, work: Callable[..., Awaitable[Any]]
) -> tuple[Any, Any] | int:
    """`work(pool, campaign, segment)` with the campaign's segment (or a file's); an exit code if not."""
    from dialer.cli import with_pool
    from dialer.store import campaigns

    out: list[tuple[Any, Any]] = []

    async def body(pool: Any) -> None:
        c = await campaigns.by_id(pool, args.id)
        if c is not None:
            seg = read_segment(read_file(file, "segment") if file else c.segment)
            out.append((c, await work(pool, c, seg)))

    try:
        await with_pool(settings, body)
    except BadValue as exc:
        print(f"dialer: error: {exc} (nothing changed)", file=sys.stderr)
        return 2
    if not out:
        print(f"dialer: error: no campaign {args.id}", file=sys.stderr)
        return 2
    return out[0]


async def _preview(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.store import segments as store

    async def count(pool: Any, c: Any, seg: segments.Segment) -> Any:
        seen = await store.preview(pool, c.id, c.department_id, seg, tokyo_today())
        await _logged(
            pool, "preview", c, {"households": seen.households, "rules_from_file": bool(args.segment)}
        )
        return seen

    got = await _with_segment(settings, args, args.segment, count)
    if isinstance(got, int):
        return got
    c, p = got
    print(
        f"campaign {c.id} {c.name}: {_match(p.households)}, arrears ¥{p.unpaid_yen:,} together; "
        f"{p.in_campaign:,} already on its list, {p.elsewhere:,} waiting in another active campaign too"
        + (
            f"; {p.leaving:,} of those waiting on its list outside them (a fill with these rules sets them aside)"
            if p.leaving
            else ""
        )
        + ("" if args.segment is None else " (rules from the file, not stored)")
    )
    return 0


async def _fill(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.store import segments as store

    async def fill(pool: Any, c: Any, seg: segments.Segment) -> Any:
        from dialer.store import db

        async with db.transaction(pool) as tx:  # the fill and its audit entry, or neither
            filled = await store.fill(tx, c.id, c.department_id, seg, tokyo_today())
            detail = {"matched": filled.matched, "added": filled.added, "set_aside": filled.set_aside}
            await _logged(tx, "fill", c, detail)
        return filled

    got = await _with_segment(settings, args, None, fill)
    if isinstance(got, int):
        return got
    c, f = got
    print(
        f"campaign {c.id} {c.name}: {_match(f.matched)}; {f.added:,} added, "
        f"{f.set_aside:,} no longer matching set aside"
        + (f", {f.returned:,} set aside before taken back" if f.returned else "")
    )
    return 0


def _match(n: int) -> str:
    return "1 household matches" if n == 1 else f"{n:,} households match"
