"""The responses a check judged, whether it sent them or reused them from the run's shared
walks and caches, so every failure carries the exchange (and curl) behind it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from conformance.client import Exchange

_sink: ContextVar[Callable[[Exchange], None] | None] = ContextVar("evidence_sink", default=None)
_judged: ContextVar[Exchange | None] = ContextVar("judged_exchange", default=None)
_remarks: ContextVar[Callable[[str], None] | None] = ContextVar("remark_sink", default=None)


def note(exchange: Exchange) -> None:
    """Attach ``exchange`` to the check that is running, if any."""
    sink = _sink.get()
    if sink is not None:
        sink(exchange)


def judging(exchange: Exchange) -> None:
    """``exchange`` is the answer being judged now: attached to the running check, and named by
    a :class:`~conformance.judge.Violation` raised before another answer is judged."""
    note(exchange)
    _judged.set(exchange)


def judged() -> Exchange | None:
    """The answer the running check is judging, if a judging helper said so."""
    return _judged.get()


def remark(text: str | None) -> None:
    """Say what the running check covered (its message when it passes), e.g. that it compared
    a prefix of the listing plus its last page rather than the whole listing."""
    sink = _remarks.get()
    if sink is not None and text:
        sink(text)


@contextmanager
def collecting(sink: Callable[[Exchange], None], remarks: Callable[[str], None] | None = None) -> Iterator[None]:
    token = _sink.set(sink)
    judged_token = _judged.set(None)
    remarks_token = _remarks.set(remarks)
    try:
        yield
    finally:
        _remarks.reset(remarks_token)
        _judged.reset(judged_token)
        _sink.reset(token)
