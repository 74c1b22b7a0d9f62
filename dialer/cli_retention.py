"""`dialer retention`: how long each department keeps data, the purge, and its records.

Exit codes: 0 done; 2 a bad option (unknown department, days out of bounds); 8 another process
is purging right now.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dialer import retention
from dialer.config import Settings
from dialer.errors import ConfigError
from dialer.jpformat import tokyo_time
from dialer.who import os_user


def register(sub: Any) -> None:
    ret = sub.add_parser("retention", help="how long data is kept, the purge, and the records of it")
    rsub = ret.add_subparsers(title="retention commands")
    show = rsub.add_parser("show", help="each department's retention (days)")
    show.set_defaults(func=_show)
    put = rsub.add_parser(
        "set",
        help="change a department's retention, or with no days given confirm it as it is "
        "(a department is purged only once its retention is confirmed)",
    )
    put.add_argument("--department", required=True)
    for kind, (lo, hi, default) in retention.BOUNDS.items():
        put.add_argument(
            f"--{kind.replace('_', '-')}-days",
            dest=kind,
            type=int,
            help=f"{retention.POLICY_LABELS[kind][1]}: {lo}–{hi} days (default {default})",
        )
    put.set_defaults(func=_set)
    run = rsub.add_parser("purge", help="delete what is past its retention now (also runs daily at PURGE_AT)")
    run.add_argument("--department", help="only this department (default: all, and the server-wide part)")
    run.add_argument("--dry-run", action="store_true", help="count what would go; delete and record nothing")
    run.set_defaults(func=_purge)
    era = rsub.add_parser(
        "erase",
        help="delete named households now, whatever they owe (a deletion request, data given by mistake)",
    )
    era.add_argument("--department", required=True)
    era.add_argument("--reason", required=True, help="the request's reference (kept in the record)")
    era.add_argument("household_no", nargs="+", help="世帯番号 of each household to delete")
    era.set_defaults(func=_erase)
    hist = rsub.add_parser("history", help="the records of past purges")
    hist.add_argument("--department")
    hist.add_argument("--limit", type=_count, default=20, help="the latest N records (default 20)")
    hist.set_defaults(func=_history)
    cert = rsub.add_parser(
        "certificate", help="one purge's record as text (消去記録), for the council's file"
    )
    cert.add_argument("id", type=int)
    cert.add_argument("--output", type=Path)
    cert.set_defaults(func=_certificate)


async def _show(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import retention as store

    async def body(pool: Any) -> None:
        confirmed = await store.confirmed(pool)
        for dept, p in (await store.policies(pool)).items():
            state = "confirmed" if dept in confirmed else "NOT CONFIRMED: not purged until `retention set`"
            print(
                f"{dept:<8} closed households {p.closed_days:>5} days   import error reports "
                f"{p.import_report_days:>5} days   audit log {p.audit_days:>5} days   {state}"
            )

    await with_pool(settings, body)
    return 0


async def _set(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import retention as store

    changes = {k: getattr(args, k) for k in retention.BOUNDS if getattr(args, k) is not None}

    async def body(pool: Any) -> None:
        new = await store.change_policy(
            pool, args.department, changes, user_id=None, via={"os_user": os_user()}
        )
        what = ", ".join(f"{k} {v} days" for k, v in new.as_dict().items())
        print(f"{args.department}: {what} (confirmed: purged by it from the next purge)")

    await with_pool(settings, body)
    return 0


async def _purge(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.purging import purge_all

    async def body(pool: Any) -> None:
        outcomes = await purge_all(
            pool,
            settings.var_dir / "uploads",
            trigger="command",
            user_name=os_user(),
            dry_run=args.dry_run,
            department=args.department,
        )
        for o in outcomes:
            what = o.department_id or "(server)"
            if o.unconfirmed:
                print(
                    f"{what:<9} not purged: nobody has confirmed its retention yet (see `dialer retention purge "
                    f"--dry-run`, then `dialer retention set --department {what}`)"
                )
                continue
            record = "dry run, nothing deleted" if o.run_id is None else f"record #{o.run_id}"
            counts = ", ".join(f"{k} {v}" for k, v in retention.nonzero(o.counts)) or "nothing"
            print(f"{what:<9} {counts} ({record})")

    await with_pool(settings, body)
    return 0


async def _erase(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.imports.values import clean  # (Ｑ０１６ typed: Q016, as the import stored it)
    from dialer.store import purge

    async def body(pool: Any) -> None:
        out = await purge.erase_households(
            pool, args.department, list(dict.fromkeys(clean(n)[0] for n in args.household_no)), reason=args.reason,
            user_name=os_user(),
        )  # fmt: skip
        counts = ", ".join(f"{k} {v}" for k, v in retention.nonzero(out.counts))
        print(f"{args.department}: {counts} (record #{out.run_id})")

    await with_pool(settings, body)
    return 0


async def _history(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import departments
    from dialer.store import retention as store

    async def body(pool: Any) -> None:
        await departments.require(pool, args.department)
        for r in await store.history(pool, args.department, args.limit):
            started = tokyo_time(r.started_at)
            counts = ", ".join(f"{k} {v}" for k, v in retention.nonzero(r.counts)) or "nothing"
            print(
                f"#{r.id:<5} {started} {r.department_id or '(server)':<9} {r.trigger:<8} {r.status:<7} {counts}"
            )

    await with_pool(settings, body)
    return 0


async def _certificate(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import retention as store

    async def body(pool: Any) -> None:
        run = await store.get(pool, args.id)
        if run is None:
            raise ConfigError(f"No purge record #{args.id}.")
        text = await store.certificate(pool, run)
        if args.output:
            try:
                args.output.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"Cannot write {args.output}: {exc.strerror}.") from None
            print(f"record #{run.id} written to {args.output}")
        else:
            print(text, end="")

    await with_pool(settings, body)
    return 0


def _count(text: str) -> int:
    """A number of records to show: 1 or more (argparse says so, exit 2)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"1 or more, got {n}")
    return n
