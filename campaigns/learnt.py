"""What the pacer knows of each predictive campaign's own calls, read from the database now and
then: the forecast model (answers, ring and talk times) and the rolling hour's and day's live and
abandoned calls, whose abandon rate is exported for Prometheus (`dialer_abandon_ratio`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import asyncpg

from campaigns import forecast, pacer
from dialer.metrics import Metrics
from dialer.store import pacing as history

MODEL_TTL_S = 10.0  # the forecast is learnt again this often (as in bench/pacing/day.py)
ROLLING_TTL_S = 5.0  # abandon counts are read again this often (and at once after an abandon)


class Learnt:
    def __init__(self, pool: asyncpg.Pool, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.pool, self.metrics, self.clock = pool, metrics, clock
        self._models: dict[int, tuple[float, forecast.Model]] = {}
        self._rolling: dict[int, tuple[float, pacer.Window, pacer.Window]] = {}
        self.gauged: set[int] = set()  # campaigns with an abandon rate exported

    async def model(self, campaign_id: int) -> forecast.Model:
        cached = self._models.get(campaign_id)
        if cached is not None and self.clock() - cached[0] < MODEL_TTL_S:
            return cached[1]
        dialed, handled = await history.history(self.pool, campaign_id)
        model = forecast.Model.learn(dialed, handled)
        self._models[campaign_id] = (self.clock(), model)
        return model

    async def windows(self, campaign_id: int) -> tuple[pacer.Window, pacer.Window]:
        """The rolling hour and day (and the exported abandon rate, kept up with them)."""
        cached = self._rolling.get(campaign_id)
        if cached is not None and self.clock() - cached[0] < ROLLING_TTL_S:
            return cached[1], cached[2]
        hour, day = await history.rolling(self.pool, campaign_id)
        self._rolling[campaign_id] = (self.clock(), hour, day)
        label = str(campaign_id)
        self.gauged.add(campaign_id)
        self.metrics.abandon_rate.labels(label, "hour").set(hour.abandoned / hour.live if hour.live else 0.0)
        self.metrics.abandon_rate.labels(label, "day").set(day.abandoned / day.live if day.live else 0.0)
        return hour, day

    def forget_windows(self, campaign_id: int) -> None:
        """An abandon just happened: read the windows again at the next turn, not after the TTL."""
        self._rolling.pop(campaign_id, None)

    async def no_longer_paced(self, campaign_id: int) -> None:
        """A campaign paced here before and not now (switched to progressive, stopped, outside its
        hours, its operators gone): no pacer decision to show, but its abandon rate is kept true
        while its calls are in the rolling 24 hours (abandons age out; an alert on the rate ends
        when the rule is met again, not when the pacer stops)."""
        label = str(campaign_id)
        with contextlib.suppress(KeyError):
            self.metrics.pacer_threshold.remove(label)
        _, day = await self.windows(campaign_id)
        if day.live == 0 and day.abandoned == 0:
            self.gauged.discard(campaign_id)
            for window in ("hour", "day"):
                with contextlib.suppress(KeyError):
                    self.metrics.abandon_rate.remove(label, window)
