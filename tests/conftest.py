"""Shared fixtures: a real PostgreSQL (the embedded one, or DIALER_TEST_DATABASE_URL's server),
a migrated template database cloned for every test, and the simulated PBX on a real TCP port."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from dialer import config, logs
from dialer.config import Settings
from dialer.store import migrate
from dialer.store.embedded import EmbeddedPostgres
from tests import factory

# Fixtures shared by the modules of one subject: the FastAGI tests' fake Asterisk (`agi`, `lines`),
# the plans tests' residents who owe (`owing`).
pytest_plugins = ["tests.fake_agi", "tests.plan_files"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TEMPLATE = "dialer_test_template"

logs.configure("warning", "console")


@pytest.fixture(scope="session")
def chromium() -> Path:
    from tests.browser import CHROMIUM

    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run `make test`, which installs it (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[object]:
    """Headless Chromium through Playwright (a new browser per test)."""
    from playwright.async_api import async_playwright

    from tests.browser import FLAGS

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(chromium), args=FLAGS)
        yield b
        await b.close()


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """A DSN to a maintenance database on the test server (created and stopped here if embedded)."""
    external = os.environ.get("DIALER_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(ROOT / "var" / "test-pgdata")
    server.start()
    try:
        yield server.dsn("postgres")
    finally:
        server.stop()


def _swap_db(dsn: str, name: str) -> str:
    head, _, tail = dsn.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{tail}" if tail else "")


@pytest.fixture(scope="session")
def template_dsn(pg_admin_dsn: str) -> str:
    async def build() -> None:
        admin = await asyncpg.connect(pg_admin_dsn)
        try:
            await admin.execute(f"drop database if exists {TEMPLATE} with (force)")
            await admin.execute(f"create database {TEMPLATE}")
        finally:
            await admin.close()
        conn = await asyncpg.connect(_swap_db(pg_admin_dsn, TEMPLATE))
        try:
            await migrate.migrate(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    return _swap_db(pg_admin_dsn, TEMPLATE)


@pytest.fixture
async def db_dsn(pg_admin_dsn: str, template_dsn: str) -> AsyncIterator[str]:
    """A fresh database for one test, cloned from the migrated template."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f"create database {name} template {TEMPLATE}")
    finally:
        await admin.close()
    yield _swap_db(pg_admin_dsn, name)
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f"drop database if exists {name} with (force)")
    finally:
        await admin.close()


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_dsn, min_size=1, max_size=5, server_settings={"timezone": "Asia/Tokyo"})
    assert p is not None
    yield p
    await p.close()


@pytest.fixture
async def app_pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """The product's own pool: role dialer_app under row-level security, scope every department.

    `pool` is the database owner (a superuser: no RLS, every privilege) for setting up; code under
    test that the product runs as dialer_app (imports, payments) is given this one.
    """
    from dialer.store import db

    p = await db.create_pool(db_dsn, scope=db.ALL, max_size=5, name="test")
    yield p
    await p.close()


@pytest.fixture
async def sim() -> AsyncIterator[object]:
    from dialer.simpbx import CalleeModel, SimConfig, SimulatedPbx

    # A number a test did not script rings until the Originate times out: never a random answer,
    # busy or congestion (3 % of unscripted calls used to end at once, and a test waiting for
    # "ringing" failed now and then). A test that needs an outcome scripts it.
    nobody_answers = CalleeModel(answer_p=0.0, machine_p=0.0, busy_p=0.0, congestion_p=0.0)
    pbx = SimulatedPbx(
        SimConfig(
            host="127.0.0.1",
            port=0,
            users={"dialer": "dialer-secret"},
            operator_answer_s=0.1,
            callees=nobody_answers,
        )
    )
    await pbx.start()
    yield pbx
    await pbx.stop()


@pytest.fixture
def settings(db_dsn: str, sim: object, tmp_path: Path) -> Settings:
    """Settings for a whole product run against this test's database and simulated PBX."""
    base = config.load({"DIALER_VAR_DIR": str(tmp_path)})
    ami = sim.ami_settings(ping_interval_s=1.0, ping_timeout_s=1.0, reconnect_min_s=0.1)  # type: ignore[attr-defined]
    # preview_look_s 0: a test's operator may skip a record at once (tests/test_operator_flow.py sets the wait)
    return replace(
        base, database_url=db_dsn, ami=ami, http_port=0, agi_port=0, simulated_callees=True, preview_look_s=0
    )


@pytest.fixture
async def product(settings: Settings) -> AsyncIterator[object]:
    """The whole product (engine, web, AMI link) on an ephemeral port; ring timeout 2 s."""
    from dialer import runtime

    fast = replace(settings, dialplan=replace(settings.dialplan, ring_timeout_s=2))
    async with runtime.started(fast) as running:
        yield running


@pytest.fixture
async def operator(product: object) -> AsyncIterator[object]:
    """An operator's page (HTTP + WebSocket) on the running product."""
    from tests.client import PageClient

    client = PageClient(product.url)  # type: ignore[attr-defined]
    yield client
    await client.close()


@pytest.fixture
async def nhi(pool: asyncpg.Pool, app_pool: asyncpg.Pool) -> asyncpg.Pool:
    """Departments nhi and tax; imports run as the product runs them (dialer_app, under RLS)."""
    await factory.department(pool, "nhi")
    await factory.department(pool, "tax")
    return app_pool


@pytest.fixture
async def staffed(pool: asyncpg.Pool, product: object) -> object:
    """The product with departments nhi and tax, an administrator, a member of staff (nhi) and an
    operator: the data pages' users."""
    for dept in ("nhi", "tax"):
        await factory.department(pool, dept)
    await factory.user(pool, "admin1", "admin", None)
    await factory.user(pool, "staff1", "staff", "nhi")
    await factory.user(pool, "op1", "operator", "nhi", "1001")
    return product
