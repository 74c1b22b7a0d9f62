"""The `dialer` command as a user runs it: clear one-line errors, clean Ctrl-C, a working demo."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from dialer.imports.sample import write_households
from dialer.simpbx import SimulatedPbx

ROOT = Path(__file__).resolve().parents[1]
DIALER = [sys.executable, "-m", "dialer"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMI_", "DATABASE_URL", "HTTP_", "SIM_"))}
    env.update(
        {"DIALER_VAR_DIR": str(tmp_path / "var"), "LOG_FORMAT": "json", "HTTP_PORT": "0", "AGI_PORT": "0"}
    )
    env.update(extra)
    return env


async def _run(
    env: dict[str, str], *args: str, stdin: bytes = b"", within: float = 60
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *DIALER,
        *args,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), within)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _ami(sim: SimulatedPbx, secret: str = "dialer-secret") -> dict[str, str]:
    return {"AMI_HOST": "127.0.0.1", "AMI_PORT": str(sim.port), "AMI_USER": "dialer", "AMI_SECRET": secret}


def _one_clear_line(stderr: str, pattern: str) -> None:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("dialer: error:")]
    assert len(errors) == 1, stderr
    assert re.search(pattern, errors[0]), errors[0]


async def test_wrong_ami_password(tmp_path: Path, db_dsn: str, sim: SimulatedPbx) -> None:
    code, _, err = await _run(_env(tmp_path, DATABASE_URL=db_dsn, **_ami(sim, "nope")), "run")
    assert code == 4
    _one_clear_line(err, r"refused AMI login for user 'dialer' .*AMI_USER/AMI_SECRET")


async def test_unreachable_database(tmp_path: Path, sim: SimulatedPbx) -> None:
    dsn = f"postgresql://dialer:secret-pw@127.0.0.1:{_free_port()}/dialer"
    code, _, err = await _run(_env(tmp_path, DATABASE_URL=dsn, **_ami(sim)), "run")
    assert code == 3
    _one_clear_line(err, r"Cannot connect to PostgreSQL at postgresql://dialer:\*\*\*@127\.0\.0\.1")
    assert "secret-pw" not in err


async def test_http_port_in_use(tmp_path: Path, db_dsn: str, sim: SimulatedPbx) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = await _run(
            _env(tmp_path, DATABASE_URL=db_dsn, HTTP_PORT=str(port), **_ami(sim)), "run"
        )
    assert code == 5
    _one_clear_line(err, rf"Port {port} on 127.0.0.1 \(HTTP\) is already in use")


@pytest.mark.parametrize(("variable", "host"), [("HTTP_HOST", "192.0.2.55"), ("AGI_HOST", "192.0.2.55"),
                                               ("HTTP_HOST", "no such host")])  # fmt: skip
async def test_an_address_this_machine_does_not_have_is_one_clear_line(
    tmp_path: Path, db_dsn: str, sim: SimulatedPbx, variable: str, host: str
) -> None:
    code, _, err = await _run(_env(tmp_path, DATABASE_URL=db_dsn, **{variable: host}, **_ami(sim)), "run")
    assert code == 5
    _one_clear_line(err, rf"Cannot listen on {host}:\d+ .*Set {variable} to an address of this machine")


async def test_run_without_asterisk_says_what_to_set(tmp_path: Path, db_dsn: str) -> None:
    code, _, err = await _run(_env(tmp_path, DATABASE_URL=db_dsn), "run")
    assert code == 2
    _one_clear_line(err, r"set AMI_HOST .*or run `dialer demo`")


async def test_an_administrators_command_where_there_is_no_database_creates_none(tmp_path: Path) -> None:
    """Run from the wrong directory, `./var` holds no database: said so (exit 3), not a new empty
    one in which every department and user seems to be missing."""
    code, _, err = await _run(_env(tmp_path), "users", "list")
    assert code == 3
    _one_clear_line(err, r"No database in .*var \(DIALER_VAR_DIR.*`dialer migrate` creates a new one")
    assert not (tmp_path / "var" / "pgdata").exists()
    sample = tmp_path / "sample.csv"
    write_households(sample, 2, encoding="cp932")
    report = tmp_path / "errors.csv"
    code, _, err = await _run(
        _env(tmp_path), "import", "--department", "nhi", "--report", str(report), str(sample)
    )
    assert code == 3, err
    assert not report.exists()  # no import, no (empty) error report


async def test_migrate_and_add_user(tmp_path: Path, db_dsn: str) -> None:
    code, out, err = await _run(_env(tmp_path, DATABASE_URL=db_dsn), "migrate")
    assert (code, out.strip()) == (0, "applied: nothing (up to date)"), err
    env = _env(tmp_path, DATABASE_URL=db_dsn)
    code, out, err = await _run(
        env,
        "users",
        "add",
        "--login",
        "admin2",
        "--name",
        "管理者二",
        "--role",
        "admin",
        stdin=b"a-long-password\n",
    )
    assert (code, out.strip()) == (0, "created user admin2 (admin)"), err
    code, _, err = await _run(
        env, "users", "add", "--login", "admin2", "--name", "x", "--role", "admin", stdin=b"a-long-password\n"
    )
    assert code == 2
    _one_clear_line(err, "already exists")


@pytest.fixture
async def demo(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, Path]]:
    var = tmp_path / "var"
    env = _env(tmp_path, SIM_AMI_PORT="0")
    if getattr(request, "param", None) == "agi_port_taken":
        del env["AGI_PORT"]  # the default 4573, which another dialer on this machine holds
    proc = await asyncio.create_subprocess_exec(
        *DIALER,
        "demo",
        "--households",
        "30",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    url = ""
    banner = []
    async with asyncio.timeout(60):
        while not url:
            line = (await proc.stdout.readline()).decode()
            assert line, "dialer demo exited early: " + (await proc.stderr.read()).decode()  # type: ignore[union-attr]
            banner.append(line)
            if m := re.search(r"Open (http://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
        while "Ctrl-C" not in banner[-1]:
            banner.append((await proc.stdout.readline()).decode())
    assert any(re.match(r"\s+op1\s+demo-op1-pass\s+operator", line) for line in banner)
    assert any(re.match(r"\s+admin\s+\S+\s+admin", line) for line in banner)
    assert any(re.match(r"\s+sv1\s+\S+\s+supervisor", line) for line in banner)
    try:
        yield proc, url, var
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


@pytest.fixture
def agi_port_taken() -> Iterator[None]:
    """The default FastAGI port held, as by another dialer (or demo) on this machine."""
    holder = socket.socket()
    with contextlib.suppress(OSError):  # held already by someone else: as good
        holder.bind(("127.0.0.1", 4573))
        holder.listen()
    try:
        yield
    finally:
        holder.close()


@pytest.mark.parametrize("demo", ["agi_port_taken"], indirect=True)
async def test_a_second_demo_on_the_machine_takes_another_agi_port(
    agi_port_taken: None, demo: tuple[asyncio.subprocess.Process, str, Path]
) -> None:
    """`make demo` beside a running dialer: the simulated AMI moved to a free port, but the FastAGI
    port did not, and the demo exited 5 (admin QA). Now it takes a free one too."""
    proc, url, _ = demo
    async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as r:
        assert r.status == 200
    assert proc.returncode is None


async def test_demo_serves_and_ctrl_c_stops_everything(
    demo: tuple[asyncio.subprocess.Process, str, Path],
) -> None:
    proc, url, var = demo
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/healthz") as r:
            assert r.status == 200
            assert (await r.json())["ami"] == {"pbx1": "up"}
        for login in ("op1", "staff1"):  # staff1: the exports and the cases can be tried in the demo too
            async with aiohttp.ClientSession(
                cookie_jar=aiohttp.CookieJar(unsafe=True)
            ) as one:  # (an IP host)
                async with one.post(
                    f"{url}/login",
                    data={"login": login, "password": f"demo-{login}-pass"},
                    allow_redirects=False,
                ) as r:
                    assert r.status == 302, login
                if login == "staff1":  # a few cases wait for them in the sample data
                    async with one.get(f"{url}/staff/handovers") as r:
                        assert 'data-testid="open-' in await r.text()
    assert (var / "pgdata" / "postmaster.pid").exists()
    # the product's connections log in as a member of dialer_app only, never the server's superuser
    # (from which SQL run through the product could RESET ROLE and leave row-level security)
    owner = await asyncpg.connect(f"postgresql://postgres@/dialer?host={(var / 'pgdata').resolve()}")
    try:
        logins = await owner.fetch(
            "select distinct usename from pg_stat_activity where application_name like 'dialer-%'"
        )
    finally:
        await owner.close()
    assert [r["usename"] for r in logins] == ["dialer_login"]
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    async with asyncio.timeout(30):
        code = await proc.wait()
    assert code == 0
    assert not (var / "pgdata" / "postmaster.pid").exists()  # the embedded PostgreSQL stopped too


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_disposition_codes_can_be_configured(tmp_path: Path, db_dsn: str) -> None:
    env = _env(tmp_path, DATABASE_URL=db_dsn)
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute("insert into department (id, name_ja, name_en) values ('nhi', '国保', 'NHI')")
    finally:
        await conn.close()
    code, out, err = await _run(
        env,
        "codes",
        "add",
        "--department",
        "nhi",
        "--code",
        "visit_requested",
        "--ja",
        "訪問希望",
        "--en",
        "Wants a home visit",
        "--keep-calling",
        "--sort",
        "65",
    )
    assert (code, out.strip()) == (0, "code visit_requested saved for nhi"), err
    code, out, err = await _run(env, "codes", "disable", "--department", "nhi", "--code", "reissue_slip")
    assert code == 0, err
    _, listing, _ = await _run(env, "codes", "list", "--department", "nhi")
    lines = listing.splitlines()
    assert any(
        line.startswith("visit_requested") and "訪問希望" in line and "keep-calling" in line for line in lines
    )
    assert not any(line.startswith("reissue_slip") for line in lines)
    _, shared, _ = await _run(env, "codes", "list")  # the shared list is unchanged for other departments
    assert any(line.startswith("reissue_slip") for line in shared.splitlines())
    assert not any(line.startswith("visit_requested") for line in shared.splitlines())
    code, _, err = await _run(env, "codes", "add", "--code", "Bad Code", "--ja", "x", "--en", "x")
    assert code == 2
    _one_clear_line(err, "a code is 2-41 lower-case letters")
    # an existing code is not overwritten by accident (QA: the shared 納付約束 lost its date and amount)
    code, _, err = await _run(env, "codes", "add", "--code", "promise", "--ja", "約束", "--en", "x")
    assert code == 2
    _one_clear_line(err, r"code promise exists already \(shared\): give --replace")
    _, shared, _ = await _run(env, "codes", "list")
    assert any(
        line.startswith("promise") and "納付約束" in line and "promise" in line.split()[-1]
        for line in shared.splitlines()
    )
    code, _, err = await _run(
        env, "codes", "add", "--department", "nhi", "--code", "visit_requested", "--ja", "訪問希望(要)",
        "--en", "Wants a home visit", "--keep-calling", "--to-staff", "--replace",
    )  # fmt: skip
    assert code == 0, err
    conn = await asyncpg.connect(db_dsn)
    try:
        entry = await conn.fetchval(
            "select detail from audit_log where action = 'codes.add' and object_id = 'visit_requested' order by id desc"
        )
    finally:
        await conn.close()
    change = json.loads(entry)
    assert (change["before"]["label_ja"], change["after"]["label_ja"], change["after"]["to_staff"]) == (
        "訪問希望",
        "訪問希望(要)",
        True,
    )


async def test_a_command_group_without_its_command_shows_its_own_help(tmp_path: Path) -> None:
    code, out, _ = await _run(_env(tmp_path), "users")
    assert code == 2
    assert out.startswith("usage: dialer users ")  # its commands (list, add, set…), not every command
