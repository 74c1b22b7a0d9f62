"""asterisk-conf/ holds everything the dialer originates into, and nothing more privileged than needed."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from dialer.config import DialPlan

CONF = Path(__file__).resolve().parents[1] / "asterisk-conf"


def _sections(name: str) -> dict[str, str]:
    """Section name -> body, for Asterisk's ini dialect (comments with ';', repeated sections)."""
    out: dict[str, str] = {}
    current = None
    for raw in (CONF / name).read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].rstrip()
        if m := re.match(r"^\[([^\]]+)\]", line):
            current = m.group(1)
            out.setdefault(current, "")
        elif current is not None and line.strip():
            out[current] += line.strip() + "\n"
    return out


def test_every_context_the_dialer_originates_to_exists() -> None:
    ext = _sections("extensions.conf")
    plan = DialPlan()
    contexts = (plan.agent_context, plan.connect_context, plan.predictive_context, plan.join_context)
    for context in (*contexts, plan.abandon_context, plan.listen_context, plan.inbound_join_context):
        assert context in ext, context
        assert re.search(r"^exten => (_X\.|s),1,", ext[context], re.M), context


def test_bridge_profiles_used_by_the_dialplan_are_defined() -> None:
    used = set(re.findall(r"ConfBridge\([^,]+,(\w+),(\w+)\)", (CONF / "extensions.conf").read_text()))
    profiles = _sections("confbridge.conf")
    for bridge, user in used:
        assert "type = bridge" in profiles.get(bridge, "")
        assert "type = user" in profiles.get(user, "")
    assert "end_marked = yes" in profiles["dialer_resident"]
    assert "marked = yes" in profiles["dialer_agent"]


def test_ami_user_is_least_privilege() -> None:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), strict=False)
    parser.read(CONF / "manager.conf", encoding="utf-8")
    user = parser["dialer"]
    read, write = set(user["read"].split(",")), set(user["write"].split(","))
    assert "all" not in read | write
    assert {"command", "config"}.isdisjoint(write)
    assert "system" not in write
    assert "user" not in write  # a client could forge the dialplan's UserEvents (DialerAMD)
    assert {"call", "user", "system"} <= read  # events the dialer needs, incl. FullyBooted/Shutdown
    assert write == {
        "originate",
        "call",
        "reporting",
    }  # Originate; Hangup, Redirect, Getvar; CoreShowChannels
    assert user["permit"]
    assert user["deny"] == "0.0.0.0/0.0.0.0"


def test_the_audio_ports_are_the_ones_the_firewall_table_opens() -> None:
    """Without rtp.conf Asterisk takes 5000-31000, not the range docs/asterisk.md tells admins to open."""
    general = _sections("rtp.conf")["general"]
    assert "rtpstart = 10000\nrtpend = 20000\n" in general
    guide = (CONF.parent / "docs" / "asterisk.md").read_text(encoding="utf-8")
    assert "(`rtp.conf`: UDP 10000–20000)" in guide


def test_dial_templates_match_pjsip() -> None:
    pjsip = _sections("pjsip.conf")
    endpoint = DialPlan().trunk_template.split("@", 1)[1]
    assert endpoint in pjsip


def test_the_trunk_sends_each_campaigns_caller_id_and_knows_the_carriers_calls() -> None:
    """A fixed from_user would show one number for every department's calls (and residents calling
    back would reach the wrong one); without an identify section the carrier's calls are refused."""
    text = (CONF / "pjsip.conf").read_text(encoding="utf-8")
    trunk = text[text.index("[trunk]\ntype = endpoint") : text.index("[trunk-auth]")]
    assert not re.search(r"^from_user\s*=", trunk, flags=re.M)
    assert re.search(r"^send_pai = yes", trunk, flags=re.M)
    assert re.search(r"^trust_id_outbound = yes", trunk, flags=re.M)
    identify = text[text.index("[trunk-identify]") :]
    assert "type = identify" in identify
    assert "endpoint = trunk" in identify


def test_every_context_the_dialplan_jumps_to_exists() -> None:
    ext = _sections("extensions.conf")
    targets = set(re.findall(r"[(?:]([a-z][a-z0-9-]+),(?:s|\$\{EXTEN\}),1\)", "\n".join(ext.values())))
    assert {"dialer-abandon", "dialer-machine"} <= targets  # the scan finds the jumps
    assert sorted(t for t in targets if t not in ext) == []


def test_an_operators_phone_joins_its_own_bridge_only() -> None:
    """8<extension> from an operator's phone: only their own bridge (another's would be an unseen,
    unlogged listen-in on that operator's resident: admin QA)."""
    rules = _sections("extensions.conf")["from-operators"]
    first = next(line for line in rules.splitlines() if line.startswith("exten => _8X.,1,"))
    # digits only compared, and what was dialled never used itself: 81001,1," | "x (pjsip unescapes
    # the Request-URI) would otherwise make the expression true and the Goto name 1001 (review)
    assert first == 'exten => _8X.,1,GotoIf($["${FILTER(0-9,${EXTEN:1})}" = "${CHANNEL(endpoint)}"]?own)'
    assert "same => n(own),Goto(dialer-agent,${CHANNEL(endpoint)},1)" in rules
    assert rules.count("${EXTEN") == 1
    assert rules.index("Hangup(21)") < rules.index("n(own)")  # anything else ends first
    pjsip = (CONF / "pjsip.conf").read_text(encoding="utf-8")
    assert "[1001](operator-phone)" in pjsip  # an operator's endpoint is named by their extension
