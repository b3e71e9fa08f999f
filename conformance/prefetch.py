"""Requests sent ahead of the checks that judge them, so that independent requests overlap.

pytest runs the checks one after another, yet what a check sends rarely depends on what
another one received. So as soon as the checks are collected, each selected check is run
once *ahead*, in a pool of ``--concurrency`` threads, with its verdict thrown away. What it
asks for lands in the run's shared caches (the model's pages and walks, ``Target.once``,
``Target.cached``) or, for a request of its own (``Target.get``), on its :class:`Tape`.
When the check then runs for real, it reads the same answers in the order it asks for them.

The plan is the check itself, so it cannot drift from what the checks need. An answer the
real run asks for that is not on its tape (it took another path, or the listing changed in
between) is simply sent then: a miss costs time, never a result. A check run ahead stops
where only the real run may go on (walking the listing again, :class:`StopAhead`).

:func:`gather` sends independent requests of one step together (the pages of a walk whose
length is known, the examples of a property), each in a copy of the caller's context.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from conformance import evidence
from conformance.client import Exchange, RequestFailed, recording, sending_ahead

_tape: contextvars.ContextVar[Tape | None] = contextvars.ContextVar("tape", default=None)
_ahead: contextvars.ContextVar[bool] = contextvars.ContextVar("running_ahead", default=False)
_batched: contextvars.ContextVar[bool] = contextvars.ContextVar("batched", default=False)
# The fixtures through which a check sends requests.
SENDING_FIXTURES = ("target", "model")


class StopAhead(Exception):
    """A check run ahead reached a step only its real run may take."""


def running_ahead() -> bool:
    """True inside a check run ahead of its real run."""
    return _ahead.get()


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
            token = _tape.set(None)  # a shared answer is no check's own request
            try:
                outcome = Outcome.of(compute)
            except BaseException as error:
                entry.settle(Outcome(error=error))
                raise
            finally:
                _tape.reset(token)
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


class Tape:
    """The answers to one check's own requests, recorded when it ran ahead, in order per request.

    ``stale()`` says the listing changed since they were recorded: the real run then sends
    its requests again rather than judge old answers against a fresh walk.
    """

    def __init__(self, stale: Callable[[], bool]) -> None:
        self._answers: dict[Hashable, deque[Outcome]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._stale = stale
        self.recording = True

    def answer(self, key: Hashable, send: Callable[[], Any]) -> Any:
        __tracebackhide__ = True
        if self.recording:
            outcome = Outcome.of(send)
            with self._lock:
                self._answers[key].append(outcome)
            return outcome.result(note=False)
        with self._lock:
            queue = self._answers.get(key)
            outcome = queue.popleft() if queue else None
        if outcome is None or self._stale():
            return send()
        return outcome.result()


def own_request(key: Hashable, send: Callable[[], Any]) -> Any:
    """A check's own request: from its tape when it ran ahead, else sent now."""
    __tracebackhide__ = True
    tape = _tape.get()
    return send() if tape is None else tape.answer(key, send)


def gather(calls: Sequence[Callable[[], Any]], workers: int) -> list[Outcome]:
    """Run every call, up to ``workers`` at once, each in a copy of the caller's context; their
    outcomes in the order of ``calls``. With one worker they run in turn, in this thread."""
    token = _batched.set(True)
    try:
        if workers <= 1 or len(calls) <= 1:
            return [Outcome.of(call) for call in calls]
        with ThreadPoolExecutor(min(workers, len(calls)), thread_name_prefix="conformance-batch") as pool:
            futures = [pool.submit(contextvars.copy_context().run, Outcome.of, call) for call in calls]
            return [future.result() for future in futures]
    finally:
        _batched.reset(token)


class Ahead:
    """Runs the selected checks ahead of their real runs and replays their answers to them.

    ``fixtures`` maps the fixture names a check may take (``target``, ``model``, ``listing``)
    to what provides them; a check taking any other fixture (the properties) is not run
    ahead: it overlaps its own requests with :func:`gather`.
    """

    def __init__(self, fixtures: Mapping[str, Callable[[], Any]], *, workers: int,
                 generation: Callable[[], int]) -> None:
        self._fixtures = fixtures
        self._workers = workers
        self._generation = generation
        self._pool: ThreadPoolExecutor | None = None
        self._runs: dict[str, Future[Tape]] = {}
        self._started = False
        self._lock = threading.Lock()
        self.sent = self.sent_ahead = self.one_at_a_time = 0

    def start(self, items: Sequence[Any]) -> None:
        """Start running ``items`` (pytest items, in the order they will run) ahead. With one
        worker (``--concurrency 1``) nothing runs ahead: requests go one at a time, in the
        order the checks ask for them."""
        self._started = True
        if self._workers <= 1:
            return
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="conformance-ahead")
        for item in items:
            if _sends(item, self._fixtures):
                self._runs[item.nodeid] = self._pool.submit(contextvars.Context().run, self._run_ahead, item)

    @contextmanager
    def replaying(self, item: Any) -> Iterator[None]:
        """The real run of ``item``: its own requests come from its tape when it ran ahead."""
        run = self._runs.pop(item.nodeid, None)
        tape = None if run is None or run.cancel() else run.result()
        if tape is not None:
            tape.recording = False
        token = _tape.set(tape)
        try:
            yield
        finally:
            _tape.reset(token)

    def stop(self) -> None:
        """Drop what has not started; wait for what has (its requests are bounded by the timeout)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def observe(self, exchange: Exchange) -> None:
        """Client observer: counts what was sent ahead, in batches, and one at a time."""
        with self._lock:
            self.sent += 1
            if exchange.ahead:
                self.sent_ahead += 1
            elif self._started and not _batched.get():
                self.one_at_a_time += 1

    def describe(self) -> str:
        """One line for the console: how the requests were sent."""
        return (f"requests: {self.sent} sent, at most {self._workers} at a time: {self.sent_ahead} ahead of the "
                f"check that judged them, {self.one_at_a_time} by a check on its own as it ran")

    def _run_ahead(self, item: Any) -> Tape:
        generation = self._generation()
        tape = Tape(lambda: self._generation() != generation)
        _tape.set(tape)
        _ahead.set(True)
        with sending_ahead():
            try:
                item.obj(**_arguments(item, self._fixtures))
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # noqa: BLE001 - its verdict is the real run's to give
                pass
        return tape


def _parameters(item: Any) -> dict[str, Any]:
    callspec = getattr(item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


def _sends(item: Any, fixtures: Mapping[str, Any]) -> bool:
    """Whether running ``item`` ahead can send anything: it takes only the fixtures given, and
    one that sends (a check of the walked listing alone judges data already fetched)."""
    function = getattr(item, "obj", None)
    if not callable(function):
        return False
    names = set(inspect.signature(function).parameters)
    return names <= set(fixtures) | set(_parameters(item)) and bool(names & set(SENDING_FIXTURES))


def _arguments(item: Any, fixtures: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    parameters = _parameters(item)
    return {name: parameters[name] if name in parameters else fixtures[name]()
            for name in inspect.signature(item.obj).parameters}
