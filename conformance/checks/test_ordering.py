"""ORD: newest first, and the same order every time, at every page size."""

from __future__ import annotations

import pytest

from conformance import inputs
from conformance.evidence import remark
from conformance.judge import (
    Culprit,
    created_at_order_problem,
    culprit_at,
    difference_position,
    expect,
    expect_page,
    expect_same_jobs,
    fail,
    first_difference,
    judged_jobs,
)
from conformance.model import job_id, page_jobs, parse_timestamp
from conformance.plan import Again, Page, needs


def expect_same_order(actual, expected, what, model, evidence: Culprit | None = None):
    """Like ``expect_same_jobs``, but the same jobs in another order fail ORD-02 at once: jobs
    never change their created_at, so no change of a live listing can reorder them."""
    actual_ids, expected_ids = [job_id(job) for job in actual], [job_id(job) for job in expected]
    if actual_ids != expected_ids and sorted(actual_ids) == sorted(expected_ids):
        fail(f"{what}: the same jobs in another order: {first_difference(actual_ids, expected_ids)}", "ORD-02",
             evidence=culprit_at(evidence, difference_position(actual_ids, expected_ids)))
    expect_same_jobs(actual, expected, what, model, "ORD-02", evidence=evidence)


@pytest.mark.requirement("ORD-01")
def test_listing_is_newest_first(listing, model):
    positions, jobs = zip(*listing.known(), strict=True) if len(listing) else ((), ())
    moments = {parse_timestamp(job.get("created_at")) for job in jobs} - {None}
    if len(moments) < 2:
        pytest.skip(f"the listing ({listing.describe()}) needs jobs with two different created_at")
    problem = created_at_order_problem(jobs, positions)
    if problem:
        model.confirm_unchanged()
    expect(problem is None, f"{listing.describe()} is not newest first: {problem}", "ORD-01")
    remark(listing.coverage_note())


@pytest.mark.requirement("ORD-02")
@pytest.mark.parametrize("params", [{}, inputs.INNER_PAGE], ids=["first-page", "inner-page"])
@needs(lambda params: [Page.of(**params), Again.of(params)])
def test_repeated_request_returns_the_same_order(target, model, listing, params):
    if len(listing) < 2:
        pytest.skip(f"the listing ({listing.describe()}) has fewer than 2 jobs")
    first = page_jobs(model.page(**params))  # the run's shared answer; the repeat is this check's own
    again = expect_page(target.get(params), "ORD-02")["jobs"]
    expect_same_order(again, first, f"the same request ({params or 'no parameters'}) asked twice", model)


def tie_pages(listing):
    """The page of each tie run ORD-02 asks twice: (start, length, query)."""
    return [(start, length, {"offset": start, "limit": min(length, inputs.LIMIT_MAX)})
            for start, length in listing.tie_runs()[: inputs.MAX_TIE_RUNS]]


@pytest.mark.requirement("ORD-02")
@needs(lambda listing: [spec for _, _, params in tie_pages(listing) for spec in (Page.of(**params), Again.of(params))])
def test_repeated_requests_across_ties_return_the_same_order(target, model, listing):
    runs = tie_pages(listing)
    if not runs:
        pytest.skip(f"no jobs share a created_at in {listing.describe()}")
    for start, length, params in runs:
        first = page_jobs(model.page(**params))
        again = expect_page(target.get(params), "ORD-02")["jobs"]
        expect_same_order(again, first, f"page offset={start} limit={params['limit']} (the {length} jobs that "
                          "share a created_at) asked twice", model)


def tiling_covers(listing, page_size):
    """How many jobs the pages of ``page_size`` cover: their budget, or the walked listing."""
    return min(len(listing), page_size * inputs.TILING_REQUEST_BUDGET) if len(listing) >= 2 else 0


@pytest.mark.requirement("ORD-02")
@pytest.mark.parametrize("page_size", inputs.TILING_PAGE_SIZES)
@needs(lambda listing, page_size: [Page.of(limit=page_size, offset=offset)
                                   for offset in range(0, tiling_covers(listing, page_size), page_size)])
def test_pages_tile_the_listing(model, listing, page_size):
    if len(listing) < 2:
        pytest.skip(f"the listing ({listing.describe()}) has fewer than 2 jobs")
    covered = tiling_covers(listing, page_size)
    walk = model.walk(page_size, max_jobs=covered)
    expected = listing.jobs[:covered]
    expect_same_jobs(walk.jobs, expected,
                     f"pages of {page_size} joined together (first {covered} jobs)", model, "ORD-02",
                     evidence=walk.exchange_at)


def split_tie_pages(listing):
    """The pages that split each tie run: (start, length, offset, limit)."""
    return [(start, length, offset, limit) for start, length in listing.tie_runs()[: inputs.MAX_TIE_RUNS]
            for offset, limit in ((start + 1, min(length, inputs.LIMIT_MAX)), (max(start - 1, 0), 2))
            if listing.knows(offset, limit)]


@pytest.mark.requirement("ORD-02")
@needs(lambda listing: [Page.of(offset=offset, limit=limit) for _, _, offset, limit in split_tie_pages(listing)])
def test_pages_split_inside_ties_agree(model, listing):
    if not listing.tie_runs():
        pytest.skip(f"no jobs share a created_at in {listing.describe()}")
    for start, length, offset, limit in split_tie_pages(listing):
        page = judged_jobs(model.page(offset=offset, limit=limit))
        expect_same_order(page, listing.window(offset, limit),
                          f"page offset={offset} limit={limit} splitting the {length} jobs that share "
                          f"created_at at position {start}", model)
