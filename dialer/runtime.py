"""The composition root: builds every part once, starts them in order, stops them in reverse.

Start order fails fast with one clear message: database, migrations, HTTP port, AMI login.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from agi.protocol import Address, FastAgiServer, peers_for, resolve
from agi.routes import Routes
from campaigns.engine import Engine
from campaigns.fleet import Fleet
from dialer import logs
from dialer.ami.link import AmiLink, LinkEvent, LinkStatus
from dialer.config import AmiSettings, Settings
from dialer.errors import ConfigError, DatabaseUnavailable, PortInUse
from dialer.metrics import Metrics
from dialer.purging import DailyPurge
from dialer.store import db, migrate, passwords
from dialer.store import purge as purge_store
from dialer.store.embedded import EmbeddedPostgres
from web import app as web_app
from web.push import Hub

log = logs.get("dialer.runtime")


@dataclass
class Running:
    settings: Settings
    pool: asyncpg.Pool
    link: AmiLink  # the first (or only) Asterisk server's
    engine: Engine  # the first server's
    hub: Hub
    metrics: Metrics
    url: str
    agi_port: int = 0  # where the FastAGI service listens (AGI_PORT, or the one chosen for 0)
    fleet: Fleet | None = None  # every server's engine (AMI_SERVERS)


@contextlib.asynccontextmanager
async def database(settings: Settings, *, create: bool = True) -> AsyncIterator[str]:
    """Yield a DSN: DATABASE_URL, or the embedded server (started here, stopped on exit).

    `create=False` (the administrators' commands): an embedded database that does not exist yet is
    an error, not a new empty one; run from elsewhere, `./var` would silently be a fresh database
    where every department and user seems to be missing."""
    if settings.database_url:
        yield settings.database_url
        return
    if not create and not (settings.pgdata / "PG_VERSION").exists():
        raise DatabaseUnavailable(
            f"No database in {settings.var_dir} (DIALER_VAR_DIR, default ./var of the directory the "
            "command is run from). Run it where the dialer runs, or set DIALER_VAR_DIR or DATABASE_URL; "
            "`dialer migrate` creates a new one."
        )
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedPostgres(settings.pgdata)
    dsn = await asyncio.to_thread(embedded.start)
    # a command run beside a running `dialer demo` uses its server and leaves it running: said so,
    # rather than "started" and "stopped" (QA: it looked as if the demo's database had been stopped)
    joined = embedded.joined
    log.info("db.embedded_joined" if joined else "db.embedded_started", pgdata=str(settings.pgdata))
    try:
        yield dsn
    finally:
        await asyncio.to_thread(embedded.stop)
        if not joined:
            log.info("db.embedded_stopped")


def _cannot_listen(exc: OSError, host: str, port: int, what: str) -> PortInUse:
    """Why the HTTP or FastAGI service cannot listen, in one line (exit 5): the port taken, or an
    address this machine does not have or cannot resolve (`HTTP_HOST`, `AGI_HOST`)."""
    service = "FastAGI" if what == "AGI" else "HTTP"
    if exc.errno == errno.EADDRINUSE:
        return PortInUse(
            f"Port {port} on {host} ({service}) is already in use. "
            f"Stop the other program or set {what}_PORT to a free port."
        )
    return PortInUse(
        f"Cannot listen on {host}:{port} ({service}): {exc.strerror or exc}. "
        f"Set {what}_HOST to an address of this machine (0.0.0.0: all of them)."
    )


@contextlib.asynccontextmanager
async def started(
    settings: Settings, *, before_link: Callable[[asyncpg.Pool], Awaitable[None]] | None = None
) -> AsyncIterator[Running]:
    if settings.ami is None:
        raise ConfigError(
            "No Asterisk configured: set AMI_HOST (and AMI_PORT, AMI_USER, AMI_SECRET), "
            "or run `dialer demo` for the built-in simulated PBX."
        )
    async with contextlib.AsyncExitStack() as stack:
        dsn = await stack.enter_async_context(database(settings))
        applied = await migrate_database(dsn)
        if applied:
            log.info("db.migrated", versions=applied)
        if settings.database_url is None:  # the embedded server: log in as a member of dialer_app only
            dsn = await db.embedded_login(dsn)
        pool = await db.create_pool(dsn, scope=db.ALL, name="dialer-engine")
        stack.push_async_callback(pool.close)
        if await db.login_is_privileged(pool):
            log.warning(
                "db.login_privileged",
                hint="DATABASE_URL logs in as a superuser, a BYPASSRLS role or the tables' owner: SQL run through the product "
                "could leave dialer_app (RESET ROLE) and read every department. Log in as a role that is only "
                "a member of dialer_app; run `dialer migrate` as the owner (docs/data.md §6).",
            )
        web_pool = await db.create_pool(dsn, scope=db.NONE, name="dialer-web")
        stack.push_async_callback(web_pool.close)
        if before_link is not None:
            await before_link(pool)
        peers = await peers_for([ami.host for ami in settings.servers], settings.agi_allow)
        await _warn_if_asterisk_cannot_reach_agi(settings)
        metrics = Metrics()
        agi = FastAgiServer(
            Routes(pool, metrics=metrics).table(), settings.agi_host, settings.agi_port, peers=peers
        )
        try:
            await agi.start()
        except OSError as exc:
            raise _cannot_listen(exc, settings.agi_host, settings.agi_port, "AGI") from None
        stack.push_async_callback(agi.close)
        await asyncio.to_thread(
            passwords.dummy_hash
        )  # (made now: the first unknown name's login costs as any)
        if left := await asyncio.to_thread(purge_store.remove_uploads_of_dead, settings.var_dir / "uploads"):
            log.info("uploads.left_by_dead_process_removed", files=left)  # (killed with their imports)
        hub = Hub()
        fleet = Fleet([_engine(pool, ami, settings, hub, metrics) for ami in settings.servers])
        app = web_app.build(pool=web_pool, engine=fleet, hub=hub, metrics=metrics, settings=settings)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        try:
            await site.start()
        except OSError as exc:
            raise _cannot_listen(exc, settings.http_host, settings.http_port, "HTTP") from None
        stack.push_async_callback(hub.close_all)
        port = _bound_port(site)
        several = len(fleet.engines) > 1
        for engine in fleet.engines:  # one of several that cannot be reached now is retried by its link
            await engine.link.start(unreachable_ok=several)
            stack.push_async_callback(engine.link.close)
            await engine.start()
            stack.push_async_callback(engine.stop)
        if settings.purge_at is not None:
            purge = DailyPurge(pool, settings.var_dir / "uploads", settings.purge_at, metrics)
            await purge.start()
            stack.push_async_callback(purge.stop)
        url = f"http://{settings.http_host}:{port}"
        log.info("dialer.started", url=url, ami=[f"{a.name}={a.host}:{a.port}" for a in settings.servers])
        yield Running(settings, pool, fleet.first.link, fleet.first, hub, metrics, url, agi.port, fleet)
        log.info("dialer.stopping")


async def migrate_database(dsn: str) -> list[str]:
    """Apply pending migrations as the login user (the owner), before any pool acts as dialer_app."""
    conn = await db.connect_owner(dsn)
    try:
        return await migrate.migrate(conn)
    finally:
        await conn.close()


async def _warn_if_asterisk_cannot_reach_agi(settings: Settings) -> None:
    """FastAGI on a loopback address (AGI_HOST's default) answers only an Asterisk on this machine.
    One elsewhere cannot connect: every resident calling in goes to the desk, and the messages'
    results never arrive, so a missing abandon message is never counted nor alerted on."""
    agi = await resolve(settings.agi_host)
    if not agi or not all(a.is_loopback for a in agi):
        return
    for ami in settings.servers:
        addresses = await resolve(ami.host)  # (one that cannot be resolved: peers_for said so)
        if addresses and not any(_of_this_machine(a) for a in addresses):
            log.warning(
                "agi.unreachable_from_asterisk",
                link=ami.name,
                ami_host=ami.host,
                agi_host=settings.agi_host,
                hint="Asterisk on another machine cannot reach the FastAGI service: callers calling in all "
                "go to the desk, and messages Asterisk could not play are never counted "
                "(dialer_messages_failed_total, DialerMessageFailed). Set AGI_HOST to an address of this "
                "machine Asterisk reaches (0.0.0.0: all) and DIALER_AGI in extensions.conf to it "
                "(docs/asterisk.md).",
            )


def _of_this_machine(address: Address) -> bool:
    """A loopback address, or one of this machine's own (a socket can be bound to it)."""
    if address.is_loopback:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True


def _engine(pool: asyncpg.Pool, ami: AmiSettings, settings: Settings, hub: Hub, metrics: Metrics) -> Engine:
    """One Asterisk server's link and engine, wired: AMI events -> call tracker -> engine."""
    link = AmiLink(ami, name=ami.name)
    engine = Engine(pool, link, settings, hub, metrics)
    link.subscribe(_count_events(metrics, link.name))
    link.subscribe(engine.tracker.on_event)
    link.subscribe(engine.on_link)
    link.subscribe(engine.inbound.on_event)
    return engine


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the asyncio server here; needed when HTTP_PORT=0
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else site._port


def _count_events(metrics: Metrics, name: str) -> Callable[[LinkEvent], None]:
    def handle(event: LinkEvent) -> None:
        if isinstance(event, LinkStatus):
            metrics.ami_up.labels(name).set(1 if event.up else 0)
            if not event.up:
                metrics.ami_down.labels(name).inc()
        else:
            metrics.ami_events.labels(name).inc()

    metrics.ami_up.labels(name).set(0)
    metrics.ami_down.labels(name)  # at 0 from the start: increase() sees the first drop
    return handle


async def serve_until(stop: asyncio.Event, settings: Settings, **kwargs: object) -> None:
    async with started(settings, **kwargs) as running:  # type: ignore[arg-type]
        print(f"dialer: serving on {running.url}", flush=True)
        await stop.wait()
