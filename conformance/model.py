"""The model of the listing: the deployment's own jobs, walked once and shared by every check.

Expectations always come from here, never from hard-coded data: a window check compares a
page with a slice of the walked listing, a filter check with a subsequence of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from conformance import evidence
from conformance.client import Exchange, RequestFailed, Response
from conformance.prefetch import Outcome, Shared, StopAhead, gather, running_ahead

WALK_PAGE_SIZE = 100
# Walks a run spends confirming a listing that keeps changing; past them, a comparison that
# differs on a listing already seen changing is not checked without walking it again.
MAX_REWALKS = 25
# Pages a walk of unknown length fetches at once past the last one it has (1, 2, 4, then 8):
# at most this many requests past the end of a listing, for a few round trips in all.
MAX_SPECULATIVE_PAGES = 8

Job = dict[str, Any]
Fetch = Callable[[dict[str, Any]], Response]


class ListingUnavailable(Exception):
    """The listing could not be walked, so checks that need it cannot run."""


class ListingChanged(Exception):
    """The listing differed between two walks: the deployment changed during the run.

    ``fresh`` says whether the model now holds a fresh walk to repeat the comparison against.
    """

    def __init__(self, message: str, *, fresh: bool = True) -> None:
        super().__init__(message)
        self.fresh = fresh


@dataclass(frozen=True)
class Walk:
    """The jobs seen by walking pages of one size from offset 0 until a short page."""

    jobs: tuple[Job, ...]
    complete: bool
    page_size: int
    requests: int
    status: str | None = None
    pages: tuple[Exchange, ...] = field(default=(), compare=False, repr=False)

    @property
    def ids(self) -> list[str]:
        return [job_id(job) for job in self.jobs]

    def __len__(self) -> int:
        return len(self.jobs)

    def window(self, offset: int, limit: int) -> list[Job]:
        return list(self.jobs[offset : offset + limit])

    def covers(self, end: int) -> bool:
        """True when the walk knows every position before ``end`` (or the whole listing)."""
        return self.complete or end <= len(self.jobs)

    def with_status(self, status: str) -> list[Job]:
        return [job for job in self.jobs if job.get("status") == status]

    def tie_runs(self) -> list[tuple[int, int]]:
        """(start, length) of every run of two or more adjacent jobs sharing ``created_at``."""
        runs: list[tuple[int, int]] = []
        start = 0
        keys = [parse_timestamp(job.get("created_at")) for job in self.jobs]
        for position in range(1, len(keys) + 1):
            if position == len(keys) or keys[position] != keys[start] or keys[start] is None:
                if position - start >= 2 and keys[start] is not None:
                    runs.append((start, position - start))
                start = position
        return runs

    def exchange_at(self, position: int) -> Exchange | None:
        """The exchange of the page that returned the job at ``position``."""
        page = position // self.page_size
        return self.pages[page] if page < len(self.pages) else None

    def page_that_lost(self, job: Any) -> Exchange | None:
        """The page that should have returned ``job``, which this walk lacks, when its
        ``created_at`` places it where one of the walk's pages starts: the walk skipped it
        between two pages. None when its place is inside a page (or it has no created_at)."""
        moment = parse_timestamp(job.get("created_at")) if isinstance(job, dict) else None
        if moment is None:
            return None
        keys = [parse_timestamp(known.get("created_at")) for known in self.jobs]
        newer = sum(1 for key in keys if key is not None and key > moment)
        not_older = sum(1 for key in keys if key is not None and key >= moment)
        starts = [place for place in range(newer, not_older + 1) if place and place % self.page_size == 0]
        return self.exchange_at(starts[0]) if starts else None

    def describe(self) -> str:
        scope = "the whole listing" if self.complete else f"the first {len(self.jobs)} jobs"
        return f"{scope} ({len(self.jobs)} jobs)"


def job_id(job: Any) -> str:
    return job.get("id", "<no id>") if isinstance(job, dict) else "<not an object>"


def short_id(identifier: str) -> str:
    return identifier if len(identifier) <= 12 else identifier[:10] + ".."


def parse_timestamp(value: Any) -> datetime | None:
    """An aware datetime from an ISO 8601 string, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def page_jobs(response: Response) -> list[Job]:
    """The ``jobs`` of a 200 page; :class:`ListingUnavailable` when it is not one."""
    if response.status != 200:
        raise ListingUnavailable(f"GET {response.exchange.url} answered {response.status}")
    try:
        body = response.json()
    except ValueError as error:
        raise ListingUnavailable(f"GET {response.exchange.url}: {error}") from None
    jobs = body.get("jobs") if isinstance(body, dict) else None
    if not isinstance(jobs, list):
        raise ListingUnavailable(f"GET {response.exchange.url}: the body has no jobs array")
    return jobs


class ListingModel:
    """Walks of the caller's listing and a cache of pages, shared by all checks of a run.

    Thread-safe: checks run ahead (:mod:`conformance.prefetch`) ask for the same pages and
    walks at once; each is fetched once, by whichever thread asks first.
    """

    def __init__(self, fetch: Fetch, *, max_jobs: int, concurrency: int = 1) -> None:
        self._fetch = fetch
        self.max_jobs = max_jobs
        self.concurrency = concurrency
        self._shared = Shared()
        self._lock = threading.RLock()
        self.changed = False
        self.rewalks = 0
        self.generation = 0  # how many times the model took a fresh walk in place of the one it held

    def page(self, **params: Any) -> Response:
        """The response to a query with these parameters, fetched once per run. Parameters are
        sent in name order, so that equal queries are one request whoever asks."""
        query = tuple(sorted(((name, str(value)) for name, value in params.items()), key=lambda pair: pair[0]))
        return self._shared.get(("page", query), lambda: self._fetch(dict(query)))

    def listing(self) -> Walk:
        """The listing walked with limit=100 (up to ``max_jobs``), once per run."""
        return self._shared.get(("walk", None), lambda: self.walk(WALK_PAGE_SIZE), note=False)

    def filtered(self, status: str | None) -> Walk:
        """The listing filtered by ``status``, walked once per run as far as the checks compare it
        with the listing: whole when the listing is, else its first jobs up to the end of the
        listing's walked prefix (as many as the prefix holds of ``status``)."""
        if status is None:
            return self.listing()
        walk = self._shared.get(("walk", status), lambda: self._walk_filtered(status), note=False)
        for exchange in walk.pages:
            evidence.note(exchange)
        return walk

    def _walk_filtered(self, status: str) -> Walk:
        listing = self.listing()
        expected = len(listing.with_status(status))
        if listing.complete:
            return self.walk(WALK_PAGE_SIZE, status=status, expect=expected)
        return self.walk(WALK_PAGE_SIZE, status=status, max_jobs=expected)

    def walk(self, page_size: int, *, status: str | None = None, max_jobs: int | None = None,
             expect: int | None = None, fresh: bool = False) -> Walk:
        """Walk with pages of ``page_size`` until a short page or ``max_jobs`` jobs.

        Without ``max_jobs`` the walk stops at --max-listing, where one more request
        (``offset=max_jobs&limit=1``) tells whether the listing ends there. Pages known to be
        needed are fetched together: every page up to ``max_jobs`` when it is given, or up to
        the short page after ``expect`` jobs; past them (or from the start, when nothing is
        known) 1, 2, 4, then 8 pages at a time. ``fresh`` sends every page again instead of
        reading the run's cache.
        """
        cap = self.max_jobs if max_jobs is None else max_jobs
        known = cap if max_jobs is not None else min(cap, expect + 1) if expect is not None else 0
        fetch = self._fetch if fresh else (lambda params: self.page(**params))
        jobs: list[Job] = []
        pages: list[Exchange] = []
        requests = 0
        sizes = _batch_sizes(-(-known // page_size))
        while len(jobs) < cap:
            offsets = range(len(jobs), min(cap, len(jobs) + next(sizes) * page_size), page_size)
            queries = [_page_params(page_size, offset, status) for offset in offsets]
            at_cap = max_jobs is None and offsets[-1] + page_size == cap
            if at_cap:
                queries.append(_page_params(1, cap, status))
            outcomes = gather([partial(fetch, query) for query in queries], self.concurrency)
            requests += len(outcomes)
            if _extend(jobs, pages, outcomes[: len(offsets)], page_size):
                return Walk(tuple(jobs), True, page_size, requests, status, tuple(pages))
            if at_cap:
                return Walk(tuple(jobs), _nothing_past(outcomes[-1]), page_size, requests, status, tuple(pages))
        return Walk(tuple(jobs[:cap]), False, page_size, requests, status, tuple(pages))

    def walked_listing(self) -> Walk | None:
        """The listing, when it has been walked (None: asking for it would walk it now)."""
        return self._shared.peek(("walk", None))

    def facts(self) -> dict[str, Any]:
        """What results.json says of the listing: its size, completeness and stability."""
        facts: dict[str, Any] = {"changed_during_run": self.changed}
        walk = self._shared.peek(("walk", None))
        if walk is not None:
            facts.update(jobs=len(walk), complete=walk.complete)
        return facts

    def refresh(self) -> bool:
        """Walk the listing again. When it differs from the model's walk, the fresh walk takes
        its place, cached pages and filtered walks are forgotten, and the answer is True.

        A listing already seen changing on :data:`MAX_REWALKS` walks is presumed to change
        still: True without a walk, and the model keeps what it holds."""
        if running_ahead():
            raise StopAhead("only a check's real run walks the listing again")
        with self._lock:
            if self.changed and self.rewalks >= MAX_REWALKS:
                return True
            self.rewalks += 1
            before = self.listing()
            after = self.walk(WALK_PAGE_SIZE, max_jobs=len(before.jobs) if not before.complete else None,
                              expect=len(before.jobs), fresh=True)
            if after.ids == before.ids and not _fields_changed(before.jobs, after.jobs):
                return False
            self.changed = True
            shared = Shared()
            shared.put(("walk", None), after)
            self._shared = shared
            self.generation += 1
            return True

    def confirm_unchanged(self) -> None:
        """Walk the listing again; :class:`ListingChanged` when it is not what the model held.

        Called before a check reports a failure that a changing listing could explain, so a
        live deployment is never blamed for jobs that appeared during the run. The model then
        holds the fresh walk, and the plugin repeats the check once against it; a check that
        meets a change again is not checked.
        """
        presumed = self.changed and self.rewalks >= MAX_REWALKS
        if self.refresh():
            raise ListingChanged("listing changed during the run" + (
                f" (on {MAX_REWALKS} walks already, so the suite stopped walking it again)" if presumed else ""),
                fresh=not presumed)


def _page_params(limit: int, offset: int, status: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status is not None:
        params["status"] = status
    return params


def _extend(jobs: list[Job], pages: list[Exchange], outcomes: Sequence[Outcome], page_size: int) -> bool:
    """Add the pages' jobs in order, up to a short page; True when there was one (the end).
    A page that got no usable answer raises there, as if the walk had stopped at it."""
    for outcome in outcomes:
        response = outcome.result(note=False)
        pages.append(response.exchange)
        page = page_jobs(response)[:page_size]
        jobs.extend(page)
        if len(page) < page_size:
            return True
    return False


def _batch_sizes(known_pages: int) -> Iterator[int]:
    """Pages fetched at once: those known to be needed, then 1, 2, 4, 8, 8, ..."""
    if known_pages:
        yield known_pages
    size = 1
    while True:
        yield size
        size = min(size * 2, MAX_SPECULATIVE_PAGES)


def _nothing_past(outcome: Outcome) -> bool:
    """Whether the page just past the cap is empty; an answer that tells nothing says no."""
    try:
        return page_jobs(outcome.result(note=False)) == []
    except (ListingUnavailable, RequestFailed):
        return False


# Fields that move while a job is active; terminal jobs never change.
_MOVING_FIELDS = ("status", "progress", "result_track_id")


def _fields_changed(before: Sequence[Job], after: Sequence[Job]) -> bool:
    return any(_moving(old) != _moving(new) for old, new in zip(before, after))


def _moving(job: Any) -> Any:
    return tuple(job.get(name) for name in _MOVING_FIELDS) if isinstance(job, dict) else job
