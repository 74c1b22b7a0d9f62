"""Prometheus metrics, in a registry of their own (no process globals), served at /metrics.

Labels carry ids and enumerations only, never personal data.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

AGENT_STATES = ("offline", "connecting", "paused", "ready", "preview", "dialing", "talking", "wrap_up")


MESSAGES = ("abandon", "machine")  # the messages the dialplan plays (agi/routes.py `played`)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._floors: dict[str, dict[str, int]] = {}  # operators by state, per floor (set_agents)
        r = self.registry
        self.originated = Counter(
            "dialer_calls_originated", "Calls originated through AMI", ["campaign"], registry=r
        )
        self.answered = Counter(
            "dialer_calls_answered", "Calls answered (person or machine)", ["campaign"], registry=r
        )
        self.abandoned = Counter(
            "dialer_calls_abandoned",
            "Answered calls with no operator free (message played)",
            ["campaign"],
            registry=r,
        )
        self.outcomes = Counter(
            "dialer_call_outcomes", "Ended calls by outcome", ["campaign", "outcome"], registry=r
        )
        self.dispositions = Counter(
            "dialer_dispositions", "Dispositions stored by operators", ["campaign", "code"], registry=r
        )
        self.agents = Gauge("dialer_agents", "Operators by state", ["state"], registry=r)
        self.ami_up = Gauge("dialer_ami_link_up", "1 when the AMI link is logged in", ["link"], registry=r)
        self.ami_down = (
            Counter(  # every drop, however short (a gauge's changes() misses those between scrapes)
                "dialer_ami_link_down", "Times the AMI link went down", ["link"], registry=r
            )
        )
        self.messages_failed = Counter(
            "dialer_messages_failed",
            "Messages Asterisk could not play (abandon, machine): the sound file missing or unreadable",
            ["message"],
            registry=r,
        )
        self.calls_failing = Gauge(
            "dialer_calls_failing",
            "1 while calls through this PBX fail at once and no new call is placed (campaigns.breaker)",
            ["link"],
            registry=r,
        )
        self.screen_pop = Histogram(
            "dialer_screen_pop_seconds",
            "Answer event received -> record pushed to the operator's page",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
            registry=r,
        )
        self.connect_delay = Histogram(
            "dialer_predictive_connect_seconds",
            "Predictive: a person's verdict received -> sent on to an operator or the abandon message "
            "(Ofcom: within 2 s)",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
            registry=r,
        )
        self.abandon_rate = Gauge(
            "dialer_abandon_ratio",
            "Abandoned / live answered calls per campaign over the rolling window (hour, day)",
            ["campaign", "window"],
            registry=r,
        )
        self.pacer_threshold = Gauge(
            "dialer_pacer_risk_allowed",
            "Predictive: the chance of finding no operator free allowed for one more call (0: progressive)",
            ["campaign"],
            registry=r,
        )
        self.pacer_decisions = Counter(
            "dialer_pacer_decisions",
            "Predictive pacer decisions by mode and reason",
            ["campaign", "mode", "reason"],
            registry=r,
        )
        self.pending_writes = Gauge(
            "dialer_store_pending_writes", "Call records waiting for the database (retried)", registry=r
        )
        self.ami_events = Counter("dialer_ami_events", "AMI events received", ["link"], registry=r)
        self.inbound = Counter(
            "dialer_inbound_calls",
            "Residents calling in who asked for a person, by what became of them "
            "(put_through: to an operator; desk: nobody free in time; hung_up: while waiting)",
            ["department", "result"],
            registry=r,
        )
        self.inbound_waiting = Gauge(
            "dialer_inbound_waiting", "Callers waiting for an operator now", ["link"], registry=r
        )
        self.database_up = Gauge(
            "dialer_database_up",
            "0 while PostgreSQL is unreachable (from the first failed query, or a failed probe at a "
            "scrape, until it answers again and the held call records are written)",
            registry=r,
        )
        self.purge_last_success = Gauge(
            "dialer_purge_last_success_timestamp_seconds",
            "When the last purge of data past its retention finished (any process: read from the "
            "records at start; this process's own runs after that)",
            registry=r,
        )
        self.purge_deleted = Counter(
            "dialer_purge_deleted",
            "Rows deleted (or calls made anonymous) by this process's scheduled purges, by kind",
            ["kind"],
            registry=r,
        )
        for state in AGENT_STATES:
            self.agents.labels(state).set(0)
        # there from the start at 0: an alert on increase() sees the first failure (a series that
        # appears at 1 has no earlier sample to increase from: admin QA)
        for message in MESSAGES:
            self.messages_failed.labels(message)

    def set_agents(self, counts: dict[str, int], floor: str = "") -> None:
        """One floor's operators by state (one floor per Asterisk server); the gauge is their sum."""
        self._floors[floor] = counts
        for state in AGENT_STATES:
            self.agents.labels(state).set(sum(c.get(state, 0) for c in self._floors.values()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
