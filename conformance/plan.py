"""Request plans: every check states the requests it needs, as data, and they are fetched once
before the checks run.

A check declares its requests with ``@needs(declare)``. ``declare`` takes, by name, the check's
parameters and the run's resources it needs (``target``, ``model``, ``listing``,
``hypothesis_run``) and returns what the check will ask for:

- :class:`Page`: ``model.page(**params)``, the main caller's answer, shared by every check;
- :class:`Once`: ``target.once(...)``, an answer shared by every check sending exactly it;
- :class:`Again`: ``target.get(...)``, the check's own request, sent for it alone even when
  another check sends the same request (the checks about repeating a request);
- :class:`Filtered` and :class:`MemberListing`: walks of the listing filtered by a status, or
  as another member sees it.

A check taking the ``listing`` fixture needs the walked listing too. Before the first check
runs, the :class:`Engine` fetches the union of the selected checks' declarations, each request
once, up to ``--concurrency`` at a time (the client paces them): the listing walk and what needs
nothing first, then what is declared from the walked listing (windows at its end, its tie runs,
the properties' examples), then the repeats, once the answers they repeat are in. Each check
then runs once and reads its answers from the run's caches. A request a check asks for that
was not declared is simply sent then: a miss costs time, never a result.
"""

from __future__ import annotations

import contextvars
import inspect
import itertools
import math
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest

from conformance.client import Exchange, recording
from conformance.shared import Outcome

NEEDS_MARK = "needs"
# A check that judges the whole run (ROB-01 over every request): it runs after every other check.
RUN_LAST_MARK = "run_last"
# The run's resources a declaration may take by name, besides the check's parameters.
RESOURCES = ("target", "model", "listing", "hypothesis_run")


def needs(declare: Callable[..., Iterable[Any]]) -> pytest.MarkDecorator:
    """Mark a check with the requests it needs: ``declare`` returns them (see the module)."""
    return pytest.mark.needs.with_args(declare)  # with_args: a lone callable would be marked, not passed


Query = tuple[tuple[str, str], ...]


def _query(params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> Query:
    items = params.items() if isinstance(params, Mapping) else params or ()
    return tuple((str(name), str(value)) for name, value in items)


@dataclass(frozen=True)
class Page:
    """``model.page(**params)``: the main caller's answer to a query, shared by every check
    (asked again once the listing changed during the run)."""

    params: Query

    @classmethod
    def of(cls, **params: Any) -> Page:
        return cls(tuple(sorted(_query(params))))

    wave = 1

    def key(self, target: Any) -> Hashable:
        return ("page", self.params)

    def fetch(self, target: Any, model: Any) -> Any:
        return model.page(**dict(self.params))


@dataclass(frozen=True, eq=False)
class _Request:
    params: Query | None = None
    credential: Any = "api_key"  # a setting name, a Credential, or None (no credentials)
    org: str | None = None
    raw_query: str | None = None

    @classmethod
    def of(cls, params: Any = None, *, credential: Any = "api_key", org: str | None = None,
           raw_query: str | None = None) -> Any:
        return cls(None if params is None else _query(params), credential, org, raw_query)

    def arguments(self) -> dict[str, Any]:
        return {"credential": self.credential, "org": self.org, "raw_query": self.raw_query}

    def request_key(self, target: Any) -> Hashable:
        return target.request_key(self.params, **self.arguments())


class Once(_Request):
    """``target.once(...)``: an answer shared by every check asking for exactly this request."""

    wave = 1

    def key(self, target: Any) -> Hashable:
        return ("once", self.request_key(target))

    def fetch(self, target: Any, model: Any) -> Any:
        return target.once(self.params, **self.arguments())


class Again(_Request):
    """``target.get(...)``: the declaring check's own request, sent for it alone even when
    another check sends the same one; sent as soon as the other answers its check declared are
    in, since it is most often their repeat."""

    wave = 2

    def key(self, target: Any) -> Hashable:
        return ("again", self.request_key(target))

    def fetch(self, target: Any, model: Any) -> Any:
        return target.send_request(self.params, **self.arguments())


@dataclass(frozen=True)
class Filtered:
    """``model.filtered(status)``: the listing filtered by ``status``, walked once per run."""

    status: str
    wave = 1

    def key(self, target: Any) -> Hashable:
        return ("filtered", self.status)

    def fetch(self, target: Any, model: Any) -> Any:
        return model.filtered(self.status)


@dataclass(frozen=True)
class MemberListing:
    """The listing another member sees with the credential of setting ``credential``."""

    credential: str
    wave = 1

    def key(self, target: Any) -> Hashable:
        return ("member", self.credential)

    def fetch(self, target: Any, model: Any) -> Any:
        return target.member_model(target.credential(self.credential)).listing()


_LISTING = ("listing",)


class OwnAnswers:
    """The answers to one check's declared own requests (:class:`Again`), in order per request."""

    def __init__(self, stale: Callable[[int], bool]) -> None:
        self._answers: dict[Hashable, deque[tuple[Outcome, int]]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._stale = stale

    def put(self, key: Hashable, outcome: Outcome, generation: int) -> None:
        with self._lock:
            self._answers[key].append((outcome, generation))

    def take(self, key: Hashable, send: Callable[[], Any]) -> Any:
        """The next declared answer to this request, or a fresh one when there is none left or
        the listing changed since it was fetched (it would be judged against a fresh walk)."""
        __tracebackhide__ = True
        with self._lock:
            queue = self._answers.get(key)
            answer = queue.popleft() if queue else None
        if answer is None or self._stale(answer[1]):
            return send()
        return answer[0].result()


_own: contextvars.ContextVar[OwnAnswers | None] = contextvars.ContextVar("own_answers", default=None)


def own_request(key: Hashable, send: Callable[[], Any]) -> Any:
    """A check's own request: its declared answer when the engine fetched one, else sent now."""
    __tracebackhide__ = True
    answers = _own.get()
    return send() if answers is None else answers.take(key, send)


Declared = Sequence[tuple[Any, Sequence[Any]]]
Priority = tuple[int, ...]

# The order a request budget (--max-requests) is spent in: the listing walk, then for each
# requirement the check citing it that declares the fewest requests, then the other
# deterministic checks one round at a time (the first case of every check, then the second,
# ..., cheapest first within a round; a check declaring n requests counts n - 1 rounds later),
# then the properties' generated examples. The cases of a check are listed most telling first.
LISTING_TIER, REQUIREMENT_TIER, BREADTH_TIER, PROPERTY_TIER = range(4)


def _requirement_checks(declared: Declared, covered: set[str]) -> list[Any]:
    """For each requirement not yet in ``covered``, the deterministic check citing it that
    declares the fewest requests (a check judges only when all its requests were answered), of
    those that send requests (not the checks judging the whole run afterwards).
    ``covered`` grows with the requirements they cite."""
    chosen = []
    candidates = (pair for pair in declared
                  if not _is_property(pair[0]) and not pair[0].get_closest_marker(RUN_LAST_MARK))
    for item, _ in sorted(candidates, key=lambda p: len(p[1])):
        cited = {rid for mark in item.iter_markers("requirement") for rid in mark.args}
        if cited - covered:
            chosen.append(item)
            covered |= cited
    return chosen


def _is_property(item: Any) -> bool:
    return "test_properties.py" in getattr(item, "nodeid", "")


def _rounds(items: Sequence[Any]) -> dict[int, int]:
    """Each item's round: its place among the cases of its check function (0 for the first),
    in run order, which lists each check's most telling cases first."""
    seen: dict[Any, int] = defaultdict(int)
    rounds = {}
    for item in items:
        function = getattr(item, "originalname", None) or getattr(item, "name", "")
        rounds[id(item)] = seen[(getattr(item, "path", None), function)]
        seen[(getattr(item, "path", None), function)] += 1
    return rounds


class _PriorityPool:
    """Up to ``workers`` threads running the queued call of lowest priority first (then the first
    queued): the budget is spent in priority order even when calls are queued out of it."""

    def __init__(self, workers: int) -> None:
        self._queue: queue.PriorityQueue[tuple[Any, ...]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._threads = [threading.Thread(target=self._work, name=f"conformance-plan-{number}", daemon=True)
                         for number in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: Priority, call: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((priority, next(self._order), future, call))
        return future

    def _work(self) -> None:
        while True:
            _, _, future, call = self._queue.get()
            if future is None:
                return
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as error:  # noqa: BLE001 - handed to whoever waits on the future
                    future.set_exception(error)

    def shutdown(self) -> None:
        """Cancel what has not started, then wait for what has."""
        while True:
            try:
                _, _, future, _ = self._queue.get_nowait()
            except queue.Empty:
                break
            if future is not None:
                future.cancel()
        for _ in self._threads:
            self._queue.put(((math.inf,), next(self._order), None, None))
        for thread in self._threads:
            thread.join()


class Engine:
    """Fetches what the selected checks declared, before they run, and hands each check its own
    answers while it runs. ``target`` and ``model`` are the run's; ``workers`` is --concurrency."""

    def __init__(self, target: Any, model: Any, *, workers: int, deadline: Callable[[], float]) -> None:
        self._target = target
        self._model = model
        self._workers = max(1, workers)
        self._deadline = deadline
        self._own: dict[str, OwnAnswers] = {}
        self._sent_for: dict[str, list[Exchange]] = defaultdict(list)
        self._lock = threading.Lock()
        self._fetching = False
        self._fetched = False
        self._interrupted = False
        self._submitted: dict[Hashable, Future[Any]] = {}
        self._pending: list[Future[Any]] = []
        self.failure: str | None = None  # why the plan stopped early, if it did
        self.declared = self.planned = 0
        self.sent = self.sent_before = self.sent_planned = 0

    @property
    def fetching(self) -> bool:
        """Whether the declared requests are being fetched, or their fetch was interrupted (SIGINT):
        either way no check has run yet."""
        return self._fetching or self._interrupted

    # -- before the checks ---------------------------------------------------------------

    def fetch(self, items: Sequence[Any], resources: Mapping[str, Any]) -> None:
        """Fetch every request ``items`` (pytest items, in run order) declare, each once."""
        self._fetching = True
        pool = _PriorityPool(self._workers)
        try:
            self._fetch(items, resources, pool)
        except Exception as error:  # noqa: BLE001 - a fault of the plan costs time (misses), never a result
            self.failure = f"{type(error).__name__}: {error}"
        except KeyboardInterrupt:
            self._interrupted = True
            raise
        finally:
            pool.shutdown()
            self._fetching = False
            self._fetched = True

    def _fetch(self, items: Sequence[Any], resources: Mapping[str, Any], pool: _PriorityPool) -> None:
        rounds = _rounds(items)
        first = [item for item in items if not _declaration_takes(item, "listing")]
        later = [item for item in items if _declaration_takes(item, "listing")]
        covered: set[str] = set()
        listing = None
        if any(_takes_listing(item) for item in items):
            listing = self._submit(pool, (LISTING_TIER,), _LISTING, None, self._model.listing)
        declared = [(item, self._declared(item, resources)) for item in first]
        if listing is not None and self._target.client.max_requests is not None:
            wait([listing])  # under a budget the walk, which most checks judge, comes first
        # Without a budget, what does not need the walked listing and is first for its requirement
        # goes while the listing is walked; the rest waits for the listing, so that a budget is
        # spent in order.
        chosen = {id(item) for item in _requirement_checks(declared, covered)}
        self._submit_all(pool, [pair for pair in declared if id(pair[0]) in chosen], rounds, chosen)
        if listing is not None:
            wait([listing])
            self._reserve_a_confirmation()
        declared_later = [(item, self._declared(item, resources)) for item in later]
        chosen |= {id(item) for item in _requirement_checks(declared_later, covered)}
        rest = [pair for pair in [*declared, *declared_later] if id(pair[0]) not in chosen]
        self._submit_all(pool, [pair for pair in declared_later if id(pair[0]) in chosen], rounds, chosen)
        self._submit_all(pool, rest, rounds, chosen)
        while True:
            with self._lock:
                pending, self._pending = self._pending, []
            if not pending:
                break
            wait(pending)

    def _reserve_a_confirmation(self) -> None:
        """Keep back, under a request budget, what one walk confirming the listing costs: a
        failure found with the last requests of the budget is then still confirmed."""
        walk = self._model.walked_listing()
        if walk is not None:
            self._target.client.reserve(walk.requests + (walk.size.bit_length() + 2 if walk.partial else 0))

    def _submit_all(self, pool: _PriorityPool, declared: Declared, rounds: Mapping[int, int],
                    chosen: set[int]) -> None:
        """Queue each item's requests at its priority; its repeats (:class:`Again`) go once the
        answers it declared besides are in (most often the answers they repeat), at its priority."""
        ranked = []
        for item, specs in declared:
            tier = (REQUIREMENT_TIER if id(item) in chosen else PROPERTY_TIER if _is_property(item)
                    else BREADTH_TIER)
            cost = sum(1 for spec in specs if self._key(spec) not in self._submitted)
            # Each request past the first puts a check a round later: a check of six requests
            # goes after the next five cases of the one-request checks.
            ranked.append(((tier, rounds.get(id(item), 0) + max(0, cost - 1), cost), item, specs))
        for priority, item, specs in sorted(ranked, key=lambda entry: entry[0]):
            awaited: list[Future[Any]] = []
            repeats: list[Again] = []
            for spec in specs:
                self.declared += 1
                key = self._key(spec)
                if key is None:
                    continue
                if spec.wave == 2:
                    repeats.append(spec)
                else:
                    awaited.append(self._submit(pool, priority, key, item,
                                                partial(spec.fetch, self._target, self._model)))
            if repeats:
                self._after(awaited, partial(self._submit_repeats, pool, priority, item, repeats))

    def _submit_repeats(self, pool: _PriorityPool, priority: Priority, item: Any, repeats: Sequence[Again]) -> None:
        for spec in repeats:
            self._submit(pool, priority, None, item, partial(self._repeat, item, spec))

    def _key(self, spec: Any) -> Hashable | None:
        try:
            return spec.key(self._target)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - pytest.skip (not configured): the check says so itself
            return None

    def _after(self, futures: Sequence[Future[Any]], then: Callable[[], Any]) -> None:
        """Call ``then`` once every one of ``futures`` is done (now, when they are). The fetch
        waits for it too: a future's waiters wake before its callbacks run, so without this the
        fetch could end before ``then`` queued what it queues."""
        called: Future[None] = Future()
        with self._lock:
            self._pending.append(called)
        remaining = [len(futures)]
        gate = threading.Lock()

        def call() -> None:
            try:
                then()
            finally:
                called.set_result(None)

        def one_done(_: Future[Any]) -> None:
            with gate:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                call()

        if not futures:
            call()
        for future in futures:
            future.add_done_callback(one_done)

    def _submit(self, pool: _PriorityPool, priority: Priority, key: Hashable | None, item: Any,
                call: Callable[[], Any]) -> Future[Any]:
        with self._lock:
            if key is not None and key in self._submitted:
                return self._submitted[key]
            owner = None if item is None else _check_id(item)
            future = pool.submit(priority, partial(contextvars.Context().run, self._run, owner, call))
            if key is not None:
                self._submitted[key] = future
            self._pending.append(future)
            self.planned += 1
            return future

    def _run(self, owner: str | None, call: Callable[[], Any]) -> None:
        if time.monotonic() > self._deadline():
            return  # --max-duration: the checks will not start either
        with recording() as sent:
            Outcome.of(call)  # the answer (or failure) stays in the run's caches
        if owner is not None:
            with self._lock:
                self._sent_for[owner].extend(sent)

    def _repeat(self, item: Any, spec: Again) -> None:
        key = spec.request_key(self._target)
        generation = self._model.generation
        outcome = Outcome.of(lambda: spec.fetch(self._target, self._model))
        with self._lock:
            answers = self._own.setdefault(_check_id(item),
                                           OwnAnswers(lambda fetched: self._model.generation != fetched))
        answers.put(key, outcome, generation)

    def _declared(self, item: Any, resources: Mapping[str, Any]) -> list[Any]:
        """What ``item`` declares; nothing when it declares nothing or its declaration cannot be
        made (a setting missing, the listing unavailable): the check then says why itself."""
        marker = item.get_closest_marker(NEEDS_MARK)
        if marker is None:
            return []
        declare = marker.args[0]
        parameters = _parameters(item)
        try:
            arguments = {name: parameters[name] if name in parameters else _resource(resources, name)
                         for name in inspect.signature(declare).parameters}
            return list(declare(**arguments))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - pytest.skip among them; the check meets the same cause
            return []

    # -- while the checks run ------------------------------------------------------------

    @contextmanager
    def answering(self, item: Any) -> Iterator[None]:
        """The run of ``item``: its own requests are answered from what was fetched for it."""
        token = _own.set(self._own.pop(_check_id(item), None))
        try:
            yield
        finally:
            _own.reset(token)

    def sent_for(self, check_id: str) -> list[Exchange]:
        """The exchanges the engine sent for ``check_id`` (the first check to declare each)."""
        with self._lock:
            return list(self._sent_for.get(check_id, ()))

    def observe(self, exchange: Exchange) -> None:
        """Client observer: counts what was sent before the plan (the preflight), by the plan,
        and by the checks as they ran."""
        with self._lock:
            self.sent += 1
            self.sent_planned += self._fetching
            self.sent_before += not (self._fetching or self._fetched)

    def describe(self) -> str:
        """One line for the console: how the requests were sent."""
        return (f"requests: {self.sent} sent, at most {self._workers} at a time: {self.sent_planned} declared by the "
                f"checks and fetched before they ran, {self.sent - self.sent_planned - self.sent_before} by a check "
                f"as it ran, {self.sent_before} before (the preflight)"
                + (f"; the plan stopped early ({self.failure})" if self.failure else ""))


def _resource(resources: Mapping[str, Any], name: str) -> Any:
    value = resources[name]
    return value() if callable(value) and name == "listing" else value


def _parameters(item: Any) -> dict[str, Any]:
    callspec = getattr(item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


def _declaration_takes(item: Any, name: str) -> bool:
    marker = item.get_closest_marker(NEEDS_MARK)
    return marker is not None and name in inspect.signature(marker.args[0]).parameters


def _takes_listing(item: Any) -> bool:
    function = getattr(item, "obj", None)
    takes = callable(function) and "listing" in inspect.signature(function).parameters
    return takes or _declaration_takes(item, "listing")


def _check_id(item: Any) -> str:
    return f"{item.path.name}::{item.name}"
