"""Answers shared by the checks of a run: each computed once, by whichever thread asks first.

:class:`Shared` keeps the run's answers (the model's pages and walks, ``Target.once``,
``Target.cached``); :class:`Outcome` is what a call returned or raised and the exchanges it
sent meanwhile; :func:`gather` sends independent requests of one step together (the pages of a
walk whose length is known), each in a copy of the caller's context.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from conformance import evidence
from conformance.client import Exchange, RequestFailed, recording


@dataclass
class Outcome:
    """What a call returned or raised, and the exchanges it sent meanwhile."""

    value: Any = None
    error: BaseException | None = None
    exchanges: list[Exchange] = field(default_factory=list)

    @classmethod
    def of(cls, call: Callable[[], Any]) -> Outcome:
        with recording() as sent:
            try:
                return cls(call(), None, sent)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as error:  # pytest's skip is one: it is raised again when read
                return cls(None, error, sent)

    def result(self, *, note: bool = True) -> Any:
        """The value (or the error raised again); ``note`` attaches the exchanges to the running check."""
        __tracebackhide__ = True  # plumbing: a check's traceback shows the check
        if note:
            for exchange in self.exchanges:
                evidence.note(exchange)
        if self.error is not None:
            raise fresh(self.error)
        return self.value


def fresh(error: BaseException) -> BaseException:
    """A copy of ``error`` to raise again: raising one exception object again and again (a
    shared answer meets every check that needs it) grows its traceback by every raise, and
    every report of it with it.

    The copy starts from where ``error`` was first raised, a bug's only clue; a request that
    got no answer starts from nothing, since its message says it all.
    """
    origin = None if isinstance(error, RequestFailed) else error.__traceback__
    try:
        copy = type(error).__new__(type(error), *error.args)
    except Exception:  # noqa: BLE001 - a __new__ that wants other arguments: the same object, reset
        return error.with_traceback(origin)
    copy.args = error.args
    copy.__dict__.update(error.__dict__)
    copy.__cause__ = error.__cause__
    copy.__suppress_context__ = error.__suppress_context__
    return copy.with_traceback(origin)


class _Entry:
    def __init__(self) -> None:
        self._done = threading.Event()
        self.outcome = Outcome()

    def settle(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self._done.set()

    def wait(self) -> Outcome:
        self._done.wait()
        return self.outcome

    @property
    def settled(self) -> bool:
        return self._done.is_set()


class Shared:
    """Answers computed once per key by whichever thread asks first; the others wait for it.

    A failure is shared like an answer: every check that needs it meets the same error (a
    fresh copy of it each time, see :func:`fresh`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}

    def get(self, key: Hashable, compute: Callable[[], Any], *, note: bool = True) -> Any:
        __tracebackhide__ = True
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if entry is None:
                entry = self._entries[key] = _Entry()
        if owner:
            try:
                outcome = Outcome.of(compute)
            except BaseException as error:
                entry.settle(Outcome(error=error))
                raise
            entry.settle(outcome)
        return entry.wait().result(note=note)

    def put(self, key: Hashable, value: Any) -> None:
        entry = _Entry()
        entry.settle(Outcome(value))
        with self._lock:
            self._entries[key] = entry

    def peek(self, key: Hashable) -> Any:
        """The value computed for ``key``, or None when there is none (yet, or it failed)."""
        with self._lock:
            entry = self._entries.get(key)
        return entry.outcome.value if entry is not None and entry.settled else None


def gather(calls: Sequence[Callable[[], Any]], workers: int) -> list[Outcome]:
    """Run every call, up to ``workers`` at once, each in a copy of the caller's context; their
    outcomes in the order of ``calls``. With one worker they run in turn, in this thread."""
    if workers <= 1 or len(calls) <= 1:
        return [Outcome.of(call) for call in calls]
    with ThreadPoolExecutor(min(workers, len(calls)), thread_name_prefix="conformance-batch") as pool:
        futures = [pool.submit(contextvars.copy_context().run, Outcome.of, call) for call in calls]
        return [future.result() for future in futures]
