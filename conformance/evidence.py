"""The responses a check judged, whether it sent them or reused them from the run's shared
walks and caches, so every failure carries the exchange (and curl) behind it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from conformance.client import Exchange

_sink: ContextVar[Callable[[Exchange], None] | None] = ContextVar("evidence_sink", default=None)


def note(exchange: Exchange) -> None:
    """Attach ``exchange`` to the check that is running, if any."""
    sink = _sink.get()
    if sink is not None:
        sink(exchange)


@contextmanager
def collecting(sink: Callable[[Exchange], None]) -> Iterator[None]:
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)
