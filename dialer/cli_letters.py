"""`dialer letters`: a campaign's households that could not be reached by phone, for reminder
letters (催告書; dialer/store/letters.py). Counting names nobody; the list is staff's."""

from __future__ import annotations

import argparse
import contextlib
import os
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from dialer.config import Settings
from dialer.errors import ConfigError


def register(sub: Any) -> None:
    from dialer.store.letters import AGAIN_DAYS, MAX_AGAIN_DAYS

    let = sub.add_parser(
        "letters", help="催告書: a campaign's households that phone calls cannot reach (staff)"
    )
    let.add_argument("campaign", type=int, help="the campaign's number")
    let.add_argument("--count", action="store_true", help="only say how many (nothing is recorded)")
    let.add_argument(
        "--last", action="store_true",
        help="write the campaign's last list again (the file was lost): the same households, nothing added to 経過記録",
    )  # fmt: skip
    let.add_argument("--user", help="the login of the staff member making the list (audit log)")
    let.add_argument("--output", type=Path, help="the CSV to write (the department's encoding)")
    let.add_argument(
        "--again-days", type=int, default=AGAIN_DAYS,
        help=f"leave out households sent a letter within this many days (default {AGAIN_DAYS}, 0-{MAX_AGAIN_DAYS})",
    )  # fmt: skip
    let.set_defaults(func=_letters)


async def _letters(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.cli_data import staff_member, write_whole
    from dialer.store import campaigns, db, letters
    from dialer.who import os_user

    if args.count and args.last:
        raise ConfigError("--count and --last do not go together.")
    if not args.count and (args.user is None or args.output is None):
        raise ConfigError("Give --user (a staff login) and --output FILE to make the list, or --count.")
    if not 0 <= args.again_days <= letters.MAX_AGAIN_DAYS:
        raise ConfigError(f"--again-days is 0-{letters.MAX_AGAIN_DAYS}.")

    async def campaign(pool: Any) -> Any:
        c = await campaigns.by_id(pool, args.campaign)
        if c is None:
            raise ConfigError(f"No campaign {args.campaign}.")
        return c

    async def count(pool: Any) -> None:
        c = await campaign(pool)
        async with db.department(pool, c.department_id) as conn:
            n = await letters.count(conn, c.id, c.department_id, args.again_days)
        print(
            f"campaign {c.id} {c.name}: {n.households:,} households for a letter "
            f"({n.no_phone:,} with no number), owing ¥{n.unpaid_yen:,} together"
        )
        warn_of(c, n)

    def warn_of(c: Any, n: Any) -> None:
        if n.no_address:
            print(f"  left off, no address to post to: {len(n.no_address):,} ({_some(n.no_address)})")
        if n.unwritable:
            print(
                f"  a name or address the export encoding {n.encoding} cannot write (〓 in the list): "
                f"{len(n.unwritable):,} ({_some(n.unwritable)}); `dialer departments set "
                f"{c.department_id} --export-encoding utf-8-sig` writes them"
            )

    async def make(pool: Any, target: BinaryIO) -> None:
        c = await campaign(pool)
        user_id = await staff_member(pool, args.user, c.department_id, "only staff make the list")

        def deliver(data: bytes) -> None:  # on disk before the letters are recorded
            try:
                target.write(data)
                target.flush()
            except OSError as exc:  # a full disk: nothing is recorded (the transaction is not committed)
                raise ConfigError(
                    f"Cannot write {args.output}: {exc.strerror}; no letter was recorded."
                ) from None
            with contextlib.suppress(OSError):  # (a pipe, such as /dev/stdout, cannot be synced)
                os.fsync(target.fileno())

        if args.last:
            made = await letters.last_again(
                pool, campaign_id=c.id, department_id=c.department_id, user_id=user_id, via="cli",
                os_user=os_user(), deliver=deliver,
            )  # fmt: skip
            print(
                f"the list of {made.made_on:%Y-%m-%d} again: {made.rows} households ({made.encoding}) written to {args.output}"
            )
            return
        made = await letters.make(
            pool, campaign_id=c.id, department_id=c.department_id, user_id=user_id, via="cli",
            again_days=args.again_days, os_user=os_user(), deliver=deliver,
        )  # fmt: skip
        print(
            f"{made.rows} households ({made.encoding}) written to {args.output}; their letters are in 経過記録"
        )
        if made.counted is not None:  # what the list itself cannot say
            warn_of(c, made.counted)

    try:
        if args.count:
            await with_pool(settings, count)
        else:
            await write_whole(args.output, lambda target: with_pool(settings, partial(make, target=target)))
    except letters.LetterError as exc:
        raise ConfigError(_MESSAGES.get(exc.key, exc.key)) from None
    return 0


_MESSAGES = {
    "let.err.campaign": "No such campaign in its department.",
    "let.err.segment": "The campaign's segment cannot be read: set it again (dialer campaign set).",
    "let.err.again": "--again-days is out of range.",
    "let.err.no_last": "No list has been made for this campaign yet (lists made before sql/0035 are not known).",
}


def _some(numbers: tuple[str, ...]) -> str:
    """世帯番号, the first twenty."""
    return ", ".join(numbers[:20]) + (", …" if len(numbers) > 20 else "")
