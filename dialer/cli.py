"""The `dialer` command. Errors a user can act on print one line and exit non-zero."""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from dialer import config, logs
from dialer.config import AmiSettings, Settings
from dialer.errors import DialerError, PortInUse


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
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
    users = sub.add_parser("users", help="manage users")
    usub = users.add_subparsers(title="users commands")
    add = usub.add_parser("add", help="add a user (the password is read from stdin or asked)")
    add.add_argument("--login", required=True)
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--role", required=True, choices=["operator", "supervisor", "staff", "admin"])
    add.add_argument("--department", help="department id (not for admin)")
    add.add_argument("--extension", help="the operator's phone extension")
    add.set_defaults(func=_users_add)
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
    pbx = SimulatedPbx(
        SimConfig(host="127.0.0.1", port=sim_port, users={"dialer": "dialer-secret"}, callees=model)
    )
    try:
        await pbx.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        pbx = SimulatedPbx(
            SimConfig(host="127.0.0.1", port=0, users={"dialer": "dialer-secret"}, callees=model)
        )
        await pbx.start()
    ami = AmiSettings(host="127.0.0.1", port=pbx.port, username="dialer", secret="dialer-secret")

    async def seed(pool: Any) -> None:
        await demo.seed(pool, households=args.households)

    async def body(stop: asyncio.Event) -> None:
        try:
            async with runtime.started(settings.with_ami(ami), before_link=seed) as running:
                print(demo.logins_banner(running.url, f"127.0.0.1:{pbx.port}"), flush=True)
                await stop.wait()
        finally:
            await pbx.stop()

    return await _until_signal(body)


async def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from dialer import runtime
    from dialer.store import db, migrate

    async with runtime.database(settings) as dsn:
        pool = await db.create_pool(dsn, max_size=1)
        try:
            async with pool.acquire() as conn:
                applied = await migrate.migrate(conn)
        finally:
            await pool.close()
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


async def _users_add(settings: Settings, args: argparse.Namespace) -> int:
    from dialer import runtime
    from dialer.store import db, users

    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("password: ")
    async with runtime.database(settings) as dsn:
        pool = await db.create_pool(dsn, max_size=1)
        try:
            user = await users.create_user(
                pool,
                login=args.login,
                password=password,
                display_name=args.name,
                role=args.role,
                department_id=args.department,
                extension=args.extension,
            )
        finally:
            await pool.close()
    print(f"created user {user.login} ({user.role})")
    return 0
