"""Fixtures for the real-Asterisk tests: one Asterisk run with our config for the whole package."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from dialer import config, runtime
from dialer.config import AmiSettings, DialPlan
from tests.real_asterisk.kit import LOG, SECRET, Real, cli, overlay, run_kit


@pytest.fixture(scope="package")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Real]:
    conf_dir = overlay(tmp_path_factory.mktemp("asterisk-overlay"))
    run_kit("stop.sh")
    log_from = LOG.stat().st_size if LOG.exists() else 0
    run_kit("start.sh", ASTERISK_CONF_DIR=str(conf_dir), ASTERISK_CONF_MODE="replace")
    try:
        yield Real(AmiSettings(host="127.0.0.1", port=5038, username="dialer", secret=SECRET), log_from)
    finally:
        run_kit("stop.sh")
        run_kit("start.sh")  # the kit's own set again


@pytest.fixture
async def product(real: Real, db_dsn: str, tmp_path: Path) -> AsyncIterator[runtime.Running]:
    async with runtime.started(product_settings(real, db_dsn, tmp_path)) as running:
        yield running
    # The product leaves calls and operator sessions up when it stops (a restarted dialer takes
    # them over); the next test's database numbers its attempts from 1 again, and Asterisk refuses
    # a channel id still in use ("dlr-a1"), so nothing of this test may outlive it.
    cli("channel request hangup all")


def product_settings(real: Real, db_dsn: str, var_dir: Path) -> config.Settings:
    """The product against the real Asterisk: residents are the test dialplan's sim-trunk."""
    plan = replace(
        DialPlan(),
        trunk_template="Local/{number}@sim-trunk",
        operator_template="Local/{extension}@dialer-phone",
        ring_timeout_s=15,
    )
    return replace(
        config.load({"DIALER_VAR_DIR": str(var_dir)}),
        database_url=db_dsn,
        ami=real.ami,
        http_port=0,
        dialplan=plan,
        simulated_callees=True,  # sim-trunk in the test dialplan: nobody real is called
    )
