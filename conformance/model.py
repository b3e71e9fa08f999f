"""The model of the listing: the deployment's own jobs, walked once and shared by every check.

Expectations always come from here, never from hard-coded data: a window check compares a
page with a slice of the walked listing, a filter check with a subsequence of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conformance import evidence
from conformance.client import Exchange, Response

WALK_PAGE_SIZE = 100
# Walks a run spends confirming a listing that keeps changing; past them, a comparison that
# differs on a listing already seen changing is not checked without walking it again.
MAX_REWALKS = 25

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
    """Walks of the caller's listing and a cache of pages, shared by all checks of a run."""

    def __init__(self, fetch: Fetch, *, max_jobs: int) -> None:
        self._fetch = fetch
        self.max_jobs = max_jobs
        self._walks: dict[str | None, Walk] = {}
        self._pages: dict[tuple[tuple[str, str], ...], Response] = {}
        self._lock = threading.RLock()
        self.changed = False
        self.rewalks = 0

    def page(self, **params: Any) -> Response:
        """The response to a query with these parameters, fetched once per run."""
        key = tuple(sorted((name, str(value)) for name, value in params.items()))
        with self._lock:
            if key not in self._pages:
                self._pages[key] = self._fetch(dict(params))
            response = self._pages[key]
        evidence.note(response.exchange)
        return response

    def listing(self) -> Walk:
        """The listing walked with limit=100 (up to ``max_jobs``), once per run."""
        return self.filtered(None)

    def filtered(self, status: str | None) -> Walk:
        """The listing filtered by ``status``, walked once per run."""
        with self._lock:
            if status not in self._walks:
                self._walks[status] = self.walk(WALK_PAGE_SIZE, status=status)
            return self._walks[status]

    def walk(self, page_size: int, *, status: str | None = None, max_jobs: int | None = None) -> Walk:
        """Walk with pages of ``page_size`` until a short page or ``max_jobs`` jobs."""
        cap = self.max_jobs if max_jobs is None else max_jobs
        jobs: list[Job] = []
        pages: list[Exchange] = []
        while len(jobs) < cap:
            params: dict[str, Any] = {"limit": page_size, "offset": len(jobs)}
            if status is not None:
                params["status"] = status
            response = self._fetch(params)
            pages.append(response.exchange)
            page = page_jobs(response)[:page_size]
            jobs.extend(page)
            if len(page) < page_size:
                return Walk(tuple(jobs), True, page_size, len(pages), status, tuple(pages))
        return Walk(tuple(jobs[:cap]), False, page_size, len(pages), status, tuple(pages))

    def facts(self) -> dict[str, Any]:
        """What results.json says of the listing: its size, completeness and stability."""
        facts: dict[str, Any] = {"changed_during_run": self.changed}
        walk = self._walks.get(None)
        if walk is not None:
            facts.update(jobs=len(walk), complete=walk.complete)
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
            after = self.walk(WALK_PAGE_SIZE, max_jobs=len(before.jobs) if not before.complete else None)
            if after.ids == before.ids and not _fields_changed(before.jobs, after.jobs):
                return False
            self.changed = True
            self._walks = {None: after}
            self._pages.clear()
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


# Fields that move while a job is active; terminal jobs never change.
_MOVING_FIELDS = ("status", "progress", "result_track_id")


def _fields_changed(before: Sequence[Job], after: Sequence[Job]) -> bool:
    return any(_moving(old) != _moving(new) for old, new in zip(before, after))


def _moving(job: Any) -> Any:
    return tuple(job.get(name) for name in _MOVING_FIELDS) if isinstance(job, dict) else job
