"""The operations files in docs/ops are usable as shipped: the alerting rules and the Grafana
dashboard parse as PromQL and name only metrics the running product exports; the systemd unit
runs `dialer run` from its environment file, and that file's settings are ones the dialer accepts."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dialer import config, runtime
from tests.client import PageClient

OPS = Path(__file__).resolve().parents[1] / "docs" / "ops"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


@pytest.fixture
async def exported(product: runtime.Running, operator: PageClient) -> set[str]:
    """Every series name the running product's /metrics can hold (with the type's suffixes)."""
    status, text = await operator.get("/metrics")
    assert status == 200
    names = {"up"}  # Prometheus's own, per scrape target
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + s for s in SUFFIXES.get(family.type, ()))
    return names


def _metrics_in(expr: str) -> list[str]:
    """The metric names a PromQL expression selects (raises ValueError if it does not parse)."""
    names: list[str] = []

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.append(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def test_a_broken_expression_or_unknown_name_would_be_caught() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        _metrics_in("sum(rate(dialer_calls_originated_total[5m])")
    assert _metrics_in("dialer_ami_link_up == 0 and on() dialer_database_up == 0") == [
        "dialer_ami_link_up",
        "dialer_database_up",
    ]


async def test_alerting_rules_parse_and_use_exported_metrics(exported: set[str]) -> None:
    doc = yaml.safe_load((OPS / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    assert len(rules) >= 8
    seen = set()
    for rule in rules:
        assert rule["alert"] not in seen
        seen.add(rule["alert"])
        assert set(_metrics_in(rule["expr"])) <= exported, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])
    covered = {name for rule in rules for name in _metrics_in(rule["expr"])}
    must = {"dialer_ami_link_up", "dialer_database_up", "dialer_store_pending_writes", "dialer_abandon_ratio"}
    assert must <= covered


async def test_the_dashboard_queries_parse_and_use_exported_metrics(exported: set[str]) -> None:
    dash = json.loads((OPS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dash["uid"] == "municipal-dialer"
    assert dash["timezone"] == "Asia/Tokyo"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    shown: set[str] = set()
    for panel in dash["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "5m").replace("$campaign", ".*")
            names = _metrics_in(expr)
            assert names, panel["title"]
            assert set(names) <= exported, panel["title"]
            shown.update(names)
    variable = dash["templating"]["list"][0]
    assert set(_metrics_in(variable["definition"].removeprefix("label_values(").split(",")[0])) <= exported
    # campaigns to choose from: every one that has ended a call, not only predictive ones
    assert variable["definition"] == "label_values(dialer_call_outcomes_total, campaign)"
    product_metrics = {n for n in exported if n.startswith("dialer_") and not n.endswith("_created")}
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in product_metrics}
    assert families <= {
        re.sub(r"_(total|bucket|sum|count)$", "", n) for n in shown
    }  # every metric on a panel


def test_the_systemd_unit_runs_the_dialer_from_its_environment_file() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(OPS / "dialer.service", encoding="utf-8")
    service = unit["Service"]
    program, command = service["ExecStart"].split()[-2:]
    assert (Path(program).name, command) == ("dialer", "run")
    assert service["EnvironmentFile"] == "/etc/dialer/dialer.env"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"  # the dialer's graceful stop
    assert unit["Install"]["WantedBy"] == "multi-user.target"

    env = {}
    for line in (OPS / "dialer.env.example").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if line:
            key, _, value = line.partition("=")
            env[key] = value
    settings = config.load(env)  # every setting in the example is valid as written
    assert settings.ami is not None
    assert settings.ami.host == "10.0.0.5"
    readme = (OPS.parents[1] / "README.md").read_text(encoding="utf-8")
    assert [k for k in env if f"`{k}`" not in readme] == []  # each one is documented


async def test_the_message_failure_alert_sees_the_first_failure(
    product: runtime.Running, operator: PageClient
) -> None:
    """DialerMessageFailed is an increase() over dialer_messages_failed_total: its series are there
    at 0 from the start, or the first failure (the series appearing at 1) would never fire it."""
    _, text = await operator.get("/metrics")
    for message in ("abandon", "machine"):
        assert f'dialer_messages_failed_total{{message="{message}"}} 0.0' in text
    rules = yaml.safe_load((OPS / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    exprs = [
        r["expr"] for g in rules["groups"] for r in g["rules"] if r.get("alert") == "DialerMessageFailed"
    ]
    assert exprs
    assert "dialer_messages_failed_total" in exprs[0]
