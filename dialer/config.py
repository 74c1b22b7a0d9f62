"""One typed configuration object, read from the environment (no globals).

Every setting has a default that works for `make demo`; production points the product at a
real PostgreSQL (DATABASE_URL) and a real Asterisk (AMI_HOST, AMI_PORT, AMI_USER, AMI_SECRET),
or several (AMI_SERVERS).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from urllib.parse import urlsplit

from dialer.errors import ConfigError
from dialer.retention import parse_purge_at


@dataclass(frozen=True)
class AmiSettings:
    host: str
    port: int = 5038
    username: str = "dialer"
    secret: str = field(default="", repr=False)
    connect_timeout_s: float = 5.0
    action_timeout_s: float = 5.0
    # Our own liveness check: panoramisk's Ping never looks at the reply.
    ping_interval_s: float = 5.0
    ping_timeout_s: float = 3.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 5.0  # (QA: at 30 s the link came back half a minute after Asterisk did)
    auth_retry_max_s: float = 60.0  # a refused login: Asterisk logs each try, fail2ban may ban us
    name: str = "pbx1"  # how logs, metrics, attempt.link and app_user.pbx call this server


@dataclass(frozen=True)
class DialPlan:
    """How dial strings and dialplan targets are built (see asterisk-conf/extensions.conf)."""

    trunk_template: str = "PJSIP/{number}@trunk"
    operator_template: str = "PJSIP/{extension}"
    agent_context: str = "dialer-agent"
    connect_context: str = "dialer-connect"
    predictive_context: str = "dialer-predictive"  # a person is Redirected to join_context or abandon
    join_context: str = "dialer-join"
    abandon_context: str = "dialer-abandon"
    listen_context: str = "dialer-listen"  # a supervisor's phone listens in (ChanSpy)
    inbound_join_context: str = "dialer-inbound-join"  # a caller who asked for a person, to an operator
    # Ofcom asks for at least 15 s of ringing before giving up.
    ring_timeout_s: int = 30
    # Starts every ChannelId we set (<prefix>-a<attempt>, <prefix>-s<operator>-<n>): two
    # deployments sharing one Asterisk must use different prefixes, or their ids would collide.
    channel_prefix: str = "dlr"


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    database_url: str | None  # None: the embedded PostgreSQL in var_dir/pgdata
    ami: AmiSettings | None  # None: no Asterisk configured; else the first (or only) server
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_format: str = "auto"  # auto | json | console
    log_level: str = "info"
    dialplan: DialPlan = DialPlan()
    session_hours: int = 10
    session_idle_minutes: int = 30  # staff and administrators: a session left idle this long ends (0: never)
    login_failures_per_address: int = (
        30  # failed logins from one address in 15 min before it is refused (0: off)
    )
    cookie_secure: bool = False  # set when the app is served over HTTPS (behind a proxy)
    session_check_s: float = 30.0  # open pages re-check their session this often
    # Every "resident" is simulated (the built-in PBX, or test callees in a real Asterisk's
    # dialplan): nobody real can be called, so the hours no resident may be called do not apply
    # (demo, training, tests at any hour). Never set where real people can be dialled.
    simulated_callees: bool = False
    lease_s: int = 600  # a lease not renewed this long comes back whatever else is known
    # Each dialer writes that it is alive this often (dialer_process); one not seen for six beats
    # has died, and the households it held come back (never while their call is still up).
    heartbeat_s: float = 10.0
    # The FastAGI service Asterisk's dialplan calls (agi/): agi://AGI_HOST:AGI_PORT/<route>
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    # who besides this machine and the AMI servers may connect to it (AGI_ALLOW: addresses, networks)
    agi_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    more_ami: tuple[AmiSettings, ...] = ()  # the other servers of AMI_SERVERS, each with its operators
    # The daily purge of data past its retention (dialer/purging.py), Tokyo time; None: off
    purge_at: time | None = time(3, 30)
    # preview: a record is on screen this long before it may be skipped; at most this many skips an
    # hour per operator (campaigns.previewing: reading records in bulk by skipping is refused)
    preview_look_s: int = 5
    preview_skips_per_hour: int = 30

    @property
    def servers(self) -> tuple[AmiSettings, ...]:
        return () if self.ami is None else (self.ami, *self.more_ami)

    @property
    def dead_after_s(self) -> float:
        return 6 * self.heartbeat_s

    @property
    def pgdata(self) -> Path:
        return self.var_dir / "pgdata"

    def with_ami(self, ami: AmiSettings) -> Settings:
        return replace(self, ami=ami)


def env_int(env: Mapping[str, str], key: str, default: int, lo: int = 1, hi: int = 65535) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{key} must be between {lo} and {hi}, got {value}")
    return value


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def env_flag(env: Mapping[str, str], key: str) -> bool:
    """A yes/no setting: 1/true/yes/on or 0/false/no/off (empty: no). Anything else is a mistake,
    not a silent no (HTTP_COOKIE_SECURE=enabled left the session cookie without Secure)."""
    raw = env.get(key, "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be 1/true/yes/on or 0/false/no/off, got {raw!r}")


def database_url(url: str | None) -> str | None:
    """DATABASE_URL as a PostgreSQL URL whose parts can be read (a port that is not a number or a
    broken [IPv6] address is said at start, not found as a traceback at the first query)."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError as exc:
        raise ConfigError(
            f"DATABASE_URL cannot be read: {exc} (postgresql://user:password@host:5432/dialer)"
        ) from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"DATABASE_URL must start with postgresql:// (got {parts.scheme or 'no'} scheme)")
    return url


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    var_dir = Path(env.get("DIALER_VAR_DIR") or "var").resolve()
    ami: AmiSettings | None = None
    if env.get("AMI_HOST"):
        ami = AmiSettings(
            host=env["AMI_HOST"],
            port=env_int(env, "AMI_PORT", 5038),
            username=env.get("AMI_USER", "dialer"),
            secret=env.get("AMI_SECRET", ""),
        )
    servers = ami_servers(env)
    if servers:
        ami = servers[0]
    for server in servers or ([ami] if ami else []):
        if not server.secret:  # Asterisk would refuse the login: say what to set, before starting
            key = (
                f"AMI_SECRET_{server.name.upper().replace('-', '_')} or AMI_SECRET"
                if servers
                else "AMI_SECRET"
            )
            raise ConfigError(f"{key} is empty: set the secret of the AMI user in Asterisk's manager.conf")
    log_format = env.get("LOG_FORMAT", "auto")
    if log_format not in ("auto", "json", "console"):
        raise ConfigError(f"LOG_FORMAT must be auto, json or console, got {log_format!r}")
    dialplan = DialPlan(
        trunk_template=env.get("DIAL_TRUNK_TEMPLATE", DialPlan.trunk_template),
        operator_template=env.get("DIAL_OPERATOR_TEMPLATE", DialPlan.operator_template),
        ring_timeout_s=env_int(env, "DIAL_RING_TIMEOUT_S", DialPlan.ring_timeout_s, lo=15, hi=120),
        channel_prefix=env.get("DIAL_CHANNEL_PREFIX") or DialPlan.channel_prefix,
    )
    if not re.fullmatch(r"[a-z][a-z0-9]{0,11}", dialplan.channel_prefix):
        raise ConfigError(
            "DIAL_CHANNEL_PREFIX must be 1-12 lower-case letters or digits, starting with a letter, "
            f"got {dialplan.channel_prefix!r}"
        )
    for name, template, key in (
        ("DIAL_TRUNK_TEMPLATE", dialplan.trunk_template, "{number}"),
        ("DIAL_OPERATOR_TEMPLATE", dialplan.operator_template, "{extension}"),
    ):
        if key not in template:
            raise ConfigError(f"{name} must contain {key}, got {template!r}")
    log_level = env.get("LOG_LEVEL", "info").lower()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    return Settings(
        var_dir=var_dir,
        database_url=database_url(env.get("DATABASE_URL") or None),
        ami=ami,
        http_host=env.get("HTTP_HOST", "127.0.0.1"),
        http_port=env_int(env, "HTTP_PORT", 8080, lo=0),
        log_format=log_format,
        log_level=log_level,
        dialplan=dialplan,
        cookie_secure=env_flag(env, "HTTP_COOKIE_SECURE"),
        session_idle_minutes=env_int(env, "SESSION_IDLE_MINUTES", 30, lo=0, hi=600),
        login_failures_per_address=env_int(env, "LOGIN_FAILURES_PER_ADDRESS", 30, lo=0, hi=100_000),
        agi_host=env.get("AGI_HOST", "127.0.0.1"),
        agi_port=env_int(env, "AGI_PORT", 4573, lo=0),
        agi_allow=parse_agi_allow(env.get("AGI_ALLOW", "")),
        heartbeat_s=env_int(env, "DIALER_HEARTBEAT_S", 10, lo=1, hi=60),
        more_ami=tuple(servers[1:]),
        purge_at=parse_purge_at(env.get("PURGE_AT") or "03:30"),
        preview_look_s=env_int(env, "PREVIEW_LOOK_S", 5, lo=0, hi=300),
        preview_skips_per_hour=env_int(env, "PREVIEW_SKIPS_PER_HOUR", 30, lo=0, hi=1000),
    )


def parse_agi_allow(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """AGI_ALLOW="10.0.0.5,10.0.1.0/24": addresses or networks that may use the FastAGI service."""
    networks = []
    for item in (x.strip() for x in raw.split(",") if x.strip()):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"AGI_ALLOW: each entry is an IP address or a network such as 10.0.1.0/24, got {item!r}"
            ) from None
    return tuple(networks)


_SERVER = re.compile(r"^([a-z][a-z0-9_-]{0,31})=([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$")


def ami_servers(env: Mapping[str, str]) -> list[AmiSettings]:
    """AMI_SERVERS="pbx1=10.0.0.1:5038,pbx2=10.0.0.2": several Asterisk servers, each with its own
    operators (app_user.pbx). All use AMI_USER; the secret is AMI_SECRET_<NAME> (upper case, - as _)
    if set, else AMI_SECRET. Empty: none (AMI_HOST names the only one)."""
    raw = env.get("AMI_SERVERS", "").strip()
    if not raw:
        return []
    if env.get("AMI_HOST"):
        raise ConfigError("set AMI_SERVERS or AMI_HOST, not both")
    servers: list[AmiSettings] = []
    for item in (x.strip() for x in raw.split(",")):
        m = _SERVER.match(item)
        if m is None:
            raise ConfigError(
                f"AMI_SERVERS: each entry is name=host[:port] (name: a-z, 0-9, _ or -), got {item!r}"
            )
        name, host, port = m.group(1), m.group(2).strip("[]"), int(m.group(3) or 5038)
        if not 1 <= port <= 65535:
            raise ConfigError(f"AMI_SERVERS: port out of range in {item!r}")
        if any(s.name == name for s in servers):
            raise ConfigError(f"AMI_SERVERS: the name {name!r} is used twice")
        secret_key = "AMI_SECRET_" + name.upper().replace("-", "_")
        servers.append(
            AmiSettings(
                host=host,
                port=port,
                username=env.get("AMI_USER", "dialer"),
                secret=env.get(secret_key) or env.get("AMI_SECRET", ""),
                name=name,
            )
        )
    return servers
