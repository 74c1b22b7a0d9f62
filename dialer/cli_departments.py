"""`dialer departments`: the departments (所管課) sharing this server, e.g. NHI and tax.

Exit codes: 0 done; 2 a bad option (an id or number that cannot be used, a department that
exists already or does not exist).
"""

from __future__ import annotations

import argparse
from typing import Any

from dialer.config import Settings
from dialer.jpformat import phone_display
from dialer.who import os_user


def register(sub: Any) -> None:
    dep = sub.add_parser("departments", help="the departments sharing this server (所管課: NHI, tax …)")
    dsub = dep.add_subparsers(title="departments commands")
    ls = dsub.add_parser("list", help="every department")
    ls.set_defaults(func=_list)
    add = dsub.add_parser("add", help="add a department (before importing its data or adding its users)")
    add.add_argument("--id", required=True, help="a short code used everywhere else, e.g. nhi, tax")
    add.add_argument("--ja", required=True, help="its name in Japanese, e.g. 国民健康保険課")
    add.add_argument("--en", required=True, help="its name in English")
    _common(add)
    add.set_defaults(func=_add)
    put = dsub.add_parser("set", help="change a department's names, number or export encoding")
    put.add_argument("id")
    put.add_argument("--ja", help="its name in Japanese")
    put.add_argument("--en", help="its name in English")
    _common(put)
    put.set_defaults(func=_set)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--callback-number",
        help="the number residents call back (read out in the abandon message; the line calls come in on)",
    )
    p.add_argument(
        "--export-encoding",
        choices=["cp932", "utf-8", "utf-8-sig"],
        help="of the CSV files exported for the delinquency system (default cp932)",
    )


def _show(d: Any) -> str:
    number = phone_display(d.callback_number) if d.callback_number else "-"
    return f"{d.id:<10} {d.name_ja} / {d.name_en}  callback {number}  export {d.export_encoding}"


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import departments

    async def body(pool: Any) -> None:
        for d in await departments.listed(pool):
            print(_show(d))

    await with_pool(settings, body)
    return 0


async def _add(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import departments

    async def body(pool: Any) -> None:
        d = await departments.add(
            pool,
            department_id=args.id,
            name_ja=args.ja,
            name_en=args.en,
            callback_number=args.callback_number or "",
            export_encoding=args.export_encoding or "cp932",
            via={"os_user": os_user()},
        )
        print("added " + _show(d))

    await with_pool(settings, body)
    return 0


async def _set(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import departments

    async def body(pool: Any) -> None:
        d = await departments.change(
            pool,
            args.id,
            name_ja=args.ja,
            name_en=args.en,
            callback_number=args.callback_number,
            export_encoding=args.export_encoding,
            via={"os_user": os_user()},
        )
        print("changed " + _show(d))

    await with_pool(settings, body)
    return 0
