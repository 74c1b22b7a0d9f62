"""`dialer letters`: a campaign's households that could not be reached by phone, for reminder
letters (催告書; dialer/store/letters.py). Counting names nobody; the list is staff's."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from dialer.config import Settings
from dialer.errors import ConfigError


def register(sub: Any) -> None:
    from dialer.store.letters import AGAIN_DAYS, MAX_AGAIN_DAYS

    let = sub.add_parser(
        "letters", help="催告書: a campaign's households that phone calls cannot reach (staff)"
    )
    let.add_argument("campaign", type=int, help="the campaign's number")
    let.add_argument("--count", action="store_true", help="only say how many (nothing is recorded)")
    let.add_argument("--user", help="the login of the staff member making the list (audit log)")
    let.add_argument("--output", type=Path, help="the CSV to write (the department's encoding)")
    let.add_argument(
        "--again-days", type=int, default=AGAIN_DAYS,
        help=f"leave out households sent a letter within this many days (default {AGAIN_DAYS}, 0-{MAX_AGAIN_DAYS})",
    )  # fmt: skip
    let.set_defaults(func=_letters)


async def _letters(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.cli_data import _beside, _output
    from dialer.store import campaigns, db, letters
    from dialer.who import os_user

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

    async def make(pool: Any) -> None:
        c = await campaign(pool)
        user = await pool.fetchrow(
            "select id, role, department_id from app_user where login = $1 and active", args.user
        )
        if user is None or user["role"] != "staff" or user["department_id"] != c.department_id:
            raise ConfigError(
                f"{args.user!r} is not an active staff member of {c.department_id!r}: only staff make the list."
            )
        made = await letters.make(
            pool, campaign_id=c.id, department_id=c.department_id, user_id=user["id"], via="cli",
            again_days=args.again_days, os_user=os_user(),
        )  # fmt: skip
        target.write(made.data)
        print(
            f"{made.rows} households ({made.encoding}) written to {args.output}; their letters are in 経過記録"
        )

    try:
        if args.count:
            await with_pool(settings, count)
            return 0
        final: Path = args.output
        part, direct = _beside(final)  # written beside and moved into place once whole
        target = _output(part)
        try:
            await with_pool(settings, make)
        except BaseException:
            target.close()
            if not direct:
                part.unlink(missing_ok=True)
            raise
        target.close()
        if not direct:
            os.replace(part, final)
        return 0
    except letters.LetterError as exc:
        raise ConfigError(_MESSAGES.get(exc.key, exc.key)) from None


_MESSAGES = {
    "let.err.campaign": "No such campaign in its department.",
    "let.err.segment": "The campaign's segment cannot be read: set it again (dialer campaign set).",
    "let.err.again": "--again-days is out of range.",
}
