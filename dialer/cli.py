"""The `dialer` command. Errors a user can act on print one line and exit non-zero."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from dialer import (
    cli_audit,
    cli_campaign,
    cli_data,
    cli_departments,
    cli_letters,
    cli_reports,
    cli_retention,
    cli_users,
    config,
    logs,
)
from dialer.config import Settings
from dialer.errors import DialerError, PortInUse


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):  # `dialer users`: the help of `users`, not of everything
        (getattr(args, "help_of", None) or parser).print_help()
        return 2
    try:
        settings = config.load()
        logs.configure(settings.log_level, settings.log_format)
        code: int = asyncio.run(args.func(settings, args))
        return code
    except DialerError as exc:
        print(f"dialer: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dialer", description="電話催告システム — municipal arrears reminder dialer"
    )
    sub = p.add_subparsers(title="commands")
    run = sub.add_parser("run", help="run the engine, the web app and the AMI link (needs AMI_HOST)")
    run.set_defaults(func=_run)
    demo = sub.add_parser("demo", help="run with the simulated PBX, the embedded PostgreSQL and sample data")
    demo.add_argument("--households", type=int, default=300, help="sample households to create (first run)")
    demo.set_defaults(func=_demo)
    mig = sub.add_parser("migrate", help="apply the SQL migrations in sql/")
    mig.set_defaults(func=_migrate)
    sim = sub.add_parser("simpbx", help="run only the simulated PBX (AMI on SIM_AMI_PORT, default 5038)")
    sim.set_defaults(func=_simpbx)
    cli_users.register(sub)
    codes = sub.add_parser("codes", help="the list of outcomes operators record (dispositions)")
    csub = codes.add_subparsers(title="codes commands")
    ls = csub.add_parser("list", help="list the active codes (of a department: its own and the shared ones)")
    ls.add_argument("--department")
    ls.set_defaults(func=_codes_list)
    cadd = csub.add_parser("add", help="add or change a code (for one department, or shared by all)")
    cadd.add_argument("--code", required=True, help="e.g. visit_requested")
    cadd.add_argument("--ja", required=True, help="the label operators see, in Japanese")
    cadd.add_argument("--en", required=True, help="the label in English")
    cadd.add_argument("--department", help="only for this department (default: shared)")
    cadd.add_argument("--not-reached", action="store_true", help="the person owing was not reached")
    cadd.add_argument("--promise", action="store_true", help="asks for a payment date and amount")
    cadd.add_argument("--callback", action="store_true", help="asks for a call-back time")
    cadd.add_argument(
        "--to-staff", action="store_true", help="hands the case to municipal staff (their list of cases)"
    )
    cadd.add_argument(
        "--replace",
        action="store_true",
        help="change a code that exists already (its flags are all set anew)",
    )
    cadd.add_argument("--keep-calling", action="store_true", help="the household stays in the campaign")
    cadd.add_argument("--sort", type=int, default=100, help="position in the list (lower first)")
    cadd.set_defaults(func=_codes_add)
    cdis = csub.add_parser("disable", help="stop offering a code (for one department, or everywhere)")
    cdis.add_argument("--code", required=True)
    cdis.add_argument("--department")
    cdis.set_defaults(func=_codes_disable)
    cli_departments.register(sub)
    cli_data.register(sub)
    cli_campaign.register(sub)
    cli_retention.register(sub)
    cli_reports.register(sub)
    cli_letters.register(sub)
    cli_audit.register(sub)
    for command in sub.choices.values():
        command.set_defaults(help_of=command)
    return p


async def _until_signal(body: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await body(stop)
    return 0


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from dialer import runtime

    return await _until_signal(lambda stop: runtime.serve_until(stop, settings))


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from dialer import demo, runtime
    from dialer.errors import ConfigError
    from dialer.simpbx import CalleeModel, SimConfig, SimulatedPbx

    if settings.ami is not None:
        raise ConfigError(
            "`dialer demo` always uses the simulated PBX; unset AMI_HOST (use `dialer run` for Asterisk)"
        )
    sim_port = config.env_int(os.environ, "SIM_AMI_PORT", 5038, lo=0)
    model = CalleeModel(
        answer_p=0.55, machine_p=0.08, busy_p=0.12, congestion_p=0.03, ring_s=(2.0, 8.0), talk_s=(90.0, 300.0)
    )
    for port in (sim_port, 0):  # the configured port, else any free one (printed below)
        pbx = SimulatedPbx(SimConfig(host="127.0.0.1", port=port, callees=model))
        try:
            await pbx.start()
            break
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or port == 0:
                raise
    ami = pbx.ami_settings()

    async def seed(pool: Any) -> None:
        await demo.seed(pool, households=args.households)

    async def body(stop: asyncio.Event) -> None:
        try:
            demo_settings = replace(settings.with_ami(ami), simulated_callees=True)
            if "AGI_PORT" not in os.environ and not _free(settings.agi_host, settings.agi_port):
                # another dialer here has it (the simulated PBX is told where this one listens)
                demo_settings = replace(demo_settings, agi_port=0)
            async with runtime.started(demo_settings, before_link=seed) as running:
                print(demo.logins_banner(running.url, f"127.0.0.1:{pbx.port}"), flush=True)
                pbx.core.globals["DIALER_AGI"] = f"127.0.0.1:{running.agi_port}"
                every = config.env_int(os.environ, "DEMO_CALL_IN_EVERY_S", 150, lo=0, hi=86_400)  # 0: none
                callers = asyncio.create_task(
                    demo.residents_call_in(running.pool, pbx.call_in, (every * 0.5, every * 1.5))
                    if every
                    else stop.wait()
                )
                try:
                    await stop.wait()
                finally:
                    callers.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await callers
        finally:
            await pbx.stop()

    return await _until_signal(body)


async def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from dialer import runtime

    async with runtime.database(settings) as dsn:
        applied = await runtime.migrate_database(dsn)
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


async def _simpbx(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.simpbx import SimConfig, SimulatedPbx

    port = config.env_int(os.environ, "SIM_AMI_PORT", 5038, lo=0)
    pbx = SimulatedPbx(SimConfig(host=os.environ.get("SIM_AMI_HOST", "127.0.0.1"), port=port))
    try:
        await pbx.start()
    except OSError as exc:
        raise PortInUse(f"Cannot listen on AMI port {port}: {exc.strerror}. Set SIM_AMI_PORT.") from None

    async def body(stop: asyncio.Event) -> None:
        print(f"simulated PBX: AMI on 127.0.0.1:{pbx.port} (user dialer / dialer-secret)", flush=True)
        try:
            await stop.wait()
        finally:
            await pbx.stop()

    return await _until_signal(body)


async def with_pool(settings: Settings, body: Callable[[Any], Awaitable[None]]) -> None:
    from dialer import runtime
    from dialer.store import db

    async with runtime.database(settings, create=False) as dsn:
        await runtime.migrate_database(dsn)
        if settings.database_url is None:  # the embedded server: as the product runs (runtime.started)
            dsn = await db.embedded_login(dsn)
        pool = await db.create_pool(dsn, scope=db.ALL, max_size=2, name="dialer-cli")
        try:
            await body(pool)
        finally:
            await pool.close()


async def _codes_list(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.store import departments, dispositions

    async def body(pool: Any) -> None:
        await departments.require(pool, args.department)
        for c in (await dispositions.codes(pool, args.department)).values():
            flags = [
                f
                for f, on in (
                    ("promise", c.needs_promise),
                    ("callback", c.needs_callback),
                    ("not-reached", not c.reached),
                    ("keep-calling", not c.closes_target),
                    ("to-staff", c.to_staff),
                )
                if on
            ]
            print(f"{c.code:<20} {c.label_ja:<14} {c.label_en:<30} {' '.join(flags)}")

    await with_pool(settings, body)
    return 0


async def _codes_add(settings: Settings, args: argparse.Namespace) -> int:
    from campaigns.dispositions import Code
    from dialer.store import dispositions

    code = Code(
        code=args.code,
        label_ja=args.ja,
        label_en=args.en,
        reached=not args.not_reached,
        needs_promise=args.promise,
        needs_callback=args.callback,
        closes_target=not args.keep_calling,
        to_staff=args.to_staff,
    )

    async def body(pool: Any) -> None:
        from dialer.errors import ConfigError
        from dialer.store import audit
        from dialer.who import os_user

        before = await dispositions.code_row(pool, args.department, args.code)
        if before is not None and not args.replace:
            raise ConfigError(
                f"code {args.code} exists already ({'shared' if args.department is None else args.department}): "
                "give --replace to change it (every flag is set as given: one left out is turned off)"
            )
        await dispositions.add_code(pool, args.department, code, args.sort)
        await audit.record(
            pool, action="codes.add", user_id=None, department_id=args.department, object_type="disposition_code",
            object_id=args.code, detail={"before": before, "after": dispositions.code_fields(code, args.sort),
                                         "os_user": os_user()},
        )  # fmt: skip

    await with_pool(settings, body)
    print(f"code {args.code} saved" + (f" for {args.department}" if args.department else " (shared)"))
    return 0


async def _codes_disable(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.store import dispositions

    async def body(pool: Any) -> None:
        await dispositions.disable_code(pool, args.department, args.code)

    await with_pool(settings, body)
    print(f"code {args.code} disabled" + (f" for {args.department}" if args.department else ""))
    return 0


def _free(host: str, port: int) -> bool:
    """Whether this machine can listen on host:port now (a demo's FastAGI port)."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
