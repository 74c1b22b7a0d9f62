"""Action replies: what a session writes back, possibly later (a synchronous Originate)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .wire import Headers


@dataclass
class Reply:
    """Messages for the asking session; ``after`` runs once they are written (events follow)."""

    messages: list[Headers] = field(default_factory=list)
    after: Callable[[], None] | None = None
    close: bool = False


class Deferred:
    """A reply that is not known yet; the session handles nothing else until it is."""

    def __init__(self) -> None:
        self._ready: Callable[[Reply], None] | None = None
        self._value: Reply | None = None

    def on_ready(self, callback: Callable[[Reply], None]) -> None:
        if self._value is not None:
            callback(self._value)
        else:
            self._ready = callback

    def resolve(self, reply: Reply) -> None:
        if self._value is not None:
            return
        self._value = reply
        if self._ready is not None:
            self._ready(reply)


def aid_of(action_id: str) -> Headers:
    """The ActionID line, present only when the client sent a non-empty one."""
    return [("ActionID", action_id)] if action_id else []


def response(action_id: str, status: str, *fields: tuple[str, str]) -> Headers:
    """``Response:`` first, ``ActionID`` second (if any), then the fields."""
    return [("Response", status), *aid_of(action_id), *fields]


def success(action_id: str, message: str | None = None, *fields: tuple[str, str]) -> Headers:
    head = [("Message", message)] if message is not None else []
    return response(action_id, "Success", *head, *fields)


def error(action_id: str, message: str) -> Headers:
    return response(action_id, "Error", ("Message", message))


def list_start(action_id: str, message: str) -> Headers:
    return response(action_id, "Success", ("EventList", "start"), ("Message", message))


def list_complete(event: str, action_id: str, count: int, *extra: tuple[str, str]) -> Headers:
    return [
        ("Event", event),
        *aid_of(action_id),
        ("EventList", "Complete"),
        ("ListItems", str(count)),
        *extra,
    ]
