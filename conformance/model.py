"""The model of the listing: the deployment's own jobs, walked once and shared by every check.

Expectations always come from here, never from hard-coded data: a window check compares a
page with a slice of the walked listing, a filter check with a subsequence of it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from conformance import evidence
from conformance.client import Exchange, RequestFailed, Response, spending_reserve
from conformance.shared import Outcome, Shared, gather

WALK_PAGE_SIZE = 100
# Finding the end of a listing longer than --max-listing: limit=1 probes at doubling offsets
# until one is empty, then bisection until the end is known to within END_SLACK jobs; one
# page of LAST_PAGE_SIZE jobs ending at the empty offset then gives the exact end and the
# last page (at least LAST_PAGE_SIZE - END_SLACK jobs). Past MAX_END_OFFSET the search gives up.
END_SLACK = 50
LAST_PAGE_SIZE = 100
MAX_END_OFFSET = 2**40
# Walks a run spends confirming a listing that keeps changing; past them, a comparison that
# differs on a listing already seen changing is not checked without walking it again.
MAX_REWALKS = 25
# A filtered walk of a listing longer than --max-listing compares at most this many jobs: the
# filtered listing's first jobs, as many as the walked prefix holds of its status, up to this.
MAX_FILTERED_PREFIX = 200
# Pages a walk of unknown length fetches at once past the last one it has (1, 1, 2, 4, then 8):
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


class ListingReordered(ListingChanged):
    """A second walk found the listing's jobs in another order (see :class:`Reordering`): the
    comparison that asked for it is not judged, since the order it relied on is not stable."""

    def __init__(self, listing: str) -> None:
        super().__init__(f"a second walk of {listing} returned the same jobs in another order, so comparisons "
                         "with the listing are not judged (ORD-02 fails for it)", fresh=False)


@dataclass(frozen=True)
class Reordering:
    """A second walk of the listing, with the same requests, found the same jobs with the same
    fields in another order: not a change of a live listing (jobs never change their
    created_at), but an order that is not the same every time (ORD-02)."""

    before: Walk
    after: Walk
    position: int  # the first position where the two walks differ


@dataclass(frozen=True)
class Walk:
    """The jobs seen by walking pages of one size from offset 0 until a short page.

    A walk that stopped at --max-listing holds a prefix of the listing. The listing's walk then
    finds where the listing ends (:meth:`ListingModel.listing`): ``total`` is its length and
    ``tail`` its last page, the jobs ``[total - len(tail), total)``. Positions between the
    prefix and the last page are unknown.
    """

    jobs: tuple[Job, ...]
    complete: bool
    page_size: int
    requests: int
    status: str | None = None
    pages: tuple[Exchange, ...] = field(default=(), compare=False, repr=False)
    total: int | None = None
    tail: tuple[Job, ...] = ()
    tail_page: Exchange | None = field(default=None, compare=False, repr=False)
    repeated: bool = False  # stopped at a page that repeated the one before: the end is unknown

    @property
    def ids(self) -> list[str]:
        return [job_id(job) for job in self.jobs]

    def __len__(self) -> int:
        """The jobs walked from offset 0 (the whole listing when complete)."""
        return len(self.jobs)

    @property
    def end_known(self) -> bool:
        """Whether the listing's length is known: walked whole, or its end found past the prefix."""
        return self.complete or self.total is not None

    @property
    def size(self) -> int:
        """The listing's length when known, else the length of the walked prefix."""
        return self.total if self.total is not None and not self.complete else len(self.jobs)

    @property
    def partial(self) -> bool:
        """A prefix plus the last page: the end is known, the middle is not."""
        return not self.complete and self.total is not None

    @property
    def tail_start(self) -> int:
        return self.size - len(self.tail)

    def job_at(self, position: int) -> Job | None:
        """The job at ``position``, when the walk knows it."""
        if 0 <= position < len(self.jobs):
            return self.jobs[position]
        if self.tail and self.tail_start <= position < self.size:
            return self.tail[position - self.tail_start]
        return None

    def window(self, offset: int, limit: int) -> list[Job]:
        """The jobs ``[offset, offset + limit)`` as far as the walk knows them from ``offset`` on
        (all of them when :meth:`knows` the window; none past a known end)."""
        stop = min(offset + limit, self.size) if self.end_known else offset + limit
        if offset < len(self.jobs):
            found = list(self.jobs[offset:stop])
            position = offset + len(found)
            if position < stop and self.tail and self.tail_start <= position:
                found += self.tail[position - self.tail_start : stop - self.tail_start]
            return found
        if self.tail and self.tail_start <= offset:
            return list(self.tail[offset - self.tail_start : stop - self.tail_start])
        return []

    def knows(self, offset: int, limit: int) -> bool:
        """True when the walk knows every position of the window ``[offset, offset + limit)``:
        inside the walked prefix, inside the last page, or past the known end."""
        if self.complete or offset + limit <= len(self.jobs):
            return True
        if not self.end_known:
            return False
        stop = min(offset + limit, self.size)
        return offset >= stop or len(self.window(offset, limit)) == stop - offset

    def known(self) -> list[tuple[int, Job]]:
        """Every job the walk knows, with its position: the prefix, then the last page."""
        pairs = list(enumerate(self.jobs))
        if self.tail:
            start = max(self.tail_start, len(self.jobs))
            pairs += [(position, self.tail[position - self.tail_start]) for position in range(start, self.size)]
        return pairs

    def with_status(self, status: str) -> list[Job]:
        """The jobs of ``status`` in the walked prefix (a prefix of the filtered listing)."""
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
        if position >= len(self.jobs) and self.tail and self.tail_start <= position:
            return self.tail_page
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
        if self.complete:
            return f"the whole listing ({len(self.jobs)} jobs)"
        if self.partial:
            return (f"a prefix of {len(self.jobs)} jobs plus the last page (jobs {self.tail_start}-{self.size - 1} "
                    f"of {self.size})")
        if self.repeated:
            return (f"the first {len(self.jobs)} jobs (the page at offset {len(self.jobs)} held the very jobs of "
                    "the page before it, so the walk stopped there)")
        return f"the first {len(self.jobs)} jobs ({len(self.jobs)} jobs)"

    def coverage_note(self) -> str | None:
        """What a check judging the whole listing covered, when it is not the whole listing."""
        if self.partial:
            return (f"judged {self.describe()}: the listing is longer than --max-listing, so its middle "
                    "was not walked")
        return None


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

    Thread-safe: the requests the checks declared (:mod:`conformance.plan`) are fetched
    concurrently, and a page or walk asked for twice at once is fetched once, by whichever
    thread asks first.
    """

    def __init__(self, fetch: Fetch, *, max_jobs: int, concurrency: int = 1,
                 sent: Callable[[], int] | None = None) -> None:
        self._fetch = fetch
        # How many requests the run has sent (anyone's): a confirmation walk after which nothing
        # was sent confirms every answer already in, so the next failure needs no walk of its own.
        self._sent = sent
        self._confirmed_at: int | None = None
        self.reordering: Reordering | None = None  # the first walk that found the listing in another order
        self.compared_walks = 0  # walks that found the same jobs as the model's walk, in any order
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
        """The listing walked with limit=100 (up to ``max_jobs``), once per run. A listing longer
        than that has its end found (:meth:`find_end`): the walk holds the prefix and the last page."""
        return self._shared.get(("walk", None), lambda: self.find_end(self.walk(WALK_PAGE_SIZE)), note=False)

    def find_end(self, walk: Walk, *, fresh: bool = False) -> Walk:
        """``walk`` (a prefix that stopped at --max-listing) with the listing's length and last
        page, found by searching ``offset`` instead of walking: limit=1 probes at offsets 1, 2,
        4, ... (those inside the prefix are known to hold a job) until one is empty, then
        bisection. ``walk`` as it is when it is complete, or when a probe got no usable page
        (the end stays unknown, as it was)."""
        if walk.complete or walk.repeated or len(walk) == 0:
            return walk
        fetch = self._fetch if fresh else (lambda params: self.page(**params))

        def holds_a_job(offset: int) -> bool:
            return bool(page_jobs(fetch({"limit": 1, "offset": offset})))

        try:
            low = len(walk) - 1  # the last offset known to hold a job
            if holds_a_job(len(walk)):  # the walk asked this already: one past its last job
                low = len(walk)
            high = 1 << low.bit_length()  # the first power of two past it
            while holds_a_job(high):
                low, high = high, high * 2
                if high > MAX_END_OFFSET:
                    return walk
            while high - low > END_SLACK:
                middle = (low + high) // 2
                if holds_a_job(middle):
                    low = middle
                else:
                    high = middle
            start = max(high - LAST_PAGE_SIZE, 0)
            response = fetch({"limit": LAST_PAGE_SIZE, "offset": start})
            last = page_jobs(response)[:LAST_PAGE_SIZE]
        except (ListingUnavailable, RequestFailed):
            return walk
        total = start + len(last)
        if not low < total <= high:  # the listing changed during the search
            return walk
        return dataclasses.replace(walk, total=total, tail=tuple(last), tail_page=response.exchange)

    def filtered(self, status: str | None) -> Walk:
        """The listing filtered by ``status``, walked once per run as far as the checks compare it
        with the listing: whole when the listing is, else its first jobs up to the end of the
        listing's walked prefix (as many as the prefix holds of ``status``, at most
        :data:`MAX_FILTERED_PREFIX`)."""
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
        return self.walk(WALK_PAGE_SIZE, status=status, max_jobs=min(expected, MAX_FILTERED_PREFIX))

    def walk(self, page_size: int, *, status: str | None = None, max_jobs: int | None = None,
             expect: int | None = None, fresh: bool = False) -> Walk:
        """Walk with pages of ``page_size`` until a short page or ``max_jobs`` jobs.

        Without ``max_jobs`` the walk stops at --max-listing, where one more request
        (``offset=max_jobs&limit=1``) tells whether the listing ends there. Pages known to be
        needed are fetched together: every page up to ``max_jobs`` when it is given, or up to
        the short page after ``expect`` jobs; past them (or from the start, when nothing is
        known) 1, 1, 2, 4, then 8 pages at a time. ``fresh`` sends every page again instead of
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
            stop = _extend(jobs, pages, outcomes[: len(offsets)], page_size)
            if stop is not None:
                return Walk(tuple(jobs), stop == END, page_size, requests, status, tuple(pages),
                            repeated=stop == REPEATED)
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
            if walk.partial:
                facts.update(size=walk.size, last_page=[walk.tail_start, walk.size])
        return facts

    def refresh(self) -> bool:
        """Walk the listing again. When it differs from the model's walk, the fresh walk takes
        its place, cached pages and filtered walks are forgotten, and the answer is True.

        A listing already seen changing on :data:`MAX_REWALKS` walks is presumed to change
        still: True without a walk, and the model keeps what it holds."""
        with self._lock:
            if self.changed and self.rewalks >= MAX_REWALKS:
                return True
            self.rewalks += 1
            before = self.listing()
            with spending_reserve():
                after = self.walk(WALK_PAGE_SIZE, max_jobs=len(before.jobs) if not before.complete else None,
                                  expect=len(before.jobs), fresh=True)
                if after.ids == before.ids and not _fields_changed(before.jobs, after.jobs):
                    self.compared_walks += 1
                    self._confirmed_at = self._sent() if self._sent else None
                    return False
                if _reordered(before.jobs, after.jobs):
                    self.compared_walks += 1
                    position = next(n for n, (old, new) in enumerate(zip(before.ids, after.ids, strict=True))
                                    if old != new)
                    self.reordering = Reordering(before, after, position)
                    raise ListingReordered(before.describe())
                if before.partial:
                    after = self.find_end(after, fresh=True)
            self.changed = True
            shared = Shared()
            shared.put(("walk", None), after)
            self._shared = shared
            self.generation += 1
            return True

    def confirm_unchanged(self) -> None:
        """Walk the listing again (unless nothing was sent since the last walk that found it as
        modelled); :class:`ListingChanged` when it is not what the model held.

        Called before a check reports a failure that a changing listing could explain, so a
        live deployment is never blamed for jobs that appeared during the run. The model then
        holds the fresh walk, and the plugin repeats the check once against it; a check that
        meets a change again is not checked.
        """
        if self._confirmed_at is not None and self._sent is not None and self._sent() == self._confirmed_at:
            return  # the last walk, after every answer the run holds, found the listing as modelled
        if self.reordering is not None:
            raise ListingReordered(self.reordering.before.describe())
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


END, REPEATED = "end", "repeated"


def _extend(jobs: list[Job], pages: list[Exchange], outcomes: Sequence[Outcome], page_size: int) -> str | None:
    """Add the pages' jobs in order, up to a short page (:data:`END`) or a full page holding
    the very jobs of the page before it (:data:`REPEATED`, not added: the deployment answers
    every offset alike, and walking on would cost requests up to --max-listing and past it).
    A page that got no usable answer raises there, as if the walk had stopped at it."""
    for outcome in outcomes:
        response = outcome.result(note=False)
        page = page_jobs(response)[:page_size]
        if len(page) == page_size and len(jobs) >= page_size and [job_id(job) for job in page] == [
                job_id(job) for job in jobs[-page_size:]]:
            return REPEATED
        pages.append(response.exchange)
        jobs.extend(page)
        if len(page) < page_size:
            return END
    return None


def _batch_sizes(known_pages: int) -> Iterator[int]:
    """Pages fetched at once: those known to be needed, then 1, 1, 2, 4, 8, 8, ... (a short
    listing costs no request past its end; a long one few round trips)."""
    if known_pages:
        yield known_pages
    yield 1
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


def _reordered(before: Sequence[Job], after: Sequence[Job]) -> bool:
    """The same jobs, with the same fields, in another order."""
    old = {job_id(job): _moving(job) for job in before}
    new = {job_id(job): _moving(job) for job in after}
    return len(old) == len(before) == len(after) and old == new


def _fields_changed(before: Sequence[Job], after: Sequence[Job]) -> bool:
    return any(_moving(old) != _moving(new) for old, new in zip(before, after, strict=False))


def _moving(job: Any) -> Any:
    return tuple(job.get(name) for name in _MOVING_FIELDS) if isinstance(job, dict) else job
