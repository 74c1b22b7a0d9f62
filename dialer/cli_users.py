"""`dialer users`: the people who log in (operators, supervisors, staff, administrators).

A leaver's login is switched off (`users disable`), never deleted: the audit log and the calls
keep naming who did what. Switching a login off, changing its password, role or department ends
its sessions at once (an open operator page closes within seconds and takes no further call).
Every change is in the audit log, with the OS user who made it.

Exit codes: 0 done; 2 a bad option (an unknown user, a role or department that cannot be used,
an extension that is taken, a password too short).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from dialer.config import Settings
from dialer.errors import ConfigError
from dialer.store.users import ROLES
from dialer.who import os_user


def register(sub: Any) -> None:
    users = sub.add_parser("users", help="the people who log in: add, list, change, disable")
    usub = users.add_subparsers(title="users commands")
    ls = usub.add_parser("list", help="every user (of a department: with the administrators)")
    ls.add_argument("--department")
    ls.set_defaults(func=_list)
    add = usub.add_parser("add", help="add a user (the password is read from stdin or asked)")
    add.add_argument("--login", required=True)
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--department", help="department id (not for admin)")
    add.add_argument("--extension", help="the operator's phone extension")
    add.add_argument(
        "--pbx", help="with AMI_SERVERS: the Asterisk server the phone is on (default: the first)"
    )
    add.set_defaults(func=_add)
    put = usub.add_parser("set", help="change a user's name, role, department, extension, PBX or password")
    put.add_argument("login")
    put.add_argument("--name", help="display name")
    put.add_argument("--role", choices=ROLES)
    put.add_argument("--department", help="department id ('' for none: administrators only)")
    put.add_argument("--extension", help="the phone extension ('' for none)")
    put.add_argument("--pbx", help="the Asterisk server the phone is on ('' for the first)")
    put.add_argument(
        "--password",
        action="store_true",
        help="set a new password, read from stdin or asked (ends the user's sessions)",
    )
    put.set_defaults(func=_set)
    off = usub.add_parser("disable", help="switch a login off (a leaver): refused at once, open pages closed")
    off.add_argument("login")
    off.set_defaults(func=_switch, active=False)
    on = usub.add_parser("enable", help="switch a login on again")
    on.add_argument("login")
    on.set_defaults(func=_switch, active=True)
    unlock = usub.add_parser(
        "unlock", help="lift the lock failed logins put on a user ID (or, with --address, on a computer)"
    )
    unlock.add_argument("login", nargs="?", help="the user ID")
    unlock.add_argument("--address", help="the address logins were refused from (login.address_locked)")
    unlock.set_defaults(func=_unlock)


def _password() -> str:
    return sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("password: ")


def _show(u: Any, locked: bool = False) -> str:
    user = u.user
    state = ("active" if u.active else "DISABLED") + (",LOCKED" if locked else "")
    return (
        f"{user.login:<16} {user.role:<10} {user.department_id or '(all)':<8} "
        f"ext {user.extension or '-':<8} {('pbx ' + user.pbx) if user.pbx else '':<10}"
        f"{state:<16} {user.display_name}"
    ).rstrip()


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import departments, lockouts, users

    async def body(pool: Any) -> None:
        await departments.require(pool, args.department)
        locked = await lockouts.locked_logins(pool)
        for u in await users.listed(pool, args.department):
            print(_show(u, u.user.login in locked))
        if addresses := await lockouts.locked_addresses(pool, settings.login_failures_per_address):
            print(f"logins refused from: {', '.join(addresses)} (dialer users unlock --address ...)")

    await with_pool(settings, body)
    return 0


async def _add(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import audit, db, users

    password = _password()

    async def body(pool: Any) -> None:
        async with db.transaction(pool) as tx:
            user = await users.create_user(
                tx,
                login=args.login,
                password=password,
                display_name=args.name,
                role=args.role,
                department_id=args.department,
                extension=args.extension,
                pbx=args.pbx,
            )
            await audit.record(
                tx, action="user.add", user_id=None, department_id=user.department_id, object_type="app_user",
                object_id=user.login, detail={"after": {k: getattr(user, k) for k in users.CHANGEABLE},
                                              "os_user": os_user()},
            )  # fmt: skip
        print(f"created user {user.login} ({user.role})")

    await with_pool(settings, body)
    return 0


async def _set(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import users

    given = {
        "display_name": args.name,
        "role": args.role,
        "department_id": args.department,
        "extension": args.extension,
        "pbx": args.pbx,
    }
    # '' clears an optional field; an option left out changes nothing
    changes = {
        k: (v.strip() or None if k != "display_name" else v) for k, v in given.items() if v is not None
    }
    password = _password() if args.password else None
    if not changes and password is None:
        raise ConfigError(
            "dialer users set: nothing to change (--name, --role, --department, --extension, --pbx, --password)."
        )

    async def body(pool: Any) -> None:
        u = await users.change(pool, args.login, changes, password=password, via={"os_user": os_user()})
        print("changed " + _show(u) + (" (password changed; sessions ended)" if password else ""))

    await with_pool(settings, body)
    return 0


async def _switch(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import users

    async def body(pool: Any) -> None:
        u = await users.change(pool, args.login, {}, active=args.active, via={"os_user": os_user()})
        print(("enabled " if args.active else "disabled (sessions ended) ") + _show(u))

    await with_pool(settings, body)
    return 0


async def _unlock(settings: Settings, args: argparse.Namespace) -> int:
    import ipaddress

    from dialer.cli import with_pool
    from dialer.store import lockouts, users

    if (args.login is None) == (args.address is None):
        raise ConfigError("dialer users unlock: give a user ID, or --address and the computer's address.")
    if args.address is not None:
        try:
            ipaddress.ip_address(args.address.strip())
        except ValueError:
            raise ConfigError(f"dialer users unlock: {args.address!r} is not an IP address.") from None
        address = lockouts.address_of(args.address)

    async def body(pool: Any) -> None:
        if args.login is not None:
            n = await lockouts.unlock(pool, login=args.login, via={"os_user": os_user()})
            what = f"user {users.login_id(args.login)}"
        else:
            n = await lockouts.unlock(pool, address=address, via={"os_user": os_user()})
            what = f"address {address}"
        limit = lockouts.LOCKOUT_FAILURES if args.login is not None else settings.login_failures_per_address
        locked = 0 < limit <= n
        print(
            f"unlocked {what} ({n} failed logins in the last 15 minutes set aside)"
            if locked
            else f"{what} was not locked ({n} failed logins in the last 15 minutes); recorded anyway"
        )
        addresses = await lockouts.locked_addresses(pool, settings.login_failures_per_address)
        if not locked and args.login is not None and addresses:  # (the person may be at a locked computer)
            print(f"logins are refused from: {', '.join(addresses)} (dialer users unlock --address ...)")

    await with_pool(settings, body)
    return 0
